/* profile_int: the compiled profile as the profile modules share it, and the
 * bounds of the format. Internal to lib/profile*; callers use profile.h. */
#ifndef PROFILE_INT_H
#define PROFILE_INT_H

#include "patron.h"
#include "profile.h"
#include "profile_dates.h"
#include "profile_expr.h"
#include "profile_maps.h"
#include "profile_rules.h"

#define MAX_COLUMN 65535 /* highest column number accepted in {n} and field_type_<n> */
#define MAX_RULE_N 100000 /* highest N in SkipWhen_N / *Max */
#define MAX_ROWS_TO_SKIP 1000000000

typedef struct {
    int declared; /* field_type_<col> given */
    int is_date;
    date_pat *pat; /* NULL for "date" without a pattern: the default forms */
    int entry;
} coltype;

struct profile {
    char *encoding;
    char *site_default;
    int match_district_id;
    int rows_to_skip;
    int update_before_delete;
    int column_total;
    int max_column;
    int field_max_column[PF__COUNT]; /* the last column each field's mapping reads */
    ruleset rules[3];
    expr *fields[PF__COUNT];
    const date_pat *field_pat[PF__COUNT]; /* date fields from a typed column */
    int field_entry[PF__COUNT];
    coltype *coltypes; /* index col-1 */
    int ncoltypes;
    map_list maps;
    date_pat *defaults[DP_NDEFAULT]; /* the forms an untyped date may take */
};

#endif
