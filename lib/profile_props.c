/* profile_props: the .properties reader (see profile_props.h and
 * docs/PROFILE.md §1). */
#include "profile_props.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "patron.h"
#include "profile_text.h"
#include "util.h"

typedef struct {
    props *pr;
    const char *name;
    char *err;
    size_t errlen;
} reader;

static int rd_oom(reader *r)
{
    return txt_oom(r->err, r->errlen, r->name);
}

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
        if (txt_is_digit(ch))
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

/* \uXXXX at s[*j] (on the 'u'), a UTF-16 pair joined, into o as UTF-8:
 * the bytes written, *j on the last digit read; -1 when malformed. At most
 * 4 bytes out for 6 (or 12) in, so the output never outgrows the input. */
static int unescape_u(const char *s, size_t n, size_t *j, char *o)
{
    uint32_t cp, lo;
    if (hex4(s, n, *j + 1, &cp) != 0)
        return -1;
    *j += 4;
    if (cp >= 0xD800 && cp <= 0xDBFF && *j + 2 < n && s[*j + 1] == '\\' && s[*j + 2] == 'u' &&
        hex4(s, n, *j + 3, &lo) == 0 && lo >= 0xDC00 && lo <= 0xDFFF) {
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        *j += 6;
    } else if (cp >= 0xD800 && cp <= 0xDFFF) {
        cp = 0xFFFD;
    }
    return (int)put_utf8(o, cp);
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
    while (j < n && txt_is_blank((unsigned char)s[j]))
        j++;
    for (; j < n; j++) {
        char ch = s[j];
        if (ch != '\\' || j + 1 >= n) {
            o[len++] = ch;
            if (!txt_is_blank((unsigned char)ch))
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
            int w = unescape_u(s, n, &j, o + len);
            if (w < 0) {
                free(o);
                *why = "malformed \\uXXXX escape";
                return NULL;
            }
            len += (size_t)w;
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
    if (txt_ci_prefix(k, n, "map_")) {
        const char *u = memchr(k + 4, '_', n - 4);
        if (u != NULL) {
            size_t head = (size_t)(u - k) + 1;
            for (size_t i = 0; i < head; i++)
                o[len++] = (char)txt_lower_ascii((unsigned char)k[i]);
            size_t rest = n - head;
            if (txt_ci_eq(u + 1, rest, "default")) {
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
    if (txt_ci_prefix(k, n, "field_") && !txt_ci_prefix(k, n, "field_type_")) {
        int f = patron_field_lookup(k + 6, n - 6);
        if (f >= 0) {
            const char *pic = patron_fields[f].pic;
            memcpy(o, "field_", 6);
            len = 6;
            for (size_t i = 0; pic[i]; i++)
                o[len++] = (char)txt_lower_ascii((unsigned char)pic[i]);
            o[len] = '\0';
            return o;
        }
    }
    for (size_t i = 0; i < n; i++)
        o[len++] = (char)txt_lower_ascii((unsigned char)k[i]);
    o[len] = '\0';
    return o;
}

static void line_free(props_line *e)
{
    free(e->key);
    free(e->val);
    free(e->text);
    free(e->norm);
}

/* Where the key ends: the first unescaped '=' (or, on a line without one,
 * the first unescaped ':'); SIZE_MAX when neither. Blanks inside a key are
 * kept. */
static size_t key_end(const char *raw, size_t n)
{
    size_t colon = SIZE_MAX;
    for (size_t j = 0; j < n; j++) {
        if (raw[j] == '\\') {
            j++;
            continue;
        }
        if (raw[j] == '=')
            return j;
        if (raw[j] == ':' && colon == SIZE_MAX)
            colon = j;
    }
    return colon;
}

/* The logical line raw[0..n) (first physical line `line`, as written `text`)
 * split into its key and value and appended. */
static int add_line(reader *r, const char *raw, size_t n, int line, slice text)
{
    props_line e;
    memset(&e, 0, sizeof(e));
    e.line = line;
    e.text = txt_dup(text.p, text.len);
    if (e.text == NULL)
        return rd_oom(r);
    const char *why = NULL;
    size_t sep = key_end(raw, n);
    if (sep == SIZE_MAX) {
        why = "expected key=value";
        goto refuse;
    }
    e.key = unescape(raw, sep, &e.keylen, &why);
    if (e.key != NULL)
        e.val = unescape(raw + sep + 1, n - sep - 1, &e.vallen, &why);
    if (e.key == NULL || e.val == NULL) {
        if (why == NULL)
            goto oom;
        goto refuse;
    }
    if (e.keylen == 0) {
        why = "empty key";
        goto refuse;
    }
    e.norm = norm_key(e.key, e.keylen);
    if (e.norm == NULL)
        goto oom;
    props *pr = r->pr;
    if (array_grow(&pr->v, &pr->cap, pr->n + 1, sizeof(*pr->v), 64) != 0)
        goto oom;
    pr->v[pr->n++] = e;
    return 0;
refuse:
    txt_line_err(r->err, r->errlen, r->name, line, e.text, "%s", why);
    line_free(&e);
    return -1;
oom:
    line_free(&e);
    return rd_oom(r);
}

/* The physical line at text[*i]: [*s, *e) without its line end; *i moves
 * past it. -1 (message set) when it holds a NUL byte. */
static int next_line(reader *r, const char *text, size_t len, size_t *i, int line, size_t *s, size_t *e)
{
    *s = *i;
    while (*i < len && text[*i] != '\n')
        (*i)++;
    *e = *i;
    if (*i < len)
        (*i)++;
    if (*e > *s && text[*e - 1] == '\r')
        (*e)--;
    if (memchr(text + *s, '\0', *e - *s) != NULL) {
        txt_line_err(r->err, r->errlen, r->name, line, "(line with a NUL byte)", "NUL byte in the file");
        return -1;
    }
    return 0;
}

/* While lg ends in an odd number of backslashes: drop the last one and
 * append the next physical line without its leading blanks (Java rule). */
static int join_continued(reader *r, const char *text, size_t len, size_t *i, int *line, strbuf *lg)
{
    for (;;) {
        size_t bs = 0;
        while (bs < lg->len && lg->buf[lg->len - 1 - bs] == '\\')
            bs++;
        if (bs % 2 == 0)
            return 0;
        lg->len--; /* drop the continuation backslash */
        lg->buf[lg->len] = '\0';
        if (*i >= len)
            return 0;
        size_t s, e;
        (*line)++;
        if (next_line(r, text, len, i, *line, &s, &e) != 0)
            return -1;
        while (s < e && txt_is_blank((unsigned char)text[s]))
            s++;
        if (sb_append(lg, text + s, e - s) < 0)
            return rd_oom(r);
    }
}

/* Physical lines -> lines: BOM, CRLF, blanks, # and ! comments,
 * #COMMENTS_BEGIN..#COMMENTS_END blocks, backslash continuation. */
static int read_lines(reader *r, const char *text, size_t len)
{
    size_t i = 0;
    int line = 0;
    int in_block = 0, block_line = 0;
    strbuf lg;
    sb_init(&lg);
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        i = 3;
    while (i < len) {
        size_t s, e;
        line++;
        if (next_line(r, text, len, &i, line, &s, &e) != 0)
            goto fail;
        slice ph = txt_trim(txt_slice(text + s, e - s));
        if (in_block) {
            if (txt_ci_eq(ph.p, ph.len, "#COMMENTS_END"))
                in_block = 0;
            continue;
        }
        if (txt_ci_eq(ph.p, ph.len, "#COMMENTS_BEGIN")) {
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
            rd_oom(r);
            goto fail;
        }
        if (join_continued(r, text, len, &i, &line, &lg) != 0)
            goto fail;
        if (add_line(r, lg.buf ? lg.buf : "", lg.len, first, ph) != 0)
            goto fail;
    }
    if (in_block) {
        txt_line_err(r->err, r->errlen, r->name, block_line, "#COMMENTS_BEGIN", "no #COMMENTS_END after it");
        goto fail;
    }
    sb_free(&lg);
    return 0;
fail:
    sb_free(&lg);
    return -1;
}

static int cmp_line_ptr(const void *a, const void *b)
{
    const props_line *x = *(const props_line *const *)a;
    const props_line *y = *(const props_line *const *)b;
    int r = strcmp(x->norm, y->norm);
    if (r != 0)
        return r;
    return (x->line > y->line) - (x->line < y->line);
}

/* A key given twice: the later line wins; the earlier is not looked at. */
static int supersede(reader *r)
{
    props *pr = r->pr;
    if (pr->n < 2)
        return 0;
    props_line **v = malloc(pr->n * sizeof(*v));
    if (v == NULL)
        return rd_oom(r);
    for (size_t i = 0; i < pr->n; i++)
        v[i] = &pr->v[i];
    qsort(v, pr->n, sizeof(*v), cmp_line_ptr);
    for (size_t i = 0; i + 1 < pr->n; i++)
        if (strcmp(v[i]->norm, v[i + 1]->norm) == 0)
            v[i]->dead = 1;
    free(v);
    return 0;
}

int props_read(props *pr, const char *text, size_t len, const char *name, char *err, size_t errlen)
{
    reader r = {pr, name, err, errlen};
    memset(pr, 0, sizeof(*pr));
    if (read_lines(&r, text, len) != 0 || supersede(&r) != 0) {
        props_free(pr);
        return -1;
    }
    return 0;
}

void props_free(props *pr)
{
    for (size_t i = 0; i < pr->n; i++)
        line_free(&pr->v[i]);
    free(pr->v);
    pr->v = NULL;
    pr->n = pr->cap = 0;
}
