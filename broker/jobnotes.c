/* jobnotes: a job's summary notes (jobnotes.h). */
#include "jobnotes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "summary.h"
#include "util.h"

int jobnotes_add(jobnotes *l, const char *msg)
{
    if (array_grow(&l->v, &l->cap, l->n + 1, sizeof(*l->v), 4) < 0)
        return -1;
    l->v[l->n] = strdup(msg);
    if (l->v[l->n] == NULL)
        return -1;
    l->n++;
    return 0;
}

int jobnotes_warn(jobnotes *l, const char *msg)
{
    size_t n = strlen(SUMMARY_WARNING) + strlen(msg) + 1;
    char *w = malloc(n);
    if (w == NULL)
        return -1;
    snprintf(w, n, "%s%s", SUMMARY_WARNING, msg);
    int rc = jobnotes_add(l, w);
    free(w);
    return rc;
}

int jobnotes_warned(const jobnotes *l)
{
    for (size_t i = 0; i < l->n; i++)
        if (summary_note_is_warning(l->v[i]))
            return 1;
    return 0;
}

void jobnotes_free(jobnotes *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}
