/* profile_dates: date patterns and canonical dates (see profile_dates.h and
 * docs/PROFILE.md §6). */
#include "profile_dates.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

#define YY_PIVOT 45 /* yy: 00..45 -> 2000..2045, 46..99 -> 1946..1999 */

enum dp_kind { DP_LIT, DP_YEAR, DP_MONTH, DP_MONTHNAME, DP_DAY, DP_NUM, DP_AMPM, DP_DAYNAME };

typedef struct {
    enum dp_kind kind;
    int count; /* number of pattern letters */
    char *lit;
    size_t litlen;
} dp_item;

struct date_pat {
    dp_item *items;
    int n;
    size_t cap;
    int has_y, has_m, has_d;
    char *src; /* the pattern as written (profile explain) */
};

void dp_free(date_pat *d)
{
    if (d == NULL)
        return;
    for (int i = 0; i < d->n; i++)
        free(d->items[i].lit);
    free(d->items);
    free(d->src);
    free(d);
}

const char *dp_source(const date_pat *d)
{
    return d->src ? d->src : "";
}

int dp_has_year_month(const date_pat *d)
{
    return d->has_y && d->has_m;
}

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
    if (array_grow(&d->items, &d->cap, (size_t)d->n + 1, sizeof(*d->items), 8) != 0)
        return -1;
    dp_item *it = &d->items[d->n];
    memset(it, 0, sizeof(*it));
    it->kind = kind;
    it->count = count;
    if (kind == DP_LIT) {
        it->lit = txt_dup(lit, litlen);
        if (it->lit == NULL)
            return -1;
        it->litlen = litlen;
    }
    d->n++;
    return 0;
}

/* Mark a year, month or day given; -1 when it was given before. */
static int once(int *has)
{
    if (*has)
        return -1;
    *has = 1;
    return 0;
}

/* A quote pair '' at s[i]. */
static int quote_pair(slice s, size_t i)
{
    return i + 1 < s.len && s.p[i] == '\'' && s.p[i + 1] == '\'';
}

/* Quoted text at s[*i] (on the quote), literal, a quote pair in it a quote;
 * or a quote pair outside quoted text, a quote. -1 with *why (left NULL: no
 * memory). */
static int dp_quoted(date_pat *d, slice s, size_t *i, const char **why)
{
    if (quote_pair(s, *i)) {
        *i += 2;
        return dp_push(d, DP_LIT, 0, "'", 1);
    }
    for ((*i)++;;) {
        if (*i >= s.len) {
            *why = "unterminated quote in date pattern";
            return -1;
        }
        if (s.p[*i] == '\'' && !quote_pair(s, *i)) {
            (*i)++;
            return 0;
        }
        if (dp_push(d, DP_LIT, 0, s.p + *i, 1) != 0)
            return -1;
        *i += quote_pair(s, *i) ? 2 : 1;
    }
}

/* Compile a Java SimpleDateFormat pattern. NULL with *why (NULL: memory). */
date_pat *dp_compile(slice s, const char **why)
{
    date_pat *d = calloc(1, sizeof(*d));
    *why = NULL;
    if (d == NULL)
        return NULL;
    size_t i = 0;
    while (i < s.len) {
        char ch = s.p[i];
        if (ch == '\'') {
            if (dp_quoted(d, s, &i, why) != 0)
                goto fail;
            continue;
        }
        if (!txt_is_alpha((unsigned char)ch)) {
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
            if (once(&d->has_y) != 0)
                goto twice;
            k = DP_YEAR;
            break;
        case 'M':
        case 'L':
            if (once(&d->has_m) != 0)
                goto twice;
            k = count >= 3 ? DP_MONTHNAME : DP_MONTH;
            break;
        case 'd':
            if (once(&d->has_d) != 0)
                goto twice;
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
    d->src = strndup(s.p, s.len);
    if (d->src == NULL)
        goto oom;
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

/* v as n decimal digits at o (v < 10^n). */
static void put_digits(char *o, int v, int n)
{
    for (int k = n - 1; k >= 0; k--) {
        o[k] = (char)('0' + v % 10);
        v /= 10;
    }
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
            if (v.len - i < 2 || (!txt_ci_prefix(v.p + i, 2, "am") && !txt_ci_prefix(v.p + i, 2, "pm")))
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
        while (nd < maxw && i < v.len && txt_is_digit((unsigned char)v.p[i])) {
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
    if (i < v.len && !txt_is_blank((unsigned char)v.p[i]) && v.p[i] != 'T' && v.p[i] != 't')
        return -1;
    if (y < 1000 || y > 9999 || m < 1 || m > 12 || day < 1 || day > days_in_month(y, m))
        return -1;
    put_digits(out, y, 4);
    out[4] = '-';
    put_digits(out + 5, m, 2);
    out[7] = '-';
    put_digits(out + 8, day, 2);
    out[10] = '\0';
    return 0;
}

/* The forms an untyped date may take, tried in this order. */
static const char *const default_date_forms[DP_NDEFAULT] = {"yyyy-M-d", "M/d/yyyy", "yyyyMMdd"};

int dp_defaults(date_pat *d[DP_NDEFAULT])
{
    for (int i = 0; i < DP_NDEFAULT; i++) {
        const char *why;
        d[i] = dp_compile(txt_slice(default_date_forms[i], strlen(default_date_forms[i])), &why);
        if (d[i] == NULL)
            return -1;
    }
    return 0;
}

int dp_canon(date_pat *const defaults[DP_NDEFAULT], const date_pat *pat, slice v, char out[11])
{
    if (pat != NULL) {
        if (dp_parse(pat, v, out) == 0)
            return 0;
        /* the canonical form is always understood (map values, constants) */
        return dp_parse(defaults[0], v, out);
    }
    for (int i = 0; i < DP_NDEFAULT; i++) {
        if (i == 2) {
            /* YYYYMMDD: exactly eight digits */
            size_t nd = 0;
            while (nd < v.len && txt_is_digit((unsigned char)v.p[nd]))
                nd++;
            if (nd != 8)
                continue;
        }
        if (dp_parse(defaults[i], v, out) == 0)
            return 0;
    }
    return -1;
}

