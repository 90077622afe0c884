/* profile_expr: the expression language of field_ lines and map values
 * (docs/PROFILE.md §3) — its tree, the parser that builds it and the
 * evaluator that walks it. Internal to lib/profile*. */
#ifndef PROFILE_EXPR_H
#define PROFILE_EXPR_H

#include <stddef.h>

#include "profile_maps.h"
#include "profile_regex.h"
#include "profile_scratch.h"
#include "profile_text.h"
#include "util.h"

typedef struct expr expr;

/* What an expression may refer to while it is compiled. */
typedef struct {
    const map_list *maps; /* map_<name> options must name one of these */
    int column_total;     /* field_type_total (0: no bound on {n}) */
    int in_map;           /* a map value: omit is refused */
} expr_scope;

/* Compile s. A new expression the caller frees with expr_free, or NULL
 * with why set (the reason only; the caller names the line). */
expr *expr_compile(slice s, const expr_scope *scope, char *why, size_t whylen);
void expr_free(expr *e); /* NULL-safe */

/* What the parser found in an expression. */
typedef struct {
    int omit;      /* some reference carries omit */
    int first_col; /* first column referenced (reading order, ISEMPTY
                      arguments included, map values not), 0 if none */
    int max_col;   /* highest column referenced directly (maps not included) */
} expr_info;

expr_info expr_facts(const expr *e);
/* Call fn(ctx, map index) for each map_<name> option in e, ISEMPTY
 * arguments included, in reading order; stops at and returns the first
 * nonzero fn returns (0 when none). */
int expr_each_map(const expr *e, int (*fn)(void *ctx, int map), void *ctx);
/* The same for each regex() option. */
int expr_each_regex(const expr *e, int (*fn)(void *ctx, const rx *re), void *ctx);

/* e in words, appended to out: "column 9, through map_site (49 values;
 * any other value: kept as it is)", "always \"Student\"" (profile explain).
 * 0 / -1 (no memory). */
int expr_describe(const map_list *maps, const expr *e, strbuf *out);
/* 1 when e is one column reference ({n} with options), nothing around it. */
int expr_single_ref(const expr *e);

/* One record's columns (0-based: {1} is cols[0]). */
typedef struct {
    const char *const *cols;
    const size_t *lens;
    size_t ncols;
} prow;

/* Column col (1-based), trimmed; empty past the record's end. */
slice expr_col(const prow *r, int col);

/* Evaluate e on the record r; *out points into sc, the record or the
 * profile. 0 / -1 with err (no memory, a regex failing). */
int expr_eval(const map_list *maps, const expr *e, const prow *r, scratch *sc, slice *out, char *err,
              size_t errlen);

#endif
