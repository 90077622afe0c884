/* jobctl: the control verbs on finished and held jobs — "job.approve",
 * "job.discard" (passed to the broker, which keeps held jobs) and
 * "job.undo" (from the job's before-images in the store). docs/SAFETY.md.
 * Rows of control.c's verb table (control_verb_fn, reply.h). */
#ifndef JOBCTL_H
#define JOBCTL_H

#include "reply.h"
#include "scheduler.h"

void jobctl_approve(scheduler *s, const char *user, const Patronsync__ControlRequest *rq, Patronsync__ControlReply *rep,
                    strbuf *body);
void jobctl_discard(scheduler *s, const char *user, const Patronsync__ControlRequest *rq, Patronsync__ControlReply *rep,
                    strbuf *body);
void jobctl_undo(scheduler *s, const char *user, const Patronsync__ControlRequest *rq, Patronsync__ControlReply *rep,
                 strbuf *body);

#endif
