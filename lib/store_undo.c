/* store_undo: the rest of a patron's row that before-images keep and undo
 * puts back (docs/SAFETY.md), the job's changes (job_changes), and the
 * finishing step's reads: the patrons marked missing and the patrons in a
 * job's scope. */
#include "store_int.h"

#include <stdlib.h>
#include <string.h>

int store_extra_get(store *s, int64_t id, store_patron_extra *x, char *err, size_t errlen)
{
    sqlite3_stmt *st = store_stmt(s, ST_EXTRA_GET, err, errlen);
    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        x->checkouts = sqlite3_column_int64(st, 0);
        x->fines_cents = sqlite3_column_int64(st, 1);
        store_col_copy(st, 2, x->missing_since, sizeof(x->missing_since));
        store_col_copy(st, 3, x->created_job, sizeof(x->created_job));
        store_col_copy(st, 4, x->updated_job, sizeof(x->updated_job));
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
    return store_run(s, ST_SET_MISSING, "marking a missing patron", err, errlen, "tti", since ? since : "",
                     job ? job : "", id);
}

int store_restore(store *s, int64_t id, const patron_rec *rec, const store_patron_extra *x, int insert, char *err,
                  size_t errlen)
{
    sqlite3_stmt *st = store_stmt(s, insert ? ST_RESTORE_INSERT : ST_RESTORE_UPDATE, err, errlen);
    if (st == NULL)
        return -1;
    store_bind_fields(st, rec);
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
    return store_step_done(s, st, insert ? "restoring a deleted patron" : "restoring a patron", err, errlen);
}

int store_change_put(store *s, const char *job, int64_t seq, int64_t patron_id, int op, const uint8_t *before,
                     size_t len, char *err, size_t errlen)
{
    return store_run(s, ST_CHANGE_PUT, "saving a before-image", err, errlen, "tiiib", job, seq, patron_id,
                     (int64_t)op, (const void *)before, len);
}

int store_change_drop(store *s, const char *job, int64_t seq, char *err, size_t errlen)
{
    return store_run(s, ST_CHANGE_DROP, "dropping a before-image", err, errlen, "ti", job, seq);
}

int store_changes_each(store *s, const char *job,
                       int (*fn)(void *arg, int64_t patron_id, int op, const uint8_t *before, size_t len, char *err,
                                 size_t errlen),
                       void *arg, char *err, size_t errlen)
{
    sqlite3_stmt *q = store_stmt(s, ST_CHANGES_OF_JOB, err, errlen);
    if (q == NULL)
        return -1;
    sqlite3_bind_text(q, 1, job, -1, SQLITE_STATIC);
    static const uint8_t empty[1];
    int rc = 0, r;
    while (rc == 0 && (r = sqlite3_step(q)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(q, 0);
        int op = sqlite3_column_int(q, 1);
        const uint8_t *before = NULL;
        size_t len = 0;
        if (sqlite3_column_type(q, 2) == SQLITE_BLOB) {
            len = (size_t)sqlite3_column_bytes(q, 2);
            before = len > 0 ? sqlite3_column_blob(q, 2) : empty;
        }
        rc = fn(arg, id, op, before, len, err, errlen);
    }
    if (rc == 0 && r != SQLITE_DONE) {
        err_set(err, errlen, "store: reading job %s's changes: %s", job, sqlite3_errmsg(s->db));
        rc = -1;
    }
    sqlite3_reset(q);
    return rc;
}

/* Call fn with the first column of every row of q; *rows (when not NULL)
 * counts them. 0 / -1 with err (what: the message's subject). */
static int each_id(store *s, sqlite3_stmt *q, int (*fn)(void *arg, int64_t id), void *arg, uint64_t *rows,
                   const char *what, char *err, size_t errlen)
{
    int rc;
    uint64_t k = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        k++;
        if (fn(arg, sqlite3_column_int64(q, 0)) < 0) {
            err_set(err, errlen, "out of memory");
            sqlite3_reset(q);
            return -1;
        }
    }
    if (rc != SQLITE_DONE)
        err_set(err, errlen, "store: %s: %s", what, sqlite3_errmsg(s->db));
    sqlite3_reset(q);
    if (rows != NULL)
        *rows = k;
    return rc == SQLITE_DONE ? 0 : -1;
}

int store_missing_each(store *s, int (*fn)(void *arg, int64_t id), void *arg, char *err, size_t errlen)
{
    sqlite3_stmt *q = store_stmt(s, ST_MISSING_IDS, err, errlen);
    if (q == NULL)
        return -1;
    return each_id(s, q, fn, arg, NULL, "looking for missing patrons", err, errlen);
}

/* "<select> FROM patrons WHERE <in scope>" prepared and bound (its text
 * depends on the scope: outside the statement table; the caller
 * finalizes it). NULL with err (never called with an empty scope). */
static sqlite3_stmt *scope_query(store *s, const store_scope *sc, const char *select, char *err, size_t errlen)
{
    strbuf q;
    sb_init(&q);
    sb_printf(&q, "%s FROM patrons WHERE site_short_name IN (", select);
    for (size_t i = 0; i < sc->nsites; i++)
        sb_puts(&q, i ? ",?" : "?");
    sb_puts(&q, ")");
    if (sc->ntypes > 0) {
        sb_puts(&q, " AND patron_type COLLATE NOCASE IN (");
        for (size_t i = 0; i < sc->ntypes; i++)
            sb_puts(&q, i ? ",?" : "?");
        sb_puts(&q, ")");
    }
    sqlite3_stmt *st = NULL;
    if (q.buf == NULL || sqlite3_prepare_v2(s->db, sb_str(&q), -1, &st, NULL) != SQLITE_OK) {
        err_set(err, errlen, "store: the scope query: %s", q.buf ? sqlite3_errmsg(s->db) : "out of memory");
        sb_free(&q);
        return NULL;
    }
    sb_free(&q);
    int k = 1;
    for (size_t i = 0; i < sc->nsites; i++)
        sqlite3_bind_text(st, k++, sc->sites[i], -1, SQLITE_STATIC);
    for (size_t i = 0; i < sc->ntypes; i++)
        sqlite3_bind_text(st, k++, sc->types[i], -1, SQLITE_STATIC);
    return st;
}

int store_scope_count(store *s, const store_scope *sc, uint64_t *n, char *err, size_t errlen)
{
    *n = 0;
    if (sc->nsites == 0)
        return 0;
    sqlite3_stmt *st = scope_query(s, sc, "SELECT count(*)", err, errlen);
    if (st == NULL)
        return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *n = (uint64_t)sqlite3_column_int64(st, 0);
    else
        err_set(err, errlen, "store: counting the patrons in scope: %s", sqlite3_errmsg(s->db));
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : -1;
}

int store_scope_each(store *s, const store_scope *sc, int (*fn)(void *arg, int64_t id), void *arg, uint64_t *rows,
                     char *err, size_t errlen)
{
    *rows = 0;
    if (sc->nsites == 0)
        return 0;
    sqlite3_stmt *st = scope_query(s, sc, "SELECT id", err, errlen);
    if (st == NULL)
        return -1;
    int rc = each_id(s, st, fn, arg, rows, "looking for missing patrons", err, errlen);
    sqlite3_finalize(st);
    return rc;
}
