/* status: the Redis view of jobs, shards and workers (key layout in
 * docs/REDIS.md). Redis may come and go: every call degrades to an error
 * return, and the connection is re-made with back-off on the next call. */
#ifndef STATUS_H
#define STATUS_H

#include <hiredis/hiredis.h>
#include <stddef.h>

#include "patronsync.pb-c.h"

typedef struct status status;

/* url: redis://host:port[/db]. Connecting is lazy. NULL with err on a bad url. */
status *status_new(const char *url, char *err, size_t errlen);
void status_destroy(status **s);

/* 1 when a connection is up (trying to make one if the back-off allows). */
int status_up(status *s);
/* One command (hiredis format). The reply is the caller's to freeReplyObject;
 * NULL when Redis is unreachable or answered an error (logged). */
redisReply *status_cmd(status *s, const char *fmt, ...);
redisReply *status_cmdargv(status *s, int argc, const char **argv, const size_t *lens);
/* Run a command and say whether it worked: 0 / -1. */
int status_do(status *s, const char *fmt, ...);

/* Publish a shard's (or the apply step's: shard "apply") result: its
 * counts and its exception lines replace whatever was there (a replay
 * overwrites, never adds). 0 / -1 (Redis down: publish later). */
int status_publish_result(status *s, const char *job, const char *part, const Patronsync__Counts *c,
                          Patronsync__Exception *const *exc, size_t nexc, const char *worker,
                          unsigned attempt);
/* Read a part's counts and exceptions back. 1 found, 0 absent, -1 Redis down. */
int status_read_result(status *s, const char *job, const char *part, Patronsync__Counts *c,
                       Patronsync__Exception ***exc, size_t *nexc);
void status_free_exceptions(Patronsync__Exception **exc, size_t n);

/* Append an event line (capped list ps:events). */
void status_event(status *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Exceptions as stored in Redis lists: line \t district_id \t name \t outcome \t message. */
int status_exception_encode(const Patronsync__Exception *e, char **out, size_t *len);
Patronsync__Exception *status_exception_decode(const char *s, size_t len);

#endif
