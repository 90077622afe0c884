/* store: the patron store's schema, its migrations, opening it, and its
 * statement table (every statement any store_* function runs). The
 * functions on patrons are in store_patrons.c, reference data in
 * store_refdata.c, before-images and undo in store_undo.c, record hashes
 * in store_hashes.c; what they share is store_int.h. */
#include "store_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Schema version 1. Changing it: add a migration step keyed on
 * PRAGMA user_version and describe it in docs/STORE.md. Every statement on
 * these tables is in the statement table below. */
static const char *schema_fixed =
    "CREATE TABLE IF NOT EXISTS sites(\n"
    "  short_name TEXT PRIMARY KEY,\n"
    "  name TEXT NOT NULL,\n"
    "  media INTEGER NOT NULL DEFAULT 1,\n"
    "  default_access_level TEXT NOT NULL DEFAULT '');\n"
    "CREATE TABLE IF NOT EXISTS patron_types(name TEXT PRIMARY KEY, created_job TEXT);\n"
    "CREATE TABLE IF NOT EXISTS access_levels(name TEXT PRIMARY KEY);\n"
    "CREATE TABLE IF NOT EXISTS homerooms(site_short_name TEXT NOT NULL, name TEXT NOT NULL,\n"
    "  created_job TEXT, PRIMARY KEY(site_short_name, name));\n"
    "CREATE TABLE IF NOT EXISTS job_markers(job_id TEXT NOT NULL, step TEXT NOT NULL,\n"
    "  result BLOB, done_ms INTEGER, PRIMARY KEY(job_id, step));\n"
    "CREATE TABLE IF NOT EXISTS job_changes(job_id TEXT NOT NULL, seq INTEGER NOT NULL,\n"
    "  patron_id INTEGER NOT NULL, op INTEGER NOT NULL, before BLOB,\n"
    "  PRIMARY KEY(job_id, seq));\n";

/* Tables of the patron rules (docs/RULES.md), added to version 1 stores as
 * they are opened (every statement is IF NOT EXISTS). */
static const char *schema_rules =
    "CREATE TABLE IF NOT EXISTS resource_groups(name TEXT PRIMARY KEY, created_job TEXT);\n"
    "CREATE TABLE IF NOT EXISTS ref_defaults(kind TEXT PRIMARY KEY, name TEXT NOT NULL);\n"
    "CREATE TABLE IF NOT EXISTS patron_sites(\n"
    "  patron_id INTEGER NOT NULL REFERENCES patrons(id) ON DELETE CASCADE,\n"
    "  site_short_name TEXT NOT NULL, created_job TEXT,\n"
    "  PRIMARY KEY(patron_id, site_short_name)) WITHOUT ROWID;\n"
    /* homerooms are found without regard to case, per site */
    "CREATE INDEX IF NOT EXISTS homerooms_nocase ON homerooms(site_short_name, name COLLATE NOCASE);\n";

/* The unchanged-record memo (docs/RULES.md, "Records that did not
 * change"): ref_gen counts changes to the reference data the rules read
 * (sites, patron types, access levels, resource groups, defaults) other
 * than the names a job creates for its own records; a memo made under one
 * generation is not trusted under another. Added to version 1 stores as
 * they are opened (patrons.src_hash: store_open). */
static const char *schema_memo =
    "CREATE TABLE IF NOT EXISTS store_meta(k TEXT PRIMARY KEY, v INTEGER NOT NULL);\n"
    "INSERT OR IGNORE INTO store_meta(k,v) VALUES('ref_gen',0);\n"
#define GEN_BUMP "BEGIN UPDATE store_meta SET v=v+1 WHERE k='ref_gen'; END;\n"
    "CREATE TRIGGER IF NOT EXISTS gen_sites_i AFTER INSERT ON sites " GEN_BUMP
    "CREATE TRIGGER IF NOT EXISTS gen_sites_u AFTER UPDATE ON sites " GEN_BUMP
    "CREATE TRIGGER IF NOT EXISTS gen_sites_d AFTER DELETE ON sites " GEN_BUMP
    "CREATE TRIGGER IF NOT EXISTS gen_types_i AFTER INSERT ON patron_types WHEN NEW.created_job IS NULL " GEN_BUMP
    "CREATE TRIGGER IF NOT EXISTS gen_types_u AFTER UPDATE ON patron_types " GEN_BUMP
    "CREATE TRIGGER IF NOT EXISTS gen_types_d AFTER DELETE ON patron_types " GEN_BUMP
    "CREATE TRIGGER IF NOT EXISTS gen_levels_i AFTER INSERT ON access_levels " GEN_BUMP
    "CREATE TRIGGER IF NOT EXISTS gen_levels_u AFTER UPDATE ON access_levels " GEN_BUMP
    "CREATE TRIGGER IF NOT EXISTS gen_levels_d AFTER DELETE ON access_levels " GEN_BUMP
    "CREATE TRIGGER IF NOT EXISTS gen_groups_i AFTER INSERT ON resource_groups WHEN NEW.created_job IS NULL " GEN_BUMP
    "CREATE TRIGGER IF NOT EXISTS gen_groups_u AFTER UPDATE ON resource_groups " GEN_BUMP
    "CREATE TRIGGER IF NOT EXISTS gen_groups_d AFTER DELETE ON resource_groups " GEN_BUMP
    "CREATE TRIGGER IF NOT EXISTS gen_defaults_i AFTER INSERT ON ref_defaults " GEN_BUMP
    "CREATE TRIGGER IF NOT EXISTS gen_defaults_u AFTER UPDATE ON ref_defaults " GEN_BUMP
    "CREATE TRIGGER IF NOT EXISTS gen_defaults_d AFTER DELETE ON ref_defaults " GEN_BUMP;
#undef GEN_BUMP

/* The finishing step (docs/SAFETY.md): the few patrons missing from the
 * file are found without scanning every row. Added to version 1 stores as
 * they are opened. */
static const char *schema_safety =
    "CREATE INDEX IF NOT EXISTS patrons_missing ON patrons(missing_since) WHERE missing_since IS NOT NULL;\n";

/* The patrons' key indexes: a bulk load into an empty table drops them
 * and builds them again once the rows are in (store_bulk_begin/end). Rows
 * arrive in file order, so keys arrive at random places in these; the
 * site and user name indexes take rows at the end of a few ranges (or not
 * at all) and are kept up to date as the rows go in. */
const char *const store_patron_key_indexes =
    "CREATE UNIQUE INDEX IF NOT EXISTS patrons_district_id ON patrons(district_id) WHERE district_id <> '';\n"
    "CREATE UNIQUE INDEX IF NOT EXISTS patrons_barcode ON patrons(barcode) WHERE barcode <> '';\n";
static const char *patron_indexes =
    "CREATE INDEX IF NOT EXISTS patrons_site ON patrons(site_short_name);\n"
    "CREATE INDEX IF NOT EXISTS patrons_username_nocase ON patrons(username COLLATE NOCASE) WHERE username <> '';\n";

/* The record hashes of a schedule's Incremental runs (docs/SCHEDULES.md;
 * lib/store_hashes.h): one row per record of the schedule's last applied
 * run that reached the store, and which job left them ("no row": no
 * previous run, process everything). Changing them: add columns with
 * defaults; the broker reads both. */
static const char *schema_hashes =
    "CREATE TABLE IF NOT EXISTS record_hashes(schedule_id TEXT NOT NULL, key TEXT NOT NULL, hash INTEGER NOT NULL,\n"
    "  PRIMARY KEY(schedule_id, key)) WITHOUT ROWID;\n"
    "CREATE TABLE IF NOT EXISTS record_hash_runs(schedule_id TEXT PRIMARY KEY, job_id TEXT NOT NULL,\n"
    "  records INTEGER NOT NULL, done_ms INTEGER NOT NULL, fired_ms INTEGER NOT NULL DEFAULT 0);\n";

static int build_patrons_sql(strbuf *sb)
{
    sb_puts(sb, "CREATE TABLE IF NOT EXISTS patrons(\n  id INTEGER PRIMARY KEY");
    for (int f = 0; f < PF__COUNT; f++)
        sb_printf(sb, ",\n  %s TEXT NOT NULL DEFAULT ''", patron_fields[f].column);
    sb_puts(sb, ",\n  row_hash INTEGER NOT NULL DEFAULT 0"
                ",\n  checkouts INTEGER NOT NULL DEFAULT 0"
                ",\n  fines_cents INTEGER NOT NULL DEFAULT 0"
                ",\n  missing_since TEXT"
                ",\n  created_job TEXT"
                ",\n  updated_job TEXT"
                ",\n  src_hash INTEGER NOT NULL DEFAULT 0);\n");
    sb_puts(sb, store_patron_key_indexes);
    sb_puts(sb, patron_indexes);
    return sb->buf ? 0 : -1;
}

/* ---- The statement table ---- */

/* The patron fields an index of patrons reads (the CREATE INDEX lines above). */
int store_field_indexed(int f)
{
    return f == PF_DISTRICT_ID || f == PF_BARCODE || f == PF_SITE_SHORT_NAME || f == PF_USERNAME;
}

static const char *const stmt_sql[ST__COUNT] = {
    [ST_MARKER_GET] = "SELECT result FROM job_markers WHERE job_id=? AND step=?",
    [ST_DELETE] = "DELETE FROM patrons WHERE id=?",
    [ST_MARKER_PUT] = "INSERT OR REPLACE INTO job_markers(job_id,step,result,done_ms) VALUES(?,?,?,?)",
    [ST_REF_FIND + STORE_REF_PATRON_TYPE] = "SELECT name FROM patron_types WHERE name=?1 COLLATE NOCASE ORDER BY name=?1 DESC LIMIT 1",
    [ST_REF_FIND + STORE_REF_ACCESS_LEVEL] = "SELECT name FROM access_levels WHERE name=?1 COLLATE NOCASE ORDER BY name=?1 DESC LIMIT 1",
    [ST_REF_FIND + STORE_REF_RESOURCE_GROUP] = "SELECT name FROM resource_groups WHERE name=?1 COLLATE NOCASE ORDER BY name=?1 DESC LIMIT 1",
    [ST_REF_ADD + STORE_REF_PATRON_TYPE] = "INSERT INTO patron_types(name,created_job) VALUES(?1,?2)",
    [ST_REF_ADD + STORE_REF_ACCESS_LEVEL] = "INSERT INTO access_levels(name) VALUES(?1)",
    [ST_REF_ADD + STORE_REF_RESOURCE_GROUP] = "INSERT INTO resource_groups(name,created_job) VALUES(?1,?2)",
    [ST_REF_NAMES + STORE_REF_PATRON_TYPE] = "SELECT name FROM patron_types ORDER BY name",
    [ST_REF_NAMES + STORE_REF_ACCESS_LEVEL] = "SELECT name FROM access_levels ORDER BY name",
    [ST_REF_NAMES + STORE_REF_RESOURCE_GROUP] = "SELECT name FROM resource_groups ORDER BY name",
    [ST_REF_DEFAULT] = "SELECT name FROM ref_defaults WHERE kind=?",
    [ST_REF_SET_DEFAULT] = "INSERT OR REPLACE INTO ref_defaults(kind,name) VALUES(?,?)",
    [ST_SITE_LEVEL] = "UPDATE sites SET default_access_level=? WHERE short_name=?",
    [ST_SITES] = "SELECT short_name,name,media,default_access_level,school_number FROM sites ORDER BY short_name",
    [ST_SITE_NUMBER] = "UPDATE sites SET school_number=? WHERE short_name=?",
    [ST_SITE_UPSERT] = "INSERT INTO sites(short_name,name,media) VALUES(?,?,?) "
                       "ON CONFLICT(short_name) DO UPDATE SET name=excluded.name, media=excluded.media",
    [ST_HOMEROOM_FIND] = "SELECT 1 FROM homerooms WHERE site_short_name=? AND name=? COLLATE NOCASE LIMIT 1",
    [ST_HOMEROOM_ADD] = "INSERT INTO homerooms(site_short_name,name,created_job) VALUES(?,?,?)",
    [ST_HOMEROOMS] = "SELECT site_short_name,name FROM homerooms",
    [ST_USERNAME_TAKEN] = "SELECT 1 FROM patrons WHERE username=? COLLATE NOCASE AND username<>'' AND id<>? LIMIT 1",
    [ST_ASSOC_HAS] = "SELECT 1 FROM patron_sites WHERE patron_id=? AND site_short_name=?",
    [ST_ASSOC_ADD] = "INSERT OR IGNORE INTO patron_sites(patron_id,site_short_name,created_job) VALUES(?,?,?)",
    [ST_ASSOC_DEL] = "DELETE FROM patron_sites WHERE patron_id=? AND site_short_name=?",
    [ST_ASSOC_LIST] = "SELECT site_short_name FROM patron_sites WHERE patron_id=? ORDER BY site_short_name",
    [ST_MEMO_FIND] = "SELECT id,row_hash,src_hash,site_short_name FROM patrons WHERE district_id=? AND district_id<>''",
    [ST_MEMO_SCAN] = "SELECT id,row_hash,src_hash,site_short_name,district_id FROM patrons WHERE id>=? ORDER BY id",
    [ST_REF_GEN] = "SELECT v FROM store_meta WHERE k='ref_gen'",
    [ST_MEMO_SET] = "UPDATE patrons SET src_hash=?1 WHERE id=?2 AND row_hash=?3",
    [ST_PATRONS_ANY] = "SELECT 1 FROM patrons LIMIT 1",
    [ST_EXTRA_GET] = "SELECT checkouts,fines_cents,coalesce(missing_since,''),coalesce(created_job,''),"
                     "coalesce(updated_job,'') FROM patrons WHERE id=?",
    [ST_SET_MISSING] = "UPDATE patrons SET missing_since=nullif(?,''), updated_job=nullif(?,'') WHERE id=?",
    [ST_CHANGE_PUT] = "INSERT OR REPLACE INTO job_changes(job_id,seq,patron_id,op,before) VALUES(?,?,?,?,?)",
    [ST_CHANGE_DROP] = "DELETE FROM job_changes WHERE job_id=? AND seq=?",
    [ST_CHANGES_OF_JOB] = "SELECT patron_id,op,before FROM job_changes WHERE job_id=? ORDER BY seq DESC",
    [ST_MISSING_IDS] = "SELECT id FROM patrons WHERE missing_since IS NOT NULL",
    [ST_HASHES_CLEAR] = "DELETE FROM record_hashes WHERE schedule_id=?",
    [ST_HASH_RUN_CLEAR] = "DELETE FROM record_hash_runs WHERE schedule_id=?",
    [ST_HASH_PUT] = "INSERT OR REPLACE INTO record_hashes(schedule_id,key,hash) VALUES(?,?,?)",
    [ST_HASH_RUN_PUT] = "INSERT OR REPLACE INTO record_hash_runs(schedule_id,job_id,records,done_ms,fired_ms) "
                        "VALUES(?,?,?,?,?)",
    [ST_HASH_RUN_FIRED] = "SELECT fired_ms FROM record_hash_runs WHERE schedule_id=?",
    [ST_HASH_RUN_JOB] = "SELECT job_id FROM record_hash_runs WHERE schedule_id=?",
    [ST_HASHES_OF] = "SELECT key, hash FROM record_hashes WHERE schedule_id=?",
    [ST_HASH_TABLE] = "SELECT 1 FROM sqlite_master WHERE type='table' AND name='record_hash_runs'",
};

/* The statements that read or write every patron field, built from the
 * field table into q. */
static void stmt_build(int which, strbuf *q)
{
    /* The "<> ''" terms let SQLite use the partial unique indexes. */
    static const char *by[3] = {"district_id=? AND district_id<>''", "barcode=? AND barcode<>''", "id=?"};
    const char *taken = which == ST_TAKEN_BARCODE ? "barcode" : "district_id";
    int n = 0;
    switch (which) {
    case ST_FIND_DISTRICT_ID:
    case ST_FIND_BARCODE:
    case ST_FIND_ID:
        sb_puts(q, "SELECT id,checkouts,fines_cents,row_hash");
        for (int f = 0; f < PF__COUNT; f++)
            sb_printf(q, ",%s", patron_fields[f].column);
        sb_printf(q, " FROM patrons WHERE %s", by[which - ST_FIND_DISTRICT_ID]);
        break;
    case ST_TAKEN_DISTRICT_ID:
    case ST_TAKEN_BARCODE:
        sb_printf(q, "SELECT 1 FROM patrons WHERE %s=? AND %s<>'' AND id<>? LIMIT 1", taken, taken);
        break;
    case ST_INSERT:
    case ST_RESTORE_INSERT:
        sb_puts(q, "INSERT INTO patrons(");
        for (int f = 0; f < PF__COUNT; f++)
            sb_printf(q, "%s,", patron_fields[f].column);
        sb_puts(q, which == ST_INSERT ? "row_hash,created_job,updated_job,src_hash) VALUES("
                                      : "row_hash,missing_since,updated_job,checkouts,fines_cents,id,created_job) VALUES(");
        for (int f = 0; f < PF__COUNT; f++)
            sb_puts(q, "?,");
        sb_puts(q, which == ST_INSERT ? "?,?,?,?)" : "?,nullif(?,''),nullif(?,''),?,?,?,nullif(?,''))");
        break;
    case ST_UPDATE:
    case ST_RESTORE_UPDATE:
        sb_puts(q, "UPDATE patrons SET ");
        for (int f = 0; f < PF__COUNT; f++)
            sb_printf(q, "%s=?,", patron_fields[f].column);
        /* A restore keeps checkouts and fines: circulation's, never a job's. */
        sb_puts(q, which == ST_UPDATE ? "row_hash=?,updated_job=?,missing_since=NULL,src_hash=? WHERE id=?"
                                      : "row_hash=?,missing_since=nullif(?,''),updated_job=nullif(?,'') WHERE id=?");
        break;
    case ST_UPDATE_KEYS_SAME:
        /* ST_UPDATE, numbered as it, without the columns the indexes read:
         * SQLite rewrites an index entry for every column set, even to the
         * value it had (half the time of a next-day update). */
        sb_puts(q, "UPDATE patrons SET ");
        for (int f = 0; f < PF__COUNT; f++)
            if (!store_field_indexed(f))
                sb_printf(q, "%s=?%d,", patron_fields[f].column, f + 1);
        n = PF__COUNT;
        sb_printf(q, "row_hash=?%d,updated_job=?%d,missing_since=NULL,src_hash=?%d WHERE id=?%d", n + 1, n + 2, n + 3,
                  n + 4);
        break;
    default:
        sb_puts(q, stmt_sql[which] ? stmt_sql[which] : "");
        break;
    }
}

/* Whether a statement writes (a read-only store has none of those). */
static int stmt_writes(int which)
{
    static const int writes[] = {ST_REF_SET_DEFAULT, ST_SITE_LEVEL, ST_SITE_UPSERT, ST_HOMEROOM_ADD,
                                 ST_ASSOC_ADD,       ST_ASSOC_DEL,  ST_MEMO_SET};
    if ((which >= ST_INSERT && which <= ST_MARKER_PUT) || (which >= ST_REF_ADD && which < ST_REF_ADD + 3) ||
        (which >= ST_SET_MISSING && which <= ST_CHANGE_DROP) || (which >= ST_HASHES_CLEAR && which <= ST_HASH_RUN_PUT))
        return 1;
    for (size_t i = 0; i < sizeof(writes) / sizeof(writes[0]); i++)
        if (writes[i] == which)
            return 1;
    return 0;
}

static int prep(store *s, const char *sql, sqlite3_stmt **st, char *err, size_t errlen)
{
    if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK) {
        err_set(err, errlen, "store: preparing statement: %s", sqlite3_errmsg(s->db));
        return -1;
    }
    return 0;
}

/* Prepare statement which into the table (if it is not yet). 0 / -1. */
static int stmt_ready(store *s, int which, char *err, size_t errlen)
{
    if (which < 0 || which >= ST__COUNT || (s->readonly && stmt_writes(which))) {
        err_set(err, errlen, "store: no statement %d%s", which, s->readonly ? " (read-only)" : "");
        return -1;
    }
    if (s->st[which] != NULL)
        return 0;
    strbuf q;
    sb_init(&q);
    stmt_build(which, &q);
    int rc = q.buf ? prep(s, sb_str(&q), &s->st[which], err, errlen) : -1;
    if (q.buf == NULL)
        err_set(err, errlen, "out of memory");
    sb_free(&q);
    return rc;
}

sqlite3_stmt *store_stmt(store *s, enum store_stmt which, char *err, size_t errlen)
{
    if (stmt_ready(s, which, err, errlen) < 0)
        return NULL;
    sqlite3_reset(s->st[which]);
    sqlite3_clear_bindings(s->st[which]);
    return s->st[which];
}

int store_step_done(store *s, sqlite3_stmt *st, const char *what, char *err, size_t errlen)
{
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) {
        err_set(err, errlen, "store: %s: %s", what, sqlite3_errmsg(s->db));
        sqlite3_reset(st);
        return -1;
    }
    sqlite3_reset(st);
    return 0;
}

int store_step_row(store *s, sqlite3_stmt *st, const char *what, char *err, size_t errlen)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    err_set(err, errlen, "store: %s: %s", what, sqlite3_errmsg(s->db));
    sqlite3_reset(st);
    return -1;
}

/* Bind st's parameters from 1 on as spec says: 't' a string (const char
 * *; NULL binds NULL), 'i' an int64_t, 'b' a blob (const void *, then its
 * size_t length; NULL binds NULL). */
static void bind_va(sqlite3_stmt *st, const char *spec, va_list ap)
{
    for (int k = 1; spec[k - 1] != '\0'; k++) {
        if (spec[k - 1] == 'i') {
            sqlite3_bind_int64(st, k, va_arg(ap, int64_t));
        } else if (spec[k - 1] == 'b') {
            const void *b = va_arg(ap, const void *);
            size_t len = va_arg(ap, size_t);
            if (b != NULL)
                sqlite3_bind_blob(st, k, b, (int)len, SQLITE_STATIC);
        } else {
            const char *t = va_arg(ap, const char *);
            if (t != NULL)
                sqlite3_bind_text(st, k, t, -1, SQLITE_STATIC);
        }
    }
}

int store_run(store *s, int which, const char *what, char *err, size_t errlen, const char *spec, ...)
{
    sqlite3_stmt *st = store_stmt(s, which, err, errlen);
    if (st == NULL)
        return -1;
    va_list ap;
    va_start(ap, spec);
    bind_va(st, spec, ap);
    va_end(ap);
    return store_step_done(s, st, what, err, errlen);
}

int store_ask(store *s, int which, const char *what, char *err, size_t errlen, const char *spec, ...)
{
    sqlite3_stmt *st = store_stmt(s, which, err, errlen);
    if (st == NULL)
        return -1;
    va_list ap;
    va_start(ap, spec);
    bind_va(st, spec, ap);
    va_end(ap);
    int r = store_step_row(s, st, what, err, errlen);
    sqlite3_reset(st);
    return r;
}

void store_bind_fields(sqlite3_stmt *st, const patron_rec *rec)
{
    for (int f = 0; f < PF__COUNT; f++) {
        const char *v = patron_rec_get(rec, f);
        sqlite3_bind_text(st, f + 1, v, -1, SQLITE_STATIC);
    }
}

void store_col_copy(sqlite3_stmt *st, int col, char *out, size_t outlen)
{
    const unsigned char *v = sqlite3_column_text(st, col);
    str_copy(out, outlen, v ? (const char *)v : "");
}

/* ---- Opening ---- */

/* A store made before the memo gains patrons.src_hash (0: no memo). */
static int has_column(store *s, const char *probe)
{
    sqlite3_stmt *q = NULL;
    int ok = sqlite3_prepare_v2(s->db, probe, -1, &q, NULL) == SQLITE_OK;
    sqlite3_finalize(q);
    return ok;
}

/* A column added to a table of an older store, unless there. */
static int add_column(store *s, const char *probe, const char *alter, char *err, size_t errlen)
{
    if (has_column(s, probe))
        return 0;
    char e[ERRLEN];
    if (store_exec(s, alter, e, sizeof(e)) == 0)
        return 0;
    /* Another process may have added it meanwhile. */
    if (has_column(s, probe))
        return 0;
    err_set(err, errlen, "%s", e);
    return -1;
}

static int add_memo_column(store *s, char *err, size_t errlen)
{
    return add_column(s, "SELECT src_hash FROM patrons LIMIT 0",
                      "ALTER TABLE patrons ADD COLUMN src_hash INTEGER NOT NULL DEFAULT 0", err, errlen);
}

/* Whether a failed statement may be tried again (after 50 ms): another
 * process held the lock past the busy handler (600 times at most). */
static int may_retry(store *s, int *tries)
{
    int code = sqlite3_errcode(s->db);
    return (code == SQLITE_BUSY || code == SQLITE_LOCKED) && ++*tries <= 600;
}

/* The schema, created (or completed: every statement is IF NOT EXISTS) in
 * one transaction, with the migrations. 0 / -1. */
static int create_schema(store *s, char *err, size_t errlen)
{
    strbuf sb;
    sb_init(&sb);
    sb_puts(&sb, "BEGIN IMMEDIATE;\n");
    sb_puts(&sb, schema_fixed);
    build_patrons_sql(&sb);
    sb_puts(&sb, schema_rules);
    sb_puts(&sb, schema_safety);
    sb_puts(&sb, schema_memo);
    sb_puts(&sb, schema_hashes);
    sb_puts(&sb, "PRAGMA user_version=1;\nCOMMIT;");
    int tries = 0;
    int rc = store_exec(s, sb_str(&sb), err, errlen);
    while (rc < 0) {
        int again = may_retry(s, &tries);
        store_rollback(s);
        if (!again)
            break;
        usleep(50 * 1000);
        rc = store_exec(s, sb_str(&sb), err, errlen);
    }
    sb_free(&sb);
    if (rc < 0)
        return -1;
    /* A site's school number (the SIS's code for it: site import's
     * school_number column), which the Patron Import Converter maps. */
    return add_memo_column(s, err, errlen) < 0 ||
                   add_column(s, "SELECT school_number FROM sites LIMIT 0",
                              "ALTER TABLE sites ADD COLUMN school_number TEXT NOT NULL DEFAULT ''", err, errlen) < 0
               ? -1
               : 0;
}

/* The connection's settings. 0 / -1. */
static int set_pragmas(store *s, int cache_mb, char *err, size_t errlen)
{
    sqlite3_busy_timeout(s->db, 120000);
    char pragmas[256];
    snprintf(pragmas, sizeof(pragmas), "PRAGMA cache_size=-%d; PRAGMA foreign_keys=ON;", cache_mb * 1024);
    if (store_exec(s, pragmas, err, errlen) < 0)
        return -1;
    /* A reader (a plan task: a new process each time) reads the store file
     * through the page cache the kernel already holds, not into a cache
     * of its own that starts cold. */
    if (s->readonly)
        return store_exec(s, "PRAGMA mmap_size=2147483648", err, errlen);
    /* Switching to WAL while another process opens the store can answer
     * "locked" without waiting on the busy handler: retry. */
    int tries = 0;
    while (store_exec(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", err, errlen) < 0) {
        if (!may_retry(s, &tries))
            return -1;
        usleep(50 * 1000);
    }
    return 0;
}

/* The statements every store uses, prepared as it opens (which also checks
 * that the file holds the store's tables). 0 / -1. */
static int prepare_eager(store *s, char *err, size_t errlen)
{
    for (int k = ST_FIND_DISTRICT_ID; k <= ST_MARKER_PUT; k++)
        if (!(s->readonly && stmt_writes(k)) && stmt_ready(s, k, err, errlen) < 0)
            return -1;
    return 0;
}

store *store_open(const char *path, int cache_mb, int flags, char *err, size_t errlen)
{
    /* Every process of the cluster uses SQLite from one thread (ZeroMQ's
     * threads never touch it): no mutexes and no memory statistics, which
     * cost a lock per allocation and per page. Only possible before SQLite
     * is first used in the process; later (SQLITE_MISUSE) it is left as is. */
    static int configured;
    if (!configured) {
        configured = 1;
        if (sqlite3_config(SQLITE_CONFIG_SINGLETHREAD) == SQLITE_OK)
            sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    }
    store *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        err_set(err, errlen, "out of memory");
        return NULL;
    }
    s->readonly = (flags & STORE_READONLY) != 0;
    int oflags = s->readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    if (sqlite3_open_v2(path, &s->db, oflags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        err_set(err, errlen, "cannot open store %s: %s", path, s->db ? sqlite3_errmsg(s->db) : "no memory");
        goto err;
    }
    if (set_pragmas(s, cache_mb, err, errlen) < 0)
        goto err;
    if (!s->readonly && create_schema(s, err, errlen) < 0)
        goto err;
    if (prepare_eager(s, err, errlen) < 0)
        goto err;
    return s;
err:
    store_close(&s);
    return NULL;
}

void store_close(store **sp)
{
    if (sp == NULL || *sp == NULL)
        return;
    store *s = *sp;
    for (int k = 0; k < ST__COUNT; k++)
        sqlite3_finalize(s->st[k]);
    sqlite3_close(s->db);
    free(s);
    *sp = NULL;
}

/* ---- Statements and transactions ---- */

void store_scan_stop(store *s)
{
    if (s->scan_on == 1)
        sqlite3_reset(s->st[ST_MEMO_SCAN]);
    s->scan_on = 0;
}


int store_exec(store *s, const char *sql, char *err, size_t errlen)
{
    store_scan_stop(s);
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        err_set(err, errlen, "store: %s", msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

int store_begin(store *s, int immediate, char *err, size_t errlen)
{
    return store_exec(s, immediate ? "BEGIN IMMEDIATE" : "BEGIN", err, errlen);
}

int store_commit(store *s, char *err, size_t errlen)
{
    return store_exec(s, "COMMIT", err, errlen);
}

void store_rollback(store *s)
{
    store_scan_stop(s);
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

int store_refused(const store *s)
{
    return sqlite3_errcode(s->db) == SQLITE_CONSTRAINT;
}

const char *store_errmsg(const store *s)
{
    return sqlite3_errmsg(s->db);
}

int store_statement_runs(store *s, const char *has, const char *lacks)
{
    int n = 0;
    for (sqlite3_stmt *q = sqlite3_next_stmt(s->db, NULL); q != NULL; q = sqlite3_next_stmt(s->db, q)) {
        const char *sql = sqlite3_sql(q);
        if (sql != NULL && strstr(sql, has) != NULL && (lacks == NULL || strstr(sql, lacks) == NULL))
            n += sqlite3_stmt_status(q, SQLITE_STMTSTATUS_RUN, 0);
    }
    return n;
}

int store_patrons_empty(store *s, char *err, size_t errlen)
{
    sqlite3_stmt *q = store_stmt(s, ST_PATRONS_ANY, err, errlen);
    if (q == NULL)
        return -1;
    int r = store_step_row(s, q, "looking for a patron", err, errlen);
    sqlite3_reset(q);
    return r < 0 ? -1 : r == 0;
}

int store_bulk_begin(store *s, char *err, size_t errlen)
{
    int empty = store_patrons_empty(s, err, errlen);
    if (empty <= 0)
        return empty;
    if (store_exec(s, "DROP INDEX IF EXISTS patrons_district_id; DROP INDEX IF EXISTS patrons_barcode;", err,
                   errlen) < 0)
        return -1;
    return 1;
}

int store_bulk_end(store *s, char *err, size_t errlen)
{
    return store_exec(s, store_patron_key_indexes, err, errlen);
}
