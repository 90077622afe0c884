/* workers: the broker's registry of workers (workers.h). */
#include "workers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "main.h"
#include "log.h"
#include "util.h"

worker_ref *workers_find(broker *b, const wire_peer *p)
{
    for (size_t i = 0; i < b->nworkers; i++)
        if (wire_peer_same(&b->workers[i].peer, p))
            return &b->workers[i];
    return NULL;
}

static void publish(broker *b, const worker_ref *w, const char *state)
{
    status_worker_set(b->redis, w->name, "pid=%u;state=%s;last_seen_ms=%lld;max_task_rss_kb=%llu", w->pid,
              state, (long long)now_ms(), (unsigned long long)w->max_task_rss_kb);
}

worker_ref *workers_add(broker *b, const wire_peer *p, const Patronsync__Ready *rd)
{
    const char *name = rd->worker_id;
    uint32_t pid = rd->pid;
    worker_ref *w = workers_find(b, p);
    if (w != NULL) {
        w->last_seen_ms = mono_ms();
        return w;
    }
    if (array_grow(&b->workers, &b->workers_cap, b->nworkers + 1, sizeof(*b->workers), 8) < 0)
        return NULL;
    w = &b->workers[b->nworkers++];
    memset(w, 0, sizeof(*w));
    w->peer = *p;
    str_copy(w->name, sizeof(w->name), name[0] ? name : "worker");
    w->pid = pid;
    w->beside_ok = rd->plans_beside_apply;
    str_copy(w->host, sizeof(w->host), rd->host ? rd->host : "");
    w->plan_slots = rd->plan_slots;
    w->last_seen_ms = mono_ms();
    w->idle_since_ms = mono_ms();
    log_info("worker %s (pid %u) ready; %zu workers; its machine plans %u shards at once", w->name, pid, b->nworkers,
             w->plan_slots);
    publish(b, w, "ready");
    return w;
}

void workers_remove(broker *b, const wire_peer *p)
{
    for (size_t i = 0; i < b->nworkers; i++) {
        if (!wire_peer_same(&b->workers[i].peer, p))
            continue;
        worker_ref gone = b->workers[i];
        memmove(&b->workers[i], &b->workers[i + 1], (b->nworkers - i - 1) * sizeof(worker_ref));
        b->nworkers--;
        publish(b, &gone, "gone");
        if (b->worker_lost != NULL)
            b->worker_lost(b, &gone.peer);
        return;
    }
}

worker_ref *workers_idle(broker *b)
{
    worker_ref *best = NULL;
    for (size_t i = 0; i < b->nworkers; i++) {
        worker_ref *w = &b->workers[i];
        if (!worker_busy(w) && !w->stopping && (best == NULL || w->idle_since_ms < best->idle_since_ms))
            best = w;
    }
    return best;
}

/* Whether w's machine plans fewer shards than it may at once (its
 * plan_slots, over every worker that said the same machine). */
static int host_has_room(const broker *b, const worker_ref *w)
{
    if (w->plan_slots == 0 || w->host[0] == '\0')
        return 1;
    uint32_t planning = 0;
    for (size_t i = 0; i < b->nworkers; i++)
        if (strcmp(b->workers[i].host, w->host) == 0)
            planning += (uint32_t)b->workers[i].shards;
    return planning < w->plan_slots;
}

/* Whether w may take a shard kept off machine not_host (NULL: any may):
 * it names a machine, and another one. */
static int elsewhere(const worker_ref *w, const char *not_host)
{
    return not_host == NULL || (w->host[0] != '\0' && strcmp(w->host, not_host) != 0);
}

worker_ref *workers_for_shard(broker *b, const char *not_host)
{
    worker_ref *best = NULL;
    for (size_t i = 0; i < b->nworkers; i++) {
        worker_ref *w = &b->workers[i];
        if (!elsewhere(w, not_host) || w->stopping)
            continue;
        if (!worker_busy(w) && (best == NULL || w->idle_since_ms < best->idle_since_ms) && host_has_room(b, w))
            best = w;
    }
    for (size_t i = 0; best == NULL && i < b->nworkers; i++) {
        worker_ref *w = &b->workers[i];
        if (!elsewhere(w, not_host) || w->stopping)
            continue;
        if (w->streaming && w->beside_ok && w->shards == 0 && host_has_room(b, w))
            best = w;
    }
    return best;
}

void workers_took_shard(worker_ref *w)
{
    w->shards++; /* the second beside its streaming apply (workers_for_shard) */
}

void workers_took_apply(worker_ref *w, int streaming)
{
    w->applying = 1;
    w->streaming = streaming;
}

void workers_release(broker *b, const wire_peer *p, int apply)
{
    worker_ref *w = workers_find(b, p);
    if (w == NULL)
        return;
    if (apply)
        w->applying = w->streaming = 0;
    else if (w->shards > 0)
        w->shards--;
    if (!worker_busy(w))
        w->idle_since_ms = mono_ms();
}

void workers_expire(broker *b)
{
    int64_t limit = b->cfg->heartbeat_ms * b->cfg->liveness;
    int64_t now = mono_ms();
    /* Time the broker itself was not listening (stopped, or held up in one
     * long step) is no worker's silence: their heartbeats of that time are
     * still on their way in. It is forgiven, so a stalled broker does not
     * take every worker for dead and fail their tasks when it resumes. */
    int64_t away = b->last_expire_ms > 0 ? now - b->last_expire_ms : 0;
    b->last_expire_ms = now;
    if (away > b->cfg->heartbeat_ms) {
        log_warn("the broker was not listening for %lld ms; the workers' silence is counted from now", (long long)away);
        for (size_t i = 0; i < b->nworkers; i++) {
            worker_ref *w = &b->workers[i];
            w->last_seen_ms = w->last_seen_ms + away < now ? w->last_seen_ms + away : now;
        }
    }
    for (size_t i = 0; i < b->nworkers;) {
        worker_ref *w = &b->workers[i];
        if (now - w->last_seen_ms > limit) {
            log_warn("worker %s (pid %u) silent for %lld ms; presumed dead", w->name, w->pid,
                     (long long)(now - w->last_seen_ms));
            wire_peer p = w->peer;
            workers_remove(b, &p);
            continue;
        }
        i++;
    }
}

int workers_send(broker *b, worker_ref *w, Patronsync__BrokerMsg *m)
{
    char err[ERRLEN];
    if (wire_send(b->workers_sock, &w->peer, &m->base, err, sizeof(err)) < 0) {
        log_warn("sending to worker %s: %s", w->name, err);
        return -1;
    }
    return 0;
}

void workers_heartbeat(broker *b)
{
    int64_t now = mono_ms();
    if (now - b->last_hb_ms < b->cfg->heartbeat_ms)
        return;
    b->last_hb_ms = now;
    Patronsync__Heartbeat hb = PATRONSYNC__HEARTBEAT__INIT;
    Patronsync__BrokerMsg m = PATRONSYNC__BROKER_MSG__INIT;
    m.body_case = PATRONSYNC__BROKER_MSG__BODY_HEARTBEAT;
    m.heartbeat = &hb;
    for (size_t i = 0; i < b->nworkers; i++) {
        workers_send(b, &b->workers[i], &m);
        publish(b, &b->workers[i], worker_busy(&b->workers[i]) ? "busy" : "idle");
    }
}
