/* test_shards: the broker's shard cutting (broker/shards.h) — records per
 * shard, the byte limit, where a shard's bytes end, the index a record's
 * shard gets, and the cut again over the records left (last_to_end). */
#include "../../broker/shards.h"
#include "t_fork.h"

#include <stdint.h>

/* Feed n records of len bytes, each step bytes after the last, from line
 * 1 (one line each); the returned shard indexes in idx (n at most 64). */
static void feed(shard_cutter *c, shard_list *l, int n, uint64_t len, uint64_t step, int64_t idx[64])
{
    for (int i = 0; i < n; i++)
        idx[i] = shard_cut_record(c, l, (uint64_t)i * step, len, (uint64_t)i + 1);
}

static void test_cut_by_count(void)
{
    shard_list l = {0};
    shard_cutter c;
    int64_t idx[64];
    shard_cutter_init(&c, 2, UINT64_MAX);
    feed(&c, &l, 5, 10, 10, idx);
    CHECK(l.n == 2); /* the third is still open */
    CHECK(shard_cut_end(&c, &l, 50, 0) == 0);
    CHECK(l.n == 3);
    CHECK(l.v[0].off == 0 && l.v[0].len == 20 && l.v[0].first_line == 1 && l.v[0].last_line == 2 && l.v[0].nrec == 2);
    CHECK(l.v[1].off == 20 && l.v[1].len == 20 && l.v[1].first_line == 3 && l.v[1].last_line == 4);
    CHECK(l.v[2].off == 40 && l.v[2].len == 10 && l.v[2].nrec == 1 && l.v[2].first_line == 5);
    CHECK(idx[0] == 0 && idx[1] == 0 && idx[2] == 1 && idx[3] == 1 && idx[4] == 2);
    for (size_t i = 0; i < l.n; i++)
        CHECK(l.v[i].state == SH_PENDING && l.v[i].attempt == 0);
    shard_list_free(&l);
    CHECK(l.v == NULL && l.n == 0 && l.cap == 0);
}

static void test_cut_by_bytes(void)
{
    shard_list l = {0};
    shard_cutter c;
    int64_t idx[64];
    shard_cutter_init(&c, 100, 25); /* two 10-byte records fit, a third would not */
    feed(&c, &l, 5, 10, 10, idx);
    CHECK(shard_cut_end(&c, &l, 50, 0) == 0);
    CHECK(l.n == 3);
    CHECK(l.v[0].off == 0 && l.v[0].len == 20 && l.v[0].nrec == 2);
    CHECK(l.v[1].off == 20 && l.v[1].len == 20 && l.v[1].nrec == 2);
    CHECK(l.v[2].off == 40 && l.v[2].len == 10 && l.v[2].nrec == 1);
    CHECK(idx[2] == 1 && idx[4] == 2);
    shard_list_free(&l);
}

/* A record longer than the limit is a shard alone (never an empty one
 * before it), and the next record starts a new shard. */
static void test_long_record_alone(void)
{
    shard_list l = {0};
    shard_cutter c;
    shard_cutter_init(&c, 100, 25);
    CHECK(shard_cut_record(&c, &l, 0, 100, 1) == 0);
    CHECK(l.n == 0);
    CHECK(shard_cut_record(&c, &l, 100, 10, 2) == 1);
    CHECK(l.n == 1 && l.v[0].off == 0 && l.v[0].len == 100 && l.v[0].nrec == 1);
    CHECK(shard_cut_end(&c, &l, 110, 0) == 0);
    CHECK(l.n == 2 && l.v[1].off == 100 && l.v[1].len == 10 && l.v[1].first_line == 2);
    shard_list_free(&l);
}

/* A shard's bytes end where the next begins (the line ends between
 * records included); the last one closed full ends with its last record
 * unless last_to_end. */
static void test_bytes_end_at_next(void)
{
    for (int to_end = 0; to_end <= 1; to_end++) {
        shard_list l = {0};
        shard_cutter c;
        int64_t idx[64];
        shard_cutter_init(&c, 1, UINT64_MAX);
        feed(&c, &l, 3, 8, 10, idx); /* records of 8 bytes, 2 bytes of line end after each */
        CHECK(l.n == 3);
        CHECK(shard_cut_end(&c, &l, 30, to_end) == 0);
        CHECK(l.n == 3);
        CHECK(l.v[0].len == 10 && l.v[1].len == 10);
        CHECK(l.v[2].off == 20 && l.v[2].len == (to_end ? 10u : 8u));
        shard_list_free(&l);
    }
}

/* Records spanning lines: a shard's lines run from its first record's
 * first line to its last record's first line. */
static void test_lines(void)
{
    shard_list l = {0};
    shard_cutter c;
    shard_cutter_init(&c, 2, UINT64_MAX);
    CHECK(shard_cut_record(&c, &l, 0, 30, 2) == 0);  /* lines 2-4 */
    CHECK(shard_cut_record(&c, &l, 30, 10, 5) == 0);
    CHECK(shard_cut_record(&c, &l, 40, 10, 9) == 1);
    CHECK(shard_cut_end(&c, &l, 50, 0) == 0);
    CHECK(l.n == 2);
    CHECK(l.v[0].first_line == 2 && l.v[0].last_line == 5);
    CHECK(l.v[1].first_line == 9 && l.v[1].last_line == 9);
    shard_list_free(&l);
}

static void test_no_records(void)
{
    shard_list l = {0};
    shard_cutter c;
    shard_cutter_init(&c, 10, UINT64_MAX);
    CHECK(shard_cut_end(&c, &l, 0, 0) == 0);
    CHECK(l.n == 0);
    CHECK(shard_cut_end(&c, &l, 123, 1) == 0);
    CHECK(l.n == 0);
    shard_list_free(&l);
    shard_list_free(NULL);
}

/* The cut again over the records left (incremental): the kept records at
 * their new offsets, no byte limit, the last shard to the file's end. */
static void test_recut_to_end(void)
{
    shard_list l = {0};
    shard_cutter c;
    shard_cutter_init(&c, 2, UINT64_MAX);
    uint64_t off[] = {0, 12, 13, 25}, len[] = {10, 1, 10, 10}, line[] = {1, 3, 4, 6};
    int64_t want[] = {0, 0, 1, 1};
    for (int i = 0; i < 4; i++)
        CHECK(shard_cut_record(&c, &l, off[i], len[i], line[i]) == want[i]);
    CHECK(shard_cut_end(&c, &l, 40, 1) == 0);
    CHECK(l.n == 2);
    CHECK(l.v[0].off == 0 && l.v[0].len == 13 && l.v[0].first_line == 1 && l.v[0].last_line == 3);
    CHECK(l.v[1].off == 13 && l.v[1].len == 27 && l.v[1].first_line == 4 && l.v[1].last_line == 6);
    shard_list_free(&l);
}

static void test_list_add(void)
{
    shard_list l = {0};
    for (int i = 0; i < 100; i++)
        CHECK(shard_list_add(&l, (uint64_t)i * 5, (uint64_t)i * 5 + 5, (uint64_t)i + 1, (uint64_t)i + 1, 1) == 0);
    CHECK(l.n == 100 && l.cap >= 100);
    int ok = 1;
    for (size_t i = 0; i < l.n; i++)
        ok &= l.v[i].off == i * 5 && l.v[i].len == 5 && l.v[i].state == SH_PENDING && l.v[i].error[0] == '\0';
    CHECK(ok);
    shard_list_free(&l);
}

int main(void)
{
    T_FORK(test_cut_by_count);
    T_FORK(test_cut_by_bytes);
    T_FORK(test_long_record_alone);
    T_FORK(test_bytes_end_at_next);
    T_FORK(test_lines);
    T_FORK(test_no_records);
    T_FORK(test_recut_to_end);
    T_FORK(test_list_add);
    T_END();
}
