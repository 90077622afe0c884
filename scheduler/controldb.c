/* controldb: control.db's schema, migrations and statement table.
 * Changing a table: add a step to `migrations` (never edit a step that
 * has shipped) and say so in docs/SCHEDULES.md. */
#include "controldb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct controldb {
    sqlite3 *db;
    char path[1024];
};

/* Version 1: users, outbox, audit, and the schedule part. A slot row is
 * the claim: UNIQUE(schedule_id, local_date) is what makes a slot fire
 * once whatever the number of schedulers or restarts. `runs` lists every
 * job a schedule made (slots and run-nows) for "last run" and for pruning
 * old jobs. IF NOT EXISTS: a control.db made before versions were kept
 * (user_version 0) has these tables already. */
static const char *const migration_1 =
    "CREATE TABLE IF NOT EXISTS users(name TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE,\n"
    "  role TEXT NOT NULL, created_ms INTEGER NOT NULL);\n"
    "CREATE TABLE IF NOT EXISTS outbox(job_id TEXT PRIMARY KEY, request BLOB NOT NULL,\n"
    "  created_ms INTEGER NOT NULL, last_sent_ms INTEGER NOT NULL DEFAULT 0, acked_ms INTEGER, error TEXT);\n"
    "CREATE TABLE IF NOT EXISTS audit(ts_ms INTEGER NOT NULL, user TEXT NOT NULL, verb TEXT NOT NULL, detail TEXT);\n"
    "CREATE TABLE IF NOT EXISTS schedules(\n"
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "  uid TEXT NOT NULL UNIQUE,\n"
    "  name TEXT NOT NULL UNIQUE COLLATE NOCASE,\n"
    "  file TEXT NOT NULL,\n"
    "  encoding TEXT NOT NULL DEFAULT '',\n"
    "  profile_name TEXT NOT NULL,\n"
    "  profile_text TEXT NOT NULL,\n"
    "  days TEXT NOT NULL,\n"
    "  minute INTEGER NOT NULL,\n"
    "  disabled INTEGER NOT NULL DEFAULT 0,\n"
    "  options BLOB NOT NULL,\n"
    "  created_by TEXT NOT NULL,\n"
    "  created_ms INTEGER NOT NULL,\n"
    "  updated_by TEXT NOT NULL,\n"
    "  updated_ms INTEGER NOT NULL,\n"
    "  baseline INTEGER NOT NULL);\n"
    "CREATE TABLE IF NOT EXISTS slots(\n"
    "  schedule_id INTEGER NOT NULL,\n"
    "  local_date TEXT NOT NULL,\n"
    "  at INTEGER NOT NULL,\n"
    "  mode INTEGER NOT NULL,\n"
    "  state TEXT NOT NULL,\n"
    "  job_id TEXT,\n"
    "  claimed_ms INTEGER NOT NULL,\n"
    "  claimed_by TEXT NOT NULL,\n"
    "  note TEXT NOT NULL DEFAULT '',\n"
    "  UNIQUE(schedule_id, local_date));\n"
    "CREATE INDEX IF NOT EXISTS slots_at ON slots(schedule_id, at);\n"
    "CREATE TABLE IF NOT EXISTS runs(\n"
    "  job_id TEXT PRIMARY KEY,\n"
    "  schedule_id INTEGER NOT NULL,\n"
    "  local_date TEXT NOT NULL DEFAULT '',\n"
    "  at INTEGER NOT NULL,\n"
    "  mode INTEGER NOT NULL,\n"
    "  requested_by TEXT NOT NULL,\n"
    "  dry_run INTEGER NOT NULL DEFAULT 0,\n"
    "  pruned INTEGER NOT NULL DEFAULT 0);\n"
    "CREATE INDEX IF NOT EXISTS runs_schedule ON runs(schedule_id, at);\n";

/* Version 2: users with a level (district or site), their sites, their
 * permissions (manage_patrons_district, view_jobs; docs/SECURITY.md) and
 * whether they are enabled; tokens hashed with the district's key (keyed:
 * an older row's unkeyed hash is replaced at its first use); the audit
 * trail says from where and with what result. */
static const char *const migration_2 =
    "ALTER TABLE users ADD COLUMN level TEXT NOT NULL DEFAULT 'district';\n"
    "ALTER TABLE users ADD COLUMN sites TEXT NOT NULL DEFAULT '';\n"
    "ALTER TABLE users ADD COLUMN permissions TEXT NOT NULL DEFAULT '';\n"
    "ALTER TABLE users ADD COLUMN enabled INTEGER NOT NULL DEFAULT 1;\n"
    "ALTER TABLE users ADD COLUMN keyed INTEGER NOT NULL DEFAULT 0;\n"
    "UPDATE users SET permissions = CASE role WHEN 'administrator' THEN 'manage_patrons_district' ELSE 'view_jobs' END;\n"
    "ALTER TABLE audit ADD COLUMN peer TEXT NOT NULL DEFAULT '';\n"
    "ALTER TABLE audit ADD COLUMN result TEXT NOT NULL DEFAULT 'ok';\n"
    "ALTER TABLE audit ADD COLUMN status INTEGER NOT NULL DEFAULT 0;\n"
    "CREATE INDEX IF NOT EXISTS audit_ts ON audit(ts_ms);\n";

/* migrations[i] takes a database from user_version i to i + 1. */
static const char *const migrations[] = {migration_1, migration_2};
#define NMIGRATIONS (sizeof(migrations) / sizeof(migrations[0]))

#define SCHED_COLS                                                                                               \
    "id,uid,name,file,encoding,profile_name,profile_text,days,minute,disabled,options,created_by,created_ms," \
    "updated_by,updated_ms,baseline"

#define USER_COLS "name,level,sites,permissions,enabled,created_ms,keyed"

static const char *const sql[CDB__COUNT] = {
    [CDB_USER_COUNT] = "SELECT count(*) FROM users",
    [CDB_USER_ADD] = "INSERT INTO users(name,token_hash,role,created_ms,level,sites,permissions,enabled,keyed) "
                     "VALUES(?,?,'user',?,?,?,?,1,1)",
    [CDB_USER_BY_HASH] = "SELECT " USER_COLS " FROM users WHERE token_hash=?",
    [CDB_USER_BY_NAME] = "SELECT " USER_COLS " FROM users WHERE name=?",
    [CDB_USER_ALL] = "SELECT " USER_COLS " FROM users ORDER BY name",
    [CDB_USER_SET] = "UPDATE users SET permissions=?, enabled=? WHERE name=?",
    [CDB_USER_SET_TOKEN] = "UPDATE users SET token_hash=?, keyed=1 WHERE name=?",
    [CDB_USER_MANAGERS] = "SELECT count(*) FROM users WHERE enabled=1 AND level='district' AND "
                          "(',' || permissions || ',') LIKE '%,manage_patrons_district,%'",
    [CDB_AUDIT_ADD] = "INSERT INTO audit(ts_ms,user,verb,detail,peer,result,status) VALUES(?,?,?,?,?,?,?)",
    [CDB_AUDIT_SINCE] = "SELECT ts_ms,user,verb,detail,peer,result,status FROM audit WHERE ts_ms>=? "
                        "ORDER BY ts_ms, rowid LIMIT ?",
    [CDB_AUDIT_COUNT] = "SELECT count(*) FROM audit WHERE ts_ms>=?",
    [CDB_OUTBOX_PUT] = "INSERT OR IGNORE INTO outbox(job_id,request,created_ms,last_sent_ms) VALUES(?,?,?,0)",
    [CDB_OUTBOX_DUE] = "SELECT job_id,request FROM outbox WHERE acked_ms IS NULL AND last_sent_ms < ? "
                       "ORDER BY created_ms LIMIT 100",
    [CDB_OUTBOX_SENT] = "UPDATE outbox SET last_sent_ms=? WHERE job_id=?",
    [CDB_OUTBOX_CORRUPT] = "UPDATE outbox SET acked_ms=?, error='corrupt' WHERE job_id=?",
    [CDB_OUTBOX_ACK] = "UPDATE outbox SET acked_ms=?, error=? WHERE job_id=? AND acked_ms IS NULL",
    [CDB_SCHED_BY_NAME] = "SELECT " SCHED_COLS " FROM schedules WHERE name=?",
    [CDB_SCHED_BY_ID] = "SELECT " SCHED_COLS " FROM schedules WHERE id=?",
    [CDB_SCHED_ALL] = "SELECT " SCHED_COLS " FROM schedules ORDER BY name",
    [CDB_SCHED_INSERT] = "INSERT INTO schedules(uid,name,file,encoding,profile_name,profile_text,days,minute,disabled,"
                         "options,created_by,created_ms,updated_by,updated_ms,baseline) "
                         "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    [CDB_SCHED_UPDATE] = "UPDATE schedules SET uid=?,name=?,file=?,encoding=?,profile_name=?,profile_text=?,days=?,"
                         "minute=?,disabled=?,options=?,created_by=?,created_ms=?,updated_by=?,updated_ms=?,baseline=? "
                         "WHERE id=?",
    [CDB_SCHED_DELETE] = "DELETE FROM schedules WHERE id=?",
    [CDB_SCHED_DUE_READ] = "SELECT s.id, s.days, s.minute, s.baseline, (SELECT MAX(at) FROM slots WHERE schedule_id=s.id) "
                           "FROM schedules s WHERE disabled=0 ORDER BY s.id",
    [CDB_SLOT_CLAIM] = "INSERT OR IGNORE INTO slots(schedule_id,local_date,at,mode,state,job_id,claimed_ms,claimed_by,note) "
                       "VALUES(?,?,?,?,?,?,?,?,?)",
    [CDB_SLOT_REFUSED] = "UPDATE slots SET state='refused', note=? WHERE schedule_id=? AND local_date=?",
    [CDB_SLOT_LAST_AT] = "SELECT MAX(at) FROM slots WHERE schedule_id=?",
    [CDB_SLOT_CLAIMED] = "SELECT 1 FROM slots WHERE schedule_id=? AND local_date=?",
    [CDB_SLOT_MISSED] = "SELECT count(*), MAX(local_date) FROM slots WHERE schedule_id=? AND state='missed'",
    [CDB_SLOT_NOT_FIRED] = "SELECT local_date, at, mode, state, note FROM slots WHERE schedule_id=? AND state<>'fired' "
                           "ORDER BY at DESC LIMIT 10",
    [CDB_SLOT_DELETE] = "DELETE FROM slots WHERE schedule_id=?",
    [CDB_RUN_PUT] = "INSERT OR IGNORE INTO runs(job_id,schedule_id,local_date,at,mode,requested_by,dry_run) "
                    "VALUES(?,?,?,?,?,?,?)",
    [CDB_RUN_LAST] = "SELECT job_id, local_date, at, mode, pruned, dry_run FROM runs WHERE schedule_id=? "
                     "ORDER BY at DESC, rowid DESC LIMIT 1",
    [CDB_RUN_RECENT] = "SELECT job_id, local_date, at, mode, requested_by, dry_run, pruned FROM runs WHERE schedule_id=? "
                       "ORDER BY at DESC, rowid DESC LIMIT 10",
    [CDB_RUN_UNPRUNED] = "SELECT job_id FROM runs WHERE schedule_id=? AND pruned=0 ORDER BY at DESC, rowid DESC",
    [CDB_RUN_PRUNED] = "UPDATE runs SET pruned=1 WHERE job_id=?",
    [CDB_RUN_DELETE] = "DELETE FROM runs WHERE schedule_id=?",
};

static int exec_err(controldb *c, const char *text, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(c->db, text, NULL, NULL, &msg) == SQLITE_OK)
        return 0;
    err_set(err, errlen, "%s: %s", c->path, msg ? msg : sqlite3_errmsg(c->db));
    sqlite3_free(msg);
    return -1;
}

/* Bring the schema up to date, one step and its version in a transaction. */
static int migrate(controldb *c, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int version = 0;
    if (sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    for (size_t v = (size_t)(version > 0 ? version : 0); v < NMIGRATIONS; v++) {
        char set[64];
        snprintf(set, sizeof(set), "PRAGMA user_version=%zu", v + 1);
        if (exec_err(c, "BEGIN IMMEDIATE", err, errlen) < 0)
            return -1;
        if (exec_err(c, migrations[v], err, errlen) < 0 || exec_err(c, set, err, errlen) < 0 ||
            exec_err(c, "COMMIT", err, errlen) < 0) {
            sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
            return -1;
        }
    }
    return 0;
}

controldb *controldb_open(const char *path, int fast, char *err, size_t errlen)
{
    controldb *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        err_set(err, errlen, "out of memory");
        return NULL;
    }
    str_copy(c->path, sizeof(c->path), path);
    if (sqlite3_open(path, &c->db) != SQLITE_OK) {
        err_set(err, errlen, "cannot open %s: %s", path, sqlite3_errmsg(c->db));
        goto fail;
    }
    sqlite3_busy_timeout(c->db, 30000);
    if (exec_err(c, "PRAGMA journal_mode=WAL", err, errlen) < 0 ||
        (fast && exec_err(c, "PRAGMA synchronous=OFF", err, errlen) < 0) || migrate(c, err, errlen) < 0)
        goto fail;
    return c;
fail:
    controldb_close(&c);
    return NULL;
}

void controldb_close(controldb **db)
{
    if (db == NULL || *db == NULL)
        return;
    sqlite3_close((*db)->db);
    free(*db);
    *db = NULL;
}

sqlite3_stmt *controldb_stmt(controldb *db, enum controldb_sql which, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db->db, sql[which], -1, &st, NULL) != SQLITE_OK) {
        err_set(err, errlen, "control store: %s", sqlite3_errmsg(db->db));
        sqlite3_finalize(st);
        return NULL;
    }
    return st;
}

void controldb_done(sqlite3_stmt *st)
{
    sqlite3_finalize(st);
}

int controldb_run(controldb *db, sqlite3_stmt *st, char *err, size_t errlen)
{
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    if (rc < 0)
        err_set(err, errlen, "control store: %s", sqlite3_errmsg(db->db));
    sqlite3_finalize(st);
    return rc;
}

int controldb_begin(controldb *db, char *err, size_t errlen)
{
    if (sqlite3_exec(db->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK)
        return 0;
    err_set(err, errlen, "%s", sqlite3_errmsg(db->db));
    return -1;
}

int controldb_commit(controldb *db, char *err, size_t errlen)
{
    if (sqlite3_exec(db->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
        return 0;
    err_set(err, errlen, "%s", sqlite3_errmsg(db->db));
    return -1;
}

void controldb_rollback(controldb *db)
{
    sqlite3_exec(db->db, "ROLLBACK", NULL, NULL, NULL);
}

const char *controldb_errmsg(controldb *db)
{
    return sqlite3_errmsg(db->db);
}

int controldb_errcode(controldb *db)
{
    return sqlite3_extended_errcode(db->db);
}

int controldb_changes(controldb *db)
{
    return sqlite3_changes(db->db);
}

int64_t controldb_last_rowid(controldb *db)
{
    return sqlite3_last_insert_rowid(db->db);
}

const char *controldb_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *)t : "";
}

int64_t controldb_user_count(controldb *db, char *err, size_t errlen)
{
    sqlite3_stmt *st = controldb_stmt(db, CDB_USER_COUNT, err, errlen);
    if (st == NULL)
        return -1;
    int64_t n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    controldb_done(st);
    return n;
}

int controldb_user_add(controldb *db, const controldb_user *u, const char *token_hash, char *err, size_t errlen)
{
    sqlite3_stmt *st = controldb_stmt(db, CDB_USER_ADD, err, errlen);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, u->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, token_hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now_ms());
    sqlite3_bind_text(st, 4, u->level, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, u->sites, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, u->permissions, -1, SQLITE_STATIC);
    return controldb_run(db, st, err, errlen);
}

void controldb_user_row(sqlite3_stmt *st, controldb_user *u)
{
    str_copy(u->name, sizeof(u->name), controldb_text(st, 0));
    str_copy(u->level, sizeof(u->level), controldb_text(st, 1));
    str_copy(u->sites, sizeof(u->sites), controldb_text(st, 2));
    str_copy(u->permissions, sizeof(u->permissions), controldb_text(st, 3));
    u->enabled = sqlite3_column_int(st, 4);
    u->created_ms = sqlite3_column_int64(st, 5);
    u->keyed = sqlite3_column_int(st, 6);
}

int controldb_user_get(controldb *db, enum controldb_sql by, const char *key, controldb_user *u)
{
    sqlite3_stmt *st = controldb_stmt(db, by, NULL, 0);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int r = sqlite3_step(st), found = 0;
    if (r == SQLITE_ROW) {
        controldb_user_row(st, u);
        found = 1;
    } else if (r != SQLITE_DONE) {
        found = -1;
    }
    controldb_done(st);
    return found;
}

int controldb_user_set(controldb *db, const controldb_user *u, char *err, size_t errlen)
{
    sqlite3_stmt *st = controldb_stmt(db, CDB_USER_SET, err, errlen);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, u->permissions, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, u->enabled);
    sqlite3_bind_text(st, 3, u->name, -1, SQLITE_STATIC);
    return controldb_run(db, st, err, errlen);
}

int controldb_user_set_token(controldb *db, const char *name, const char *token_hash, char *err, size_t errlen)
{
    sqlite3_stmt *st = controldb_stmt(db, CDB_USER_SET_TOKEN, err, errlen);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, token_hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    return controldb_run(db, st, err, errlen);
}

int64_t controldb_count(controldb *db, enum controldb_sql which, int64_t arg, char *err, size_t errlen)
{
    sqlite3_stmt *st = controldb_stmt(db, which, err, errlen);
    if (st == NULL)
        return -1;
    if (sqlite3_bind_parameter_count(st) > 0)
        sqlite3_bind_int64(st, 1, arg);
    int64_t n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    if (n < 0)
        err_set(err, errlen, "control store: %s", sqlite3_errmsg(db->db));
    controldb_done(st);
    return n;
}

void controldb_audit(controldb *db, const controldb_audit_row *a)
{
    sqlite3_stmt *st = controldb_stmt(db, CDB_AUDIT_ADD, NULL, 0);
    if (st == NULL)
        return;
    sqlite3_bind_int64(st, 1, now_ms());
    sqlite3_bind_text(st, 2, a->user, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, a->verb, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, a->detail ? a->detail : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, a->peer ? a->peer : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, a->result ? a->result : "ok", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 7, a->status);
    controldb_run(db, st, NULL, 0);
}

int controldb_outbox_put(controldb *db, const char *job_id, const uint8_t *request, size_t len, char *err,
                         size_t errlen)
{
    sqlite3_stmt *st = controldb_stmt(db, CDB_OUTBOX_PUT, err, errlen);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, request, (int)len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now_ms());
    return controldb_run(db, st, err, errlen);
}
