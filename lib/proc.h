/* proc: the start every daemon's main shares — settings from their layers,
 * --print-config, argument check, logging, and signals that ask it to stop. */
#ifndef PROC_H
#define PROC_H

#include "config.h"

/* Set when SIGTERM or SIGINT arrived. */
extern volatile int proc_stopping;

/* Load cfg for program `prog` (its name in messages) logging as `process`
 * (NULL: cfg->worker_id). Returns -1 to go on; otherwise the exit status
 * main should return (0 after --print-config, 2 for a usage error, which
 * is printed). */
int proc_start(const char *prog, const char *process, int argc, char **argv, ps_config *cfg);

/* Hold DATA/run/NAME.lock for the life of the process, so that one data
 * folder has one process of that name (the scheduler, the broker). The lock
 * is the kernel's (flock): a killed process leaves no stale lock behind.
 * 0 / -1 with err (another one holds it: its pid is named when known). */
int proc_lock(const ps_config *cfg, const char *name, char *err, size_t errlen);

#endif
