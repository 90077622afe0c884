/* profile_keys: what each key of a profile is (settings, rule keys,
 * field_, field_type_, map_), and pass 1 that reads the plain settings
 * (see profile_keys.h and docs/PROFILE.md §2). */
#include "profile_keys.h"

#include <stdlib.h>
#include <string.h>

#include "profile_int.h"
#include "profile_text.h"

/* The settings table: every plain key, its kind and bounds. */
enum skind { SK_STR, SK_BOOL, SK_INT };
static const struct {
    const char *key;
    enum kclass cls;
    enum skind kind;
    long min, max;
} settings[] = {
    {"CsvTextEncoding", K_ENCODING, SK_STR, 0, 0},
    {"MatchUsingDistrictID", K_MATCH_DID, SK_BOOL, 0, 1},
    {"InputRowsToSkip", K_ROWS_SKIP, SK_INT, 0, MAX_ROWS_TO_SKIP},
    {"SiteShortNameDefault", K_SITE_DEFAULT, SK_STR, 0, 0},
    {"UpdateBeforeDelete", K_UPDATE_BEFORE_DELETE, SK_BOOL, 0, 1},
    {"field_type_total", K_TYPE_TOTAL, SK_INT, 0, MAX_COLUMN},
};

static const struct {
    const char *mode, *max, *when;
} rule_keys[3] = {
    [PR_SKIP] = {"SkipMode", "SkipMax", "SkipWhen_"},
    [PR_DELETE] = {"DeleteMode", "DeleteMax", "DeleteWhen_"},
    [PR_ASSOCIATION] = {"AssociationMode", "AssociationMax", "AssociationWhen_"},
};

/* Sort the line's key into its class (and arguments). K_ERROR: message set. */
static enum kclass classify(pctx *c, entry *e)
{
    const char *k = e->key;
    size_t n = e->keylen;
    long v;
    for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++)
        if (txt_ci_eq(k, n, settings[i].key))
            return settings[i].cls;
    for (int r = 0; r < 3; r++) {
        if (txt_ci_eq(k, n, rule_keys[r].mode)) {
            e->a = r;
            return K_MODE;
        }
        if (txt_ci_eq(k, n, rule_keys[r].max)) {
            e->a = r;
            return K_MAX;
        }
        size_t wl = strlen(rule_keys[r].when);
        if (txt_ci_prefix(k, n, rule_keys[r].when)) {
            if (txt_int(txt_slice(k + wl, n - wl), 1, MAX_RULE_N, &v) != 0) {
                pctx_err(c, e->line, e->text, "rule number must be 1..%d", MAX_RULE_N);
                return K_ERROR;
            }
            e->a = r;
            e->b = (int)v;
            return K_WHEN;
        }
    }
    if (txt_ci_prefix(k, n, "field_type_")) {
        if (txt_int(txt_slice(k + 11, n - 11), 1, MAX_COLUMN, &v) != 0) {
            pctx_err(c, e->line, e->text, "column number in field_type_<n> must be 1..%d", MAX_COLUMN);
            return K_ERROR;
        }
        e->a = (int)v;
        return K_TYPE_COL;
    }
    if (txt_ci_prefix(k, n, "field_")) {
        int f = patron_field_lookup(k + 6, n - 6);
        if (f < 0) {
            pctx_err(c, e->line, e->text, "unknown patron field '%.*s'", (int)(n - 6), k + 6);
            return K_ERROR;
        }
        e->a = f;
        return K_FIELD;
    }
    if (txt_ci_prefix(k, n, "map_")) {
        const char *u = memchr(k + 4, '_', n - 4);
        if (u == NULL || u == k + 4) {
            pctx_err(c, e->line, e->text, "a map key is map_<name>_<value> or map_<name>_default");
            return K_ERROR;
        }
        return K_MAP;
    }
    pctx_err(c, e->line, e->text, "unknown key");
    return K_ERROR;
}

static int parse_bool(slice s, int *out)
{
    if (txt_ci_eq(s.p, s.len, "true")) {
        *out = 1;
        return 0;
    }
    if (txt_ci_eq(s.p, s.len, "false")) {
        *out = 0;
        return 0;
    }
    return -1;
}

static int set_str(char **dst, slice v)
{
    char *d = txt_dup(v.p, v.len);
    if (d == NULL)
        return -1;
    free(*dst);
    *dst = d;
    return 0;
}

const char *keys_rule_max(enum profile_rule which)
{
    return rule_keys[which].max;
}

/* SkipMode=... or SkipMax=... (and the other kinds). */
static int set_mode_max(pctx *c, const entry *e, slice v)
{
    profile *p = c->p;
    if (e->cls == K_MODE) {
        if (v.len == 0)
            return 0; /* empty: the default (or) */
        if (txt_ci_eq(v.p, v.len, "and"))
            p->rules[e->a].mode_and = 1;
        else if (txt_ci_eq(v.p, v.len, "or"))
            p->rules[e->a].mode_and = 0;
        else {
            pctx_err(c, e->line, e->text, "mode must be 'and' or 'or'");
            return -1;
        }
        return 0;
    }
    long m;
    if (v.len == 0) {
        p->rules[e->a].max = -1;
        return 0;
    }
    if (txt_int(v, 0, MAX_RULE_N, &m) != 0) {
        pctx_err(c, e->line, e->text, "must be a whole number 0..%d", MAX_RULE_N);
        return -1;
    }
    p->rules[e->a].max = m;
    return 0;
}

/* A plain setting, settings[si]. */
static int set_plain(pctx *c, const entry *e, size_t si, slice v)
{
    profile *p = c->p;
    if (settings[si].kind == SK_STR) {
        char **dst = e->cls == K_ENCODING ? &p->encoding : &p->site_default;
        if (e->cls == K_ENCODING && v.len == 0) {
            free(*dst);
            *dst = NULL; /* empty: the default */
            return 0;
        }
        if (set_str(dst, v) != 0)
            return pctx_oom(c);
        return 0;
    }
    if (v.len == 0) {
        /* an empty value (generated files write them) keeps the default */
        if (e->cls == K_MATCH_DID)
            p->match_district_id = 1;
        else if (e->cls == K_UPDATE_BEFORE_DELETE)
            p->update_before_delete = 0;
        else if (e->cls == K_ROWS_SKIP)
            p->rows_to_skip = 0;
        else if (e->cls == K_TYPE_TOTAL)
            p->column_total = 0;
        return 0;
    }
    if (settings[si].kind == SK_BOOL) {
        int b;
        if (parse_bool(v, &b) != 0) {
            pctx_err(c, e->line, e->text, "must be true or false");
            return -1;
        }
        if (e->cls == K_MATCH_DID)
            p->match_district_id = b;
        else
            p->update_before_delete = b;
        return 0;
    }
    long n;
    if (txt_int(v, settings[si].min, settings[si].max, &n) != 0) {
        pctx_err(c, e->line, e->text, "must be a whole number %ld..%ld", settings[si].min, settings[si].max);
        return -1;
    }
    if (e->cls == K_ROWS_SKIP)
        p->rows_to_skip = (int)n;
    else
        p->column_total = (int)n;
    return 0;
}

int keys_pass_settings(pctx *c)
{
    for (size_t i = 0; i < c->n; i++) {
        entry *e = &c->ents[i];
        e->cls = classify(c, e);
        if (e->cls == K_ERROR)
            return -1;
        slice v = txt_slice(e->val, e->vallen);
        if (e->cls == K_MODE || e->cls == K_MAX) {
            if (set_mode_max(c, e, v) != 0)
                return -1;
            continue;
        }
        size_t si;
        for (si = 0; si < sizeof(settings) / sizeof(settings[0]); si++)
            if (settings[si].cls == e->cls)
                break;
        if (si == sizeof(settings) / sizeof(settings[0]))
            continue; /* not a plain setting: later passes */
        if (set_plain(c, e, si, v) != 0)
            return -1;
    }
    return 0;
}
