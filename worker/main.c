/* patron-worker: takes tasks from the broker (plan a shard, or apply a job:
 * one at a time, but a shard beside a streaming apply), each in a process of
 * its own (child.c), watches them and reports their results; keeps
 * heartbeats both ways and reconnects with back-off (link.c). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "child.h"
#include "link.h"
#include "log.h"
#include "proc.h"
#include "task.h"
#include "util.h"
#include "wire.h"

/* A task's result to Redis (task_publish_fn), retrying until Redis
 * answers or the worker is stopping. 0 / -1. */
static int publish_to_redis(worker_ctx *w, const char *job, const char *part, const Patronsync__Counts *c,
                            Patronsync__Exception *const *exc, size_t nexc, unsigned attempt)
{
    int warned = 0;
    while (status_publish_result(w->redis, job, part, c, exc, nexc, w->cfg->worker_id, attempt) < 0) {
        if (!warned)
            log_warn("job %s part %s: Redis unreachable; keeping the result until it is back", job, part);
        warned = 1;
        if (proc_stopping)
            return -1;
        usleep(200 * 1000);
    }
    if (warned)
        log_info("job %s part %s: published after Redis came back", job, part);
    return 0;
}

/* The worker's command line as it was started, for spawn_self. */
static char **self_argv;

/* The task being started: a forked process finds it here, in the memory
 * it shares with the worker as it was (no copy through a file). */
static const Patronsync__BrokerMsg *forked_task;

/* A task's process may use task_cpu_seconds of CPU: past it the kernel
 * sends SIGXCPU (and SIGKILL a few seconds later, should it be caught).
 * Only system calls: it runs between fork and exec. */
static void limit_cpu(const worker_ctx *w, const char *mode)
{
    if (strcmp(mode, "task") != 0 || w->cfg->task_cpu_seconds <= 0)
        return;
    struct rlimit rl = {(rlim_t)w->cfg->task_cpu_seconds, (rlim_t)w->cfg->task_cpu_seconds + 5};
    setrlimit(RLIMIT_CPU, &rl);
}

/* Sanitized builds start task processes by exec (below). */
#if defined(__SANITIZE_ADDRESS__)
#define TASK_EXEC 1
#else
#define TASK_EXEC 0
#endif

/* This program's work in a process of its own, for a task or a checkpoint
 * (mode; fds: the task's memory file (-1 when forked: forked_task), result
 * pipe and, for a streaming apply, its end of the socket pair (the broker's
 * word down, its progress up); parent_ends: the worker's ends, not
 * the new process's). The new process is forked and does the work (the
 * worker's one other thread kind, ZeroMQ's, never shares a lock with it:
 * glibc's malloc is safe across fork). AddressSanitizer's allocator is
 * not (a child could wait forever on its lock, held by a ZeroMQ thread at
 * the fork), so a sanitized build execs the worker program at once,
 * naming the fds in PATRONSYNC_TASK (task_process) — slower (a new process
 * image per task), tested by the sanitized suite. The pid, or -1 with
 * errno. */
static pid_t spawn_self(worker_ctx *w, const char *mode, const int *fds, int nfds, const int *parent_ends,
                        int nends)
{
#if TASK_EXEC
    (void)w, (void)parent_ends, (void)nends;
    char var[128];
    int n = snprintf(var, sizeof(var), "PATRONSYNC_TASK=%s", mode);
    for (int i = 0; i < nfds && n > 0 && (size_t)n < sizeof(var); i++)
        n += snprintf(var + n, sizeof(var) - (size_t)n, ",%d", fds[i]);
    size_t nenv = 0;
    while (environ[nenv] != NULL)
        nenv++;
    char **envp = malloc((nenv + 2) * sizeof(*envp));
    if (envp == NULL)
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < nenv; i++)
        if (strncmp(environ[i], "PATRONSYNC_TASK=", 16) != 0)
            envp[k++] = environ[i];
    envp[k++] = var;
    envp[k] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        /* Nothing but system calls until the exec. */
        for (int i = 0; i < nfds; i++)
            fcntl(fds[i], F_SETFD, 0);
        limit_cpu(w, mode);
        execve("/proc/self/exe", self_argv, envp);
        _exit(127);
    }
    int e = errno;
    free(envp);
    errno = e;
    return pid;
#else
    pid_t pid = fork();
    if (pid == 0) {
        limit_cpu(w, mode);
        /* The worker's pipes are not this process's: a streaming apply
         * sees its pipe close when the worker is gone. */
        for (int i = 0; i < nends; i++)
            if (parent_ends[i] >= 0)
                close(parent_ends[i]);
        _exit(child_run(w, mode, forked_task, nfds > 0 ? fds[0] : -1, nfds > 1 ? fds[1] : -1, nfds > 2 ? fds[2] : -1));
    }
    return pid;
#endif
}

/* A finished checkpoint process reaped (wait: block until it ends). */
static void reap_checkpoint(worker_ctx *w, int wait)
{
    if (w->ckpt_pid <= 0)
        return;
    int st;
    struct rusage ru;
    pid_t r;
    while ((r = wait4(w->ckpt_pid, &st, wait ? 0 : WNOHANG, &ru)) < 0 && errno == EINTR)
        ;
    if (r == 0)
        return;
    if (r == w->ckpt_pid && ru.ru_maxrss > w->child_maxrss_kb)
        w->child_maxrss_kb = ru.ru_maxrss;
    w->ckpt_pid = 0;
}

/* After an apply: copy the write-ahead log into the store file in a
 * process of its own, off the job's path (the apply's connection does not
 * checkpoint when it commits). Readers and the next writer go on meanwhile;
 * a checkpoint cut short is simply done by the next one. */
static void start_checkpoint(worker_ctx *w)
{
    reap_checkpoint(w, 0);
    if (w->ckpt_pid > 0)
        return; /* one at a time: the running one takes this log too */
    pid_t pid = spawn_self(w, "checkpoint", NULL, 0, NULL, 0);
    if (pid < 0)
        log_warn("starting a checkpoint process: %s", strerror(errno));
    else
        w->ckpt_pid = pid;
}

/* Each task runs in a process of its own: a record that crashes the parser
 * costs that attempt, not the worker; this process keeps the heartbeats
 * going, passes a streaming apply the broker's word, and reports what
 * happened. Two at most: a streaming apply and a shard beside it. */
typedef struct {
    pid_t pid;                 /* 0: free */
    int fd;                    /* the result comes on it */
    int ctl;                   /* a streaming apply: its socket pair's end (the broker's word down, progress up), or -1 */
    int ctl_eof;               /* ... which the process has closed */
    Patronsync__BrokerMsg *bm; /* the task (owned) */
    int is_shard;
    strbuf out;
    int64_t t0, kill_at;
    int killed;
    int64_t next_mem_check;    /* when its memory is looked at next (mono ms) */
    long over_memory_kb;       /* ended for holding this much past task_memory_mb, or 0 */
} task;

static task tasks[2];

static int tasks_running(void)
{
    return (tasks[0].pid > 0) + (tasks[1].pid > 0);
}

static const char *task_job(const task *t)
{
    return t->is_shard ? t->bm->shard->job_id : t->bm->apply->job_id;
}

static unsigned task_attempt(const task *t)
{
    return t->is_shard ? t->bm->shard->attempt : t->bm->apply->attempt;
}

/* A failed result for a task that produced none (why: what happened). */
static void send_result(worker_ctx *w, const Patronsync__BrokerMsg *bm, const char *why, int handed_back)
{
    Patronsync__Counts counts = PATRONSYNC__COUNTS__INIT;
    Patronsync__WorkerMsg m = PATRONSYNC__WORKER_MSG__INIT;
    Patronsync__ShardResult sr = PATRONSYNC__SHARD_RESULT__INIT;
    Patronsync__ApplyResult ar = PATRONSYNC__APPLY_RESULT__INIT;
    if (bm->body_case == PATRONSYNC__BROKER_MSG__BODY_SHARD) {
        sr.job_id = bm->shard->job_id;
        sr.shard = bm->shard->shard;
        sr.attempt = bm->shard->attempt;
        sr.error = (char *)why;
        sr.counts = &counts;
        sr.handed_back = handed_back;
        m.body_case = PATRONSYNC__WORKER_MSG__BODY_SHARD_RESULT;
        m.shard_result = &sr;
    } else {
        ar.job_id = bm->apply->job_id;
        ar.attempt = bm->apply->attempt;
        ar.error = (char *)why;
        ar.counts = &counts;
        ar.handed_back = handed_back;
        m.body_case = PATRONSYNC__WORKER_MSG__BODY_APPLY_RESULT;
        m.apply_result = &ar;
    }
    link_send(w, &m);
}

/* The task failed (why): an attempt. */
static void send_failed(worker_ctx *w, const Patronsync__BrokerMsg *bm, const char *why)
{
    send_result(w, bm, why, 0);
}

/* The task was never started here (why): the broker gives it to another
 * worker without counting an attempt. */
static void send_handed_back(worker_ctx *w, const Patronsync__BrokerMsg *bm, const char *why)
{
    send_result(w, bm, why, 1);
}

/* Whether bm may start now: nothing running, or a shard beside a
 * streaming apply (plan_beside_apply). */
static task *task_slot(worker_ctx *w, const Patronsync__BrokerMsg *bm)
{
    int n = tasks_running();
    if (n == 0)
        return &tasks[0];
    task *run = tasks[0].pid > 0 ? &tasks[0] : &tasks[1];
    if (n == 1 && w->cfg->plan_beside_apply && bm->body_case == PATRONSYNC__BROKER_MSG__BODY_SHARD &&
        !run->is_shard && run->bm->apply->streaming)
        return run == &tasks[0] ? &tasks[1] : &tasks[0];
    return NULL;
}

/* The task in a memory file the process reads from its start: the worker
 * writes it whole at once and never waits on the reader. The fd, or -1. */
static int task_memfd(const Patronsync__BrokerMsg *bm)
{
    size_t n = patronsync__broker_msg__get_packed_size(bm);
    uint8_t *packed = malloc(n ? n : 1);
    int in = packed != NULL ? memfd_create("patronsync-task", MFD_CLOEXEC) : -1;
    size_t off = 0;
    if (in >= 0) {
        patronsync__broker_msg__pack(bm, packed);
        while (off < n) {
            ssize_t k = write(in, packed + off, n - off);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0)
                break;
            off += (size_t)k;
        }
    }
    free(packed);
    if (in >= 0 && (off != n || lseek(in, 0, SEEK_SET) != 0)) {
        close(in);
        in = -1;
    }
    return in;
}

/* Start bm (owned from here on) in a process of its own. */
static void task_start(worker_ctx *w, Patronsync__BrokerMsg *bm)
{
    task *t = task_slot(w, bm);
    if (t == NULL) {
        /* The broker gives no more than that; say so rather than sit on it. */
        log_warn("a task came while this worker had no room for it; handed back");
        send_handed_back(w, bm, "the worker had no room for it");
        patronsync__broker_msg__free_unpacked(bm, NULL);
        return;
    }
    int is_shard = bm->body_case == PATRONSYNC__BROKER_MSG__BODY_SHARD;
    int streaming = !is_shard && bm->apply->streaming;
    int in = -1, fds[2] = {-1, -1}, ctl[2] = {-1, -1};
    pid_t pid = -1;
    /* A forked process has the task in memory already; one started by
     * exec reads it from a memory file. */
    if ((!TASK_EXEC || (in = task_memfd(bm)) >= 0) && pipe2(fds, O_CLOEXEC) == 0 &&
        (!streaming || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, ctl) == 0)) {
        int pass[3] = {in, fds[1], ctl[0]};
        int ends[6] = {fds[0], ctl[1], -1, -1, -1, -1};
        for (int k = 0; k < 2; k++)
            if (tasks[k].pid > 0) {
                ends[2 + 2 * k] = tasks[k].fd;
                ends[3 + 2 * k] = tasks[k].ctl;
            }
        forked_task = bm;
        pid = spawn_self(w, "task", pass, streaming ? 3 : 2, ends, 6);
        forked_task = NULL;
    }
    int e = errno;
    int child_ends[3] = {in, fds[1], ctl[0]};
    for (int k = 0; k < 3; k++)
        if (child_ends[k] >= 0)
            close(child_ends[k]);
    if (pid <= 0) {
        log_error("starting a task process: %s", strerror(e));
        if (fds[0] >= 0)
            close(fds[0]);
        if (ctl[1] >= 0)
            close(ctl[1]);
        send_failed(w, bm, "the worker could not start a process for it");
        patronsync__broker_msg__free_unpacked(bm, NULL);
        return;
    }
    memset(t, 0, sizeof(*t));
    t->pid = pid;
    t->fd = fds[0];
    t->ctl = ctl[1];
    t->bm = bm;
    t->is_shard = is_shard;
    t->t0 = mono_ms();
    sb_init(&t->out);
    if (streaming)
        w->ctl = ctl[1];
}

/* A line of a running process's /proc status, kB (key: "VmHWM", its peak
 * RSS so far; "RssAnon", the memory it holds of its own, not the pages of
 * files it maps, such as the store); 0 when unknown. */
static long proc_status_kb(pid_t pid, const char *key)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = 0;
    if (f == NULL)
        return 0;
    size_t kl = strlen(key);
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, key, kl) == 0 && line[kl] == ':' && sscanf(line + kl + 1, "%ld", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

/* A task holding more than task_memory_mb is ended (looked at every 100 ms). */
static void task_check_memory(worker_ctx *w, task *t, int64_t now)
{
    if (w->cfg->task_memory_mb <= 0 || t->killed || t->over_memory_kb || now < t->next_mem_check)
        return;
    t->next_mem_check = now + 100;
    long kb = proc_status_kb(t->pid, "RssAnon");
    if (kb <= w->cfg->task_memory_mb * 1024)
        return;
    log_warn("job %s: the task's process holds %ld MB, past task_memory_mb=%lld; ending it", task_job(t), kb / 1024,
             (long long)w->cfg->task_memory_mb);
    t->over_memory_kb = kb;
    kill(t->pid, SIGKILL);
}

/* The task's process has ended (its pipe is closed): report. */
static void task_end(worker_ctx *w, task *t)
{
    close(t->fd);
    if (t->ctl >= 0) {
        close(t->ctl);
        w->ctl = -1;
    }
    int st = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof(ru));
    while (wait4(t->pid, &st, 0, &ru) < 0 && errno == EINTR)
        ;
    /* Tasks running together count together: this one's peak and the
     * other's so far (an upper bound of their peak together). */
    long together = ru.ru_maxrss;
    for (int k = 0; k < 2; k++)
        if (&tasks[k] != t && tasks[k].pid > 0)
            together += proc_status_kb(tasks[k].pid, "VmHWM");
    if (together > w->child_maxrss_kb)
        w->child_maxrss_kb = together;
    const char *job = task_job(t);
    unsigned attempt = task_attempt(t);
    Patronsync__WorkerMsg *res = NULL;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        res = patronsync__worker_msg__unpack(NULL, t->out.len, (const uint8_t *)t->out.buf);
    if (t->kill_at && mono_ms() > t->kill_at) {
        /* handed back: the broker re-dispatches it */
    } else if (res != NULL) {
        const char *e = t->is_shard ? res->shard_result->error : res->apply_result->error;
        int ok = t->is_shard ? res->shard_result->ok : res->apply_result->ok;
        log_info("job %s %s%u attempt %u: %s in %lld ms", job, t->is_shard ? "shard " : "apply",
                 t->is_shard ? t->bm->shard->shard : 0, attempt, ok ? "done" : e, (long long)(mono_ms() - t->t0));
        link_send(w, res);
        if (!t->is_shard && ok)
            start_checkpoint(w);
    } else {
        char why[200];
        if (t->over_memory_kb)
            snprintf(why, sizeof(why), "the worker process handling it went past its memory limit (%ld MB held, task_memory_mb=%lld)",
                     t->over_memory_kb / 1024, (long long)w->cfg->task_memory_mb);
        else if (WIFSIGNALED(st) && (WTERMSIG(st) == SIGXCPU || (WTERMSIG(st) == SIGKILL && w->cfg->task_cpu_seconds > 0 &&
                                                                ru.ru_utime.tv_sec + ru.ru_stime.tv_sec >= w->cfg->task_cpu_seconds)))
            snprintf(why, sizeof(why), "the worker process handling it went past its CPU time limit (task_cpu_seconds=%lld)",
                     (long long)w->cfg->task_cpu_seconds);
        else if (WIFSIGNALED(st))
            snprintf(why, sizeof(why), "the worker process handling it crashed (signal %d)", WTERMSIG(st));
        else
            snprintf(why, sizeof(why), "the worker process handling it exited with status %d", WEXITSTATUS(st));
        log_warn("job %s attempt %u: %s", job, attempt, why);
        send_failed(w, t->bm, why);
    }
    if (res)
        patronsync__worker_msg__free_unpacked(res, NULL);
    sb_free(&t->out);
    patronsync__broker_msg__free_unpacked(t->bm, NULL);
    memset(t, 0, sizeof(*t));
}

/* A streaming apply's progress (u32 shards past, a message each): the
 * latest goes to the broker, which paces the planning by it. */
static void task_progress(worker_ctx *w, task *t)
{
    uint32_t v;
    ssize_t k;
    uint32_t last = 0;
    int any = 0;
    while ((k = read(t->ctl, &v, sizeof(v))) > 0) {
        if (k == (ssize_t)sizeof(v)) {
            last = v;
            any = 1;
        }
    }
    if (k == 0)
        t->ctl_eof = 1; /* the process is gone: its result pipe reports it */
    if (!any)
        return;
    Patronsync__ApplyProgress ap = PATRONSYNC__APPLY_PROGRESS__INIT;
    ap.job_id = t->bm->apply->job_id;
    ap.attempt = t->bm->apply->attempt;
    ap.shards_past = last;
    Patronsync__WorkerMsg m = PATRONSYNC__WORKER_MSG__INIT;
    m.body_case = PATRONSYNC__WORKER_MSG__BODY_APPLY_PROGRESS;
    m.apply_progress = &ap;
    link_send(w, &m);
}

/* Read what the task's process wrote; at its end, report. */
static void task_read(worker_ctx *w, task *t)
{
    char chunk[65536];
    ssize_t k = read(t->fd, chunk, sizeof(chunk));
    if (k > 0)
        sb_append(&t->out, chunk, (size_t)k);
    else if (k == 0 || errno != EINTR)
        task_end(w, t);
}

/* A message from the broker (a task, a streaming apply's word, a heartbeat). */
static void on_broker(worker_ctx *w, zmq_msg_t *body)
{
    Patronsync__BrokerMsg *bm = patronsync__broker_msg__unpack(NULL, zmq_msg_size(body), zmq_msg_data(body));
    if (bm == NULL) {
        wire_rejected++;
        if (wire_should_log_rejected())
            log_warn("a frame from the broker did not decode; dropped (%llu so far)", (unsigned long long)wire_rejected);
        return;
    }
    switch (bm->body_case) {
    case PATRONSYNC__BROKER_MSG__BODY_SHARD:
    case PATRONSYNC__BROKER_MSG__BODY_APPLY:
        if (proc_stopping) {
            send_handed_back(w, bm, "the worker is stopping");
            break;
        }
        task_start(w, bm);
        return; /* bm is the task's now */
    case PATRONSYNC__BROKER_MSG__BODY_STREAM:
        if (w->ctl >= 0)
            link_pass_stream(w, bm->stream);
        break;
    default:
        break;
    }
    patronsync__broker_msg__free_unpacked(bm, NULL);
}

/* A process started by exec (PATRONSYNC_TASK=task,IN,OUT[,CTL] or
 * checkpoint). Its exit status. */
static int task_process(worker_ctx *w, const char *spec)
{
    if (strcmp(spec, "checkpoint") == 0)
        return child_run(w, "checkpoint", NULL, -1, -1, -1);
    int in = -1, out = -1, ctl = -1;
    if (sscanf(spec, "task,%d,%d,%d", &in, &out, &ctl) < 2 || in < 0 || out < 0) {
        log_error("PATRONSYNC_TASK='%s' is not a task", spec);
        return 2;
    }
    return child_run(w, "task", NULL, in, out, ctl);
}

/* What the poll loop keeps between turns. */
typedef struct {
    int64_t backoff;  /* before the next reconnect, ms */
    int ready_acked;  /* the broker has answered since READY went out */
} loop_state;

/* Connect to the broker, retrying with back-off until it works or the
 * worker is stopping. */
static void connect_first(worker_ctx *w, loop_state *ls)
{
    ls->backoff = 100;
    while (!proc_stopping && link_connect(w) < 0) {
        usleep((useconds_t)ls->backoff * 1000);
        ls->backoff = ls->backoff * 2 > 5000 ? 5000 : ls->backoff * 2;
    }
}

/* One turn of polling: the broker's messages, then each running task's
 * progress and result. */
static void poll_once(worker_ctx *w, loop_state *ls)
{
    zmq_pollitem_t items[5] = {{w->sock, 0, ZMQ_POLLIN, 0}};
    int nitems = 1;
    task *polled[5] = {NULL};
    int progress[5] = {0};
    for (int k = 0; k < 2; k++)
        if (tasks[k].pid > 0) {
            polled[nitems] = &tasks[k];
            items[nitems++] = (zmq_pollitem_t){NULL, tasks[k].fd, ZMQ_POLLIN, 0};
            if (tasks[k].ctl >= 0 && !tasks[k].ctl_eof) {
                polled[nitems] = &tasks[k];
                progress[nitems] = 1;
                items[nitems++] = (zmq_pollitem_t){NULL, tasks[k].ctl, ZMQ_POLLIN, 0};
            }
        }
    zmq_poll(items, nitems, (long)w->cfg->heartbeat_ms);
    int64_t now = mono_ms();
    zmq_msg_t body;
    while (wire_recv(w->sock, NULL, &body) == 1) {
        w->last_heard_ms = now;
        ls->backoff = 100;
        ls->ready_acked = 1;
        on_broker(w, &body);
        zmq_msg_close(&body);
    }
    /* Progress first: a task's end clears its slot. */
    for (int k = 1; k < nitems; k++)
        if (progress[k] && (items[k].revents & (ZMQ_POLLIN | ZMQ_POLLERR)) && polled[k]->ctl >= 0)
            task_progress(w, polled[k]);
    for (int k = 1; k < nitems; k++)
        if (!progress[k] && (items[k].revents & (ZMQ_POLLIN | ZMQ_POLLERR)) && polled[k]->pid > 0)
            task_read(w, polled[k]);
}

/* Running tasks watched: their memory, and the grace period once the
 * worker is stopping. */
static void watch_tasks(worker_ctx *w)
{
    for (int k = 0; k < 2; k++) {
        task *t = &tasks[k];
        if (t->pid <= 0)
            continue;
        task_check_memory(w, t, mono_ms());
        if (proc_stopping && t->kill_at == 0)
            t->kill_at = mono_ms() + w->cfg->shutdown_grace_ms;
        if (t->kill_at && mono_ms() > t->kill_at && !t->killed) {
            log_warn("job %s: grace period over; handing the task back", task_job(t));
            kill(t->pid, SIGKILL);
            t->killed = 1;
        }
    }
}

/* Heartbeats (READY until answered), the word that the worker is
 * stopping, and a reconnect when the broker went silent. */
static void keep_alive(worker_ctx *w, loop_state *ls)
{
    const ps_config *cfg = w->cfg;
    int64_t now = mono_ms();
    /* Stopping: the broker hears it at once and gives this worker nothing new. */
    int say_stop = proc_stopping && !w->said_stopping && ls->ready_acked;
    if (say_stop || now - w->last_sent_ms >= cfg->heartbeat_ms) {
        w->said_stopping |= say_stop;
        if (!ls->ready_acked)
            link_ready(w);
        else
            link_heartbeat(w);
    }
    /* Between tasks only: a task's result goes to the broker it came
     * from, or is dropped as late by a new one. */
    if (tasks_running() == 0 && now - w->last_heard_ms > cfg->heartbeat_ms * cfg->liveness) {
        log_warn("broker silent for %lld ms; reconnecting in %lld ms", (long long)(now - w->last_heard_ms),
                 (long long)ls->backoff);
        usleep((useconds_t)ls->backoff * 1000);
        ls->backoff = ls->backoff * 2 > 5000 ? 5000 : ls->backoff * 2;
        ls->ready_acked = 0;
        link_connect(w);
    }
}

/* The stage folder made, the store (its schema created) and Redis checked,
 * so that a bad setting fails at start; each task's process opens its own
 * handles. 0 / -1 (logged). */
static int check_start(const ps_config *cfg)
{
    char err[ERRLEN];
    if (mkdir_p(cfg->stage_dir, 0750, err, sizeof(err)) < 0) {
        log_error("%s", err);
        return -1;
    }
    store *probe = store_open(cfg->store_path, 2, 0, err, sizeof(err));
    if (probe == NULL) {
        log_error("%s", err);
        return -1;
    }
    store_close(&probe);
    /* A wrong password is a configuration error: stop now, saying so. */
    status *rprobe = status_for(cfg, err, sizeof(err));
    if (rprobe == NULL || status_check(rprobe, err, sizeof(err)) < 0) {
        status_destroy(&rprobe);
        log_error("%s", err);
        return -1;
    }
    status_destroy(&rprobe);
    return 0;
}

/* Goodbye to the broker, and the sockets closed. */
static void say_bye(worker_ctx *w)
{
    if (w->sock) {
        Patronsync__Bye bye = PATRONSYNC__BYE__INIT;
        Patronsync__WorkerMsg m = PATRONSYNC__WORKER_MSG__INIT;
        m.body_case = PATRONSYNC__WORKER_MSG__BODY_BYE;
        m.bye = &bye;
        link_send(w, &m);
        zmq_close(w->sock);
    }
    zmq_ctx_term(w->zctx);
}

int main(int argc, char **argv)
{
    ps_config cfg;
    /* Kept as started, for spawn_self (config_from_args takes options out). */
    self_argv = calloc((size_t)argc + 1, sizeof(*self_argv));
    if (self_argv == NULL)
        return 1;
    memcpy(self_argv, argv, (size_t)argc * sizeof(*argv));
    int rc = proc_start("patron-worker", NULL, argc, argv, &cfg);
    if (rc >= 0)
        return rc;

    worker_ctx w;
    memset(&w, 0, sizeof(w));
    w.cfg = &cfg;
    w.stopping = &proc_stopping;
    w.ctl = -1;
    w.publish = publish_to_redis;
    const char *spec = getenv("PATRONSYNC_TASK");
    if (spec != NULL)
        return task_process(&w, spec);
    if (check_start(&cfg) < 0)
        return 1;
    w.zctx = zmq_ctx_new();
    loop_state ls = {0};
    connect_first(&w, &ls);
    while (!proc_stopping || tasks_running() > 0) {
        poll_once(&w, &ls);
        watch_tasks(&w);
        reap_checkpoint(&w, 0);
        keep_alive(&w, &ls);
    }
    say_bye(&w);
    reap_checkpoint(&w, 1);
    log_info("stopped (largest task process, or two together: %ld kB)", w.child_maxrss_kb);
    return 0;
}
