/* outbox: job requests kept in control.db until the broker acknowledges
 * them, resent on a timer, so a request fired while the broker is down
 * runs once when it comes back (the broker ignores ids it already has). */
#ifndef OUTBOX_H
#define OUTBOX_H

#include <stddef.h>

#include "patronsync.pb-c.h"
#include "scheduler.h"

/* Record a job request, mark it pending in Redis and send what is due.
 * The job id must be new; a request already in the outbox is not added
 * twice. 0 / -1 with err. */
int outbox_add(scheduler *s, Patronsync__JobRequest *req, char *err, size_t errlen);
/* Resend what is due (without a broker socket, tests: the send fails and
 * is tried again when due). */
void outbox_step(scheduler *s);
/* A broker's reply: an ack ends a request's resending. */
void outbox_on_reply(scheduler *s, const Patronsync__BrokerReply *r);

#endif
