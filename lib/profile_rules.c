/* profile_rules: the When_N rules, read and matched (see profile_rules.h
 * and docs/PROFILE.md §5). */
#include "profile_rules.h"

#include <stdlib.h>
#include <string.h>

#include "profile_expr.h"
#include "profile_int.h"
#include "profile_keys.h"
#include "profile_text.h"
#include "util.h"

int prule_add(pctx *c, const entry *e)
{
    profile *p = c->p;
    ruleset *rs = &p->rules[e->a];
    int n = e->b;
    slice v = txt_slice(e->val, e->vallen);
    if (v.len > 0 && rs->max >= 0 && n > rs->max) {
        pctx_err(c, e->line, e->text, "rule number %d is above %s=%ld", n, keys_rule_max((enum profile_rule)e->a), rs->max);
        return -1;
    }
    /* a rule number given twice in different spellings (_7, _07): the later wins */
    for (int k = 0; k < rs->n; k++) {
        if (rs->r[k].n == n) {
            free(rs->r[k].val);
            memmove(&rs->r[k], &rs->r[k + 1], (size_t)(rs->n - k - 1) * sizeof(rule));
            rs->n--;
            break;
        }
    }
    if (v.len == 0)
        return 0; /* an empty rule is no rule */
    const char *comma = memchr(v.p, ',', v.len);
    if (comma == NULL) {
        pctx_err(c, e->line, e->text, "a rule is <field>,<value> (field_<name> or {n}; an empty value means blank)");
        return -1;
    }
    slice fld = txt_trim(txt_slice(v.p, (size_t)(comma - v.p)));
    slice val = txt_trim(txt_slice(comma + 1, v.len - (size_t)(comma - v.p) - 1));
    rule r;
    memset(&r, 0, sizeof(r));
    r.n = n;
    r.field = -1;
    if (fld.len >= 1 && fld.p[0] == '{') {
        long col;
        if (fld.len < 2 || fld.p[fld.len - 1] != '}' ||
            txt_int(txt_trim(txt_slice(fld.p + 1, fld.len - 2)), 1, MAX_COLUMN, &col) != 0) {
            pctx_err(c, e->line, e->text, "a rule's column is {n} with n 1..%d", MAX_COLUMN);
            return -1;
        }
        if (p->column_total > 0 && col > p->column_total) {
            pctx_err(c, e->line, e->text, "column {%ld} is beyond field_type_total=%d", col, p->column_total);
            return -1;
        }
        r.col = (int)col;
        if (r.col > p->max_column)
            p->max_column = r.col;
    } else {
        slice nm = fld;
        if (txt_ci_prefix(nm.p, nm.len, "field_")) {
            nm.p += 6;
            nm.len -= 6;
        }
        r.field = nm.len ? patron_field_lookup(nm.p, nm.len) : -1;
        if (r.field < 0) {
            pctx_err(c, e->line, e->text, "a rule's field is field_<patron field> or {n}");
            return -1;
        }
    }
    r.val = txt_dup(val.p, val.len);
    if (r.val == NULL)
        return pctx_oom(c);
    r.vlen = val.len;
    if (array_grow(&rs->r, &rs->cap, (size_t)rs->n + 1, sizeof(*rs->r), 4) != 0) {
        free(r.val);
        return pctx_oom(c);
    }
    int k = rs->n;
    while (k > 0 && rs->r[k - 1].n > n) {
        rs->r[k] = rs->r[k - 1];
        k--;
    }
    rs->r[k] = r;
    rs->n++;
    return 0;
}

void prule_free(ruleset *rs)
{
    for (int i = 0; i < rs->n; i++)
        free(rs->r[i].val);
    free(rs->r);
}

int profile_rule_count(const profile *p, enum profile_rule which)
{
    if ((int)which < 0 || (int)which > 2)
        return 0;
    return p->rules[which].n;
}

int profile_rule_max_column(const profile *p, enum profile_rule which)
{
    if ((int)which < 0 || (int)which > 2)
        return 0;
    int m = 0;
    for (int i = 0; i < p->rules[which].n; i++)
        if (p->rules[which].r[i].field < 0 && p->rules[which].r[i].col > m)
            m = p->rules[which].r[i].col;
    return m;
}

int profile_rule_columns_only(const profile *p, enum profile_rule which)
{
    if ((int)which < 0 || (int)which > 2)
        return 0;
    for (int i = 0; i < p->rules[which].n; i++)
        if (p->rules[which].r[i].field >= 0)
            return 0;
    return 1;
}

int profile_rule_mode_and(const profile *p, enum profile_rule which)
{
    if ((int)which < 0 || (int)which > 2)
        return 0;
    return p->rules[which].mode_and;
}

int profile_rule_matches(const profile *p, enum profile_rule which, const patron_rec *rec,
                         const char *const *cols, const size_t *lens, size_t ncols)
{
    if ((int)which < 0 || (int)which > 2)
        return 0;
    const ruleset *rs = &p->rules[which];
    if (rs->n == 0)
        return 0;
    prow r = {cols, lens, ncols};
    for (int i = 0; i < rs->n; i++) {
        const rule *ru = &rs->r[i];
        slice v;
        if (ru->field >= 0) {
            const char *s = rec ? patron_rec_get(rec, ru->field) : "";
            v = txt_trim(txt_slice(s, strlen(s)));
        } else {
            v = expr_col(&r, ru->col);
        }
        int hit = ru->vlen == 0 ? v.len == 0 : txt_fold_eq(v, txt_slice(ru->val, ru->vlen));
        if (rs->mode_and && !hit)
            return 0;
        if (!rs->mode_and && hit)
            return 1;
    }
    return rs->mode_and;
}
