/* seen: what planning saw of a shard, staged for the missing-patron step (seen.h). */
#include "seen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "patronsync.pb-c.h"

int seen_path(const ps_config *c, const char *job, unsigned shard, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "%s/%s/shard-%06u.seen", c->stage_dir, job, shard);
    return (n < 0 || (size_t)n >= outlen) ? -1 : 0;
}

void seen_init(seen_set *s)
{
    memset(s, 0, sizeof(*s));
    strset_init(&s->site_set);
}

int seen_id(seen_set *s, int64_t id)
{
    if (array_grow(&s->ids, &s->cap, s->n + 1, sizeof(*s->ids), 1024) < 0)
        return -1;
    s->ids[s->n++] = id;
    return 0;
}

int seen_site(seen_set *s, const char *site)
{
    if (site == NULL || *site == '\0')
        return 0;
    size_t len = strlen(site);
    if (strset_has(&s->site_set, site, len))
        return 0;
    if (array_grow(&s->sites, &s->capsites, s->nsites + 1, sizeof(*s->sites), 16) < 0)
        return -1;
    char *copy = strdup(site);
    if (copy == NULL || strset_add(&s->site_set, site, len) < 0) {
        free(copy);
        return -1;
    }
    s->sites[s->nsites++] = copy;
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int seen_has(const int64_t *v, size_t n, int64_t id)
{
    return n > 0 && bsearch(&id, v, n, sizeof(*v), cmp_i64) != NULL;
}

size_t seen_sort_unique(int64_t *v, size_t n)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof(*v), cmp_i64);
    size_t k = 1;
    for (size_t i = 1; i < n; i++)
        if (v[i] != v[k - 1])
            v[k++] = v[i];
    return k;
}

int seen_stage(const ps_config *c, const char *job, unsigned shard, seen_set *s, char *err,
                      size_t errlen)
{
    char path[2048], dir[2048];
    if (seen_path(c, job, shard, path, sizeof(path)) < 0) {
        err_set(err, errlen, "stage path too long");
        return -1;
    }
    s->n = seen_sort_unique(s->ids, s->n);
    Patronsync__ShardSeen m = PATRONSYNC__SHARD_SEEN__INIT;
    m.ids = s->ids;
    m.n_ids = s->n;
    m.sites = s->sites;
    m.n_sites = s->nsites;
    size_t len = patronsync__shard_seen__get_packed_size(&m);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL) {
        err_set(err, errlen, "out of memory staging what shard %u saw", shard);
        return -1;
    }
    patronsync__shard_seen__pack(&m, buf);
    snprintf(dir, sizeof(dir), "%s/%s", c->stage_dir, job);
    int rc = mkdir_p(dir, 0750, err, errlen) < 0 || file_write_atomic(path, buf, len, err, errlen) < 0 ? -1 : 0;
    free(buf);
    return rc;
}

void seen_free(seen_set *s)
{
    if (s == NULL)
        return;
    free(s->ids);
    for (size_t i = 0; i < s->nsites; i++)
        free(s->sites[i]);
    free(s->sites);
    strset_free(&s->site_set);
    seen_init(s);
}


int seen_merge_file(const ps_config *c, const char *job, unsigned shard, int want_ids, seen_set *acc, char *err,
                    size_t errlen)
{
    char path[2048];
    if (seen_path(c, job, shard, path, sizeof(path)) < 0 || access(path, F_OK) != 0)
        return 0;
    size_t len;
    char *data = file_read_all(path, (size_t)1 << 32, &len, err, errlen);
    if (data == NULL)
        return -1;
    Patronsync__ShardSeen *m = patronsync__shard_seen__unpack(NULL, len, (const uint8_t *)data);
    free(data);
    if (m == NULL) {
        err_set(err, errlen, "staged %s does not decode", path);
        return -1;
    }
    size_t nids = want_ids ? m->n_ids : 0;
    int ok = array_grow(&acc->ids, &acc->cap, acc->n + nids, sizeof(*acc->ids), 1024) == 0;
    if (ok && nids > 0) {
        memcpy(acc->ids + acc->n, m->ids, nids * sizeof(*acc->ids));
        acc->n += nids;
    }
    for (size_t i = 0; ok && i < m->n_sites; i++)
        ok = seen_site(acc, m->sites[i]) == 0;
    patronsync__shard_seen__free_unpacked(m, NULL);
    if (!ok) {
        err_set(err, errlen, "out of memory reading what the shards saw");
        return -1;
    }
    return 1;
}
