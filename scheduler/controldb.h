/* controldb: the scheduler's own database, control.db — its schema and
 * migrations, every SQL statement on it (a table, by name), and the
 * transactions. Users, the audit trail, the outbox, schedules, their slots
 * and runs (docs/SCHEDULES.md). No other file holds SQL on control.db.
 * Functions that can fail return 0 / -1 (or NULL) with one line in err. */
#ifndef CONTROLDB_H
#define CONTROLDB_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

typedef struct controldb controldb;

/* The statements on control.db; their text is controldb.c's table. */
enum controldb_sql {
    CDB_USER_COUNT,       /* () -> count */
    CDB_USER_ADD,         /* (name, token_hash, role, created_ms) */
    CDB_USER_BY_HASH,     /* (token_hash) -> a user row */
    CDB_USER_BY_NAME,     /* (name) -> a user row */
    CDB_USER_ALL,         /* () -> user rows by name */
    CDB_USER_SET,         /* (permissions, enabled, name) */
    CDB_USER_SET_TOKEN,   /* (token_hash, name): keyed */
    CDB_USER_MANAGERS,    /* () -> enabled district users with manage_patrons_district */
    CDB_AUDIT_ADD,        /* (ts_ms, user, verb, detail, peer, result, status) */
    CDB_AUDIT_SINCE,      /* (ts_ms, limit) -> ts_ms, user, verb, detail, peer, result, status */
    CDB_AUDIT_COUNT,      /* (ts_ms) -> count */
    CDB_OUTBOX_PUT,       /* (job_id, request, created_ms): INSERT OR IGNORE */
    CDB_OUTBOX_DUE,       /* (sent before ms) -> job_id, request; at most 100 */
    CDB_OUTBOX_SENT,      /* (last_sent_ms, job_id) */
    CDB_OUTBOX_CORRUPT,   /* (acked_ms, job_id) */
    CDB_OUTBOX_ACK,       /* (acked_ms, error, job_id) */
    CDB_SCHED_BY_NAME,    /* (name) -> CDB_SCHED_COLS */
    CDB_SCHED_BY_ID,      /* (id) -> CDB_SCHED_COLS */
    CDB_SCHED_ALL,        /* () -> CDB_SCHED_COLS, by name */
    CDB_SCHED_INSERT,     /* (uid .. baseline: 15) */
    CDB_SCHED_UPDATE,     /* (uid .. baseline: 15, id) */
    CDB_SCHED_DELETE,     /* (id) */
    CDB_SCHED_DUE_READ,   /* () -> id, days, minute, baseline, last claimed at: enabled ones */
    CDB_SLOT_CLAIM,       /* (schedule_id, local_date, at, mode, state, job_id, claimed_ms, claimed_by, note) */
    CDB_SLOT_REFUSED,     /* (note, schedule_id, local_date) */
    CDB_SLOT_LAST_AT,     /* (schedule_id) -> MAX(at) */
    CDB_SLOT_CLAIMED,     /* (schedule_id, local_date) -> 1 */
    CDB_SLOT_MISSED,      /* (schedule_id) -> count, latest local_date */
    CDB_SLOT_NOT_FIRED,   /* (schedule_id) -> local_date, at, mode, state, note; newest 10 */
    CDB_SLOT_DELETE,      /* (schedule_id) */
    CDB_RUN_PUT,          /* (job_id, schedule_id, local_date, at, mode, requested_by, dry_run) */
    CDB_RUN_LAST,         /* (schedule_id) -> job_id, local_date, at, mode, pruned, dry_run */
    CDB_RUN_RECENT,       /* (schedule_id) -> job_id, local_date, at, mode, requested_by, dry_run, pruned; 10 */
    CDB_RUN_UNPRUNED,     /* (schedule_id) -> job_id, newest first */
    CDB_RUN_PRUNED,       /* (job_id) */
    CDB_RUN_DELETE,       /* (schedule_id) */
    CDB__COUNT
};

/* The columns of a schedule row, in order (schedule_db.c reads them). */
enum {
    CDB_SCHED_ID, CDB_SCHED_UID, CDB_SCHED_NAME, CDB_SCHED_FILE, CDB_SCHED_ENCODING, CDB_SCHED_PROFILE_NAME,
    CDB_SCHED_PROFILE_TEXT, CDB_SCHED_DAYS, CDB_SCHED_MINUTE, CDB_SCHED_DISABLED, CDB_SCHED_OPTIONS,
    CDB_SCHED_CREATED_BY, CDB_SCHED_CREATED_MS, CDB_SCHED_UPDATED_BY, CDB_SCHED_UPDATED_MS, CDB_SCHED_BASELINE
};

/* Open (creating) control.db at path: WAL, a busy timeout, every table,
 * migrations up to the current version. fast: no fsync (tests only).
 * NULL with err. The handle is the caller's: controldb_close. */
controldb *controldb_open(const char *path, int fast, char *err, size_t errlen);
/* Close it and clear *db; NULL-safe. */
void controldb_close(controldb **db);

/* Statement `which`, prepared, to bind, step and then controldb_done.
 * NULL with err ("control store: ..."). */
sqlite3_stmt *controldb_stmt(controldb *db, enum controldb_sql which, char *err, size_t errlen);
/* Finalize a statement of controldb_stmt; NULL-safe. */
void controldb_done(sqlite3_stmt *st);
/* Step a statement that returns no rows, then finalize it. 0 / -1 with err. */
int controldb_run(controldb *db, sqlite3_stmt *st, char *err, size_t errlen);

/* BEGIN IMMEDIATE (the write lock), COMMIT, ROLLBACK. 0 / -1 with err. */
int controldb_begin(controldb *db, char *err, size_t errlen);
int controldb_commit(controldb *db, char *err, size_t errlen);
void controldb_rollback(controldb *db);

/* The last statement's message, extended result code, rows changed, the
 * last inserted rowid (sqlite3's, of this connection). */
const char *controldb_errmsg(controldb *db);
int controldb_errcode(controldb *db);
int controldb_changes(controldb *db);
int64_t controldb_last_rowid(controldb *db);

/* Column i of a row as text, "" for NULL. */
const char *controldb_text(sqlite3_stmt *st, int i);

/* ---- the few whole operations on users, the audit trail, the outbox ---- */

/* A user (docs/SECURITY.md): its level, district or site, and sites; its
 * permissions as a comma list; whether it is enabled. The token is kept
 * only as a keyed hash. */
typedef struct {
    char name[64];
    char level[16];
    char sites[512];
    char permissions[128];
    int enabled;
    int64_t created_ms;
    int keyed; /* the stored hash is keyed (0: an older row's, replaced at first use) */
} controldb_user;

/* How many users there are; -1 with err. */
int64_t controldb_user_count(controldb *db, char *err, size_t errlen);
/* A new user with the hash of its token. 0 / -1 with err (a name taken: SQLITE_CONSTRAINT). */
int controldb_user_add(controldb *db, const controldb_user *u, const char *token_hash, char *err, size_t errlen);
/* The user by token hash (CDB_USER_BY_HASH) or name (CDB_USER_BY_NAME): 1 found, 0 not, -1 error. */
int controldb_user_get(controldb *db, enum controldb_sql by, const char *key, controldb_user *u);
/* A row of a CDB_USER_* statement into u. */
void controldb_user_row(sqlite3_stmt *st, controldb_user *u);
/* The user's permissions and enabled flag as u says / a new token hash. 0 / -1 with err. */
int controldb_user_set(controldb *db, const controldb_user *u, char *err, size_t errlen);
int controldb_user_set_token(controldb *db, const char *name, const char *token_hash, char *err, size_t errlen);
/* A count statement (one int64 parameter when it takes one). -1 with err. */
int64_t controldb_count(controldb *db, enum controldb_sql which, int64_t arg, char *err, size_t errlen);

/* One line of the audit trail: who (or "unknown token"), the verb, its
 * arguments (never a secret), from where, the result (ok, refused,
 * failed, throttled) and the exit status. */
typedef struct {
    const char *user, *verb, *detail, *peer, *result;
    int status;
} controldb_audit_row;
/* Best effort: a failure is not the verb's. */
void controldb_audit(controldb *db, const controldb_audit_row *a);
/* A job request's outbox row (INSERT OR IGNORE: a job id is queued once),
 * inside the caller's transaction or on its own. 0 / -1 with err. */
int controldb_outbox_put(controldb *db, const char *job_id, const uint8_t *request, size_t len, char *err,
                         size_t errlen);

#endif
