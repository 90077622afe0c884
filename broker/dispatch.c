/* dispatch: handing a job's tasks to workers — a shard with the record
 * notes of its lines, the apply step (streaming beside the planning, or
 * after it), the ApplyStream updates, and how far planning may run ahead
 * of a streaming apply (dispatch.h). */
#include "dispatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

int dispatch_shard(broker *b, job *j, size_t i, worker_ref *w)
{
    shard *s = &j->shards.v[i];
    uint8_t *data = malloc(s->len ? s->len : 1);
    if (data == NULL)
        return -1;
    size_t got = 0;
    while (got < s->len) {
        ssize_t n = pread(j->fd, data + got, s->len - got, (off_t)(s->off + got));
        if (n <= 0) {
            free(data);
            job_fail(j, "cannot read the work file back");
            return -1;
        }
        got += (size_t)n;
    }
    /* The notes of this shard's lines. */
    size_t lo = 0, hi = j->nrecord_notes;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (j->record_notes[mid]->line < s->first_line)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t end = lo;
    while (end < j->nrecord_notes && j->record_notes[end]->line <= s->last_line)
        end++;
    s->attempt++;
    Patronsync__ShardTask t = PATRONSYNC__SHARD_TASK__INIT;
    t.job_id = j->id;
    t.shard = (uint32_t)i;
    t.attempt = s->attempt;
    t.first_line = s->first_line;
    t.nrecords = s->nrec;
    t.data.data = data;
    t.data.len = s->len;
    t.profile_name = j->req->profile_name;
    t.profile_text = j->req->profile_text;
    t.options = j->req->options;
    t.n_notes = end - lo;
    t.notes = j->record_notes + lo;
    Patronsync__BrokerMsg m = PATRONSYNC__BROKER_MSG__INIT;
    m.body_case = PATRONSYNC__BROKER_MSG__BODY_SHARD;
    m.shard = &t;
    int rc = workers_send(b, w, &m);
    free(data);
    if (rc < 0) {
        s->attempt--;
        return -1;
    }
    s->state = SH_RUNNING;
    s->worker = w->peer;
    s->since_ms = now_ms();
    workers_took_shard(w);
    job_publish_shard(b, j, i);
    log_debug("job %s shard %zu attempt %u → %s", j->id, i, s->attempt, w->name);
    return 0;
}

/* streaming: sent while shards are still planned (docs/PROTOCOL.md, the
 * streaming apply); the ApplyStream messages then say which failed. */
int dispatch_apply(broker *b, job *j, worker_ref *w, int streaming)
{
    Patronsync__ApplyTask t = PATRONSYNC__APPLY_TASK__INIT;
    size_t nf;
    uint32_t *failed = job_failed_shards(j, &nf);
    if (failed == NULL)
        return -1;
    if (streaming)
        nf = 0; /* the stream says */
    j->apply_attempt++;
    t.streaming = streaming != 0;
    t.job_id = j->id;
    t.attempt = j->apply_attempt;
    t.nshards = (uint32_t)j->shards.n;
    t.options = j->req->options;
    t.n_failed_shards = nf;
    t.failed_shards = failed;
    t.records_read = j->records;
    t.approved = j->approved != 0;
    char today[16];
    job_today(j, today, sizeof(today));
    t.today = today;
    Patronsync__BrokerMsg m = PATRONSYNC__BROKER_MSG__INIT;
    m.body_case = PATRONSYNC__BROKER_MSG__BODY_APPLY;
    m.apply = &t;
    int rc = workers_send(b, w, &m);
    free(failed);
    if (rc < 0) {
        j->apply_attempt--;
        return -1;
    }
    j->apply_state = SH_RUNNING;
    j->apply_worker = w->peer;
    j->apply_since_ms = now_ms();
    j->apply_streaming = streaming;
    j->stream_sent_ms = 0;
    j->stream_sent_failed = 0;
    j->stream_sent_final = 0;
    j->apply_paced = 0;
    j->apply_past = 0;
    workers_took_apply(w, streaming);
    if (streaming)
        log_info("job %s: apply attempt %u streams on %s while the shards are planned", j->id, j->apply_attempt,
                 w->name);
    status_job_set(b->redis, j->id, SK_JOB, "phase apply apply_worker %s apply_attempt %u", w->name, j->apply_attempt);
    return 0;
}

/* Whether to send the apply now, while the shards are planned: there is a
 * worker to plan beside it, and enough left to plan to be worth it. */
int dispatch_stream_now(broker *b, const job *j)
{
    return b->cfg->stream_apply && !j->no_stream && j->apply_state == SH_PENDING &&
           j->apply_not_before_ms <= now_ms() && b->nworkers >= 2 && j->shards.n - j->ndone - j->nfailed >= 2;
}

/* Keep the worker of a streaming apply told which shards failed and
 * whether all are final: on every change, and every heartbeat (its apply
 * gives up when the broker goes silent). With no other worker left to plan
 * what it waits for (and its own does not plan beside it), tell it to hand
 * the task back. */
void dispatch_stream(broker *b, job *j)
{
    if (j->apply_state != SH_RUNNING || !j->apply_streaming)
        return;
    worker_ref *w = workers_find(b, &j->apply_worker);
    if (w == NULL)
        return; /* lost: jobs_on_worker_lost takes it */
    int final = j->ndone + j->nfailed == j->shards.n;
    int give_up = !final && b->nworkers <= 1 && !w->beside_ok;
    int64_t now = mono_ms();
    if (j->nfailed == j->stream_sent_failed && final == j->stream_sent_final && !give_up &&
        now - j->stream_sent_ms < b->cfg->heartbeat_ms)
        return;
    size_t nf;
    uint32_t *failed = job_failed_shards(j, &nf);
    if (failed == NULL)
        return;
    Patronsync__ApplyStream as = PATRONSYNC__APPLY_STREAM__INIT;
    as.job_id = j->id;
    as.attempt = j->apply_attempt;
    as.n_failed_shards = nf;
    as.failed_shards = failed;
    as.final = final != 0;
    as.give_up = give_up != 0;
    Patronsync__BrokerMsg m = PATRONSYNC__BROKER_MSG__INIT;
    m.body_case = PATRONSYNC__BROKER_MSG__BODY_STREAM;
    m.stream = &as;
    if (workers_send(b, w, &m) == 0) {
        j->stream_sent_ms = now;
        j->stream_sent_failed = j->nfailed;
        j->stream_sent_final = final;
    }
    free(failed);
}

/* The shards that may be planned now on the streaming apply's machine:
 * all of them, but while the apply says how far it has got, no more than
 * plan_ahead beyond that (apply_host: that machine, "" when unknown;
 * other known machines plan beyond). On a first load the apply is the slower side, and planners
 * running flat out beside it only take the machine from it; on a next-day
 * run it waits for the plans, and the window never holds them back. */
size_t dispatch_plan_window(broker *b, const job *j, char apply_host[CONFIG_STR])
{
    apply_host[0] = '\0';
    if (b->cfg->plan_ahead <= 0 || !j->apply_paced || j->apply_state != SH_RUNNING || !j->apply_streaming)
        return j->shards.n;
    worker_ref *w = workers_find(b, &j->apply_worker);
    if (w == NULL)
        return j->shards.n; /* lost: jobs_on_worker_lost takes the apply */
    str_copy(apply_host, CONFIG_STR, w->host);
    uint64_t upto = (uint64_t)j->apply_past + (uint64_t)b->cfg->plan_ahead;
    return upto < j->shards.n ? (size_t)upto : j->shards.n;
}

