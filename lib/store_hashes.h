/* store_hashes: the record hashes of a schedule's Incremental runs, kept in
 * the patron store (docs/SCHEDULES.md): the broker reads the previous
 * run's (broker/incremental.c) to leave out the records that did not
 * change; the apply step replaces them in its transaction (worker/hashes.c).
 * Tables: store.c (record_hashes, record_hash_runs). */
#ifndef STORE_HASHES_H
#define STORE_HASHES_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* When the job that left the schedule's hashes was fired (*fired_ms):
 * 1, 0 no run on record, -1 with err. */
int store_hashes_fired(store *s, const char *schedule, int64_t *fired_ms, char *err, size_t errlen);
/* Drop the schedule's hashes and its run. 0 / -1 with err. */
int store_hashes_clear(store *s, const char *schedule, char *err, size_t errlen);
/* Keep one record's hash. 0 / -1 with err. */
int store_hashes_put(store *s, const char *schedule, const char *key, uint64_t hash, char *err, size_t errlen);
/* Say which job left the hashes (records of them; fired: when it was
 * fired; done now). 0 / -1 with err. */
int store_hashes_run_put(store *s, const char *schedule, const char *job, uint64_t records, int64_t fired_ms,
                         char *err, size_t errlen);
/* The schedule's hashes as its previous applied run left them, read in one
 * read transaction: the job into prev_job, fn called for each (fn's -1
 * stops it: out of memory). 1 read, 0 no previous run on record, -1 with
 * err. */
int store_hashes_previous(store *s, const char *schedule, char *prev_job, size_t pjlen,
                          int (*fn)(void *arg, const char *key, uint64_t hash), void *arg, char *err, size_t errlen);

#endif
