/* seen: what planning saw of a shard — the stored patrons whose records
 * were in it (changed or not: plans stage changed records only) and the
 * sites of its valid records — staged beside its plan as
 * DIR/<job>/shard-<n>.seen (ShardSeen) for the missing-patron step
 * (missing.h). Changing the file: add proto fields; never reuse numbers. */
#ifndef SEEN_H
#define SEEN_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "patronsync.pb-c.h"
#include "util.h"

typedef struct {
    int64_t *ids;
    size_t n, cap;
    char **sites;
    size_t nsites, capsites;
    strset site_set; /* the same sites, to look one up (one per record) */
} seen_set;

void seen_init(seen_set *s);
/* Note a stored patron / a site of a valid record. 0 / -1 (no memory). */
int seen_id(seen_set *s, int64_t id);
int seen_site(seen_set *s, const char *site);
/* Stage it as DIR/<job>/shard-<n>.seen. Call before the shard's plan is
 * staged: a staged plan then implies its seen file. 0 / -1 with err. */
int seen_stage(const ps_config *c, const char *job, unsigned shard, seen_set *s, char *err, size_t errlen);
void seen_free(seen_set *s);

/* Add what shard saw, as staged, to acc: its sites (each once) and, when
 * want_ids, its ids. 1 read, 0 it is not staged (planned by a worker that
 * staged none), -1 with err. */
int seen_merge_file(const ps_config *c, const char *job, unsigned shard, int want_ids, seen_set *acc, char *err,
                    size_t errlen);
/* Where shard's seen file is staged. 0 / -1 (too long). */
int seen_path(const ps_config *c, const char *job, unsigned shard, char *out, size_t outlen);
/* Whether the sorted ids v (n of them) hold id. */
int seen_has(const int64_t *v, size_t n, int64_t id);
/* Sort ids and drop repeats; the number left. */
size_t seen_sort_unique(int64_t *v, size_t n);

#endif
