/* patron-scheduler: serves the control endpoint patronctl talks to, fires
 * the schedules' slots at their local times, and hands jobs to the broker
 * (acknowledged, resent until then). */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control.h"
#include "curve.h"
#include "log.h"
#include "proc.h"
#include "outbox.h"
#include "schedule_timing.h"
#include "scheduler.h"
#include "slots.h"
#include "wire.h"
#include "zap.h"

static void on_control(scheduler *s)
{
    for (int k = 0; k < 100; k++) {
        wire_peer from = {.len = 0};
        zmq_msg_t body;
        int r = wire_recv(s->control_sock, &from, &body);
        if (r == 0)
            return;
        if (r < 0) {
            wire_guard_strike(s->guard, &from);
            continue;
        }
        if (!wire_guard_admit(s->guard, &from)) {
            zmq_msg_close(&body);
            continue;
        }
        Patronsync__ControlRequest *rq =
            patronsync__control_request__unpack(NULL, zmq_msg_size(&body), zmq_msg_data(&body));
        /* Who asks, for the audit trail and the back-off: its address and
         * the name its key has on the allow-list. */
        const char *addr = zmq_msg_gets(&body, "Peer-Address");
        char peer[160];
        snprintf(peer, sizeof(peer), "%s%s%s", addr ? addr : "?", curve_user(&body)[0] ? " key " : "",
                 curve_user(&body));
        zmq_msg_close(&body);
        Patronsync__ControlReply rep = PATRONSYNC__CONTROL_REPLY__INIT;
        strbuf sb;
        sb_init(&sb);
        if (rq == NULL) {
            wire_rejected++;
            wire_guard_strike(s->guard, &from);
            if (wire_should_log_rejected())
                log_warn("control socket: a frame that does not decode dropped (%llu rejected so far)",
                     (unsigned long long)wire_rejected);
            rep.ok = 0;
            rep.status = 2;
            rep.error = "request does not decode";
        } else {
            control_handle(s, rq, peer, &rep, &sb);
        }
        char err[ERRLEN];
        if (wire_send(s->control_sock, &from, &rep.base, err, sizeof(err)) < 0)
            log_warn("control reply: %s", err);
        sb_free(&sb);
        if (rq)
            patronsync__control_request__free_unpacked(rq, NULL);
    }
}

static void on_broker(scheduler *s)
{
    for (int k = 0; k < 100; k++) {
        zmq_msg_t body;
        int r = wire_recv(s->broker_sock, NULL, &body);
        if (r == 0)
            return;
        if (r < 0)
            continue;
        Patronsync__BrokerReply *rep = patronsync__broker_reply__unpack(NULL, zmq_msg_size(&body), zmq_msg_data(&body));
        zmq_msg_close(&body);
        if (rep == NULL) {
            wire_rejected++;
            continue;
        }
        outbox_on_reply(s, rep);
        patronsync__broker_reply__free_unpacked(rep, NULL);
    }
}

/* Open what the scheduler serves with: control.db, Redis, the control
 * socket (bound, advertised) and the broker's job socket (connected once
 * the broker has advertised it). 0 / -1 (logged). */
static int start(scheduler *s, ps_config *cfg, char *actual, size_t actuallen, char *ep, size_t eplen)
{
    char err[ERRLEN];
    if (!slots_zone_known(cfg->timezone)) {
        log_error("timezone '%s' is not a zone this machine knows (an IANA name such as America/New_York; tzdata)",
                  cfg->timezone);
        return -1;
    }
    if (mkdir_p(cfg->data_dir, 0750, err, sizeof(err)) < 0 || proc_lock(cfg, "scheduler", err, sizeof(err)) < 0) {
        log_error("%s", err);
        return -1;
    }
    s->db = controldb_open(cfg->control_db, 0, err, sizeof(err));
    if (s->db == NULL || control_first_admin(s, err, sizeof(err)) < 0) {
        log_error("%s", err);
        return -1;
    }
    s->redis = status_for(cfg, err, sizeof(err));
    if (s->redis == NULL || status_check(s->redis, err, sizeof(err)) < 0) {
        log_error("%s", err);
        return -1;
    }
    s->zctx = zmq_ctx_new();
    s->zap = zap_start(s->zctx, cfg, err, sizeof(err));
    s->guard = wire_guard_new("control socket");
    if (s->zap == NULL || s->guard == NULL) {
        log_error("%s", s->zap ? "out of memory" : err);
        return -1;
    }
    s->control_sock = wire_socket(s->zctx, ZMQ_ROUTER, cfg->max_message_bytes, err, sizeof(err));
    if (s->control_sock == NULL || curve_serve(s->control_sock, cfg, "scheduler", "control", err, sizeof(err)) < 0 ||
        zap_watch(s->zap, s->zctx, s->control_sock, "control", err, sizeof(err)) < 0 ||
        wire_bind(s->control_sock, cfg->control_endpoint, actual, actuallen, err, sizeof(err)) < 0 ||
        config_advertise(cfg, "control", actual, err, sizeof(err)) < 0) {
        log_error("%s", err);
        return -1;
    }
    s->broker_sock = wire_socket(s->zctx, ZMQ_DEALER, cfg->max_message_bytes, err, sizeof(err));
    while (!proc_stopping && config_endpoint(cfg, "jobs", cfg->jobs_endpoint, ep, eplen, err, sizeof(err)) < 0)
        usleep(200 * 1000);
    if (s->broker_sock == NULL || curve_connect_as(s->broker_sock, cfg, "scheduler", "broker", err, sizeof(err)) < 0 ||
        wire_connect(s->broker_sock, ep, err, sizeof(err)) < 0) {
        log_error("%s", err);
        return -1;
    }
    return 0;
}

/* Close what start opened (any part of it). */
static void stop(scheduler *s)
{
    if (s->control_sock)
        zmq_close(s->control_sock);
    if (s->broker_sock)
        zmq_close(s->broker_sock);
    zap_stop(&s->zap);
    wire_guard_free(&s->guard);
    control_free(s);
    sodium_memzero(s->token_key, sizeof(s->token_key));
    if (s->zctx)
        zmq_ctx_term(s->zctx);
    status_destroy(&s->redis);
    controldb_close(&s->db);
}

static void serve(scheduler *s)
{
    zmq_pollitem_t items[2] = {{s->control_sock, 0, ZMQ_POLLIN, 0}, {s->broker_sock, 0, ZMQ_POLLIN, 0}};
    int64_t next_tick = 0, next_publish = 0;
    while (!proc_stopping) {
        zmq_poll(items, 2, 200);
        on_control(s);
        on_broker(s);
        /* Slots: a cheap read every quarter second; the write lock only
         * when one is due. The first step after a start catches up on
         * what was missed while the scheduler was down. */
        int64_t mono = mono_ms();
        if (mono >= next_tick) {
            next_tick = mono + 250;
            schedules_tick(s, schedules_clock(s->cfg), NULL);
        }
        if (mono >= next_publish) {
            next_publish = mono + 60000;
            schedules_publish(s, schedules_clock(s->cfg));
        }
        outbox_step(s);
    }
}

int main(int argc, char **argv)
{
    ps_config cfg;
    int rc = proc_start("patron-scheduler", "scheduler", argc, argv, &cfg);
    if (rc >= 0)
        return rc;
    srandom((unsigned)(getpid() ^ now_ms()));
    scheduler s;
    memset(&s, 0, sizeof(s));
    s.cfg = &cfg;
    s.stopping = &proc_stopping;
    char actual[CONFIG_STR], ep[CONFIG_STR];
    if (start(&s, &cfg, actual, sizeof(actual), ep, sizeof(ep)) < 0) {
        stop(&s);
        return 1;
    }
    log_info("scheduler ready: control on %s, broker at %s, district time zone %s", actual, ep, cfg.timezone);
    serve(&s);
    stop(&s);
    log_info("stopped (%llu frames rejected)", (unsigned long long)wire_rejected);
    return 0;
}
