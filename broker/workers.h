/* workers: the broker's registry of workers — READY, liveness from any
 * message, least-recently-used choice of an idle one, what each holds,
 * heartbeats out, ps:workers in Redis. It calls no job code: a worker
 * that leaves is told through b->worker_lost. */
#ifndef BROKER_WORKERS_H
#define BROKER_WORKERS_H

#include <stddef.h>
#include <stdint.h>

#include "patronsync.pb-c.h"
#include "wire.h"

struct broker;

typedef struct {
    wire_peer peer;
    char name[128];
    uint32_t pid;
    int64_t last_seen_ms;
    int beside_ok;   /* it said it plans a shard beside a streaming apply */
    int applying;    /* holds the apply step ... */
    int streaming;   /* ... a streaming one (docs/PROTOCOL.md) */
    int shards;      /* shards it is planning (a second one only beside a streaming apply) */
    char host[384];  /* its machine (Ready.host; "" unknown) ... */
    uint32_t plan_slots; /* ... and the shards that machine plans at once (0: no limit) */
    int64_t idle_since_ms;
    uint64_t max_task_rss_kb;
    int stopping;    /* it said it is stopping: given no new task */
} worker_ref;

/* A worker holding any task (busy) is not idle; one holding a streaming
 * apply and no shard has room for one beside it. */
static inline int worker_busy(const worker_ref *w)
{
    return w->applying || w->shards > 0;
}

/* The registered worker of peer p, or NULL. (Pointers into the registry
 * are valid until a worker is added or removed.) */
worker_ref *workers_find(struct broker *b, const wire_peer *p);
/* Register the worker that sent READY (or refresh it). NULL: no memory. */
worker_ref *workers_add(struct broker *b, const wire_peer *p, const Patronsync__Ready *rd);
/* Drop it and tell b->worker_lost. */
void workers_remove(struct broker *b, const wire_peer *p);
/* The least recently used idle worker, or NULL. */
worker_ref *workers_idle(struct broker *b);
/* An idle one, else one with room beside its streaming apply; not_host
 * (NULL: any): only one known to be on another machine than that. */
worker_ref *workers_for_shard(struct broker *b, const char *not_host);
/* A task was given to w: a shard, or the apply step (streaming or not). */
void workers_took_shard(worker_ref *w);
void workers_took_apply(worker_ref *w, int streaming);
/* A task came back from peer p: it has room again (apply: the apply
 * step's result; else a shard's). */
void workers_release(struct broker *b, const wire_peer *p, int apply);
void workers_expire(struct broker *b);         /* drop the silent ones */
void workers_heartbeat(struct broker *b);      /* heartbeat every worker when due */
/* Send m to w. 0 / -1 (logged). */
int workers_send(struct broker *b, worker_ref *w, Patronsync__BrokerMsg *m);

#endif
