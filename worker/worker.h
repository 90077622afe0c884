/* worker: shared state of the worker process (socket, store, status) and
 * the pump that keeps heartbeats flowing while a long task runs. */
#ifndef WORKER_H
#define WORKER_H

#include "config.h"
#include "patronsync.pb-c.h"
#include "status.h"
#include "store.h"

typedef struct {
    ps_config *cfg;
    void *zctx;
    void *sock;          /* DEALER to the broker */
    store *st;           /* the task's handle: read-only for a plan, read-write for an apply */
    status *redis;
    int64_t last_sent_ms;
    int said_stopping;      /* the broker was told this worker is stopping */
    int64_t last_heard_ms;
    volatile int *stopping;
    long child_maxrss_kb;/* largest task process (or two running together) so far */
    int ckpt_pid;        /* the process checkpointing the store after an apply, or 0 */
    int ctl;             /* a streaming apply's socket pair, or -1: in the worker process its end to the
                          * apply's process; in that process its end to the worker (the broker's
                          * ApplyStream messages come down it, the apply's progress goes up) */
} worker_ctx;

/* The largest frame ([u32 length][ApplyStream]) passed down a streaming
 * apply's socket pair: one message each, so whole or not at all (a failed
 * shard costs about 3 bytes of it). */
#define APPLY_STREAM_MAX 65536


/* Plan one shard: parse, map, validate, compare with the store, stage the
 * changes beside the store and publish the result. A shard already staged
 * returns its stored result. 0, or -1 with err (the shard failed). */
int plan_shard(worker_ctx *w, const Patronsync__ShardTask *t, Patronsync__Counts *counts, char *err,
               size_t errlen);

/* Apply a job's staged changes (and the finishing step) in one transaction
 * with the job's done-marker. 0, or -1 with err. */
int apply_job(worker_ctx *w, const Patronsync__ApplyTask *t, Patronsync__ApplyResult *res, char *err,
              size_t errlen);

/* Whether the task names shard as failed. */
int task_shard_failed(const Patronsync__ApplyTask *t, uint32_t shard);

/* The staged plan of one shard: DIR/<job>/shard-<n>.plan. */
int plan_path(const ps_config *c, const char *job, unsigned shard, char *out, size_t outlen);
/* Publish counts and exceptions to Redis, retrying (with heartbeats) until
 * Redis answers or the worker is stopping. 0 / -1. */
int worker_publish(worker_ctx *w, const char *job, const char *part, const Patronsync__Counts *c,
                   Patronsync__Exception *const *exc, size_t nexc, unsigned attempt);

#endif
