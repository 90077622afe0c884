/* profile_scratch: the evaluation space of one field — a stack buffer first,
 * heap chunks only when a value does not fit — and a growing string in it.
 * Internal to lib/profile*. */
#ifndef PROFILE_SCRATCH_H
#define PROFILE_SCRATCH_H

#include <stddef.h>

typedef struct sc_chunk sc_chunk;

typedef struct {
    char *base;
    size_t used, cap;
    sc_chunk *chunks;
    char *stack;
    size_t stack_cap;
} scratch;

/* Start on the caller's buffer stack[0..cap) (aligned for max_align_t). */
void sc_init(scratch *s, char *stack, size_t cap);
/* Free the heap chunks; every pointer sc_alloc gave is invalid after. */
void sc_reset(scratch *s);
/* n bytes, aligned, valid until sc_reset; NULL: no memory. */
void *sc_alloc(scratch *s, size_t n);

/* A growing string in scratch space (p NULL while empty). */
typedef struct {
    char *p;
    size_t len, cap;
} sc_str;

/* Append d[0..n) to b. 0 / -1 (no memory). */
int sc_put(scratch *s, sc_str *b, const char *d, size_t n);

/* err = "out of memory mapping a record"; returns -1. */
int sc_oom(char *err, size_t errlen);

#endif
