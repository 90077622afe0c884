/* shards: a job's row ranges (shards) and the one way they are cut — a
 * shard closes after shard_size records, or before a record that would
 * take it over max_bytes; a shard's bytes end where the next begins. Used
 * by prepare (the first cut) and incremental (the cut again over the
 * records left). */
#ifndef BROKER_SHARDS_H
#define BROKER_SHARDS_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

enum shard_state { SH_PENDING, SH_RUNNING, SH_DONE, SH_FAILED };

typedef struct {
    uint64_t off, len;   /* bytes of the UTF-8 work file */
    uint64_t first_line, last_line;
    uint32_t nrec;
    enum shard_state state;
    unsigned attempt;
    wire_peer worker;
    int64_t since_ms;
    int64_t not_before_ms; /* back-off before the next attempt */
    char error[256];
} shard;

/* A growing list of shards (v owned; free with shard_list_free). */
typedef struct {
    shard *v;
    size_t n, cap;
} shard_list;

/* Append a pending shard of the bytes [off, end). 0 / -1 (no memory). */
int shard_list_add(shard_list *l, uint64_t off, uint64_t end, uint64_t first_line, uint64_t last_line,
                   uint32_t nrec);
/* Free the shards (NULL-safe, the list left empty). */
void shard_list_free(shard_list *l);

/* The cut in progress: records are fed in file order. */
typedef struct {
    uint64_t per_shard;  /* records per shard (shard_size) */
    uint64_t max_bytes;  /* bytes per shard at most (UINT64_MAX: no limit) */
    uint64_t in;         /* records in the open shard (0: none open) */
    uint64_t off, first, last;
} shard_cutter;

void shard_cutter_init(shard_cutter *c, uint64_t per_shard, uint64_t max_bytes);
/* One record (its offset, length and first line): it joins the open
 * shard, or one opened for it. The index the record's shard will have,
 * or -1 (no memory). */
int64_t shard_cut_record(shard_cutter *c, shard_list *l, uint64_t off, uint64_t len, uint64_t line);
/* No more records: close the open shard at end, and make each shard's
 * bytes end where the next one begins. last_to_end: the last shard's
 * bytes end at end too (else, when it closed full, where its last record
 * ends). 0 / -1 (no memory). */
int shard_cut_end(shard_cutter *c, shard_list *l, uint64_t end, int last_to_end);

#endif
