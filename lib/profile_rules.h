/* profile_rules: SkipWhen_N, DeleteWhen_N and AssociationWhen_N — each line
 * read into a rule, and a record matched against a kind's rules (the
 * profile_rule_* functions of profile.h). Internal to lib/profile*. */
#ifndef PROFILE_RULES_H
#define PROFILE_RULES_H

#include <stddef.h>

#include "profile_ctx.h"

typedef struct {
    int n;
    int field; /* patron field, or -1 for a column */
    int col;
    char *val;
    size_t vlen;
} rule;

/* One kind's rules, in order of N. */
typedef struct {
    rule *r;
    int n;
    size_t cap;
    int mode_and;
    long max; /* -1: not given */
} ruleset;

/* Pass 3: the rule line e into its kind's set (a rule number given again
 * replaces it; an empty value removes it). 0 / -1 with the message set. */
int prule_add(pctx *c, const entry *e);
void prule_free(ruleset *rs);

#endif
