/* stream: a streaming apply's side of the broker's word (docs/PROTOCOL.md).
 * The task came while its shards were still planned. Shard k is applied
 * once its plan is staged (written once: its presence is the signal) or
 * skipped once the broker says it failed; the missing-patron step and the
 * commit wait for the broker's word that every shard is final. The worker
 * process passes the broker's ApplyStream messages down a socket pair
 * (w->ctl), and the apply's progress goes up it. */
#ifndef STREAM_H
#define STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "patronsync.pb-c.h"
#include "task.h"

typedef struct {
    const Patronsync__ApplyTask *t;
    Patronsync__ApplyStream *last; /* the latest word from the broker */
    int64_t heard_ms;
    int closed;                    /* the worker process is gone */
    int handed_back;               /* stream_await gave up: the task goes back (ApplyResult.handed_back) */
    uint8_t buf[2 * APPLY_STREAM_MAX];
    size_t len;
} stream;

/* A stream for task t (kept: its job and attempt filter the broker's
 * words), as heard now. NULL when out of memory. */
stream *stream_new(const Patronsync__ApplyTask *t);
void stream_destroy(stream **sm);
/* Take what the worker process passed down: [u32 length][ApplyStream];
 * the latest word for this task is kept in sm->last. */
void stream_read(worker_ctx *w, stream *sm);
/* Tell the worker process how many shards the apply has gone past: the
 * broker plans no more than plan_ahead beyond. Advisory: a full socket
 * drops it (a later one says more). */
void stream_progress(worker_ctx *w, uint32_t past);
/* Wait until shard is staged at path (1), said failed (0), or, shard ==
 * UINT32_MAX, until every shard is final (1). -1 with err: hand the task
 * back (the broker said so, went silent, or the worker process is gone;
 * sm->handed_back set). */
int stream_await(worker_ctx *w, stream *sm, uint32_t shard, const char *path, char *err, size_t errlen);

#endif
