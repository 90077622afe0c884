/* patron-broker: accepts jobs from the scheduler (acked, once per id),
 * prepares and shards them, feeds workers one task at a time, and assembles
 * each job summary in Redis. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobs.h"
#include "main.h"
#include "workers.h"
#include "log.h"
#include "proc.h"
#include "curve.h"
#include "zap.h"
#include "util.h"

static void reply(broker *b, const wire_peer *to, Patronsync__BrokerReply *r)
{
    char err[ERRLEN];
    if (wire_send(b->jobs_sock, to, &r->base, err, sizeof(err)) < 0)
        log_warn("replying to the scheduler: %s", err);
}

static void on_jobs_msg(broker *b, const wire_peer *from, zmq_msg_t *body)
{
    Patronsync__BrokerRequest *rq = patronsync__broker_request__unpack(NULL, zmq_msg_size(body), zmq_msg_data(body));
    if (rq == NULL) {
        wire_rejected++;
        wire_guard_strike(b->jobs_guard, from);
        if (wire_should_log_rejected())
            log_warn("job socket: a frame that does not decode (%zu bytes) dropped; %llu rejected so far",
                 zmq_msg_size(body), (unsigned long long)wire_rejected);
        return;
    }
    Patronsync__BrokerReply r = PATRONSYNC__BROKER_REPLY__INIT;
    /* Jobs and decisions come from the scheduler alone (its key, ZAP
     * User-Id "scheduler"); another listed key (patronctl's) may ping. */
    const char *user = curve_user(body);
    if (b->cfg->curve && rq->body_case != PATRONSYNC__BROKER_REQUEST__BODY_PING && strcmp(user, "scheduler") != 0) {
        uint64_t n = ++b->requests_refused;
        if ((n & (n - 1)) == 0)
            log_warn("job socket: a %s from '%s', not the scheduler, refused (%llu so far)",
                     rq->body_case == PATRONSYNC__BROKER_REQUEST__BODY_JOB ? "job" : "decision", user,
                     (unsigned long long)n);
        patronsync__broker_request__free_unpacked(rq, NULL);
        return;
    }
    if (rq->body_case == PATRONSYNC__BROKER_REQUEST__BODY_PING) {
        Patronsync__Pong pong = PATRONSYNC__PONG__INIT;
        pong.workers = (uint32_t)b->nworkers;
        pong.jobs_active = (uint32_t)jobq_count(b->jobs);
        r.body_case = PATRONSYNC__BROKER_REPLY__BODY_PONG;
        r.pong = &pong;
        reply(b, from, &r);
    } else if (rq->body_case == PATRONSYNC__BROKER_REQUEST__BODY_DECISION) {
        char err[ERRLEN] = "", state[32] = "";
        Patronsync__JobDecisionReply dr = PATRONSYNC__JOB_DECISION_REPLY__INIT;
        dr.job_id = rq->decision->job_id;
        dr.ok = jobs_decide(b, rq->decision, state, sizeof(state), err, sizeof(err)) == 0;
        dr.error = err;
        dr.state = state;
        r.body_case = PATRONSYNC__BROKER_REPLY__BODY_DECISION;
        r.decision = &dr;
        reply(b, from, &r);
    } else if (rq->body_case == PATRONSYNC__BROKER_REQUEST__BODY_JOB) {
        char err[ERRLEN] = "";
        Patronsync__JobAck ack = PATRONSYNC__JOB_ACK__INIT;
        ack.job_id = rq->job->job_id;
        ack.accepted = jobs_accept(b, rq->job, err, sizeof(err)) == 0;
        ack.error = err;
        r.body_case = PATRONSYNC__BROKER_REPLY__BODY_ACK;
        r.ack = &ack;
        reply(b, from, &r);
    } else {
        wire_rejected++;
        wire_guard_strike(b->jobs_guard, from);
    }
    patronsync__broker_request__free_unpacked(rq, NULL);
}

static void on_worker_msg(broker *b, const wire_peer *from, zmq_msg_t *body)
{
    Patronsync__WorkerMsg *m = patronsync__worker_msg__unpack(NULL, zmq_msg_size(body), zmq_msg_data(body));
    if (m == NULL) {
        wire_rejected++;
        wire_guard_strike(b->workers_guard, from);
        if (wire_should_log_rejected())
            log_warn("worker socket: a frame that does not decode (%zu bytes) dropped; %llu rejected so far",
                 zmq_msg_size(body), (unsigned long long)wire_rejected);
        return;
    }
    worker_ref *w = workers_find(b, from);
    if (m->body_case == PATRONSYNC__WORKER_MSG__BODY_READY) {
        w = workers_add(b, from, m->ready);
        if (w != NULL) {
            /* Answer at once so the worker knows it is registered. */
            Patronsync__Heartbeat hb = PATRONSYNC__HEARTBEAT__INIT;
            Patronsync__BrokerMsg bm = PATRONSYNC__BROKER_MSG__INIT;
            bm.body_case = PATRONSYNC__BROKER_MSG__BODY_HEARTBEAT;
            bm.heartbeat = &hb;
            workers_send(b, w, &bm);
        }
    } else if (w == NULL) {
        /* Not registered (this broker restarted, or it gave the worker up
         * for dead): ignored; the worker hears nothing back, reconnects and
         * sends READY once it is idle. */
        log_debug("message from an unregistered worker ignored");
    } else {
        w->last_seen_ms = mono_ms();
        switch (m->body_case) {
        case PATRONSYNC__WORKER_MSG__BODY_HEARTBEAT:
            w->max_task_rss_kb = m->heartbeat->max_task_rss_kb;
            w->stopping = m->heartbeat->stopping;
            break;
        case PATRONSYNC__WORKER_MSG__BODY_SHARD_RESULT:
            jobs_on_shard_result(b, from, m->shard_result);
            break;
        case PATRONSYNC__WORKER_MSG__BODY_APPLY_RESULT:
            jobs_on_apply_result(b, from, m->apply_result);
            break;
        case PATRONSYNC__WORKER_MSG__BODY_APPLY_PROGRESS:
            jobs_on_apply_progress(b, from, m->apply_progress);
            break;
        case PATRONSYNC__WORKER_MSG__BODY_BYE:
            log_info("worker %s said goodbye", w->name);
            workers_remove(b, from);
            break;
        default:
            break;
        }
    }
    patronsync__worker_msg__free_unpacked(m, NULL);
}

static void drain_socket(broker *b, void *sock, int is_jobs)
{
    wire_guard *g = is_jobs ? b->jobs_guard : b->workers_guard;
    for (int k = 0; k < 1000; k++) {
        wire_peer from = {.len = 0};
        zmq_msg_t body;
        int r = wire_recv(sock, &from, &body);
        if (r == 0)
            return;
        if (r < 0) {
            wire_guard_strike(g, &from);
            continue;
        }
        if (!wire_guard_admit(g, &from)) {
            zmq_msg_close(&body);
            continue;
        }
        if (is_jobs)
            on_jobs_msg(b, &from, &body);
        else
            on_worker_msg(b, &from, &body);
        zmq_msg_close(&body);
    }
}

/* Handle waiting messages and heartbeats: the loop's first half. */
static void pump(broker *b)
{
    drain_socket(b, b->workers_sock, 0);
    drain_socket(b, b->jobs_sock, 1);
    workers_heartbeat(b);
    workers_expire(b);
}

int main(int argc, char **argv)
{
    ps_config cfg;
    char err[ERRLEN];
    int rc = proc_start("patron-broker", "broker", argc, argv, &cfg);
    if (rc >= 0)
        return rc;

    broker b;
    memset(&b, 0, sizeof(b));
    b.cfg = &cfg;
    b.stopping = &proc_stopping;
    b.worker_lost = jobs_on_worker_lost;
    b.jobs = jobq_new();
    b.jobs_guard = wire_guard_new("job socket");
    b.workers_guard = wire_guard_new("worker socket");
    if (b.jobs == NULL || b.jobs_guard == NULL || b.workers_guard == NULL) {
        log_error("out of memory");
        goto fail;
    }
    if (proc_lock(&cfg, "broker", err, sizeof(err)) < 0) {
        log_error("%s", err);
        goto fail;
    }
    b.redis = status_for(&cfg, err, sizeof(err));
    if (b.redis == NULL || status_check(b.redis, err, sizeof(err)) < 0) {
        log_error("%s", err);
        goto fail;
    }
    b.zctx = zmq_ctx_new();
    b.zap = zap_start(b.zctx, &cfg, err, sizeof(err));
    if (b.zap == NULL) {
        log_error("%s", err);
        goto fail;
    }
    char actual[CONFIG_STR];
    b.jobs_sock = wire_socket(b.zctx, ZMQ_ROUTER, cfg.max_message_bytes, err, sizeof(err));
    if (b.jobs_sock == NULL || curve_serve(b.jobs_sock, &cfg, "broker", "jobs", err, sizeof(err)) < 0 ||
        zap_watch(b.zap, b.zctx, b.jobs_sock, "jobs", err, sizeof(err)) < 0 ||
        wire_bind(b.jobs_sock, cfg.jobs_endpoint, actual, sizeof(actual), err, sizeof(err)) < 0 ||
        config_advertise(&cfg, "jobs", actual, err, sizeof(err)) < 0) {
        log_error("%s", err);
        goto fail;
    }
    b.workers_sock = wire_socket(b.zctx, ZMQ_ROUTER, cfg.max_message_bytes, err, sizeof(err));
    if (b.workers_sock == NULL || curve_serve(b.workers_sock, &cfg, "broker", "workers", err, sizeof(err)) < 0 ||
        zap_watch(b.zap, b.zctx, b.workers_sock, "workers", err, sizeof(err)) < 0 ||
        wire_bind(b.workers_sock, cfg.workers_endpoint, actual, sizeof(actual), err, sizeof(err)) < 0 ||
        config_advertise(&cfg, "workers", actual, err, sizeof(err)) < 0) {
        log_error("%s", err);
        goto fail;
    }
    /* No ROUTER_HANDOVER: a peer presenting a connected worker's identity
     * does not take its connection over. */
    jobs_recover(&b);
    log_info("broker ready: jobs on %s, workers on %s", cfg.jobs_endpoint, cfg.workers_endpoint);

    zmq_pollitem_t items[2] = {{b.jobs_sock, 0, ZMQ_POLLIN, 0}, {b.workers_sock, 0, ZMQ_POLLIN, 0}};
    int64_t stop_at = 0;
    for (;;) {
        if (proc_stopping && stop_at == 0) {
            stop_at = mono_ms() + cfg.shutdown_grace_ms;
            log_info("stopping: no new work; waiting up to %lld ms for tasks in flight", (long long)cfg.shutdown_grace_ms);
        }
        if (stop_at) {
            int busy = 0;
            for (size_t i = 0; i < b.nworkers; i++)
                busy |= worker_busy(&b.workers[i]);
            if (!busy || mono_ms() > stop_at)
                break;
        }
        zmq_poll(items, 2, 100);
        pump(&b);
        if (!proc_stopping)
            jobs_step(&b);
    }
    jobs_stopped_cleanly(&b);
    jobq_destroy(&b.jobs);
    wire_guard_free(&b.jobs_guard);
    wire_guard_free(&b.workers_guard);
    free(b.workers);
    zmq_close(b.jobs_sock);
    zmq_close(b.workers_sock);
    unsigned long refused = zap_refused(b.zap);
    zap_stop(&b.zap);
    zmq_ctx_term(b.zctx);
    status_destroy(&b.redis);
    log_info("stopped (%llu frames rejected, %lu peers refused)", (unsigned long long)wire_rejected, refused);
    return 0;

fail:
    /* A start that failed (another broker holds the lock, Redis absent, a
       port taken) leaves nothing behind. */
    jobq_destroy(&b.jobs);
    wire_guard_free(&b.jobs_guard);
    wire_guard_free(&b.workers_guard);
    if (b.jobs_sock)
        zmq_close(b.jobs_sock);
    if (b.workers_sock)
        zmq_close(b.workers_sock);
    zap_stop(&b.zap);
    if (b.zctx)
        zmq_ctx_term(b.zctx);
    status_destroy(&b.redis);
    return 1;
}
