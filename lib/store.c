/* store: schema, pragmas and the prepared statements of the patron store. */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

struct store {
    sqlite3 *db;
    sqlite3_stmt *find[3]; /* by district id, by barcode, by id */
    sqlite3_stmt *insert, *update, *del, *taken[PF__COUNT];
    sqlite3_stmt *update_keys_same; /* update, leaving the columns the indexes read (keys_same) */
    sqlite3_stmt *marker_get, *marker_put;
    int readonly;
    sqlite3_stmt *rq[32]; /* the rules' statements, prepared on first use (rq_sql) */
    sqlite3_stmt *sx[8];  /* the safety step's and undo's, prepared on first use (sx_get) */
    /* store_memo_find's walk of the patrons in id order (RQ_MEMO_SCAN),
     * inside one read transaction only (nothing written in it): scan_on
     * 1, it stands on row scan_id, the first row whose id is scan_lo or
     * more; 2, there is no such row; 0, put down. */
    int scan_on;
    int64_t scan_lo, scan_id;
};

/* Schema version 1. Changing it: add a migration step keyed on
 * PRAGMA user_version and describe it in docs/STORE.md. */
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
static const char *patron_key_indexes =
    "CREATE UNIQUE INDEX IF NOT EXISTS patrons_district_id ON patrons(district_id) WHERE district_id <> '';\n"
    "CREATE UNIQUE INDEX IF NOT EXISTS patrons_barcode ON patrons(barcode) WHERE barcode <> '';\n";
static const char *patron_indexes =
    "CREATE INDEX IF NOT EXISTS patrons_site ON patrons(site_short_name);\n"
    "CREATE INDEX IF NOT EXISTS patrons_username_nocase ON patrons(username COLLATE NOCASE) WHERE username <> '';\n";

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
    sb_puts(sb, patron_key_indexes);
    sb_puts(sb, patron_indexes);
    return sb->buf ? 0 : -1;
}

static int prep(store *s, const char *sql, sqlite3_stmt **st, char *err, size_t errlen)
{
    if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK) {
        err_set(err, errlen, "store: preparing statement: %s", sqlite3_errmsg(s->db));
        return -1;
    }
    return 0;
}

/* The patron fields an index of patrons reads (the CREATE INDEX lines above). */
static int field_indexed(int f)
{
    return f == PF_DISTRICT_ID || f == PF_BARCODE || f == PF_SITE_SHORT_NAME || f == PF_USERNAME;
}

/* Whether a and b agree in every field an index of patrons reads. */
static int keys_same(const patron_rec *a, const patron_rec *b)
{
    for (int f = 0; f < PF__COUNT; f++)
        if (field_indexed(f) && strcmp(patron_rec_get(a, f), patron_rec_get(b, f)) != 0)
            return 0;
    return 1;
}

static int prepare_all(store *s, char *err, size_t errlen)
{
    strbuf cols, q;
    sb_init(&cols);
    sb_init(&q);
    for (int f = 0; f < PF__COUNT; f++)
        sb_printf(&cols, "%s%s", f ? "," : "", patron_fields[f].column);
    int rc = -1;
    /* The "<> ''" terms let SQLite use the partial unique indexes. */
    static const char *by[3] = {"district_id=? AND district_id<>''", "barcode=? AND barcode<>''", "id=?"};
    for (int k = 0; k < 3; k++) {
        sb_reset(&q);
        sb_printf(&q, "SELECT id,checkouts,fines_cents,row_hash,%s FROM patrons WHERE %s", sb_str(&cols), by[k]);
        if (prep(s, sb_str(&q), &s->find[k], err, errlen) < 0)
            goto out;
    }
    if (prep(s, "SELECT result FROM job_markers WHERE job_id=? AND step=?", &s->marker_get, err, errlen) < 0)
        goto out;
    for (int f = 0; f < PF__COUNT; f++) {
        if (f != PF_BARCODE && f != PF_DISTRICT_ID)
            continue;
        sb_reset(&q);
        sb_printf(&q, "SELECT 1 FROM patrons WHERE %s=? AND %s<>'' AND id<>? LIMIT 1", patron_fields[f].column,
                  patron_fields[f].column);
        if (prep(s, sb_str(&q), &s->taken[f], err, errlen) < 0)
            goto out;
    }
    if (s->readonly) {
        rc = 0;
        goto out;
    }
    sb_reset(&q);
    sb_printf(&q, "INSERT INTO patrons(%s,row_hash,created_job,updated_job,src_hash) VALUES(", sb_str(&cols));
    for (int f = 0; f < PF__COUNT; f++)
        sb_puts(&q, "?,");
    sb_puts(&q, "?,?,?,?)");
    if (prep(s, sb_str(&q), &s->insert, err, errlen) < 0)
        goto out;
    sb_reset(&q);
    sb_puts(&q, "UPDATE patrons SET ");
    for (int f = 0; f < PF__COUNT; f++)
        sb_printf(&q, "%s=?,", patron_fields[f].column);
    sb_puts(&q, "row_hash=?,updated_job=?,missing_since=NULL,src_hash=? WHERE id=?");
    if (prep(s, sb_str(&q), &s->update, err, errlen) < 0)
        goto out;
    /* The same, numbered as it, without the columns the indexes read:
     * SQLite rewrites an index entry for every column set, even to the
     * value it had (half the time of a next-day update). */
    sb_reset(&q);
    sb_puts(&q, "UPDATE patrons SET ");
    for (int f = 0; f < PF__COUNT; f++)
        if (!field_indexed(f))
            sb_printf(&q, "%s=?%d,", patron_fields[f].column, f + 1);
    sb_printf(&q, "row_hash=?%d,updated_job=?%d,missing_since=NULL,src_hash=?%d WHERE id=?%d", PF__COUNT + 1,
              PF__COUNT + 2, PF__COUNT + 3, PF__COUNT + 4);
    if (prep(s, sb_str(&q), &s->update_keys_same, err, errlen) < 0)
        goto out;
    if (prep(s, "DELETE FROM patrons WHERE id=?", &s->del, err, errlen) < 0)
        goto out;
    if (prep(s, "INSERT OR REPLACE INTO job_markers(job_id,step,result,done_ms) VALUES(?,?,?,?)",
             &s->marker_put, err, errlen) < 0)
        goto out;
    rc = 0;
out:
    sb_free(&cols);
    sb_free(&q);
    return rc;
}

/* A store made before the memo gains patrons.src_hash (0: no memo). */
static int add_memo_column(store *s, char *err, size_t errlen)
{
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT src_hash FROM patrons LIMIT 0", -1, &q, NULL) == SQLITE_OK) {
        sqlite3_finalize(q);
        return 0;
    }
    sqlite3_finalize(q);
    char e[ERRLEN];
    if (store_exec(s, "ALTER TABLE patrons ADD COLUMN src_hash INTEGER NOT NULL DEFAULT 0", e, sizeof(e)) == 0)
        return 0;
    /* Another process may have added it meanwhile. */
    if (sqlite3_prepare_v2(s->db, "SELECT src_hash FROM patrons LIMIT 0", -1, &q, NULL) == SQLITE_OK) {
        sqlite3_finalize(q);
        return 0;
    }
    sqlite3_finalize(q);
    err_set(err, errlen, "%s", e);
    return -1;
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
    sqlite3_busy_timeout(s->db, 120000);
    char pragmas[256];
    snprintf(pragmas, sizeof(pragmas),
             "PRAGMA cache_size=-%d; PRAGMA foreign_keys=ON;", cache_mb * 1024);
    if (store_exec(s, pragmas, err, errlen) < 0)
        goto err;
    /* A reader (a plan task: a new process each time) reads the store file
     * through the page cache the kernel already holds, not into a cache
     * of its own that starts cold. */
    if (s->readonly && store_exec(s, "PRAGMA mmap_size=2147483648", err, errlen) < 0)
        goto err;
    if (!s->readonly) {
        /* Switching to WAL while another process opens the store can
         * answer "locked" without waiting on the busy handler: retry. */
        int tries = 0;
        while (store_exec(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", err, errlen) < 0) {
            int code = sqlite3_errcode(s->db);
            if ((code != SQLITE_BUSY && code != SQLITE_LOCKED) || ++tries > 600)
                goto err;
            usleep(50 * 1000);
        }
        strbuf sb;
        sb_init(&sb);
        sb_puts(&sb, "BEGIN IMMEDIATE;\n");
        sb_puts(&sb, schema_fixed);
        build_patrons_sql(&sb);
        sb_puts(&sb, schema_rules);
        sb_puts(&sb, schema_safety);
        sb_puts(&sb, schema_memo);
        sb_puts(&sb, "PRAGMA user_version=1;\nCOMMIT;");
        tries = 0;
        int rc = store_exec(s, sb_str(&sb), err, errlen);
        while (rc < 0) {
            int code = sqlite3_errcode(s->db);
            store_rollback(s);
            if ((code != SQLITE_BUSY && code != SQLITE_LOCKED) || ++tries > 600)
                break;
            usleep(50 * 1000);
            rc = store_exec(s, sb_str(&sb), err, errlen);
        }
        sb_free(&sb);
        if (rc < 0)
            goto err;
        if (add_memo_column(s, err, errlen) < 0)
            goto err;
    }
    if (prepare_all(s, err, errlen) < 0)
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
    sqlite3_finalize(s->find[0]);
    sqlite3_finalize(s->find[1]);
    sqlite3_finalize(s->find[2]);
    sqlite3_finalize(s->insert);
    sqlite3_finalize(s->update);
    sqlite3_finalize(s->update_keys_same);
    sqlite3_finalize(s->del);
    sqlite3_finalize(s->marker_get);
    sqlite3_finalize(s->marker_put);
    for (int f = 0; f < PF__COUNT; f++)
        sqlite3_finalize(s->taken[f]);
    for (size_t i = 0; i < sizeof(s->rq) / sizeof(s->rq[0]); i++)
        sqlite3_finalize(s->rq[i]);
    for (size_t i = 0; i < sizeof(s->sx) / sizeof(s->sx[0]); i++)
        sqlite3_finalize(s->sx[i]);
    sqlite3_close(s->db);
    free(s);
    *sp = NULL;
}

sqlite3 *store_db(store *s)
{
    return s->db;
}

/* The memo walk put down: it holds the transaction's snapshot, which
 * ends with every statement that may end the transaction. */
static void scan_stop(store *s);

int store_exec(store *s, const char *sql, char *err, size_t errlen)
{
    scan_stop(s);
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
    scan_stop(s);
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

int store_patrons_empty(store *s, char *err, size_t errlen)
{
    sqlite3_stmt *q = NULL;
    if (prep(s, "SELECT 1 FROM patrons LIMIT 1", &q, err, errlen) < 0)
        return -1;
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    if (rc == SQLITE_ROW || rc == SQLITE_DONE)
        return rc == SQLITE_DONE;
    err_set(err, errlen, "store: %s", sqlite3_errmsg(s->db));
    return -1;
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
    return store_exec(s, patron_key_indexes, err, errlen);
}

uint64_t patron_hash(const patron_rec *rec)
{
    uint64_t h = HASH64_SEED;
    for (int f = 0; f < PF__COUNT; f++) {
        const char *v = patron_rec_get(rec, f);
        h = hash64(v, strlen(v), h);
        h = hash64("\x1f", 1, h);
    }
    return h & 0x7fffffffffffffffULL; /* fits SQLite's signed integer */
}

static int find_row(store *s, sqlite3_stmt *st, const char *key, patron_rec *rec, store_patron_meta *meta,
                    char *err, size_t errlen)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        return 0;
    }
    if (rc != SQLITE_ROW) {
        err_set(err, errlen, "store: looking up '%s': %s", key, sqlite3_errmsg(s->db));
        sqlite3_reset(st);
        return -1;
    }
    meta->id = sqlite3_column_int64(st, 0);
    meta->checkouts = sqlite3_column_int64(st, 1);
    meta->fines_cents = sqlite3_column_int64(st, 2);
    meta->hash = (uint64_t)sqlite3_column_int64(st, 3);
    patron_rec_reset(rec);
    for (int f = 0; f < PF__COUNT; f++) {
        const unsigned char *v = sqlite3_column_text(st, 4 + f);
        int n = sqlite3_column_bytes(st, 4 + f);
        if (patron_rec_set(rec, f, v ? (const char *)v : "", (size_t)n, PV_VALUE) < 0) {
            sqlite3_reset(st);
            err_set(err, errlen, "out of memory");
            return -1;
        }
    }
    sqlite3_reset(st);
    return 1;
}

int store_find(store *s, int by, const char *key, patron_rec *rec, store_patron_meta *meta, char *err,
               size_t errlen)
{
    sqlite3_stmt *st = s->find[by == PF_BARCODE ? 1 : 0];
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    return find_row(s, st, key, rec, meta, err, errlen);
}

int store_get(store *s, int64_t id, patron_rec *rec, store_patron_meta *meta, char *err, size_t errlen)
{
    sqlite3_stmt *st = s->find[2];
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, id);
    return find_row(s, st, "(by id)", rec, meta, err, errlen);
}

int store_value_taken(store *s, int field, const char *value, int64_t self_id)
{
    sqlite3_stmt *st = (field >= 0 && field < PF__COUNT) ? s->taken[field] : NULL;
    if (st == NULL)
        return -1;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, value, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, self_id);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        return 1;
    return rc == SQLITE_DONE ? 0 : -1;
}

static void bind_fields(sqlite3_stmt *st, const patron_rec *rec)
{
    for (int f = 0; f < PF__COUNT; f++) {
        const char *v = patron_rec_get(rec, f);
        sqlite3_bind_text(st, f + 1, v, -1, SQLITE_STATIC);
    }
}

static int step_done(store *s, sqlite3_stmt *st, const char *what, char *err, size_t errlen)
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

int store_insert(store *s, const patron_rec *rec, const char *job, uint64_t memo, int64_t *id, char *err,
                 size_t errlen)
{
    sqlite3_stmt *st = s->insert;
    uint64_t row_hash = patron_hash(rec);
    bind_fields(st, rec);
    sqlite3_bind_int64(st, PF__COUNT + 1, (int64_t)row_hash);
    sqlite3_bind_text(st, PF__COUNT + 2, job, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, PF__COUNT + 3, job, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, PF__COUNT + 4, (int64_t)store_memo_of(memo, row_hash));
    if (step_done(s, st, "adding a patron", err, errlen) < 0)
        return -1;
    if (id)
        *id = sqlite3_last_insert_rowid(s->db);
    return 0;
}

int store_update(store *s, int64_t id, const patron_rec *rec, const patron_rec *before, const char *job,
                 uint64_t memo, char *err, size_t errlen)
{
    sqlite3_stmt *st = before != NULL && keys_same(rec, before) ? s->update_keys_same : s->update;
    uint64_t row_hash = patron_hash(rec);
    bind_fields(st, rec);
    sqlite3_bind_int64(st, PF__COUNT + 1, (int64_t)row_hash);
    sqlite3_bind_text(st, PF__COUNT + 2, job, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, PF__COUNT + 3, (int64_t)store_memo_of(memo, row_hash));
    sqlite3_bind_int64(st, PF__COUNT + 4, id);
    return step_done(s, st, "updating a patron", err, errlen);
}

int store_delete(store *s, int64_t id, char *err, size_t errlen)
{
    sqlite3_bind_int64(s->del, 1, id);
    return step_done(s, s->del, "deleting a patron", err, errlen);
}

int store_sites(store *s, store_site **out, size_t *n, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    if (prep(s, "SELECT short_name,name,media,default_access_level FROM sites ORDER BY short_name", &st,
             err, errlen) < 0)
        return -1;
    size_t cap = 16, cnt = 0;
    store_site *v = malloc(cap * sizeof(*v));
    int rc;
    while (v != NULL && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == cap) {
            store_site *nv = realloc(v, cap * 2 * sizeof(*v));
            if (nv == NULL)
                break;
            v = nv;
            cap *= 2;
        }
        store_site *x = &v[cnt++];
        str_copy(x->short_name, sizeof(x->short_name), (const char *)sqlite3_column_text(st, 0));
        str_copy(x->name, sizeof(x->name), (const char *)sqlite3_column_text(st, 1));
        x->media = sqlite3_column_int(st, 2);
        str_copy(x->default_access_level, sizeof(x->default_access_level),
                 (const char *)sqlite3_column_text(st, 3));
    }
    sqlite3_finalize(st);
    if (v == NULL) {
        err_set(err, errlen, "out of memory reading sites");
        return -1;
    }
    *out = v;
    *n = cnt;
    return 0;
}

int store_site_upsert(store *s, const char *short_name, const char *name, int media, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    if (prep(s, "INSERT INTO sites(short_name,name,media) VALUES(?,?,?) "
                "ON CONFLICT(short_name) DO UPDATE SET name=excluded.name, media=excluded.media",
             &st, err, errlen) < 0)
        return -1;
    sqlite3_bind_text(st, 1, short_name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, media);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    if (rc < 0)
        err_set(err, errlen, "store: saving site %s: %s", short_name, sqlite3_errmsg(s->db));
    sqlite3_finalize(st);
    return rc;
}

int store_marker_get(store *s, const char *job, const char *step, uint8_t **blob, size_t *len)
{
    sqlite3_stmt *st = s->marker_get;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, job, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, step, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        return 0;
    }
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return -1;
    }
    int n = sqlite3_column_bytes(st, 0);
    const void *b = sqlite3_column_blob(st, 0);
    *blob = malloc(n > 0 ? (size_t)n : 1);
    if (*blob == NULL) {
        sqlite3_reset(st);
        return -1;
    }
    if (n > 0)
        memcpy(*blob, b, (size_t)n);
    *len = (size_t)n;
    sqlite3_reset(st);
    return 1;
}

int store_marker_put(store *s, const char *job, const char *step, const uint8_t *blob, size_t len,
                     char *err, size_t errlen)
{
    sqlite3_stmt *st = s->marker_put;
    sqlite3_bind_text(st, 1, job, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, step, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, blob, (int)len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now_ms());
    return step_done(s, st, "saving the job marker", err, errlen);
}

/* ---- Reference data and site associations (the patron rules) ---- */

enum {
    RQ_REF_FIND,                          /* + kind (3 statements) */
    RQ_REF_ADD = RQ_REF_FIND + 3,         /* + kind */
    RQ_REF_NAMES = RQ_REF_ADD + 3,        /* + kind */
    RQ_REF_DEFAULT = RQ_REF_NAMES + 3,
    RQ_REF_SET_DEFAULT,
    RQ_SITE_LEVEL,
    RQ_HOMEROOM_FIND,
    RQ_HOMEROOM_ADD,
    RQ_USERNAME_TAKEN,
    RQ_ASSOC_HAS,
    RQ_ASSOC_ADD,
    RQ_ASSOC_DEL,
    RQ_ASSOC_LIST,
    RQ_MEMO_FIND,
    RQ_MEMO_SCAN,
    RQ_REF_GEN,
    RQ_MEMO_SET,
    RQ__COUNT
};

static const char *const rq_sql[RQ__COUNT] = {
    [RQ_REF_FIND + STORE_REF_PATRON_TYPE] = "SELECT name FROM patron_types WHERE name=?1 COLLATE NOCASE ORDER BY name=?1 DESC LIMIT 1",
    [RQ_REF_FIND + STORE_REF_ACCESS_LEVEL] = "SELECT name FROM access_levels WHERE name=?1 COLLATE NOCASE ORDER BY name=?1 DESC LIMIT 1",
    [RQ_REF_FIND + STORE_REF_RESOURCE_GROUP] = "SELECT name FROM resource_groups WHERE name=?1 COLLATE NOCASE ORDER BY name=?1 DESC LIMIT 1",
    [RQ_REF_ADD + STORE_REF_PATRON_TYPE] = "INSERT INTO patron_types(name,created_job) VALUES(?1,?2)",
    [RQ_REF_ADD + STORE_REF_ACCESS_LEVEL] = "INSERT INTO access_levels(name) VALUES(?1)",
    [RQ_REF_ADD + STORE_REF_RESOURCE_GROUP] = "INSERT INTO resource_groups(name,created_job) VALUES(?1,?2)",
    [RQ_REF_NAMES + STORE_REF_PATRON_TYPE] = "SELECT name FROM patron_types ORDER BY name",
    [RQ_REF_NAMES + STORE_REF_ACCESS_LEVEL] = "SELECT name FROM access_levels ORDER BY name",
    [RQ_REF_NAMES + STORE_REF_RESOURCE_GROUP] = "SELECT name FROM resource_groups ORDER BY name",
    [RQ_REF_DEFAULT] = "SELECT name FROM ref_defaults WHERE kind=?",
    [RQ_REF_SET_DEFAULT] = "INSERT OR REPLACE INTO ref_defaults(kind,name) VALUES(?,?)",
    [RQ_SITE_LEVEL] = "UPDATE sites SET default_access_level=? WHERE short_name=?",
    [RQ_HOMEROOM_FIND] = "SELECT 1 FROM homerooms WHERE site_short_name=? AND name=? COLLATE NOCASE LIMIT 1",
    [RQ_MEMO_FIND] = "SELECT id,row_hash,src_hash,site_short_name FROM patrons WHERE district_id=? AND district_id<>''",
    [RQ_MEMO_SCAN] = "SELECT id,row_hash,src_hash,site_short_name,district_id FROM patrons WHERE id>=? ORDER BY id",
    [RQ_REF_GEN] = "SELECT v FROM store_meta WHERE k='ref_gen'",
    [RQ_MEMO_SET] = "UPDATE patrons SET src_hash=?1 WHERE id=?2 AND row_hash=?3",
    [RQ_HOMEROOM_ADD] = "INSERT INTO homerooms(site_short_name,name,created_job) VALUES(?,?,?)",
    [RQ_USERNAME_TAKEN] = "SELECT 1 FROM patrons WHERE username=? COLLATE NOCASE AND username<>'' AND id<>? LIMIT 1",
    [RQ_ASSOC_HAS] = "SELECT 1 FROM patron_sites WHERE patron_id=? AND site_short_name=?",
    [RQ_ASSOC_ADD] = "INSERT OR IGNORE INTO patron_sites(patron_id,site_short_name,created_job) VALUES(?,?,?)",
    [RQ_ASSOC_DEL] = "DELETE FROM patron_sites WHERE patron_id=? AND site_short_name=?",
    [RQ_ASSOC_LIST] = "SELECT site_short_name FROM patron_sites WHERE patron_id=? ORDER BY site_short_name",
};

static const char *const ref_kind_name[3] = {"patron_type", "access_level", "resource_group"};

/* The statement `which`, prepared on first use and reset. NULL with err. */
static sqlite3_stmt *rq_get(store *s, int which, char *err, size_t errlen)
{
    if (which < 0 || which >= RQ__COUNT || (size_t)which >= sizeof(s->rq) / sizeof(s->rq[0])) {
        err_set(err, errlen, "store: no statement %d", which);
        return NULL;
    }
    if (s->rq[which] == NULL && prep(s, rq_sql[which], &s->rq[which], err, errlen) < 0)
        return NULL;
    sqlite3_reset(s->rq[which]);
    sqlite3_clear_bindings(s->rq[which]);
    return s->rq[which];
}

static int ref_kind_ok(enum store_ref kind, char *err, size_t errlen)
{
    if ((int)kind < 0 || kind > STORE_REF_RESOURCE_GROUP) {
        err_set(err, errlen, "store: unknown kind of reference data %d", (int)kind);
        return 0;
    }
    return 1;
}

/* Step a statement that returns at most one row: 1 row, 0 none, -1 error. */
static int step_row(store *s, sqlite3_stmt *st, const char *what, char *err, size_t errlen)
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

void store_names_free(char **v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Every first-column text of a statement into a new array. */
static int collect_names(store *s, sqlite3_stmt *st, const char *what, char ***out, size_t *n, char *err,
                         size_t errlen)
{
    char **v = NULL;
    size_t cnt = 0, cap = 0;
    for (;;) {
        int rc = step_row(s, st, what, err, errlen);
        if (rc < 0) {
            store_names_free(v, cnt);
            return -1;
        }
        if (rc == 0)
            break;
        if (cnt == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **nv = realloc(v, ncap * sizeof(*v));
            if (nv == NULL)
                goto oom;
            v = nv;
            cap = ncap;
        }
        const unsigned char *t = sqlite3_column_text(st, 0);
        v[cnt] = strdup(t ? (const char *)t : "");
        if (v[cnt] == NULL)
            goto oom;
        cnt++;
    }
    sqlite3_reset(st);
    *out = v;
    *n = cnt;
    return 0;
oom:
    sqlite3_reset(st);
    store_names_free(v, cnt);
    err_set(err, errlen, "out of memory reading %s", what);
    return -1;
}

int store_ref_names(store *s, enum store_ref kind, char ***out, size_t *n, char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    if (!ref_kind_ok(kind, err, errlen))
        return -1;
    sqlite3_stmt *st = rq_get(s, RQ_REF_NAMES + (int)kind, err, errlen);
    if (st == NULL)
        return -1;
    return collect_names(s, st, ref_kind_name[kind], out, n, err, errlen);
}

int store_ref_canonical(store *s, enum store_ref kind, const char *name, char *canon, size_t canonlen)
{
    if (!ref_kind_ok(kind, NULL, 0))
        return -1;
    sqlite3_stmt *st = rq_get(s, RQ_REF_FIND + (int)kind, NULL, 0);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int found = step_row(s, st, "looking up reference data", NULL, 0);
    if (found == 1)
        str_copy(canon, canonlen, (const char *)sqlite3_column_text(st, 0));
    sqlite3_reset(st);
    return found;
}

int store_ref_add(store *s, enum store_ref kind, const char *name, const char *job, char *err, size_t errlen)
{
    if (!ref_kind_ok(kind, err, errlen))
        return -1;
    sqlite3_stmt *st = rq_get(s, RQ_REF_FIND + (int)kind, err, errlen);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int found = step_row(s, st, "looking up reference data", err, errlen);
    sqlite3_reset(st);
    if (found != 0)
        return found < 0 ? -1 : 0;
    st = rq_get(s, RQ_REF_ADD + (int)kind, err, errlen);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (kind != STORE_REF_ACCESS_LEVEL) {
        if (job != NULL)
            sqlite3_bind_text(st, 2, job, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 2);
    }
    if (step_done(s, st, "adding reference data", err, errlen) < 0)
        return -1;
    return 1;
}

int store_ref_default(store *s, enum store_ref kind, char *out, size_t outlen, char *err, size_t errlen)
{
    str_copy(out, outlen, "");
    if (!ref_kind_ok(kind, err, errlen))
        return -1;
    sqlite3_stmt *st = rq_get(s, RQ_REF_DEFAULT, err, errlen);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, ref_kind_name[kind], -1, SQLITE_STATIC);
    int r = step_row(s, st, "reading a default", err, errlen);
    if (r == 1)
        str_copy(out, outlen, (const char *)sqlite3_column_text(st, 0));
    sqlite3_reset(st);
    return r < 0 ? -1 : 0;
}

int store_ref_set_default(store *s, enum store_ref kind, const char *name, char *err, size_t errlen)
{
    if (!ref_kind_ok(kind, err, errlen))
        return -1;
    if (kind == STORE_REF_ACCESS_LEVEL) {
        err_set(err, errlen, "access levels have a default per site (site add --access-level)");
        return -1;
    }
    if (store_ref_add(s, kind, name, NULL, err, errlen) < 0)
        return -1;
    /* The default is kept in the list's own spelling. */
    char canon[256];
    str_copy(canon, sizeof(canon), name);
    sqlite3_stmt *st = rq_get(s, RQ_REF_FIND + (int)kind, err, errlen);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (step_row(s, st, "looking up reference data", err, errlen) == 1)
        str_copy(canon, sizeof(canon), (const char *)sqlite3_column_text(st, 0));
    sqlite3_reset(st);
    st = rq_get(s, RQ_REF_SET_DEFAULT, err, errlen);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, ref_kind_name[kind], -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, canon, -1, SQLITE_TRANSIENT);
    return step_done(s, st, "saving a default", err, errlen);
}

int store_site_set_access_level(store *s, const char *short_name, const char *level, char *err, size_t errlen)
{
    sqlite3_stmt *st = rq_get(s, RQ_SITE_LEVEL, err, errlen);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, level, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, short_name, -1, SQLITE_STATIC);
    if (step_done(s, st, "setting a site's access level", err, errlen) < 0)
        return -1;
    if (sqlite3_changes(s->db) != 1) {
        err_set(err, errlen, "site '%s' does not exist", short_name);
        return -1;
    }
    return 0;
}

int store_homeroom_add(store *s, const char *site, const char *name, const char *job, char *err, size_t errlen)
{
    sqlite3_stmt *st = rq_get(s, RQ_HOMEROOM_FIND, err, errlen);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    int found = step_row(s, st, "looking up a homeroom", err, errlen);
    sqlite3_reset(st);
    if (found != 0)
        return found < 0 ? -1 : 0;
    return store_homeroom_insert(s, site, name, job, err, errlen) < 0 ? -1 : 1;
}

int store_homeroom_insert(store *s, const char *site, const char *name, const char *job, char *err, size_t errlen)
{
    sqlite3_stmt *st = rq_get(s, RQ_HOMEROOM_ADD, err, errlen);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    if (job != NULL)
        sqlite3_bind_text(st, 3, job, -1, SQLITE_STATIC);
    return step_done(s, st, "adding a homeroom", err, errlen);
}

int store_homerooms_each(store *s, int (*fn)(void *arg, const char *site, const char *name), void *arg, char *err,
                         size_t errlen)
{
    sqlite3_stmt *q = NULL;
    if (prep(s, "SELECT site_short_name,name FROM homerooms", &q, err, errlen) < 0)
        return -1;
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const unsigned char *site = sqlite3_column_text(q, 0), *name = sqlite3_column_text(q, 1);
        if (fn(arg, site ? (const char *)site : "", name ? (const char *)name : "") < 0) {
            err_set(err, errlen, "out of memory");
            sqlite3_finalize(q);
            return -1;
        }
    }
    if (rc != SQLITE_DONE)
        err_set(err, errlen, "store: reading homerooms: %s", sqlite3_errmsg(s->db));
    sqlite3_finalize(q);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* The memo columns of the row st stands on (columns 0-3). */
static void memo_row(sqlite3_stmt *st, store_memo *m)
{
    m->id = sqlite3_column_int64(st, 0);
    m->row_hash = (uint64_t)sqlite3_column_int64(st, 1);
    m->memo = (uint64_t)sqlite3_column_int64(st, 2);
    const unsigned char *site = sqlite3_column_text(st, 3);
    str_copy(m->site, sizeof(m->site), site ? (const char *)site : "");
}

static void scan_stop(store *s)
{
    if (s->scan_on == 1)
        sqlite3_reset(s->rq[RQ_MEMO_SCAN]);
    s->scan_on = 0;
}

/* The walk on the first row whose id is near or more: 1 it stands there,
 * 0 there is none, -1 error. Each row read once while near follows the
 * rows (the id after the row found), sought again only when it jumps. */
static int scan_to(store *s, int64_t near, char *err, size_t errlen)
{
    if (s->scan_on == 1 && s->scan_lo <= near && near <= s->scan_id)
        return 1;
    if (s->scan_on == 2 && s->scan_lo <= near)
        return 0;
    sqlite3_stmt *st = s->rq[RQ_MEMO_SCAN];
    if (s->scan_on != 1 || near != s->scan_id + 1) {
        st = rq_get(s, RQ_MEMO_SCAN, err, errlen);
        if (st == NULL)
            return -1;
        sqlite3_bind_int64(st, 1, near);
    }
    s->scan_on = 0;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        s->scan_on = 1;
        s->scan_lo = near;
        s->scan_id = sqlite3_column_int64(st, 0);
        return 1;
    }
    sqlite3_reset(st);
    if (rc == SQLITE_DONE) {
        s->scan_on = 2;
        s->scan_lo = near;
        return 0;
    }
    err_set(err, errlen, "store: looking up a patron: %s", sqlite3_errmsg(s->db));
    return -1;
}

int store_memo_find(store *s, const char *district_id, int64_t near, store_memo *m, char *err, size_t errlen)
{
    int reading = sqlite3_txn_state(s->db, "main") == SQLITE_TXN_READ;
    if (!reading)
        scan_stop(s); /* no transaction, or it wrote since */
    if (near > 0 && *district_id != '\0' && reading) {
        /* The first row from near on is found by its id, without the
         * District ID index; it is the patron when it holds the District
         * ID (unique). */
        int r = scan_to(s, near, err, errlen);
        if (r < 0)
            return -1;
        if (r == 1) {
            sqlite3_stmt *st = s->rq[RQ_MEMO_SCAN];
            const unsigned char *id = sqlite3_column_text(st, 4);
            if (id != NULL && strcmp((const char *)id, district_id) == 0) {
                memo_row(st, m);
                return 1;
            }
        }
    }
    sqlite3_stmt *st = rq_get(s, RQ_MEMO_FIND, err, errlen);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, district_id, -1, SQLITE_STATIC);
    int r = step_row(s, st, "looking up a patron", err, errlen);
    if (r == 1)
        memo_row(st, m);
    sqlite3_reset(st);
    return r;
}

int store_ref_gen(store *s, uint64_t *gen, char *err, size_t errlen)
{
    sqlite3_stmt *st = rq_get(s, RQ_REF_GEN, err, errlen);
    if (st == NULL)
        return -1;
    int r = step_row(s, st, "reading the reference data generation", err, errlen);
    *gen = r == 1 ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return r < 0 ? -1 : 0;
}

int store_memo_set(store *s, int64_t id, uint64_t row_hash, uint64_t memo, char *err, size_t errlen)
{
    sqlite3_stmt *st = rq_get(s, RQ_MEMO_SET, err, errlen);
    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, (int64_t)memo);
    sqlite3_bind_int64(st, 2, id);
    sqlite3_bind_int64(st, 3, (int64_t)row_hash);
    return step_done(s, st, "keeping a patron's memo", err, errlen);
}

uint64_t store_memo_of(uint64_t record_memo, uint64_t row_hash)
{
    if (record_memo == 0)
        return 0;
    uint64_t parts[2] = {record_memo, row_hash};
    return hash64(parts, sizeof(parts), HASH64_SEED) | 1;
}

int store_username_taken(store *s, const char *username, int64_t self_id)
{
    sqlite3_stmt *st = rq_get(s, RQ_USERNAME_TAKEN, NULL, 0);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, username, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, self_id);
    int r = step_row(s, st, "looking up a user name", NULL, 0);
    sqlite3_reset(st);
    return r;
}

int store_assoc_has(store *s, int64_t patron_id, const char *site)
{
    sqlite3_stmt *st = rq_get(s, RQ_ASSOC_HAS, NULL, 0);
    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, patron_id);
    sqlite3_bind_text(st, 2, site, -1, SQLITE_STATIC);
    int r = step_row(s, st, "looking up a site association", NULL, 0);
    sqlite3_reset(st);
    return r;
}

int store_assoc_add(store *s, int64_t patron_id, const char *site, const char *job, char *err, size_t errlen)
{
    sqlite3_stmt *st = rq_get(s, RQ_ASSOC_ADD, err, errlen);
    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, patron_id);
    sqlite3_bind_text(st, 2, site, -1, SQLITE_STATIC);
    if (job != NULL)
        sqlite3_bind_text(st, 3, job, -1, SQLITE_STATIC);
    if (step_done(s, st, "adding a site association", err, errlen) < 0)
        return -1;
    return sqlite3_changes(s->db) == 1 ? 1 : 0;
}

int store_assoc_remove(store *s, int64_t patron_id, const char *site, char *err, size_t errlen)
{
    sqlite3_stmt *st = rq_get(s, RQ_ASSOC_DEL, err, errlen);
    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, patron_id);
    sqlite3_bind_text(st, 2, site, -1, SQLITE_STATIC);
    return step_done(s, st, "removing a site association", err, errlen);
}

int store_assoc_list(store *s, int64_t patron_id, char ***out, size_t *n, char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = rq_get(s, RQ_ASSOC_LIST, err, errlen);
    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, patron_id);
    return collect_names(s, st, "site associations", out, n, err, errlen);
}

/* ---- The rest of a patron's row, for before-images and undo
 * (docs/SAFETY.md) ---- */

enum { SX_EXTRA_GET, SX_SET_MISSING, SX_RESTORE_UPDATE, SX_RESTORE_INSERT, SX_CHANGE_PUT, SX_CHANGE_DROP, SX__COUNT };

static sqlite3_stmt *sx_get(store *s, int which, char *err, size_t errlen)
{
    if (which < 0 || which >= SX__COUNT || (s->readonly && which != SX_EXTRA_GET)) {
        err_set(err, errlen, "store: no statement %d%s", which, s->readonly ? " (read-only)" : "");
        return NULL;
    }
    if (s->sx[which] == NULL) {
        strbuf q;
        sb_init(&q);
        if (which == SX_EXTRA_GET) {
            sb_puts(&q, "SELECT checkouts,fines_cents,coalesce(missing_since,''),coalesce(created_job,''),"
                        "coalesce(updated_job,'') FROM patrons WHERE id=?");
        } else if (which == SX_CHANGE_DROP) {
            sb_puts(&q, "DELETE FROM job_changes WHERE job_id=? AND seq=?");
        } else if (which == SX_CHANGE_PUT) {
            sb_puts(&q, "INSERT OR REPLACE INTO job_changes(job_id,seq,patron_id,op,before) VALUES(?,?,?,?,?)");
        } else if (which == SX_SET_MISSING) {
            sb_puts(&q, "UPDATE patrons SET missing_since=nullif(?,''), updated_job=nullif(?,'') WHERE id=?");
        } else if (which == SX_RESTORE_UPDATE) {
            sb_puts(&q, "UPDATE patrons SET ");
            for (int f = 0; f < PF__COUNT; f++)
                sb_printf(&q, "%s=?,", patron_fields[f].column);
            /* checkouts and fines are circulation's, never a job's: kept. */
            sb_puts(&q, "row_hash=?,missing_since=nullif(?,''),updated_job=nullif(?,'') WHERE id=?");
        } else {
            sb_puts(&q, "INSERT INTO patrons(");
            for (int f = 0; f < PF__COUNT; f++)
                sb_printf(&q, "%s,", patron_fields[f].column);
            sb_puts(&q, "row_hash,missing_since,updated_job,checkouts,fines_cents,id,created_job) VALUES(");
            for (int f = 0; f < PF__COUNT; f++)
                sb_puts(&q, "?,");
            sb_puts(&q, "?,nullif(?,''),nullif(?,''),?,?,?,nullif(?,''))");
        }
        int rc = q.buf ? prep(s, sb_str(&q), &s->sx[which], err, errlen) : -1;
        sb_free(&q);
        if (rc < 0)
            return NULL;
    }
    sqlite3_reset(s->sx[which]);
    sqlite3_clear_bindings(s->sx[which]);
    return s->sx[which];
}

static void col_copy(sqlite3_stmt *st, int col, char *out, size_t outlen)
{
    const unsigned char *v = sqlite3_column_text(st, col);
    str_copy(out, outlen, v ? (const char *)v : "");
}

int store_extra_get(store *s, int64_t id, store_patron_extra *x, char *err, size_t errlen)
{
    sqlite3_stmt *st = sx_get(s, SX_EXTRA_GET, err, errlen);
    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        x->checkouts = sqlite3_column_int64(st, 0);
        x->fines_cents = sqlite3_column_int64(st, 1);
        col_copy(st, 2, x->missing_since, sizeof(x->missing_since));
        col_copy(st, 3, x->created_job, sizeof(x->created_job));
        col_copy(st, 4, x->updated_job, sizeof(x->updated_job));
        sqlite3_reset(st);
        return 1;
    }
    sqlite3_reset(st);
    if (rc == SQLITE_DONE)
        return 0;
    err_set(err, errlen, "store: reading patron %lld: %s", (long long)id, sqlite3_errmsg(s->db));
    return -1;
}

int store_set_missing(store *s, int64_t id, const char *since, const char *job, char *err, size_t errlen)
{
    sqlite3_stmt *st = sx_get(s, SX_SET_MISSING, err, errlen);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, since ? since : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, job ? job : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, id);
    return step_done(s, st, "marking a missing patron", err, errlen);
}

int store_restore(store *s, int64_t id, const patron_rec *rec, const store_patron_extra *x, int insert, char *err,
                  size_t errlen)
{
    sqlite3_stmt *st = sx_get(s, insert ? SX_RESTORE_INSERT : SX_RESTORE_UPDATE, err, errlen);
    if (st == NULL)
        return -1;
    bind_fields(st, rec);
    int k = PF__COUNT + 1;
    sqlite3_bind_int64(st, k++, (int64_t)patron_hash(rec));
    sqlite3_bind_text(st, k++, x->missing_since, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, k++, x->updated_job, -1, SQLITE_STATIC);
    if (insert) {
        sqlite3_bind_int64(st, k++, x->checkouts);
        sqlite3_bind_int64(st, k++, x->fines_cents);
    }
    sqlite3_bind_int64(st, k++, id);
    if (insert)
        sqlite3_bind_text(st, k++, x->created_job, -1, SQLITE_STATIC);
    return step_done(s, st, insert ? "restoring a deleted patron" : "restoring a patron", err, errlen);
}

int store_change_put(store *s, const char *job, int64_t seq, int64_t patron_id, int op, const uint8_t *before,
                     size_t len, char *err, size_t errlen)
{
    sqlite3_stmt *st = sx_get(s, SX_CHANGE_PUT, err, errlen);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, job, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, seq);
    sqlite3_bind_int64(st, 3, patron_id);
    sqlite3_bind_int(st, 4, op);
    if (before)
        sqlite3_bind_blob(st, 5, before, (int)len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 5);
    return step_done(s, st, "saving a before-image", err, errlen);
}

int store_change_drop(store *s, const char *job, int64_t seq, char *err, size_t errlen)
{
    sqlite3_stmt *st = sx_get(s, SX_CHANGE_DROP, err, errlen);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, job, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, seq);
    return step_done(s, st, "dropping a before-image", err, errlen);
}
