/* hashes: a schedule's record hashes in the store (lib/store_hashes.h),
 * replaced in the apply step's transaction from what the broker staged
 * (stage_dir/<job>/incremental.pb, written by broker/incremental.c). */
#include "hashes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "seen.h"
#include "stage.h"
#include "store_hashes.h"
#include "util.h"

static int staged_path(const ps_config *c, const char *job, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "%s/%s/incremental.pb", c->stage_dir, job);
    return (n < 0 || (size_t)n >= outlen) ? -1 : 0;
}

/* The staged hashes: 1 read, 0 none staged, -1 error. */
static int load_staged(worker_ctx *w, const char *job, Patronsync__RecordHashes **out, char *err, size_t errlen)
{
    char path[2048];
    *out = NULL;
    if (staged_path(w->cfg, job, path, sizeof(path)) < 0) {
        err_set(err, errlen, "stage path too long");
        return -1;
    }
    if (access(path, F_OK) != 0)
        return 0;
    size_t len;
    char *data = file_read_all(path, (size_t)1 << 34, &len, err, errlen);
    if (data == NULL)
        return -1;
    *out = patronsync__record_hashes__unpack(NULL, len, (const uint8_t *)data);
    free(data);
    if (*out == NULL) {
        log_warn("job %s: staged %s does not decode; the schedule's next Incremental run processes every record", job,
                 path);
        return 0;
    }
    return 1;
}

/* ---- lines that did not reach the store ---- */

typedef struct {
    uint64_t *v;
    size_t n, cap;
} lineset;

static int lines_add(lineset *s, uint64_t line)
{
    if (array_grow(&s->v, &s->cap, s->n + 1, sizeof(*s->v), 256) < 0)
        return -1;
    s->v[s->n++] = line;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int lines_has(const lineset *s, uint64_t line)
{
    return s->n > 0 && bsearch(&line, s->v, s->n, sizeof(uint64_t), cmp_u64) != NULL;
}

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0)
            return 0;
    }
    return -1;
}

/* The SKIP lines of a staged ShardPlan, read straight from its wire form:
 * only field 4 (exceptions) is decoded, the changes (field 5, the bulk of
 * a plan) are stepped over. 0 / -1 (does not decode). */
static int plan_skips(const uint8_t *buf, size_t len, lineset *out)
{
    const uint8_t *p = buf, *end = buf + len;
    while (p < end) {
        uint64_t tag, v;
        if (read_varint(&p, end, &tag) < 0)
            return -1;
        switch (tag & 7) {
        case 0:
            if (read_varint(&p, end, &v) < 0)
                return -1;
            break;
        case 1:
            if (end - p < 8)
                return -1;
            p += 8;
            break;
        case 5:
            if (end - p < 4)
                return -1;
            p += 4;
            break;
        case 2:
            if (read_varint(&p, end, &v) < 0 || v > (uint64_t)(end - p))
                return -1;
            if ((tag >> 3) == 4) {
                Patronsync__Exception *e = patronsync__exception__unpack(NULL, (size_t)v, p);
                if (e == NULL)
                    return -1;
                int r = strcmp(e->outcome, "SKIP") == 0 ? lines_add(out, e->line) : 0;
                patronsync__exception__free_unpacked(e, NULL);
                if (r < 0)
                    return -1;
            }
            p += v;
            break;
        default:
            return -1;
        }
    }
    return 0;
}

static int refused_lines(worker_ctx *w, const Patronsync__ApplyTask *t, const exc_list *exc, lineset *out, char *err,
                         size_t errlen)
{
    for (size_t i = 0; i < exc->n; i++)
        if (strcmp(exc->v[i]->outcome, "SKIP") == 0 && lines_add(out, exc->v[i]->line) < 0)
            goto oom;
    for (uint32_t s = 0; s < t->nshards; s++) {
        if (task_shard_failed(t, s))
            continue;
        char path[2048];
        if (stage_plan_path(w->cfg, t->job_id, s, path, sizeof(path)) < 0) {
            err_set(err, errlen, "stage path too long");
            return -1;
        }
        size_t len;
        char *data = file_read_all(path, (size_t)1 << 34, &len, err, errlen);
        if (data == NULL)
            return -1;
        int r = plan_skips((const uint8_t *)data, len, out);
        free(data);
        if (r < 0) {
            err_set(err, errlen, "staged plan %s does not decode", path);
            return -1;
        }
    }
    if (out->n > 0)
        qsort(out->v, out->n, sizeof(uint64_t), cmp_u64);
    return 0;
oom:
    err_set(err, errlen, "out of memory");
    return -1;
}

/* The hashes of the records that reached the store become the schedule's. */
static int keep_hashes(worker_ctx *w, const Patronsync__ApplyTask *t, const Patronsync__RecordHashes *m,
                       const lineset *refused, char *err, size_t errlen)
{
    const char *sched = t->options->schedule_id;
    uint64_t kept = 0;
    for (size_t i = 0; i < m->n_records; i++) {
        const Patronsync__RecordHash *h = m->records[i];
        /* Left out (shard -1): applied by an earlier run and unchanged. */
        if (h->shard >= 0 && (task_shard_failed(t, (uint32_t)h->shard) || lines_has(refused, h->line)))
            continue;
        if (store_hashes_put(w->st, sched, h->key, h->hash, err, errlen) < 0)
            return -1;
        kept++;
    }
    if (store_hashes_run_put(w->st, sched, t->job_id, kept, m->fired_at_ms, err, errlen) < 0)
        return -1;
    log_info("job %s: %llu record hashes kept for schedule %s (%llu left out as unchanged, %zu lines refused)",
             t->job_id, (unsigned long long)kept, sched, (unsigned long long)m->dropped, refused->n);
    return 0;
}

int hashes_apply(worker_ctx *w, const Patronsync__ApplyTask *t, Patronsync__Counts *counts, const exc_list *exc,
                 char *err, size_t errlen)
{
    const Patronsync__JobOptions *o = t->options;
    if (o == NULL || o->schedule_id == NULL || o->schedule_id[0] == '\0')
        return 0;
    Patronsync__RecordHashes *m = NULL;
    lineset refused = {0};
    int rc = -1;
    int r = load_staged(w, t->job_id, &m, err, errlen);
    if (r < 0)
        goto out;
    /* A job fired before the one that left the hashes, applied after it
     * (a held job approved late): the store is no longer what either saw. */
    int newer = 0;
    if (r == 1) {
        int64_t fired = 0;
        int had = store_hashes_fired(w->st, o->schedule_id, &fired, err, errlen);
        if (had < 0)
            goto out;
        newer = had == 1 && fired > m->fired_at_ms;
        counts->read += m->dropped;
        counts->unchanged += m->dropped;
    }
    if (store_hashes_clear(w->st, o->schedule_id, err, errlen) < 0)
        goto out;
    if (r == 0 || newer) {
        if (newer)
            log_info("job %s applied after a later job of schedule %s: its record hashes are cleared", t->job_id,
                     o->schedule_id);
        rc = 0;
        goto out;
    }
    if (refused_lines(w, t, exc, &refused, err, errlen) < 0)
        goto out;
    rc = keep_hashes(w, t, m, &refused, err, errlen);
out:
    free(refused.v);
    if (m)
        patronsync__record_hashes__free_unpacked(m, NULL);
    return rc;
}

int hashes_unsent_patrons(worker_ctx *w, const char *job, int64_t **ids, size_t *nids, char ***sites,
                          size_t *nsites, char *err, size_t errlen)
{
    *ids = NULL;
    *nids = 0;
    *sites = NULL;
    *nsites = 0;
    Patronsync__RecordHashes *m = NULL;
    int r = load_staged(w, job, &m, err, errlen);
    if (r <= 0)
        return r;
    int rc = -1;
    seen_set got;
    seen_init(&got);
    patron_rec rec;
    patron_rec_init(&rec);
    int by = m->match_district_id ? PF_DISTRICT_ID : PF_BARCODE;
    for (size_t i = 0; i < m->n_records; i++) {
        if (m->records[i]->shard >= 0)
            continue;
        store_patron_meta meta;
        int found = store_find(w->st, by, m->records[i]->key, &rec, &meta, err, errlen);
        if (found < 0)
            goto out;
        if (found == 0)
            continue;
        if (seen_id(&got, meta.id) < 0 || seen_site(&got, patron_rec_get(&rec, PF_SITE_SHORT_NAME)) < 0) {
            err_set(err, errlen, "out of memory");
            goto out;
        }
    }
    *nids = seen_sort_unique(got.ids, got.n);
    *ids = got.ids;
    *sites = got.sites;
    *nsites = got.nsites;
    got.ids = NULL;
    got.n = 0;
    got.sites = NULL;
    got.nsites = 0;
    rc = 0;
out:
    seen_free(&got);
    patron_rec_free(&rec);
    patronsync__record_hashes__free_unpacked(m, NULL);
    return rc;
}
