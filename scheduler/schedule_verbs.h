/* schedule_verbs: the "schedule.*" control verbs (rows of control.c's
 * verb table; the shape of each: control_verb_fn, reply.h). */
#ifndef SCHEDULE_VERBS_H
#define SCHEDULE_VERBS_H

#include "reply.h"
#include "scheduler.h"

void schedule_verb_add(scheduler *s, const char *user, const Patronsync__ControlRequest *rq,
                       Patronsync__ControlReply *rep, strbuf *body);
void schedule_verb_edit(scheduler *s, const char *user, const Patronsync__ControlRequest *rq,
                        Patronsync__ControlReply *rep, strbuf *body);
/* show and list run the timing step first: what they show is never
 * behind the clock. */
void schedule_verb_show(scheduler *s, const char *user, const Patronsync__ControlRequest *rq,
                        Patronsync__ControlReply *rep, strbuf *body);
void schedule_verb_list(scheduler *s, const char *user, const Patronsync__ControlRequest *rq,
                        Patronsync__ControlReply *rep, strbuf *body);
void schedule_verb_delete(scheduler *s, const char *user, const Patronsync__ControlRequest *rq,
                          Patronsync__ControlReply *rep, strbuf *body);
void schedule_verb_run(scheduler *s, const char *user, const Patronsync__ControlRequest *rq,
                       Patronsync__ControlReply *rep, strbuf *body);
void schedule_verb_enable(scheduler *s, const char *user, const Patronsync__ControlRequest *rq,
                          Patronsync__ControlReply *rep, strbuf *body);
void schedule_verb_disable(scheduler *s, const char *user, const Patronsync__ControlRequest *rq,
                           Patronsync__ControlReply *rep, strbuf *body);

#endif
