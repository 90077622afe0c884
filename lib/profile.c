/* profile: a Destiny PIC .properties file parsed once into a compiled,
 * read-only form, and CSV records mapped to patron records through it.
 * This file is the public contract's front (profile.h) and the passes that
 * turn the file's lines into the compiled form:
 *   profile_props   the .properties reader      profile_keys   key classes, pass 1
 *   profile_expr    expressions (parse, eval)   profile_regex  regex()
 *   profile_maps    map_ tables                 profile_dates  date patterns
 *   profile_rules   When_N rules                profile_ctx    the parse context
 *   profile_text    shared text helpers         profile_scratch evaluation space */
#include "profile.h"

#include <stdalign.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profile_ctx.h"
#include "profile_int.h"
#include "profile_keys.h"
#include "profile_scratch.h"
#include "profile_text.h"
#include "util.h"

#define SCRATCH_BYTES 8192 /* per-call evaluation space kept on the stack */
#define PROFILE_FILE_MAX (16u << 20)
#define DEFAULT_ENCODING "windows-1252"

void profile_destroy(profile **pp)
{
    if (pp == NULL || *pp == NULL)
        return;
    profile *p = *pp;
    free(p->encoding);
    free(p->site_default);
    for (int k = 0; k < 3; k++)
        prule_free(&p->rules[k]);
    for (int f = 0; f < PF__COUNT; f++)
        expr_free(p->fields[f]);
    for (int i = 0; i < p->ncoltypes; i++)
        dp_free(p->coltypes[i].pat);
    free(p->coltypes);
    for (int m = 0; m < p->maps.n; m++) {
        pmap *mp = &p->maps.v[m];
        for (size_t i = 0; i < mp->n; i++)
            expr_free(mp->ents[i].val);
        expr_free(mp->def);
    }
    maps_free(&p->maps);
    for (int i = 0; i < DP_NDEFAULT; i++)
        dp_free(p->defaults[i]);
    free(p);
    *pp = NULL;
}

/* ---------------------------------------------------------------- pass 2: column types and maps */

static int coltypes_grow(profile *p, int col)
{
    if (col <= p->ncoltypes)
        return 0;
    coltype *nc = realloc(p->coltypes, (size_t)col * sizeof(*nc));
    if (nc == NULL)
        return -1;
    memset(nc + p->ncoltypes, 0, (size_t)(col - p->ncoltypes) * sizeof(*nc));
    p->coltypes = nc;
    p->ncoltypes = col;
    return 0;
}

/* field_type_<n>=string | date | date,<pattern> (entry i). */
static int type_col(pctx *c, const entry *e, size_t i)
{
    profile *p = c->p;
    int col = e->a;
    if (p->column_total > 0 && col > p->column_total) {
        pctx_err(c, e->line, e->text, "column %d is beyond field_type_total=%d", col, p->column_total);
        return -1;
    }
    if (coltypes_grow(p, col) != 0)
        return pctx_oom(c);
    coltype *ct = &p->coltypes[col - 1];
    dp_free(ct->pat);
    memset(ct, 0, sizeof(*ct));
    ct->declared = 1;
    ct->entry = (int)i;
    slice v = txt_slice(e->val, e->vallen);
    if (v.len == 0 || txt_ci_eq(v.p, v.len, "string"))
        return 0;
    if (txt_ci_eq(v.p, v.len, "date")) {
        ct->is_date = 1;
        return 0;
    }
    slice rest = txt_ci_prefix(v.p, v.len, "date") ? txt_trim(txt_slice(v.p + 4, v.len - 4)) : txt_slice(NULL, 0);
    if (rest.len > 0 && rest.p[0] == ',') {
        slice pat = txt_trim(txt_slice(rest.p + 1, rest.len - 1));
        const char *why;
        ct->is_date = 1;
        if (pat.len == 0)
            return 0;
        ct->pat = dp_compile(pat, &why);
        if (ct->pat == NULL) {
            if (why == NULL)
                return pctx_oom(c);
            pctx_err(c, e->line, e->text, "%s", why);
            return -1;
        }
        return 0;
    }
    pctx_err(c, e->line, e->text, "a column type is 'string' or 'date,<pattern>'");
    return -1;
}

/* map_<name>_<value> (entry i): the map made or found, the entry added. */
static int map_line(pctx *c, entry *e, size_t i)
{
    profile *p = c->p;
    const char *name = e->key + 4;
    const char *u = memchr(name, '_', e->keylen - 4);
    size_t nl = (size_t)(u - name);
    const char *val = u + 1;
    size_t vl = e->keylen - 4 - nl - 1;
    int m = maps_find(&p->maps, name, nl);
    if (m < 0)
        m = maps_add(&p->maps, name, nl);
    if (m < 0)
        return pctx_oom(c);
    e->map = m;
    if (txt_ci_eq(val, vl, "default")) {
        p->maps.v[m].def_entry = (int)i;
        e->ment = -1;
        return 0;
    }
    int me = map_add_ent(&p->maps.v[m], val, vl, (int)i);
    if (me < 0)
        return pctx_oom(c);
    e->ment = me;
    return 0;
}

/* Pass 2: column types, and the maps with their values (not compiled yet,
 * so that an expression may use a map defined further down). */
static int pass_types_maps(pctx *c)
{
    for (size_t i = 0; i < c->n; i++) {
        entry *e = &c->ents[i];
        if (e->cls == K_TYPE_COL && type_col(c, e, i) != 0)
            return -1;
        if (e->cls == K_MAP && map_line(c, e, i) != 0)
            return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- pass 3: expressions and rules */

/* Compile an expression (a field's or a map value's). NULL with the
 * message set for entry e. */
static expr *compile_expr(pctx *c, const entry *e, slice s, int in_map)
{
    char why[384];
    expr_scope scope = {&c->p->maps, c->p->column_total, in_map};
    expr *ex = expr_compile(s, &scope, why, sizeof(why));
    if (ex == NULL)
        pctx_err(c, e->line, e->text, "%s", why);
    return ex;
}

/* Pass 3: field expressions, map values, rules. */
static int pass_compile(pctx *c)
{
    profile *p = c->p;
    for (size_t i = 0; i < c->n; i++) {
        entry *e = &c->ents[i];
        slice v = txt_slice(e->val, e->vallen);
        if (e->cls == K_FIELD) {
            int f = e->a;
            expr_free(p->fields[f]);
            p->fields[f] = NULL;
            if (v.len == 0)
                continue; /* field_x= : the field is not mapped */
            p->fields[f] = compile_expr(c, e, v, 0);
            if (p->fields[f] == NULL)
                return -1;
            p->field_entry[f] = (int)i;
        } else if (e->cls == K_MAP) {
            expr *x = compile_expr(c, e, v, 1);
            if (x == NULL)
                return -1;
            pmap *m = &p->maps.v[e->map];
            if (e->ment < 0) {
                expr_free(m->def);
                m->def = x;
            } else {
                m->ents[e->ment].val = x;
            }
        } else if (e->cls == K_WHEN) {
            if (prule_add(c, e) != 0)
                return -1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- pass 4: cycles, columns, dates */

static int visit_map(pctx *c, int mi, const entry *from);

/* Walking one expression's maps: the highest column they reach. */
typedef struct {
    pctx *c;
    const entry *from;
    int mc;
} reach;

static int reach_map(void *ctx, int map)
{
    reach *r = ctx;
    if (visit_map(r->c, map, r->from) != 0)
        return -1;
    if (r->c->p->maps.v[map].max_col > r->mc)
        r->mc = r->c->p->maps.v[map].max_col;
    return 0;
}

/* Check the maps x uses (visiting them first) and return the highest column
 * x reaches, through its maps too; -1 on a cycle (message set). */
static int expr_reach(pctx *c, const expr *x, const entry *from)
{
    reach r = {c, from, expr_facts(x).max_col};
    if (expr_each_map(x, reach_map, &r) != 0)
        return -1;
    return r.mc;
}

/* Depth-first over map values: a map reached again while on the path is a
 * cycle (evaluation would never end). */
static int visit_map(pctx *c, int mi, const entry *from)
{
    pmap *m = &c->p->maps.v[mi];
    if (m->state == 2)
        return 0;
    if (m->state == 1) {
        pctx_err(c, from->line, from->text, "map '%s' refers back to itself through map values", m->name);
        return -1;
    }
    m->state = 1;
    int mc = 0;
    for (size_t i = 0; i <= m->n; i++) {
        const expr *x = i < m->n ? m->ents[i].val : m->def;
        int ei = i < m->n ? m->ents[i].entry : m->def_entry;
        if (x == NULL)
            continue;
        int a = expr_reach(c, x, &c->ents[ei]);
        if (a < 0)
            return -1;
        if (a > mc)
            mc = a;
    }
    m->max_col = mc;
    m->state = 2;
    return 0;
}

/* Field f's columns, and its date pattern when its first column is typed
 * with one. */
static int check_field(pctx *c, int f)
{
    profile *p = c->p;
    const expr *x = p->fields[f];
    int mc = expr_reach(c, x, &c->ents[p->field_entry[f]]);
    if (mc < 0)
        return -1;
    p->field_max_column[f] = mc;
    if (mc > p->max_column)
        p->max_column = mc;
    int first = expr_facts(x).first_col;
    if (patron_fields[f].kind != PK_DATE || first == 0 || first > p->ncoltypes)
        return 0;
    const coltype *ct = &p->coltypes[first - 1];
    if (!ct->is_date || ct->pat == NULL)
        return 0;
    if (!dp_has_year_month(ct->pat)) {
        const entry *te = &c->ents[ct->entry];
        pctx_err(c, te->line, te->text, "the date pattern of column %d (used by field_%s) has no year or month",
                 first, patron_fields[f].pic);
        return -1;
    }
    p->field_pat[f] = ct->pat;
    return 0;
}

/* Pass 4: map tables, cycles, the highest column, date fields. */
static int pass_check(pctx *c)
{
    profile *p = c->p;
    for (int m = 0; m < p->maps.n; m++)
        if (map_build(&p->maps.v[m]) != 0)
            return pctx_oom(c);
    for (int m = 0; m < p->maps.n; m++) {
        pmap *mp = &p->maps.v[m];
        int ei = mp->n > 0 ? mp->ents[0].entry : mp->def_entry;
        if (visit_map(c, m, &c->ents[ei]) != 0)
            return -1;
    }
    for (int f = 0; f < PF__COUNT; f++)
        if (p->fields[f] != NULL && check_field(c, f) != 0)
            return -1;
    if (dp_defaults(p->defaults) != 0)
        return pctx_oom(c);
    if (p->encoding == NULL)
        p->encoding = txt_dup(DEFAULT_ENCODING, strlen(DEFAULT_ENCODING));
    if (p->site_default == NULL)
        p->site_default = txt_dup("", 0);
    if (p->encoding == NULL || p->site_default == NULL)
        return pctx_oom(c);
    return 0;
}

profile *profile_parse(const char *text, size_t len, const char *name, char *err, size_t errlen)
{
    pctx c;
    memset(&c, 0, sizeof(c));
    c.name = name ? name : "profile";
    c.err = err;
    c.errlen = errlen;
    c.p = calloc(1, sizeof(profile));
    if (c.p == NULL) {
        pctx_oom(&c);
        return NULL;
    }
    c.p->match_district_id = 1;
    for (int k = 0; k < 3; k++)
        c.p->rules[k].max = -1;
    if (text == NULL)
        len = 0;
    if (pctx_read(&c, text ? text : "", len) != 0 || keys_pass_settings(&c) != 0 || pass_types_maps(&c) != 0 ||
        pass_compile(&c) != 0 || pass_check(&c) != 0) {
        pctx_free(&c);
        profile_destroy(&c.p);
        return NULL;
    }
    pctx_free(&c);
    return c.p;
}

profile *profile_load(const char *path, char *err, size_t errlen)
{
    size_t len = 0;
    char *text = file_read_all(path, PROFILE_FILE_MAX, &len, err, errlen);
    if (text == NULL)
        return NULL;
    profile *p = profile_parse(text, len, path, err, errlen);
    free(text);
    return p;
}

/* ---------------------------------------------------------------- settings */

const char *profile_encoding(const profile *p)
{
    return p->encoding;
}

int profile_match_district_id(const profile *p)
{
    return p->match_district_id;
}

int profile_rows_to_skip(const profile *p)
{
    return p->rows_to_skip;
}

const char *profile_site_default(const profile *p)
{
    return p->site_default;
}

int profile_update_before_delete(const profile *p)
{
    return p->update_before_delete;
}

int profile_max_column(const profile *p)
{
    return p->max_column;
}

int profile_column_total(const profile *p)
{
    return p->column_total;
}

int profile_maps_field(const profile *p, int f)
{
    return f >= 0 && f < PF__COUNT && p->fields[f] != NULL;
}

int profile_field_max_column(const profile *p, int f)
{
    return f >= 0 && f < PF__COUNT && p->fields[f] != NULL ? p->field_max_column[f] : 0;
}

typedef struct {
    void (*fn)(void *ctx, const char *where, const char *pattern, const char *why);
    void *ctx;
    char where[80];
    int n;
} risk_walk;

static int risk_one(void *ctx, const rx *re)
{
    risk_walk *w = ctx;
    if (rx_risk(re) != NULL) {
        w->fn(w->ctx, w->where, rx_pattern(re), rx_risk(re));
        w->n++;
    }
    return 0;
}

int profile_regex_risks(const profile *p, void (*fn)(void *ctx, const char *where, const char *pattern,
                                                     const char *why),
                        void *ctx)
{
    risk_walk w = {fn, ctx, "", 0};
    for (int f = 0; f < PF__COUNT; f++) {
        if (p->fields[f] == NULL)
            continue;
        snprintf(w.where, sizeof(w.where), "field_%s", patron_fields[f].pic);
        expr_each_regex(p->fields[f], risk_one, &w);
    }
    for (int m = 0; m < p->maps.n; m++) {
        const pmap *pm = &p->maps.v[m];
        snprintf(w.where, sizeof(w.where), "map_%s", pm->name);
        for (size_t i = 0; i < pm->n; i++)
            expr_each_regex(pm->ents[i].val, risk_one, &w);
        if (pm->def != NULL)
            expr_each_regex(pm->def, risk_one, &w);
    }
    return w.n;
}

/* ---------------------------------------------------------------- mapping a record */

static int map_one(const profile *p, int f, const prow *r, scratch *sc, patron_rec *rec, char *err, size_t errlen)
{
    const expr *e = p->fields[f];
    slice v;
    int rc;
    if (expr_eval(&p->maps, e, r, sc, &v, err, errlen) != 0) {
        err_prefix(err, errlen, "field_%s: ", patron_fields[f].pic);
        return -1;
    }
    v = txt_trim(v);
    if (v.len == 0) {
        rc = patron_rec_set(rec, f, "", 0, expr_facts(e).omit ? PV_OMIT : PV_VALUE);
    } else if (patron_fields[f].kind == PK_DATE) {
        char d[11];
        if (dp_canon(p->defaults, p->field_pat[f], v, d) == 0)
            rc = patron_rec_set(rec, f, d, 10, PV_VALUE);
        else
            rc = patron_rec_set(rec, f, v.p, v.len, PV_INVALID);
    } else {
        rc = patron_rec_set(rec, f, v.p, v.len, PV_VALUE);
    }
    if (rc != 0)
        return sc_oom(err, errlen);
    return 0;
}

int profile_map(const profile *p, const char *const *cols, const size_t *lens, size_t ncols, patron_rec *rec,
                char *err, size_t errlen)
{
    alignas(max_align_t) char stack[SCRATCH_BYTES];
    scratch sc;
    prow r = {cols, lens, ncols};
    patron_rec_reset(rec);
    sc_init(&sc, stack, sizeof(stack));
    for (int f = 0; f < PF__COUNT; f++) {
        if (p->fields[f] == NULL)
            continue;
        if (map_one(p, f, &r, &sc, rec, err, errlen) != 0) {
            sc_reset(&sc);
            return -1;
        }
        sc_reset(&sc);
    }
    return 0;
}

int profile_map_field(const profile *p, int f, const char *const *cols, const size_t *lens, size_t ncols,
                      patron_rec *rec, char *err, size_t errlen)
{
    if (f < 0 || f >= PF__COUNT) {
        err_set(err, errlen, "no patron field %d", f);
        return -1;
    }
    if (p->fields[f] == NULL) {
        if (patron_rec_set(rec, f, "", 0, PV_UNSET) != 0)
            return sc_oom(err, errlen);
        return 0;
    }
    alignas(max_align_t) char stack[SCRATCH_BYTES];
    scratch sc;
    prow r = {cols, lens, ncols};
    sc_init(&sc, stack, sizeof(stack));
    int rc = map_one(p, f, &r, &sc, rec, err, errlen);
    sc_reset(&sc);
    return rc;
}

int profile_explain_field(const profile *p, int f, strbuf *out)
{
    const expr *x = p->fields[f];
    if (x == NULL)
        return 0;
    expr_describe(&p->maps, x, out);
    if (p->field_pat[f] != NULL)
        sb_printf(out, ", read as a date %s", dp_source(p->field_pat[f]));
    else if (patron_fields[f].kind == PK_DATE)
        sb_puts(out, ", read as a date yyyy-MM-dd, MM/dd/yyyy or yyyyMMdd");
    sb_puts(out, ", trimmed");
    if (expr_facts(x).omit)
        sb_puts(out, ", left unchanged when empty");
    else if (expr_single_ref(x))
        sb_puts(out, ", an empty value clears it");
    return out->buf == NULL ? -1 : 1;
}

int profile_explain_rules(const profile *p, enum profile_rule which, strbuf *out)
{
    static const char *const kinds[] = {"SkipWhen", "DeleteWhen", "AssociationWhen"};
    const ruleset *rs = &p->rules[which];
    for (int i = 0; i < rs->n; i++) {
        const rule *r = &rs->r[i];
        sb_printf(out, "%s_%d: when ", kinds[which], r->n);
        if (r->field >= 0)
            sb_printf(out, "%s (as mapped)", patron_fields[r->field].label);
        else
            sb_printf(out, "column %d", r->col);
        if (r->vlen == 0)
            sb_puts(out, " is blank\n");
        else {
            sb_puts(out, " is \"");
            sb_append(out, r->val, r->vlen);
            sb_puts(out, "\" (any case)\n");
        }
    }
    return out->buf == NULL ? -1 : rs->n;
}
