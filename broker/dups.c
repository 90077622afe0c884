/* dups: the duplicate index of prepare (dups.h). */
#include "dups.h"

#include <string.h>
#include <sys/mman.h>

#include "util.h"

_Static_assert(sizeof(dup_slot) == 16, "a duplicate slot is 16 bytes");

/* From the heap, the smaller tables a growing table leaves behind stayed
 * in the broker's memory (~20 MB more at a million keys): mapped instead. */
static dup_slot *dup_slots(size_t cap)
{
    void *v = mmap(NULL, cap * sizeof(dup_slot), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return v == MAP_FAILED ? NULL : v;
}

void dup_free(dup_table *t)
{
    if (t->v != NULL)
        munmap(t->v, t->cap * sizeof(dup_slot));
    t->v = NULL;
    t->cap = t->n = 0;
}

/* Grow to cap slots (a power of two, more than now). */
static int dup_grow_to(dup_table *t, size_t cap)
{
    dup_slot *v = dup_slots(cap);
    if (v == NULL)
        return -1;
    for (size_t i = 0; i < t->cap; i++) {
        if (t->v[i].h == 0)
            continue;
        size_t k = t->v[i].h & (cap - 1);
        while (v[k].h != 0)
            k = (k + 1) & (cap - 1);
        v[k] = t->v[i];
    }
    size_t n = t->n;
    dup_free(t);
    t->v = v;
    t->cap = cap;
    t->n = n;
    return 0;
}

static int dup_grow(dup_table *t)
{
    return dup_grow_to(t, t->cap ? t->cap * 2 : 1 << 16);
}

/* Short of the estimate rather than over it: a table one doubling too
 * large costs as much memory again (and each doubling on the way would
 * move every key again). */
int dup_reserve(dup_table *t, uint64_t keys)
{
    size_t cap = t->cap ? t->cap : 1 << 16;
    while ((uint64_t)cap < keys * 2 && cap < ((size_t)1 << 31))
        cap *= 2;
    return cap > t->cap ? dup_grow_to(t, cap) : 0;
}

/* hash64's low bits mix poorly (FNV-1a), so its high half is folded in;
 * the table's index is the low bits. */
uint32_t dup_hash(const char *key, size_t len)
{
    uint64_t h = hash64(key, len, HASH64_SEED);
    uint32_t x = (uint32_t)(h ^ (h >> 32));
    return x ? x : 1;
}

uint64_t dup_slot_off(const dup_slot *s)
{
    return s->pos >> DUP_LEN_BITS;
}

uint64_t dup_slot_len(const dup_slot *s)
{
    return s->pos & DUP_LEN_FAR;
}

int dup_lookup(dup_table *t, const char *key, uint32_t h, dup_key_fn key_of, void *ctx, dup_slot **slot)
{
    if ((t->n + 1) * 2 > t->cap && dup_grow(t) < 0)
        return -1;
    size_t klen = strlen(key);
    size_t k = h & (t->cap - 1);
    while (t->v[k].h != 0) {
        dup_slot *s = &t->v[k];
        if (s->h == h && klen < DUP_KEY_CMP && strcmp(key_of(ctx, s), key) == 0) {
            *slot = s;
            return 1;
        }
        k = (k + 1) & (t->cap - 1);
    }
    *slot = &t->v[k];
    return 0;
}

void dup_put(dup_table *t, dup_slot *slot, int new, uint32_t h, uint64_t off, size_t len, uint64_t line)
{
    slot->h = h;
    slot->line = (uint32_t)line;
    slot->pos = off << DUP_LEN_BITS | ((uint64_t)len < DUP_LEN_FAR ? (uint64_t)len : DUP_LEN_FAR);
    if (new)
        t->n++;
}

uint64_t dup_final_line(const dup_table *t, const char *key, dup_key_fn key_of, void *ctx)
{
    if (t->cap == 0)
        return 0;
    size_t klen = strlen(key);
    uint32_t h = dup_hash(key, klen);
    for (size_t k = h & (t->cap - 1); t->v[k].h != 0; k = (k + 1) & (t->cap - 1)) {
        const dup_slot *s = &t->v[k];
        if (s->h == h && strcmp(key_of(ctx, s), key) == 0)
            return s->line;
    }
    return 0;
}
