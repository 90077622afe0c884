/* apply: the single-writer phase of a job — every shard's staged changes
 * written in one transaction with before-images and the job's done-marker,
 * so a repeated apply changes nothing and returns the stored result. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "apply.h"
#include "before.h"
#include "hashes.h"
#include "log.h"
#include "rules.h"
#include "safety.h"
#include "stage.h"
#include "summary.h"
#include "util.h"
#include "wire.h"
#include "missing.h"
#include "stream.h"
#include "task.h"

/* A bulk load (the patrons table was empty when the job began: see
 * store_bulk_begin): the District ID and barcode indexes are gone until
 * the rows are in, so the keys this job has added are kept here, and every
 * planned change other than an add is refused (the plan saw patrons that
 * are no longer there). */
static struct {
    int on;
    strset ids, barcodes;
    int64_t first_id, last_id; /* the rows added: one before-image for them all */
} bulk;

/* Applying one shard's plan: the job, its options and where results go. */
typedef struct {
    worker_ctx *w;
    const char *job;
    const Patronsync__JobOptions *opts;
    Patronsync__Counts *counts;
    exc_list *exc;
    int64_t *seq;
    patron_rec rec, before;
    store_patron_meta meta;
    char name[200];
    const char *id;
    int warned; /* the change's warnings, plus any found here */
    int memo_ok; /* the plan read the reference data the store has now */
} applier;

/* The record memo to keep with the patron written from this change (the
 * store mixes in the row hash it computes anyway): none when a line was
 * given here (warned_now), or the reference data changed since the plan. */
static uint64_t memo_of(const applier *a, const Patronsync__Change *c)
{
    int warned_here = a->warned && !c->warned;
    return a->memo_ok && !warned_here ? c->memo : 0;
}

/* The patron's name for a line, made when a line needs it. */
static const char *applier_name(applier *a)
{
    if (a->name[0] == '\0')
        rules_display_name(&a->rec, a->name, sizeof(a->name));
    return a->name;
}

/* Take back what the plan counted for a change (it is refused or turns out
 * unchanged here). */
static void uncount(applier *a, const Patronsync__Change *c)
{
    Patronsync__Counts *k = a->counts;
    switch (c->op) {
    case 1:
        k->added--;
        if (a->warned)
            k->added_with_warnings--;
        break;
    case 2:
        k->updated--;
        if (a->warned)
            k->updated_with_warnings--;
        if (c->site_before && *c->site_before)
            k->transferred--;
        break;
    case 3:
        k->deleted--;
        if (a->warned)
            k->deleted_with_warnings--;
        break;
    case 4:
        k->updated--;
        break;
    default:
        break;
    }
}

/* The store refuses a planned change: its line says why. */
static void refuse(applier *a, const Patronsync__Change *c, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void refuse(applier *a, const Patronsync__Change *c, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    exc_add(a->exc, c->line, a->id, applier_name(a), "SKIP", "%s", msg);
    uncount(a, c);
    a->counts->invalid_skipped++;
}

/* A warning found while applying: the record now counts "with warnings". */
static void warned_now(applier *a, const Patronsync__Change *c)
{
    if (a->warned)
        return;
    a->warned = 1;
    if (c->op == 1)
        a->counts->added_with_warnings++;
    else if (c->op == 2)
        a->counts->updated_with_warnings++;
}

/* The patron as stored now, checked against what the plan saw: 1 same, 0
 * changed or gone (refused with msg), -1 error. */
static int load_before(applier *a, const Patronsync__Change *c, const char *what, char *err, size_t errlen)
{
    int found = bulk.on ? 0 : store_get(a->w->st, c->patron_id, &a->before, &a->meta, err, errlen);
    if (found < 0)
        return -1;
    if (!found || a->meta.hash != c->before_hash) {
        refuse(a, c, "Patron changed since this job was planned; not %s. Run the file again.", what);
        return 0;
    }
    return 1;
}

/* Reference names that exist in the store (this transaction included), so
 * that a million records do not cost a million lookups: patron types this
 * apply has seen, and every homeroom (read when the apply begins) as
 * homeroom_key makes it. */
static strset known_types, known_homerooms;

/* "site\x1fname" with the name's ASCII letters folded, as homerooms are
 * found (COLLATE NOCASE, per site) into buf; NULL when it does not fit. */
static const char *homeroom_key(const char *site, const char *name, char *buf, size_t buflen)
{
    size_t sl = strlen(site), nl = strlen(name);
    if (sl + nl + 2 > buflen)
        return NULL;
    memcpy(buf, site, sl);
    buf[sl] = '\x1f';
    for (size_t i = 0; i <= nl; i++)
        buf[sl + 1 + i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] + 32 : name[i]);
    return buf;
}

static int know_homeroom(void *arg, const char *site, const char *name)
{
    char buf[1024];
    const char *k = homeroom_key(site, name, buf, sizeof(buf));
    return k == NULL || strset_add(arg, k, strlen(k)) >= 0 ? 0 : -1;
}

static int known(const strset *s, const char *k)
{
    return strset_has(s, k, strlen(k));
}

/* Remember k (best effort: a failed add only costs lookups). */
static void remember(strset *s, const char *k)
{
    (void)strset_add(s, k, strlen(k));
}

static void bulk_reset(void)
{
    strset_free(&bulk.ids);
    strset_free(&bulk.barcodes);
    bulk.on = 0;
    bulk.first_id = bulk.last_id = 0;
}

/* In bulk mode: the keys of a patron just added. 0 / -1. */
static int bulk_remember(const patron_rec *rec)
{
    const char *id = patron_rec_get(rec, PF_DISTRICT_ID), *bc = patron_rec_get(rec, PF_BARCODE);
    if ((*id && strset_add(&bulk.ids, id, strlen(id)) < 0) || (*bc && strset_add(&bulk.barcodes, bc, strlen(bc)) < 0))
        return -1;
    return 0;
}

/* Decisions that depend on the lines before this one in the same file,
 * made here in line order against the store as this job has left it so
 * far: a user name an earlier line took, and a patron type another line
 * created in another spelling. 0 / -1. */
static int in_file_checks(applier *a, const Patronsync__Change *c, const patron_rec *before, char *err,
                          size_t errlen)
{
    store *st = a->w->st;
    const char *type = patron_rec_get(&a->rec, PF_PATRON_TYPE);
    char canon[256];
    if (*type && !known(&known_types, type)) {
        int r = store_ref_canonical(st, STORE_REF_PATRON_TYPE, type, canon, sizeof(canon), err, errlen);
        if (r < 0)
            return -1;
        if (r == 1 && strcmp(canon, type) != 0 && patron_rec_set(&a->rec, PF_PATRON_TYPE, canon, strlen(canon), PV_VALUE) < 0)
            goto oom;
    }
    if (rules_username_changed(&a->rec, before)) {
        const char *u = patron_rec_get(&a->rec, PF_USERNAME);
        int taken = store_username_taken(st, u, before ? c->patron_id : 0, err, errlen);
        if (taken < 0)
            return -1;
        if (taken) {
            int w = 0;
            if (rules_keep_username(c->line, &a->rec, before, a->exc, &w) < 0)
                goto oom;
            warned_now(a, c);
        }
    }
    return 0;
oom:
    err_set(err, errlen, "out of memory");
    return -1;
}

/* After a patron was written: patron types and homerooms it names for the
 * first time are created, with their lines (on the first line that uses
 * them, as lines are applied in order). 0 / -1. */
static int create_refdata(applier *a, const Patronsync__Change *c, char *err, size_t errlen)
{
    store *st = a->w->st;
    const char *type = patron_rec_get(&a->rec, PF_PATRON_TYPE);
    if (*type && !known(&known_types, type)) {
        int r = store_ref_add(st, STORE_REF_PATRON_TYPE, type, a->job, err, errlen);
        if (r < 0)
            return -1;
        if (r == 1)
            exc_add(a->exc, c->line, a->id, applier_name(a), "INFO", RULES_MSG_TYPE_CREATED, type);
        remember(&known_types, type);
    }
    const char *hr = patron_rec_get(&a->rec, PF_HOMEROOM);
    if (*hr == '\0')
        return 0;
    const char *site = patron_rec_get(&a->rec, PF_SITE_SHORT_NAME);
    char buf[1024];
    const char *key = homeroom_key(site, hr, buf, sizeof(buf));
    if (key != NULL && known(&known_homerooms, key))
        return 0;
    /* Not among those that exist: created (a key too long to keep is
     * looked up instead). */
    int r = 1;
    if (key != NULL ? store_homeroom_insert(st, site, hr, a->job, err, errlen) < 0
                    : (r = store_homeroom_add(st, site, hr, a->job, err, errlen)) < 0)
        return -1;
    if (r == 1)
        exc_add(a->exc, c->line, a->id, applier_name(a), "INFO", RULES_MSG_HOMEROOM, hr);
    if (key != NULL)
        remember(&known_homerooms, key);
    return 0;
}

static int apply_add(applier *a, const Patronsync__Change *c, char *err, size_t errlen)
{
    store *st = a->w->st;
    if (in_file_checks(a, c, NULL, err, errlen) < 0)
        return -1;
    if (bulk.on) {
        /* No unique index to refuse it: the keys this job added do. */
        const char *bc = patron_rec_get(&a->rec, PF_BARCODE);
        if (*bc && strset_has(&bulk.barcodes, bc, strlen(bc))) {
            refuse(a, c, RULES_MSG_BARCODE_EXISTS, bc);
            return 0;
        }
        if (*a->id && strset_has(&bulk.ids, a->id, strlen(a->id))) {
            refuse(a, c, RULES_MSG_DISTRICT_ID_TAKEN, a->id);
            return 0;
        }
    }
    int64_t pid;
    char e[ERRLEN];
    if (store_insert(st, &a->rec, a->job, memo_of(a, c), &pid, e, sizeof(e)) < 0) {
        if (!store_refused(st)) {
            err_set(err, errlen, "line %llu: %s", (unsigned long long)c->line, e);
            return -1;
        }
        /* The unique indexes refused it: say which, as the plan would have. */
        const char *bc = patron_rec_get(&a->rec, PF_BARCODE);
        if (*bc && store_value_taken(st, PF_BARCODE, bc, 0) == 1)
            refuse(a, c, RULES_MSG_BARCODE_EXISTS, bc);
        else if (*a->id && store_value_taken(st, PF_DISTRICT_ID, a->id, 0) == 1)
            refuse(a, c, RULES_MSG_DISTRICT_ID_TAKEN, a->id);
        else
            refuse(a, c, "Not added: %s", e);
        return 0;
    }
    if (bulk.on) {
        /* Rows of an empty table get ids one after another. */
        if (bulk_remember(&a->rec) < 0) {
            err_set(err, errlen, "out of memory");
            return -1;
        }
        if (bulk.first_id == 0)
            bulk.first_id = pid;
        bulk.last_id = pid;
    } else if (before_save(a->opts, st, a->job, (*a->seq)++, pid, SAFETY_OP_ADD, NULL, err, errlen) < 0) {
        return -1;
    }
    return create_refdata(a, c, err, errlen);
}

static int apply_update(applier *a, const Patronsync__Change *c, char *err, size_t errlen)
{
    store *st = a->w->st;
    int same = load_before(a, c, "updated", err, errlen);
    if (same <= 0)
        return same;
    if (in_file_checks(a, c, &a->before, err, errlen) < 0)
        return -1;
    const char *bc = patron_rec_get(&a->rec, PF_BARCODE);
    if (*bc && strcmp(bc, patron_rec_get(&a->before, PF_BARCODE)) != 0 &&
        store_value_taken(st, PF_BARCODE, bc, c->patron_id) == 1) {
        refuse(a, c, RULES_MSG_BARCODE_ASSIGNED, bc);
        return 0;
    }
    if (patron_hash(&a->rec) == patron_hash(&a->before)) {
        uncount(a, c); /* what this step kept leaves nothing to change */
        a->counts->unchanged++;
        return 0;
    }
    char e[ERRLEN];
    /* The before-image first: the row's missing_since and updated_job
     * change with the update (before_save reads them). */
    int64_t seq = (*a->seq)++;
    if (before_save(a->opts, st, a->job, seq, c->patron_id, 2, &a->before, err, errlen) < 0)
        return -1;
    if (store_update(st, c->patron_id, &a->rec, &a->before, a->job, memo_of(a, c), e, sizeof(e)) < 0) {
        if (!store_refused(st)) {
            err_set(err, errlen, "line %llu: %s", (unsigned long long)c->line, e);
            return -1;
        }
        if (store_change_drop(st, a->job, seq, err, errlen) < 0)
            return -1;
        refuse(a, c, "Not updated: %s", e);
        return 0;
    }
    if (c->site_before && *c->site_before) {
        exc_add(a->exc, c->line, a->id, applier_name(a), "INFO", RULES_MSG_MOVED, c->site_before);
        /* The new primary site is no longer a secondary one. */
        if (store_assoc_remove(st, c->patron_id, patron_rec_get(&a->rec, PF_SITE_SHORT_NAME), err, errlen) < 0)
            return -1;
    }
    return create_refdata(a, c, err, errlen);
}

/* A DeleteWhen rule: the patron is removed (their site associations with
 * them), unless they gained outstanding transactions since the plan. */
static int apply_delete(applier *a, const Patronsync__Change *c, char *err, size_t errlen)
{
    int same = load_before(a, c, "deleted", err, errlen);
    if (same <= 0)
        return same;
    int allow = a->opts && a->opts->allow_delete_outstanding;
    if ((a->meta.checkouts > 0 || a->meta.fines_cents > 0) && !allow) {
        refuse(a, c, RULES_MSG_OUTSTANDING, c->key);
        return 0;
    }
    if (before_save(a->opts, a->w->st, a->job, (*a->seq)++, c->patron_id, 3, &a->before, err, errlen) < 0)
        return -1;
    return store_delete(a->w->st, c->patron_id, err, errlen);
}

/* An AssociationWhen rule: the patron gains a secondary site. */
static int apply_association(applier *a, const Patronsync__Change *c, char *err, size_t errlen)
{
    int same = load_before(a, c, "associated", err, errlen);
    if (same <= 0)
        return same;
    int r = store_assoc_add(a->w->st, c->patron_id, c->assoc_site, a->job, err, errlen);
    if (r < 0)
        return -1;
    if (r == 0) {
        uncount(a, c);
        a->counts->unchanged++;
        return 0;
    }
    exc_add(a->exc, c->line, a->id, applier_name(a), "INFO", RULES_MSG_ASSOCIATED, c->assoc_site);
    return before_save_assoc(a->w->st, a->job, (*a->seq)++, c->patron_id, c->assoc_site, err, errlen);
}

/* Apply one shard's plan, in line order. Adjusts counts for records the
 * store refused. */
/* One staged change, by its op. 0 / -1 with err. */
static int apply_change(applier *a, const Patronsync__Change *c, char *err, size_t errlen)
{
    switch (c->op) {
    case SAFETY_OP_ADD:
        return apply_add(a, c, err, errlen);
    case SAFETY_OP_UPDATE:
        return apply_update(a, c, err, errlen);
    case SAFETY_OP_DELETE:
        return apply_delete(a, c, err, errlen);
    case SAFETY_OP_ASSOC:
        return apply_association(a, c, err, errlen);
    case SAFETY_OP_MEMO:
        /* Only while the row is the one the plan saw (and never in a bulk
         * load: the table was empty). */
        if (!a->memo_ok || bulk.on)
            return 0;
        return store_memo_set(a->w->st, c->patron_id, c->before_hash, store_memo_of(c->memo, c->before_hash), err,
                              errlen);
    default:
        log_warn("job %s line %llu: staged change with unknown op %u ignored", a->job, (unsigned long long)c->line,
                 c->op);
        return 0;
    }
}

static int apply_plan(worker_ctx *w, const char *job, const Patronsync__JobOptions *opts,
                      const Patronsync__ShardPlan *p, uint64_t ref_gen, Patronsync__Counts *counts, exc_list *exc,
                      int64_t *seq, char *err, size_t errlen)
{
    applier a;
    memset(&a, 0, sizeof(a));
    a.w = w;
    a.job = job;
    a.opts = opts;
    a.counts = counts;
    a.exc = exc;
    a.seq = seq;
    a.memo_ok = p->ref_gen == ref_gen;
    patron_rec_init(&a.rec);
    patron_rec_init(&a.before);
    int rc = 0;
    for (size_t i = 0; i < p->n_changes && rc >= 0; i++) {
        const Patronsync__Change *c = p->changes[i];
        if (stage_change_rec(c, &a.rec) < 0) {
            err_set(err, errlen, "line %llu: staged change does not decode, or out of memory",
                    (unsigned long long)c->line);
            rc = -1;
            break;
        }
        a.name[0] = '\0';
        a.id = patron_rec_get(&a.rec, PF_DISTRICT_ID);
        a.warned = c->warned;
        rc = apply_change(&a, c, err, errlen);
    }
    patron_rec_free(&a.rec);
    patron_rec_free(&a.before);
    return rc < 0 ? -1 : 0;
}

/* Why the last job was held (res->held_reason points here until the
 * result is sent; the worker applies one job at a time). */
static char held_reason[1024];

/* A job held by a threshold, or a dry run: roll back, and publish what
 * would be done (the full preview when a threshold was crossed). 0 / -1. */
static int publish_unapplied(worker_ctx *w, const Patronsync__ApplyTask *t, missing *fin, enum missing_verdict v,
                             Patronsync__Counts *counts, exc_list *exc, Patronsync__ApplyResult *res, char *err,
                             size_t errlen)
{
    store_rollback(w->st);
    if (held_reason[0] != '\0' && missing_preview(fin, exc, err, errlen) < 0)
        return -1;
    if (v == MISSING_HOLD) {
        res->held = 1;
        res->held_reason = held_reason;
        log_info("job %s held: %s", t->job_id, held_reason);
    }
    if (task_publish(w, t->job_id, "apply", counts, exc->v, exc->n, t->attempt, err, errlen) < 0)
        return -1;
    return 0;
}

/* The next shard's plan, read and decoded by a thread of its own while
 * this one writes the current shard (reading plans was ~7 % of a first
 * load's apply). The thread also frees a plan already applied. It never
 * touches the store (SQLite is used from one thread). */
typedef struct {
    pthread_t th;
    int running;
    uint32_t shard;
    char path[2048];
    Patronsync__ShardPlan *plan;  /* read: NULL with err when it could not be */
    Patronsync__ShardPlan *spent; /* to free first */
    char err[ERRLEN];
} plan_reader;

static void *plan_reader_run(void *arg)
{
    plan_reader *r = arg;
    if (r->spent != NULL)
        patronsync__shard_plan__free_unpacked(r->spent, NULL);
    r->spent = NULL;
    r->plan = stage_read_plan_file(r->path, r->err, sizeof(r->err));
    return NULL;
}

/* Start reading shard's plan (staged at path), freeing spent on the way.
 * 0, or -1 when no thread could start (the caller reads it itself). */
static int plan_reader_start(plan_reader *r, uint32_t shard, const char *path, Patronsync__ShardPlan *spent)
{
    r->shard = shard;
    str_copy(r->path, sizeof(r->path), path);
    r->plan = NULL;
    r->spent = spent;
    r->err[0] = '\0';
    if (pthread_create(&r->th, NULL, plan_reader_run, r) != 0)
        return -1;
    r->running = 1;
    return 0;
}

/* The plan the thread read (NULL with err), once it is done. */
static Patronsync__ShardPlan *plan_reader_take(plan_reader *r, char *err, size_t errlen)
{
    pthread_join(r->th, NULL);
    r->running = 0;
    if (r->plan == NULL)
        err_set(err, errlen, "%s", r->err);
    Patronsync__ShardPlan *p = r->plan;
    r->plan = NULL;
    return p;
}

/* Leave nothing behind: the thread's plan and a spent one. */
static void plan_reader_end(plan_reader *r, Patronsync__ShardPlan **spent)
{
    if (r->running) {
        pthread_join(r->th, NULL);
        r->running = 0;
    }
    if (r->plan != NULL)
        patronsync__shard_plan__free_unpacked(r->plan, NULL);
    r->plan = NULL;
    if (*spent != NULL)
        patronsync__shard_plan__free_unpacked(*spent, NULL);
    *spent = NULL;
}

/* Applied before (a retry): the marker holds the result, published again.
 * 1 replayed (*rc its outcome), 0 not applied yet, -1 with err. */
static int apply_replay(worker_ctx *w, const Patronsync__ApplyTask *t, Patronsync__Counts *counts, int *rc,
                        char *err, size_t errlen)
{
    uint8_t *blob = NULL;
    size_t blen = 0;
    int m = store_marker_get(w->st, t->job_id, "apply", &blob, &blen);
    if (m < 0) {
        err_set(err, errlen, "store: reading the job marker: %s", store_errmsg(w->st));
        return -1;
    }
    if (m == 0)
        return 0;
    Patronsync__ShardPlan *old = patronsync__shard_plan__unpack(NULL, blen, blob);
    free(blob);
    if (old == NULL) {
        err_set(err, errlen, "job %s: stored apply result does not decode", t->job_id);
        return -1;
    }
    if (old->counts)
        *counts = *old->counts;
    *rc = task_publish(w, t->job_id, "apply", counts, old->exceptions, old->n_exceptions, t->attempt, err, errlen);
    patronsync__shard_plan__free_unpacked(old, NULL);
    return 1;
}

/* One apply of a job: the task, what it has written so far, the shards'
 * plans as they are read, and where the time goes (logged). */
typedef struct {
    worker_ctx *w;
    const Patronsync__ApplyTask *t;
    Patronsync__ApplyResult *res;
    Patronsync__Counts *counts;
    exc_list exc;
    int64_t seq;      /* the next before-image's number */
    uint64_t ref_gen; /* the reference data generation the store has now */
    missing *fin;
    /* The task as the missing-patron step sees it: for a streaming apply,
     * with the failed shards the broker names at the end. */
    Patronsync__ApplyTask ft;
    stream *sm;                   /* a streaming apply's word from the broker, or NULL */
    uint8_t *applied;             /* streaming: the shards whose plans were applied */
    plan_reader reader;
    Patronsync__ShardPlan *spent; /* the plan last applied, to free */
    int64_t t0, t_read, t_write, t_index, t_finish, t_wait;
} apply_run;

/* Set up: the stream of a streaming apply; then the write transaction, the
 * homerooms that exist, a bulk load when the table is empty. 0 / -1. */
static int run_begin(apply_run *r, char *err, size_t errlen)
{
    worker_ctx *w = r->w;
    const Patronsync__ApplyTask *t = r->t;
    if (t->streaming) {
        r->sm = stream_new(t);
        r->applied = calloc(t->nshards ? t->nshards : 1, 1);
        if (r->sm == NULL || r->applied == NULL) {
            err_set(err, errlen, "out of memory");
            return -1;
        }
    }
    /* The log is copied into the store after the result is out, by a
     * process of its own (worker/main.c), not by this commit. */
    if (store_exec(w->st, "PRAGMA wal_autocheckpoint=0", err, errlen) < 0 || store_begin(w->st, 1, err, errlen) < 0)
        return -1;
    strset_free(&known_types);
    strset_free(&known_homerooms);
    if (store_homerooms_each(w->st, know_homeroom, &known_homerooms, err, errlen) < 0)
        return -1;
    bulk_reset();
    bulk.on = store_bulk_begin(w->st, err, errlen);
    if (bulk.on < 0)
        return -1;
    r->t0 = mono_ms();
    return store_ref_gen(w->st, &r->ref_gen, err, errlen);
}

/* Shard s's plan, read ahead by the reader's thread or read now. NULL
 * with err. */
static Patronsync__ShardPlan *run_read_plan(apply_run *r, uint32_t s, const char *path, char *err, size_t errlen)
{
    int64_t ts = mono_ms();
    Patronsync__ShardPlan *p;
    if (r->reader.running && r->reader.shard == s) {
        p = plan_reader_take(&r->reader, err, errlen);
    } else {
        if (r->reader.running) /* read ahead for a shard since said failed */
            plan_reader_end(&r->reader, &r->spent);
        p = stage_read_plan_file(path, err, errlen);
    }
    r->t_read += mono_ms() - ts;
    return p;
}

/* The next plan, if it is staged already, is read meanwhile. */
static void run_read_ahead(apply_run *r, uint32_t next)
{
    const Patronsync__ApplyTask *t = r->t;
    char next_path[2048];
    if (next < t->nshards && !task_shard_failed(t, next) &&
        stage_plan_path(r->w->cfg, t->job_id, next, next_path, sizeof(next_path)) == 0 &&
        access(next_path, F_OK) == 0 && plan_reader_start(&r->reader, next, next_path, r->spent) == 0)
        r->spent = NULL;
}

/* Shard s: waited for (streaming) or skipped when it failed, then its plan
 * applied. 0 / -1 with err. */
static int run_shard(apply_run *r, uint32_t s, char *err, size_t errlen)
{
    worker_ctx *w = r->w;
    const Patronsync__ApplyTask *t = r->t;
    char path[2048];
    stage_plan_path(w->cfg, t->job_id, s, path, sizeof(path));
    if (r->sm != NULL) {
        int64_t ts = mono_ms();
        stream_progress(w, s);
        int k = stream_await(w, r->sm, s, path, err, errlen);
        r->t_wait += mono_ms() - ts;
        if (k <= 0)
            return k; /* failed (0): as below (a plan read ahead for it is dropped later) */
        r->applied[s] = 1;
    } else if (task_shard_failed(t, s)) {
        return 0; /* its records are not applied; the summary names it */
    }
    Patronsync__ShardPlan *p = run_read_plan(r, s, path, err, errlen);
    if (p == NULL)
        return -1;
    run_read_ahead(r, s + 1);
    if (p->counts)
        counts_add(r->counts, p->counts);
    int64_t ts = mono_ms();
    int k = apply_plan(w, t->job_id, t->options, p, r->ref_gen, r->counts, &r->exc, &r->seq, err, errlen);
    if (w->cfg->test_apply_delay_ms > 0) /* a slow writer, for the pacing tests */
        usleep((useconds_t)w->cfg->test_apply_delay_ms * 1000);
    r->t_write += mono_ms() - ts;
    if (r->spent != NULL) { /* no thread took it */
        ts = mono_ms();
        patronsync__shard_plan__free_unpacked(r->spent, NULL);
        r->t_read += mono_ms() - ts;
    }
    r->spent = p;
    return k;
}

/* A streaming apply, after its last shard: wait for the broker's word that
 * every shard is final; the shards it names failed are the step's. A shard
 * given up after its plan was applied fails the apply (it is applied
 * again). 0 / -1 with err. */
static int run_stream_end(apply_run *r, char *err, size_t errlen)
{
    const Patronsync__ApplyTask *t = r->t;
    int64_t ts = mono_ms();
    stream_progress(r->w, t->nshards);
    int k = stream_await(r->w, r->sm, UINT32_MAX, NULL, err, errlen);
    r->t_wait += mono_ms() - ts;
    if (k < 0)
        return -1;
    r->ft.n_failed_shards = r->sm->last->n_failed_shards;
    r->ft.failed_shards = r->sm->last->failed_shards;
    for (size_t i = 0; i < r->ft.n_failed_shards; i++)
        if (r->ft.failed_shards[i] < t->nshards && r->applied[r->ft.failed_shards[i]]) {
            err_set(err, errlen, "shard %u was given up after its plan was applied; applying again",
                    r->ft.failed_shards[i]);
            return -1;
        }
    return 0;
}

/* After the shards: the missing-patron step decided, the bulk load's
 * indexes built, the record hashes kept, the step applied. 0 / -1. */
static int run_missing(apply_run *r, enum missing_verdict *verdict, char *err, size_t errlen)
{
    worker_ctx *w = r->w;
    int64_t ts = mono_ms();
    /* Missing patrons and the scope are decided against the store as it
     * was before the job: read through a connection of its own, which
     * cannot see this transaction's changes (and nothing else commits while
     * it holds the write lock). */
    store *rd = store_open(w->cfg->store_path, 16, STORE_READONLY, err, errlen);
    if (rd == NULL || store_exec(rd, "PRAGMA mmap_size=0", err, errlen) < 0) {
        store_close(&rd);
        return -1;
    }
    r->fin = missing_begin(w, &r->ft, rd, err, errlen);
    store_close(&rd);
    if (r->fin == NULL)
        return -1;
    r->t_finish = mono_ms() - ts;
    ts = mono_ms();
    if (bulk.on) {
        if (bulk.last_id > 0 &&
            before_save_add_range(w->st, r->t->job_id, r->seq++, bulk.first_id, bulk.last_id, err, errlen) < 0)
            return -1;
        bulk_reset(); /* its keys are not needed to build the indexes */
        if (store_bulk_end(w->st, err, errlen) < 0)
            return -1;
    }
    r->t_index = mono_ms() - ts;
    ts = mono_ms();
    if (hashes_apply(w, &r->ft, r->counts, &r->exc, err, errlen) < 0)
        return -1;
    if (missing_end(r->fin, r->counts, &r->exc, &r->seq, verdict, held_reason, sizeof(held_reason), err, errlen) < 0)
        return -1;
    r->t_finish += mono_ms() - ts;
    return 0;
}

/* The job's done-marker (its result) and the commit. 0 / -1 with err. */
static int run_commit(apply_run *r, char *err, size_t errlen)
{
    worker_ctx *w = r->w;
    const Patronsync__ApplyTask *t = r->t;
    Patronsync__ShardPlan result = PATRONSYNC__SHARD_PLAN__INIT;
    result.job_id = t->job_id;
    result.counts = r->counts;
    result.exceptions = r->exc.v;
    result.n_exceptions = r->exc.n;
    size_t plen = 0;
    uint8_t *blob = wire_pack(&result.base, &plen, err, errlen);
    if (blob == NULL)
        return -1;
    int rc = store_marker_put(w->st, t->job_id, "apply", blob, plen, err, errlen);
    free(blob);
    if (rc < 0)
        return -1;
    int64_t ts = mono_ms();
    if (store_commit(w->st, err, errlen) < 0)
        return -1;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    log_info("job %s apply: %lld ms (waiting for plans %lld, plans read %lld, written %lld, indexes built %lld, "
             "finishing %lld, commit %lld); peak %ld kB",
             t->job_id, (long long)(mono_ms() - r->t0), (long long)r->t_wait, (long long)r->t_read,
             (long long)r->t_write, (long long)r->t_index, (long long)r->t_finish, (long long)(mono_ms() - ts),
             ru.ru_maxrss);
    return 0;
}

static void run_free(apply_run *r)
{
    plan_reader_end(&r->reader, &r->spent);
    bulk_reset();
    stream_destroy(&r->sm);
    free(r->applied);
    missing_destroy(&r->fin);
    exc_list_free(&r->exc);
}

/* Every shard, the missing-patron step and the commit, or a rollback for a
 * held job or a dry run (its result published here). 1 committed, 0 not
 * committed (rolled back, published), -1 with err (the caller rolls back). */
static int run_all(apply_run *r, char *err, size_t errlen)
{
    if (run_begin(r, err, errlen) < 0)
        return -1;
    for (uint32_t s = 0; s < r->t->nshards; s++)
        if (run_shard(r, s, err, errlen) < 0)
            return -1;
    plan_reader_end(&r->reader, &r->spent);
    if (r->sm != NULL && run_stream_end(r, err, errlen) < 0)
        return -1;
    enum missing_verdict verdict;
    if (run_missing(r, &verdict, err, errlen) < 0)
        return -1;
    if (verdict != MISSING_APPLY)
        return publish_unapplied(r->w, r->t, r->fin, verdict, r->counts, &r->exc, r->res, err, errlen) < 0 ? -1 : 0;
    return run_commit(r, err, errlen) < 0 ? -1 : 1;
}

int apply_job(worker_ctx *w, const Patronsync__ApplyTask *t, Patronsync__ApplyResult *res, char *err,
              size_t errlen)
{
    int rc = -1;
    int replayed = apply_replay(w, t, res->counts, &rc, err, errlen);
    if (replayed != 0)
        return replayed < 0 ? -1 : rc;
    apply_run r;
    memset(&r, 0, sizeof(r));
    r.w = w;
    r.t = t;
    r.res = res;
    r.counts = res->counts;
    r.ft = *t;
    exc_list_init(&r.exc);
    held_reason[0] = '\0';
    int k = run_all(&r, err, errlen);
    if (k < 0) {
        store_rollback(w->st);
        res->handed_back = r.sm != NULL && r.sm->handed_back;
    } else {
        rc = k == 0 ? 0 : task_publish(w, t->job_id, "apply", r.counts, r.exc.v, r.exc.n, t->attempt, err, errlen);
    }
    run_free(&r);
    return rc;
}
