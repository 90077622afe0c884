/* jobs: the broker's job state machine — accept (once per job id),
 * prepare, dispatch shards, re-dispatch on failure, the apply step, and the
 * job summary assembled in Redis. Recovery after a restart reads the work
 * folder (DATA/work/<job>/: request.pb, prepared.pb, input.utf8, done). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "log.h"
#include "rules.h"
#include "safety.h"
#include "stage.h"
#include "store.h"
#include "summary.h"
#include "util.h"

/* The job's UTF-8 copy of its input, in its work folder. */
#define WORK_UTF8 "input.utf8"

static void work_paths(broker *b, job *j)
{
    snprintf(j->workdir, sizeof(j->workdir), "%s/work/%s", b->cfg->data_dir, j->id);
    snprintf(j->utf8_path, sizeof(j->utf8_path), "%s/" WORK_UTF8, j->workdir);
}

static int valid_job_id(const char *id)
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

void job_free(job *j)
{
    if (j == NULL)
        return;
    if (j->req)
        patronsync__job_request__free_unpacked(j->req, NULL);
    if (j->fd >= 0)
        close(j->fd);
    free(j->shards);
    for (size_t i = 0; i < j->nnotes; i++) {
        free(j->notes[i]->key);
        free(j->notes[i]->message);
        free(j->notes[i]);
    }
    free(j->notes);
    for (size_t i = 0; i < j->njob_notes; i++)
        free(j->job_notes[i]);
    free(j->job_notes);
    free(j);
}

static job *job_new(broker *b, Patronsync__JobRequest *req)
{
    job *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return NULL;
    j->req = req;
    j->fd = -1;
    str_copy(j->id, sizeof(j->id), req->job_id);
    work_paths(b, j);
    return j;
}

static int job_push(broker *b, job *j)
{
    job **v = realloc(b->jobs, (b->njobs + 1) * sizeof(*v));
    if (v == NULL)
        return -1;
    b->jobs = v;
    /* Fire order. */
    size_t k = b->njobs;
    while (k > 1 && b->jobs[k - 1]->req->fired_at_ms > j->req->fired_at_ms)
        k--;
    memmove(&b->jobs[k + 1], &b->jobs[k], (b->njobs - k) * sizeof(*v));
    b->jobs[k] = j;
    b->njobs++;
    return 0;
}

static job *job_find(broker *b, const char *id)
{
    for (size_t i = 0; i < b->njobs; i++)
        if (strcmp(b->jobs[i]->id, id) == 0)
            return b->jobs[i];
    return NULL;
}

int jobs_accept(broker *b, const Patronsync__JobRequest *req, char *err, size_t errlen)
{
    if (!valid_job_id(req->job_id)) {
        err_set(err, errlen, "job id '%s' is not valid", req->job_id);
        return -1;
    }
    if (job_find(b, req->job_id) != NULL)
        return 0;
    char dir[CONFIG_STR + 160];
    snprintf(dir, sizeof(dir), "%s/work/%s", b->cfg->data_dir, req->job_id);
    if (access(dir, F_OK) == 0)
        return 0; /* had it already (running or finished): never twice */
    if (mkdir_p(dir, 0750, err, errlen) < 0)
        return -1;
    size_t n = patronsync__job_request__get_packed_size(req);
    uint8_t *buf = malloc(n ? n : 1);
    if (buf == NULL) {
        err_set(err, errlen, "out of memory");
        return -1;
    }
    patronsync__job_request__pack(req, buf);
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
    job *j = job_new(b, copy);
    if (j == NULL || job_push(b, j) < 0) {
        if (j)
            job_free(j);
        else
            patronsync__job_request__free_unpacked(copy, NULL);
        err_set(err, errlen, "out of memory");
        return -1;
    }
    status_do(b->redis, "HSET ps:job:%s state pending accepted_ms %lld", j->id, (long long)now_ms());
    status_do(b->redis, "ZADD ps:jobs NX %lld %s", (long long)copy->fired_at_ms, j->id);
    log_info("job %s accepted: file '%s', profile '%s'", j->id, copy->file, copy->profile_name);
    return 0;
}

/* Save what prepare decided, so a restarted broker uses the same shards. */
static int save_prepared(job *j, char *err, size_t errlen)
{
    Patronsync__PreparedJob pj = PATRONSYNC__PREPARED_JOB__INIT;
    Patronsync__PreparedShard *ps = calloc(j->nshards ? j->nshards : 1, sizeof(*ps));
    Patronsync__PreparedShard **pp = calloc(j->nshards ? j->nshards : 1, sizeof(*pp));
    if (ps == NULL || pp == NULL) {
        free(ps);
        free(pp);
        err_set(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < j->nshards; i++) {
        patronsync__prepared_shard__init(&ps[i]);
        ps[i].off = j->shards[i].off;
        ps[i].len = j->shards[i].len;
        ps[i].first_line = j->shards[i].first_line;
        ps[i].last_line = j->shards[i].last_line;
        ps[i].nrec = j->shards[i].nrec;
        pp[i] = &ps[i];
    }
    pj.n_shards = j->nshards;
    pj.shards = pp;
    pj.n_notes = j->nnotes;
    pj.notes = j->notes;
    pj.records = j->records;
    pj.n_job_notes = j->njob_notes;
    pj.job_notes = j->job_notes;
    size_t n = patronsync__prepared_job__get_packed_size(&pj);
    uint8_t *buf = malloc(n ? n : 1);
    int rc = -1;
    if (buf != NULL) {
        patronsync__prepared_job__pack(&pj, buf);
        char path[CONFIG_STR + 200];
        snprintf(path, sizeof(path), "%s/prepared.pb", j->workdir);
        rc = file_write_atomic(path, buf, n, err, errlen);
    } else {
        err_set(err, errlen, "out of memory");
    }
    free(buf);
    free(ps);
    free(pp);
    return rc;
}

/* 1 when a saved preparation was loaded, 0 when there is none, -1 error. */
static int load_prepared(job *j, char *err, size_t errlen)
{
    char path[CONFIG_STR + 200];
    snprintf(path, sizeof(path), "%s/prepared.pb", j->workdir);
    if (access(path, F_OK) != 0)
        return 0;
    size_t n;
    char *data = file_read_all(path, (size_t)1 << 32, &n, err, errlen);
    if (data == NULL)
        return -1;
    Patronsync__PreparedJob *pj = patronsync__prepared_job__unpack(NULL, n, (const uint8_t *)data);
    free(data);
    if (pj == NULL) {
        err_set(err, errlen, "%s does not decode", path);
        return -1;
    }
    j->fd = open(j->utf8_path, O_RDONLY | O_CLOEXEC);
    int rc = -1;
    if (j->fd < 0) {
        err_set(err, errlen, "cannot open %s: %s", j->utf8_path, strerror(errno));
        goto out;
    }
    j->shards = calloc(pj->n_shards ? pj->n_shards : 1, sizeof(*j->shards));
    j->notes = calloc(pj->n_notes ? pj->n_notes : 1, sizeof(*j->notes));
    j->job_notes = calloc(pj->n_job_notes ? pj->n_job_notes : 1, sizeof(char *));
    if (!j->shards || !j->notes || !j->job_notes) {
        err_set(err, errlen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < pj->n_shards; i++) {
        shard *s = &j->shards[i];
        s->off = pj->shards[i]->off;
        s->len = pj->shards[i]->len;
        s->first_line = pj->shards[i]->first_line;
        s->last_line = pj->shards[i]->last_line;
        s->nrec = pj->shards[i]->nrec;
        s->state = SH_PENDING;
    }
    j->nshards = pj->n_shards;
    for (size_t i = 0; i < pj->n_notes; i++) {
        Patronsync__RecordNote *x = malloc(sizeof(*x));
        if (x == NULL)
            goto out;
        *x = *pj->notes[i];
        x->key = strdup(pj->notes[i]->key);
        x->message = strdup(pj->notes[i]->message);
        j->notes[j->nnotes++] = x;
    }
    for (size_t i = 0; i < pj->n_job_notes; i++)
        j->job_notes[j->njob_notes++] = strdup(pj->job_notes[i]);
    j->records = pj->records;
    rc = 1;
out:
    patronsync__prepared_job__free_unpacked(pj, NULL);
    return rc;
}

static void job_fail(broker *b, job *j, const char *why)
{
    str_copy(j->error, sizeof(j->error), why);
    str_copy(j->final_state, sizeof(j->final_state), "failed");
    j->phase = JP_ASSEMBLING;
    log_warn("job %s failed: %s", j->id, why);
}

static void shard_status(broker *b, job *j, size_t i)
{
    shard *s = &j->shards[i];
    static const char *names[] = {"pending", "running", "done", "failed"};
    char wname[128] = "";
    worker_ref *w = s->state == SH_RUNNING ? workers_find(b, &s->worker) : NULL;
    if (w)
        str_copy(wname, sizeof(wname), w->name);
    status_do(b->redis, "HSET ps:job:%s:shard:%llu state %s worker %s attempt %u since_ms %lld lines %llu-%llu error %s",
              j->id, (unsigned long long)i, names[s->state], wname, s->attempt, (long long)s->since_ms,
              (unsigned long long)s->first_line, (unsigned long long)s->last_line, s->error);
}

static void job_progress(broker *b, job *j)
{
    status_do(b->redis, "HSET ps:job:%s shards %llu shards_done %llu shards_failed %llu records %llu phase %s", j->id,
              (unsigned long long)j->nshards, (unsigned long long)j->ndone, (unsigned long long)j->nfailed, (unsigned long long)j->records,
              j->phase == JP_PLANNING ? "plan" : j->phase == JP_APPLYING ? "apply" : "summary");
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

static void start_job(broker *b, job *j)
{
    char err[ERRLEN];
    j->started_ms = now_ms();
    status_do(b->redis, "HSET ps:job:%s state running started_ms %lld file %s profile %s schedule %s requested_by %s dry_run %d",
              j->id, (long long)j->started_ms, j->req->file, j->req->profile_name, j->req->schedule,
              j->req->requested_by, j->req->options && j->req->options->dry_run ? 1 : 0);
    int loaded = load_prepared(j, err, sizeof(err));
    if (loaded < 0) {
        log_warn("job %s: saved preparation unusable (%s); preparing again", j->id, err);
        loaded = 0;
    }
    if (loaded == 0) {
        if (prepare_job(b, j, err, sizeof(err)) < 0 || save_prepared(j, err, sizeof(err)) < 0) {
            if (*b->stopping)
                return; /* resumes after restart */
            job_fail(b, j, err);
            return;
        }
    }
    j->phase = JP_PLANNING;
    j->apply_state = SH_PENDING;
    if (already_applied(b, j)) {
        /* The broker stopped after the apply step committed: its result
         * is in the store; only the summary is left to do. */
        for (size_t i = 0; i < j->nshards; i++) {
            char path[CONFIG_STR + 256];
            int staged = stage_plan_path(b->cfg, j->id, (unsigned)i, path, sizeof(path)) == 0 && access(path, F_OK) == 0;
            j->shards[i].state = staged ? SH_DONE : SH_FAILED;
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
    job_progress(b, j);
    for (size_t i = 0; i < j->nshards; i++)
        shard_status(b, j, i);
}

static int dispatch_shard(broker *b, job *j, size_t i, worker_ref *w)
{
    shard *s = &j->shards[i];
    uint8_t *data = malloc(s->len ? s->len : 1);
    if (data == NULL)
        return -1;
    size_t got = 0;
    while (got < s->len) {
        ssize_t n = pread(j->fd, data + got, s->len - got, (off_t)(s->off + got));
        if (n <= 0) {
            free(data);
            job_fail(b, j, "cannot read the work file back");
            return -1;
        }
        got += (size_t)n;
    }
    /* The notes of this shard's lines. */
    size_t lo = 0, hi = j->nnotes;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (j->notes[mid]->line < s->first_line)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t end = lo;
    while (end < j->nnotes && j->notes[end]->line <= s->last_line)
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
    t.notes = j->notes + lo;
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
    w->shards++; /* the second beside its streaming apply (workers_for_shard) */
    shard_status(b, j, i);
    log_debug("job %s shard %zu attempt %u → %s", j->id, i, s->attempt, w->name);
    return 0;
}

/* The job's calendar day, for missing-patron days: the district's date the
 * scheduler gave it, else the UTC date it was fired. */
static void job_today(const job *j, char *out, size_t outlen)
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
static uint32_t *failed_shards(const job *j, size_t *n)
{
    uint32_t *failed = calloc(j->nshards ? j->nshards : 1, sizeof(uint32_t));
    *n = 0;
    if (failed != NULL)
        for (size_t i = 0; i < j->nshards; i++)
            if (j->shards[i].state == SH_FAILED)
                failed[(*n)++] = (uint32_t)i;
    return failed;
}

/* streaming: sent while shards are still planned (docs/PROTOCOL.md, the
 * streaming apply); the ApplyStream messages then say which failed. */
static int dispatch_apply(broker *b, job *j, worker_ref *w, int streaming)
{
    Patronsync__ApplyTask t = PATRONSYNC__APPLY_TASK__INIT;
    size_t nf;
    uint32_t *failed = failed_shards(j, &nf);
    if (failed == NULL)
        return -1;
    if (streaming)
        nf = 0; /* the stream says */
    j->apply_attempt++;
    t.streaming = streaming != 0;
    t.job_id = j->id;
    t.attempt = j->apply_attempt;
    t.nshards = (uint32_t)j->nshards;
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
    w->applying = 1;
    w->streaming = streaming;
    if (streaming)
        log_info("job %s: apply attempt %u streams on %s while the shards are planned", j->id, j->apply_attempt,
                 w->name);
    status_do(b->redis, "HSET ps:job:%s phase apply apply_worker %s apply_attempt %u", j->id, w->name, j->apply_attempt);
    return 0;
}

/* Publish part i (a shard, or i == nshards: the apply step) from the
 * record kept on disk. 0 / -1. */
static int republish(broker *b, job *j, size_t i)
{
    char err[ERRLEN];
    Patronsync__ShardPlan *p = NULL;
    char part[32];
    if (i < j->nshards) {
        snprintf(part, sizeof(part), "s%06zu", i);
        p = stage_read_plan(b->cfg, j->id, (unsigned)i, err, sizeof(err));
    } else {
        str_copy(part, sizeof(part), "apply");
        store *st = store_open(b->cfg->store_path, 2, STORE_READONLY, err, sizeof(err));
        uint8_t *blob = NULL;
        size_t len = 0;
        if (st != NULL && store_marker_get(st, j->id, "apply", &blob, &len) == 1)
            p = patronsync__shard_plan__unpack(NULL, len, blob);
        else
            err_set(err, sizeof(err), "no apply marker in the store");
        free(blob);
        store_close(&st);
    }
    if (p == NULL) {
        log_error("job %s: result of %s is neither in Redis nor on disk: %s", j->id, part, err);
        return -1;
    }
    int rc = status_publish_result(b->redis, j->id, part, p->counts, p->exceptions, p->n_exceptions, "broker", 0);
    log_warn("job %s: result of %s was missing in Redis; published again from disk", j->id, part);
    patronsync__shard_plan__free_unpacked(p, NULL);
    return rc;
}

static int exc_line_cmp(const void *a, const void *b)
{
    const Patronsync__Exception *x = *(Patronsync__Exception *const *)a;
    const Patronsync__Exception *y = *(Patronsync__Exception *const *)b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return 0;
}

/* Move e into l (l owns it then). 0 / -1 (e freed). */
static int exc_take(exc_list *l, Patronsync__Exception *e)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        Patronsync__Exception **v = realloc(l->v, cap * sizeof(*v));
        if (v == NULL) {
            status_free_exceptions(&e, 1);
            return -1;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = e;
    return 0;
}

static void utc_time(int64_t ms, char *out, size_t outlen)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(out, outlen, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        str_copy(out, outlen, "?");
}

/* A job that failed before its apply committed changed nothing: its counts
 * say so (all but the records read are 0), and what its shards had planned
 * is kept apart (ps:job:ID:planned) and, when it planned any change, said
 * in a note labelled as planned. total: the planned counts in, the job's
 * counts out. 0 / -1. */
static int planned_note(broker *b, job *j, Patronsync__Counts *total)
{
    Patronsync__Counts changed = PATRONSYNC__COUNTS__INIT;
    changed.read = total->read;
    unsigned long long planned = total->added + total->added_with_warnings + total->updated +
                                 total->updated_with_warnings + total->deleted + total->deleted_with_warnings +
                                 total->inactivated;
    char note[600];
    snprintf(note, sizeof(note),
             "Nothing was changed: the job failed before its changes were applied. Its shards had planned "
             "%llu added, %llu updated, %llu deleted, %llu inactivated (not done).",
             (unsigned long long)(total->added + total->added_with_warnings),
             (unsigned long long)(total->updated + total->updated_with_warnings),
             (unsigned long long)(total->deleted + total->deleted_with_warnings), (unsigned long long)total->inactivated);
    if ((planned > 0 && status_do(b->redis, "RPUSH ps:job:%s:notes %s", j->id, note) < 0) ||
        status_do(b->redis, "DEL ps:job:%s:planned", j->id) < 0)
        return -1;
    for (size_t i = 0; i < summary_ncounts; i++)
        if (status_do(b->redis, "HSET ps:job:%s:planned %s %llu", j->id, summary_counts[i].name,
                      (unsigned long long)*summary_count_ptr(total, i)) < 0)
            return -1;
    *total = changed;
    return 0;
}

/* Gather the parts' results into the job summary. 0, or -1 when Redis is
 * not there (tried again later). */
static int assemble(broker *b, job *j)
{
    int dry = j->req->options && j->req->options->dry_run;
    int errors_only = j->req->options && j->req->options->errors_only;
    int applied = j->apply_state == SH_DONE;
    Patronsync__Counts total = PATRONSYNC__COUNTS__INIT;
    exc_list all, notes;
    exc_list_init(&all);
    exc_list_init(&notes); /* the apply step's job-level lines (outcome NOTE) */
    int rc = -1;
    for (size_t i = 0; i <= j->nshards; i++) {
        char part[32];
        if (i < j->nshards) {
            if (j->shards[i].state != SH_DONE)
                continue;
            snprintf(part, sizeof(part), "s%06zu", i);
        } else {
            if (!applied)
                continue;
            str_copy(part, sizeof(part), "apply");
        }
        Patronsync__Counts c;
        Patronsync__Exception **exc = NULL;
        size_t nexc = 0;
        int r = status_read_result(b->redis, j->id, part, &c, &exc, &nexc);
        if (r < 0)
            goto out;
        if (r == 0 && i == j->nshards && (dry || j->held)) {
            /* A dry run or a held job keeps no marker to publish its result
             * again from: run its apply step again (it changes nothing). */
            log_warn("job %s: result of its %s apply step lost in Redis; applying again", j->id,
                     dry ? "dry-run" : "held");
            j->held = 0;
            j->held_reason[0] = '\0';
            j->final_state[0] = '\0';
            j->apply_state = SH_PENDING;
            j->apply_not_before_ms = 0;
            j->phase = JP_APPLYING;
            goto out;
        }
        if (r == 0) {
            /* Redis lost it (restarted without the last writes): the staged
             * plan or the store's marker is the record; publish it again. */
            if (republish(b, j, i) < 0)
                goto out;
            r = status_read_result(b->redis, j->id, part, &c, &exc, &nexc);
            if (r != 1)
                goto out;
        }
        if (i == j->nshards)
            total = c; /* the apply step's counts are the job's */
        else if (!applied && r == 1)
            summary_counts_add(&total, &c);
        for (size_t k = 0; k < nexc; k++) {
            if (errors_only && strcmp(exc[k]->outcome, "INFO") == 0) {
                status_free_exceptions(&exc[k], 1);
                continue;
            }
            if (strcmp(exc[k]->outcome, "NOTE") == 0) {
                if (exc_take(&notes, exc[k]) < 0) {
                    status_free_exceptions(exc + k + 1, nexc - k - 1);
                    free(exc);
                    goto out;
                }
                continue;
            }
            if (all.n == all.cap) {
                size_t cap = all.cap ? all.cap * 2 : 64;
                Patronsync__Exception **v = realloc(all.v, cap * sizeof(*v));
                if (v == NULL) {
                    status_free_exceptions(exc + k, nexc - k);
                    free(exc);
                    goto out;
                }
                all.v = v;
                all.cap = cap;
            }
            all.v[all.n++] = exc[k];
        }
        free(exc);
    }
    /* Line order; ties keep the order the parts gave (mergesort-stable by
     * sorting pointers with an index tie-break is not needed: parts are
     * line ranges in order, so equal lines come from one part). */
    if (all.n > 1) /* qsort's pointer may not be NULL, even for nothing to sort */
        qsort(all.v, all.n, sizeof(*all.v), exc_line_cmp);

    if (status_do(b->redis, "DEL ps:job:%s:exceptions ps:job:%s:notes ps:job:%s:summary", j->id, j->id, j->id) < 0)
        goto out;
    for (size_t i = 0; i < all.n; i += 500) {
        size_t m = all.n - i < 500 ? all.n - i : 500;
        const char **argv = calloc(m + 2, sizeof(char *));
        size_t *lens = calloc(m + 2, sizeof(size_t));
        char **bufs = calloc(m, sizeof(char *));
        char key[200];
        snprintf(key, sizeof(key), "ps:job:%s:exceptions", j->id);
        int ok = argv && lens && bufs;
        if (ok) {
            argv[0] = "RPUSH";
            lens[0] = 5;
            argv[1] = key;
            lens[1] = strlen(key);
            for (size_t k = 0; k < m; k++) {
                status_exception_encode(all.v[i + k], &bufs[k], &lens[k + 2]);
                argv[k + 2] = bufs[k] ? bufs[k] : "";
            }
            redisReply *r = status_cmdargv(b->redis, (int)(m + 2), argv, lens);
            if (r)
                freeReplyObject(r);
            else
                ok = 0;
            for (size_t k = 0; k < m; k++)
                free(bufs[k]);
        }
        free(argv);
        free(lens);
        free(bufs);
        if (!ok)
            goto out;
    }
    for (size_t i = 0; i < j->njob_notes; i++)
        status_do(b->redis, "RPUSH ps:job:%s:notes %s", j->id, j->job_notes[i]);
    for (size_t i = 0; i < j->nshards; i++) {
        shard *s = &j->shards[i];
        if (s->state != SH_FAILED)
            continue;
        char note[600];
        snprintf(note, sizeof(note), "Shard %zu (lines %llu-%llu) failed after %u attempts: %s; its records were not applied and missing patrons were not inactivated.",
                 i, (unsigned long long)s->first_line, (unsigned long long)s->last_line, s->attempt, s->error);
        status_do(b->redis, "RPUSH ps:job:%s:notes %s", j->id, note);
    }
    if (dry)
        status_do(b->redis, "RPUSH ps:job:%s:notes %s", j->id, "Dry run: the counts and lines are what a run would do; nothing was changed.");
    if (j->approved) {
        char when[40], note[1400];
        utc_time(j->approved_ms, when, sizeof(when));
        snprintf(note, sizeof(note), "Held (%s); approved by %s at %s, and applied as previewed.", j->held_reason,
                 j->approved_by, when);
        status_do(b->redis, "RPUSH ps:job:%s:notes %s", j->id, note);
    }
    for (size_t i = 0; i < notes.n; i++)
        status_do(b->redis, "RPUSH ps:job:%s:notes %s", j->id, notes.v[i]->message);
    if (j->held) {
        char note[600];
        snprintf(note, sizeof(note), "Held for approval: nothing was changed. The lines below are the preview. "
                 "'patronctl job approve %s' applies exactly it; 'patronctl job discard %s' ends the job.", j->id, j->id);
        status_do(b->redis, "RPUSH ps:job:%s:notes %s", j->id, note);
        status_do(b->redis, "HSET ps:job:%s held_reason %s", j->id, j->held_reason);
    }
    if (!applied)
        total.read = j->records;
    if (!applied && !dry && !j->held && strcmp(j->final_state, "failed") == 0 && planned_note(b, j, &total) < 0)
        goto out;
    for (size_t i = 0; i < summary_ncounts; i++)
        if (status_do(b->redis, "HSET ps:job:%s:summary %s %llu", j->id, summary_counts[i].name,
                      (unsigned long long)*summary_count_ptr(&total, i)) < 0)
            goto out;
    const char *state = j->final_state[0]                  ? j->final_state
                        : j->nfailed > 0 || job_warned(j) ? "complete_with_errors"
                                                          : "complete";
    if (status_do(b->redis, "HSET ps:job:%s state %s finished_ms %lld error %s shards_done %llu shards_failed %llu phase done",
                  j->id, state, (long long)now_ms(), j->error, (unsigned long long)j->ndone,
                  (unsigned long long)j->nfailed) < 0)
        goto out;
    status_do(b->redis, "ZADD ps:jobs NX %lld %s", (long long)j->req->fired_at_ms, j->id);
    status_event(b->redis, "job %s %s", j->id, state);
    log_info("job %s %s: read %llu, added %llu, updated %llu, unchanged %llu, invalid %llu", j->id, state,
             (unsigned long long)total.read, (unsigned long long)total.added, (unsigned long long)total.updated,
             (unsigned long long)total.unchanged, (unsigned long long)total.invalid_skipped);
    rc = 0;
out:
    exc_list_free(&all);
    exc_list_free(&notes);
    return rc;
}

/* What the workers staged for a job (plans, what shards saw, a held job's
 * finishing list): not needed once the job is finished for good. */
static void stage_remove(broker *b, const char *id)
{
    char dir[CONFIG_STR + 160];
    snprintf(dir, sizeof(dir), "%s/%s", b->cfg->stage_dir, id);
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' && (e->d_name[1] == '\0' || (e->d_name[1] == '.' && e->d_name[2] == '\0')))
            continue;
        char path[CONFIG_STR + 420];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

static void dequeue(broker *b, job *j)
{
    for (size_t i = 0; i < b->njobs; i++) {
        if (b->jobs[i] == j) {
            memmove(&b->jobs[i], &b->jobs[i + 1], (b->njobs - i - 1) * sizeof(job *));
            b->njobs--;
            break;
        }
    }
}

/* A held job leaves the queue (it must not block the jobs after it); its
 * work folder and staged plans stay for the operator's decision. */
static void hold_job(broker *b, job *j)
{
    Patronsync__HeldJob h = PATRONSYNC__HELD_JOB__INIT;
    uint32_t *fs = calloc(j->nshards ? j->nshards : 1, sizeof(uint32_t));
    uint32_t *fa = calloc(j->nshards ? j->nshards : 1, sizeof(uint32_t));
    char **fe = calloc(j->nshards ? j->nshards : 1, sizeof(char *));
    char err[ERRLEN] = "out of memory";
    int rc = -1;
    if (fs && fa && fe) {
        size_t n = 0;
        for (size_t i = 0; i < j->nshards; i++) {
            if (j->shards[i].state != SH_FAILED)
                continue;
            fs[n] = (uint32_t)i;
            fa[n] = j->shards[i].attempt;
            fe[n] = j->shards[i].error;
            n++;
        }
        h.reason = j->held_reason;
        h.held_ms = now_ms();
        h.n_failed_shards = h.n_failed_attempts = h.n_failed_errors = n;
        h.failed_shards = fs;
        h.failed_attempts = fa;
        h.failed_errors = fe;
        size_t len = patronsync__held_job__get_packed_size(&h);
        uint8_t *buf = malloc(len ? len : 1);
        if (buf != NULL) {
            patronsync__held_job__pack(&h, buf);
            char path[CONFIG_STR + 200];
            snprintf(path, sizeof(path), "%s/held", j->workdir);
            rc = file_write_atomic(path, buf, len, err, sizeof(err));
            free(buf);
        }
    }
    free(fs);
    free(fa);
    free(fe);
    if (rc < 0)
        log_error("job %s: keeping it held failed (%s); it will be planned again after a restart", j->id, err);
    else
        log_info("job %s held for approval: %s", j->id, j->held_reason);
    dequeue(b, j);
    job_free(j);
}

/* What a job that ended (finished, or discarded while held) leaves
 * behind is removed, its done marker written already: its UTF-8 copy, its
 * staged plans and, for a run-now, its input — patronctl's copy in
 * import/adhoc/, made for this job alone, which has served (the archive
 * keeps the bytes under its own name, pruned by archive_keep); until the
 * end a restart reads it again. A scheduled file is the exporter's and
 * never removed. req: the job's request (NULL: not known). */
static void job_leave(broker *b, const char *id, const char *workdir, const Patronsync__JobRequest *req)
{
    char path[PATH_MAX], err[ERRLEN];
    snprintf(path, sizeof(path), "%s/" WORK_UTF8, workdir);
    unlink(path);
    stage_remove(b, id);
    if (req == NULL || !prepare_is_run_now(req))
        return;
    if (prepare_resolve(b->cfg->import_root, req->file, path, sizeof(path), err, sizeof(err)) < 0)
        return;
    if (unlink(path) < 0 && errno != ENOENT)
        log_warn("job %s: cannot remove its run-now copy %s: %s", id, path, strerror(errno));
}

static void finish_job(broker *b, job *j)
{
    char path[CONFIG_STR + 200];
    snprintf(path, sizeof(path), "%s/done", j->workdir);
    char err[ERRLEN];
    if (file_write_atomic(path, j->final_state, strlen(j->final_state), err, sizeof(err)) < 0)
        log_warn("job %s: %s", j->id, err);
    job_leave(b, j->id, j->workdir, j->req);
    for (size_t i = 0; i < b->njobs; i++) {
        if (b->jobs[i] == j) {
            memmove(&b->jobs[i], &b->jobs[i + 1], (b->njobs - i - 1) * sizeof(job *));
            b->njobs--;
            break;
        }
    }
    job_free(j);
}

/* Whether to send the apply now, while the shards are planned: there is a
 * worker to plan beside it, and enough left to plan to be worth it. */
static int stream_now(broker *b, const job *j)
{
    return b->cfg->stream_apply && !j->no_stream && j->apply_state == SH_PENDING &&
           j->apply_not_before_ms <= now_ms() && b->nworkers >= 2 && j->nshards - j->ndone - j->nfailed >= 2;
}

/* Keep the worker of a streaming apply told which shards failed and
 * whether all are final: on every change, and every heartbeat (its apply
 * gives up when the broker goes silent). With no other worker left to plan
 * what it waits for (and its own does not plan beside it), tell it to hand
 * the task back. */
static void stream_step(broker *b, job *j)
{
    if (j->apply_state != SH_RUNNING || !j->apply_streaming)
        return;
    worker_ref *w = workers_find(b, &j->apply_worker);
    if (w == NULL)
        return; /* lost: jobs_on_worker_lost takes it */
    int final = j->ndone + j->nfailed == j->nshards;
    int give_up = !final && b->nworkers <= 1 && !w->beside_ok;
    int64_t now = mono_ms();
    if (j->nfailed == j->stream_sent_failed && final == j->stream_sent_final && !give_up &&
        now - j->stream_sent_ms < b->cfg->heartbeat_ms)
        return;
    size_t nf;
    uint32_t *failed = failed_shards(j, &nf);
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

/* A task came back: the worker has room again (apply: the apply step's
 * result; else a shard's, from beside a streaming apply when it holds one). */
static void release_worker(broker *b, const wire_peer *p, int apply)
{
    worker_ref *w = workers_find(b, p);
    if (w == NULL)
        return;
    if (apply)
        w->applying = w->streaming = 0;
    else if (w->shards > 0)
        w->shards--;
    if (!worker_busy(w))
        w->idle_since_ms = mono_ms();
}

/* The shards that may be planned now on the streaming apply's machine:
 * all of them, but while the apply says how far it has got, no more than
 * plan_ahead beyond that (apply_host: that machine, "" when unknown;
 * other known machines plan beyond). On a first load the apply is the slower side, and planners
 * running flat out beside it only take the machine from it; on a next-day
 * run it waits for the plans, and the window never holds them back. */
static size_t plan_window(broker *b, const job *j, char apply_host[CONFIG_STR])
{
    apply_host[0] = '\0';
    if (b->cfg->plan_ahead <= 0 || !j->apply_paced || j->apply_state != SH_RUNNING || !j->apply_streaming)
        return j->nshards;
    worker_ref *w = workers_find(b, &j->apply_worker);
    if (w == NULL)
        return j->nshards; /* lost: jobs_on_worker_lost takes the apply */
    str_copy(apply_host, CONFIG_STR, w->host);
    uint64_t upto = (uint64_t)j->apply_past + (uint64_t)b->cfg->plan_ahead;
    return upto < j->nshards ? (size_t)upto : j->nshards;
}

void jobs_step(broker *b)
{
    if (b->njobs == 0)
        return;
    job *j = b->jobs[0];
    int64_t now = now_ms();
    if (j->phase == JP_QUEUED) {
        start_job(b, j);
        if (*b->stopping)
            return;
    }
    if (j->phase == JP_PLANNING || j->phase == JP_APPLYING) {
        if (j->started_ms > 0 && now - j->started_ms > b->cfg->job_deadline_seconds * 1000) {
            char why[200];
            snprintf(why, sizeof(why), "watchdog: the job ran longer than %lld seconds (job_deadline_seconds)",
                     (long long)b->cfg->job_deadline_seconds);
            job_fail(b, j, why);
        }
    }
    if (j->phase == JP_PLANNING) {
        if (stream_now(b, j)) {
            worker_ref *w = workers_idle(b);
            if (w != NULL)
                dispatch_apply(b, j, w, 1);
        }
        char apply_host[CONFIG_STR];
        size_t upto = plan_window(b, j, apply_host);
        for (size_t i = 0; i < j->nshards; i++) {
            shard *s = &j->shards[i];
            if (s->state != SH_PENDING || s->not_before_ms > now)
                continue;
            worker_ref *w = workers_for_shard(b, i < upto ? NULL : apply_host);
            if (w == NULL)
                break;
            if (dispatch_shard(b, j, i, w) < 0)
                break;
        }
        if (j->ndone + j->nfailed == j->nshards) {
            /* A dry run applies too, and rolls back: same counts and lines. */
            j->phase = JP_APPLYING;
            job_progress(b, j);
        }
    }
    if (j->phase == JP_APPLYING && j->apply_state == SH_PENDING && j->apply_not_before_ms <= now) {
        worker_ref *w = workers_idle(b);
        if (w != NULL)
            dispatch_apply(b, j, w, 0);
    }
    if (j->phase == JP_PLANNING || j->phase == JP_APPLYING)
        stream_step(b, j);
    if (j->phase == JP_ASSEMBLING) {
        if (assemble(b, j) == 0) {
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
    shard *s = &j->shards[i];
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
    shard_status(b, j, i);
    job_progress(b, j);
}

void jobs_on_shard_result(broker *b, const wire_peer *from, const Patronsync__ShardResult *r)
{
    release_worker(b, from, 0);
    job *j = job_find(b, r->job_id);
    if (j == NULL || j->phase != JP_PLANNING || r->shard >= j->nshards) {
        log_info("late or unknown shard result for job %s shard %u ignored", r->job_id, r->shard);
        return;
    }
    shard *s = &j->shards[r->shard];
    if (s->state != SH_RUNNING || s->attempt != r->attempt) {
        log_info("job %s shard %u: result of attempt %u ignored (current attempt %u)", r->job_id, r->shard,
                 r->attempt, s->attempt);
        return;
    }
    if (r->ok) {
        s->state = SH_DONE;
        j->ndone++;
        s->error[0] = '\0';
        shard_status(b, j, r->shard);
        job_progress(b, j);
    } else if (r->handed_back) {
        /* Never started (the worker is stopping): not an attempt; given out
         * again a little later, by when a stopping worker has said goodbye. */
        s->attempt--;
        s->state = SH_PENDING;
        s->not_before_ms = now_ms() + 250;
        log_info("job %s shard %u handed back (%s); not an attempt", r->job_id, r->shard, r->error);
        shard_status(b, j, r->shard);
    } else {
        shard_failed_attempt(b, j, r->shard, r->error);
    }
}

void jobs_on_apply_result(broker *b, const wire_peer *from, const Patronsync__ApplyResult *r)
{
    release_worker(b, from, 1);
    job *j = job_find(b, r->job_id);
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
        job_fail(b, j, why);
    } else {
        j->apply_state = SH_PENDING;
        j->apply_not_before_ms = now_ms() + 500;
        log_warn("job %s apply attempt %u failed (%s); retrying", j->id, j->apply_attempt, r->error);
    }
}

void jobs_on_apply_progress(broker *b, const wire_peer *from, const Patronsync__ApplyProgress *p)
{
    job *j = job_find(b, p->job_id);
    if (j == NULL || j->apply_state != SH_RUNNING || !j->apply_streaming || p->attempt != j->apply_attempt ||
        j->apply_worker.len != from->len || memcmp(j->apply_worker.id, from->id, from->len) != 0)
        return;
    if (!j->apply_paced || p->shards_past > j->apply_past)
        log_debug("job %s: the apply is past %u of %zu shards", j->id, p->shards_past, j->nshards);
    j->apply_paced = 1;
    j->apply_past = p->shards_past;
}

void jobs_on_worker_lost(broker *b, const wire_peer *peer)
{
    for (size_t k = 0; k < b->njobs; k++) {
        job *j = b->jobs[k];
        for (size_t i = 0; i < j->nshards; i++) {
            shard *s = &j->shards[i];
            if (s->state == SH_RUNNING && s->worker.len == peer->len && memcmp(s->worker.id, peer->id, peer->len) == 0)
                shard_failed_attempt(b, j, i, "the worker holding it stopped answering");
        }
        if (j->apply_state == SH_RUNNING && j->apply_worker.len == peer->len &&
            memcmp(j->apply_worker.id, peer->id, peer->len) == 0) {
            if (j->apply_attempt >= (unsigned)b->cfg->max_attempts) {
                j->apply_state = SH_FAILED;
                job_fail(b, j, "the worker applying the changes stopped answering, every attempt");
            } else {
                j->apply_state = SH_PENDING;
                j->apply_not_before_ms = now_ms() + 500;
                log_warn("job %s: the worker applying it was lost; the apply step goes to another", j->id);
            }
        }
    }
}

static int resume_approved(broker *b, const char *id, char *err, size_t errlen);

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
    for (size_t i = 0; i < b->njobs; i++) {
        char path[CONFIG_STR + 200];
        snprintf(path, sizeof(path), "%s/" STARTS_FILE, b->jobs[i]->workdir);
        unlink(path);
    }
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
            if (access(path, F_OK) == 0 && valid_job_id(e->d_name) && resume_approved(b, e->d_name, err, sizeof(err)) < 0)
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
        if (req == NULL || !valid_job_id(req->job_id)) {
            log_warn("%s does not decode; skipped", path);
            if (req)
                patronsync__job_request__free_unpacked(req, NULL);
            continue;
        }
        job *j = job_new(b, req);
        if (j == NULL || job_push(b, j) < 0) {
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
            job_fail(b, j, why);
            continue;
        }
        log_info("job %s resumed after a restart", j->id);
    }
    closedir(d);
}

/* ---- Held jobs and the operator's decision (docs/SAFETY.md) ---- */

static char *read_small(const char *dir, const char *name, size_t *len, char *err, size_t errlen)
{
    char path[CONFIG_STR + 400];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return file_read_all(path, (size_t)1 << 26, len, err, errlen);
}

/* Re-create an approved held job from its work folder and queue its apply
 * step: the shards as they ended, the staged plans as they are. 0 / -1. */
static int resume_approved(broker *b, const char *id, char *err, size_t errlen)
{
    char dir[CONFIG_STR + 160];
    snprintf(dir, sizeof(dir), "%s/work/%s", b->cfg->data_dir, id);
    size_t n;
    char *data = read_small(dir, "request.pb", &n, err, errlen);
    if (data == NULL)
        return -1;
    Patronsync__JobRequest *req = patronsync__job_request__unpack(NULL, n, (const uint8_t *)data);
    free(data);
    if (req == NULL) {
        err_set(err, errlen, "%s/request.pb does not decode", dir);
        return -1;
    }
    job *j = job_new(b, req);
    if (j == NULL) {
        patronsync__job_request__free_unpacked(req, NULL);
        err_set(err, errlen, "out of memory");
        return -1;
    }
    Patronsync__HeldJob *h = NULL;
    int rc = -1;
    int lp = load_prepared(j, err, errlen);
    if (lp != 1) {
        if (lp == 0)
            err_set(err, errlen, "its preparation (%s/prepared.pb) is gone", dir);
        goto out;
    }
    data = read_small(dir, "held", &n, err, errlen);
    if (data == NULL)
        goto out;
    h = patronsync__held_job__unpack(NULL, n, (const uint8_t *)data);
    free(data);
    if (h == NULL) {
        err_set(err, errlen, "%s/held does not decode", dir);
        goto out;
    }
    for (size_t i = 0; i < j->nshards; i++)
        j->shards[i].state = SH_DONE;
    j->ndone = j->nshards;
    for (size_t k = 0; k < h->n_failed_shards; k++) {
        uint32_t i = h->failed_shards[k];
        if (i >= j->nshards || j->shards[i].state == SH_FAILED)
            continue;
        j->shards[i].state = SH_FAILED;
        j->shards[i].attempt = k < h->n_failed_attempts ? h->failed_attempts[k] : 0;
        str_copy(j->shards[i].error, sizeof(j->shards[i].error), k < h->n_failed_errors ? h->failed_errors[k] : "");
        j->ndone--;
        j->nfailed++;
    }
    str_copy(j->held_reason, sizeof(j->held_reason), h->reason);
    data = read_small(dir, "approved", &n, err, errlen);
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
    j->apply_state = SH_PENDING;
    j->started_ms = now_ms();
    if (job_push(b, j) < 0) {
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

int jobs_decide(broker *b, const Patronsync__JobDecision *d, char *state, size_t statelen, char *err, size_t errlen)
{
    const char *id = d->job_id;
    str_copy(state, statelen, "");
    if (!valid_job_id(id)) {
        err_set(err, errlen, "job id '%s' is not valid", id);
        return -1;
    }
    int approve = strcmp(d->action, "approve") == 0;
    if (!approve && strcmp(d->action, "discard") != 0) {
        err_set(err, errlen, "unknown decision '%s' (approve or discard)", d->action);
        return -1;
    }
    job *q = job_find(b, id);
    if (q != NULL) {
        str_copy(state, statelen, "running");
        err_set(err, errlen, "job %s is not held: it is %s", id, q->approved ? "being applied (approved already)" : "running");
        return -1;
    }
    char dir[CONFIG_STR + 160], path[CONFIG_STR + 200];
    snprintf(dir, sizeof(dir), "%s/work/%s", b->cfg->data_dir, id);
    if (access(dir, F_OK) != 0) {
        err_set(err, errlen, "no job '%s'", id);
        return -1;
    }
    size_t n;
    char *done = read_small(dir, "done", &n, NULL, 0);
    if (done != NULL) {
        str_copy(state, statelen, done);
        err_set(err, errlen, "job %s is not held: it ended %s", id, done);
        free(done);
        return -1;
    }
    snprintf(path, sizeof(path), "%s/held", dir);
    if (access(path, F_OK) != 0) {
        err_set(err, errlen, "job %s is not held", id);
        return -1;
    }
    const char *user = d->user && *d->user ? d->user : "?";
    int64_t now = now_ms();
    char when[40];
    utc_time(now, when, sizeof(when));
    if (approve) {
        char line[300];
        int len = snprintf(line, sizeof(line), "%lld %s", (long long)now, user);
        snprintf(path, sizeof(path), "%s/approved", dir);
        if (file_write_atomic(path, line, (size_t)len, err, errlen) < 0)
            return -1;
        if (resume_approved(b, id, err, errlen) < 0) {
            unlink(path);
            return -1;
        }
        status_do(b->redis, "HSET ps:job:%s state running phase apply approved_by %s approved_ms %lld held_reason %s",
                  id, user, (long long)now, "");
        status_event(b->redis, "job %s approved by %s", id, user);
        log_info("job %s approved by %s: applying it as previewed", id, user);
        str_copy(state, statelen, "running");
        return 0;
    }
    snprintf(path, sizeof(path), "%s/done", dir);
    if (file_write_atomic(path, "discarded", 9, err, errlen) < 0)
        return -1;
    char *rq = read_small(dir, "request.pb", &n, NULL, 0);
    Patronsync__JobRequest *req = rq ? patronsync__job_request__unpack(NULL, n, (const uint8_t *)rq) : NULL;
    job_leave(b, id, dir, req);
    if (req != NULL)
        patronsync__job_request__free_unpacked(req, NULL);
    free(rq);
    char note[400];
    snprintf(note, sizeof(note), "Discarded by %s at %s: nothing was changed.", user, when);
    status_do(b->redis, "HSET ps:job:%s state discarded finished_ms %lld discarded_by %s", id, (long long)now, user);
    status_do(b->redis, "RPUSH ps:job:%s:notes %s", id, note);
    status_event(b->redis, "job %s discarded by %s", id, user);
    log_info("job %s discarded by %s", id, user);
    str_copy(state, statelen, "discarded");
    return 0;
}
