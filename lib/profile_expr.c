/* profile_expr: the expression tree, its parser and its evaluator (see
 * profile_expr.h and docs/PROFILE.md §3). */
#include "profile_expr.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profile_int.h"
#include "profile_regex.h"
#include "util.h"

/* ---------------------------------------------------------------- the tree */

enum op_kind { OP_MAP, OP_SUBSTR, OP_REGEX, OP_UPPER, OP_LOWER };

typedef struct {
    enum op_kind kind;
    int map;             /* OP_MAP: index in the profile's maps */
    size_t start, count; /* OP_SUBSTR: 0-based first character, count (SIZE_MAX: to the end) */
    rx *re;              /* OP_REGEX */
} op;

enum term_kind { TM_LIT, TM_REF, TM_ISEMPTY };

typedef struct {
    enum term_kind kind;
    char *lit; /* TM_LIT */
    size_t litlen;
    int col; /* TM_REF: 1-based column */
    op *ops;
    int nops;
    size_t opcap;
    expr **args; /* TM_ISEMPTY */
    int nargs;
    size_t argcap;
} term;

struct expr {
    term *terms;
    int nterms;
    size_t termcap;
    int omit;      /* some reference carries omit */
    int first_col; /* first column referenced, 0 if none */
    int max_col;   /* highest column referenced directly (maps not included) */
};

void expr_free(expr *e)
{
    if (e == NULL)
        return;
    for (int i = 0; i < e->nterms; i++) {
        term *t = &e->terms[i];
        free(t->lit);
        for (int j = 0; j < t->nops; j++)
            rx_free(t->ops[j].re);
        free(t->ops);
        for (int j = 0; j < t->nargs; j++)
            expr_free(t->args[j]);
        free(t->args);
    }
    free(e->terms);
    free(e);
}

expr_info expr_facts(const expr *e)
{
    expr_info f = {e->omit, e->first_col, e->max_col};
    return f;
}

/* Call fn(ctx, op) for each option of kind k in e, ISEMPTY arguments
 * included, in reading order; the first nonzero fn returns stops it. */
static int each_op(const expr *e, enum op_kind k, int (*fn)(void *ctx, const op *o), void *ctx)
{
    for (int i = 0; i < e->nterms; i++) {
        const term *t = &e->terms[i];
        for (int j = 0; j < t->nops; j++) {
            if (t->ops[j].kind != k)
                continue;
            int rc = fn(ctx, &t->ops[j]);
            if (rc != 0)
                return rc;
        }
        for (int j = 0; j < t->nargs; j++) {
            int rc = each_op(t->args[j], k, fn, ctx);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

typedef struct {
    int (*map_fn)(void *ctx, int map);
    int (*rx_fn)(void *ctx, const rx *re);
    void *ctx;
} op_visit;

static int visit_map(void *ctx, const op *o)
{
    const op_visit *v = ctx;
    return v->map_fn(v->ctx, o->map);
}

static int visit_regex(void *ctx, const op *o)
{
    const op_visit *v = ctx;
    return v->rx_fn(v->ctx, o->re);
}

int expr_each_map(const expr *e, int (*fn)(void *ctx, int map), void *ctx)
{
    op_visit v = {fn, NULL, ctx};
    return each_op(e, OP_MAP, visit_map, &v);
}

int expr_each_regex(const expr *e, int (*fn)(void *ctx, const rx *re), void *ctx)
{
    op_visit v = {NULL, fn, ctx};
    return each_op(e, OP_REGEX, visit_regex, &v);
}

/* ---------------------------------------------------------------- the parser */

typedef struct {
    const expr_scope *scope;
    const char *s;
    size_t n, i;
    int omit;      /* some reference carries omit */
    int first_col; /* first column referenced */
    int max_col;
    char why[384];
} xparser;

static void xwhy(xparser *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void xwhy(xparser *x, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->why, sizeof(x->why), fmt, ap);
    va_end(ap);
}

static void x_skip_blanks(xparser *x)
{
    while (x->i < x->n && txt_is_blank((unsigned char)x->s[x->i]))
        x->i++;
}

/* A new term of that kind at the end of e; NULL with why set (no memory). */
static term *add_term(xparser *x, expr *e, enum term_kind kind)
{
    if (array_grow(&e->terms, &e->termcap, (size_t)e->nterms + 1, sizeof(*e->terms), 2) != 0) {
        xwhy(x, "out of memory");
        return NULL;
    }
    term *t = &e->terms[e->nterms++];
    memset(t, 0, sizeof(*t));
    t->kind = kind;
    return t;
}

static int add_lit(xparser *x, expr *e, const char *s, size_t n)
{
    if (n == 0)
        return 0;
    term *t = add_term(x, e, TM_LIT);
    if (t == NULL)
        return -1;
    t->lit = txt_dup(s, n);
    if (t->lit == NULL)
        return -1;
    t->litlen = n;
    return 0;
}

static op *add_op(term *t)
{
    if (array_grow(&t->ops, &t->opcap, (size_t)t->nops + 1, sizeof(*t->ops), 2) != 0)
        return NULL;
    op *o = &t->ops[t->nops++];
    memset(o, 0, sizeof(*o));
    return o;
}

/* A non-negative number at the cursor. */
static int x_number(xparser *x, long max, long *out)
{
    size_t s = x->i;
    while (x->i < x->n && txt_is_digit((unsigned char)x->s[x->i]))
        x->i++;
    return txt_int(txt_slice(x->s + s, x->i - s), 0, max, out);
}

/* A "quoted" string: \" is a quote, \\ stays a (regex) backslash pair. */
static char *x_qstring(xparser *x, size_t *len)
{
    x_skip_blanks(x);
    if (x->i >= x->n || x->s[x->i] != '"') {
        xwhy(x, "expected a \"quoted\" string");
        return NULL;
    }
    x->i++;
    char *o = malloc(x->n - x->i + 1);
    if (o == NULL) {
        xwhy(x, "out of memory");
        return NULL;
    }
    size_t n = 0;
    while (x->i < x->n && x->s[x->i] != '"') {
        if (x->s[x->i] == '\\' && x->i + 1 < x->n && x->s[x->i + 1] == '"') {
            o[n++] = '"';
            x->i += 2;
        } else if (x->s[x->i] == '\\' && x->i + 1 < x->n && x->s[x->i + 1] == '\\') {
            o[n++] = '\\';
            o[n++] = '\\';
            x->i += 2;
        } else {
            o[n++] = x->s[x->i++];
        }
    }
    if (x->i >= x->n) {
        free(o);
        xwhy(x, "unterminated \"quoted\" string");
        return NULL;
    }
    x->i++;
    o[n] = '\0';
    *len = n;
    return o;
}

static int x_expect(xparser *x, char ch, const char *what)
{
    x_skip_blanks(x);
    if (x->i >= x->n || x->s[x->i] != ch) {
        xwhy(x, "expected '%c' %s", ch, what);
        return -1;
    }
    x->i++;
    return 0;
}

/* substring(start[,length]) after the word. */
static int x_substring(xparser *x, op *o)
{
    long start, count = -1;
    o->kind = OP_SUBSTR;
    if (x_expect(x, '(', "after substring") != 0)
        return -1;
    x_skip_blanks(x);
    if (x_number(x, 1000000, &start) != 0 || start < 1) {
        xwhy(x, "substring start must be a number from 1");
        return -1;
    }
    x_skip_blanks(x);
    if (x->i < x->n && x->s[x->i] == ',') {
        x->i++;
        x_skip_blanks(x);
        if (x_number(x, 1000000, &count) != 0) {
            xwhy(x, "substring length must be a number from 0");
            return -1;
        }
    }
    if (x_expect(x, ')', "to close substring(start[,length])") != 0)
        return -1;
    o->start = (size_t)(start - 1);
    o->count = count < 0 ? SIZE_MAX : (size_t)count;
    return 0;
}

/* regex("pattern","replacement") after the word. */
static int x_regex(xparser *x, op *o)
{
    size_t pl, rl;
    o->kind = OP_REGEX;
    if (x_expect(x, '(', "after regex") != 0)
        return -1;
    char *pat = x_qstring(x, &pl);
    if (pat == NULL)
        return -1;
    if (x_expect(x, ',', "between the pattern and the replacement") != 0) {
        free(pat);
        return -1;
    }
    char *rep = x_qstring(x, &rl);
    if (rep == NULL) {
        free(pat);
        return -1;
    }
    int rc = x_expect(x, ')', "to close regex(\"pattern\",\"replacement\")");
    if (rc == 0) {
        o->re = rx_compile(pat, rep, rl, x->why, sizeof(x->why));
        if (o->re == NULL)
            rc = -1;
    }
    free(pat);
    free(rep);
    return rc;
}

/* One option after the column in {n,...}. */
static int x_option(xparser *x, term *t)
{
    x_skip_blanks(x);
    size_t s = x->i;
    while (x->i < x->n && !strchr(",}() \t", x->s[x->i]))
        x->i++;
    const char *tok = x->s + s;
    size_t tl = x->i - s;
    if (tl == 0) {
        xwhy(x, "empty option");
        return -1;
    }
    if (txt_ci_eq(tok, tl, "omit")) {
        if (x->scope->in_map) {
            xwhy(x, "omit has no meaning in a map value (put it on the field)");
            return -1;
        }
        x->omit = 1;
        return 0;
    }
    op *o = add_op(t);
    if (o == NULL) {
        xwhy(x, "out of memory");
        return -1;
    }
    if (txt_ci_eq(tok, tl, "upper") || txt_ci_eq(tok, tl, "uppercase")) {
        o->kind = OP_UPPER;
        return 0;
    }
    if (txt_ci_eq(tok, tl, "lower") || txt_ci_eq(tok, tl, "lowercase")) {
        o->kind = OP_LOWER;
        return 0;
    }
    if (txt_ci_prefix(tok, tl, "map_")) {
        o->kind = OP_MAP;
        o->map = maps_find(x->scope->maps, tok + 4, tl - 4);
        if (o->map < 0) {
            xwhy(x, "map '%.*s' is not defined (no map_%.*s_... line)", (int)(tl - 4), tok + 4, (int)(tl - 4),
                 tok + 4);
            return -1;
        }
        return 0;
    }
    if (txt_ci_eq(tok, tl, "substring"))
        return x_substring(x, o);
    if (txt_ci_eq(tok, tl, "regex"))
        return x_regex(x, o);
    t->nops--; /* not an option after all */
    xwhy(x, "unknown option '%.*s' (options: map_<name>, omit, substring(start[,length]), "
            "regex(\"pattern\",\"replacement\"), upper, lower)",
         (int)tl, tok);
    return -1;
}

/* {n[,option...]} at the cursor (on the '{'). */
static int x_ref(xparser *x, expr *e)
{
    term *t = add_term(x, e, TM_REF);
    if (t == NULL)
        return -1;
    x->i++;
    x_skip_blanks(x);
    long col;
    if (x->i >= x->n || !txt_is_digit((unsigned char)x->s[x->i]) || x_number(x, MAX_COLUMN, &col) != 0 || col < 1) {
        xwhy(x, "'{' must be followed by a column number 1..%d", MAX_COLUMN);
        return -1;
    }
    if (x->scope->column_total > 0 && col > x->scope->column_total) {
        xwhy(x, "column {%ld} is beyond field_type_total=%d", col, x->scope->column_total);
        return -1;
    }
    t->col = (int)col;
    if (x->first_col == 0)
        x->first_col = (int)col;
    if (col > x->max_col)
        x->max_col = (int)col;
    for (;;) {
        x_skip_blanks(x);
        if (x->i >= x->n) {
            xwhy(x, "missing '}'");
            return -1;
        }
        char ch = x->s[x->i];
        if (ch == '}') {
            x->i++;
            return 0;
        }
        if (ch != ',') {
            xwhy(x, "unexpected '%c' in {%ld...}", ch, col);
            return -1;
        }
        x->i++;
        if (x_option(x, t) != 0)
            return -1;
    }
}

static expr *x_seq(xparser *x, int in_args);

/* ISEMPTY(a, b, ...) at the cursor (on the I). */
static int x_isempty(xparser *x, expr *e)
{
    term *t = add_term(x, e, TM_ISEMPTY);
    if (t == NULL)
        return -1;
    x->i += 7;
    if (x_expect(x, '(', "after ISEMPTY") != 0)
        return -1;
    for (;;) {
        expr *a = x_seq(x, 1);
        if (a == NULL)
            return -1;
        if (array_grow(&t->args, &t->argcap, (size_t)t->nargs + 1, sizeof(*t->args), 2) != 0) {
            expr_free(a);
            xwhy(x, "out of memory");
            return -1;
        }
        t->args[t->nargs++] = a;
        if (a->nterms == 0) {
            xwhy(x, "empty argument in ISEMPTY");
            return -1;
        }
        if (x->i >= x->n) {
            xwhy(x, "missing ')' after the ISEMPTY arguments");
            return -1;
        }
        if (x->s[x->i] == ')') {
            x->i++;
            return 0;
        }
        x->i++; /* ',' */
    }
}

static int at_isempty(const xparser *x)
{
    if (!txt_ci_prefix(x->s + x->i, x->n - x->i, "isempty"))
        return 0;
    size_t j = x->i + 7;
    while (j < x->n && txt_is_blank((unsigned char)x->s[j]))
        j++;
    return j < x->n && x->s[j] == '(';
}

/* A sequence of literal text, references and ISEMPTY(...). In an ISEMPTY
 * argument it stops (without consuming) at a ',' or ')' outside braces,
 * and the blanks around the argument are dropped. */
static expr *x_seq(xparser *x, int in_args)
{
    expr *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        xwhy(x, "out of memory");
        return NULL;
    }
    if (in_args)
        x_skip_blanks(x);
    size_t lit = x->i;
    while (x->i < x->n) {
        char ch = x->s[x->i];
        if (in_args && (ch == ',' || ch == ')'))
            break;
        if (ch == '{' || ch == '}' || ((ch == 'I' || ch == 'i') && at_isempty(x))) {
            if (add_lit(x, e, x->s + lit, x->i - lit) != 0) {
                xwhy(x, "out of memory");
                goto fail;
            }
            if (ch == '}') {
                xwhy(x, "'}' without '{'");
                goto fail;
            }
            if ((ch == '{' ? x_ref(x, e) : x_isempty(x, e)) != 0)
                goto fail;
            lit = x->i;
            continue;
        }
        x->i++;
    }
    size_t end = x->i;
    if (in_args)
        while (end > lit && txt_is_blank((unsigned char)x->s[end - 1]))
            end--;
    if (add_lit(x, e, x->s + lit, end - lit) != 0) {
        xwhy(x, "out of memory");
        goto fail;
    }
    return e;
fail:
    expr_free(e);
    return NULL;
}

expr *expr_compile(slice s, const expr_scope *scope, char *why, size_t whylen)
{
    xparser x;
    memset(&x, 0, sizeof(x));
    x.scope = scope;
    x.s = s.p;
    x.n = s.len;
    expr *ex = x_seq(&x, 0);
    if (ex == NULL) {
        snprintf(why, whylen, "%s", x.why);
        return NULL;
    }
    ex->omit = x.omit;
    ex->first_col = x.first_col;
    ex->max_col = x.max_col;
    return ex;
}

/* ---------------------------------------------------------------- the evaluator */

slice expr_col(const prow *r, int col)
{
    if (col < 1 || (size_t)col > r->ncols || r->cols == NULL || r->cols[col - 1] == NULL)
        return txt_slice(NULL, 0);
    return txt_trim(txt_slice(r->cols[col - 1], r->lens[col - 1]));
}

static int apply_op(const map_list *maps, const op *o, slice in, const prow *r, scratch *sc, slice *out, char *err,
                    size_t errlen)
{
    switch (o->kind) {
    case OP_MAP: {
        const pmap *m = &maps->v[o->map];
        const map_ent *me = map_find(m, txt_trim(in));
        const expr *val = me ? me->val : m->def;
        if (val == NULL) {
            *out = in;
            return 0;
        }
        return expr_eval(maps, val, r, sc, out, err, errlen);
    }
    case OP_SUBSTR: {
        size_t b = utf8_prefix(in.p, in.len, o->start);
        slice rest = txt_slice(in.p + b, in.len - b);
        size_t e = o->count == SIZE_MAX ? rest.len : utf8_prefix(rest.p, rest.len, o->count);
        *out = txt_slice(rest.p, e);
        return 0;
    }
    case OP_UPPER:
    case OP_LOWER: {
        if (in.len == 0) {
            *out = in;
            return 0;
        }
        char *buf = sc_alloc(sc, in.len);
        if (buf == NULL)
            return sc_oom(err, errlen);
        txt_case_map(in.p, in.len, buf, o->kind == OP_UPPER);
        *out = txt_slice(buf, in.len);
        return 0;
    }
    case OP_REGEX:
        return rx_replace(o->re, in, sc, out, err, errlen);
    }
    *out = in;
    return 0;
}

static int eval_term(const map_list *maps, const term *t, const prow *r, scratch *sc, slice *out, char *err,
                     size_t errlen)
{
    switch (t->kind) {
    case TM_LIT:
        *out = txt_slice(t->lit, t->litlen);
        return 0;
    case TM_REF: {
        slice v = expr_col(r, t->col);
        for (int i = 0; i < t->nops; i++)
            if (apply_op(maps, &t->ops[i], v, r, sc, &v, err, errlen) != 0)
                return -1;
        *out = v;
        return 0;
    }
    case TM_ISEMPTY:
        for (int i = 0; i < t->nargs; i++) {
            slice v;
            if (expr_eval(maps, t->args[i], r, sc, &v, err, errlen) != 0)
                return -1;
            v = txt_trim(v);
            if (v.len > 0) {
                *out = v;
                return 0;
            }
        }
        *out = txt_slice(NULL, 0);
        return 0;
    }
    *out = txt_slice(NULL, 0);
    return 0;
}

int expr_eval(const map_list *maps, const expr *e, const prow *r, scratch *sc, slice *out, char *err,
                     size_t errlen)
{
    if (e->nterms == 0) {
        *out = txt_slice(NULL, 0);
        return 0;
    }
    if (e->nterms == 1)
        return eval_term(maps, &e->terms[0], r, sc, out, err, errlen);
    slice local[8];
    slice *parts = local;
    if (e->nterms > 8) {
        parts = sc_alloc(sc, (size_t)e->nterms * sizeof(slice));
        if (parts == NULL)
            return sc_oom(err, errlen);
    }
    size_t total = 0;
    for (int i = 0; i < e->nterms; i++) {
        if (eval_term(maps, &e->terms[i], r, sc, &parts[i], err, errlen) != 0)
            return -1;
        total += parts[i].len;
    }
    char *buf = sc_alloc(sc, total + 1);
    if (buf == NULL)
        return sc_oom(err, errlen);
    size_t o = 0;
    for (int i = 0; i < e->nterms; i++) {
        if (parts[i].len > 0)
            memcpy(buf + o, parts[i].p, parts[i].len);
        o += parts[i].len;
    }
    *out = txt_slice(buf, total);
    return 0;
}


/* ---------------------------------------------------------------- in words */

static int describe(const map_list *maps, const expr *e, strbuf *out, int top);

static void describe_op(const map_list *maps, const op *o, strbuf *out)
{
    switch (o->kind) {
    case OP_MAP: {
        const pmap *m = &maps->v[o->map];
        sb_printf(out, ", through map_%s (%zu value%s; any other value: ", m->name, m->n, m->n == 1 ? "" : "s");
        if (m->def != NULL && m->def->nterms == 1 && m->def->terms[0].kind == TM_LIT) {
            sb_puts(out, "\"");
            sb_append(out, m->def->terms[0].lit, m->def->terms[0].litlen);
            sb_puts(out, "\"");
        } else if (m->def != NULL)
            describe(maps, m->def, out, 0);
        else
            sb_puts(out, "kept as it is");
        sb_puts(out, ")");
        break;
    }
    case OP_SUBSTR:
        if (o->count == SIZE_MAX)
            sb_printf(out, ", from character %zu on", o->start + 1);
        else
            sb_printf(out, ", %zu character%s from character %zu", o->count, o->count == 1 ? "" : "s", o->start + 1);
        break;
    case OP_REGEX:
        sb_printf(out, ", every match of the regular expression \"%s\" replaced", rx_pattern(o->re));
        break;
    case OP_UPPER:
        sb_puts(out, ", in upper case");
        break;
    case OP_LOWER:
        sb_puts(out, ", in lower case");
        break;
    }
}

int expr_single_ref(const expr *e)
{
    return e->nterms == 1 && e->terms[0].kind == TM_REF;
}

int expr_describe(const map_list *maps, const expr *e, strbuf *out)
{
    return describe(maps, e, out, 1);
}

/* e in words; top: the whole of a field (a constant there is "always"). */
static int describe(const map_list *maps, const expr *e, strbuf *out, int top)
{
    if (e->nterms == 0)
        return sb_puts(out, "empty");
    for (int i = 0; i < e->nterms; i++) {
        const term *t = &e->terms[i];
        if (i > 0)
            sb_puts(out, " followed by ");
        switch (t->kind) {
        case TM_LIT:
            sb_puts(out, e->nterms == 1 && top ? "always \"" : "\"");
            sb_append(out, t->lit, t->litlen);
            sb_puts(out, "\"");
            break;
        case TM_REF:
            sb_printf(out, "column %d", t->col);
            for (int j = 0; j < t->nops; j++)
                describe_op(maps, &t->ops[j], out);
            break;
        case TM_ISEMPTY:
            sb_puts(out, "the first not empty of (");
            for (int j = 0; j < t->nargs; j++) {
                if (j > 0)
                    sb_puts(out, "; ");
                describe(maps, t->args[j], out, 0);
            }
            sb_puts(out, ")");
            break;
        }
    }
    return out->buf == NULL ? -1 : 0;
}
