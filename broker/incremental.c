/* incremental: a content hash per record of a schedule's job, and for an
 * Incremental run the records unchanged since the schedule's previous run
 * left out before sharding. The hashes of the previous run are read from
 * the store (record_hashes, lib/store_hashes.h; written by worker/hashes.c in the apply
 * step's transaction); this run's are staged for that step as
 * stage_dir/<job>/incremental.pb (RecordHashes). docs/SCHEDULES.md. */
#include "incremental.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "csvscan.h"
#include "jobnotes.h"
#include "log.h"
#include "patron.h"
#include "store_hashes.h"
#include "util.h"
#include "wire.h"

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

static int prev_take(void *arg, const char *key, uint64_t hash)
{
    return prev_put(arg, key, hash);
}

/* The schedule's hashes as its previous applied run left them. 1 loaded,
 * 0 no previous run on record, -1 unreadable (err). */
static int load_previous(const char *store_path, const char *schedule_id, prev_table *t, char *prev_job,
                         size_t pjlen, char *err, size_t errlen)
{
    if (access(store_path, F_OK) != 0)
        return 0;
    store *st = store_open(store_path, 2, STORE_READONLY, err, errlen);
    if (st == NULL)
        return -1;
    int rc = store_hashes_previous(st, schedule_id, prev_job, pjlen, prev_take, t, err, errlen);
    store_close(&st);
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

static int has_note(const prepared *out, uint64_t line)
{
    size_t lo = 0, hi = out->nrecord_notes;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (out->record_notes[mid]->line < line)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < out->nrecord_notes && out->record_notes[lo]->line == line;
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

/* One job's incremental step (incremental_prepare). */
typedef struct {
    const prepare_args *a;
    const Patronsync__JobOptions *o;
    prepared *out;
    const profile *prof;
    const char *map;
    size_t maplen;
    char *err;
    size_t errlen;
    rec_ent *e;           /* every record after the rows to skip */
    size_t n, cap;
    prev_table prev;      /* the previous run's hashes (loaded == 1) */
    int loaded;           /* load_previous: 1, 0 none on record, -1 unreadable */
    char prev_job[128];
    char note[ERRLEN + 256];
    int match_id;         /* matching on District ID (else barcode) */
    int may_drop;         /* unchanged records are left out */
    uint64_t dropped, unchanged;
} incr_run;

/* Rewrite the work file in place without the dropped records' bytes, only
 * their line ends (so line numbers do not move). Every write lands at or
 * before the bytes still to be read, so reading the mapping as it goes is
 * safe. Sets each entry's newoff; *newlen. 0 / -1 with err. */
static int compact(incr_run *r, uint64_t *newlen)
{
    writer *w = malloc(sizeof(*w));
    if (w == NULL) {
        err_set(r->err, r->errlen, "out of memory");
        return -1;
    }
    const char *map = r->map;
    rec_ent *e = r->e;
    w->fd = r->out->fd;
    w->pos = 0;
    w->used = 0;
    w->failed = 0;
    uint64_t src = 0;
    for (size_t i = 0; i < r->n; i++) {
        e[i].newoff = e[i].off - (src - (w->pos + w->used));
        if (!e[i].drop)
            continue;
        w_put(w, map + src, e[i].off - src);
        for (uint64_t k = e[i].off; k < e[i].off + e[i].len; k++)
            if (map[k] == '\r' || map[k] == '\n')
                w_put(w, map + k, 1);
        src = e[i].off + e[i].len;
    }
    w_put(w, map + src, r->maplen - src);
    w_flush(w);
    *newlen = w->pos;
    int rc = 0;
    if (w->failed || ftruncate(r->out->fd, (off_t)w->pos) < 0) {
        err_set(r->err, r->errlen, "rewriting %s: %s", r->a->utf8_path, strerror(w->failed ? w->failed : errno));
        rc = -1;
    }
    free(w);
    return rc;
}

/* The shards again, over the records left, as prepare cuts them: shard_size
 * records each, a shard's bytes ending where the next begins (the last's
 * at the file's end). */
static int recut(incr_run *r, uint64_t newlen)
{
    uint64_t size = r->o->shard_size ? r->o->shard_size : (uint64_t)r->a->cfg->shard_size;
    shard_list v = {0};
    shard_cutter c;
    shard_cutter_init(&c, size, UINT64_MAX);
    for (size_t i = 0; i < r->n; i++) {
        rec_ent *x = &r->e[i];
        if (x->drop)
            continue;
        int64_t k = shard_cut_record(&c, &v, x->newoff, x->len, x->line);
        if (k < 0)
            goto oom;
        x->shard = (int32_t)k;
    }
    if (shard_cut_end(&c, &v, newlen, 1) < 0)
        goto oom;
    shard_list_free(&r->out->shards);
    r->out->shards = v;
    return 0;
oom:
    shard_list_free(&v);
    err_set(r->err, r->errlen, "out of memory");
    return -1;
}

/* Stage this run's hashes for the apply step (RecordHashes). */
static int stage(incr_run *r)
{
    const rec_ent *e = r->e;
    char dir[CONFIG_STR + 160], path[CONFIG_STR + 200];
    snprintf(dir, sizeof(dir), "%s/%s", r->a->cfg->stage_dir, r->a->job_id);
    snprintf(path, sizeof(path), "%s/incremental.pb", dir);
    size_t nk = 0;
    for (size_t i = 0; i < r->n; i++)
        nk += e[i].key != NULL;
    Patronsync__RecordHash *rh = calloc(nk ? nk : 1, sizeof(*rh));
    Patronsync__RecordHash **rp = calloc(nk ? nk : 1, sizeof(*rp));
    uint8_t *buf = NULL;
    int rc = -1;
    if (rh == NULL || rp == NULL) {
        err_set(r->err, r->errlen, "out of memory");
        goto out;
    }
    size_t k = 0;
    for (size_t i = 0; i < r->n; i++) {
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
    m.schedule_id = r->o->schedule_id;
    m.incremental = r->may_drop;
    m.dropped = r->dropped;
    m.records = rp;
    m.n_records = nk;
    m.match_district_id = r->match_id;
    m.fired_at_ms = r->a->req->fired_at_ms;
    size_t len;
    buf = wire_pack(&m.base, &len, r->err, r->errlen);
    if (buf == NULL)
        goto out;
    if (mkdir_p(dir, 0750, r->err, r->errlen) < 0 || file_write_atomic(path, buf, len, r->err, r->errlen) < 0)
        goto out;
    rc = 0;
out:
    free(rh);
    free(rp);
    free(buf);
    return rc;
}

/* Which shard holds each kept record, when the shards were not cut again. */
static void assign_shards(incr_run *r)
{
    const shard_list *l = &r->out->shards;
    size_t s = 0;
    for (size_t i = 0; i < r->n; i++) {
        while (s < l->n && l->v[s].last_line < r->e[i].line)
            s++;
        r->e[i].shard = s < l->n ? (int32_t)s : -1;
    }
}

/* The previous run's hashes, when this is an Incremental run. */
static void incr_load(incr_run *r)
{
    char e2[ERRLEN];
    if (!r->o->incremental)
        return;
    r->loaded = load_previous(r->a->cfg->store_path, r->o->schedule_id, &r->prev, r->prev_job, sizeof(r->prev_job),
                              e2, sizeof(e2));
    if (r->loaded < 0) {
        log_warn("job %s: previous record hashes unreadable (%s); every record is processed", r->a->job_id, e2);
        snprintf(r->note, sizeof(r->note),
                 "Incremental run: the previous run's record hashes could not be read (%s); every record was processed.",
                 e2);
    }
}

/* Hash every record that has a match key, and mark the unchanged ones to
 * drop. 0 / -1 (no memory). */
static int incr_hash(incr_run *r)
{
    const Patronsync__JobRequest *req = r->a->req;
    const char *map = r->map;
    char e2[ERRLEN];
    patron_rec rec;
    patron_rec_init(&rec);
    csvrow *row = csvrow_new((size_t)r->a->cfg->max_fields);
    int rc = -1;
    if (row == NULL)
        goto out;
    /* The hash covers what decides a record's outcome besides the store:
     * the properties file, the encoding and the record's bytes. */
    const char *enc = req->encoding[0] ? req->encoding : profile_encoding(r->prof);
    uint64_t seed = hash64(req->profile_text, strlen(req->profile_text), HASH64_SEED);
    seed = hash64(enc, strlen(enc), seed);
    int key_field = r->match_id ? PF_DISTRICT_ID : PF_BARCODE;
    csvscan sc;
    csvscan_init(&sc, map ? map : "", r->maplen, 1, (size_t)r->a->cfg->max_record_bytes);
    csvscan_rec c;
    int64_t skip = profile_rows_to_skip(r->prof);
    while (csvscan_next(&sc, &c)) {
        if (skip > 0) {
            skip--;
            continue;
        }
        if (array_grow(&r->e, &r->cap, r->n + 1, sizeof(*r->e), 4096) < 0)
            goto out;
        rec_ent *x = &r->e[r->n++];
        memset(x, 0, sizeof(*x));
        x->off = c.off;
        x->len = c.len;
        x->line = c.line;
        x->shard = -1;
        if ((r->n & 0xffff) == 0)
            keepalive_tick(&r->a->ka);
        /* Records decided before sharding (duplicates, unreadable bytes)
         * and broken ones always go to the workers, unhashed. */
        if (c.flags != 0 || has_note(r->out, c.line))
            continue;
        if (csvrow_parse(row, map + c.off, c.len, e2, sizeof(e2)) < 0)
            continue;
        if (profile_map_field(r->prof, key_field, csvrow_fields(row), csvrow_lens(row), csvrow_count(row), &rec, e2,
                              sizeof(e2)) < 0 ||
            rec.state[key_field] != PV_VALUE)
            continue;
        const char *k = patron_rec_get(&rec, key_field);
        if (*k == '\0')
            continue;
        x->key = strdup(k);
        if (x->key == NULL)
            goto out;
        x->hash = hash64(map + c.off, c.len, seed);
        uint64_t ph;
        if (r->loaded == 1 && prev_get(&r->prev, k, &ph) && ph == x->hash) {
            r->unchanged++;
            if (r->may_drop) {
                x->drop = 1;
                r->dropped++;
            }
        }
    }
    rc = 0;
out:
    patron_rec_free(&rec);
    csvrow_destroy(&row);
    return rc;
}

/* The summary's note of an Incremental run (unless one says it already). */
static void incr_note(incr_run *r)
{
    if (!r->o->incremental || r->note[0] != '\0')
        return;
    if (r->loaded == 0)
        snprintf(r->note, sizeof(r->note),
                 "Incremental run: this schedule has no previous run on record; every record was processed.");
    else if (!r->may_drop)
        snprintf(r->note, sizeof(r->note),
                 "Incremental run: %llu records were unchanged since the previous run (job %s); all were processed "
                 "because inactivating missing patrons must see every patron in the file.",
                 (unsigned long long)r->unchanged, r->prev_job);
    else
        snprintf(r->note, sizeof(r->note),
                 "Incremental run: %llu of %llu records were unchanged since the previous run (job %s) and were not "
                 "processed again; they are counted as read and unchanged.",
                 (unsigned long long)r->dropped, (unsigned long long)r->n, r->prev_job);
}

/* Leave the dropped records out (work file and shards), stage the hashes,
 * note what was saved. 0 / -1 with err. */
static int incr_apply(incr_run *r)
{
    if (r->dropped > 0) {
        uint64_t newlen;
        if (compact(r, &newlen) < 0 || recut(r, newlen) < 0)
            return -1;
        log_info("job %s: incremental: %llu of %llu records unchanged since job %s, left out; %zu shards",
                 r->a->job_id, (unsigned long long)r->dropped, (unsigned long long)r->n, r->prev_job,
                 r->out->shards.n);
    } else {
        assign_shards(r);
    }
    if (stage(r) < 0)
        return -1;
    incr_note(r);
    if (r->note[0] && jobnotes_add(&r->out->summary_notes, r->note) < 0) {
        err_set(r->err, r->errlen, "out of memory hashing the records of '%s'", r->a->req->file);
        return -1;
    }
    return 0;
}

int incremental_prepare(const prepare_args *a, prepared *out, const profile *prof, const char *map, size_t maplen,
                        char *err, size_t errlen)
{
    const Patronsync__JobOptions *o = a->req->options;
    if (o == NULL || o->schedule_id == NULL || o->schedule_id[0] == '\0' || (!o->incremental && !o->keep_hashes))
        return 0;
    incr_run *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        err_set(err, errlen, "out of memory hashing the records of '%s'", a->req->file);
        return -1;
    }
    r->a = a;
    r->o = o;
    r->out = out;
    r->prof = prof;
    r->map = map;
    r->maplen = maplen;
    r->err = err;
    r->errlen = errlen;
    r->match_id = profile_match_district_id(prof);
    /* Until the missing-patron step counts the records left out as seen,
     * a schedule that inactivates missing patrons processes every record
     * (else every unchanged patron would look missing). */
    r->may_drop = o->incremental && !o->inactivate_missing;
    incr_load(r);
    int rc = -1;
    if (incr_hash(r) < 0)
        err_set(err, errlen, "out of memory hashing the records of '%s'", a->req->file);
    else
        rc = incr_apply(r);
    for (size_t i = 0; i < r->n; i++)
        free(r->e[i].key);
    free(r->e);
    prev_free(&r->prev);
    free(r);
    return rc;
}
