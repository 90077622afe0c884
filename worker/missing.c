/* missing: the missing-patron step of a job — patrons missing from the
 * file, the safety thresholds, and the preview of a held job or a dry run.
 *
 * Staged beside the shard plans (DIR = stage_dir/<job>/):
 *   shard-<n>.seen   ShardSeen: what planning saw (seen.h)
 *   finish.plan      ShardPlan: a held job's missing-patron list and preview
 *                    counts, applied as is when an operator approves
 * Changing either: add proto fields; never reuse numbers. */
#include "missing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "before.h"
#include "hashes.h"
#include "log.h"
#include "safety.h"
#include "seen.h"
#include "stage.h"
#include "util.h"

/* The held job's list: DIR/<job>/finish.plan (its name kept from before
 * the step was called "missing": held jobs staged then are approved too). */
static int list_path(const ps_config *c, const char *job, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "%s/%s/finish.plan", c->stage_dir, job);
    return (n < 0 || (size_t)n >= outlen) ? -1 : 0;
}

/* One decision about one patron. */
typedef struct {
    int op;            /* SAFETY_OP_INACTIVATE, _DELETE_MISSING, _MARK_MISSING, _CLEAR_MISSING */
    int64_t id;
    uint64_t hash;     /* its row_hash when decided (re-checked when applied) */
    char since[11];    /* the day it went missing */
    char *district_id; /* for lines (inactivate and delete only) */
} action;

struct missing {
    store *rd;        /* missing_begin only: reads the store as it was before the job */
    worker_ctx *w;
    const Patronsync__ApplyTask *t;
    int64_t began_ms; /* for the log line */
    Patronsync__JobOptions defaults;
    const Patronsync__JobOptions *o;
    char today[11];
    int64_t today_day;
    int64_t *seen; /* stored patrons seen in the file, sorted */
    size_t nseen;
    char **sites; /* the scope's sites, sorted */
    size_t nsites;
    uint64_t scope; /* patrons in scope before the job */
    action *acts;
    size_t nacts, capacts;
    exc_list decided; /* lines decided up front ("Unable to delete ...") */
    exc_list done;    /* lines of what was applied */
    exc_list notes;   /* job-level statements (line 0, outcome NOTE) */
    Patronsync__Counts preview; /* an approved job: what its preview showed */
    int have_preview;
    uint64_t stale;   /* an approved job: finishing changes no longer valid */
    int crossed;
    char reason[1024];
    Patronsync__Counts shown; /* the counts the summary shows (staged with a held job's list) */
    int unsent_known; /* an Incremental run: the records it left out are seen too */
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_seen(const missing *f, int64_t id)
{
    return seen_has(f->seen, f->nseen, id);
}

static int act_push(missing *f, int op, int64_t id, uint64_t hash, const char *since, const char *district_id)
{
    if (f->nacts == f->capacts) {
        size_t cap = f->capacts ? f->capacts * 2 : 256;
        action *v = realloc(f->acts, cap * sizeof(*v));
        if (v == NULL)
            return -1;
        f->acts = v;
        f->capacts = cap;
    }
    action *a = &f->acts[f->nacts];
    memset(a, 0, sizeof(*a));
    a->op = op;
    a->id = id;
    a->hash = hash;
    str_copy(a->since, sizeof(a->since), since);
    if (district_id != NULL) {
        a->district_id = strdup(district_id);
        if (a->district_id == NULL)
            return -1;
    }
    f->nacts++;
    return 0;
}

/* The scope's sites as the job lists them. 0 / -1 with err. */
static int copy_scope_sites(missing *f, char *err, size_t errlen)
{
    const Patronsync__JobOptions *o = f->o;
    f->sites = calloc(o->n_scope_sites, sizeof(char *));
    if (f->sites == NULL)
        goto oom;
    for (; f->nsites < o->n_scope_sites; f->nsites++) {
        f->sites[f->nsites] = strdup(o->scope_sites[f->nsites]);
        if (f->sites[f->nsites] == NULL)
            goto oom;
    }
    return 0;
oom:
    err_set(err, errlen, "out of memory");
    return -1;
}

/* Read every non-failed shard's seen file: ids merged and sorted (when
 * want_ids: only the missing-patron step needs them), sites into the scope
 * when the job lists none. 1 read, 0 a shard's is missing (planned before
 * seen files existed: the missing step must not run), -1. */
static int load_seen(missing *f, int want_ids, char *err, size_t errlen)
{
    const Patronsync__ApplyTask *t = f->t;
    seen_set acc;
    seen_init(&acc);
    int rc = 1;
    for (uint32_t s = 0; s < t->nshards && rc == 1; s++) {
        if (task_shard_failed(t, s))
            continue;
        rc = seen_merge_file(f->w->cfg, t->job_id, s, want_ids, &acc, err, errlen);
        if (rc == 0)
            exc_add(&f->notes, 0, "", "", "NOTE",
                    "Missing patrons were not looked for: what shard %u saw is not staged (planned by an older worker).", s);
    }
    if (rc == 1 && f->o->n_scope_sites > 0 && copy_scope_sites(f, err, errlen) < 0)
        rc = -1;
    if (rc == 1) {
        f->seen = acc.ids;
        f->nseen = seen_sort_unique(acc.ids, acc.n);
        acc.ids = NULL;
        acc.n = 0;
        if (f->o->n_scope_sites == 0) {
            f->sites = acc.sites;
            f->nsites = acc.nsites;
            acc.sites = NULL;
            acc.nsites = 0;
        }
        if (f->nsites > 0)
            qsort(f->sites, f->nsites, sizeof(char *), cmp_str);
    }
    seen_free(&acc);
    return rc;
}

/* The job's scope as the store asks it. */
static store_scope scope_of(const missing *f)
{
    store_scope sc = {f->sites, f->nsites, f->o->scope_types, f->o->n_scope_types};
    return sc;
}

static int count_scope(missing *f, char *err, size_t errlen)
{
    store_scope sc = scope_of(f);
    return store_scope_count(f->rd, &sc, &f->scope, err, errlen);
}

/* Ids the store gives that were (want_seen) or were not seen in the file. */
typedef struct {
    const missing *f;
    int want_seen;
    int64_t *v;
    size_t n, cap;
} id_pick;

static int pick_id(void *arg, int64_t id)
{
    id_pick *p = arg;
    if (is_seen(p->f, id) != p->want_seen)
        return 0;
    if (array_grow(&p->v, &p->cap, p->n + 1, sizeof(*p->v), 256) < 0)
        return -1;
    p->v[p->n++] = id;
    return 0;
}

static int is_inactive(const patron_rec *rec)
{
    return strcasecmp(patron_rec_get(rec, PF_STATUS), "I") == 0;
}

/* Seen patrons that were missing are cleared. 0 / -1. */
static int decide_seen_again(missing *f, char *err, size_t errlen)
{
    id_pick p = {f, 1, NULL, 0, 0};
    int rc = store_missing_each(f->rd, pick_id, &p, err, errlen);
    for (size_t i = 0; rc == 0 && i < p.n; i++)
        if (act_push(f, SAFETY_OP_CLEAR_MISSING, p.v[i], 0, "", NULL) < 0) {
            err_set(err, errlen, "out of memory deciding the missing patrons");
            rc = -1;
        }
    free(p.v);
    return rc;
}

/* One patron in scope not seen in the file: marked, then inactivated after
 * the grace days, then deleted after the further days (never with
 * checkouts or fines unless allowed). 0 / -1 (out of memory). */
static int decide_unseen(missing *f, int64_t id, const patron_rec *rec, const store_patron_meta *meta,
                         const store_patron_extra *x)
{
    const Patronsync__JobOptions *o = f->o;
    int64_t since_day;
    const char *since = x->missing_since;
    int marked = since[0] != '\0' && safety_day_number(since, &since_day) == 0;
    if (!marked) {
        since = f->today;
        since_day = f->today_day;
    }
    int64_t days = f->today_day - since_day;
    if (days < 0)
        days = 0;
    int inact_due = days >= (int64_t)o->days_before_inactivate;
    int del_due = o->delete_after_days >= 0 && days >= (int64_t)o->days_before_inactivate + o->delete_after_days;
    const char *did = patron_rec_get(rec, PF_DISTRICT_ID);
    if (del_due) {
        if ((meta->checkouts > 0 || meta->fines_cents > 0) && !o->allow_delete_outstanding) {
            char name[200];
            rules_display_name(rec, name, sizeof(name));
            if (exc_add(&f->decided, 0, did, name, "KEEP",
                        "Unable to delete patron (%s); patron has outstanding transactions.", did) < 0)
                return -1;
        } else {
            return act_push(f, SAFETY_OP_DELETE_MISSING, id, meta->hash, since, did);
        }
    }
    if (inact_due && !is_inactive(rec))
        return act_push(f, SAFETY_OP_INACTIVATE, id, meta->hash, since, did);
    if (!marked)
        return act_push(f, SAFETY_OP_MARK_MISSING, id, meta->hash, since, NULL);
    return 0;
}

/* Decide, against the store before the job's changes: seen patrons that
 * were missing are cleared; patrons in scope not seen are decided one by
 * one (decide_unseen). Counts the patrons in scope (f->scope) on the way. */
static int decide(missing *f, char *err, size_t errlen)
{
    store *st = f->rd;
    if (decide_seen_again(f, err, errlen) < 0)
        return -1;
    if (f->nsites == 0) {
        exc_add(&f->notes, 0, "", "", "NOTE",
                "Missing patrons were not looked for: no valid record of the file names a site, and the scope lists none.");
        return 0;
    }
    store_scope sc = scope_of(f);
    id_pick p = {f, 0, NULL, 0, 0};
    if (store_scope_each(st, &sc, pick_id, &p, &f->scope, err, errlen) < 0) {
        free(p.v);
        return -1;
    }
    int rc = -1;
    patron_rec rec;
    patron_rec_init(&rec);
    for (size_t i = 0; i < p.n; i++) {
        store_patron_meta meta;
        store_patron_extra x;
        int found = store_get(st, p.v[i], &rec, &meta, err, errlen);
        if (found > 0)
            found = store_extra_get(st, p.v[i], &x, err, errlen);
        if (found < 0)
            goto out;
        if (found && decide_unseen(f, p.v[i], &rec, &meta, &x) < 0) {
            err_set(err, errlen, "out of memory deciding the missing patrons");
            goto out;
        }
    }
    rc = 0;
out:
    free(p.v);
    patron_rec_free(&rec);
    return rc;
}

/* An approved job: the finishing list staged with its preview. 1 loaded,
 * 0 none staged, -1 error. */
static int load_staged(missing *f, char *err, size_t errlen)
{
    char path[2048];
    if (list_path(f->w->cfg, f->t->job_id, path, sizeof(path)) < 0 || access(path, F_OK) != 0)
        return 0;
    Patronsync__ShardPlan *p = stage_read_plan_file(path, err, errlen);
    if (p == NULL)
        return -1;
    int rc = 1;
    if (p->counts) {
        f->preview = *p->counts;
        f->have_preview = 1;
    }
    for (size_t i = 0; i < p->n_changes && rc == 1; i++) {
        const Patronsync__Change *c = p->changes[i];
        int named = c->op == SAFETY_OP_INACTIVATE || c->op == SAFETY_OP_DELETE_MISSING;
        if (act_push(f, (int)c->op, c->patron_id, c->before_hash, c->missing_since, named ? c->key : NULL) < 0)
            rc = -1;
    }
    for (size_t i = 0; i < p->n_exceptions && rc == 1; i++) {
        const Patronsync__Exception *e = p->exceptions[i];
        if (exc_add(&f->decided, e->line, e->district_id, e->name, e->outcome, "%s", e->message) < 0)
            rc = -1;
    }
    if (rc < 0)
        err_set(err, errlen, "out of memory reading %s", path);
    patronsync__shard_plan__free_unpacked(p, NULL);
    return rc;
}

/* An Incremental run: the records the broker left out as unchanged are in
 * the file as much as those the shards saw (worker/hashes.c knows which
 * they are). Without its staged list, nothing is known (unsent_known 0). */
static int add_unsent(missing *f, char *err, size_t errlen)
{
    char path[2048];
    int n = snprintf(path, sizeof(path), "%s/%s/incremental.pb", f->w->cfg->stage_dir, f->t->job_id);
    if (n < 0 || (size_t)n >= sizeof(path) || access(path, F_OK) != 0)
        return 0;
    int64_t *ids = NULL;
    size_t nids = 0, nsites = 0;
    char **sites = NULL;
    if (hashes_unsent_patrons(f->w, f->t->job_id, &ids, &nids, &sites, &nsites, err, errlen) < 0)
        return -1;
    int rc = -1;
    int64_t *v = realloc(f->seen, (f->nseen + nids + 1) * sizeof(*v));
    if (v == NULL)
        goto out;
    f->seen = v;
    if (nids > 0) {
        memcpy(f->seen + f->nseen, ids, nids * sizeof(*ids));
        f->nseen = seen_sort_unique(f->seen, f->nseen + nids);
    }
    for (size_t i = 0; i < nsites && f->o->n_scope_sites == 0; i++) {
        int have = 0;
        for (size_t k = 0; k < f->nsites && !have; k++)
            have = strcmp(f->sites[k], sites[i]) == 0;
        if (have)
            continue;
        char **nv = realloc(f->sites, (f->nsites + 1) * sizeof(*nv));
        if (nv == NULL)
            goto out;
        f->sites = nv;
        f->sites[f->nsites++] = sites[i];
        sites[i] = NULL;
    }
    if (f->nsites > 1)
        qsort(f->sites, f->nsites, sizeof(char *), cmp_str);
    f->unsent_known = 1;
    rc = 0;
out:
    if (rc < 0)
        err_set(err, errlen, "out of memory adding the records an Incremental run left out");
    free(ids);
    for (size_t i = 0; i < nsites; i++)
        free(sites[i]);
    free(sites);
    return rc;
}

/* Whether the missing-patron step may run for this job; a note says why
 * not. */
static int may_look(missing *f)
{
    const Patronsync__ApplyTask *t = f->t;
    const Patronsync__JobOptions *o = f->o;
    if (t->n_failed_shards > 0) {
        exc_add(&f->notes, 0, "", "", "NOTE", "Missing patrons were not inactivated: %zu shard%s failed.",
                t->n_failed_shards, t->n_failed_shards == 1 ? "" : "s");
        return 0;
    }
    if (o->incremental && !f->unsent_known) {
        exc_add(&f->notes, 0, "", "", "NOTE",
                "Missing patrons were not looked for: this Incremental run does not say which records it left out.");
        return 0;
    }
    if (t->records_read == 0) {
        /* Whatever the settings: an empty or header-only file is bad
         * input, never "everyone left" (DESIGN.md, failure model). */
        exc_add(&f->notes, 0, "", "", "NOTE", "Missing patrons were not looked for: the file holds no patron records.");
        return 0;
    }
    if (t->records_read < o->min_records) {
        exc_add(&f->notes, 0, "", "", "NOTE",
                "Missing patrons were not looked for: %llu patron records read, fewer than the minimum of %u.",
                (unsigned long long)t->records_read, o->min_records);
        return 0;
    }
    return 1;
}

missing *missing_begin(worker_ctx *w, const Patronsync__ApplyTask *t, store *rd, char *err, size_t errlen)
{
    missing *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        err_set(err, errlen, "out of memory");
        return NULL;
    }
    f->w = w;
    f->t = t;
    f->rd = rd;
    f->began_ms = mono_ms();
    safety_options_init(&f->defaults);
    f->o = t->options ? t->options : &f->defaults;
    exc_list_init(&f->decided);
    exc_list_init(&f->done);
    exc_list_init(&f->notes);
    if (t->today && safety_day_number(t->today, &f->today_day) == 0) {
        str_copy(f->today, sizeof(f->today), t->today);
    } else {
        safety_date_of(now_ms() / 1000, f->today, sizeof(f->today));
        safety_day_number(f->today, &f->today_day);
    }
    const Patronsync__JobOptions *o = f->o;
    if (t->approved) {
        int r = load_staged(f, err, errlen);
        if (r < 0)
            goto err;
        if (r == 1)
            return f;
        /* Held before finishing lists were staged: decide again below. */
    }
    int r = load_seen(f, o->inactivate_missing, err, errlen);
    if (r < 0)
        goto err;
    if (r == 1 && o->incremental && add_unsent(f, err, errlen) < 0)
        goto err;
    int run = o->inactivate_missing && r == 1 && may_look(f);
    /* decide() counts the scope in the scan it makes anyway. */
    if (run ? decide(f, err, errlen) < 0 : count_scope(f, err, errlen) < 0)
        goto err;
    if (run)
        log_info("job %s: %llu patrons in scope, %zu seen in the file, %zu missing-patron changes decided in %lld ms",
                 t->job_id, (unsigned long long)f->scope, f->nseen, f->nacts, (long long)(mono_ms() - f->began_ms));
    f->rd = NULL; /* the caller's, for this call only */
    return f;
err:
    missing_destroy(&f);
    return NULL;
}

/* A decision no longer valid (the patron changed or went since): left
 * alone; an inactivation or deletion says so. 0 / -1 (out of memory). */
static int action_stale(missing *f, const action *a, const patron_rec *rec, int found)
{
    f->stale++;
    if (a->op == SAFETY_OP_MARK_MISSING)
        return 0;
    char name[200] = "";
    if (found)
        rules_display_name(rec, name, sizeof(name));
    return exc_add(&f->done, 0, a->district_id ? a->district_id : "", name, "SKIP",
                   "Patron changed or removed since the preview; not %s.",
                   a->op == SAFETY_OP_INACTIVATE ? "inactivated" : "deleted") < 0
               ? -1
               : 0;
}

/* Delete or inactivate a missing patron (rec: as stored), with its line. */
static int action_remove(missing *f, const action *a, patron_rec *rec, Patronsync__Counts *counts, int64_t *seq,
                         char *err, size_t errlen)
{
    store *st = f->w->st;
    const char *job = f->t->job_id;
    const Patronsync__JobOptions *o = f->o;
    char name[200];
    rules_display_name(rec, name, sizeof(name));
    if (before_save(o, st, job, (*seq)++, a->id, a->op, rec, err, errlen) < 0)
        return -1;
    const char *did = a->district_id ? a->district_id : patron_rec_get(rec, PF_DISTRICT_ID);
    if (a->op == SAFETY_OP_DELETE_MISSING) {
        if (store_delete(st, a->id, err, errlen) < 0)
            return -1;
        counts->deleted++;
        if (exc_add(&f->done, 0, did, name, "INFO", "Patron deleted; missing from the file since %s.", a->since) < 0)
            goto oom;
        return 0;
    }
    const char *h = o->inactive_homeroom ? o->inactive_homeroom : "";
    if (patron_rec_set(rec, PF_STATUS, "I", 1, PV_VALUE) < 0 ||
        (*h && patron_rec_set(rec, PF_HOMEROOM, h, strlen(h), PV_VALUE) < 0))
        goto oom;
    if (store_update(st, a->id, rec, NULL, job, 0, err, errlen) < 0 ||
        store_set_missing(st, a->id, a->since, job, err, errlen) < 0)
        return -1;
    counts->inactivated++;
    if (exc_add(&f->done, 0, did, name, "INFO", "Patron inactivated; missing from the file since %s.", a->since) < 0)
        goto oom;
    return 0;
oom:
    err_set(err, errlen, "out of memory");
    return -1;
}

/* Apply one decision. The row must be as it was when decided (an approval
 * can come days later): else the patron is left alone and, for an
 * inactivation or deletion, the summary says so. */
static int apply_action(missing *f, const action *a, patron_rec *rec, Patronsync__Counts *counts, int64_t *seq,
                        char *err, size_t errlen)
{
    store *st = f->w->st;
    const char *job = f->t->job_id;
    store_patron_meta meta;
    store_patron_extra x;
    int found = store_extra_get(st, a->id, &x, err, errlen);
    if (found < 0)
        return -1;
    if (a->op == SAFETY_OP_CLEAR_MISSING) {
        if (!found || x.missing_since[0] == '\0')
            return 0; /* updated by this job: already cleared */
        if (before_save(f->o, st, job, (*seq)++, a->id, a->op, NULL, err, errlen) < 0)
            return -1;
        return store_set_missing(st, a->id, "", job, err, errlen);
    }
    if (found)
        found = store_get(st, a->id, rec, &meta, err, errlen);
    if (found < 0)
        return -1;
    if (!found || meta.hash != a->hash || (a->op == SAFETY_OP_MARK_MISSING && x.missing_since[0] != '\0')) {
        if (action_stale(f, a, rec, found) == 0)
            return 0;
        err_set(err, errlen, "out of memory");
        return -1;
    }
    if (a->op == SAFETY_OP_MARK_MISSING) {
        if (before_save(f->o, st, job, (*seq)++, a->id, a->op, NULL, err, errlen) < 0)
            return -1;
        return store_set_missing(st, a->id, a->since, job, err, errlen);
    }
    return action_remove(f, a, rec, counts, seq, err, errlen);
}

static int append_lines(exc_list *dst, const exc_list *src)
{
    for (size_t i = 0; i < src->n; i++) {
        const Patronsync__Exception *e = src->v[i];
        if (exc_add(dst, e->line, e->district_id, e->name, e->outcome, "%s", e->message) < 0)
            return -1;
    }
    return 0;
}

int missing_end(missing *f, Patronsync__Counts *counts, exc_list *exc, int64_t *seq, enum missing_verdict *verdict,
               char *reason, size_t reasonlen, char *err, size_t errlen)
{
    patron_rec rec;
    patron_rec_init(&rec);
    int rc = -1;
    int64_t t0 = mono_ms();
    for (size_t i = 0; i < f->nacts; i++) {
        if (apply_action(f, &f->acts[i], &rec, counts, seq, err, errlen) < 0)
            goto out;
    }
    const Patronsync__ApplyTask *t = f->t;
    if (f->nacts > 0)
        log_info("job %s: %zu missing-patron changes applied in %lld ms", t->job_id, f->nacts,
                 (long long)(mono_ms() - t0));
    f->crossed = !t->approved && safety_check(f->o, f->scope, counts, f->reason, sizeof(f->reason));
    f->shown = *counts;
    str_copy(reason, reasonlen, f->reason);
    *verdict = f->o->dry_run ? MISSING_DRY : f->crossed ? MISSING_HOLD : MISSING_APPLY;
    if (t->approved && f->have_preview) {
        const Patronsync__Counts *p = &f->preview;
        if (p->added != counts->added || p->updated != counts->updated || p->inactivated != counts->inactivated ||
            p->deleted != counts->deleted || f->stale > 0)
            exc_add(&f->notes, 0, "", "", "NOTE",
                    "The store changed after the preview: patrons changed since then were left alone (lines marked SKIP). "
                    "Preview: %llu added, %llu updated, %llu inactivated, %llu deleted; applied: %llu, %llu, %llu, %llu.",
                    (unsigned long long)p->added, (unsigned long long)p->updated, (unsigned long long)p->inactivated,
                    (unsigned long long)p->deleted, (unsigned long long)counts->added,
                    (unsigned long long)counts->updated, (unsigned long long)counts->inactivated,
                    (unsigned long long)counts->deleted);
    }
    if (f->o->dry_run && f->crossed)
        exc_add(&f->notes, 0, "", "", "NOTE", "A real run would be held for approval: %s", f->reason);
    if (append_lines(exc, &f->notes) < 0)
        goto oom;
    if (!f->crossed && (append_lines(exc, &f->decided) < 0 || append_lines(exc, &f->done) < 0))
        goto oom;
    rc = 0;
    goto out;
oom:
    err_set(err, errlen, "out of memory");
out:
    patron_rec_free(&rec);
    return rc;
}

/* The preview line of one staged change of a shard. */
static int preview_change(const Patronsync__Change *c, patron_rec *rec, exc_list *exc)
{
    if (stage_change_rec(c, rec) < 0)
        patron_rec_reset(rec);
    char name[200];
    rules_display_name(rec, name, sizeof(name));
    const char *did = patron_rec_get(rec, PF_DISTRICT_ID);
    if (c->op == SAFETY_OP_ADD)
        return exc_add(exc, c->line, did, name, "PREVIEW", "Would be added.");
    if (c->op == SAFETY_OP_UPDATE) {
        strbuf sb;
        sb_init(&sb);
        for (int f = 0; f < PF__COUNT; f++)
            if (c->changed & ((uint64_t)1 << f))
                sb_printf(&sb, "%s%s", sb.len ? ", " : "", f == PF_PASSWORD ? "Password" : patron_fields[f].label);
        int r;
        if (c->site_before && *c->site_before)
            r = exc_add(exc, c->line, did, name, "PREVIEW", "Would be updated (%s); moved from site '%s'.", sb_str(&sb),
                        c->site_before);
        else
            r = exc_add(exc, c->line, did, name, "PREVIEW", "Would be updated (%s).", sb_str(&sb));
        sb_free(&sb);
        return r;
    }
    if (c->op == SAFETY_OP_DELETE)
        return exc_add(exc, c->line, did, name, "PREVIEW", "Would be deleted (a delete rule matched).");
    if (c->op == SAFETY_OP_ASSOC)
        return exc_add(exc, c->line, did, name, "PREVIEW", "Would have its site associations changed.");
    return 0;
}

/* Stage the finishing list for an approval: what was decided, with the
 * preview's counts, so that approving applies exactly it. */
static int stage_list(missing *f, const Patronsync__Counts *preview, char *err, size_t errlen)
{
    char path[2048], dir[2048];
    if (list_path(f->w->cfg, f->t->job_id, path, sizeof(path)) < 0) {
        err_set(err, errlen, "stage path too long");
        return -1;
    }
    /* A job without shards (an empty file) staged nothing yet. */
    snprintf(dir, sizeof(dir), "%s/%s", f->w->cfg->stage_dir, f->t->job_id);
    if (mkdir_p(dir, 0750, err, errlen) < 0)
        return -1;
    Patronsync__Change *cs = calloc(f->nacts ? f->nacts : 1, sizeof(*cs));
    Patronsync__Change **cp = calloc(f->nacts ? f->nacts : 1, sizeof(*cp));
    int rc = -1;
    uint8_t *buf = NULL;
    if (cs == NULL || cp == NULL) {
        err_set(err, errlen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < f->nacts; i++) {
        const action *a = &f->acts[i];
        patronsync__change__init(&cs[i]);
        cs[i].op = (uint32_t)a->op;
        cs[i].patron_id = a->id;
        cs[i].before_hash = a->hash;
        cs[i].missing_since = (char *)a->since;
        cs[i].key = a->district_id ? a->district_id : (char *)"";
        cp[i] = &cs[i];
    }
    Patronsync__ShardPlan p = PATRONSYNC__SHARD_PLAN__INIT;
    p.job_id = (char *)f->t->job_id;
    p.counts = (Patronsync__Counts *)preview;
    p.changes = cp;
    p.n_changes = f->nacts;
    p.exceptions = f->decided.v;
    p.n_exceptions = f->decided.n;
    size_t len = patronsync__shard_plan__get_packed_size(&p);
    buf = malloc(len ? len : 1);
    if (buf == NULL) {
        err_set(err, errlen, "out of memory");
        goto out;
    }
    patronsync__shard_plan__pack(&p, buf);
    rc = file_write_atomic(path, buf, len, err, errlen);
out:
    free(buf);
    free(cs);
    free(cp);
    return rc;
}

int missing_preview(missing *f, exc_list *exc, char *err, size_t errlen)
{
    const Patronsync__ApplyTask *t = f->t;
    patron_rec rec;
    patron_rec_init(&rec);
    int rc = -1;
    for (uint32_t s = 0; s < t->nshards; s++) {
        if (task_shard_failed(t, s))
            continue;
        char path[2048];
        stage_plan_path(f->w->cfg, t->job_id, s, path, sizeof(path));
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
        int r = 0;
        for (size_t i = 0; i < p->n_changes && r == 0; i++) {
            r = preview_change(p->changes[i], &rec, exc);
        }
        patronsync__shard_plan__free_unpacked(p, NULL);
        if (r < 0) {
            err_set(err, errlen, "out of memory writing the preview");
            goto out;
        }
    }
    for (size_t i = 0; i < f->nacts; i++) {
        const action *a = &f->acts[i];
        if (a->op != SAFETY_OP_INACTIVATE && a->op != SAFETY_OP_DELETE_MISSING)
            continue;
        store_patron_meta meta;
        char name[200] = "";
        if (store_get(f->w->st, a->id, &rec, &meta, NULL, 0) == 1)
            rules_display_name(&rec, name, sizeof(name));
        if (exc_add(exc, 0, a->district_id ? a->district_id : "", name, "PREVIEW",
                    "Would be %s; missing from the file since %s.",
                    a->op == SAFETY_OP_INACTIVATE ? "inactivated" : "deleted", a->since) < 0) {
            err_set(err, errlen, "out of memory writing the preview");
            goto out;
        }
    }
    if (append_lines(exc, &f->decided) < 0) {
        err_set(err, errlen, "out of memory writing the preview");
        goto out;
    }
    rc = f->o->dry_run ? 0 : stage_list(f, &f->shown, err, errlen);
out:
    patron_rec_free(&rec);
    return rc;
}

void missing_destroy(missing **fp)
{
    if (fp == NULL || *fp == NULL)
        return;
    missing *f = *fp;
    for (size_t i = 0; i < f->nacts; i++)
        free(f->acts[i].district_id);
    free(f->acts);
    free(f->seen);
    for (size_t i = 0; i < f->nsites; i++)
        free(f->sites[i]);
    free(f->sites);
    exc_list_free(&f->decided);
    exc_list_free(&f->done);
    exc_list_free(&f->notes);
    free(f);
    *fp = NULL;
}
