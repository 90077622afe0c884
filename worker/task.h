/* task: the context of the worker process and of each task it runs (socket,
 * store, status, the streaming apply's socket pair), what a task may ask
 * of it (which shards failed; publishing its result, through the callback
 * main.c sets), and the limits the worker and its tasks agree on. */
#ifndef TASK_H
#define TASK_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "patronsync.pb-c.h"
#include "status.h"
#include "store.h"

typedef struct worker_ctx worker_ctx;

/* Publish counts and exceptions of a job's part ("s000003", "apply") for
 * the broker to assemble. 0 / -1 (the worker is stopping). */
typedef int (*task_publish_fn)(worker_ctx *w, const char *job, const char *part, const Patronsync__Counts *c,
                               Patronsync__Exception *const *exc, size_t nexc, unsigned attempt);

struct worker_ctx {
    ps_config *cfg;
    void *zctx;
    void *sock;          /* DEALER to the broker */
    store *st;           /* the task's handle: read-only for a plan, read-write for an apply */
    status *redis;
    task_publish_fn publish; /* main.c: to Redis, retrying until it answers or the worker stops */
    int64_t last_sent_ms;
    int said_stopping;      /* the broker was told this worker is stopping */
    int64_t last_heard_ms;
    volatile int *stopping;
    long child_maxrss_kb;/* largest task process (or two running together) so far */
    int ckpt_pid;        /* the process checkpointing the store after an apply, or 0 */
    int ctl;             /* a streaming apply's socket pair, or -1: in the worker process its end to the
                          * apply's process; in that process its end to the worker (the broker's
                          * ApplyStream messages come down it, the apply's progress goes up) */
};

/* The largest frame ([u32 length][ApplyStream]) passed down a streaming
 * apply's socket pair: one message each, so whole or not at all (a failed
 * shard costs about 3 bytes of it). */
#define APPLY_STREAM_MAX 65536

/* Whether shard is among the n in v. */
int task_shard_in(const uint32_t *v, size_t n, uint32_t shard);
/* Whether the task names shard as failed. */
int task_shard_failed(const Patronsync__ApplyTask *t, uint32_t shard);

/* Publish a part's result through w->publish; on failure err says the
 * task stopped before it was published. 0 / -1 with err. */
int task_publish(worker_ctx *w, const char *job, const char *part, const Patronsync__Counts *c,
                 Patronsync__Exception *const *exc, size_t nexc, unsigned attempt, char *err, size_t errlen);

#endif
