/* profile: a Destiny PIC .properties file parsed once into a compiled,
 * read-only form, and CSV records mapped to patron records through it. */
#include "profile.h"

#include <regex.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

#define MAX_COLUMN 65535       /* highest column number accepted in {n} and field_type_<n> */
#define MAX_RULE_N 100000      /* highest N in SkipWhen_N / *Max */
#define MAX_ROWS_TO_SKIP 1000000000
#define MAX_GROUP 9            /* {$0}..{$9} in a regex replacement */
#define FOLD_MAX 256           /* longest value looked up in a map without regard to case */
#define SCRATCH_BYTES 8192     /* per-call evaluation space kept on the stack */
#define YY_PIVOT 45            /* yy: 00..45 -> 2000..2045, 46..99 -> 1946..1999 */
#define PROFILE_FILE_MAX (16u << 20)
#define DEFAULT_ENCODING "windows-1252"

/* ---------------------------------------------------------------- text helpers */

typedef struct {
    const char *p; /* never NULL ("" when empty) */
    size_t len;
} slice;

static const char empty_str[] = "";

static slice mk_slice(const char *p, size_t len)
{
    slice s;
    s.p = p ? p : empty_str;
    s.len = p ? len : 0;
    return s;
}

static int is_blank(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int lower_ascii(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

static int upper_ascii(int c)
{
    return (c >= 'a' && c <= 'z') ? c - 32 : c;
}

static slice trim(slice s)
{
    while (s.len > 0 && is_blank((unsigned char)s.p[0])) {
        s.p++;
        s.len--;
    }
    while (s.len > 0 && is_blank((unsigned char)s.p[s.len - 1]))
        s.len--;
    return s;
}

/* s[0..n) equals the word w, ASCII case ignored. */
static int ci_eq(const char *s, size_t n, const char *w)
{
    size_t wl = strlen(w);
    return n == wl && strncasecmp(s, w, n) == 0;
}

/* s[0..n) starts with the word w, ASCII case ignored. */
static int ci_prefix(const char *s, size_t n, const char *w)
{
    size_t wl = strlen(w);
    return n >= wl && strncasecmp(s, w, wl) == 0;
}

/* A non-negative decimal number, digits only, in [min,max]. 0 / -1. */
static int slice_int(slice s, long min, long max, long *out)
{
    if (s.len == 0)
        return -1;
    long v = 0;
    for (size_t i = 0; i < s.len; i++) {
        if (!is_digit((unsigned char)s.p[i]))
            return -1;
        if (v > (max - (s.p[i] - '0')) / 10)
            return -1;
        v = v * 10 + (s.p[i] - '0');
    }
    if (v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static char *dup_mem(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d == NULL)
        return NULL;
    if (n > 0)
        memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* Case of letters: ASCII, Latin-1 and Latin Extended-A (U+0000..U+017F).
 * Every mapping keeps the UTF-8 length, so values are converted in place. */
static uint32_t cp_lower(uint32_t c)
{
    if (c >= 'A' && c <= 'Z')
        return c + 32;
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7)
        return c + 32;
    if (c == 0x178)
        return 0xFF;
    if (((c >= 0x100 && c <= 0x137) || (c >= 0x14A && c <= 0x177)) && c != 0x130 && (c & 1) == 0)
        return c + 1;
    if (((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) && (c & 1) == 1)
        return c + 1;
    return c;
}

static uint32_t cp_upper(uint32_t c)
{
    if (c >= 'a' && c <= 'z')
        return c - 32;
    if (c >= 0xE0 && c <= 0xFE && c != 0xF7)
        return c - 32;
    if (c == 0xFF)
        return 0x178;
    if (((c >= 0x101 && c <= 0x137) || (c >= 0x14B && c <= 0x177)) && c != 0x131 && (c & 1) == 1)
        return c - 1;
    if (((c >= 0x13A && c <= 0x148) || (c >= 0x17A && c <= 0x17E)) && (c & 1) == 0)
        return c - 1;
    return c;
}

/* Code point at s[i] when it is one this module changes case of (ASCII or
 * a two-byte sequence up to U+017F); *clen is its byte length. Any other
 * byte is returned as 0x80000000|byte with *clen 1. */
static uint32_t cp_at(const char *s, size_t n, size_t i, size_t *clen)
{
    unsigned char b = (unsigned char)s[i];
    *clen = 1;
    if (b < 0x80)
        return b;
    if (b >= 0xC2 && b <= 0xC5 && i + 1 < n && ((unsigned char)s[i + 1] & 0xC0) == 0x80) {
        *clen = 2;
        return ((uint32_t)(b & 0x1F) << 6) | ((unsigned char)s[i + 1] & 0x3F);
    }
    return 0x80000000u | b;
}

/* out[0..n) = in[0..n) in upper or lower case (out may equal in). */
static void case_map(const char *in, size_t n, char *out, int upper)
{
    size_t i = 0;
    while (i < n) {
        size_t cl;
        uint32_t c = cp_at(in, n, i, &cl);
        if (cl == 1) {
            out[i] = (c & 0x80000000u) ? in[i] : (char)(upper ? upper_ascii((int)c) : lower_ascii((int)c));
        } else {
            uint32_t m = upper ? cp_upper(c) : cp_lower(c);
            out[i] = (char)(0xC0 | (m >> 6));
            out[i + 1] = (char)(0x80 | (m & 0x3F));
        }
        i += cl;
    }
}

/* Equal without regard to case (same letters as case_map). */
static int fold_eq(slice a, slice b)
{
    if (a.len != b.len)
        return 0;
    size_t i = 0;
    while (i < a.len) {
        size_t la, lb;
        uint32_t ca = cp_at(a.p, a.len, i, &la);
        uint32_t cb = cp_at(b.p, b.len, i, &lb);
        if (la != lb)
            return 0;
        if (!(ca & 0x80000000u))
            ca = cp_lower(ca);
        if (!(cb & 0x80000000u))
            cb = cp_lower(cb);
        if (ca != cb)
            return 0;
        i += la;
    }
    return 1;
}

/* ---------------------------------------------------------------- scratch space */

/* Evaluation space for one field: a stack buffer first, heap chunks only
 * when a value does not fit. Pointers stay valid until sc_reset. */
typedef struct sc_chunk {
    struct sc_chunk *next;
    size_t cap;
    max_align_t pad[]; /* data follows, aligned */
} sc_chunk;

typedef struct {
    char *base;
    size_t used, cap;
    sc_chunk *chunks;
    char *stack;
    size_t stack_cap;
} scratch;

#define SC_ALIGN alignof(max_align_t)

static void sc_init(scratch *s, char *stack, size_t cap)
{
    s->base = stack;
    s->used = 0;
    s->cap = cap;
    s->chunks = NULL;
    s->stack = stack;
    s->stack_cap = cap;
}

static void sc_reset(scratch *s)
{
    while (s->chunks) {
        sc_chunk *n = s->chunks->next;
        free(s->chunks);
        s->chunks = n;
    }
    s->base = s->stack;
    s->used = 0;
    s->cap = s->stack_cap;
}

static void *sc_alloc(scratch *s, size_t n)
{
    size_t off = (s->used + SC_ALIGN - 1) & ~(SC_ALIGN - 1);
    if (off <= s->cap && n <= s->cap - off) {
        s->used = off + n;
        return s->base + off;
    }
    size_t cap = s->cap * 2;
    if (cap < n)
        cap = n;
    if (n > SIZE_MAX / 2 - sizeof(sc_chunk))
        return NULL;
    sc_chunk *c = malloc(sizeof(sc_chunk) + cap);
    if (c == NULL)
        return NULL;
    c->next = s->chunks;
    c->cap = cap;
    s->chunks = c;
    s->base = (char *)c->pad;
    s->cap = cap;
    s->used = n;
    return s->base;
}

/* A growable string in scratch space (for regex replacement). */
typedef struct {
    char *p;
    size_t len, cap;
} builder;

static int b_put(scratch *s, builder *b, const char *d, size_t n)
{
    if (b->cap - b->len < n) {
        size_t cap = b->cap * 2 + n + 64;
        char *q = sc_alloc(s, cap);
        if (q == NULL)
            return -1;
        if (b->len > 0)
            memcpy(q, b->p, b->len);
        b->p = q;
        b->cap = cap;
    }
    if (n > 0)
        memcpy(b->p + b->len, d, n);
    b->len += n;
    return 0;
}

/* ---------------------------------------------------------------- compiled form */

enum op_kind { OP_MAP, OP_SUBSTR, OP_REGEX, OP_UPPER, OP_LOWER };

typedef struct {
    int group; /* -1: literal text */
    char *text;
    size_t len;
} repl_piece;

typedef struct {
    enum op_kind kind;
    int map;             /* OP_MAP: index in profile maps */
    size_t start, count; /* OP_SUBSTR: 0-based first character, count (SIZE_MAX: to the end) */
    regex_t *re;         /* OP_REGEX */
    repl_piece *repl;
    int nrepl;
} op;

typedef struct expr expr;

enum term_kind { TM_LIT, TM_REF, TM_ISEMPTY };

typedef struct {
    enum term_kind kind;
    char *lit; /* TM_LIT */
    size_t litlen;
    int col; /* TM_REF: 1-based column */
    op *ops;
    int nops;
    expr **args; /* TM_ISEMPTY */
    int nargs;
} term;

struct expr {
    term *terms;
    int nterms;
    int omit;      /* some reference carries omit */
    int first_col; /* first column referenced, 0 if none */
    int max_col;   /* highest column referenced directly (maps not included) */
};

typedef struct {
    char *key; /* exact CSV value */
    size_t keylen;
    char *fkey; /* key in lower case */
    expr *val;
    int entry; /* line it came from (index into the parse entries) */
} map_ent;

typedef struct {
    char *name; /* as first written */
    map_ent *ents;
    size_t n, cap;
    uint32_t *tab, *ftab; /* open addressing: entry index + 1, 0 = free */
    size_t tabcap;
    expr *def;
    int def_entry;
    int state;   /* cycle check: 0 new, 1 on the path, 2 done */
    int max_col; /* highest column its values reach, maps included */
} pmap;

enum dp_kind { DP_LIT, DP_YEAR, DP_MONTH, DP_MONTHNAME, DP_DAY, DP_NUM, DP_AMPM, DP_DAYNAME };

typedef struct {
    enum dp_kind kind;
    int count; /* number of pattern letters */
    char *lit;
    size_t litlen;
} dp_item;

typedef struct {
    dp_item *items;
    int n;
    int has_y, has_m, has_d;
} date_pat;

typedef struct {
    int declared; /* field_type_<col> given */
    int is_date;
    date_pat *pat; /* NULL for "date" without a pattern: the default forms */
    int entry;
} coltype;

typedef struct {
    int n;
    int field; /* patron field, or -1 for a column */
    int col;
    char *val;
    size_t vlen;
} rule;

typedef struct {
    rule *r;
    int n, cap;
    int mode_and;
    long max; /* -1: not given */
} ruleset;

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
    pmap *maps;
    int nmaps, mapcap;
    date_pat *defaults[3]; /* the forms an untyped date may take */
};

/* ---------------------------------------------------------------- freeing */

static void expr_free(expr *e);

static void op_free(op *o)
{
    if (o->kind == OP_REGEX && o->re) {
        regfree(o->re);
        free(o->re);
    }
    for (int i = 0; i < o->nrepl; i++)
        free(o->repl[i].text);
    free(o->repl);
}

static void expr_free(expr *e)
{
    if (e == NULL)
        return;
    for (int i = 0; i < e->nterms; i++) {
        term *t = &e->terms[i];
        free(t->lit);
        for (int j = 0; j < t->nops; j++)
            op_free(&t->ops[j]);
        free(t->ops);
        for (int j = 0; j < t->nargs; j++)
            expr_free(t->args[j]);
        free(t->args);
    }
    free(e->terms);
    free(e);
}

static void dp_free(date_pat *d)
{
    if (d == NULL)
        return;
    for (int i = 0; i < d->n; i++)
        free(d->items[i].lit);
    free(d->items);
    free(d);
}

void profile_destroy(profile **pp)
{
    if (pp == NULL || *pp == NULL)
        return;
    profile *p = *pp;
    free(p->encoding);
    free(p->site_default);
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < p->rules[k].n; i++)
            free(p->rules[k].r[i].val);
        free(p->rules[k].r);
    }
    for (int f = 0; f < PF__COUNT; f++)
        expr_free(p->fields[f]);
    for (int i = 0; i < p->ncoltypes; i++)
        dp_free(p->coltypes[i].pat);
    free(p->coltypes);
    for (int m = 0; m < p->nmaps; m++) {
        pmap *mp = &p->maps[m];
        free(mp->name);
        for (size_t i = 0; i < mp->n; i++) {
            free(mp->ents[i].key);
            free(mp->ents[i].fkey);
            expr_free(mp->ents[i].val);
        }
        free(mp->ents);
        free(mp->tab);
        free(mp->ftab);
        expr_free(mp->def);
    }
    free(p->maps);
    for (int i = 0; i < 3; i++)
        dp_free(p->defaults[i]);
    free(p);
    *pp = NULL;
}

/* ---------------------------------------------------------------- parse context */

enum kclass {
    K_ERROR,
    K_ENCODING,
    K_MATCH_DID,
    K_ROWS_SKIP,
    K_SITE_DEFAULT,
    K_UPDATE_BEFORE_DELETE,
    K_TYPE_TOTAL,
    K_MODE,
    K_MAX,
    K_WHEN,
    K_TYPE_COL,
    K_FIELD,
    K_MAP
};

/* One key=value line (a logical line: continuation lines joined). */
typedef struct {
    char *key, *val; /* unescaped, trimmed, NUL-terminated */
    size_t keylen, vallen;
    char *text; /* the line as written, trimmed, for messages */
    int line;
    char *norm; /* key as compared for "the later one wins" */
    int dead;   /* superseded by a later line with the same key */
    enum kclass cls;
    int a, b; /* class arguments: rule kind / field / column, N */
    int map, ment; /* K_MAP: map index and entry index (-1: the default) */
} entry;

typedef struct {
    profile *p;
    const char *name;
    entry *ents;
    size_t n, cap;
    char *err;
    size_t errlen;
} pctx;

static void perr(pctx *c, int line, const char *text, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void perr(pctx *c, int line, const char *text, const char *fmt, ...)
{
    char why[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    err_set(c->err, c->errlen, "%s:%d: %s: %s", c->name, line, text, why);
}

static int oom(pctx *c)
{
    err_set(c->err, c->errlen, "%s: out of memory", c->name);
    return -1;
}

/* ---------------------------------------------------------------- lines */

static size_t put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static int hex4(const char *s, size_t n, size_t i, uint32_t *out)
{
    if (i + 4 > n)
        return -1;
    uint32_t v = 0;
    for (size_t k = i; k < i + 4; k++) {
        int ch = (unsigned char)s[k];
        int d;
        if (is_digit(ch))
            d = ch - '0';
        else if (ch >= 'a' && ch <= 'f')
            d = ch - 'a' + 10;
        else if (ch >= 'A' && ch <= 'F')
            d = ch - 'A' + 10;
        else
            return -1;
        v = v * 16 + (uint32_t)d;
    }
    *out = v;
    return 0;
}

/* Undo the escapes of a properties key or value and trim the blanks around
 * it (an escaped blank is kept). \t \n \r \f \uXXXX and \\ \= \: \# \! \<space>
 * are the Java escapes; any other backslash is kept as written so regular
 * expressions read the same whether or not their author doubled it.
 * Returns a new string, or NULL with *why set (NULL *why: no memory). */
static char *unescape(const char *s, size_t n, size_t *outlen, const char **why)
{
    char *o = malloc(n + 1);
    *why = NULL;
    if (o == NULL)
        return NULL;
    size_t len = 0, keep = 0, j = 0;
    while (j < n && is_blank((unsigned char)s[j]))
        j++;
    for (; j < n; j++) {
        char ch = s[j];
        if (ch != '\\' || j + 1 >= n) {
            o[len++] = ch;
            if (!is_blank((unsigned char)ch))
                keep = len;
            continue;
        }
        char x = s[++j];
        switch (x) {
        case 't': o[len++] = '\t'; break;
        case 'n': o[len++] = '\n'; break;
        case 'r': o[len++] = '\r'; break;
        case 'f': o[len++] = '\f'; break;
        case 'u': {
            uint32_t cp, lo;
            if (hex4(s, n, j + 1, &cp) != 0) {
                free(o);
                *why = "malformed \\uXXXX escape";
                return NULL;
            }
            j += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF && j + 2 < n && s[j + 1] == '\\' && s[j + 2] == 'u' &&
                hex4(s, n, j + 3, &lo) == 0 && lo >= 0xDC00 && lo <= 0xDFFF) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                j += 6;
            } else if (cp >= 0xD800 && cp <= 0xDFFF) {
                cp = 0xFFFD;
            }
            /* at most 4 bytes out for 6 (or 12) in: fits the buffer */
            len += put_utf8(o + len, cp);
            break;
        }
        case '\\': case '=': case ':': case '#': case '!': case ' ':
            o[len++] = x;
            break;
        default:
            o[len++] = '\\';
            o[len++] = x;
            break;
        }
        keep = len;
    }
    o[keep] = '\0';
    *outlen = keep;
    return o;
}

/* The key as compared for "a key given twice: the later one wins": field
 * and map names in lower case (an alias by its current name), the CSV value
 * of a map key exactly as written. */
static char *norm_key(const char *k, size_t n)
{
    char *o = malloc(n + 64);
    if (o == NULL)
        return NULL;
    size_t len = 0;
    if (ci_prefix(k, n, "map_")) {
        const char *u = memchr(k + 4, '_', n - 4);
        if (u != NULL) {
            size_t head = (size_t)(u - k) + 1;
            for (size_t i = 0; i < head; i++)
                o[len++] = (char)lower_ascii((unsigned char)k[i]);
            size_t rest = n - head;
            if (ci_eq(u + 1, rest, "default")) {
                memcpy(o + len, "default", 7);
                len += 7;
            } else {
                memcpy(o + len, u + 1, rest);
                len += rest;
            }
            o[len] = '\0';
            return o;
        }
    }
    if (ci_prefix(k, n, "field_") && !ci_prefix(k, n, "field_type_")) {
        int f = patron_field_lookup(k + 6, n - 6);
        if (f >= 0) {
            const char *pic = patron_fields[f].pic;
            memcpy(o, "field_", 6);
            len = 6;
            for (size_t i = 0; pic[i]; i++)
                o[len++] = (char)lower_ascii((unsigned char)pic[i]);
            o[len] = '\0';
            return o;
        }
    }
    for (size_t i = 0; i < n; i++)
        o[len++] = (char)lower_ascii((unsigned char)k[i]);
    o[len] = '\0';
    return o;
}

static int add_entry(pctx *c, const char *raw, size_t n, int line, slice text)
{
    /* The key ends at the first unescaped '=' (or, on a line without one,
     * the first unescaped ':'). Blanks inside a key are kept. */
    size_t eq = SIZE_MAX, colon = SIZE_MAX;
    for (size_t j = 0; j < n; j++) {
        if (raw[j] == '\\') {
            j++;
            continue;
        }
        if (raw[j] == '=') {
            eq = j;
            break;
        }
        if (raw[j] == ':' && colon == SIZE_MAX)
            colon = j;
    }
    char *tx = dup_mem(text.p, text.len);
    if (tx == NULL)
        return oom(c);
    size_t sep = eq != SIZE_MAX ? eq : colon;
    if (sep == SIZE_MAX) {
        perr(c, line, tx, "expected key=value");
        free(tx);
        return -1;
    }
    const char *why;
    entry e;
    memset(&e, 0, sizeof(e));
    e.text = tx;
    e.line = line;
    e.key = unescape(raw, sep, &e.keylen, &why);
    if (e.key != NULL)
        e.val = unescape(raw + sep + 1, n - sep - 1, &e.vallen, &why);
    if (e.key == NULL || e.val == NULL) {
        if (why != NULL)
            perr(c, line, tx, "%s", why);
        else
            oom(c);
        free(e.key);
        free(tx);
        return -1;
    }
    if (e.keylen == 0) {
        perr(c, line, tx, "empty key");
        free(e.key);
        free(e.val);
        free(tx);
        return -1;
    }
    e.norm = norm_key(e.key, e.keylen);
    if (e.norm == NULL) {
        free(e.key);
        free(e.val);
        free(tx);
        free(e.norm);
        return oom(c);
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        entry *ne = realloc(c->ents, cap * sizeof(*ne));
        if (ne == NULL) {
            free(e.key);
            free(e.val);
            free(tx);
            free(e.norm);
            return oom(c);
        }
        c->ents = ne;
        c->cap = cap;
    }
    c->ents[c->n++] = e;
    return 0;
}

/* Physical lines -> entries: BOM, CRLF, blanks, # and ! comments,
 * #COMMENTS_BEGIN..#COMMENTS_END blocks, backslash continuation. */
static int read_lines(pctx *c, const char *text, size_t len)
{
    size_t i = 0;
    int line = 0;
    int in_block = 0, block_line = 0;
    strbuf lg;
    sb_init(&lg);
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        i = 3;
    while (i < len) {
        size_t s = i;
        while (i < len && text[i] != '\n')
            i++;
        size_t e = i;
        if (i < len)
            i++;
        line++;
        if (e > s && text[e - 1] == '\r')
            e--;
        slice ph = trim(mk_slice(text + s, e - s));
        if (memchr(text + s, '\0', e - s) != NULL) {
            perr(c, line, "(line with a NUL byte)", "NUL byte in the file");
            goto fail;
        }
        if (in_block) {
            if (ci_eq(ph.p, ph.len, "#COMMENTS_END"))
                in_block = 0;
            continue;
        }
        if (ci_eq(ph.p, ph.len, "#COMMENTS_BEGIN")) {
            in_block = 1;
            block_line = line;
            continue;
        }
        if (ph.len == 0 || ph.p[0] == '#' || ph.p[0] == '!')
            continue;
        int first = line;
        sb_reset(&lg);
        /* leading blanks trimmed; trailing kept until unescaping (an escaped
         * blank at the end is content) */
        if (sb_append(&lg, ph.p, (size_t)(text + e - ph.p)) < 0) {
            oom(c);
            goto fail;
        }
        for (;;) {
            size_t bs = 0;
            while (bs < lg.len && lg.buf[lg.len - 1 - bs] == '\\')
                bs++;
            if (bs % 2 == 0)
                break;
            lg.len--; /* drop the continuation backslash */
            lg.buf[lg.len] = '\0';
            if (i >= len)
                break;
            size_t s2 = i;
            while (i < len && text[i] != '\n')
                i++;
            size_t e2 = i;
            if (i < len)
                i++;
            line++;
            if (e2 > s2 && text[e2 - 1] == '\r')
                e2--;
            if (memchr(text + s2, '\0', e2 - s2) != NULL) {
                perr(c, line, "(line with a NUL byte)", "NUL byte in the file");
                goto fail;
            }
            while (s2 < e2 && is_blank((unsigned char)text[s2]))
                s2++;
            if (sb_append(&lg, text + s2, e2 - s2) < 0) {
                oom(c);
                goto fail;
            }
        }
        if (add_entry(c, lg.buf ? lg.buf : "", lg.len, first, ph) != 0)
            goto fail;
    }
    if (in_block) {
        perr(c, block_line, "#COMMENTS_BEGIN", "no #COMMENTS_END after it");
        goto fail;
    }
    sb_free(&lg);
    return 0;
fail:
    sb_free(&lg);
    return -1;
}

static int cmp_entry_ptr(const void *a, const void *b)
{
    const entry *x = *(const entry *const *)a;
    const entry *y = *(const entry *const *)b;
    int r = strcmp(x->norm, y->norm);
    if (r != 0)
        return r;
    return (x->line > y->line) - (x->line < y->line);
}

/* A key given twice: the later line wins; the earlier is not looked at. */
static int supersede(pctx *c)
{
    if (c->n < 2)
        return 0;
    entry **v = malloc(c->n * sizeof(*v));
    if (v == NULL)
        return oom(c);
    for (size_t i = 0; i < c->n; i++)
        v[i] = &c->ents[i];
    qsort(v, c->n, sizeof(*v), cmp_entry_ptr);
    for (size_t i = 0; i + 1 < c->n; i++)
        if (strcmp(v[i]->norm, v[i + 1]->norm) == 0)
            v[i]->dead = 1;
    free(v);
    return 0;
}

static void free_entries(pctx *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->ents[i].key);
        free(c->ents[i].val);
        free(c->ents[i].text);
        free(c->ents[i].norm);
    }
    free(c->ents);
    c->ents = NULL;
    c->n = c->cap = 0;
}

/* ---------------------------------------------------------------- keys */

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
        if (ci_eq(k, n, settings[i].key))
            return settings[i].cls;
    for (int r = 0; r < 3; r++) {
        if (ci_eq(k, n, rule_keys[r].mode)) {
            e->a = r;
            return K_MODE;
        }
        if (ci_eq(k, n, rule_keys[r].max)) {
            e->a = r;
            return K_MAX;
        }
        size_t wl = strlen(rule_keys[r].when);
        if (ci_prefix(k, n, rule_keys[r].when)) {
            if (slice_int(mk_slice(k + wl, n - wl), 1, MAX_RULE_N, &v) != 0) {
                perr(c, e->line, e->text, "rule number must be 1..%d", MAX_RULE_N);
                return K_ERROR;
            }
            e->a = r;
            e->b = (int)v;
            return K_WHEN;
        }
    }
    if (ci_prefix(k, n, "field_type_")) {
        if (slice_int(mk_slice(k + 11, n - 11), 1, MAX_COLUMN, &v) != 0) {
            perr(c, e->line, e->text, "column number in field_type_<n> must be 1..%d", MAX_COLUMN);
            return K_ERROR;
        }
        e->a = (int)v;
        return K_TYPE_COL;
    }
    if (ci_prefix(k, n, "field_")) {
        int f = patron_field_lookup(k + 6, n - 6);
        if (f < 0) {
            perr(c, e->line, e->text, "unknown patron field '%.*s'", (int)(n - 6), k + 6);
            return K_ERROR;
        }
        e->a = f;
        return K_FIELD;
    }
    if (ci_prefix(k, n, "map_")) {
        const char *u = memchr(k + 4, '_', n - 4);
        if (u == NULL || u == k + 4) {
            perr(c, e->line, e->text, "a map key is map_<name>_<value> or map_<name>_default");
            return K_ERROR;
        }
        return K_MAP;
    }
    perr(c, e->line, e->text, "unknown key");
    return K_ERROR;
}

static int parse_bool(slice s, int *out)
{
    if (ci_eq(s.p, s.len, "true")) {
        *out = 1;
        return 0;
    }
    if (ci_eq(s.p, s.len, "false")) {
        *out = 0;
        return 0;
    }
    return -1;
}

static int set_str(char **dst, slice v)
{
    char *d = dup_mem(v.p, v.len);
    if (d == NULL)
        return -1;
    free(*dst);
    *dst = d;
    return 0;
}

/* Pass 1: plain settings, rule modes and bounds, field_type_total. */
static int pass_settings(pctx *c)
{
    profile *p = c->p;
    for (size_t i = 0; i < c->n; i++) {
        entry *e = &c->ents[i];
        if (e->dead)
            continue;
        e->cls = classify(c, e);
        if (e->cls == K_ERROR)
            return -1;
        slice v = mk_slice(e->val, e->vallen);
        if (e->cls == K_MODE) {
            if (v.len == 0)
                continue; /* empty: the default (or) */
            if (ci_eq(v.p, v.len, "and"))
                p->rules[e->a].mode_and = 1;
            else if (ci_eq(v.p, v.len, "or"))
                p->rules[e->a].mode_and = 0;
            else {
                perr(c, e->line, e->text, "mode must be 'and' or 'or'");
                return -1;
            }
            continue;
        }
        if (e->cls == K_MAX) {
            long m;
            if (v.len == 0) {
                p->rules[e->a].max = -1;
                continue;
            }
            if (slice_int(v, 0, MAX_RULE_N, &m) != 0) {
                perr(c, e->line, e->text, "must be a whole number 0..%d", MAX_RULE_N);
                return -1;
            }
            p->rules[e->a].max = m;
            continue;
        }
        size_t si;
        for (si = 0; si < sizeof(settings) / sizeof(settings[0]); si++)
            if (settings[si].cls == e->cls)
                break;
        if (si == sizeof(settings) / sizeof(settings[0]))
            continue; /* not a plain setting: later passes */
        if (settings[si].kind == SK_STR) {
            char **dst = e->cls == K_ENCODING ? &p->encoding : &p->site_default;
            if (e->cls == K_ENCODING && v.len == 0) {
                free(*dst);
                *dst = NULL; /* empty: the default */
                continue;
            }
            if (set_str(dst, v) != 0)
                return oom(c);
            continue;
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
            continue;
        }
        if (settings[si].kind == SK_BOOL) {
            int b;
            if (parse_bool(v, &b) != 0) {
                perr(c, e->line, e->text, "must be true or false");
                return -1;
            }
            if (e->cls == K_MATCH_DID)
                p->match_district_id = b;
            else
                p->update_before_delete = b;
            continue;
        }
        long n;
        if (slice_int(v, settings[si].min, settings[si].max, &n) != 0) {
            perr(c, e->line, e->text, "must be a whole number %ld..%ld", settings[si].min, settings[si].max);
            return -1;
        }
        if (e->cls == K_ROWS_SKIP)
            p->rows_to_skip = (int)n;
        else
            p->column_total = (int)n;
    }
    return 0;
}

/* ---------------------------------------------------------------- date patterns */

static int dp_numeric(enum dp_kind k)
{
    return k == DP_YEAR || k == DP_MONTH || k == DP_DAY || k == DP_NUM;
}

static int dp_push(date_pat *d, enum dp_kind kind, int count, const char *lit, size_t litlen)
{
    if (kind == DP_LIT && d->n > 0 && d->items[d->n - 1].kind == DP_LIT) {
        dp_item *it = &d->items[d->n - 1];
        char *nl = realloc(it->lit, it->litlen + litlen + 1);
        if (nl == NULL)
            return -1;
        memcpy(nl + it->litlen, lit, litlen);
        it->litlen += litlen;
        nl[it->litlen] = '\0';
        it->lit = nl;
        return 0;
    }
    dp_item *ni = realloc(d->items, (size_t)(d->n + 1) * sizeof(*ni));
    if (ni == NULL)
        return -1;
    d->items = ni;
    dp_item *it = &d->items[d->n];
    memset(it, 0, sizeof(*it));
    it->kind = kind;
    it->count = count;
    if (kind == DP_LIT) {
        it->lit = dup_mem(lit, litlen);
        if (it->lit == NULL)
            return -1;
        it->litlen = litlen;
    }
    d->n++;
    return 0;
}

/* Compile a Java SimpleDateFormat pattern. NULL with *why (NULL: memory). */
static date_pat *dp_compile(slice s, const char **why)
{
    date_pat *d = calloc(1, sizeof(*d));
    *why = NULL;
    if (d == NULL)
        return NULL;
    size_t i = 0;
    while (i < s.len) {
        char ch = s.p[i];
        if (ch == '\'') {
            if (i + 1 < s.len && s.p[i + 1] == '\'') {
                if (dp_push(d, DP_LIT, 0, "'", 1) != 0)
                    goto oom;
                i += 2;
                continue;
            }
            i++;
            for (;;) {
                if (i >= s.len) {
                    *why = "unterminated quote in date pattern";
                    goto fail;
                }
                if (s.p[i] == '\'') {
                    if (i + 1 < s.len && s.p[i + 1] == '\'') {
                        if (dp_push(d, DP_LIT, 0, "'", 1) != 0)
                            goto oom;
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                if (dp_push(d, DP_LIT, 0, s.p + i, 1) != 0)
                    goto oom;
                i++;
            }
            continue;
        }
        if (!is_alpha((unsigned char)ch)) {
            if (dp_push(d, DP_LIT, 0, s.p + i, 1) != 0)
                goto oom;
            i++;
            continue;
        }
        int count = 0;
        while (i < s.len && s.p[i] == ch) {
            count++;
            i++;
        }
        enum dp_kind k;
        switch (ch) {
        case 'y':
            if (d->has_y)
                goto twice;
            d->has_y = 1;
            k = DP_YEAR;
            break;
        case 'M':
        case 'L':
            if (d->has_m)
                goto twice;
            d->has_m = 1;
            k = count >= 3 ? DP_MONTHNAME : DP_MONTH;
            break;
        case 'd':
            if (d->has_d)
                goto twice;
            d->has_d = 1;
            k = DP_DAY;
            break;
        case 'H': case 'k': case 'K': case 'h': case 'm': case 's': case 'S':
            k = DP_NUM;
            break;
        case 'a':
            k = DP_AMPM;
            break;
        case 'E':
            k = DP_DAYNAME;
            break;
        default:
            *why = "unsupported letter in date pattern (supported: y M L d H h k K m s S a E, 'text')";
            goto fail;
        }
        if (dp_push(d, k, count, NULL, 0) != 0)
            goto oom;
    }
    return d;
twice:
    *why = "a date pattern gives the year, month or day twice";
    goto fail;
oom:
    *why = NULL;
fail:
    dp_free(d);
    return NULL;
}

static const char *const month_names[12] = {"january", "february", "march",     "april",   "may",      "june",
                                             "july",    "august",   "september", "october", "november", "december"};
static const char *const day_names[7] = {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"};

/* Match an English name (full, or its first three letters) at v[*i]. */
static int match_name(slice v, size_t *i, const char *const *names, int count)
{
    size_t rest = v.len - *i;
    for (int k = 0; k < count; k++) {
        size_t nl = strlen(names[k]);
        if (rest >= nl && strncasecmp(v.p + *i, names[k], nl) == 0) {
            *i += nl;
            return k;
        }
    }
    for (int k = 0; k < count; k++) {
        if (rest >= 4 && names == month_names && k == 8 && strncasecmp(v.p + *i, "sept", 4) == 0) {
            *i += 4;
            return k;
        }
        if (rest >= 3 && strncasecmp(v.p + *i, names[k], 3) == 0) {
            *i += 3;
            return k;
        }
    }
    return -1;
}

static int days_in_month(int y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return dim[m - 1];
}

/* Parse v with the pattern into out "YYYY-MM-DD". A time part after the
 * date (text starting with a blank or 'T') is ignored. 0 / -1. */
static int dp_parse(const date_pat *d, slice v, char out[11])
{
    size_t i = 0;
    int y = -1, m = -1, day = 1;
    for (int k = 0; k < d->n; k++) {
        const dp_item *it = &d->items[k];
        if (it->kind == DP_LIT) {
            if (v.len - i < it->litlen || strncasecmp(v.p + i, it->lit, it->litlen) != 0)
                return -1;
            i += it->litlen;
            continue;
        }
        if (it->kind == DP_MONTHNAME) {
            int mn = match_name(v, &i, month_names, 12);
            if (mn < 0)
                return -1;
            m = mn + 1;
            continue;
        }
        if (it->kind == DP_DAYNAME) {
            if (match_name(v, &i, day_names, 7) < 0)
                return -1;
            continue;
        }
        if (it->kind == DP_AMPM) {
            if (v.len - i < 2 || (!ci_prefix(v.p + i, 2, "am") && !ci_prefix(v.p + i, 2, "pm")))
                return -1;
            i += 2;
            continue;
        }
        /* numeric: an exact width when the next item is numeric too (as
         * Java does for abutting fields like yyyyMMdd), else any width */
        int abut = k + 1 < d->n && dp_numeric(d->items[k + 1].kind);
        size_t maxw = abut ? (size_t)it->count : (it->kind == DP_YEAR || it->kind == DP_NUM ? 9 : 2);
        size_t minw = abut ? (size_t)it->count : 1;
        size_t nd = 0;
        long val = 0;
        while (nd < maxw && i < v.len && is_digit((unsigned char)v.p[i])) {
            val = val * 10 + (v.p[i] - '0');
            nd++;
            i++;
        }
        if (nd < minw)
            return -1;
        switch (it->kind) {
        case DP_YEAR:
            if (it->count <= 2 && nd == 2)
                y = (int)(val <= YY_PIVOT ? 2000 + val : 1900 + val);
            else if (nd == 4)
                y = (int)val;
            else
                return -1;
            break;
        case DP_MONTH:
            m = (int)val;
            break;
        case DP_DAY:
            day = (int)val;
            break;
        default:
            break;
        }
    }
    if (i < v.len && !is_blank((unsigned char)v.p[i]) && v.p[i] != 'T' && v.p[i] != 't')
        return -1;
    if (y < 1000 || y > 9999 || m < 1 || m > 12 || day < 1 || day > days_in_month(y, m))
        return -1;
    out[0] = (char)('0' + y / 1000);
    out[1] = (char)('0' + y / 100 % 10);
    out[2] = (char)('0' + y / 10 % 10);
    out[3] = (char)('0' + y % 10);
    out[4] = '-';
    out[5] = (char)('0' + m / 10);
    out[6] = (char)('0' + m % 10);
    out[7] = '-';
    out[8] = (char)('0' + day / 10);
    out[9] = (char)('0' + day % 10);
    out[10] = '\0';
    return 0;
}

/* The forms an untyped date may take, tried in this order. */
static const char *const default_date_forms[3] = {"yyyy-M-d", "M/d/yyyy", "yyyyMMdd"};

/* A date field's value -> canonical. 0 / -1 (not a date). */
static int date_canon(const profile *p, const date_pat *pat, slice v, char out[11])
{
    if (pat != NULL) {
        if (dp_parse(pat, v, out) == 0)
            return 0;
        /* the canonical form is always understood (map values, constants) */
        return dp_parse(p->defaults[0], v, out);
    }
    for (int i = 0; i < 3; i++) {
        if (i == 2) {
            /* YYYYMMDD: exactly eight digits */
            size_t nd = 0;
            while (nd < v.len && is_digit((unsigned char)v.p[nd]))
                nd++;
            if (nd != 8)
                continue;
        }
        if (dp_parse(p->defaults[i], v, out) == 0)
            return 0;
    }
    return -1;
}

/* ---------------------------------------------------------------- maps */

static int find_map(const profile *p, const char *name, size_t n)
{
    for (int i = 0; i < p->nmaps; i++)
        if (ci_eq(name, n, p->maps[i].name))
            return i;
    return -1;
}

static int add_map(profile *p, const char *name, size_t n)
{
    if (p->nmaps == p->mapcap) {
        int cap = p->mapcap ? p->mapcap * 2 : 8;
        pmap *nm = realloc(p->maps, (size_t)cap * sizeof(*nm));
        if (nm == NULL)
            return -1;
        p->maps = nm;
        p->mapcap = cap;
    }
    pmap *m = &p->maps[p->nmaps];
    memset(m, 0, sizeof(*m));
    m->name = dup_mem(name, n);
    if (m->name == NULL)
        return -1;
    m->def_entry = -1;
    return p->nmaps++;
}

static int map_add_ent(pmap *m, const char *key, size_t keylen, int from)
{
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        map_ent *ne = realloc(m->ents, cap * sizeof(*ne));
        if (ne == NULL)
            return -1;
        m->ents = ne;
        m->cap = cap;
    }
    map_ent *me = &m->ents[m->n];
    memset(me, 0, sizeof(*me));
    me->key = dup_mem(key, keylen);
    me->fkey = dup_mem(key, keylen);
    if (me->key == NULL || me->fkey == NULL) {
        free(me->key);
        free(me->fkey);
        return -1;
    }
    case_map(me->fkey, keylen, me->fkey, 0);
    me->keylen = keylen;
    me->entry = from;
    return (int)m->n++;
}

static size_t slot_of(const char *k, size_t n, size_t mask)
{
    return (size_t)hash64(k, n, HASH64_SEED) & mask;
}

/* Exact and case-folded hash tables over the map's values (a folded key
 * given twice: the later line wins). */
static int map_build(pmap *m)
{
    size_t cap = 8;
    while (cap < m->n * 2)
        cap *= 2;
    m->tab = calloc(cap, sizeof(uint32_t));
    m->ftab = calloc(cap, sizeof(uint32_t));
    if (m->tab == NULL || m->ftab == NULL)
        return -1;
    m->tabcap = cap;
    for (size_t i = 0; i < m->n; i++) {
        const map_ent *e = &m->ents[i];
        size_t h = slot_of(e->key, e->keylen, cap - 1);
        while (m->tab[h] != 0)
            h = (h + 1) & (cap - 1);
        m->tab[h] = (uint32_t)(i + 1);
        h = slot_of(e->fkey, e->keylen, cap - 1);
        for (;;) {
            uint32_t s = m->ftab[h];
            if (s == 0)
                break;
            const map_ent *o = &m->ents[s - 1];
            if (o->keylen == e->keylen && memcmp(o->fkey, e->fkey, e->keylen) == 0) {
                if (o->entry > e->entry)
                    goto next;
                break;
            }
            h = (h + 1) & (cap - 1);
        }
        m->ftab[h] = (uint32_t)(i + 1);
    next:;
    }
    return 0;
}

/* The entry for CSV value k: exact first, then without regard to case. */
static const map_ent *map_find(const pmap *m, slice k)
{
    if (m->n == 0)
        return NULL;
    size_t mask = m->tabcap - 1;
    size_t h = slot_of(k.p, k.len, mask);
    while (m->tab[h] != 0) {
        const map_ent *e = &m->ents[m->tab[h] - 1];
        if (e->keylen == k.len && memcmp(e->key, k.p, k.len) == 0)
            return e;
        h = (h + 1) & mask;
    }
    if (k.len > FOLD_MAX)
        return NULL;
    char buf[FOLD_MAX];
    case_map(k.p, k.len, buf, 0);
    h = slot_of(buf, k.len, mask);
    while (m->ftab[h] != 0) {
        const map_ent *e = &m->ents[m->ftab[h] - 1];
        if (e->keylen == k.len && memcmp(e->fkey, buf, k.len) == 0)
            return e;
        h = (h + 1) & mask;
    }
    return NULL;
}

/* ---------------------------------------------------------------- expressions */

typedef struct {
    const profile *p;
    const char *s;
    size_t n, i;
    int in_map;    /* a map value: omit is refused */
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
    while (x->i < x->n && is_blank((unsigned char)x->s[x->i]))
        x->i++;
}

static term *add_term(expr *e)
{
    term *nt = realloc(e->terms, (size_t)(e->nterms + 1) * sizeof(*nt));
    if (nt == NULL)
        return NULL;
    e->terms = nt;
    term *t = &e->terms[e->nterms++];
    memset(t, 0, sizeof(*t));
    return t;
}

static int add_lit(xparser *x, expr *e, const char *s, size_t n)
{
    if (n == 0)
        return 0;
    term *t = add_term(e);
    if (t == NULL)
        return -1;
    t->kind = TM_LIT;
    t->lit = dup_mem(s, n);
    if (t->lit == NULL)
        return -1;
    t->litlen = n;
    return 0;
}

static op *add_op(term *t)
{
    op *no = realloc(t->ops, (size_t)(t->nops + 1) * sizeof(*no));
    if (no == NULL)
        return NULL;
    t->ops = no;
    op *o = &t->ops[t->nops++];
    memset(o, 0, sizeof(*o));
    return o;
}

/* A non-negative number at the cursor. */
static int x_number(xparser *x, long max, long *out)
{
    size_t s = x->i;
    while (x->i < x->n && is_digit((unsigned char)x->s[x->i]))
        x->i++;
    return slice_int(mk_slice(x->s + s, x->i - s), 0, max, out);
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

/* Append a replacement piece: literal text (group -1, empty text skipped) or a group. */
static int push_piece(op *o, int group, const char *text, size_t len)
{
    if (group < 0 && len == 0)
        return 0;
    repl_piece *np = realloc(o->repl, (size_t)(o->nrepl + 1) * sizeof(*np));
    if (np == NULL)
        return -1;
    o->repl = np;
    repl_piece *rp = &np[o->nrepl];
    rp->group = group;
    rp->len = len;
    rp->text = NULL;
    if (group < 0) {
        rp->text = dup_mem(text, len);
        if (rp->text == NULL)
            return -1;
    }
    o->nrepl++;
    return 0;
}

static int compile_regex(xparser *x, op *o, const char *pat, const char *rep, size_t replen)
{
    o->re = malloc(sizeof(regex_t));
    if (o->re == NULL) {
        xwhy(x, "out of memory");
        return -1;
    }
    int rc = regcomp(o->re, pat, REG_EXTENDED);
    if (rc != 0) {
        char msg[200];
        regerror(rc, o->re, msg, sizeof(msg));
        free(o->re);
        o->re = NULL;
        xwhy(x, "bad regular expression \"%s\": %s", pat, msg);
        return -1;
    }
    size_t lit = 0, i = 0;
    while (i < replen) {
        if (rep[i] == '{' && i + 1 < replen && rep[i + 1] == '$') {
            size_t j = i + 2;
            long v = 0;
            while (j < replen && j < i + 6 && is_digit((unsigned char)rep[j]))
                v = v * 10 + (rep[j++] - '0');
            if (j > i + 2 && j < replen && rep[j] == '}') {
                if (v > MAX_GROUP || (size_t)v > o->re->re_nsub) {
                    xwhy(x, "replacement refers to group {$%ld}; the pattern has %zu", v, o->re->re_nsub);
                    return -1;
                }
                if (push_piece(o, -1, rep + lit, i - lit) != 0 || push_piece(o, (int)v, NULL, 0) != 0)
                    goto oom;
                i = j + 1;
                lit = i;
                continue;
            }
        }
        i++;
    }
    if (push_piece(o, -1, rep + lit, replen - lit) != 0)
        goto oom;
    return 0;
oom:
    xwhy(x, "out of memory");
    return -1;
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
    if (ci_eq(tok, tl, "omit")) {
        if (x->in_map) {
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
    if (ci_eq(tok, tl, "upper") || ci_eq(tok, tl, "uppercase")) {
        o->kind = OP_UPPER;
        return 0;
    }
    if (ci_eq(tok, tl, "lower") || ci_eq(tok, tl, "lowercase")) {
        o->kind = OP_LOWER;
        return 0;
    }
    if (ci_prefix(tok, tl, "map_")) {
        o->kind = OP_MAP;
        o->map = find_map(x->p, tok + 4, tl - 4);
        if (o->map < 0) {
            xwhy(x, "map '%.*s' is not defined (no map_%.*s_... line)", (int)(tl - 4), tok + 4, (int)(tl - 4),
                 tok + 4);
            return -1;
        }
        return 0;
    }
    if (ci_eq(tok, tl, "substring")) {
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
    if (ci_eq(tok, tl, "regex")) {
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
        if (rc == 0)
            rc = compile_regex(x, o, pat, rep, rl);
        free(pat);
        free(rep);
        return rc;
    }
    t->nops--; /* not an option after all */
    xwhy(x, "unknown option '%.*s' (options: map_<name>, omit, substring(start[,length]), "
            "regex(\"pattern\",\"replacement\"), upper, lower)",
         (int)tl, tok);
    return -1;
}

/* {n[,option...]} at the cursor (on the '{'). */
static int x_ref(xparser *x, expr *e)
{
    term *t = add_term(e);
    if (t == NULL) {
        xwhy(x, "out of memory");
        return -1;
    }
    t->kind = TM_REF;
    x->i++;
    x_skip_blanks(x);
    long col;
    if (x->i >= x->n || !is_digit((unsigned char)x->s[x->i]) || x_number(x, MAX_COLUMN, &col) != 0 || col < 1) {
        xwhy(x, "'{' must be followed by a column number 1..%d", MAX_COLUMN);
        return -1;
    }
    if (x->p->column_total > 0 && col > x->p->column_total) {
        xwhy(x, "column {%ld} is beyond field_type_total=%d", col, x->p->column_total);
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
    term *t = add_term(e);
    if (t == NULL) {
        xwhy(x, "out of memory");
        return -1;
    }
    t->kind = TM_ISEMPTY;
    x->i += 7;
    if (x_expect(x, '(', "after ISEMPTY") != 0)
        return -1;
    for (;;) {
        expr *a = x_seq(x, 1);
        if (a == NULL)
            return -1;
        expr **na = realloc(t->args, (size_t)(t->nargs + 1) * sizeof(*na));
        if (na == NULL) {
            expr_free(a);
            xwhy(x, "out of memory");
            return -1;
        }
        t->args = na;
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
    if (!ci_prefix(x->s + x->i, x->n - x->i, "isempty"))
        return 0;
    size_t j = x->i + 7;
    while (j < x->n && is_blank((unsigned char)x->s[j]))
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
        while (end > lit && is_blank((unsigned char)x->s[end - 1]))
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

/* Compile an expression (a field's or a map value's). NULL with the
 * message set for entry e. */
static expr *compile_expr(pctx *c, const entry *e, slice s, int in_map)
{
    xparser x;
    memset(&x, 0, sizeof(x));
    x.p = c->p;
    x.s = s.p;
    x.n = s.len;
    x.in_map = in_map;
    expr *ex = x_seq(&x, 0);
    if (ex == NULL) {
        perr(c, e->line, e->text, "%s", x.why);
        return NULL;
    }
    ex->omit = x.omit;
    ex->first_col = x.first_col;
    ex->max_col = x.max_col;
    return ex;
}

/* ---------------------------------------------------------------- passes 2-4 */

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

/* Pass 2: column types, and the maps with their values (not compiled yet,
 * so that an expression may use a map defined further down). */
static int pass_types_maps(pctx *c)
{
    profile *p = c->p;
    for (size_t i = 0; i < c->n; i++) {
        entry *e = &c->ents[i];
        if (e->dead)
            continue;
        if (e->cls == K_TYPE_COL) {
            int col = e->a;
            if (p->column_total > 0 && col > p->column_total) {
                perr(c, e->line, e->text, "column %d is beyond field_type_total=%d", col, p->column_total);
                return -1;
            }
            if (coltypes_grow(p, col) != 0)
                return oom(c);
            coltype *ct = &p->coltypes[col - 1];
            dp_free(ct->pat);
            memset(ct, 0, sizeof(*ct));
            ct->declared = 1;
            ct->entry = (int)i;
            slice v = mk_slice(e->val, e->vallen);
            if (v.len == 0 || ci_eq(v.p, v.len, "string"))
                continue;
            if (ci_eq(v.p, v.len, "date")) {
                ct->is_date = 1;
                continue;
            }
            slice rest = ci_prefix(v.p, v.len, "date") ? trim(mk_slice(v.p + 4, v.len - 4)) : mk_slice(NULL, 0);
            if (rest.len > 0 && rest.p[0] == ',') {
                slice pat = trim(mk_slice(rest.p + 1, rest.len - 1));
                const char *why;
                ct->is_date = 1;
                if (pat.len == 0)
                    continue;
                ct->pat = dp_compile(pat, &why);
                if (ct->pat == NULL) {
                    if (why == NULL)
                        return oom(c);
                    perr(c, e->line, e->text, "%s", why);
                    return -1;
                }
                continue;
            }
            perr(c, e->line, e->text, "a column type is 'string' or 'date,<pattern>'");
            return -1;
        }
        if (e->cls == K_MAP) {
            const char *name = e->key + 4;
            const char *u = memchr(name, '_', e->keylen - 4);
            size_t nl = (size_t)(u - name);
            const char *val = u + 1;
            size_t vl = e->keylen - 4 - nl - 1;
            int m = find_map(p, name, nl);
            if (m < 0)
                m = add_map(p, name, nl);
            if (m < 0)
                return oom(c);
            e->map = m;
            if (ci_eq(val, vl, "default")) {
                p->maps[m].def_entry = (int)i;
                e->ment = -1;
                continue;
            }
            int me = map_add_ent(&p->maps[m], val, vl, (int)i);
            if (me < 0)
                return oom(c);
            e->ment = me;
        }
    }
    return 0;
}

static int add_rule(pctx *c, const entry *e)
{
    profile *p = c->p;
    ruleset *rs = &p->rules[e->a];
    int n = e->b;
    slice v = mk_slice(e->val, e->vallen);
    if (v.len > 0 && rs->max >= 0 && n > rs->max) {
        perr(c, e->line, e->text, "rule number %d is above %s=%ld", n, rule_keys[e->a].max, rs->max);
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
        perr(c, e->line, e->text, "a rule is <field>,<value> (field_<name> or {n}; an empty value means blank)");
        return -1;
    }
    slice fld = trim(mk_slice(v.p, (size_t)(comma - v.p)));
    slice val = trim(mk_slice(comma + 1, v.len - (size_t)(comma - v.p) - 1));
    rule r;
    memset(&r, 0, sizeof(r));
    r.n = n;
    r.field = -1;
    if (fld.len >= 1 && fld.p[0] == '{') {
        long col;
        if (fld.len < 2 || fld.p[fld.len - 1] != '}' ||
            slice_int(trim(mk_slice(fld.p + 1, fld.len - 2)), 1, MAX_COLUMN, &col) != 0) {
            perr(c, e->line, e->text, "a rule's column is {n} with n 1..%d", MAX_COLUMN);
            return -1;
        }
        if (p->column_total > 0 && col > p->column_total) {
            perr(c, e->line, e->text, "column {%ld} is beyond field_type_total=%d", col, p->column_total);
            return -1;
        }
        r.col = (int)col;
        if (r.col > p->max_column)
            p->max_column = r.col;
    } else {
        slice nm = fld;
        if (ci_prefix(nm.p, nm.len, "field_")) {
            nm.p += 6;
            nm.len -= 6;
        }
        r.field = nm.len ? patron_field_lookup(nm.p, nm.len) : -1;
        if (r.field < 0) {
            perr(c, e->line, e->text, "a rule's field is field_<patron field> or {n}");
            return -1;
        }
    }
    r.val = dup_mem(val.p, val.len);
    if (r.val == NULL)
        return oom(c);
    r.vlen = val.len;
    if (rs->n == rs->cap) {
        int cap = rs->cap ? rs->cap * 2 : 4;
        rule *nr = realloc(rs->r, (size_t)cap * sizeof(*nr));
        if (nr == NULL) {
            free(r.val);
            return oom(c);
        }
        rs->r = nr;
        rs->cap = cap;
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

/* Pass 3: field expressions, map values, rules. */
static int pass_compile(pctx *c)
{
    profile *p = c->p;
    for (size_t i = 0; i < c->n; i++) {
        entry *e = &c->ents[i];
        if (e->dead)
            continue;
        slice v = mk_slice(e->val, e->vallen);
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
            pmap *m = &p->maps[e->map];
            if (e->ment < 0) {
                expr_free(m->def);
                m->def = x;
            } else {
                m->ents[e->ment].val = x;
            }
        } else if (e->cls == K_WHEN) {
            if (add_rule(c, e) != 0)
                return -1;
        }
    }
    return 0;
}

static int visit_map(pctx *c, int mi, const entry *from);

/* Check the maps x uses (visiting them first) and return the highest column
 * x reaches, through its maps too; -1 on a cycle (message set). */
static int expr_reach(pctx *c, const expr *x, const entry *from)
{
    int mc = x->max_col;
    for (int i = 0; i < x->nterms; i++) {
        const term *t = &x->terms[i];
        for (int j = 0; j < t->nops; j++) {
            if (t->ops[j].kind != OP_MAP)
                continue;
            if (visit_map(c, t->ops[j].map, from) != 0)
                return -1;
            if (c->p->maps[t->ops[j].map].max_col > mc)
                mc = c->p->maps[t->ops[j].map].max_col;
        }
        for (int j = 0; j < t->nargs; j++) {
            int a = expr_reach(c, t->args[j], from);
            if (a < 0)
                return -1;
            if (a > mc)
                mc = a;
        }
    }
    return mc;
}

/* Depth-first over map values: a map reached again while on the path is a
 * cycle (evaluation would never end). */
static int visit_map(pctx *c, int mi, const entry *from)
{
    pmap *m = &c->p->maps[mi];
    if (m->state == 2)
        return 0;
    if (m->state == 1) {
        perr(c, from->line, from->text, "map '%s' refers back to itself through map values", m->name);
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

/* Pass 4: map tables, cycles, the highest column, date fields. */
static int pass_check(pctx *c)
{
    profile *p = c->p;
    for (int m = 0; m < p->nmaps; m++)
        if (map_build(&p->maps[m]) != 0)
            return oom(c);
    for (int m = 0; m < p->nmaps; m++) {
        pmap *mp = &p->maps[m];
        int ei = mp->n > 0 ? mp->ents[0].entry : mp->def_entry;
        if (visit_map(c, m, &c->ents[ei]) != 0)
            return -1;
    }
    for (int f = 0; f < PF__COUNT; f++) {
        const expr *x = p->fields[f];
        if (x == NULL)
            continue;
        int mc = expr_reach(c, x, &c->ents[p->field_entry[f]]);
        if (mc < 0)
            return -1;
        p->field_max_column[f] = mc;
        if (mc > p->max_column)
            p->max_column = mc;
        if (patron_fields[f].kind != PK_DATE || x->first_col == 0 || x->first_col > p->ncoltypes)
            continue;
        const coltype *ct = &p->coltypes[x->first_col - 1];
        if (!ct->is_date || ct->pat == NULL)
            continue;
        if (!ct->pat->has_y || !ct->pat->has_m) {
            const entry *te = &c->ents[ct->entry];
            perr(c, te->line, te->text, "the date pattern of column %d (used by field_%s) has no year or month",
                 x->first_col, patron_fields[f].pic);
            return -1;
        }
        p->field_pat[f] = ct->pat;
    }
    for (int i = 0; i < 3; i++) {
        const char *why;
        p->defaults[i] = dp_compile(mk_slice(default_date_forms[i], strlen(default_date_forms[i])), &why);
        if (p->defaults[i] == NULL)
            return oom(c);
    }
    if (p->encoding == NULL)
        p->encoding = dup_mem(DEFAULT_ENCODING, strlen(DEFAULT_ENCODING));
    if (p->site_default == NULL)
        p->site_default = dup_mem("", 0);
    if (p->encoding == NULL || p->site_default == NULL)
        return oom(c);
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
        oom(&c);
        return NULL;
    }
    c.p->match_district_id = 1;
    for (int k = 0; k < 3; k++)
        c.p->rules[k].max = -1;
    if (text == NULL)
        len = 0;
    if (read_lines(&c, text ? text : "", len) != 0 || supersede(&c) != 0 || pass_settings(&c) != 0 ||
        pass_types_maps(&c) != 0 || pass_compile(&c) != 0 || pass_check(&c) != 0) {
        free_entries(&c);
        profile_destroy(&c.p);
        return NULL;
    }
    free_entries(&c);
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

int profile_rule_count(const profile *p, enum profile_rule which)
{
    if ((int)which < 0 || (int)which > 2)
        return 0;
    return p->rules[which].n;
}

int profile_field_max_column(const profile *p, int f)
{
    return f >= 0 && f < PF__COUNT && p->fields[f] != NULL ? p->field_max_column[f] : 0;
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

/* ---------------------------------------------------------------- evaluation */

typedef struct {
    const char *const *cols;
    const size_t *lens;
    size_t ncols;
} row;

static slice col_value(const row *r, int col)
{
    if (col < 1 || (size_t)col > r->ncols || r->cols == NULL || r->cols[col - 1] == NULL)
        return mk_slice(empty_str, 0);
    return trim(mk_slice(r->cols[col - 1], r->lens[col - 1]));
}

static int eval_expr(const profile *p, const expr *e, const row *r, scratch *sc, slice *out, char *err,
                     size_t errlen);

static int sc_oom(char *err, size_t errlen)
{
    err_set(err, errlen, "out of memory mapping a record");
    return -1;
}

static int apply_regex(const op *o, slice in, scratch *sc, slice *out, char *err, size_t errlen)
{
    regmatch_t m[MAX_GROUP + 1];
    builder b = {NULL, 0, 0};
    size_t pos = 0;
    int matched = 0;
    while (pos <= in.len) {
        m[0].rm_so = (regoff_t)pos;
        m[0].rm_eo = (regoff_t)in.len;
        int rc = regexec(o->re, in.p, MAX_GROUP + 1, m, REG_STARTEND);
        if (rc == REG_NOMATCH)
            break;
        if (rc != 0) {
            char msg[160];
            regerror(rc, o->re, msg, sizeof(msg));
            err_set(err, errlen, "regular expression failed on \"%.*s\": %s", (int)(in.len > 80 ? 80 : in.len),
                    in.p, msg);
            return -1;
        }
        matched = 1;
        size_t so = (size_t)m[0].rm_so, eo = (size_t)m[0].rm_eo;
        if (b_put(sc, &b, in.p + pos, so - pos) != 0)
            return sc_oom(err, errlen);
        for (int k = 0; k < o->nrepl; k++) {
            const repl_piece *rp = &o->repl[k];
            if (rp->group < 0) {
                if (b_put(sc, &b, rp->text, rp->len) != 0)
                    return sc_oom(err, errlen);
            } else if (m[rp->group].rm_so >= 0) {
                size_t gs = (size_t)m[rp->group].rm_so, ge = (size_t)m[rp->group].rm_eo;
                if (b_put(sc, &b, in.p + gs, ge - gs) != 0)
                    return sc_oom(err, errlen);
            }
        }
        if (eo > so) {
            pos = eo;
            continue;
        }
        /* an empty match: keep the next character and search after it */
        if (so >= in.len) {
            pos = in.len + 1;
            break;
        }
        size_t cl = 1;
        while (so + cl < in.len && ((unsigned char)in.p[so + cl] & 0xC0) == 0x80)
            cl++;
        if (b_put(sc, &b, in.p + so, cl) != 0)
            return sc_oom(err, errlen);
        pos = so + cl;
    }
    if (!matched) {
        *out = in;
        return 0;
    }
    if (pos < in.len && b_put(sc, &b, in.p + pos, in.len - pos) != 0)
        return sc_oom(err, errlen);
    *out = mk_slice(b.p ? b.p : empty_str, b.len);
    return 0;
}

static int apply_op(const profile *p, const op *o, slice in, const row *r, scratch *sc, slice *out, char *err,
                    size_t errlen)
{
    switch (o->kind) {
    case OP_MAP: {
        const pmap *m = &p->maps[o->map];
        const map_ent *me = map_find(m, trim(in));
        const expr *val = me ? me->val : m->def;
        if (val == NULL) {
            *out = in;
            return 0;
        }
        return eval_expr(p, val, r, sc, out, err, errlen);
    }
    case OP_SUBSTR: {
        size_t b = utf8_prefix(in.p, in.len, o->start);
        slice rest = mk_slice(in.p + b, in.len - b);
        size_t e = o->count == SIZE_MAX ? rest.len : utf8_prefix(rest.p, rest.len, o->count);
        *out = mk_slice(rest.p, e);
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
        case_map(in.p, in.len, buf, o->kind == OP_UPPER);
        *out = mk_slice(buf, in.len);
        return 0;
    }
    case OP_REGEX:
        return apply_regex(o, in, sc, out, err, errlen);
    }
    *out = in;
    return 0;
}

static int eval_term(const profile *p, const term *t, const row *r, scratch *sc, slice *out, char *err,
                     size_t errlen)
{
    switch (t->kind) {
    case TM_LIT:
        *out = mk_slice(t->lit, t->litlen);
        return 0;
    case TM_REF: {
        slice v = col_value(r, t->col);
        for (int i = 0; i < t->nops; i++)
            if (apply_op(p, &t->ops[i], v, r, sc, &v, err, errlen) != 0)
                return -1;
        *out = v;
        return 0;
    }
    case TM_ISEMPTY:
        for (int i = 0; i < t->nargs; i++) {
            slice v;
            if (eval_expr(p, t->args[i], r, sc, &v, err, errlen) != 0)
                return -1;
            v = trim(v);
            if (v.len > 0) {
                *out = v;
                return 0;
            }
        }
        *out = mk_slice(empty_str, 0);
        return 0;
    }
    *out = mk_slice(empty_str, 0);
    return 0;
}

static int eval_expr(const profile *p, const expr *e, const row *r, scratch *sc, slice *out, char *err,
                     size_t errlen)
{
    if (e->nterms == 0) {
        *out = mk_slice(empty_str, 0);
        return 0;
    }
    if (e->nterms == 1)
        return eval_term(p, &e->terms[0], r, sc, out, err, errlen);
    slice local[8];
    slice *parts = local;
    if (e->nterms > 8) {
        parts = sc_alloc(sc, (size_t)e->nterms * sizeof(slice));
        if (parts == NULL)
            return sc_oom(err, errlen);
    }
    size_t total = 0;
    for (int i = 0; i < e->nterms; i++) {
        if (eval_term(p, &e->terms[i], r, sc, &parts[i], err, errlen) != 0)
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
    *out = mk_slice(buf, total);
    return 0;
}

static int map_one(const profile *p, int f, const row *r, scratch *sc, patron_rec *rec, char *err,
                   size_t errlen)
{
    const expr *e = p->fields[f];
    slice v;
    int rc;
    if (eval_expr(p, e, r, sc, &v, err, errlen) != 0)
        return -1;
    v = trim(v);
    if (v.len == 0) {
        rc = patron_rec_set(rec, f, "", 0, e->omit ? PV_OMIT : PV_VALUE);
    } else if (patron_fields[f].kind == PK_DATE) {
        char d[11];
        if (date_canon(p, p->field_pat[f], v, d) == 0)
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
    row r = {cols, lens, ncols};
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
    row r = {cols, lens, ncols};
    sc_init(&sc, stack, sizeof(stack));
    int rc = map_one(p, f, &r, &sc, rec, err, errlen);
    sc_reset(&sc);
    return rc;
}

int profile_rule_matches(const profile *p, enum profile_rule which, const patron_rec *rec,
                         const char *const *cols, const size_t *lens, size_t ncols)
{
    if ((int)which < 0 || (int)which > 2)
        return 0;
    const ruleset *rs = &p->rules[which];
    if (rs->n == 0)
        return 0;
    row r = {cols, lens, ncols};
    for (int i = 0; i < rs->n; i++) {
        const rule *ru = &rs->r[i];
        slice v;
        if (ru->field >= 0) {
            const char *s = rec ? patron_rec_get(rec, ru->field) : "";
            v = trim(mk_slice(s, strlen(s)));
        } else {
            v = col_value(&r, ru->col);
        }
        int hit = ru->vlen == 0 ? v.len == 0 : fold_eq(v, mk_slice(ru->val, ru->vlen));
        if (rs->mode_and && !hit)
            return 0;
        if (!rs->mode_and && hit)
            return 1;
    }
    return rs->mode_and;
}
