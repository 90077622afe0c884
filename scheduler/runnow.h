/* runnow: the "run" control verb — update patrons from a file now, with
 * a profile sent along and the safety options of docs/SAFETY.md; the job
 * goes into the outbox. A row of control.c's verb table. */
#ifndef RUNNOW_H
#define RUNNOW_H

#include <stddef.h>
#include <stdint.h>

#include "reply.h"
#include "scheduler.h"

CONTROL_VERB(runnow_verb);

/* A run-now's safety options from the request's opts (lib/safety.h names),
 * validated, and its instant and district calendar day (the "today" of
 * missing-patron days) from the scheduler's clock. 0, or -1 with the
 * operator's message in err. */
int runnow_options(scheduler *s, const Patronsync__ControlRequest *rq, Patronsync__JobOptions *o, int64_t *fired_at_ms,
                   char *local_date, size_t datelen, char *err, size_t errlen);

/* A fresh job id for a run-now: run-YYYYMMDDTHHMMSSZ-xxxxxx. */
void runnow_job_id(char *out, size_t outlen);

#endif
