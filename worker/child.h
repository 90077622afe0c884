/* child: what runs in a process of the worker's own — a task (plan a
 * shard, or apply a job: its store and Redis opened afresh, its result
 * written to a pipe) or a checkpoint of the store after an apply. A record
 * that crashes the parser costs that process, not the worker. */
#ifndef CHILD_H
#define CHILD_H

#include "patronsync.pb-c.h"
#include "task.h"

/* The work of a process the worker started (mode "task" or "checkpoint").
 * A task is `forked` (the worker's own copy, in a forked process) or, when
 * that is NULL, read from the memory file `in` (a process started by
 * exec); its packed WorkerMsg result goes to `out`; ctl is a streaming
 * apply's end of its socket pair, or -1. Its exit status (a task's
 * process exits without returning). */
int child_run(worker_ctx *w, const char *mode, const Patronsync__BrokerMsg *forked, int in, int out, int ctl);

#endif
