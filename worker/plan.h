/* plan: the parallel, read-only phase of a job for one shard (plan.c). */
#ifndef PLAN_H
#define PLAN_H

#include <stddef.h>

#include "patronsync.pb-c.h"
#include "task.h"

/* Plan one shard: parse, map, validate, compare with the store (w->st,
 * read-only), stage the changes beside the store (DIR/<job>/shard-<n>.plan
 * and .seen) and publish the result (w->publish). A shard already staged
 * returns its stored result. 0, or -1 with err (the shard failed). */
int plan_shard(worker_ctx *w, const Patronsync__ShardTask *t, Patronsync__Counts *counts, char *err,
               size_t errlen);

#endif
