/* child: a task's or a checkpoint's process (child.h). */
#include "child.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "apply.h"
#include "log.h"
#include "plan.h"
#include "stage.h"
#include "util.h"
#include "wire.h"

/* A shard task in its process: planned, or refused when the job is
 * applied already and the shard was never planned (a shard that had
 * failed: a plan now would be against the store after the job). A staged
 * plan is simply returned again by plan_shard. 0 / -1 with err. */
static int shard_task(worker_ctx *w, const Patronsync__ShardTask *t, Patronsync__Counts *counts, char *err,
                      size_t errlen)
{
    uint8_t *blob = NULL;
    size_t blen = 0;
    char staged[CONFIG_STR + 256];
    int have_plan =
        stage_plan_path(w->cfg, t->job_id, t->shard, staged, sizeof(staged)) == 0 && access(staged, F_OK) == 0;
    int rc = -1;
    if (!have_plan && w->st && store_marker_get(w->st, t->job_id, "apply", &blob, &blen) == 1)
        err_set(err, errlen, "job %s is already applied; a late task changes nothing", t->job_id);
    else if (w->st && w->redis)
        rc = plan_shard(w, t, counts, err, errlen);
    free(blob);
    return rc;
}

/* Write the packed result to fd, whole. 0 / -1. */
static int write_result(const Patronsync__WorkerMsg *m, int fd)
{
    size_t n = 0;
    uint8_t *buf = wire_pack(&m->base, &n, NULL, 0);
    int ok = buf != NULL;
    for (size_t off = 0; ok && off < n;) {
        ssize_t k = write(fd, buf + off, n - off);
        if (k < 0 && errno == EINTR)
            continue;
        ok = k > 0;
        if (ok)
            off += (size_t)k;
    }
    free(buf);
    return ok ? 0 : -1;
}

/* Run the task in the child: open the store and Redis afresh, do it, and
 * write the packed WorkerMsg result to fd. Never returns. */
static void child_task(worker_ctx *w, const Patronsync__BrokerMsg *bm, int fd)
{
    char err[ERRLEN] = "";
    /* Planning only reads the store: a read-only connection, which also
     * never waits for the write lock an apply in progress holds. */
    int ro = bm->body_case == PATRONSYNC__BROKER_MSG__BODY_SHARD ? STORE_READONLY : 0;
    /* The apply is the job's critical path (one writer); planning only
     * has to stay ahead of it, so on a shared machine it yields. */
    if (ro && w->cfg->plan_nice > 0 && setpriority(PRIO_PROCESS, 0, (int)w->cfg->plan_nice) < 0)
        log_warn("setpriority: %s", strerror(errno));
    w->st = store_open(w->cfg->store_path, (int)w->cfg->cache_mb, ro, err, sizeof(err));
    w->redis = status_for(w->cfg, err, sizeof(err));
    Patronsync__Counts counts = PATRONSYNC__COUNTS__INIT;
    Patronsync__WorkerMsg m = PATRONSYNC__WORKER_MSG__INIT;
    Patronsync__ShardResult sr = PATRONSYNC__SHARD_RESULT__INIT;
    Patronsync__ApplyResult ar = PATRONSYNC__APPLY_RESULT__INIT;
    if (bm->body_case == PATRONSYNC__BROKER_MSG__BODY_SHARD) {
        const Patronsync__ShardTask *t = bm->shard;
        int rc = shard_task(w, t, &counts, err, sizeof(err));
        sr.job_id = t->job_id;
        sr.shard = t->shard;
        sr.attempt = t->attempt;
        sr.ok = rc == 0;
        sr.error = rc == 0 ? "" : err;
        sr.counts = &counts;
        m.body_case = PATRONSYNC__WORKER_MSG__BODY_SHARD_RESULT;
        m.shard_result = &sr;
    } else {
        const Patronsync__ApplyTask *t = bm->apply;
        ar.counts = &counts;
        int rc = w->st && w->redis ? apply_job(w, t, &ar, err, sizeof(err)) : -1;
        ar.job_id = t->job_id;
        ar.attempt = t->attempt;
        ar.ok = rc == 0;
        ar.error = rc == 0 ? "" : err;
        m.body_case = PATRONSYNC__WORKER_MSG__BODY_APPLY_RESULT;
        m.apply_result = &ar;
    }
    _exit(write_result(&m, fd) == 0 ? 0 : 3);
}

/* The checkpoint process's work. Its exit status. */
static int checkpoint_process(worker_ctx *w)
{
    char err[ERRLEN];
    store *st = store_open(w->cfg->store_path, 2, 0, err, sizeof(err));
    int ok = st != NULL && store_exec(st, "PRAGMA wal_checkpoint(PASSIVE)", err, sizeof(err)) == 0;
    if (!ok)
        log_warn("checkpoint of the store: %s", err);
    store_close(&st);
    return ok ? 0 : 1;
}

int child_run(worker_ctx *w, const char *mode, const Patronsync__BrokerMsg *forked, int in, int out, int ctl)
{
    if (strcmp(mode, "checkpoint") == 0)
        return checkpoint_process(w);
    const Patronsync__BrokerMsg *bm = forked;
    if (in >= 0) {
        strbuf msg;
        sb_init(&msg);
        char chunk[65536];
        for (;;) {
            ssize_t k = read(in, chunk, sizeof(chunk));
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0 || sb_append(&msg, chunk, (size_t)k) < 0)
                break;
        }
        close(in);
        bm = patronsync__broker_msg__unpack(NULL, msg.len, (const uint8_t *)msg.buf);
        sb_free(&msg);
    }
    if (bm == NULL || (bm->body_case != PATRONSYNC__BROKER_MSG__BODY_SHARD &&
                       bm->body_case != PATRONSYNC__BROKER_MSG__BODY_APPLY)) {
        log_error("the task given to this process does not decode");
        return 3;
    }
    w->ctl = ctl;
    child_task(w, bm, out); /* does not return */
    return 3;
}

