/* store_patrons: the patron rows — looking patrons up, writing them, the
 * unchanged-record memo and its walk of the rows, the job markers. */
#include "store_int.h"

#include <stdlib.h>
#include <string.h>

/* Whether a and b agree in every field an index of patrons reads. */
static int keys_same(const patron_rec *a, const patron_rec *b)
{
    for (int f = 0; f < PF__COUNT; f++)
        if (store_field_indexed(f) && strcmp(patron_rec_get(a, f), patron_rec_get(b, f)) != 0)
            return 0;
    return 1;
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
    sqlite3_stmt *st = store_stmt(s, by == PF_BARCODE ? ST_FIND_BARCODE : ST_FIND_DISTRICT_ID, err, errlen);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    return find_row(s, st, key, rec, meta, err, errlen);
}

int store_get(store *s, int64_t id, patron_rec *rec, store_patron_meta *meta, char *err, size_t errlen)
{
    sqlite3_stmt *st = store_stmt(s, ST_FIND_ID, err, errlen);
    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    return find_row(s, st, "(by id)", rec, meta, err, errlen);
}

int store_value_taken(store *s, int field, const char *value, int64_t self_id)
{
    if (field != PF_BARCODE && field != PF_DISTRICT_ID)
        return -1;
    return store_ask(s, field == PF_BARCODE ? ST_TAKEN_BARCODE : ST_TAKEN_DISTRICT_ID, "looking up a key", NULL, 0,
                     "ti", value, self_id);
}

/* A row written from rec by job: its fields, row hash and job bound to
 * the parameters ST_INSERT and ST_UPDATE share. The row hash. */
static uint64_t bind_written(sqlite3_stmt *st, const patron_rec *rec, const char *job)
{
    uint64_t row_hash = patron_hash(rec);
    store_bind_fields(st, rec);
    sqlite3_bind_int64(st, PF__COUNT + 1, (int64_t)row_hash);
    sqlite3_bind_text(st, PF__COUNT + 2, job, -1, SQLITE_STATIC);
    return row_hash;
}

int store_insert(store *s, const patron_rec *rec, const char *job, uint64_t memo, int64_t *id, char *err,
                 size_t errlen)
{
    sqlite3_stmt *st = store_stmt(s, ST_INSERT, err, errlen);
    if (st == NULL)
        return -1;
    uint64_t row_hash = bind_written(st, rec, job);
    sqlite3_bind_text(st, PF__COUNT + 3, job, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, PF__COUNT + 4, (int64_t)store_memo_of(memo, row_hash));
    if (store_step_done(s, st, "adding a patron", err, errlen) < 0)
        return -1;
    if (id)
        *id = sqlite3_last_insert_rowid(s->db);
    return 0;
}

int store_update(store *s, int64_t id, const patron_rec *rec, const patron_rec *before, const char *job,
                 uint64_t memo, char *err, size_t errlen)
{
    sqlite3_stmt *st = store_stmt(s, before != NULL && keys_same(rec, before) ? ST_UPDATE_KEYS_SAME : ST_UPDATE, err,
                                  errlen);
    if (st == NULL)
        return -1;
    uint64_t row_hash = bind_written(st, rec, job);
    sqlite3_bind_int64(st, PF__COUNT + 3, (int64_t)store_memo_of(memo, row_hash));
    sqlite3_bind_int64(st, PF__COUNT + 4, id);
    return store_step_done(s, st, "updating a patron", err, errlen);
}

int store_delete(store *s, int64_t id, char *err, size_t errlen)
{
    return store_run(s, ST_DELETE, "deleting a patron", err, errlen, "i", id);
}

int store_marker_get(store *s, const char *job, const char *step, uint8_t **blob, size_t *len)
{
    sqlite3_stmt *st = store_stmt(s, ST_MARKER_GET, NULL, 0);
    if (st == NULL)
        return -1;
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
    return store_run(s, ST_MARKER_PUT, "saving the job marker", err, errlen, "ttbi", job, step, (const void *)blob,
                     len, now_ms());
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

/* The walk on the first row whose id is near or more: 1 it stands there,
 * 0 there is none, -1 error. Each row read once while near follows the
 * rows (the id after the row found), sought again only when it jumps. */
static int scan_to(store *s, int64_t near, char *err, size_t errlen)
{
    if (s->scan_on == 1 && s->scan_lo <= near && near <= s->scan_id)
        return 1;
    if (s->scan_on == 2 && s->scan_lo <= near)
        return 0;
    sqlite3_stmt *st = s->st[ST_MEMO_SCAN];
    if (s->scan_on != 1 || near != s->scan_id + 1) {
        st = store_stmt(s, ST_MEMO_SCAN, err, errlen);
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
        store_scan_stop(s); /* no transaction, or it wrote since */
    if (near > 0 && *district_id != '\0' && reading) {
        /* The first row from near on is found by its id, without the
         * District ID index; it is the patron when it holds the District
         * ID (unique). */
        int r = scan_to(s, near, err, errlen);
        if (r < 0)
            return -1;
        if (r == 1) {
            sqlite3_stmt *st = s->st[ST_MEMO_SCAN];
            const unsigned char *id = sqlite3_column_text(st, 4);
            if (id != NULL && strcmp((const char *)id, district_id) == 0) {
                memo_row(st, m);
                return 1;
            }
        }
    }
    sqlite3_stmt *st = store_stmt(s, ST_MEMO_FIND, err, errlen);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, district_id, -1, SQLITE_STATIC);
    int r = store_step_row(s, st, "looking up a patron", err, errlen);
    if (r == 1)
        memo_row(st, m);
    sqlite3_reset(st);
    return r;
}

int store_ref_gen(store *s, uint64_t *gen, char *err, size_t errlen)
{
    sqlite3_stmt *st = store_stmt(s, ST_REF_GEN, err, errlen);
    if (st == NULL)
        return -1;
    int r = store_step_row(s, st, "reading the reference data generation", err, errlen);
    *gen = r == 1 ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return r < 0 ? -1 : 0;
}

int store_memo_set(store *s, int64_t id, uint64_t row_hash, uint64_t memo, char *err, size_t errlen)
{
    return store_run(s, ST_MEMO_SET, "keeping a patron's memo", err, errlen, "iii", (int64_t)memo, id,
                     (int64_t)row_hash);
}

uint64_t store_memo_of(uint64_t record_memo, uint64_t row_hash)
{
    if (record_memo == 0)
        return 0;
    uint64_t parts[2] = {record_memo, row_hash};
    return hash64(parts, sizeof(parts), HASH64_SEED) | 1;
}

int store_username_taken(store *s, const char *username, int64_t self_id, char *err, size_t errlen)
{
    return store_ask(s, ST_USERNAME_TAKEN, "looking up a user name", err, errlen, "ti", username, self_id);
}

