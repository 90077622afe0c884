/* store_hashes: record_hashes and record_hash_runs (store_hashes.h). */
#include "store_hashes.h"

#include "store_int.h"

int store_hashes_fired(store *s, const char *schedule, int64_t *fired_ms, char *err, size_t errlen)
{
    sqlite3_stmt *st = store_stmt(s, ST_HASH_RUN_FIRED, err, errlen);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, schedule, -1, SQLITE_STATIC);
    int r = store_step_row(s, st, "record hashes", err, errlen);
    *fired_ms = r == 1 ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return r;
}

int store_hashes_clear(store *s, const char *schedule, char *err, size_t errlen)
{
    if (store_run(s, ST_HASHES_CLEAR, "record hashes", err, errlen, "t", schedule) < 0)
        return -1;
    return store_run(s, ST_HASH_RUN_CLEAR, "record hashes", err, errlen, "t", schedule);
}

int store_hashes_put(store *s, const char *schedule, const char *key, uint64_t hash, char *err, size_t errlen)
{
    return store_run(s, ST_HASH_PUT, "record hashes", err, errlen, "tti", schedule, key, (int64_t)hash);
}

int store_hashes_run_put(store *s, const char *schedule, const char *job, uint64_t records, int64_t fired_ms,
                         char *err, size_t errlen)
{
    return store_run(s, ST_HASH_RUN_PUT, "record hashes", err, errlen, "ttiii", schedule, job, (int64_t)records,
                     now_ms(), fired_ms);
}

/* The previous run's job and hashes, inside the caller's read transaction. */
static int read_previous(store *s, const char *schedule, char *prev_job, size_t pjlen,
                         int (*fn)(void *arg, const char *key, uint64_t hash), void *arg, char *err, size_t errlen)
{
    sqlite3_stmt *st = store_stmt(s, ST_HASH_TABLE, err, errlen);
    if (st == NULL)
        return -1;
    int have = store_step_row(s, st, "record hashes", err, errlen);
    sqlite3_reset(st);
    if (have <= 0)
        return have; /* a store made before the tables: no previous run */
    st = store_stmt(s, ST_HASH_RUN_JOB, err, errlen);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, schedule, -1, SQLITE_STATIC);
    int r = store_step_row(s, st, "record hashes", err, errlen);
    if (r == 1)
        str_copy(prev_job, pjlen, (const char *)sqlite3_column_text(st, 0));
    sqlite3_reset(st);
    if (r <= 0)
        return r;
    st = store_stmt(s, ST_HASHES_OF, err, errlen);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, schedule, -1, SQLITE_STATIC);
    while ((r = store_step_row(s, st, "record hashes", err, errlen)) == 1) {
        const char *k = (const char *)sqlite3_column_text(st, 0);
        if (k != NULL && fn(arg, k, (uint64_t)sqlite3_column_int64(st, 1)) < 0) {
            err_set(err, errlen, "out of memory");
            r = -1;
            break;
        }
    }
    sqlite3_reset(st);
    return r < 0 ? -1 : 1;
}

int store_hashes_previous(store *s, const char *schedule, char *prev_job, size_t pjlen,
                          int (*fn)(void *arg, const char *key, uint64_t hash), void *arg, char *err, size_t errlen)
{
    /* One read transaction: the run marker and its hashes agree. */
    if (store_begin(s, 0, err, errlen) < 0)
        return -1;
    int r = read_previous(s, schedule, prev_job, pjlen, fn, arg, err, errlen);
    store_rollback(s);
    return r;
}
