/* broker: shared state of the broker process — the job queue, each job's
 * shards, the worker registry — and the functions of its modules. */
#ifndef BROKER_H
#define BROKER_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "patronsync.pb-c.h"
#include "status.h"
#include "wire.h"

enum shard_state { SH_PENDING, SH_RUNNING, SH_DONE, SH_FAILED };

typedef struct {
    uint64_t off, len;   /* bytes of the UTF-8 work file */
    uint64_t first_line, last_line;
    uint32_t nrec;
    enum shard_state state;
    unsigned attempt;
    wire_peer worker;
    int64_t since_ms;
    int64_t not_before_ms; /* back-off before the next attempt */
    char error[256];
} shard;

enum job_phase { JP_QUEUED, JP_PLANNING, JP_APPLYING, JP_ASSEMBLING, JP_DONE };

typedef struct {
    Patronsync__JobRequest *req; /* owned (unpacked) */
    char id[128];
    enum job_phase phase;
    char workdir[CONFIG_STR + 160];
    char utf8_path[CONFIG_STR + 200];
    int fd;                       /* the UTF-8 work file */
    shard *shards;
    size_t nshards, ndone, nfailed;
    Patronsync__RecordNote **notes; /* sorted by line; owned */
    size_t nnotes;
    uint64_t records;             /* records read (after the rows to skip) */
    char final_state[32];
    char error[512];
    /* the apply step */
    enum shard_state apply_state;
    unsigned apply_attempt;
    wire_peer apply_worker;
    int64_t apply_since_ms;
    int64_t apply_not_before_ms;
    int apply_streaming;          /* the running apply was sent while shards were planned */
    int no_stream;                /* a streaming apply was handed back: the next waits for the plans */
    int apply_paced;              /* the streaming apply reports its progress (ApplyProgress) ... */
    uint32_t apply_past;          /* ... and has gone past this many shards */
    int64_t stream_sent_ms;       /* the last ApplyStream sent, and what it said */
    size_t stream_sent_failed;
    int stream_sent_final;
    int64_t started_ms;
    char **job_notes;             /* notes for the summary (BOM, ...) */
    size_t njob_notes;
    /* held for an operator (docs/SAFETY.md): kept in DATA/work/<job>/held,
     * out of the queue, until approved (DATA/work/<job>/approved) or
     * discarded */
    int held;                     /* the apply step crossed a threshold */
    int approved;                 /* apply without the threshold check */
    char held_reason[1024];
    char approved_by[128];
    int64_t approved_ms;
} job;

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

typedef struct {
    ps_config *cfg;
    void *zctx;
    void *jobs_sock;    /* ROUTER: scheduler */
    void *workers_sock; /* ROUTER: workers */
    status *redis;
    job **jobs;         /* fire order; jobs[0] is the active one */
    size_t njobs;
    worker_ref *workers;
    size_t nworkers;
    int64_t last_hb_ms;
    int64_t last_expire_ms; /* when workers_expire last ran: the broker was listening until then */
    volatile int *stopping;
} broker;

/* prepare.c: resolve the file under the import root, wait for it to be
 * still, convert it to UTF-8, find record boundaries, decide duplicates,
 * cut shards. 0, or -1 with err (the job fails with it). */
int prepare_job(broker *b, job *j, char *err, size_t errlen);
/* Add a job-level note to the summary (a copy of msg). 0 / -1 (no memory). */
int job_note(job *j, const char *msg);
/* Add a warning: a note beginning SUMMARY_WARNING (summary.h). A job with
 * one ends complete_with_errors (docs/INPUT.md). 0 / -1 (no memory). */
int job_warn(job *j, const char *msg);
/* Whether the job's notes hold a warning. */
int job_warned(const job *j);
/* Whether the job reads a run-now's file: patronctl run's own copy of the
 * operator's file in import/adhoc/, written for this job alone (a
 * scheduled file is its exporter's). */
int prepare_is_run_now(const Patronsync__JobRequest *req);
/* Resolve a file name strictly under root into out. 0 / -1 with err. */
int prepare_resolve(const char *root, const char *name, char *out, size_t outlen, char *err, size_t errlen);

/* main.c: handle waiting messages and heartbeats without dispatching work;
 * long steps call it to stay alive. */
void broker_pump(broker *b);

/* jobs.c */
int jobs_accept(broker *b, const Patronsync__JobRequest *req, char *err, size_t errlen);
void jobs_step(broker *b);                     /* start, dispatch, finish: called every loop */
void jobs_on_shard_result(broker *b, const wire_peer *from, const Patronsync__ShardResult *r);
void jobs_on_apply_result(broker *b, const wire_peer *from, const Patronsync__ApplyResult *r);
void jobs_on_apply_progress(broker *b, const wire_peer *from, const Patronsync__ApplyProgress *p);
void jobs_on_worker_lost(broker *b, const wire_peer *peer);
void jobs_recover(broker *b);                  /* rebuild in-flight jobs after a restart */
void jobs_stopped_cleanly(broker *b);          /* at a clean stop: its in-flight jobs start no poison count */
/* An operator's decision on a held job: "approve" queues its apply step
 * (the staged plans, exactly as previewed), "discard" ends it unchanged.
 * 0 with the job's new state, or -1 with err (not held, unknown, ...). */
int jobs_decide(broker *b, const Patronsync__JobDecision *d, char *state, size_t statelen, char *err, size_t errlen);
void job_free(job *j);

/* workers.c */
worker_ref *workers_find(broker *b, const wire_peer *p);
worker_ref *workers_add(broker *b, const wire_peer *p, const Patronsync__Ready *rd);
void workers_remove(broker *b, const wire_peer *p);
worker_ref *workers_idle(broker *b);           /* least recently used idle worker */
/* An idle one, else one with room beside its streaming apply; not_host
 * (NULL: any): only one known to be on another machine than that. */
worker_ref *workers_for_shard(broker *b, const char *not_host);
void workers_expire(broker *b);                /* drop the silent ones */
void workers_heartbeat(broker *b);             /* heartbeat every worker when due */
int workers_send(broker *b, worker_ref *w, Patronsync__BrokerMsg *m);

#endif
