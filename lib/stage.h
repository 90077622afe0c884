/* stage: the staged plan of each shard, a file beside the store
 * (stage_dir/<job>/shard-NNNNNN.plan, a packed ShardPlan), written once by
 * the worker that planned it and read by the apply step and by the broker
 * when Redis lost a shard's published result. */
#ifndef STAGE_H
#define STAGE_H

#include <stddef.h>

#include "config.h"
#include "patron.h"
#include "patronsync.pb-c.h"

/* The path of shard's plan. 0 / -1 (too long). */
int stage_plan_path(const ps_config *c, const char *job, unsigned shard, char *out, size_t outlen);
/* Read the staged plan at path (same ownership and errors as below). */
Patronsync__ShardPlan *stage_read_plan_file(const char *path, char *err, size_t errlen);
/* Read a staged plan: the caller frees it with
 * patronsync__shard_plan__free_unpacked. NULL with err when missing or
 * undecodable. */
Patronsync__ShardPlan *stage_read_plan(const ps_config *c, const char *job, unsigned shard, char *err,
                                       size_t errlen);

/* A change's record (its `record`, or the `values` of earlier versions)
 * into rec. 1 set, 0 the change carries no record (rec left empty), -1
 * malformed or no memory. */
int stage_change_rec(const Patronsync__Change *c, patron_rec *rec);
/* Whether a change carries a record at all. */
static inline int stage_change_has_rec(const Patronsync__Change *c)
{
    return c->record.len > 0 || c->n_values > 0;
}

#endif
