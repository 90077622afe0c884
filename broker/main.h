/* main: the broker process's context — its sockets, its Redis, the job
 * queue (jobq.h) and the worker registry (workers.h) — set up by main.c,
 * which runs the poll loop and hands each message to its module. Nothing
 * here calls back into main.c, and no step of the loop is long: a file is
 * prepared beside it (preparer.h). */
#ifndef BROKER_MAIN_H
#define BROKER_MAIN_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "jobq.h"
#include "status.h"
#include "workers.h"

typedef struct broker {
    ps_config *cfg;
    void *zctx;
    void *jobs_sock;    /* ROUTER: scheduler */
    void *workers_sock; /* ROUTER: workers */
    wire_guard *jobs_guard, *workers_guard; /* peers that send garbage (wire.h) */
    status *redis;
    jobq *jobs;         /* fire order (jobs.c: which one runs) */
    worker_ref *workers;
    size_t nworkers, workers_cap;
    int64_t last_hb_ms;
    int64_t last_expire_ms; /* when workers_expire last ran: the broker was listening until then */
    volatile int *stopping;
    uint64_t requests_refused; /* jobs and decisions from another key than the scheduler's */
    uint64_t results_dropped; /* results from peers that did not hold the task */
    struct zap *zap;          /* the ZAP handler (zap.h) */
    /* A worker left the registry (goodbye, or silent too long): the jobs
     * take its tasks back (jobs_on_worker_lost). */
    void (*worker_lost)(struct broker *b, const wire_peer *peer);
} broker;

#endif
