/* cluster: a single-host cluster under DIR — `patronctl up` and `down`,
 * the processes its pid files name, and whether the part a command needs
 * is running. */
#ifndef CLI_CLUSTER_H
#define CLI_CLUSTER_H

#include "args.h"

#define CLUSTER_MAX_PROCS 300
#define CLUSTER_DEFAULT_WORKERS 3

/* A process a pid file under DATA/run/ names. */
typedef struct {
    char name[64]; /* scheduler, broker, redis, worker-N */
    int pid;
    int alive; /* running, and the program its name says */
} cluster_proc;

/* `patronctl up`: start redis (unless configured), broker, N workers
 * (<= 0: CLUSTER_DEFAULT_WORKERS) and the scheduler under cfg->data_dir;
 * return when all answer. 0 started; 1 a whole cluster already runs there
 * and answers (untouched; err says so); -1 with err: part of one runs (not
 * touched either), or starting failed (what this call started is stopped,
 * nothing else). */
int cluster_up(ps_config *cfg, int workers, int redis_configured, char *err, size_t errlen);
/* `patronctl down`: SIGTERM everything a pid file under DATA/run names,
 * wait, then SIGKILL what is left after the grace period; *stopped: how
 * many were running. 0 / -1. */
int cluster_down(ps_config *cfg, int *stopped, char *err, size_t errlen);
/* Pid of a process started by up (DATA/run/NAME.pid) if it is alive, else 0. */
int cluster_pid(const ps_config *cfg, const char *name);
/* The processes DATA/run/ *.pid name (at most cap), in the order redis,
 * broker, workers, scheduler. How many. */
int cluster_procs(const ps_config *cfg, cluster_proc *procs, int cap);
/* Whether the cluster under cfg->data_dir can serve a command that needs
 * `needs` (enum cli_need): 0, or -1 with the operator's message — no
 * cluster under DIR, or the part it needs is not running. Asks no socket:
 * it answers at once. */
int cluster_check(const ps_config *cfg, int needs, char *err, size_t errlen);

/* The probes up waits on, for `health` and `status`: Redis answers a
 * PING as cfg's user (1; -1 it refuses the password, err says so; 0 no
 * answer); the broker's count of workers (-1: no answer); the scheduler
 * answers a ping within timeout_ms (1) or not (0). */
int cluster_redis_ping(const ps_config *cfg, char *err, size_t errlen);
int cluster_broker_workers(const ps_config *cfg);
int cluster_scheduler_ping(const ps_config *cfg, long timeout_ms);

/* `patronctl up [--workers N]`, `patronctl down`. */
int cmd_up(const cli_ctx *c);
int cmd_down(const cli_ctx *c);

#endif
