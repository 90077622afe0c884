/* test_dups: the broker's duplicate index (broker/dups.h) — a key seen
 * again is found and takes the later line, hash collisions are told apart
 * by the keys themselves, the table grows and keeps every key, sizing at
 * once, keys too long to compare, where a record's offset and length go. */
#include "../../broker/dups.h"
#include "t_fork.h"
#include "util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The "work file": the key of the record at each offset. */
#define NREC 50000
static char keys[NREC][16];

static const char *key_at(void *ctx, const dup_slot *s)
{
    (void)ctx;
    uint64_t off = dup_slot_off(s);
    return off < NREC ? keys[off] : "";
}

/* See key at record off on line: 1 when it was there already (the slot
 * then names this record), 0 new, -1 no memory. */
static int see(dup_table *t, uint64_t off, uint64_t line)
{
    const char *k = keys[off];
    uint32_t h = dup_hash(k, strlen(k));
    dup_slot *s;
    int found = dup_lookup(t, k, h, key_at, NULL, &s);
    if (found >= 0)
        dup_put(t, s, !found, h, off, 10, line);
    return found;
}

static void test_new_and_again(void)
{
    dup_table t = {0};
    str_copy(keys[0], sizeof(keys[0]), "S1001");
    str_copy(keys[1], sizeof(keys[1]), "S1002");
    str_copy(keys[2], sizeof(keys[2]), "S1001");
    CHECK(see(&t, 0, 2) == 0);
    CHECK(see(&t, 1, 3) == 0);
    CHECK(t.n == 2);
    CHECK(t.cap == 1 << 16); /* the first table */
    CHECK(see(&t, 2, 7) == 1);
    CHECK(t.n == 2);
    CHECK(dup_final_line(&t, "S1001", key_at, NULL) == 7);
    CHECK(dup_final_line(&t, "S1002", key_at, NULL) == 3);
    CHECK(dup_final_line(&t, "S9999", key_at, NULL) == 0);
    dup_free(&t);
    CHECK(t.v == NULL && t.cap == 0 && t.n == 0);
}

static void test_empty_table(void)
{
    dup_table t = {0};
    CHECK(dup_final_line(&t, "S1", key_at, NULL) == 0);
    dup_free(&t);
}

/* Two keys of one hash are two keys: the callback's key decides. */
static void test_collision(void)
{
    dup_table t = {0};
    str_copy(keys[0], sizeof(keys[0]), "A");
    str_copy(keys[1], sizeof(keys[1]), "B");
    dup_slot *s0, *s1, *s;
    uint32_t h = 12345;
    CHECK(dup_lookup(&t, "A", h, key_at, NULL, &s0) == 0);
    dup_put(&t, s0, 1, h, 0, 5, 1);
    CHECK(dup_lookup(&t, "B", h, key_at, NULL, &s1) == 0);
    CHECK(s1 != s0);
    dup_put(&t, s1, 1, h, 1, 5, 2);
    CHECK(t.n == 2);
    CHECK(dup_lookup(&t, "A", h, key_at, NULL, &s) == 1 && s == s0 && s->line == 1);
    CHECK(dup_lookup(&t, "B", h, key_at, NULL, &s) == 1 && s == s1 && s->line == 2);
    dup_free(&t);
}

/* A record that reads as no key ("") never matches. */
static void test_unreadable_never_matches(void)
{
    dup_table t = {0};
    keys[0][0] = '\0';
    dup_slot *s;
    uint32_t h = dup_hash("X", 1);
    CHECK(dup_lookup(&t, "X", h, key_at, NULL, &s) == 0);
    dup_put(&t, s, 1, h, 0, 5, 1); /* the record's key cannot be read back */
    CHECK(dup_lookup(&t, "X", h, key_at, NULL, &s) == 0);
    dup_free(&t);
}

/* Past half full the table doubles, and every key is still found with
 * its line. */
static void test_growth_keeps_keys(void)
{
    dup_table t = {0};
    int n = 40000;
    for (int i = 0; i < n; i++)
        snprintf(keys[i], sizeof(keys[i]), "K%d", i);
    int fresh = 1;
    for (int i = 0; i < n; i++)
        fresh &= see(&t, (uint64_t)i, (uint64_t)i + 1) == 0;
    CHECK(fresh);
    CHECK(t.n == (size_t)n);
    CHECK(t.cap == 1 << 17);
    CHECK(t.n * 2 <= t.cap);
    int found = 1;
    for (int i = 0; i < n; i++)
        found &= dup_final_line(&t, keys[i], key_at, NULL) == (uint64_t)i + 1;
    CHECK(found);
    dup_free(&t);
}

/* Sized at once for an estimate (short of it rather than over), never
 * made smaller. */
static void test_reserve(void)
{
    dup_table t = {0};
    CHECK(dup_reserve(&t, 100000) == 0);
    CHECK(t.cap == 1 << 18);
    CHECK(dup_reserve(&t, 10) == 0);
    CHECK(t.cap == 1 << 18);
    str_copy(keys[0], sizeof(keys[0]), "R1");
    CHECK(see(&t, 0, 1) == 0);
    CHECK(dup_reserve(&t, 300000) == 0);
    CHECK(t.cap == 1 << 20);
    CHECK(dup_final_line(&t, "R1", key_at, NULL) == 1);
    dup_free(&t);
}

/* A key of DUP_KEY_CMP bytes or more is never taken for a duplicate. */
static void test_long_key(void)
{
    dup_table t = {0};
    char *k = malloc(DUP_KEY_CMP + 1);
    memset(k, 'z', DUP_KEY_CMP);
    k[DUP_KEY_CMP] = '\0';
    uint32_t h = dup_hash(k, DUP_KEY_CMP);
    dup_slot *s;
    CHECK(dup_lookup(&t, k, h, key_at, NULL, &s) == 0);
    dup_put(&t, s, 1, h, 0, 10, 1);
    CHECK(dup_lookup(&t, k, h, key_at, NULL, &s) == 0);
    free(k);
    dup_free(&t);
}

/* Where a record is: offsets beyond 32 bits kept, a length of
 * DUP_LEN_FAR or more kept as DUP_LEN_FAR (its end scanned for). */
static void test_slot_position(void)
{
    dup_table t = {0};
    dup_slot *s;
    CHECK(dup_lookup(&t, "P", 7, key_at, NULL, &s) == 0);
    uint64_t off = (uint64_t)1 << 35;
    dup_put(&t, s, 1, 7, off, 1234, 42);
    CHECK(dup_slot_off(s) == off && dup_slot_len(s) == 1234 && s->line == 42 && s->h == 7);
    dup_put(&t, s, 0, 7, 99, (size_t)DUP_LEN_FAR + 5, 43);
    CHECK(dup_slot_off(s) == 99 && dup_slot_len(s) == DUP_LEN_FAR);
    CHECK(t.n == 1);
    dup_free(&t);
}

static void test_hash(void)
{
    CHECK(dup_hash("S1001", 5) == dup_hash("S1001", 5));
    CHECK(dup_hash("S1001", 5) != dup_hash("S1002", 5));
    int nonzero = 1;
    char k[16];
    for (int i = 0; i < 100000; i++) {
        int n = snprintf(k, sizeof(k), "%d", i);
        nonzero &= dup_hash(k, (size_t)n) != 0;
    }
    CHECK(nonzero);
}

int main(void)
{
    T_FORK(test_new_and_again);
    T_FORK(test_empty_table);
    T_FORK(test_collision);
    T_FORK(test_unreadable_never_matches);
    T_FORK(test_growth_keeps_keys);
    T_FORK(test_reserve);
    T_FORK(test_long_key);
    T_FORK(test_slot_position);
    T_FORK(test_hash);
    T_END();
}
