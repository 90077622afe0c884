/* job: one job of the broker and what every step does to a job alike
 * (job.h). */
#include "job.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "main.h"
#include "safety.h"
#include "util.h"

int job_valid_id(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 100)
        return 0;
    for (const char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
              *p == '_' || *p == '.'))
            return 0;
    return id[0] != '.';
}

job *job_new(const ps_config *cfg, Patronsync__JobRequest *req)
{
    job *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return NULL;
    j->req = req;
    j->fd = -1;
    str_copy(j->id, sizeof(j->id), req->job_id);
    snprintf(j->workdir, sizeof(j->workdir), "%s/work/%s", cfg->data_dir, j->id);
    snprintf(j->utf8_path, sizeof(j->utf8_path), "%s/" JOB_WORK_UTF8, j->workdir);
    return j;
}

void job_free(job *j)
{
    if (j == NULL)
        return;
    if (j->prep != NULL) {
        /* A preparation still going (the broker stops): it sees the stop
         * and ends; what it decided is dropped, the job resumes after the
         * restart. */
        prepared out;
        char err[ERRLEN];
        preparer_take(&j->prep, &out, err, sizeof(err));
        job_take_prepared(j, &out);
    }
    if (j->req)
        patronsync__job_request__free_unpacked(j->req, NULL);
    if (j->fd >= 0)
        close(j->fd);
    shard_list_free(&j->shards);
    prepare_notes_free(j->record_notes, j->nrecord_notes);
    jobnotes_free(&j->summary_notes);
    free(j);
}

void job_take_prepared(job *j, prepared *out)
{
    if (j->fd >= 0)
        close(j->fd);
    j->fd = out->fd;
    shard_list_free(&j->shards);
    j->shards = out->shards;
    prepare_notes_free(j->record_notes, j->nrecord_notes);
    j->record_notes = out->record_notes;
    j->nrecord_notes = out->nrecord_notes;
    j->records = out->records;
    jobnotes_free(&j->summary_notes);
    j->summary_notes = out->summary_notes;
    memset(out, 0, sizeof(*out));
    out->fd = -1;
}

const char *job_phase_name(enum job_phase p)
{
    switch (p) {
    case JP_QUEUED:
    case JP_READY:
        return "queued";
    case JP_PREPARING:
        return "prepare";
    case JP_PLANNING:
        return "plan";
    case JP_APPLYING:
        return "apply";
    default:
        return "summary";
    }
}

void job_fail(job *j, const char *why)
{
    str_copy(j->error, sizeof(j->error), why);
    str_copy(j->final_state, sizeof(j->final_state), "failed");
    j->phase = JP_ASSEMBLING;
    log_warn("job %s failed: %s", j->id, why);
}

void job_publish_shard(broker *b, job *j, size_t i)
{
    shard *s = &j->shards.v[i];
    static const char *names[] = {"pending", "running", "done", "failed"};
    char wname[128] = "";
    worker_ref *w = s->state == SH_RUNNING ? workers_find(b, &s->worker) : NULL;
    if (w)
        str_copy(wname, sizeof(wname), w->name);
    status_shard_set(b->redis, j->id, (unsigned long long)i, "state %s worker %s attempt %u since_ms %lld lines %llu-%llu error %s",
              names[s->state], wname, s->attempt, (long long)s->since_ms,
              (unsigned long long)s->first_line, (unsigned long long)s->last_line, s->error);
}

void job_publish_progress(broker *b, job *j)
{
    int64_t now = now_ms();
    if (j->plan_started_ms == 0 && j->phase >= JP_PLANNING)
        j->plan_started_ms = now;
    status_progress p = {
        .phase = job_phase_name(j->phase),
        .shards = j->shards.n,
        .shards_done = j->ndone,
        .shards_failed = j->nfailed,
        .records_total = j->records,
        .eta_s = -1,
    };
    for (size_t i = 0; i < j->shards.n; i++)
        if (j->shards.v[i].state == SH_DONE)
            p.records_done += j->shards.v[i].nrec;
    int64_t elapsed = j->plan_started_ms ? now - j->plan_started_ms : 0;
    if (elapsed > 0 && p.records_done > 0) {
        p.rate = (unsigned long long)((double)p.records_done * 1000.0 / (double)elapsed);
        unsigned long long left = p.records_total > p.records_done ? p.records_total - p.records_done : 0;
        if (p.rate > 0)
            p.eta_s = (long long)((left + p.rate - 1) / p.rate);
    }
    status_job_progress(b->redis, j->id, &p);
}

/* The job's calendar day, for missing-patron days: the district's date the
 * scheduler gave it, else the UTC date it was fired. */
void job_today(const job *j, char *out, size_t outlen)
{
    int64_t day;
    if (j->req->local_date && safety_day_number(j->req->local_date, &day) == 0) {
        str_copy(out, outlen, j->req->local_date);
        return;
    }
    int64_t ms = j->req->fired_at_ms > 0 ? j->req->fired_at_ms : now_ms();
    safety_date_of(ms / 1000, out, outlen);
}

/* The shards that failed so far (the caller frees). NULL: no memory. */
uint32_t *job_failed_shards(const job *j, size_t *n)
{
    uint32_t *failed = calloc(j->shards.n ? j->shards.n : 1, sizeof(uint32_t));
    *n = 0;
    if (failed != NULL)
        for (size_t i = 0; i < j->shards.n; i++)
            if (j->shards.v[i].state == SH_FAILED)
                failed[(*n)++] = (uint32_t)i;
    return failed;
}

void job_utc_time(int64_t ms, char *out, size_t outlen)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(out, outlen, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        str_copy(out, outlen, "?");
}

