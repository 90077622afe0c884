/* patron-worker: takes one task at a time from the broker (plan a shard, or
 * apply a job), keeps heartbeats both ways, reconnects with back-off. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "util.h"
#include "wire.h"
#include "worker.h"

static volatile int stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static int send_msg(worker_ctx *w, Patronsync__WorkerMsg *m)
{
    char err[ERRLEN];
    if (wire_send(w->sock, NULL, &m->base, err, sizeof(err)) < 0) {
        log_warn("sending to the broker: %s", err);
        return -1;
    }
    w->last_sent_ms = mono_ms();
    return 0;
}

static void send_heartbeat(worker_ctx *w)
{
    Patronsync__Heartbeat hb = PATRONSYNC__HEARTBEAT__INIT;
    Patronsync__WorkerMsg m = PATRONSYNC__WORKER_MSG__INIT;
    m.body_case = PATRONSYNC__WORKER_MSG__BODY_HEARTBEAT;
    m.heartbeat = &hb;
    send_msg(w, &m);
}

void worker_pump(worker_ctx *w)
{
    int64_t now = mono_ms();
    if (now - w->last_sent_ms >= w->cfg->heartbeat_ms)
        send_heartbeat(w);
    zmq_msg_t body;
    while (wire_recv(w->sock, NULL, &body) == 1) {
        /* Anything from the broker proves it alive; tasks never arrive
         * while one is held (the broker gives one at a time). */
        w->last_heard_ms = now;
        zmq_msg_close(&body);
    }
}

int worker_publish(worker_ctx *w, const char *job, const char *part, const Patronsync__Counts *c,
                   Patronsync__Exception *const *exc, size_t nexc, unsigned attempt)
{
    int warned = 0;
    while (status_publish_result(w->redis, job, part, c, exc, nexc, w->cfg->worker_id, attempt) < 0) {
        if (!warned)
            log_warn("job %s part %s: Redis unreachable; keeping the result until it is back", job, part);
        warned = 1;
        if (stopping)
            return -1;
        worker_pump(w);
        usleep(200 * 1000);
    }
    if (warned)
        log_info("job %s part %s: published after Redis came back", job, part);
    return 0;
}

static int connect_broker(worker_ctx *w)
{
    char err[ERRLEN], ep[CONFIG_STR];
    if (w->sock) {
        zmq_close(w->sock);
        w->sock = NULL;
    }
    if (config_endpoint(w->cfg, "workers", w->cfg->workers_endpoint, ep, sizeof(ep), err, sizeof(err)) < 0) {
        log_warn("%s", err);
        return -1;
    }
    w->sock = wire_socket(w->zctx, ZMQ_DEALER, w->cfg->max_message_bytes, err, sizeof(err));
    if (w->sock == NULL) {
        log_error("%s", err);
        return -1;
    }
    char ident[200];
    snprintf(ident, sizeof(ident), "%s/%d/%08lx", w->cfg->worker_id, (int)getpid(), (unsigned long)random());
    zmq_setsockopt(w->sock, ZMQ_ROUTING_ID, ident, strlen(ident));
    if (wire_connect(w->sock, ep, err, sizeof(err)) < 0) {
        log_error("%s", err);
        return -1;
    }
    Patronsync__Ready rd = PATRONSYNC__READY__INIT;
    rd.worker_id = w->cfg->worker_id;
    rd.pid = (uint32_t)getpid();
    Patronsync__WorkerMsg m = PATRONSYNC__WORKER_MSG__INIT;
    m.body_case = PATRONSYNC__WORKER_MSG__BODY_READY;
    m.ready = &rd;
    w->last_heard_ms = mono_ms();
    /* IMMEDIATE: the send fails until the connection is up; READY goes
     * out with the first heartbeat that succeeds then. */
    send_msg(w, &m);
    log_info("connecting to the broker at %s", ep);
    return 0;
}

static void handle(worker_ctx *w, const Patronsync__BrokerMsg *bm)
{
    char err[ERRLEN] = "";
    if (bm->body_case == PATRONSYNC__BROKER_MSG__BODY_SHARD) {
        const Patronsync__ShardTask *t = bm->shard;
        int64_t t0 = mono_ms();
        Patronsync__Counts counts = PATRONSYNC__COUNTS__INIT;
        int rc = plan_shard(w, t, &counts, err, sizeof(err));
        if (rc < 0 && stopping && strstr(err, "stopped") != NULL)
            return; /* handed back: the broker re-dispatches it */
        Patronsync__ShardResult r = PATRONSYNC__SHARD_RESULT__INIT;
        r.job_id = t->job_id;
        r.shard = t->shard;
        r.attempt = t->attempt;
        r.ok = rc == 0;
        r.error = rc == 0 ? "" : err;
        r.counts = &counts;
        Patronsync__WorkerMsg m = PATRONSYNC__WORKER_MSG__INIT;
        m.body_case = PATRONSYNC__WORKER_MSG__BODY_SHARD_RESULT;
        m.shard_result = &r;
        log_info("job %s shard %u attempt %u: %s in %lld ms (%llu records)", t->job_id, t->shard, t->attempt,
                 rc == 0 ? "planned" : err, (long long)(mono_ms() - t0), (unsigned long long)counts.read);
        send_msg(w, &m);
    } else if (bm->body_case == PATRONSYNC__BROKER_MSG__BODY_APPLY) {
        const Patronsync__ApplyTask *t = bm->apply;
        int64_t t0 = mono_ms();
        Patronsync__Counts counts = PATRONSYNC__COUNTS__INIT;
        Patronsync__ApplyResult r = PATRONSYNC__APPLY_RESULT__INIT;
        r.counts = &counts;
        int rc = apply_job(w, t, &r, err, sizeof(err));
        if (rc < 0 && stopping && strstr(err, "stopped") != NULL)
            return;
        r.job_id = t->job_id;
        r.attempt = t->attempt;
        r.ok = rc == 0;
        r.error = rc == 0 ? "" : err;
        Patronsync__WorkerMsg m = PATRONSYNC__WORKER_MSG__INIT;
        m.body_case = PATRONSYNC__WORKER_MSG__BODY_APPLY_RESULT;
        m.apply_result = &r;
        log_info("job %s apply attempt %u: %s in %lld ms", t->job_id, t->attempt, rc == 0 ? "applied" : err,
                 (long long)(mono_ms() - t0));
        send_msg(w, &m);
    }
}

int main(int argc, char **argv)
{
    ps_config cfg;
    char err[ERRLEN];
    int print = 0;
    if (config_from_args(&cfg, &argc, argv, &print, err, sizeof(err)) < 0) {
        fprintf(stderr, "patron-worker: %s\n", err);
        return 2;
    }
    if (print) {
        config_print(&cfg, stdout);
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "patron-worker: unknown argument '%s'\n", argv[1]);
        return 2;
    }
    log_init(cfg.worker_id, log_level_parse(cfg.log_level));
    srandom((unsigned)(getpid() ^ now_ms()));
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    worker_ctx w;
    memset(&w, 0, sizeof(w));
    w.cfg = &cfg;
    w.stopping = &stopping;
    if (mkdir_p(cfg.stage_dir, 0750, err, sizeof(err)) < 0) {
        log_error("%s", err);
        return 1;
    }
    w.st = store_open(cfg.store_path, (int)cfg.cache_mb, 0, err, sizeof(err));
    if (w.st == NULL) {
        log_error("%s", err);
        return 1;
    }
    w.redis = status_new(cfg.redis_url, err, sizeof(err));
    if (w.redis == NULL) {
        log_error("%s", err);
        store_close(&w.st);
        return 1;
    }
    w.zctx = zmq_ctx_new();
    int64_t backoff = 100;
    while (!stopping && connect_broker(&w) < 0) {
        usleep((useconds_t)backoff * 1000);
        backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
    }
    int ready_acked = 0;
    while (!stopping) {
        zmq_msg_t body;
        int r = wire_recv_wait(w.sock, NULL, &body, (long)cfg.heartbeat_ms);
        int64_t now = mono_ms();
        if (r == 1) {
            w.last_heard_ms = now;
            backoff = 100;
            ready_acked = 1;
            Patronsync__BrokerMsg *bm =
                patronsync__broker_msg__unpack(NULL, zmq_msg_size(&body), zmq_msg_data(&body));
            zmq_msg_close(&body);
            if (bm == NULL) {
                wire_rejected++;
                log_warn("a frame from the broker did not decode; dropped (%llu so far)",
                         (unsigned long long)wire_rejected);
                continue;
            }
            handle(&w, bm);
            patronsync__broker_msg__free_unpacked(bm, NULL);
        }
        now = mono_ms();
        if (now - w.last_sent_ms >= cfg.heartbeat_ms) {
            if (!ready_acked) {
                Patronsync__Ready rd = PATRONSYNC__READY__INIT;
                rd.worker_id = cfg.worker_id;
                rd.pid = (uint32_t)getpid();
                Patronsync__WorkerMsg m = PATRONSYNC__WORKER_MSG__INIT;
                m.body_case = PATRONSYNC__WORKER_MSG__BODY_READY;
                m.ready = &rd;
                send_msg(&w, &m);
            } else {
                send_heartbeat(&w);
            }
        }
        if (now - w.last_heard_ms > cfg.heartbeat_ms * cfg.liveness) {
            log_warn("broker silent for %lld ms; reconnecting in %lld ms", (long long)(now - w.last_heard_ms),
                     (long long)backoff);
            usleep((useconds_t)backoff * 1000);
            backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
            ready_acked = 0;
            connect_broker(&w);
        }
    }
    if (w.sock) {
        Patronsync__Bye bye = PATRONSYNC__BYE__INIT;
        Patronsync__WorkerMsg m = PATRONSYNC__WORKER_MSG__INIT;
        m.body_case = PATRONSYNC__WORKER_MSG__BODY_BYE;
        m.bye = &bye;
        send_msg(&w, &m);
        zmq_close(w.sock);
    }
    zmq_ctx_term(w.zctx);
    status_destroy(&w.redis);
    store_close(&w.st);
    log_info("stopped");
    return 0;
}
