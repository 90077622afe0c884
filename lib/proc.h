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

#endif
