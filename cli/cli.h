/* patronctl internals: starting and stopping a single-host cluster, and
 * talking to the scheduler's control endpoint. */
#ifndef CLI_H
#define CLI_H

#include "config.h"
#include "patronsync.pb-c.h"
#include "util.h"

/* `patronctl up`: start redis (unless configured), broker, N workers and
 * the scheduler under cfg->data_dir; return when all answer. 0 / -1. */
int cluster_up(ps_config *cfg, int workers, int redis_configured, char *err, size_t errlen);
/* `patronctl down`: SIGTERM everything started by up, wait, then SIGKILL
 * what is left after the grace period. 0 / -1. */
int cluster_down(ps_config *cfg, char *err, size_t errlen);
/* Pid of a process started by up (DATA/run/NAME.pid) if it is alive, else 0. */
int cluster_pid(const ps_config *cfg, const char *name);

/* One request to the scheduler, waiting up to timeout_ms. The reply is the
 * caller's to free with patronsync__control_reply__free_unpacked. NULL and
 * err when the scheduler does not answer. */
Patronsync__ControlReply *control_call(const ps_config *cfg, Patronsync__ControlRequest *rq, long timeout_ms,
                                       char *err, size_t errlen);
/* The user token: PATRONSYNC_TOKEN, else DATA/admin.token. NULL when none
 * (owned by the caller). */
char *control_token(const ps_config *cfg);

/* main.c: print a job's summary from Redis (waiting until it is final
 * when wait is set); the exit status patronctl uses for it. */
int show_job(const ps_config *cfg, const char *id, int json, int wait);

/* profile_check.c: `patronctl profile check ...` (argv[1] is "profile"),
 * local (no cluster needed); the exit status. */
int profile_cmd(const ps_config *cfg, int argc, char **argv);
/* refdata.c: `patronctl ref add|list ...` (argv[1] is "ref"); the exit status. */
int ref_cmd(const ps_config *cfg, int argc, char **argv);

/* schedule.c: `patronctl schedule ...` (argv[1] is "schedule"); the exit status. */
int schedule_cmd(const ps_config *cfg, int argc, char **argv);

/* jobctl.c: the safety flags of `patronctl run` (docs/SAFETY.md), kept as
 * option name/value pairs for the run request. */
#define JOBCTL_MAX_FLAGS 24
typedef struct {
    const char *key[JOBCTL_MAX_FLAGS];
    const char *value[JOBCTL_MAX_FLAGS];
    int n;
} jobctl_flags;
extern const char *jobctl_usage;
/* Whether arg is one of those flags. */
int jobctl_is_flag(const char *arg);
/* Take the flag at argv[*i] (and its value: *i advances). 0 / -1 (printed). */
int jobctl_flag(int argc, char **argv, int *i, jobctl_flags *f);
/* Append them to rq's opts, entries in store (cap of them in all). 0 / -1. */
int jobctl_add_opts(const jobctl_flags *f, Patronsync__ControlRequest *rq, Patronsync__ControlRequest__OptsEntry *store,
                    size_t cap);
/* `patronctl job approve|discard|undo ID ...` (argv[2] is the verb); the exit status. */
int jobctl_handles(const char *sub);
int jobctl_cmd(const ps_config *cfg, int argc, char **argv);

#endif
