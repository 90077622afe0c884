/* jobctl: the control verbs on finished and held jobs — "job.approve",
 * "job.discard" (passed to the broker, which keeps held jobs) and
 * "job.undo" (from the job's before-images in the store). docs/SAFETY.md.
 * Rows of control.c's verb table (control_verb_fn, reply.h). */
#ifndef JOBCTL_H
#define JOBCTL_H

#include "reply.h"
#include "scheduler.h"

CONTROL_VERB(jobctl_approve);
CONTROL_VERB(jobctl_discard);
CONTROL_VERB(jobctl_undo);

#endif
