/* profile_dates: date patterns (Java SimpleDateFormat, as docs/PROFILE.md §6
 * reads them) compiled once, and a value read with them into canonical
 * YYYY-MM-DD. Internal to lib/profile*. */
#ifndef PROFILE_DATES_H
#define PROFILE_DATES_H

#include "profile_text.h"

typedef struct date_pat date_pat;

/* Compile a pattern. A new pattern the caller frees with dp_free, or NULL
 * with *why set (NULL *why: no memory). */
date_pat *dp_compile(slice s, const char **why);
void dp_free(date_pat *d); /* NULL-safe */
/* The pattern as written. */
const char *dp_source(const date_pat *d);
/* 1 when the pattern reads a year and a month (what a date field needs). */
int dp_has_year_month(const date_pat *d);

/* The forms an untyped date may take (yyyy-M-d, M/d/yyyy, yyyyMMdd). */
#define DP_NDEFAULT 3
/* Compile them into d[0..DP_NDEFAULT) (each freed with dp_free, also after
 * a failure). 0 / -1 (no memory). */
int dp_defaults(date_pat *d[DP_NDEFAULT]);

/* A date field's value into out "YYYY-MM-DD": with pat when given (the
 * canonical form still accepted), else any of the defaults. 0 / -1 (not a
 * date). */
int dp_canon(date_pat *const defaults[DP_NDEFAULT], const date_pat *pat, slice v, char out[11]);

#endif
