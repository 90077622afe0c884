/* scheduler: shared state of the scheduler process — the control tables,
 * the control socket patronctl talks to, and the outbox of job requests
 * sent to the broker until acknowledged. */
#ifndef SCHEDULER_H
#define SCHEDULER_H

#include <sqlite3.h>

#include "config.h"
#include "patronsync.pb-c.h"
#include "status.h"
#include "util.h"

typedef struct {
    ps_config *cfg;
    sqlite3 *db;        /* control.db */
    void *zctx;
    void *control_sock; /* ROUTER: patronctl */
    void *broker_sock;  /* DEALER: the broker's job socket */
    status *redis;
    volatile int *stopping;
} scheduler;

/* control.db schema and the first administrator. 0 / -1. */
int control_db_open(scheduler *s, char *err, size_t errlen);
/* The user a token belongs to (into user), or -1 when it is not valid. */
int control_user(scheduler *s, const char *token, char *user, size_t userlen);
void control_audit(scheduler *s, const char *user, const char *verb, const char *detail);

/* The value of option key in a request, or NULL. */
const char *control_opt(const Patronsync__ControlRequest *rq, const char *key);
/* Fill a refusal: ok=0, status code, the message (kept in body). Returns -1. */
int control_fail(Patronsync__ControlReply *rep, strbuf *body, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Answer one control request (reply filled; strings it points to live in sb). */
void control_handle(scheduler *s, const Patronsync__ControlRequest *rq, Patronsync__ControlReply *rep, strbuf *body);

/* outbox: record a job request and send it until the broker acks. The job
 * id must be new; a request already in the outbox is not added twice.
 * 0 / -1. */
int outbox_add(scheduler *s, Patronsync__JobRequest *req, char *err, size_t errlen);
/* Resend what is due; read acks. */
void outbox_step(scheduler *s);
void outbox_on_reply(scheduler *s, const Patronsync__BrokerReply *r);

/* refdata.c: the ref.* verbs (reference data of the patron rules). 1 when
 * the verb was one of them (reply filled), 0 when not. */
int refdata_handle(scheduler *s, const Patronsync__ControlRequest *rq, Patronsync__ControlReply *rep, strbuf *body);

/* jobctl: "job.approve", "job.discard" (sent to the broker, which keeps
 * held jobs) and "job.undo" (from the job's before-images). rep and body
 * as control_handle. */
void jobctl_verb(scheduler *s, const char *user, const Patronsync__ControlRequest *rq, Patronsync__ControlReply *rep,
                 strbuf *body);
/* A run-now's safety options from the request's opts (lib/safety.h names),
 * validated, and its instant and district calendar day (the "today" of
 * missing-patron days) from the scheduler's clock. 0, or -1 with the
 * operator's message in err. */
int jobctl_run_options(scheduler *s, const Patronsync__ControlRequest *rq, Patronsync__JobOptions *o,
                       int64_t *fired_at_ms, char *local_date, size_t datelen, char *err, size_t errlen);

/* A fresh job id for a run-now: run-YYYYMMDDTHHMMSSZ-xxxxxx. */
void job_id_new(char *out, size_t outlen);

#endif
