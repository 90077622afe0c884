/* dispatch: handing a job's tasks to workers — a shard with the record
 * notes of its lines, the apply step (streaming beside the planning, or
 * after it; docs/PROTOCOL.md), the ApplyStream updates, and how far
 * planning may run ahead of a streaming apply. */
#ifndef BROKER_DISPATCH_H
#define BROKER_DISPATCH_H

#include <stddef.h>

#include "job.h"
#include "main.h"

/* Send shard i of j to w. 0 / -1 (not sent: the shard stays pending; a
 * work file that cannot be read back fails the job). */
int dispatch_shard(broker *b, job *j, size_t i, worker_ref *w);
/* Send j's apply step to w; streaming: while shards are still planned
 * (the ApplyStream messages then say which failed). 0 / -1 (not sent). */
int dispatch_apply(broker *b, job *j, worker_ref *w, int streaming);
/* Whether to send the apply now, while the shards are planned: there is a
 * worker to plan beside it, and enough left to plan to be worth it. */
int dispatch_stream_now(broker *b, const job *j);
/* Keep the worker of a streaming apply told which shards failed and
 * whether all are final (on every change, and every heartbeat), or told
 * to hand the task back when no worker is left to plan what it waits for. */
void dispatch_stream(broker *b, job *j);
/* The shards that may be planned now on the streaming apply's machine
 * (apply_host: that machine, "" when unknown): all, but while the apply
 * says how far it has got, no more than plan_ahead beyond that. */
size_t dispatch_plan_window(broker *b, const job *j, char apply_host[CONFIG_STR]);

#endif
