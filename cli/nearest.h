/* nearest: the word nearest to one mistyped, for "did you mean" hints
 * (commands, sub-commands, options). */
#ifndef NEAREST_H
#define NEAREST_H

#include <stddef.h>

/* Keeps the nearest candidate seen that is near enough to suggest. */
typedef struct {
    const char *word;
    const char *best; /* NULL: none near enough */
    size_t dist;
} nearest;

void nearest_init(nearest *n, const char *word);
/* Consider cand (kept while n lives). */
void nearest_try(nearest *n, const char *cand);
/* "; did you mean 'X'?" or "". */
void nearest_hint(const nearest *n, char *out, size_t outlen);

#endif
