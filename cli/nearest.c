/* nearest: the nearest word for "did you mean" hints. */
#include "nearest.h"

#include <stdio.h>
#include <string.h>

/* Edit distance with adjacent transpositions (optimal string alignment):
 * "jbos" is one from "jobs". Words past 63 bytes count as far. */
static size_t distance(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    if (n > 63 || m > 63)
        return 64;
    size_t d[64][64];
    for (size_t i = 0; i <= n; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= m; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= n; i++) {
        for (size_t j = 1; j <= m; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v)
                v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    }
    return d[n][m];
}

void nearest_init(nearest *n, const char *word)
{
    n->word = word;
    n->best = NULL;
    n->dist = (size_t)-1;
}

void nearest_try(nearest *n, const char *cand)
{
    size_t d = distance(n->word, cand);
    size_t len = strlen(n->word);
    /* Near enough: a slip of two, a third of the word, or its beginning. */
    int near = d <= 2 || d * 3 <= len || (len >= 3 && strncmp(cand, n->word, len) == 0);
    if (near && d < n->dist) {
        n->best = cand;
        n->dist = d;
    }
}

void nearest_hint(const nearest *n, char *out, size_t outlen)
{
    if (n->best)
        snprintf(out, outlen, "; did you mean '%s'?", n->best);
    else
        out[0] = '\0';
}
