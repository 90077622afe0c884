/* job: one job of the broker — its request, its shards, its notes, the
 * state of its apply step — with what every step does to a job alike
 * (create, free, fail, publish its progress). The struct is the jobs
 * module's own: jobs.c (the state machine), dispatch.c, assemble.c,
 * jobfiles.c, recovery.c and jobq.c; prepare and incremental never see it
 * (they fill a `prepared`, taken by job_take_prepared). */
#ifndef BROKER_JOB_H
#define BROKER_JOB_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "jobnotes.h"
#include "patronsync.pb-c.h"
#include "prepare.h"
#include "preparer.h"
#include "shards.h"
#include "wire.h"

struct broker;

/* QUEUED: waits for a preparation slot (prepare_parallel) or for an
 * earlier run of its schedule; PREPARING: its file is prepared beside the
 * loop (preparer.h); READY: prepared, waits for the job before it to end;
 * then one job at a time plans, applies and is assembled. */
enum job_phase { JP_QUEUED, JP_PREPARING, JP_READY, JP_PLANNING, JP_APPLYING, JP_ASSEMBLING, JP_DONE };

typedef struct job {
    Patronsync__JobRequest *req; /* owned (unpacked) */
    char id[128];
    enum job_phase phase;
    preparer *prep;               /* while PREPARING */
    int activated;                /* has been the running job (planned) */
    char workdir[CONFIG_STR + 160];
    char utf8_path[CONFIG_STR + 200];
    int fd;                       /* the UTF-8 work file */
    shard_list shards;
    size_t ndone, nfailed;
    Patronsync__RecordNote **record_notes; /* duplicates, unreadable lines: sorted by line; owned */
    size_t nrecord_notes;
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
    int64_t plan_started_ms;      /* when it began planning (its progress rate) */
    jobnotes summary_notes;       /* job-level notes for the summary (BOM, ...) */
    /* held for an operator (docs/SAFETY.md): kept in DATA/work/<job>/held,
     * out of the queue, until approved (DATA/work/<job>/approved) or
     * discarded */
    int held;                     /* the apply step crossed a threshold */
    int approved;                 /* apply without the threshold check */
    char held_reason[1024];
    char approved_by[128];
    int64_t approved_ms;
} job;

/* The job's UTF-8 copy of its input, in its work folder. */
#define JOB_WORK_UTF8 "input.utf8"

/* Whether id may name a job (and its work folder). */
int job_valid_id(const char *id);
/* A queued job of req (taken: freed with the job), its work paths under
 * cfg->data_dir. NULL: no memory (req not taken). */
job *job_new(const ps_config *cfg, Patronsync__JobRequest *req);
/* NULL-safe. */
void job_free(job *j);
/* Take everything prepare decided (out left empty). */
void job_take_prepared(job *j, prepared *out);
/* The phase as published (ps:job:<id> phase): queued, prepare, plan,
 * apply, summary. */
const char *job_phase_name(enum job_phase p);
/* The job fails with why: its summary is assembled next. */
void job_fail(job *j, const char *why);
/* Publish shard i's state (ps:job:<id>:shard:<i>) and the job's progress:
 * phase, shards done, records of the shards done, the rate since it began
 * planning and the seconds left (status_job_progress). */
void job_publish_shard(struct broker *b, job *j, size_t i);
void job_publish_progress(struct broker *b, job *j);
/* The job's calendar day, for missing-patron days: the district's date the
 * scheduler gave it, else the UTC date it was fired. */
void job_today(const job *j, char *out, size_t outlen);
/* The shards that failed so far, in *n (the caller frees). NULL: no memory. */
uint32_t *job_failed_shards(const job *j, size_t *n);
/* ms as "YYYY-MM-DD HH:MM:SS UTC" ("?" when it cannot be). */
void job_utc_time(int64_t ms, char *out, size_t outlen);

#endif
