/* finish: the finishing step of a job inside the apply transaction —
 * patrons missing from the file (tracked per patron, inactivated, deleted)
 * within the job's scope, the safety thresholds, and the preview that a
 * held job or a dry run shows. docs/SAFETY.md describes the rules. */
#ifndef FINISH_H
#define FINISH_H

#include <stddef.h>
#include <stdint.h>

#include "patron.h"
#include "rules.h"
#include "store.h"
#include "util.h"
#include "worker.h"

/* ---- What planning saw (plan.c fills one per shard) ---- */

/* The stored patrons whose records were in a shard (changed or not: plans
 * stage changed records only) and the sites of its valid records. */
typedef struct {
    int64_t *ids;
    size_t n, cap;
    char **sites;
    size_t nsites, capsites;
    strset site_set; /* the same sites, to look one up (one per record) */
} finish_seen;

void finish_seen_init(finish_seen *s);
/* Note a stored patron / a site of a valid record. 0 / -1 (no memory). */
int finish_seen_id(finish_seen *s, int64_t id);
int finish_seen_site(finish_seen *s, const char *site);
/* Stage it as DIR/<job>/shard-<n>.seen. Call before the shard's plan is
 * staged: a staged plan then implies its seen file. 0 / -1 with err. */
int finish_seen_stage(const ps_config *c, const char *job, unsigned shard, finish_seen *s, char *err,
                      size_t errlen);
void finish_seen_free(finish_seen *s);

/* ---- Before-images ---- */

/* Record in job_changes that job changed patron id (op: lib/safety.h),
 * with its before-image: the record's fields (before; NULL for an add, or
 * for ops 7/8 which keep only missing_since and updated_job) and the rest
 * of its row read from the store (missing_since, checkouts, fines, jobs,
 * and, with a record, its site associations). A dry run (o->dry_run)
 * keeps none: it rolls back, and there is nothing to undo. 0 / -1 with err. */
int finish_save_before(const Patronsync__JobOptions *o, store *st, const char *job, int64_t seq, int64_t id, int op,
                       const patron_rec *before, char *err, size_t errlen);

/* ---- The finishing step ---- */

typedef struct finish finish;

enum finish_verdict {
    FINISH_APPLY, /* commit */
    FINISH_HOLD,  /* a threshold was crossed: roll back, show the preview, wait for an operator */
    FINISH_DRY    /* a dry run: roll back; the lines are what a run would show */
};

/* Begin: what the shards saw, the scope and the number of patrons in it,
 * and the missing patrons (decided now, against the store as it was before
 * the job's changes: rd is a second connection, which does not see the
 * apply transaction's changes; for an approved job, the list staged with
 * its preview). Call after the shards' changes, before finish_end. t is
 * kept (it names the shards that failed). The result is the caller's
 * (finish_destroy). NULL with err. */
finish *finish_begin(worker_ctx *w, const Patronsync__ApplyTask *t, store *rd, char *err, size_t errlen);

/* End, after the shards' changes: apply the missing-patron step (counts
 * inactivated and deleted, before-images numbered from *seq), check the
 * thresholds (not for an approved job) and say what to do. Lines for the
 * summary go to exc, unless a threshold was crossed (finish_preview then
 * gives the preview instead). reason: which threshold and the figures
 * (empty when none). 0 / -1 with err. */
int finish_end(finish *f, Patronsync__Counts *counts, exc_list *exc, int64_t *seq, enum finish_verdict *verdict,
               char *reason, size_t reasonlen, char *err, size_t errlen);

/* After the rollback of a job that crossed a threshold (held, or a dry run
 * that would be held): the full preview into exc, record by record — every
 * staged change of every shard and every patron the finishing step would
 * inactivate or delete — and, when held, the finishing list staged so that
 * an approval applies exactly it. 0 / -1 with err. */
int finish_preview(finish *f, exc_list *exc, char *err, size_t errlen);

void finish_destroy(finish **f);

#endif
