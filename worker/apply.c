/* apply: the single-writer phase of a job — every shard's staged changes
 * written in one transaction with before-images and the job's done-marker,
 * so a repeated apply changes nothing and returns the stored result. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rules.h"
#include "summary.h"
#include "util.h"
#include "worker.h"

static int rec_from_change(const Patronsync__Change *c, patron_rec *rec)
{
    patron_rec_reset(rec);
    for (int f = 0; f < PF__COUNT; f++) {
        const char *v = (size_t)f < c->n_values ? c->values[f] : "";
        if (patron_rec_set(rec, f, v, strlen(v), PV_VALUE) < 0)
            return -1;
    }
    return 0;
}

/* Before-image of a patron as a packed Change (op, values). */
static int save_before(store *st, const char *job, int64_t seq, int64_t id, int op, const patron_rec *before,
                       char *err, size_t errlen)
{
    uint8_t *blob = NULL;
    size_t len = 0;
    if (before != NULL) {
        char *vals[PF__COUNT];
        for (int f = 0; f < PF__COUNT; f++)
            vals[f] = (char *)patron_rec_get(before, f);
        Patronsync__Change c = PATRONSYNC__CHANGE__INIT;
        c.op = (uint32_t)op;
        c.patron_id = id;
        c.n_values = PF__COUNT;
        c.values = vals;
        len = patronsync__change__get_packed_size(&c);
        blob = malloc(len ? len : 1);
        if (blob == NULL) {
            err_set(err, errlen, "out of memory");
            return -1;
        }
        patronsync__change__pack(&c, blob);
    }
    sqlite3_stmt *q = NULL;
    int rc = -1;
    if (sqlite3_prepare_v2(store_db(st), "INSERT OR REPLACE INTO job_changes(job_id,seq,patron_id,op,before) VALUES(?,?,?,?,?)",
                           -1, &q, NULL) != SQLITE_OK) {
        err_set(err, errlen, "store: %s", sqlite3_errmsg(store_db(st)));
        goto out;
    }
    sqlite3_bind_text(q, 1, job, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, seq);
    sqlite3_bind_int64(q, 3, id);
    sqlite3_bind_int(q, 4, op);
    if (blob)
        sqlite3_bind_blob(q, 5, blob, (int)len, SQLITE_STATIC);
    else
        sqlite3_bind_null(q, 5);
    if (sqlite3_step(q) != SQLITE_DONE) {
        err_set(err, errlen, "store: saving a before-image: %s", sqlite3_errmsg(store_db(st)));
        goto out;
    }
    rc = 0;
out:
    sqlite3_finalize(q);
    free(blob);
    return rc;
}

/* Apply one shard's plan. Adjusts counts for records the store refused. */
static int apply_plan(worker_ctx *w, const char *job, const Patronsync__ShardPlan *p, Patronsync__Counts *counts,
                      exc_list *exc, int64_t *seq, char *err, size_t errlen)
{
    patron_rec rec, before;
    patron_rec_init(&rec);
    patron_rec_init(&before);
    int rc = -1;
    for (size_t i = 0; i < p->n_changes; i++) {
        if ((i & 4095) == 4095)
            worker_pump(w);
        const Patronsync__Change *c = p->changes[i];
        if (rec_from_change(c, &rec) < 0) {
            err_set(err, errlen, "out of memory");
            goto out;
        }
        char name[200];
        rules_display_name(&rec, name, sizeof(name));
        const char *id = patron_rec_get(&rec, PF_DISTRICT_ID);
        char e[ERRLEN];
        if (c->op == 1) {
            int64_t pid;
            if (store_insert(w->st, &rec, job, &pid, e, sizeof(e)) < 0) {
                /* Only a uniqueness clash can refuse a planned add (the
                 * store changed since the plan): skip the record. */
                if (sqlite3_errcode(store_db(w->st)) != SQLITE_CONSTRAINT) {
                    err_set(err, errlen, "line %llu: %s", (unsigned long long)c->line, e);
                    goto out;
                }
                exc_add(exc, c->line, id, name, "SKIP", "Not added: %s", e);
                counts->added--;
                if (c->warned)
                    counts->added_with_warnings--;
                counts->invalid_skipped++;
                continue;
            }
            if (save_before(w->st, job, (*seq)++, pid, 1, NULL, err, errlen) < 0)
                goto out;
        } else if (c->op == 2) {
            store_patron_meta meta;
            int found = store_get(w->st, c->patron_id, &before, &meta, err, errlen);
            if (found < 0)
                goto out;
            if (!found || meta.hash != c->before_hash) {
                exc_add(exc, c->line, id, name, "SKIP",
                        "Patron changed since this job was planned; not updated. Run the file again.");
                counts->updated--;
                if (c->warned)
                    counts->updated_with_warnings--;
                if (c->site_before && *c->site_before)
                    counts->transferred--;
                counts->invalid_skipped++;
                continue;
            }
            if (store_update(w->st, c->patron_id, &rec, job, e, sizeof(e)) < 0) {
                if (sqlite3_errcode(store_db(w->st)) != SQLITE_CONSTRAINT) {
                    err_set(err, errlen, "line %llu: %s", (unsigned long long)c->line, e);
                    goto out;
                }
                exc_add(exc, c->line, id, name, "SKIP", "Not updated: %s", e);
                counts->updated--;
                if (c->warned)
                    counts->updated_with_warnings--;
                if (c->site_before && *c->site_before)
                    counts->transferred--;
                counts->invalid_skipped++;
                continue;
            }
            if (save_before(w->st, job, (*seq)++, c->patron_id, 2, &before, err, errlen) < 0)
                goto out;
            if (c->site_before && *c->site_before)
                exc_add(exc, c->line, id, name, "INFO", "Patron was also moved from site '%s'", c->site_before);
        }
    }
    rc = 0;
out:
    patron_rec_free(&rec);
    patron_rec_free(&before);
    return rc;
}

int apply_job(worker_ctx *w, const Patronsync__ApplyTask *t, Patronsync__ApplyResult *res, char *err,
              size_t errlen)
{
    Patronsync__Counts *counts = res->counts;
    uint8_t *blob = NULL;
    size_t blen = 0;
    int m = store_marker_get(w->st, t->job_id, "apply", &blob, &blen);
    if (m < 0) {
        err_set(err, errlen, "store: reading the job marker: %s", sqlite3_errmsg(store_db(w->st)));
        return -1;
    }
    if (m == 1) {
        /* Applied before (a retry): the marker holds the result, published again. */
        Patronsync__ShardPlan *old = patronsync__shard_plan__unpack(NULL, blen, blob);
        free(blob);
        if (old == NULL) {
            err_set(err, errlen, "job %s: stored apply result does not decode", t->job_id);
            return -1;
        }
        if (old->counts)
            *counts = *old->counts;
        int r = worker_publish(w, t->job_id, "apply", counts, old->exceptions, old->n_exceptions, t->attempt);
        patronsync__shard_plan__free_unpacked(old, NULL);
        if (r < 0)
            err_set(err, errlen, "stopped before the result could be published");
        return r;
    }

    exc_list exc;
    exc_list_init(&exc);
    int rc = -1;
    int64_t seq = 0;
    if (store_begin(w->st, 1, err, errlen) < 0)
        goto out;
    for (uint32_t s = 0; s < t->nshards; s++) {
        char path[2048];
        plan_path(w->cfg, t->job_id, s, path, sizeof(path));
        size_t len;
        char *data = file_read_all(path, (size_t)1 << 34, &len, err, errlen);
        if (data == NULL)
            goto out;
        Patronsync__ShardPlan *p = patronsync__shard_plan__unpack(NULL, len, (const uint8_t *)data);
        free(data);
        if (p == NULL) {
            err_set(err, errlen, "staged plan %s does not decode", path);
            goto out;
        }
        if (p->counts)
            summary_counts_add(counts, p->counts);
        int r = apply_plan(w, t->job_id, p, counts, &exc, &seq, err, errlen);
        patronsync__shard_plan__free_unpacked(p, NULL);
        if (r < 0)
            goto out;
        worker_pump(w);
    }
    Patronsync__ShardPlan result = PATRONSYNC__SHARD_PLAN__INIT;
    result.job_id = t->job_id;
    result.counts = counts;
    result.exceptions = exc.v;
    result.n_exceptions = exc.n;
    size_t plen = patronsync__shard_plan__get_packed_size(&result);
    blob = malloc(plen ? plen : 1);
    if (blob == NULL) {
        err_set(err, errlen, "out of memory");
        goto out;
    }
    patronsync__shard_plan__pack(&result, blob);
    if (store_marker_put(w->st, t->job_id, "apply", blob, plen, err, errlen) < 0)
        goto out;
    if (store_commit(w->st, err, errlen) < 0)
        goto out;
    if (worker_publish(w, t->job_id, "apply", counts, exc.v, exc.n, t->attempt) < 0) {
        err_set(err, errlen, "stopped before the result could be published");
        goto out_committed;
    }
    rc = 0;
    goto out_committed;
out:
    store_rollback(w->st);
out_committed:
    free(blob);
    exc_list_free(&exc);
    return rc;
}
