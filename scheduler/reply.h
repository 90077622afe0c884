/* reply: what every control verb handler shares — reading a request's
 * options, filling a refusal — and the handler's shape. Each verb is a
 * row of control.c's table; a handler fills rep and body and never calls
 * back into the dispatcher. */
#ifndef REPLY_H
#define REPLY_H

#include "patronsync.pb-c.h"
#include "util.h"

typedef struct scheduler scheduler;

/* A control verb: answer rq for user (the token's), filling rep; the
 * strings rep points to live in body. rep->ok is 1 on entry. */
typedef void (*control_verb_fn)(scheduler *s, const char *user, const Patronsync__ControlRequest *rq,
                                Patronsync__ControlReply *rep, strbuf *body);
/* The declaration of a handler of that shape: CONTROL_VERB(jobctl_undo); */
#define CONTROL_VERB(fn)                                                                                          \
    void fn(scheduler *s, const char *user, const Patronsync__ControlRequest *rq, Patronsync__ControlReply *rep, \
            strbuf *body)

/* The value of option key in a request, or NULL. */
const char *reply_opt(const Patronsync__ControlRequest *rq, const char *key);
/* Whether option key was sent as "1" (patronctl's flags). */
int reply_flag(const Patronsync__ControlRequest *rq, const char *key);
/* Fill a refusal: ok=0, status code, the message (whole, however long;
 * kept in body). Returns -1. */
int reply_fail(Patronsync__ControlReply *rep, strbuf *body, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The reply of a verb that made a job: {"job_id":"ID"} or "ID\n". */
void reply_job_id(strbuf *body, int json, const char *id);

#endif
