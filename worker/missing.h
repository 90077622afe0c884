/* missing: the missing-patron step of a job inside the apply transaction —
 * patrons missing from the file (tracked per patron, inactivated, deleted)
 * within the job's scope, the safety thresholds, and the preview that a
 * held job or a dry run shows. docs/SAFETY.md describes the rules. */
#ifndef MISSING_H
#define MISSING_H

#include <stddef.h>
#include <stdint.h>

#include "patron.h"
#include "rules.h"
#include "store.h"
#include "task.h"
#include "util.h"

typedef struct missing missing;

enum missing_verdict {
    MISSING_APPLY, /* commit */
    MISSING_HOLD,  /* a threshold was crossed: roll back, show the preview, wait for an operator */
    MISSING_DRY    /* a dry run: roll back; the lines are what a run would show */
};

/* Begin: what the shards saw (seen.h), the scope and the number of
 * patrons in it, and the missing patrons (decided now, against the store
 * as it was before the job's changes: rd is a second connection, which
 * does not see the apply transaction's changes; for an approved job, the
 * list staged with its preview). Call after the shards' changes, before
 * missing_end. t is kept (it names the shards that failed). The result is
 * the caller's (missing_destroy). NULL with err. */
missing *missing_begin(worker_ctx *w, const Patronsync__ApplyTask *t, store *rd, char *err, size_t errlen);

/* End, after the shards' changes: apply the missing-patron step (counts
 * inactivated and deleted, before-images numbered from *seq), check the
 * thresholds (not for an approved job) and say what to do. Lines for the
 * summary go to exc, unless a threshold was crossed (missing_preview then
 * gives the preview instead). reason: which threshold and the figures
 * (empty when none). 0 / -1 with err. */
int missing_end(missing *m, Patronsync__Counts *counts, exc_list *exc, int64_t *seq, enum missing_verdict *verdict,
                char *reason, size_t reasonlen, char *err, size_t errlen);

/* After the rollback of a job that crossed a threshold (held, or a dry run
 * that would be held): the full preview into exc, record by record — every
 * staged change of every shard and every patron the missing-patron step
 * would inactivate or delete — and, when held, the list staged (as
 * DIR/<job>/finish.plan) so that an approval applies exactly it. 0 / -1
 * with err. */
int missing_preview(missing *m, exc_list *exc, char *err, size_t errlen);

void missing_destroy(missing **m);

#endif
