/* profile_scratch: per-field evaluation space (see profile_scratch.h). */
#include "profile_scratch.h"

#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct sc_chunk {
    struct sc_chunk *next;
    size_t cap;
    max_align_t pad[]; /* data follows, aligned */
};

#define SC_ALIGN alignof(max_align_t)

void sc_init(scratch *s, char *stack, size_t cap)
{
    s->base = stack;
    s->used = 0;
    s->cap = cap;
    s->chunks = NULL;
    s->stack = stack;
    s->stack_cap = cap;
}

void sc_reset(scratch *s)
{
    while (s->chunks) {
        sc_chunk *n = s->chunks->next;
        free(s->chunks);
        s->chunks = n;
    }
    s->base = s->stack;
    s->used = 0;
    s->cap = s->stack_cap;
}

void *sc_alloc(scratch *s, size_t n)
{
    size_t off = (s->used + SC_ALIGN - 1) & ~(SC_ALIGN - 1);
    if (off <= s->cap && n <= s->cap - off) {
        s->used = off + n;
        return s->base + off;
    }
    size_t cap = s->cap * 2;
    if (cap < n)
        cap = n;
    if (n > SIZE_MAX / 2 - sizeof(sc_chunk))
        return NULL;
    sc_chunk *c = malloc(sizeof(sc_chunk) + cap);
    if (c == NULL)
        return NULL;
    c->next = s->chunks;
    c->cap = cap;
    s->chunks = c;
    s->base = (char *)c->pad;
    s->cap = cap;
    s->used = n;
    return s->base;
}

int sc_put(scratch *s, sc_str *b, const char *d, size_t n)
{
    if (b->cap - b->len < n) {
        size_t cap = b->cap * 2 + n + 64;
        char *q = sc_alloc(s, cap);
        if (q == NULL)
            return -1;
        if (b->len > 0)
            memcpy(q, b->p, b->len);
        b->p = q;
        b->cap = cap;
    }
    if (n > 0)
        memcpy(b->p + b->len, d, n);
    b->len += n;
    return 0;
}

int sc_oom(char *err, size_t errlen)
{
    err_set(err, errlen, "out of memory mapping a record");
    return -1;
}
