/* incremental: a content hash per record of a schedule's job, and for an
 * Incremental run the records unchanged since the schedule's previous run
 * left out before sharding. The hashes of the previous run are read from
 * the store (record_hashes, written by worker/hashes.c in the apply
 * step's transaction); this run's are staged for that step as
 * stage_dir/<job>/incremental.pb (RecordHashes). docs/SCHEDULES.md. */
#include "incremental.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "csvscan.h"
#include "log.h"
#include "patron.h"
#include "util.h"

/* ---- the previous run's hashes: key -> hash ---- */

typedef struct {
    char *key; /* NULL: empty slot */
    uint64_t kh;
    uint64_t hash;
} prev_slot;

typedef struct {
    prev_slot *v;
    size_t cap, n;
} prev_table;

static int prev_grow(prev_table *t)
{
    size_t cap = t->cap ? t->cap * 2 : 1024;
    prev_slot *v = calloc(cap, sizeof(*v));
    if (v == NULL)
        return -1;
    for (size_t i = 0; i < t->cap; i++) {
        if (t->v[i].key == NULL)
            continue;
        size_t k = t->v[i].kh & (cap - 1);
        while (v[k].key != NULL)
            k = (k + 1) & (cap - 1);
        v[k] = t->v[i];
    }
    free(t->v);
    t->v = v;
    t->cap = cap;
    return 0;
}

static int prev_put(prev_table *t, const char *key, uint64_t hash)
{
    if ((t->n + 1) * 2 > t->cap && prev_grow(t) < 0)
        return -1;
    uint64_t kh = hash64(key, strlen(key), HASH64_SEED);
    size_t k = kh & (t->cap - 1);
    while (t->v[k].key != NULL) {
        if (t->v[k].kh == kh && strcmp(t->v[k].key, key) == 0) {
            t->v[k].hash = hash;
            return 0;
        }
        k = (k + 1) & (t->cap - 1);
    }
    t->v[k].key = strdup(key);
    if (t->v[k].key == NULL)
        return -1;
    t->v[k].kh = kh;
    t->v[k].hash = hash;
    t->n++;
    return 0;
}

/* 1 and *hash when key is there, else 0. */
static int prev_get(const prev_table *t, const char *key, uint64_t *hash)
{
    if (t->cap == 0)
        return 0;
    uint64_t kh = hash64(key, strlen(key), HASH64_SEED);
    for (size_t k = kh & (t->cap - 1); t->v[k].key != NULL; k = (k + 1) & (t->cap - 1)) {
        if (t->v[k].kh == kh && strcmp(t->v[k].key, key) == 0) {
            *hash = t->v[k].hash;
            return 1;
        }
    }
    return 0;
}

static void prev_free(prev_table *t)
{
    for (size_t i = 0; i < t->cap; i++)
        free(t->v[i].key);
    free(t->v);
    memset(t, 0, sizeof(*t));
}

/* The schedule's hashes as its previous applied run left them. 1 loaded,
 * 0 no previous run on record, -1 unreadable (err). */
static int load_previous(const char *store_path, const char *schedule_id, prev_table *t, char *prev_job,
                         size_t pjlen, char *err, size_t errlen)
{
    if (access(store_path, F_OK) != 0)
        return 0;
    sqlite3 *db = NULL;
    int rc = -1;
    sqlite3_stmt *st = NULL;
    if (sqlite3_open_v2(store_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        err_set(err, errlen, "cannot open the store: %s", db ? sqlite3_errmsg(db) : "no memory");
        goto out;
    }
    sqlite3_busy_timeout(db, 30000);
    /* One read transaction: the run marker and its hashes agree. */
    if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        goto dberr;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type='table' AND name='record_hash_runs'", -1, &st,
                           NULL) != SQLITE_OK)
        goto dberr;
    int have = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    st = NULL;
    if (!have) {
        rc = 0;
        goto out;
    }
    if (sqlite3_prepare_v2(db, "SELECT job_id FROM record_hash_runs WHERE schedule_id=?", -1, &st, NULL) != SQLITE_OK)
        goto dberr;
    sqlite3_bind_text(st, 1, schedule_id, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        str_copy(prev_job, pjlen, (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    st = NULL;
    if (r != SQLITE_ROW) {
        rc = r == SQLITE_DONE ? 0 : -1;
        if (rc < 0)
            goto dberr;
        goto out;
    }
    if (sqlite3_prepare_v2(db, "SELECT key, hash FROM record_hashes WHERE schedule_id=?", -1, &st, NULL) != SQLITE_OK)
        goto dberr;
    sqlite3_bind_text(st, 1, schedule_id, -1, SQLITE_STATIC);
    for (;;) {
        r = sqlite3_step(st);
        if (r != SQLITE_ROW)
            break;
        const char *k = (const char *)sqlite3_column_text(st, 0);
        if (k == NULL)
            continue;
        if (prev_put(t, k, (uint64_t)sqlite3_column_int64(st, 1)) < 0) {
            err_set(err, errlen, "out of memory");
            goto out;
        }
    }
    if (r != SQLITE_DONE)
        goto dberr;
    rc = 1;
    goto out;
dberr:
    err_set(err, errlen, "store: %s", sqlite3_errmsg(db));
out:
    sqlite3_finalize(st);
    if (db) {
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
        sqlite3_close(db);
    }
    return rc;
}

/* ---- this run's records ---- */

typedef struct {
    uint64_t off, len, line;
    uint64_t newoff; /* in the rewritten work file */
    uint64_t hash;
    char *key;       /* NULL: no match key (not hashed, never dropped) */
    int drop;
    int32_t shard;
} rec_ent;

static int has_note(const job *j, uint64_t line)
{
    size_t lo = 0, hi = j->nnotes;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (j->notes[mid]->line < line)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < j->nnotes && j->notes[lo]->line == line;
}

/* Buffered writes at increasing offsets of the work file. */
typedef struct {
    int fd;
    uint64_t pos; /* where buf goes */
    size_t used;
    char buf[1 << 16];
    int failed;
} writer;

static void w_flush(writer *w)
{
    size_t done = 0;
    while (!w->failed && done < w->used) {
        ssize_t n = pwrite(w->fd, w->buf + done, w->used - done, (off_t)(w->pos + done));
        if (n <= 0)
            w->failed = n < 0 ? errno : EIO;
        else
            done += (size_t)n;
    }
    w->pos += w->used;
    w->used = 0;
}

static void w_put(writer *w, const char *p, size_t n)
{
    while (n > 0) {
        size_t room = sizeof(w->buf) - w->used;
        size_t k = n < room ? n : room;
        memcpy(w->buf + w->used, p, k);
        w->used += k;
        p += k;
        n -= k;
        if (w->used == sizeof(w->buf))
            w_flush(w);
    }
}

/* Rewrite the work file in place without the dropped records' bytes, only
 * their line ends (so line numbers do not move). Every write lands at or
 * before the bytes still to be read, so reading the mapping as it goes is
 * safe. Sets each entry's newoff; *newlen. 0 / -1 with err. */
static int compact(job *j, const char *map, size_t maplen, rec_ent *e, size_t n, uint64_t *newlen, char *err,
                   size_t errlen)
{
    writer *w = malloc(sizeof(*w));
    if (w == NULL) {
        err_set(err, errlen, "out of memory");
        return -1;
    }
    w->fd = j->fd;
    w->pos = 0;
    w->used = 0;
    w->failed = 0;
    uint64_t src = 0;
    for (size_t i = 0; i < n; i++) {
        e[i].newoff = e[i].off - (src - (w->pos + w->used));
        if (!e[i].drop)
            continue;
        w_put(w, map + src, e[i].off - src);
        for (uint64_t k = e[i].off; k < e[i].off + e[i].len; k++)
            if (map[k] == '\r' || map[k] == '\n')
                w_put(w, map + k, 1);
        src = e[i].off + e[i].len;
    }
    w_put(w, map + src, maplen - src);
    w_flush(w);
    *newlen = w->pos;
    int rc = 0;
    if (w->failed || ftruncate(j->fd, (off_t)w->pos) < 0) {
        err_set(err, errlen, "rewriting %s: %s", j->utf8_path, strerror(w->failed ? w->failed : errno));
        rc = -1;
    }
    free(w);
    return rc;
}

/* The shards again, over the records left, as prepare cuts them: shard_size
 * records each, a shard's bytes ending where the next begins. */
static int recut(broker *b, job *j, rec_ent *e, size_t n, uint64_t newlen, char *err, size_t errlen)
{
    const Patronsync__JobOptions *o = j->req->options;
    uint64_t size = o && o->shard_size ? o->shard_size : (uint64_t)b->cfg->shard_size;
    shard *v = NULL;
    size_t nv = 0, cap = 0;
    uint64_t in = 0;
    for (size_t i = 0; i < n; i++) {
        if (e[i].drop)
            continue;
        if (in == 0) {
            if (nv == cap) {
                size_t nc = cap ? cap * 2 : 8;
                shard *x = realloc(v, nc * sizeof(*x));
                if (x == NULL) {
                    free(v);
                    err_set(err, errlen, "out of memory");
                    return -1;
                }
                v = x;
                cap = nc;
            }
            memset(&v[nv], 0, sizeof(v[nv]));
            v[nv].state = SH_PENDING;
            v[nv].off = e[i].newoff;
            v[nv].first_line = e[i].line;
            nv++;
        }
        shard *s = &v[nv - 1];
        s->last_line = e[i].line;
        s->nrec++;
        e[i].shard = (int32_t)(nv - 1);
        if (++in == size)
            in = 0;
    }
    for (size_t i = 0; i < nv; i++)
        v[i].len = (i + 1 < nv ? v[i + 1].off : newlen) - v[i].off;
    free(j->shards);
    j->shards = v;
    j->nshards = nv;
    return 0;
}

static int stage(broker *b, job *j, const rec_ent *e, size_t n, int incremental, uint64_t dropped, int match_id,
                 char *err, size_t errlen)
{
    char dir[CONFIG_STR + 160], path[CONFIG_STR + 200];
    snprintf(dir, sizeof(dir), "%s/%s", b->cfg->stage_dir, j->id);
    snprintf(path, sizeof(path), "%s/incremental.pb", dir);
    size_t nk = 0;
    for (size_t i = 0; i < n; i++)
        nk += e[i].key != NULL;
    Patronsync__RecordHash *rh = calloc(nk ? nk : 1, sizeof(*rh));
    Patronsync__RecordHash **rp = calloc(nk ? nk : 1, sizeof(*rp));
    uint8_t *buf = NULL;
    int rc = -1;
    if (rh == NULL || rp == NULL) {
        err_set(err, errlen, "out of memory");
        goto out;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (e[i].key == NULL)
            continue;
        patronsync__record_hash__init(&rh[k]);
        rh[k].key = e[i].key;
        rh[k].hash = e[i].hash;
        rh[k].line = e[i].line;
        rh[k].shard = e[i].drop ? -1 : e[i].shard;
        rp[k] = &rh[k];
        k++;
    }
    Patronsync__RecordHashes m = PATRONSYNC__RECORD_HASHES__INIT;
    m.schedule_id = j->req->options->schedule_id;
    m.incremental = incremental;
    m.dropped = dropped;
    m.records = rp;
    m.n_records = nk;
    m.match_district_id = match_id;
    m.fired_at_ms = j->req->fired_at_ms;
    size_t len = patronsync__record_hashes__get_packed_size(&m);
    buf = malloc(len ? len : 1);
    if (buf == NULL) {
        err_set(err, errlen, "out of memory");
        goto out;
    }
    patronsync__record_hashes__pack(&m, buf);
    if (mkdir_p(dir, 0750, err, errlen) < 0 || file_write_atomic(path, buf, len, err, errlen) < 0)
        goto out;
    rc = 0;
out:
    free(rh);
    free(rp);
    free(buf);
    return rc;
}

/* Which shard holds each kept record, when the shards were not cut again. */
static void assign_shards(const job *j, rec_ent *e, size_t n)
{
    size_t s = 0;
    for (size_t i = 0; i < n; i++) {
        while (s < j->nshards && j->shards[s].last_line < e[i].line)
            s++;
        e[i].shard = s < j->nshards ? (int32_t)s : -1;
    }
}

int incremental_prepare(broker *b, job *j, const profile *prof, const char *map, size_t maplen, char *err,
                        size_t errlen)
{
    const Patronsync__JobRequest *req = j->req;
    const Patronsync__JobOptions *o = req->options;
    if (o == NULL || o->schedule_id == NULL || o->schedule_id[0] == '\0' || (!o->incremental && !o->keep_hashes))
        return 0;
    int rc = -1;
    rec_ent *e = NULL;
    size_t n = 0, cap = 0;
    prev_table prev;
    memset(&prev, 0, sizeof(prev));
    patron_rec rec;
    patron_rec_init(&rec);
    csvrow *row = csvrow_new((size_t)b->cfg->max_fields);
    char e2[ERRLEN], prev_job[128] = "", note[ERRLEN + 256] = "";
    if (row == NULL)
        goto oom;

    /* The hash covers what decides a record's outcome besides the store:
     * the properties file, the encoding and the record's bytes. */
    const char *enc = req->encoding[0] ? req->encoding : profile_encoding(prof);
    uint64_t seed = hash64(req->profile_text, strlen(req->profile_text), HASH64_SEED);
    seed = hash64(enc, strlen(enc), seed);
    int match_id = profile_match_district_id(prof);
    int key_field = match_id ? PF_DISTRICT_ID : PF_BARCODE;

    int loaded = 0;
    /* Until the missing-patron step counts the records left out as seen,
     * a schedule that inactivates missing patrons processes every record
     * (else every unchanged patron would look missing). */
    int may_drop = o->incremental && !o->inactivate_missing;
    if (o->incremental) {
        loaded = load_previous(b->cfg->store_path, o->schedule_id, &prev, prev_job, sizeof(prev_job), e2, sizeof(e2));
        if (loaded < 0) {
            log_warn("job %s: previous record hashes unreadable (%s); every record is processed", j->id, e2);
            snprintf(note, sizeof(note),
                     "Incremental run: the previous run's record hashes could not be read (%s); every record was processed.",
                     e2);
        }
    }

    csvscan sc;
    csvscan_init(&sc, map ? map : "", maplen, 1, (size_t)b->cfg->max_record_bytes);
    csvscan_rec r;
    int64_t skip = profile_rows_to_skip(prof);
    uint64_t dropped = 0, unchanged = 0;
    while (csvscan_next(&sc, &r)) {
        if (skip > 0) {
            skip--;
            continue;
        }
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 4096;
            rec_ent *v = realloc(e, nc * sizeof(*v));
            if (v == NULL)
                goto oom;
            e = v;
            cap = nc;
        }
        rec_ent *x = &e[n++];
        memset(x, 0, sizeof(*x));
        x->off = r.off;
        x->len = r.len;
        x->line = r.line;
        x->shard = -1;
        if ((n & 0xffff) == 0)
            broker_pump(b);
        /* Records decided before sharding (duplicates, unreadable bytes)
         * and broken ones always go to the workers, unhashed. */
        if (r.flags != 0 || has_note(j, r.line))
            continue;
        if (csvrow_parse(row, map + r.off, r.len, e2, sizeof(e2)) < 0)
            continue;
        if (profile_map_field(prof, key_field, csvrow_fields(row), csvrow_lens(row), csvrow_count(row), &rec, e2,
                              sizeof(e2)) < 0 ||
            rec.state[key_field] != PV_VALUE)
            continue;
        const char *k = patron_rec_get(&rec, key_field);
        if (*k == '\0')
            continue;
        x->key = strdup(k);
        if (x->key == NULL)
            goto oom;
        x->hash = hash64(map + r.off, r.len, seed);
        uint64_t ph;
        if (loaded == 1 && prev_get(&prev, k, &ph) && ph == x->hash) {
            unchanged++;
            if (may_drop) {
                x->drop = 1;
                dropped++;
            }
        }
    }
    if (dropped > 0) {
        uint64_t newlen;
        if (compact(j, map, maplen, e, n, &newlen, err, errlen) < 0 || recut(b, j, e, n, newlen, err, errlen) < 0)
            goto out;
        log_info("job %s: incremental: %llu of %llu records unchanged since job %s, left out; %zu shards", j->id,
                 (unsigned long long)dropped, (unsigned long long)n, prev_job, j->nshards);
    } else {
        assign_shards(j, e, n);
    }
    if (stage(b, j, e, n, may_drop, dropped, match_id, err, errlen) < 0)
        goto out;
    if (o->incremental && note[0] == '\0') {
        if (loaded == 0)
            snprintf(note, sizeof(note),
                     "Incremental run: this schedule has no previous run on record; every record was processed.");
        else if (!may_drop)
            snprintf(note, sizeof(note),
                     "Incremental run: %llu records were unchanged since the previous run (job %s); all were processed "
                     "because inactivating missing patrons must see every patron in the file.",
                     (unsigned long long)unchanged, prev_job);
        else
            snprintf(note, sizeof(note),
                     "Incremental run: %llu of %llu records were unchanged since the previous run (job %s) and were not "
                     "processed again; they are counted as read and unchanged.",
                     (unsigned long long)dropped, (unsigned long long)n, prev_job);
    }
    if (note[0] && job_note(j, note) < 0)
        goto oom;
    rc = 0;
    goto out;
oom:
    err_set(err, errlen, "out of memory hashing the records of '%s'", req->file);
out:
    for (size_t i = 0; i < n; i++)
        free(e[i].key);
    free(e);
    prev_free(&prev);
    patron_rec_free(&rec);
    csvrow_destroy(&row);
    return rc;
}
