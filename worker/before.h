/* before: the before-images an apply keeps in job_changes so that undo can
 * put every patron back (docs/SAFETY.md): one per change, numbered by the
 * apply's seq. */
#ifndef BEFORE_H
#define BEFORE_H

#include <stddef.h>
#include <stdint.h>

#include "patron.h"
#include "patronsync.pb-c.h"
#include "store.h"

/* Record in job_changes that job changed patron id (op: lib/safety.h),
 * with its before-image: the record's fields (before; NULL for an add, or
 * for ops 7/8 which keep only missing_since and updated_job) and the rest
 * of its row read from the store (missing_since, checkouts, fines, jobs,
 * and, with a record, its site associations). A dry run (o->dry_run)
 * keeps none: it rolls back, and there is nothing to undo. 0 / -1 with err. */
int before_save(const Patronsync__JobOptions *o, store *st, const char *job, int64_t seq, int64_t id, int op,
                const patron_rec *before, char *err, size_t errlen);
/* A bulk load's adds, ids first .. last: one image for them all (undo
 * removes them as it removes single adds). 0 / -1 with err. */
int before_save_add_range(store *st, const char *job, int64_t seq, int64_t first, int64_t last, char *err,
                          size_t errlen);
/* An association of patron id with site: the site to remove on undo.
 * 0 / -1 with err. */
int before_save_assoc(store *st, const char *job, int64_t seq, int64_t id, const char *site, char *err,
                      size_t errlen);

#endif
