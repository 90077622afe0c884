/* link: the worker's connection to the broker (link.h). */
#include "link.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "curve.h"
#include "log.h"
#include "proc.h"
#include "util.h"
#include "wire.h"

int link_send(worker_ctx *w, Patronsync__WorkerMsg *m)
{
    char err[ERRLEN];
    if (wire_send(w->sock, NULL, &m->base, err, sizeof(err)) < 0) {
        log_warn("sending to the broker: %s", err);
        return -1;
    }
    w->last_sent_ms = mono_ms();
    return 0;
}

void link_heartbeat(worker_ctx *w)
{
    Patronsync__Heartbeat hb = PATRONSYNC__HEARTBEAT__INIT;
    hb.max_task_rss_kb = (uint64_t)w->child_maxrss_kb;
    hb.stopping = proc_stopping != 0;
    Patronsync__WorkerMsg m = PATRONSYNC__WORKER_MSG__INIT;
    m.body_case = PATRONSYNC__WORKER_MSG__BODY_HEARTBEAT;
    m.heartbeat = &hb;
    link_send(w, &m);
}

/* A streaming apply's word from the broker, passed down to its process as
 * [u32 length][ApplyStream] in one message of its socket pair (up to
 * APPLY_STREAM_MAX bytes; a larger one is left out: the broker says it
 * again, and the apply hands its task back if it never hears). A full
 * socket drops it the same way. */
void link_pass_stream(worker_ctx *w, const Patronsync__ApplyStream *as)
{
    size_t n = patronsync__apply_stream__get_packed_size(as);
    uint8_t *frame = n + 4 <= APPLY_STREAM_MAX ? malloc(n + 4) : NULL;
    if (frame == NULL) {
        log_warn("the broker's word to the apply (%zu bytes) not passed: over %d bytes, or no memory", n,
                 APPLY_STREAM_MAX);
        return;
    }
    uint32_t n32 = (uint32_t)n;
    memcpy(frame, &n32, 4);
    patronsync__apply_stream__pack(as, frame + 4);
    if (write(w->ctl, frame, n + 4) < 0 && errno != EAGAIN)
        log_warn("passing the broker's word to the apply: %s", strerror(errno));
    free(frame);
}

/* The machine this worker runs on: the `machine` setting, else the
 * kernel's boot id (one per machine and boot, the same in every container
 * on it), else its host name. Found once: Ready goes out until answered. */
static const char *host_id(const ps_config *c)
{
    static char id[384];
    if (c->machine[0] != '\0')
        return c->machine;
    if (id[0] != '\0')
        return id;
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (f != NULL) {
        if (fgets(id, sizeof(id), f) == NULL)
            id[0] = '\0';
        fclose(f);
    }
    id[strcspn(id, "\n")] = '\0';
    if (id[0] == '\0' && gethostname(id, sizeof(id) - 1) < 0)
        id[0] = '\0';
    return id;
}

void link_ready(worker_ctx *w)
{
    Patronsync__Ready rd = PATRONSYNC__READY__INIT;
    rd.worker_id = w->cfg->worker_id;
    rd.pid = (uint32_t)getpid();
    rd.plans_beside_apply = w->cfg->plan_beside_apply != 0;
    /* Planning is CPU work: the machine plans no more shards at once than
     * it has cores, whatever number of workers it runs. */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    rd.host = (char *)host_id(w->cfg);
    rd.plan_slots = w->cfg->plan_slots > 0 ? (uint32_t)w->cfg->plan_slots : cores > 0 ? (uint32_t)cores : 0;
    Patronsync__WorkerMsg m = PATRONSYNC__WORKER_MSG__INIT;
    m.body_case = PATRONSYNC__WORKER_MSG__BODY_READY;
    m.ready = &rd;
    link_send(w, &m);
}

int link_connect(worker_ctx *w)
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
    if (w->sock == NULL || curve_connect_as(w->sock, w->cfg, "worker", "broker", err, sizeof(err)) < 0) {
        log_error("%s", err);
        return -1;
    }
    /* A random identity (libsodium's generator): no peer can guess it to
     * pass for this worker. */
    unsigned char rnd[12];
    char hex[2 * sizeof(rnd) + 1], ident[200];
    randombytes_buf(rnd, sizeof(rnd));
    sodium_bin2hex(hex, sizeof(hex), rnd, sizeof(rnd));
    snprintf(ident, sizeof(ident), "%s/%d/%s", w->cfg->worker_id, (int)getpid(), hex);
    zmq_setsockopt(w->sock, ZMQ_ROUTING_ID, ident, strlen(ident));
    if (wire_connect(w->sock, ep, err, sizeof(err)) < 0) {
        log_error("%s", err);
        return -1;
    }
    w->last_heard_ms = mono_ms();
    /* IMMEDIATE: the send fails until the connection is up; READY goes
     * out with the first heartbeat that succeeds then. */
    link_ready(w);
    log_info("connecting to the broker at %s", ep);
    return 0;
}

