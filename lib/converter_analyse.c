/* converter_analyse: what each column of a sample looks like (kind, date
 * pattern, distinct values), whether the first row is a header row, and
 * the values-based reasoning the proposals share (converter.h). The date
 * patterns are tried with the profile's own date reader (profile_dates),
 * so a pattern proposed is one the written profile reads the same way. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "converter_int.h"
#include "profile_dates.h"

/* ---------------------------------------------------------------- values */

static int has_letter(const char *v)
{
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (isalpha(*p) || *p >= 0x80)
            return 1;
    return 0;
}

static int all_digits(const char *v)
{
    if (*v == '\0')
        return 0;
    for (; *v; v++)
        if (!isdigit((unsigned char)*v))
            return 0;
    return 1;
}

static int is_email(const char *v)
{
    const char *at = strchr(v, '@');
    if (at == NULL || at == v || strchr(at + 1, '@') != NULL || strpbrk(v, " ,;<>") != NULL)
        return 0;
    const char *dot = strrchr(at, '.');
    return dot != NULL && dot > at + 1 && dot[1] != '\0';
}

/* 1: a phone number; 2: one written with separators ("(505) 555-1234"). */
static int is_phone(const char *v)
{
    int digits = 0, seps = 0;
    for (const char *p = v; *p; p++) {
        if (isdigit((unsigned char)*p))
            digits++;
        else if (strchr(" ()-.+", *p) != NULL)
            seps++;
        else
            return 0;
    }
    if (digits < 7 || digits > 15)
        return 0;
    return seps > 0 ? 2 : 1;
}

/* Whether v (its time part cut) has the shape of the numeric pattern pat:
 * a run of n letters is n digits when another run follows at once (Java's
 * adjacent number fields), a 4-digit year for yyyy, 2 for yy, else 1-2. */
static int date_shape(const char *v, const char *pat)
{
    size_t i = 0, vl = strcspn(v, " T");
    for (size_t j = 0; pat[j];) {
        if (!isalpha((unsigned char)pat[j])) {
            if (i >= vl || v[i] != pat[j])
                return 0;
            i++;
            j++;
            continue;
        }
        char l = pat[j];
        size_t n = 0;
        while (pat[j] == l) {
            n++;
            j++;
        }
        size_t lo = 1, hi = 2;
        if (isalpha((unsigned char)pat[j]) || (j > n && isalpha((unsigned char)pat[j - n - 1])))
            lo = hi = n;
        else if (l == 'y')
            lo = hi = n >= 3 ? 4 : 2;
        size_t d = 0;
        while (d < hi && i + d < vl && isdigit((unsigned char)v[i + d]))
            d++;
        if (d < lo || d > hi)
            return 0;
        i += d;
    }
    return i == vl;
}

static const char *const date_patterns[] = {"MM/dd/yyyy", "dd/MM/yyyy", "yyyy-MM-dd", "yyyy/MM/dd", "MM-dd-yyyy",
                                            "dd-MM-yyyy", "dd.MM.yyyy", "yyyyMMdd",   "MM/dd/yy",   NULL};

/* Values of column k (rows from start) as pointers, the empty ones left
 * out; *n of them. NULL: no memory. */
static const char **column_values(const converter *c, int k, size_t start, size_t *n)
{
    const char **v = calloc(c->nrows + 1, sizeof(*v));
    *n = 0;
    if (v == NULL)
        return NULL;
    for (size_t r = start; r < c->nrows; r++)
        if (c->cells[r][k][0] != '\0')
            v[(*n)++] = c->cells[r][k];
    return v;
}

/* The pattern every value reads with (into fmt), and the mean year. 0 / -1. */
static int find_date_pattern(const char **v, size_t n, char *fmt, size_t fmtlen, int *mean_year)
{
    date_pat *defaults[DP_NDEFAULT] = {NULL};
    int found = -1;
    if (dp_defaults(defaults) < 0)
        goto out;
    for (int p = 0; date_patterns[p] && found < 0; p++) {
        const char *why = NULL;
        date_pat *d = dp_compile(txt_slice(date_patterns[p], strlen(date_patterns[p])), &why);
        if (d == NULL)
            continue;
        long years = 0;
        size_t i = 0;
        for (; i < n; i++) {
            char canon[11];
            if (!date_shape(v[i], date_patterns[p]) || dp_canon(defaults, d, txt_slice(v[i], strlen(v[i])), canon) < 0)
                break;
            years += atoi(canon);
        }
        dp_free(d);
        if (i == n) {
            found = p;
            str_copy(fmt, fmtlen, date_patterns[p]);
            *mean_year = (int)(years / (long)n);
        }
    }
out:
    for (int i = 0; i < DP_NDEFAULT; i++)
        dp_free(defaults[i]);
    return found >= 0 ? 0 : -1;
}

/* Words of letters only (names, cities): no digit, no '@'. */
static int is_namelike(const char *v)
{
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (!(isalpha(*p) || *p >= 0x80 || strchr(" -'.,", *p)))
            return 0;
    return has_letter(v);
}

/* The kind of the values v[0..n) (distinct of them: nd). */
static enum conv_kind classify(const char **v, size_t n, size_t nd, conv_column *col)
{
    size_t email = 0, phone = 0, phone_sep = 0, digits = 0, names = 0;
    if (n == 0)
        return CK_EMPTY;
    for (size_t i = 0; i < n; i++) {
        email += is_email(v[i]);
        int ph = is_phone(v[i]);
        phone += ph > 0;
        phone_sep += ph == 2;
        digits += all_digits(v[i]);
        names += is_namelike(v[i]);
    }
    col->digits = digits == n;
    int year = 0;
    if (email == n)
        return CK_EMAIL;
    if (digits < n || n > 2) {
        if (find_date_pattern(v, n, col->date_format, sizeof(col->date_format), &year) == 0) {
            col->mean_year = year;
            return CK_DATE;
        }
    }
    if (phone == n && phone_sep * 2 >= n)
        return CK_PHONE;
    if (nd <= 20 && n >= 2 * nd)
        return CK_CODE;
    if (digits == n)
        return CK_NUMBER;
    if (names == n)
        return CK_NAME;
    return CK_TEXT;
}

/* ---------------------------------------------------------------- columns */

static void column_free(conv_column *col)
{
    for (size_t i = 0; i < col->kept; i++)
        free(col->distinct[i].value);
    free(col->distinct);
    free(col->header);
    memset(col, 0, sizeof(*col));
}

/* Column k described from the rows from start on. 0 / -1 (no memory). */
static int column_stats(const converter *c, int k, size_t start, conv_column *col)
{
    memset(col, 0, sizeof(*col));
    col->number = k + 1;
    col->field = -1;
    size_t n = 0, cap = 0;
    const char **v = column_values(c, k, start, &n);
    strset seen;
    strset_init(&seen);
    int rc = -1;
    if (v == NULL)
        goto out;
    col->rows = c->nrows - start;
    col->filled = n;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(v[i]);
        if (len > col->maxlen)
            col->maxlen = len;
        int added = strset_add(&seen, v[i], len);
        if (added < 0)
            goto out;
        if (added == 0) {
            for (size_t j = 0; j < col->kept; j++)
                if (strcmp(col->distinct[j].value, v[i]) == 0)
                    col->distinct[j].count++;
            continue;
        }
        col->ndistinct++;
        if (col->kept >= CONV_MAX_DISTINCT)
            continue;
        if (array_grow(&col->distinct, &cap, col->kept + 1, sizeof(*col->distinct), 16) < 0)
            goto out;
        col->distinct[col->kept].value = strdup(v[i]);
        if (col->distinct[col->kept].value == NULL)
            goto out;
        col->distinct[col->kept++].count = 1;
    }
    col->unique = n > 0 && col->ndistinct == n;
    col->kind = classify(v, n, col->ndistinct, col);
    rc = 0;
out:
    strset_free(&seen);
    free(v);
    return rc;
}

/* Whether v, a first-row cell, reads as one of the values of col (a value
 * below it). */
static int fits_column(const conv_column *col, const char *v)
{
    switch (col->kind) {
    case CK_NUMBER:
        return all_digits(v);
    case CK_DATE:
        return date_shape(v, col->date_format);
    case CK_EMAIL:
        return is_email(v);
    case CK_PHONE:
        return is_phone(v) > 0;
    case CK_CODE:
        for (size_t i = 0; i < col->kept; i++)
            if (strcasecmp(col->distinct[i].value, v) == 0)
                return 1;
        return 0;
    default:
        return 0;
    }
}

/* Decide whether row 0 is a header row: each cell that is a usual column
 * name, or unlike the values below it (a word over numbers, dates,
 * addresses, codes), counts for; each cell like the values below it, or
 * empty, counts against. */
static int decide_header(converter *c, char *err, size_t errlen)
{
    int names = 0, values = 0;
    char name_ex[128] = "", value_ex[128] = "";
    for (int k = 0; k < c->ncols; k++) {
        const char *v = c->cells[0][k];
        conv_column below;
        if (column_stats(c, k, 1, &below) < 0) {
            err_set(err, errlen, "out of memory");
            return -1;
        }
        int known = conv_header_field(v, NULL, NULL, 0) >= 0;
        int fits = fits_column(&below, v);
        if (c->nrows == 1) /* nothing below to compare with: the names alone */
            names += known;
        else if (known || (!fits && has_letter(v) && below.kind != CK_TEXT && below.kind != CK_NAME) ||
            (*v && below.kind == CK_EMPTY)) {
            names++;
            if (!name_ex[0])
                snprintf(name_ex, sizeof(name_ex), "\"%.40s\" (column %d) %s", v, k + 1,
                         known ? "is a usual column name" : "is unlike the values below it");
        } else if (fits || *v == '\0') {
            values++;
            if (!value_ex[0])
                snprintf(value_ex, sizeof(value_ex), "\"%.40s\" (column %d) is like the values below it", v, k + 1);
        }
        column_free(&below);
    }
    c->header = c->nrows > 1 ? names > values : names * 2 > c->ncols;
    if (c->header)
        snprintf(c->header_why, sizeof(c->header_why), "the first row looks like column names: %s; %d of %d cells",
                 name_ex, names, c->ncols);
    else
        snprintf(c->header_why, sizeof(c->header_why), "the first row looks like a record%s%s",
                 value_ex[0] ? ": " : "", value_ex);
    return 0;
}

int conv_analyse(converter *c, int header, char *err, size_t errlen)
{
    if (header >= 0) {
        c->header = header;
        snprintf(c->header_why, sizeof(c->header_why), "as given (%s)", header ? "--header" : "--no-header");
    } else if (decide_header(c, err, errlen) < 0) {
        return -1;
    }
    if (c->header && c->nrows < 2) {
        err_set(err, errlen, "%s holds a header row and no record: a sample needs a few records", c->name);
        return -1;
    }
    c->cols = calloc((size_t)c->ncols, sizeof(*c->cols));
    if (c->cols == NULL) {
        err_set(err, errlen, "out of memory");
        return -1;
    }
    for (int k = 0; k < c->ncols; k++) {
        if (column_stats(c, k, (size_t)c->header, &c->cols[k]) < 0 ||
            (c->header && (c->cols[k].header = strdup(c->cells[0][k])) == NULL)) {
            err_set(err, errlen, "out of memory");
            return -1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- in words */

void conv_describe_column(const conv_column *col, char *out, size_t outlen)
{
    switch (col->kind) {
    case CK_EMPTY:
        snprintf(out, outlen, "empty in every record");
        break;
    case CK_DATE:
        snprintf(out, outlen, "date %s", col->date_format);
        break;
    case CK_CODE:
        snprintf(out, outlen, "code, %zu value%s", col->ndistinct, col->ndistinct == 1 ? "" : "s");
        break;
    case CK_NUMBER:
        snprintf(out, outlen, "number%s", col->unique ? ", every value different" : "");
        break;
    case CK_EMAIL:
        snprintf(out, outlen, "e-mail address");
        break;
    case CK_PHONE:
        snprintf(out, outlen, "phone number");
        break;
    case CK_NAME:
        snprintf(out, outlen, "words%s", col->unique ? ", every value different" : "");
        break;
    default:
        snprintf(out, outlen, "text%s", col->unique ? ", every value different" : "");
        break;
    }
    if (col->filled < col->rows && col->kind != CK_EMPTY) {
        size_t l = strlen(out);
        snprintf(out + l, outlen - l, "; empty in %zu of %zu", col->rows - col->filled, col->rows);
    }
}
