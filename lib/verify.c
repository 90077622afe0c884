/* verify: a job's Redis summary against the store's apply marker (verify.h). */
#include "verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "counts.h"
#include "util.h"

/* The first count the marker and the claim disagree on, into why. 1 when
 * they differ, 0 when equal. */
static int counts_differ(const Patronsync__Counts *stored, const Patronsync__Counts *claimed, char *why,
                         size_t whylen)
{
    for (size_t i = 0; i < counts_nfields; i++) {
        uint64_t a = counts_get(stored, i), b = counts_get(claimed, i);
        if (a != b) {
            err_set(why, whylen, "Redis says %s %llu, the store's record of the apply %llu", counts_fields[i].name,
                    (unsigned long long)b, (unsigned long long)a);
            return 1;
        }
    }
    return 0;
}

int verify_job(store *st, const char *store_err, const char *job, const verify_claim *claim, char *why,
               size_t whylen)
{
    const char *state = claim->state ? claim->state : "";
    int done = strcmp(state, "complete") == 0 || strcmp(state, "complete_with_errors") == 0;
    int nothing = strcmp(state, "failed") == 0 || strcmp(state, "discarded") == 0;
    if (!done && !nothing)
        return VERIFY_NA;
    if (st == NULL) {
        err_set(why, whylen, "the store cannot be read (%s)", store_err ? store_err : "not opened");
        return VERIFY_UNKNOWN;
    }
    uint8_t *blob = NULL;
    size_t len = 0;
    int m = store_marker_get(st, job, "apply", &blob, &len);
    if (m < 0) {
        err_set(why, whylen, "the store's marker of job %s cannot be read", job);
        return VERIFY_UNKNOWN;
    }
    int rc = VERIFY_OK;
    if (m == 0) {
        if (done && !claim->dry_run) {
            err_set(why, whylen, "Redis says %s, but the store holds no record that this job was applied", state);
            rc = VERIFY_MISMATCH;
        }
        return rc;
    }
    if (nothing || claim->dry_run) {
        err_set(why, whylen, "Redis says %s%s, but the store records that this job was applied", state,
                nothing ? "" : " (a dry run)");
        free(blob);
        return VERIFY_MISMATCH;
    }
    Patronsync__ShardPlan *p = patronsync__shard_plan__unpack(NULL, len, blob);
    free(blob);
    if (p == NULL) {
        err_set(why, whylen, "the store's record of the apply does not decode");
        return VERIFY_MISMATCH;
    }
    if (p->counts != NULL && claim->counts != NULL && counts_differ(p->counts, claim->counts, why, whylen))
        rc = VERIFY_MISMATCH;
    patronsync__shard_plan__free_unpacked(p, NULL);
    return rc;
}
