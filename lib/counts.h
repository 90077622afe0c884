/* counts: a job's counts (Destiny's vocabulary plus patronsync's) as a
 * table of named fields of Patronsync__Counts, and summing them. */
#ifndef COUNTS_H
#define COUNTS_H

#include <stddef.h>
#include <stdint.h>

#include "patronsync.pb-c.h"

typedef struct {
    const char *name; /* JSON and Redis field name, e.g. "added_with_warnings" */
    size_t off;       /* offset of the uint64 in Patronsync__Counts */
} counts_field;

extern const counts_field counts_fields[];
extern const size_t counts_nfields;

uint64_t *counts_ptr(Patronsync__Counts *c, size_t i);
uint64_t counts_get(const Patronsync__Counts *c, size_t i);
void counts_add(Patronsync__Counts *dst, const Patronsync__Counts *src);

#endif
