/* jobnotes: the job-level notes of a job's summary (a BOM, an encoding
 * that contradicts it, an incremental run's saving ...), apart from the
 * record notes (duplicates, unreadable lines) that go to the workers. */
#ifndef BROKER_JOBNOTES_H
#define BROKER_JOBNOTES_H

#include <stddef.h>

/* v: owned strings, in the order added. */
typedef struct {
    char **v;
    size_t n, cap;
} jobnotes;

/* Add a note (a copy of msg). 0 / -1 (no memory). */
int jobnotes_add(jobnotes *l, const char *msg);
/* Add a warning: a note beginning SUMMARY_WARNING (summary.h). A job with
 * one ends complete_with_errors (docs/INPUT.md). 0 / -1 (no memory). */
int jobnotes_warn(jobnotes *l, const char *msg);
/* Whether the notes hold a warning. */
int jobnotes_warned(const jobnotes *l);
/* Free every note (NULL-safe, the list left empty). */
void jobnotes_free(jobnotes *l);

#endif
