/* stream: a streaming apply's side of the broker's word (stream.h). */
#include "stream.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

stream *stream_new(const Patronsync__ApplyTask *t)
{
    stream *sm = calloc(1, sizeof(*sm));
    if (sm == NULL)
        return NULL;
    sm->t = t;
    sm->heard_ms = mono_ms();
    return sm;
}

void stream_destroy(stream **smp)
{
    if (smp == NULL || *smp == NULL)
        return;
    if ((*smp)->last != NULL)
        patronsync__apply_stream__free_unpacked((*smp)->last, NULL);
    free(*smp);
    *smp = NULL;
}

/* Take what the worker process passed down: [u32 length][ApplyStream]. */
void stream_read(worker_ctx *w, stream *sm)
{
    for (;;) {
        ssize_t k = read(w->ctl, sm->buf + sm->len, sizeof(sm->buf) - sm->len);
        if (k == 0)
            sm->closed = 1;
        if (k <= 0)
            break;
        sm->len += (size_t)k;
        size_t off = 0;
        while (sm->len - off >= 4) {
            uint32_t n;
            memcpy(&n, sm->buf + off, 4);
            if (n > sizeof(sm->buf) - 4) {
                sm->closed = 1; /* cannot happen: the worker process writes whole frames */
                return;
            }
            if (sm->len - off - 4 < n)
                break;
            Patronsync__ApplyStream *m = patronsync__apply_stream__unpack(NULL, n, sm->buf + off + 4);
            off += 4 + n;
            if (m == NULL || strcmp(m->job_id, sm->t->job_id) != 0 || m->attempt != sm->t->attempt) {
                if (m)
                    patronsync__apply_stream__free_unpacked(m, NULL);
                continue;
            }
            if (sm->last)
                patronsync__apply_stream__free_unpacked(sm->last, NULL);
            sm->last = m;
            sm->heard_ms = mono_ms();
        }
        memmove(sm->buf, sm->buf + off, sm->len - off);
        sm->len -= off;
    }
}

/* Tell the worker process how many shards the apply has gone past: the
 * broker plans no more than plan_ahead beyond. Advisory: a full socket
 * drops it (a later one says more). */
void stream_progress(worker_ctx *w, uint32_t past)
{
    if (w->ctl >= 0 && write(w->ctl, &past, sizeof(past)) < 0 && errno != EAGAIN)
        log_debug("passing the apply's progress up: %s", strerror(errno));
}

static int stream_said_failed(const stream *sm, uint32_t shard)
{
    return sm->last != NULL && task_shard_in(sm->last->failed_shards, sm->last->n_failed_shards, shard);
}

/* Wait until shard is staged (1), said failed (0), or, shard == UINT32_MAX,
 * until every shard is final (1). -1 with err: hand the task back (the
 * broker said so, went silent, or the worker process is gone). */
int stream_await(worker_ctx *w, stream *sm, uint32_t shard, const char *path, char *err, size_t errlen)
{
    int64_t silent_limit = 2 * w->cfg->heartbeat_ms * w->cfg->liveness;
    int64_t told = mono_ms();
    for (;;) {
        /* Said again while it waits: a progress dropped on a full pipe
         * must not leave the broker holding back the shard waited for. */
        if (shard != UINT32_MAX && mono_ms() - told >= w->cfg->heartbeat_ms) {
            stream_progress(w, shard);
            told = mono_ms();
        }
        stream_read(w, sm);
        if (shard != UINT32_MAX && stream_said_failed(sm, shard))
            return 0;
        if (shard != UINT32_MAX ? access(path, F_OK) == 0 : sm->last != NULL && sm->last->final)
            return 1;
        if (sm->last != NULL && sm->last->give_up) {
            err_set(err, errlen, "handed back: no other worker is left to plan the shards");
            sm->handed_back = 1;
            return -1;
        }
        if (sm->closed || mono_ms() - sm->heard_ms > silent_limit) {
            err_set(err, errlen, "handed back: no word from the broker for %lld ms",
                    (long long)(mono_ms() - sm->heard_ms));
            sm->handed_back = 1;
            return -1;
        }
        struct pollfd pfd = {w->ctl, POLLIN, 0};
        poll(&pfd, 1, 20);
    }
}

