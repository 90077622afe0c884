/* verify: what Redis says of a finished job checked against the store's
 * done-marker. Redis is the operators' view and the store is the record
 * (docs/REDIS.md): whoever can write to Redis could rewrite a summary, so
 * patronctl shows a summary the store contradicts as a mismatch, never as
 * the truth (docs/SECURITY.md). */
#ifndef VERIFY_H
#define VERIFY_H

#include <stddef.h>

#include "patronsync.pb-c.h"
#include "store.h"

enum verify_result {
    VERIFY_NA = 0,       /* not a state the store can confirm (running, held, stopped) */
    VERIFY_OK = 1,       /* the store agrees */
    VERIFY_MISMATCH = 2, /* the store contradicts Redis: why says how */
    VERIFY_UNKNOWN = 3,  /* the store could not be read: why says why */
};

/* What Redis says of one job. */
typedef struct {
    const char *state;               /* ps:job:<id> state */
    int dry_run;                     /* its dry_run field is 1 */
    const Patronsync__Counts *counts; /* its summary counts */
} verify_claim;

/* Check claim against the store (opened read-only; NULL: unreadable, why
 * given as store_err): complete and complete_with_errors need the job's
 * apply marker, with the same counts, unless a dry run (which must have
 * none); failed and discarded must have none. One line into why (for
 * MISMATCH and UNKNOWN). An enum verify_result. */
int verify_job(store *st, const char *store_err, const char *job, const verify_claim *claim, char *why,
               size_t whylen);

#endif
