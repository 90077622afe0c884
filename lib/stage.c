/* stage: paths and reading of staged shard plans. */
#include "stage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

int stage_plan_path(const ps_config *c, const char *job, unsigned shard, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "%s/%s/shard-%06u.plan", c->stage_dir, job, shard);
    return (n < 0 || (size_t)n >= outlen) ? -1 : 0;
}

Patronsync__ShardPlan *stage_read_plan_file(const char *path, char *err, size_t errlen)
{
    size_t len;
    char *data = file_read_all(path, (size_t)1 << 34, &len, err, errlen);
    if (data == NULL)
        return NULL;
    Patronsync__ShardPlan *p = patronsync__shard_plan__unpack(NULL, len, (const uint8_t *)data);
    free(data);
    if (p == NULL)
        err_set(err, errlen, "staged plan %s does not decode", path);
    return p;
}

Patronsync__ShardPlan *stage_read_plan(const ps_config *c, const char *job, unsigned shard, char *err,
                                       size_t errlen)
{
    char path[CONFIG_STR + 256];
    if (stage_plan_path(c, job, shard, path, sizeof(path)) < 0) {
        err_set(err, errlen, "stage path too long");
        return NULL;
    }
    return stage_read_plan_file(path, err, errlen);
}

int stage_change_rec(const Patronsync__Change *c, patron_rec *rec)
{
    if (c->record.len > 0)
        return patron_rec_unpack(rec, c->record.data, c->record.len) < 0 ? -1 : 1;
    patron_rec_reset(rec);
    if (c->n_values == 0)
        return 0;
    for (int f = 0; f < PF__COUNT; f++) {
        const char *v = (size_t)f < c->n_values && c->values[f] ? c->values[f] : "";
        if (patron_rec_set(rec, f, v, strlen(v), PV_VALUE) < 0)
            return -1;
    }
    return 1;
}
