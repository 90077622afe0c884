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

#endif
