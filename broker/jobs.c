/* jobs: the broker's job state machine — accept (once per job id),
 * prepare, plan (dispatch.h), apply, assemble (assemble.h), hold or
 * finish; a worker's results and its loss; recovery after a restart from
 * the work folders (jobfiles.h), a poison job's quarantine, and the
 * operator's decision on a held job. */
#include "jobs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "assemble.h"
#include "dispatch.h"
#include "job.h"
#include "jobfiles.h"
#include "jobq.h"
#include "log.h"
#include "preparer.h"
#include "stage.h"
#include "store.h"
#include "util.h"
#include "wire.h"

int jobs_accept(broker *b, const Patronsync__JobRequest *req, char *err, size_t errlen)
{
    if (!job_valid_id(req->job_id)) {
        err_set(err, errlen, "job id '%s' is not valid", req->job_id);
        return -1;
    }
    if (jobq_find(b->jobs, req->job_id) != NULL)
        return 0;
    char dir[CONFIG_STR + 160];
    snprintf(dir, sizeof(dir), "%s/work/%s", b->cfg->data_dir, req->job_id);
    if (access(dir, F_OK) == 0)
        return 0; /* had it already (running or finished): never twice */
    if (mkdir_p(dir, 0750, err, errlen) < 0)
        return -1;
    size_t n;
    uint8_t *buf = wire_pack(&req->base, &n, err, errlen);
    if (buf == NULL)
        return -1;
    char path[CONFIG_STR + 200];
    snprintf(path, sizeof(path), "%s/request.pb", dir);
    int rc = file_write_atomic(path, buf, n, err, errlen);
    Patronsync__JobRequest *copy = rc == 0 ? patronsync__job_request__unpack(NULL, n, buf) : NULL;
    free(buf);
    if (copy == NULL) {
        if (rc == 0)
            err_set(err, errlen, "out of memory");
        return -1;
    }
    job *j = job_new(b->cfg, copy);
    if (j == NULL || jobq_push(b->jobs, j) < 0) {
        if (j)
            job_free(j);
        else
            patronsync__job_request__free_unpacked(copy, NULL);
        err_set(err, errlen, "out of memory");
        return -1;
    }
    status_job_set(b->redis, j->id, SK_JOB, "state pending accepted_ms %lld", (long long)now_ms());
    status_job_index(b->redis, j->id, (long long)copy->fired_at_ms);
    log_info("job %s accepted: file '%s', profile '%s'", j->id, copy->file, copy->profile_name);
    return 0;
}

/* Whether the store holds the job's apply marker. */
static int already_applied(broker *b, job *j)
{
    char err[ERRLEN];
    store *st = store_open(b->cfg->store_path, 2, STORE_READONLY, err, sizeof(err));
    if (st == NULL)
        return 0;
    uint8_t *blob = NULL;
    size_t len = 0;
    int r = store_marker_get(st, j->id, "apply", &blob, &len);
    free(blob);
    store_close(&st);
    return r == 1;
}

/* Start preparing j: a preparation saved before a restart is taken as it
 * is; otherwise the file is prepared beside the loop (preparer.h). */
static void begin_prepare(broker *b, job *j)
{
    char err[ERRLEN];
    j->started_ms = now_ms();
    status_job_set(b->redis, j->id, SK_JOB,
                   "state running phase prepare started_ms %lld file %s profile %s schedule %s requested_by %s dry_run %d",
                   (long long)j->started_ms, j->req->file, j->req->profile_name, j->req->schedule,
                   j->req->requested_by, j->req->options && j->req->options->dry_run ? 1 : 0);
    int loaded = jobfiles_load_prepared(j, err, sizeof(err));
    if (loaded < 0)
        log_warn("job %s: saved preparation unusable (%s); preparing again", j->id, err);
    if (loaded == 1) {
        j->phase = JP_READY;
        return;
    }
    prepare_args a = {
        .cfg = b->cfg,
        .req = j->req,
        .job_id = j->id,
        .workdir = j->workdir,
        .utf8_path = j->utf8_path,
        .ka = {.stopping = b->stopping},
    };
    j->prep = preparer_start(&a, err, sizeof(err));
    if (j->prep == NULL) {
        job_fail(j, err);
        return;
    }
    j->phase = JP_PREPARING;
}

/* A preparation that has ended: j takes what was decided (after a failure
 * too: its notes go into the summary). */
static void end_prepare(broker *b, job *j)
{
    char err[ERRLEN];
    prepared out;
    int rc = preparer_take(&j->prep, &out, err, sizeof(err));
    job_take_prepared(j, &out);
    if (rc < 0 && *b->stopping) {
        j->phase = JP_QUEUED; /* resumes after the restart */
        return;
    }
    if (rc < 0 || jobfiles_save_prepared(j, err, sizeof(err)) < 0) {
        job_fail(j, err);
        return;
    }
    j->phase = JP_READY;
    job_publish_progress(b, j);
}

/* Whether an earlier job of the queue runs the same schedule (a run-now:
 * the same file) and has not ended: a schedule's runs go one at a time,
 * their archive and incremental step in order. */
static int waits_for_earlier_run(broker *b, size_t k)
{
    const job *j = jobq_at(b->jobs, k);
    const char *sched = j->req->schedule && *j->req->schedule ? j->req->schedule : NULL;
    for (size_t i = 0; i < k; i++) {
        const job *e = jobq_at(b->jobs, i);
        const char *es = e->req->schedule && *e->req->schedule ? e->req->schedule : NULL;
        if (sched ? es && strcmp(es, sched) == 0 : !es && strcmp(e->req->file, j->req->file) == 0)
            return 1;
    }
    return 0;
}

/* Preparations: the ended ones taken, queued jobs started in fire order
 * while fewer than prepare_parallel run. */
static void prepare_step(broker *b)
{
    size_t running = 0;
    for (size_t k = 0; k < jobq_count(b->jobs); k++) {
        job *j = jobq_at(b->jobs, k);
        if (j->phase == JP_PREPARING && preparer_done(j->prep))
            end_prepare(b, j);
        running += j->phase == JP_PREPARING;
    }
    for (size_t k = 0; k < jobq_count(b->jobs) && running < (size_t)b->cfg->prepare_parallel; k++) {
        job *j = jobq_at(b->jobs, k);
        if (j->phase != JP_QUEUED || waits_for_earlier_run(b, k))
            continue;
        begin_prepare(b, j);
        running += j->phase == JP_PREPARING;
    }
}

/* The prepared job becomes the running one: planned, applied, assembled. */
static void activate(broker *b, job *j)
{
    j->activated = 1;
    j->phase = JP_PLANNING;
    j->apply_state = SH_PENDING;
    if (already_applied(b, j)) {
        /* The broker stopped after the apply step committed: its result
         * is in the store; only the summary is left to do. */
        for (size_t i = 0; i < j->shards.n; i++) {
            char path[CONFIG_STR + 256];
            int staged = stage_plan_path(b->cfg, j->id, (unsigned)i, path, sizeof(path)) == 0 && access(path, F_OK) == 0;
            j->shards.v[i].state = staged ? SH_DONE : SH_FAILED;
            if (staged)
                j->ndone++;
            else
                j->nfailed++;
        }
        j->apply_state = SH_DONE;
        j->phase = JP_ASSEMBLING;
        log_info("job %s was applied before the restart; assembling its summary", j->id);
        return;
    }
    job_publish_progress(b, j);
    for (size_t i = 0; i < j->shards.n; i++)
        job_publish_shard(b, j, i);
}

/* The job this step works on: one that failed before it ran (its summary
 * at once), else the running one, else the first prepared one, which then
 * runs. One job plans and applies at a time, in fire order among the
 * prepared; a job whose file is still settling holds up no other. */
static job *current_job(broker *b)
{
    job *ready = NULL;
    for (size_t k = 0; k < jobq_count(b->jobs); k++) {
        job *j = jobq_at(b->jobs, k);
        if (j->phase == JP_ASSEMBLING && !j->activated)
            return j;
    }
    for (size_t k = 0; k < jobq_count(b->jobs); k++) {
        job *j = jobq_at(b->jobs, k);
        if (j->activated)
            return j;
        if (j->phase == JP_READY && ready == NULL)
            ready = j;
    }
    if (ready != NULL)
        activate(b, ready);
    return ready;
}

/* A held job leaves the queue (it must not block the jobs after it); its
 * work folder and staged plans stay for the operator's decision. */
static void hold_job(broker *b, job *j)
{
    jobfiles_write_held(j);
    jobq_remove(b->jobs, j);
    job_free(j);
}

static void finish_job(broker *b, job *j)
{
    jobfiles_finish(b->cfg, j);
    jobq_remove(b->jobs, j);
    job_free(j);
}

void jobs_step(broker *b)
{
    prepare_step(b);
    job *j = current_job(b);
    if (j == NULL)
        return;
    int64_t now = now_ms();
    if (j->phase == JP_PLANNING || j->phase == JP_APPLYING) {
        if (j->started_ms > 0 && now - j->started_ms > b->cfg->job_deadline_seconds * 1000) {
            char why[200];
            snprintf(why, sizeof(why), "watchdog: the job ran longer than %lld seconds (job_deadline_seconds)",
                     (long long)b->cfg->job_deadline_seconds);
            job_fail(j, why);
        }
    }
    if (j->phase == JP_PLANNING) {
        if (dispatch_stream_now(b, j)) {
            worker_ref *w = workers_idle(b);
            if (w != NULL)
                dispatch_apply(b, j, w, 1);
        }
        char apply_host[CONFIG_STR];
        size_t upto = dispatch_plan_window(b, j, apply_host);
        for (size_t i = 0; i < j->shards.n; i++) {
            shard *s = &j->shards.v[i];
            if (s->state != SH_PENDING || s->not_before_ms > now)
                continue;
            worker_ref *w = workers_for_shard(b, i < upto ? NULL : apply_host);
            if (w == NULL)
                break;
            if (dispatch_shard(b, j, i, w) < 0)
                break;
        }
        if (j->ndone + j->nfailed == j->shards.n) {
            /* A dry run applies too, and rolls back: same counts and lines. */
            j->phase = JP_APPLYING;
            job_publish_progress(b, j);
        }
    }
    if (j->phase == JP_APPLYING && j->apply_state == SH_PENDING && j->apply_not_before_ms <= now) {
        worker_ref *w = workers_idle(b);
        if (w != NULL)
            dispatch_apply(b, j, w, 0);
    }
    if (j->phase == JP_PLANNING || j->phase == JP_APPLYING)
        dispatch_stream(b, j);
    if (j->phase == JP_ASSEMBLING) {
        if (assemble_job(b, j) == 0) {
            j->phase = JP_DONE;
            if (j->held)
                hold_job(b, j);
            else
                finish_job(b, j);
        }
    }
}

static void shard_failed_attempt(broker *b, job *j, size_t i, const char *why)
{
    shard *s = &j->shards.v[i];
    str_copy(s->error, sizeof(s->error), why);
    if (s->attempt >= (unsigned)b->cfg->max_attempts) {
        s->state = SH_FAILED;
        j->nfailed++;
        log_warn("job %s shard %zu failed after %u attempts: %s", j->id, i, s->attempt, why);
    } else {
        s->state = SH_PENDING;
        s->not_before_ms = now_ms() + ((int64_t)250 << (s->attempt < 6 ? s->attempt : 6));
        log_warn("job %s shard %zu attempt %u failed (%s); retrying", j->id, i, s->attempt, why);
    }
    job_publish_shard(b, j, i);
    job_publish_progress(b, j);
}

/* A result from a peer for a task the broker gave another (or none): the
 * result is dropped and so is the peer (it registers again with READY);
 * the task's holder still owes its result. */
static void not_holder(broker *b, const wire_peer *from, const char *what, const char *job_id)
{
    worker_ref *w = workers_find(b, from);
    uint64_t n = ++b->results_dropped;
    if ((n & (n - 1)) == 0)
        log_warn("worker %s sent a %s result for job %s, a task it does not hold: dropped, and the worker with it "
                 "(%llu so far)", w ? w->name : "?", what, job_id, (unsigned long long)n);
    if (w != NULL)
        workers_remove(b, from);
}

void jobs_on_shard_result(broker *b, const wire_peer *from, const Patronsync__ShardResult *r)
{
    job *j = jobq_find(b->jobs, r->job_id);
    if (j == NULL || j->phase != JP_PLANNING || r->shard >= j->shards.n) {
        workers_release(b, from, 0);
        log_info("late or unknown shard result for job %s shard %u ignored", r->job_id, r->shard);
        return;
    }
    shard *s = &j->shards.v[r->shard];
    if (s->state == SH_RUNNING && !wire_peer_same(&s->worker, from)) {
        not_holder(b, from, "shard", r->job_id);
        return;
    }
    workers_release(b, from, 0);
    if (s->state != SH_RUNNING || s->attempt != r->attempt) {
        log_info("job %s shard %u: result of attempt %u ignored (current attempt %u)", r->job_id, r->shard,
                 r->attempt, s->attempt);
        return;
    }
    if (r->ok) {
        s->state = SH_DONE;
        j->ndone++;
        s->error[0] = '\0';
        job_publish_shard(b, j, r->shard);
        job_publish_progress(b, j);
    } else if (r->handed_back) {
        /* Never started (the worker is stopping): not an attempt; given out
         * again a little later, by when a stopping worker has said goodbye. */
        s->attempt--;
        s->state = SH_PENDING;
        s->not_before_ms = now_ms() + 250;
        log_info("job %s shard %u handed back (%s); not an attempt", r->job_id, r->shard, r->error);
        job_publish_shard(b, j, r->shard);
    } else {
        shard_failed_attempt(b, j, r->shard, r->error);
    }
}

void jobs_on_apply_result(broker *b, const wire_peer *from, const Patronsync__ApplyResult *r)
{
    job *j = jobq_find(b->jobs, r->job_id);
    if (j != NULL && j->apply_state == SH_RUNNING && !wire_peer_same(&j->apply_worker, from)) {
        not_holder(b, from, "apply", r->job_id);
        return;
    }
    workers_release(b, from, 1);
    /* A streaming apply can end early (handed back, or failed) while the
     * shards are still planned. */
    int phase_ok = j != NULL && (j->phase == JP_APPLYING || (j->phase == JP_PLANNING && j->apply_streaming));
    if (!phase_ok || j->apply_state != SH_RUNNING || r->attempt != j->apply_attempt) {
        log_info("late apply result for job %s attempt %u ignored", r->job_id, r->attempt);
        return;
    }
    if (!r->ok && r->handed_back) {
        /* Not an attempt: the next apply waits for every plan. */
        j->apply_attempt--;
        j->apply_state = SH_PENDING;
        j->no_stream = 1;
        log_info("job %s: the streaming apply was handed back (%s); it runs once the shards are planned", j->id,
                 r->error);
        return;
    }
    if (r->ok) {
        j->apply_state = SH_DONE;
        j->phase = JP_ASSEMBLING;
        int dry = j->req->options && j->req->options->dry_run;
        if (r->held && !dry) {
            j->held = 1;
            str_copy(j->held_reason, sizeof(j->held_reason), r->held_reason);
            str_copy(j->final_state, sizeof(j->final_state), "held");
            log_info("job %s held: %s", j->id, j->held_reason);
        }
        return;
    }
    if (j->apply_attempt >= (unsigned)b->cfg->max_attempts) {
        j->apply_state = SH_FAILED;
        char why[600];
        snprintf(why, sizeof(why), "applying the changes failed after %u attempts: %s; nothing was changed",
                 j->apply_attempt, r->error);
        job_fail(j, why);
    } else {
        j->apply_state = SH_PENDING;
        j->apply_not_before_ms = now_ms() + 500;
        log_warn("job %s apply attempt %u failed (%s); retrying", j->id, j->apply_attempt, r->error);
    }
}

void jobs_on_apply_progress(broker *b, const wire_peer *from, const Patronsync__ApplyProgress *p)
{
    job *j = jobq_find(b->jobs, p->job_id);
    if (j == NULL || j->apply_state != SH_RUNNING || !j->apply_streaming || p->attempt != j->apply_attempt ||
        j->apply_worker.len != from->len || memcmp(j->apply_worker.id, from->id, from->len) != 0)
        return;
    if (!j->apply_paced || p->shards_past > j->apply_past)
        log_debug("job %s: the apply is past %u of %zu shards", j->id, p->shards_past, j->shards.n);
    j->apply_paced = 1;
    j->apply_past = p->shards_past;
}

void jobs_on_worker_lost(broker *b, const wire_peer *peer)
{
    for (size_t k = 0; k < jobq_count(b->jobs); k++) {
        job *j = jobq_at(b->jobs, k);
        for (size_t i = 0; i < j->shards.n; i++) {
            shard *s = &j->shards.v[i];
            if (s->state == SH_RUNNING && s->worker.len == peer->len && memcmp(s->worker.id, peer->id, peer->len) == 0)
                shard_failed_attempt(b, j, i, "the worker holding it stopped answering");
        }
        if (j->apply_state == SH_RUNNING && j->apply_worker.len == peer->len &&
            memcmp(j->apply_worker.id, peer->id, peer->len) == 0) {
            if (j->apply_attempt >= (unsigned)b->cfg->max_attempts) {
                j->apply_state = SH_FAILED;
                job_fail(j, "the worker applying the changes stopped answering, every attempt");
            } else {
                j->apply_state = SH_PENDING;
                j->apply_not_before_ms = now_ms() + 500;
                log_warn("job %s: the worker applying it was lost; the apply step goes to another", j->id);
            }
        }
    }
}

/* A poison job — one that crashes or freezes the broker itself, so that it is
 * in flight at every start — is counted in its work folder (STARTS_FILE: the
 * broker starts in a row it was in flight at, each after a crash or a kill;
 * a clean stop clears it). At poison_starts it fails instead of resuming,
 * so the cluster always comes up. The count after this start, or -1. */
#define STARTS_FILE "starts"
static int64_t count_start(broker *b, const job *j)
{
    char path[CONFIG_STR + 200], err[ERRLEN];
    snprintf(path, sizeof(path), "%s/" STARTS_FILE, j->workdir);
    size_t len;
    int64_t n = 0;
    char *t = file_read_all(path, 64, &len, NULL, 0);
    if (t != NULL) {
        t[strcspn(t, "\n")] = '\0';
        if (parse_i64(t, 0, INT32_MAX, &n) < 0)
            n = 0;
    }
    free(t);
    char line[32];
    int k = snprintf(line, sizeof(line), "%lld\n", (long long)++n);
    if (file_write_atomic(path, line, (size_t)k, err, sizeof(err)) < 0) {
        log_warn("job %s: %s", j->id, err);
        return -1;
    }
    return n;
}

void jobs_stopped_cleanly(broker *b)
{
    for (size_t i = 0; i < jobq_count(b->jobs); i++) {
        char path[CONFIG_STR + 200];
        snprintf(path, sizeof(path), "%s/" STARTS_FILE, jobq_at(b->jobs, i)->workdir);
        unlink(path);
    }
}

/* Re-create an approved held job from its work folder and queue its apply
 * step: the shards as they ended, the staged plans as they are. 0 / -1. */
static int resume_approved(broker *b, const char *id, char *err, size_t errlen)
{
    char dir[CONFIG_STR + 160];
    snprintf(dir, sizeof(dir), "%s/work/%s", b->cfg->data_dir, id);
    size_t n;
    char *data;
    Patronsync__JobRequest *req = jobfiles_read_request(dir, err, errlen);
    if (req == NULL)
        return -1;
    job *j = job_new(b->cfg, req);
    if (j == NULL) {
        patronsync__job_request__free_unpacked(req, NULL);
        err_set(err, errlen, "out of memory");
        return -1;
    }
    Patronsync__HeldJob *h = NULL;
    int rc = -1;
    int lp = jobfiles_load_prepared(j, err, errlen);
    if (lp != 1) {
        if (lp == 0)
            err_set(err, errlen, "its preparation (%s/prepared.pb) is gone", dir);
        goto out;
    }
    data = jobfiles_read(dir, "held", &n, err, errlen);
    if (data == NULL)
        goto out;
    h = patronsync__held_job__unpack(NULL, n, (const uint8_t *)data);
    free(data);
    if (h == NULL) {
        err_set(err, errlen, "%s/held does not decode", dir);
        goto out;
    }
    for (size_t i = 0; i < j->shards.n; i++)
        j->shards.v[i].state = SH_DONE;
    j->ndone = j->shards.n;
    for (size_t k = 0; k < h->n_failed_shards; k++) {
        uint32_t i = h->failed_shards[k];
        if (i >= j->shards.n || j->shards.v[i].state == SH_FAILED)
            continue;
        j->shards.v[i].state = SH_FAILED;
        j->shards.v[i].attempt = k < h->n_failed_attempts ? h->failed_attempts[k] : 0;
        str_copy(j->shards.v[i].error, sizeof(j->shards.v[i].error), k < h->n_failed_errors ? h->failed_errors[k] : "");
        j->ndone--;
        j->nfailed++;
    }
    str_copy(j->held_reason, sizeof(j->held_reason), h->reason);
    data = jobfiles_read(dir, "approved", &n, err, errlen);
    if (data == NULL)
        goto out;
    /* "<ms> <user>" */
    char *sp = strchr(data, ' ');
    if (sp != NULL) {
        *sp = '\0';
        str_copy(j->approved_by, sizeof(j->approved_by), sp + 1);
    }
    int64_t ms = 0;
    parse_i64(data, 0, INT64_MAX, &ms);
    free(data);
    j->approved = 1;
    j->approved_ms = ms;
    j->phase = JP_APPLYING;
    j->activated = 1;
    j->apply_state = SH_PENDING;
    j->started_ms = now_ms();
    if (jobq_push(b->jobs, j) < 0) {
        err_set(err, errlen, "out of memory");
        goto out;
    }
    j = NULL;
    rc = 0;
out:
    if (h)
        patronsync__held_job__free_unpacked(h, NULL);
    job_free(j);
    return rc;
}

void jobs_recover(broker *b)
{
    char dir[CONFIG_STR + 16];
    snprintf(dir, sizeof(dir), "%s/work", b->cfg->data_dir);
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[CONFIG_STR + 400];
        snprintf(path, sizeof(path), "%s/%s/done", dir, e->d_name);
        if (access(path, F_OK) == 0)
            continue;
        char err[ERRLEN];
        snprintf(path, sizeof(path), "%s/%s/held", dir, e->d_name);
        if (access(path, F_OK) == 0) {
            /* Held: waits for an operator, out of the queue; approved
             * before the restart: its apply step is queued again. */
            snprintf(path, sizeof(path), "%s/%s/approved", dir, e->d_name);
            if (access(path, F_OK) == 0 && job_valid_id(e->d_name) && resume_approved(b, e->d_name, err, sizeof(err)) < 0)
                log_error("job %s: approved, but it cannot be resumed: %s", e->d_name, err);
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s/request.pb", dir, e->d_name);
        size_t n;
        char *data = file_read_all(path, 1 << 26, &n, err, sizeof(err));
        if (data == NULL)
            continue;
        Patronsync__JobRequest *req = patronsync__job_request__unpack(NULL, n, (const uint8_t *)data);
        free(data);
        if (req == NULL || !job_valid_id(req->job_id)) {
            log_warn("%s does not decode; skipped", path);
            if (req)
                patronsync__job_request__free_unpacked(req, NULL);
            continue;
        }
        job *j = job_new(b->cfg, req);
        if (j == NULL || jobq_push(b->jobs, j) < 0) {
            job_free(j);
            continue;
        }
        int64_t starts = count_start(b, j);
        if (starts >= b->cfg->poison_starts) {
            char why[300];
            snprintf(why, sizeof(why),
                     "quarantined: the job was in flight at each of the last %lld broker starts, each after a crash or a "
                     "kill (poison_starts); it is not resumed again",
                     (long long)starts);
            j->started_ms = now_ms();
            job_fail(j, why);
            continue;
        }
        log_info("job %s resumed after a restart", j->id);
    }
    closedir(d);
}

/* Whether the job in dir may be decided on: held, and neither queued nor
 * ended. 0, or -1 with err (and its state when it has one). */
static int decide_check(broker *b, const char *id, const char *dir, char *state, size_t statelen, char *err,
                        size_t errlen)
{
    job *q = jobq_find(b->jobs, id);
    if (q != NULL) {
        str_copy(state, statelen, "running");
        err_set(err, errlen, "job %s is not held: it is %s", id, q->approved ? "being applied (approved already)" : "running");
        return -1;
    }
    if (access(dir, F_OK) != 0) {
        err_set(err, errlen, "no job '%s'", id);
        return -1;
    }
    size_t n;
    char *done = jobfiles_read(dir, "done", &n, NULL, 0);
    if (done != NULL) {
        str_copy(state, statelen, done);
        err_set(err, errlen, "job %s is not held: it ended %s", id, done);
        free(done);
        return -1;
    }
    char path[CONFIG_STR + 200];
    snprintf(path, sizeof(path), "%s/held", dir);
    if (access(path, F_OK) != 0) {
        err_set(err, errlen, "job %s is not held", id);
        return -1;
    }
    return 0;
}

/* Approved: the decision kept (approved), the apply step queued. */
static int decide_approve(broker *b, const char *id, const char *dir, const char *user, int64_t now, char *err,
                          size_t errlen)
{
    char line[300], path[CONFIG_STR + 200];
    int len = snprintf(line, sizeof(line), "%lld %s", (long long)now, user);
    snprintf(path, sizeof(path), "%s/approved", dir);
    if (file_write_atomic(path, line, (size_t)len, err, errlen) < 0)
        return -1;
    if (resume_approved(b, id, err, errlen) < 0) {
        unlink(path);
        return -1;
    }
    status_job_set(b->redis, id, SK_JOB, "state running phase apply approved_by %s approved_ms %lld held_reason %s",
              user, (long long)now, "");
    status_event(b->redis, "job %s approved by %s", id, user);
    log_info("job %s approved by %s: applying it as previewed", id, user);
    return 0;
}

/* Discarded: it ends (done) changing nothing, and leaves. */
static int decide_discard(broker *b, const char *id, const char *dir, const char *user, int64_t now, char *err,
                          size_t errlen)
{
    char path[CONFIG_STR + 200], when[40];
    job_utc_time(now, when, sizeof(when));
    snprintf(path, sizeof(path), "%s/done", dir);
    if (file_write_atomic(path, "discarded", 9, err, errlen) < 0)
        return -1;
    Patronsync__JobRequest *req = jobfiles_read_request(dir, NULL, 0);
    jobfiles_leave(b->cfg, id, dir, req);
    if (req != NULL)
        patronsync__job_request__free_unpacked(req, NULL);
    char note[400];
    snprintf(note, sizeof(note), "Discarded by %s at %s: nothing was changed.", user, when);
    status_job_set(b->redis, id, SK_JOB, "state discarded finished_ms %lld discarded_by %s", (long long)now, user);
    status_job_note(b->redis, id, note);
    status_event(b->redis, "job %s discarded by %s", id, user);
    log_info("job %s discarded by %s", id, user);
    return 0;
}

int jobs_decide(broker *b, const Patronsync__JobDecision *d, char *state, size_t statelen, char *err, size_t errlen)
{
    const char *id = d->job_id;
    str_copy(state, statelen, "");
    if (!job_valid_id(id)) {
        err_set(err, errlen, "job id '%s' is not valid", id);
        return -1;
    }
    int approve = strcmp(d->action, "approve") == 0;
    if (!approve && strcmp(d->action, "discard") != 0) {
        err_set(err, errlen, "unknown decision '%s' (approve or discard)", d->action);
        return -1;
    }
    char dir[CONFIG_STR + 160];
    snprintf(dir, sizeof(dir), "%s/work/%s", b->cfg->data_dir, id);
    if (decide_check(b, id, dir, state, statelen, err, errlen) < 0)
        return -1;
    const char *user = d->user && *d->user ? d->user : "?";
    int64_t now = now_ms();
    if (approve) {
        if (decide_approve(b, id, dir, user, now, err, errlen) < 0)
            return -1;
        str_copy(state, statelen, "running");
        return 0;
    }
    if (decide_discard(b, id, dir, user, now, err, errlen) < 0)
        return -1;
    str_copy(state, statelen, "discarded");
    return 0;
}

