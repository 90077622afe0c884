/* apply: the single-writer phase of a job (apply.c). */
#ifndef APPLY_H
#define APPLY_H

#include <stddef.h>

#include "patronsync.pb-c.h"
#include "task.h"

/* Apply a job's staged changes (and the missing-patron step) in one
 * transaction with the job's done-marker, on w->st (read-write); publish
 * the result (w->publish). A job applied before publishes its stored
 * result again. 0, or -1 with err. */
int apply_job(worker_ctx *w, const Patronsync__ApplyTask *t, Patronsync__ApplyResult *res, char *err,
              size_t errlen);

#endif
