/* assemble: a job's summary in Redis — every part's result (each
 * shard's, the apply step's) gathered, published again from disk when
 * Redis lost it, its exceptions in line order, its notes, its counts and
 * final state (assemble.h; docs/REDIS.md). */
#include "assemble.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rules.h"
#include "stage.h"
#include "store.h"
#include "summary.h"
#include "util.h"

/* Publish part i (a shard, or i == nshards: the apply step) from the
 * record kept on disk. 0 / -1. */
static int republish(broker *b, job *j, size_t i)
{
    char err[ERRLEN];
    Patronsync__ShardPlan *p = NULL;
    char part[32];
    if (i < j->shards.n) {
        snprintf(part, sizeof(part), "s%06zu", i);
        p = stage_read_plan(b->cfg, j->id, (unsigned)i, err, sizeof(err));
    } else {
        str_copy(part, sizeof(part), "apply");
        store *st = store_open(b->cfg->store_path, 2, STORE_READONLY, err, sizeof(err));
        uint8_t *blob = NULL;
        size_t len = 0;
        if (st != NULL && store_marker_get(st, j->id, "apply", &blob, &len) == 1)
            p = patronsync__shard_plan__unpack(NULL, len, blob);
        else
            err_set(err, sizeof(err), "no apply marker in the store");
        free(blob);
        store_close(&st);
    }
    if (p == NULL) {
        log_error("job %s: result of %s is neither in Redis nor on disk: %s", j->id, part, err);
        return -1;
    }
    int rc = status_publish_result(b->redis, j->id, part, p->counts, p->exceptions, p->n_exceptions, "broker", 0);
    log_warn("job %s: result of %s was missing in Redis; published again from disk", j->id, part);
    patronsync__shard_plan__free_unpacked(p, NULL);
    return rc;
}

static int exc_line_cmp(const void *a, const void *b)
{
    const Patronsync__Exception *x = *(Patronsync__Exception *const *)a;
    const Patronsync__Exception *y = *(Patronsync__Exception *const *)b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return 0;
}

/* Move e into l (l owns it then). 0 / -1 (e freed). */
static int exc_take(exc_list *l, Patronsync__Exception *e)
{
    if (array_grow(&l->v, &l->cap, l->n + 1, sizeof(*l->v), 16) < 0) {
        status_free_exceptions(&e, 1);
        return -1;
    }
    l->v[l->n++] = e;
    return 0;
}

/* A job that failed before its apply committed changed nothing: its counts
 * say so (all but the records read are 0), and what its shards had planned
 * is kept apart (ps:job:ID:planned) and, when it planned any change, said
 * in a note labelled as planned. total: the planned counts in, the job's
 * counts out. 0 / -1. */
static int planned_note(broker *b, job *j, Patronsync__Counts *total)
{
    Patronsync__Counts changed = PATRONSYNC__COUNTS__INIT;
    changed.read = total->read;
    unsigned long long planned = total->added + total->added_with_warnings + total->updated +
                                 total->updated_with_warnings + total->deleted + total->deleted_with_warnings +
                                 total->inactivated;
    char note[600];
    snprintf(note, sizeof(note),
             "Nothing was changed: the job failed before its changes were applied. Its shards had planned "
             "%llu added, %llu updated, %llu deleted, %llu inactivated (not done).",
             (unsigned long long)(total->added + total->added_with_warnings),
             (unsigned long long)(total->updated + total->updated_with_warnings),
             (unsigned long long)(total->deleted + total->deleted_with_warnings), (unsigned long long)total->inactivated);
    if ((planned > 0 && status_job_note(b->redis, j->id, note) < 0) ||
        status_job_clear(b->redis, j->id, SK_BIT(SK_PLANNED)) < 0 ||
        status_job_counts(b->redis, j->id, SK_PLANNED, total) < 0)
        return -1;
    *total = changed;
    return 0;
}

/* One job's summary, step by step (assemble_job). */
typedef struct {
    broker *b;
    job *j;
    int dry, errors_only, applied;
    Patronsync__Counts total; /* the planned counts, then the job's */
    exc_list all;             /* every part's lines */
    exc_list notes;           /* the apply step's job-level lines (outcome NOTE) */
} asm_run;

/* Sort part i's lines into all and notes (errors_only: no INFO line);
 * exc taken. 0 / -1 (no memory; every one freed). */
static int take_lines(asm_run *r, Patronsync__Exception **exc, size_t nexc)
{
    for (size_t k = 0; k < nexc; k++) {
        if (r->errors_only && strcmp(exc[k]->outcome, "INFO") == 0) {
            status_free_exceptions(&exc[k], 1);
            continue;
        }
        exc_list *l = strcmp(exc[k]->outcome, "NOTE") == 0 ? &r->notes : &r->all;
        if (exc_take(l, exc[k]) < 0) {
            status_free_exceptions(exc + k + 1, nexc - k - 1);
            free(exc);
            return -1;
        }
    }
    free(exc);
    return 0;
}

/* Part i's result (a shard's, or i == nshards: the apply step's). 0 / -1
 * (Redis is not there, or a held or dry-run apply step must run again). */
static int gather_part(asm_run *r, size_t i)
{
    job *j = r->j;
    char part[32];
    if (i < j->shards.n) {
        if (j->shards.v[i].state != SH_DONE)
            return 0;
        snprintf(part, sizeof(part), "s%06zu", i);
    } else {
        if (!r->applied)
            return 0;
        str_copy(part, sizeof(part), "apply");
    }
    Patronsync__Counts c;
    Patronsync__Exception **exc = NULL;
    size_t nexc = 0;
    int got = status_read_result(r->b->redis, j->id, part, &c, &exc, &nexc);
    if (got < 0)
        return -1;
    if (got == 0 && i == j->shards.n && (r->dry || j->held)) {
        /* A dry run or a held job keeps no marker to publish its result
         * again from: run its apply step again (it changes nothing). */
        log_warn("job %s: result of its %s apply step lost in Redis; applying again", j->id,
                 r->dry ? "dry-run" : "held");
        j->held = 0;
        j->held_reason[0] = '\0';
        j->final_state[0] = '\0';
        j->apply_state = SH_PENDING;
        j->apply_not_before_ms = 0;
        j->phase = JP_APPLYING;
        return -1;
    }
    if (got == 0) {
        /* Redis lost it (restarted without the last writes): the staged
         * plan or the store's marker is the record; publish it again. */
        if (republish(r->b, j, i) < 0)
            return -1;
        got = status_read_result(r->b->redis, j->id, part, &c, &exc, &nexc);
        if (got != 1)
            return -1;
    }
    if (i == j->shards.n)
        r->total = c; /* the apply step's counts are the job's */
    else if (!r->applied && got == 1)
        counts_add(&r->total, &c);
    return take_lines(r, exc, nexc);
}

/* The exceptions in line order, RPUSHed 500 at a time. 0 / -1. */
static int push_exceptions(asm_run *r)
{
    const char *id = r->j->id;
    exc_list *all = &r->all;
    /* Line order; ties keep the order the parts gave (mergesort-stable by
     * sorting pointers with an index tie-break is not needed: parts are
     * line ranges in order, so equal lines come from one part). */
    if (all->n > 1) /* qsort's pointer may not be NULL, even for nothing to sort */
        qsort(all->v, all->n, sizeof(*all->v), exc_line_cmp);
    if (status_job_clear(r->b->redis, id, SK_BIT(SK_EXCEPTIONS) | SK_BIT(SK_NOTES) | SK_BIT(SK_SUMMARY)) < 0)
        return -1;
    return status_job_exceptions(r->b->redis, id, all->v, all->n);
}

/* The job's notes (ps:job:<id>:notes), in the order a reader wants them. */
static void push_notes(asm_run *r)
{
    broker *b = r->b;
    job *j = r->j;
    for (size_t i = 0; i < j->summary_notes.n; i++)
        status_job_note(b->redis, j->id, j->summary_notes.v[i]);
    for (size_t i = 0; i < j->shards.n; i++) {
        shard *s = &j->shards.v[i];
        if (s->state != SH_FAILED)
            continue;
        char note[600];
        snprintf(note, sizeof(note), "Shard %zu (lines %llu-%llu) failed after %u attempts: %s; its records were not applied and missing patrons were not inactivated.",
                 i, (unsigned long long)s->first_line, (unsigned long long)s->last_line, s->attempt, s->error);
        status_job_note(b->redis, j->id, note);
    }
    if (r->dry)
        status_job_note(b->redis, j->id, "Dry run: the counts and lines are what a run would do; nothing was changed.");
    if (j->approved) {
        char when[40], note[1400];
        job_utc_time(j->approved_ms, when, sizeof(when));
        snprintf(note, sizeof(note), "Held (%s); approved by %s at %s, and applied as previewed.", j->held_reason,
                 j->approved_by, when);
        status_job_note(b->redis, j->id, note);
    }
    for (size_t i = 0; i < r->notes.n; i++)
        status_job_note(b->redis, j->id, r->notes.v[i]->message);
    if (j->held) {
        char note[600];
        snprintf(note, sizeof(note), "Held for approval: nothing was changed. The lines below are the preview. "
                 "'patronctl job approve %s' applies exactly it; 'patronctl job discard %s' ends the job.", j->id, j->id);
        status_job_note(b->redis, j->id, note);
        status_job_set(b->redis, j->id, SK_JOB, "held_reason %s", j->held_reason);
    }
}

/* The counts and the final state. 0 / -1. */
static int push_summary(asm_run *r)
{
    broker *b = r->b;
    job *j = r->j;
    Patronsync__Counts *total = &r->total;
    if (!r->applied)
        total->read = j->records;
    if (!r->applied && !r->dry && !j->held && strcmp(j->final_state, "failed") == 0 && planned_note(b, j, total) < 0)
        return -1;
    if (status_job_counts(b->redis, j->id, SK_SUMMARY, total) < 0)
        return -1;
    const char *state = j->final_state[0]                                         ? j->final_state
                        : j->nfailed > 0 || jobnotes_warned(&j->summary_notes) ? "complete_with_errors"
                                                                                 : "complete";
    if (status_job_set(b->redis, j->id, SK_JOB, "state %s finished_ms %lld error %s shards_done %llu shards_failed %llu phase done",
                       state, (long long)now_ms(), j->error, (unsigned long long)j->ndone,
                  (unsigned long long)j->nfailed) < 0)
        return -1;
    status_job_index(b->redis, j->id, (long long)j->req->fired_at_ms);
    status_event(b->redis, "job %s %s", j->id, state);
    log_info("job %s %s: read %llu, added %llu, updated %llu, unchanged %llu, invalid %llu", j->id, state,
             (unsigned long long)total->read, (unsigned long long)total->added, (unsigned long long)total->updated,
             (unsigned long long)total->unchanged, (unsigned long long)total->invalid_skipped);
    return 0;
}

int assemble_job(broker *b, job *j)
{
    asm_run r;
    memset(&r, 0, sizeof(r));
    r.b = b;
    r.j = j;
    r.dry = j->req->options && j->req->options->dry_run;
    r.errors_only = j->req->options && j->req->options->errors_only;
    r.applied = j->apply_state == SH_DONE;
    patronsync__counts__init(&r.total);
    exc_list_init(&r.all);
    exc_list_init(&r.notes);
    int rc = -1;
    size_t i = 0;
    while (i <= j->shards.n && gather_part(&r, i) == 0)
        i++;
    if (i > j->shards.n && push_exceptions(&r) == 0) {
        push_notes(&r);
        rc = push_summary(&r);
    }
    exc_list_free(&r.all);
    exc_list_free(&r.notes);
    return rc;
}
