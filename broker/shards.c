/* shards: a job's row ranges and how they are cut (shards.h). */
#include "shards.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

int shard_list_add(shard_list *l, uint64_t off, uint64_t end, uint64_t first_line, uint64_t last_line,
                   uint32_t nrec)
{
    if (array_grow(&l->v, &l->cap, l->n + 1, sizeof(*l->v), 8) < 0)
        return -1;
    shard *s = &l->v[l->n++];
    memset(s, 0, sizeof(*s));
    s->off = off;
    s->len = end - off;
    s->first_line = first_line;
    s->last_line = last_line;
    s->nrec = nrec;
    s->state = SH_PENDING;
    return 0;
}

void shard_list_free(shard_list *l)
{
    if (l == NULL)
        return;
    free(l->v);
    memset(l, 0, sizeof(*l));
}

void shard_cutter_init(shard_cutter *c, uint64_t per_shard, uint64_t max_bytes)
{
    memset(c, 0, sizeof(*c));
    c->per_shard = per_shard;
    c->max_bytes = max_bytes;
}

static int close_at(shard_cutter *c, shard_list *l, uint64_t end)
{
    if (shard_list_add(l, c->off, end, c->first, c->last, (uint32_t)c->in) < 0)
        return -1;
    c->in = 0;
    return 0;
}

int64_t shard_cut_record(shard_cutter *c, shard_list *l, uint64_t off, uint64_t len, uint64_t line)
{
    if (c->in > 0 && off + len - c->off > c->max_bytes && close_at(c, l, off) < 0)
        return -1;
    if (c->in == 0) {
        c->off = off;
        c->first = line;
    }
    c->last = line;
    c->in++;
    int64_t index = (int64_t)l->n;
    if (c->in == c->per_shard && close_at(c, l, off + len) < 0)
        return -1;
    return index;
}

int shard_cut_end(shard_cutter *c, shard_list *l, uint64_t end, int last_to_end)
{
    if (c->in > 0 && close_at(c, l, end) < 0)
        return -1;
    for (size_t i = 0; i + 1 < l->n; i++)
        l->v[i].len = l->v[i + 1].off - l->v[i].off;
    if (last_to_end && l->n > 0)
        l->v[l->n - 1].len = end - l->v[l->n - 1].off;
    return 0;
}
