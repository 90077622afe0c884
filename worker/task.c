/* task: what every task of the worker asks of its context (task.h). */
#include "task.h"

#include "util.h"

int task_shard_in(const uint32_t *v, size_t n, uint32_t shard)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == shard)
            return 1;
    return 0;
}

int task_shard_failed(const Patronsync__ApplyTask *t, uint32_t shard)
{
    return task_shard_in(t->failed_shards, t->n_failed_shards, shard);
}

int task_publish(worker_ctx *w, const char *job, const char *part, const Patronsync__Counts *c,
                 Patronsync__Exception *const *exc, size_t nexc, unsigned attempt, char *err, size_t errlen)
{
    if (w->publish != NULL && w->publish(w, job, part, c, exc, nexc, attempt) == 0)
        return 0;
    err_set(err, errlen, "stopped before the result could be published");
    return -1;
}
