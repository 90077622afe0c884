/* profile: a Destiny PIC .properties file, parsed once, and the mapping of
 * one CSV record to a patron record through it (see docs/PROFILE.md). */
#ifndef PROFILE_H
#define PROFILE_H

#include <stddef.h>

#include "patron.h"
#include "util.h"

typedef struct profile profile;

/* Parse properties text. `name` (the file name) is used in messages.
 * Returns a new profile the caller destroys, or NULL with err set to
 * "<name>:<line>: <text>: <why>" (unknown key, malformed expression, map
 * that does not exist, column beyond field_type_total, bad setting value). */
profile *profile_parse(const char *text, size_t len, const char *name, char *err, size_t errlen);
void profile_destroy(profile **p);
/* Read the file at path (at most 16 MiB) and parse it, the path naming it
 * in messages. NULL with err as profile_parse, or "cannot open ...". */
profile *profile_load(const char *path, char *err, size_t errlen);

/* Settings (pointers owned by the profile). */
const char *profile_encoding(const profile *p);      /* default "windows-1252" */
int profile_match_district_id(const profile *p);     /* default 1 */
int profile_rows_to_skip(const profile *p);          /* default 0 */
const char *profile_site_default(const profile *p);  /* "" when none */
int profile_update_before_delete(const profile *p);  /* default 0 */
/* Highest column the profile refers to (so a record with fewer columns can
 * be reported), and field_type_total (0 when not given). */
int profile_max_column(const profile *p);
int profile_column_total(const profile *p);
/* Whether field f has a field_ expression. */
int profile_maps_field(const profile *p, int f);

/* Each regex() of the profile whose pattern can blow up (a backreference,
 * nested repeats): fn(ctx, where, pattern, why), where is "field_lastName"
 * or "map_site". Matching stays bounded whatever this says (a value that
 * reaches the limits is an error on its record); this is the warning
 * `patronctl profile check` prints. The number of such patterns. */
int profile_regex_risks(const profile *p, void (*fn)(void *ctx, const char *where, const char *pattern,
                                                     const char *why),
                        void *ctx);

/* Map one record. cols[i]/lens[i] are the record's fields (0-based: {1} is
 * cols[0]); a reference past ncols reads as empty. Fills rec (reset first):
 * PV_VALUE for mapped fields, PV_OMIT for omit-and-empty, PV_INVALID for
 * date fields whose value does not parse (raw value kept), PV_UNSET for
 * unmapped fields. Dates come out canonical YYYY-MM-DD. 0 / -1 (no memory,
 * or a regex failing at run time, with err). */
int profile_map(const profile *p, const char *const *cols, const size_t *lens, size_t ncols,
                patron_rec *rec, char *err, size_t errlen);

/* Evaluate one field only (the broker uses this for the match key and the
 * barcode before sharding). Same states as profile_map. Only field f is
 * written (PV_UNSET when the profile does not map it); rec is not reset,
 * so several calls fill one record. */
int profile_map_field(const profile *p, int f, const char *const *cols, const size_t *lens,
                      size_t ncols, patron_rec *rec, char *err, size_t errlen);

/* Rules (SkipWhen / DeleteWhen / AssociationWhen), evaluated on the mapped
 * record and the raw columns: 1 when the record matches, 0 when not.
 * A field_<name> rule reads rec's value (a field not mapped or omitted reads
 * blank; a date reads canonical); a {n} rule reads column n, trimmed.
 * Values compare trimmed and without regard to case. rec may be NULL when
 * only {n} rules are used. */
enum profile_rule { PR_SKIP, PR_DELETE, PR_ASSOCIATION };
int profile_rule_matches(const profile *p, enum profile_rule which, const patron_rec *rec,
                         const char *const *cols, const size_t *lens, size_t ncols);
/* Number of When_N rules of that kind (0: the rule never matches). */
int profile_rule_count(const profile *p, enum profile_rule which);
/* The last column (1-based) field f's mapping reads, through its maps too
 * (0: not mapped, or from no column); the last column ({n}) that kind's
 * rules read (0: none). A reader of only these fields or rules needs no
 * column past them. */
int profile_field_max_column(const profile *p, int f);
int profile_rule_max_column(const profile *p, enum profile_rule which);
/* 1 when every rule of that kind reads a column ({n}), none a field: they
 * can be decided before the record is mapped (rec NULL). */
int profile_rule_columns_only(const profile *p, enum profile_rule which);
/* 1 when that kind's rules combine with `and` (every rule must match),
 * 0 for `or` (any rule), the default. */
int profile_rule_mode_and(const profile *p, enum profile_rule which);

/* In words, for `patronctl profile explain`: where field f's value comes
 * from, appended to out ("column 5, trimmed, left unchanged when empty";
 * maps with their size and default, date patterns, constants). 1 when the
 * field is mapped, 0 when not (nothing appended), -1 no memory. */
int profile_explain_field(const profile *p, int f, strbuf *out);
/* That kind's rules, one line each ("SkipWhen_1: when District ID (as
 * mapped) is blank"). How many, or -1 (no memory). */
int profile_explain_rules(const profile *p, enum profile_rule which, strbuf *out);

#endif
