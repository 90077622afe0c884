/* converter: reading the sample into rows, the sites and patron types the
 * maps may name, and the caller's choices (converter.h). What the columns
 * look like and the proposals: converter_analyse.c; the text written:
 * converter_write.c. */
#include "converter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "converter_int.h"
#include "csvscan.h"
#include "encoding.h"

/* ---------------------------------------------------------------- encoding */

/* 1 when p[0..n) is valid UTF-8 holding at least one non-ASCII character. */
static int utf8_with_letters(const unsigned char *p, size_t n)
{
    int wide = 0;
    for (size_t i = 0; i < n;) {
        unsigned char b = p[i];
        size_t k = b < 0x80 ? 1 : (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : (b & 0xF8) == 0xF0 ? 4 : 0;
        if (k == 0 || (k == 2 && b < 0xC2) || i + k > n)
            return 0;
        for (size_t j = 1; j < k; j++)
            if ((p[i + j] & 0xC0) != 0x80)
                return 0;
        wide |= k > 1;
        i += k;
    }
    return wide;
}

const char *conv_guess_encoding(const char *bytes, size_t len, char *why, size_t whylen)
{
    const unsigned char *p = (const unsigned char *)bytes;
    if (len >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF) {
        err_set(why, whylen, "the file starts with a UTF-8 byte-order mark");
        return "UTF-8";
    }
    if (len >= 2 && ((p[0] == 0xFF && p[1] == 0xFE) || (p[0] == 0xFE && p[1] == 0xFF))) {
        err_set(why, whylen, "the file starts with a UTF-16 byte-order mark");
        return p[0] == 0xFF ? "UTF-16LE" : "UTF-16BE";
    }
    size_t n = len < 65536 ? len & ~(size_t)1 : 65536, first = 0, second = 0;
    for (size_t i = 0; i < n; i += 2) {
        first += p[i] == 0;
        second += p[i + 1] == 0;
    }
    if (n >= 4 && (first > n / 16 || second > n / 16)) {
        err_set(why, whylen, "every second byte is NUL: UTF-16 without a byte-order mark");
        return second > first ? "UTF-16LE" : "UTF-16BE";
    }
    if (utf8_with_letters(p, len)) {
        err_set(why, whylen, "the bytes are valid UTF-8 with letters beyond ASCII");
        return "UTF-8";
    }
    err_set(why, whylen, "nothing in the bytes says otherwise: Destiny's default");
    return "windows-1252";
}

/* ---------------------------------------------------------------- rows */

static void free_rows(converter *c)
{
    for (size_t r = 0; r < c->nrows; r++) {
        for (int k = 0; k < c->ncols; k++)
            free(c->cells[r][k]);
        free(c->cells[r]);
    }
    free(c->cells);
    c->cells = NULL;
    c->nrows = 0;
}

/* One parsed record as a row of ncols new strings. */
static char **row_copy(csvrow *row, int ncols)
{
    char **cells = calloc((size_t)ncols, sizeof(*cells));
    if (cells == NULL)
        return NULL;
    const char *const *f = csvrow_fields(row);
    const size_t *l = csvrow_lens(row);
    for (int k = 0; k < ncols; k++) {
        slice s = conv_trim(f[k], l[k]);
        cells[k] = strndup(s.p, s.len);
        if (cells[k] == NULL) {
            for (int j = 0; j < k; j++)
                free(cells[j]);
            free(cells);
            return NULL;
        }
    }
    return cells;
}

/* The records of c->text into c->cells. 0 / -1 with err. */
static int read_rows(converter *c, char *err, size_t errlen)
{
    csvrow *row = csvrow_new(CONV_MAX_COLUMNS);
    size_t cap = 0;
    uint64_t first_line = 0;
    int rc = -1;
    csvscan sc;
    csvscan_init(&sc, c->text, c->len, 1, 1 << 20);
    csvscan_rec r;
    if (row == NULL)
        goto oom;
    while (c->nrows < CONV_SAMPLE_ROWS + 1 && csvscan_next(&sc, &r)) {
        if (r.flags & CSVSCAN_NUL) {
            err_set(err, errlen, "%s:%llu: the record holds NUL bytes: this is not a CSV text file", c->name,
                    (unsigned long long)r.line);
            goto out;
        }
        if (csvrow_parse(row, c->text + r.off, r.len, err, errlen) < 0) {
            err_prefix(err, errlen, "%s:%llu: ", c->name, (unsigned long long)r.line);
            goto out;
        }
        int n = (int)csvrow_count(row);
        if (c->nrows == 0) {
            c->ncols = n;
            first_line = r.line;
        } else if (n != c->ncols) {
            err_set(err, errlen, "%s:%llu: %d field%s, but line %llu has %d: every row must have as many columns",
                    c->name, (unsigned long long)r.line, n, n == 1 ? "" : "s", (unsigned long long)first_line,
                    c->ncols);
            goto out;
        }
        if (array_grow(&c->cells, &cap, c->nrows + 1, sizeof(*c->cells), 256) < 0)
            goto oom;
        c->cells[c->nrows] = row_copy(row, n);
        if (c->cells[c->nrows] == NULL)
            goto oom;
        c->nrows++;
    }
    rc = 0;
    goto out;
oom:
    err_set(err, errlen, "out of memory reading %s", c->name);
out:
    csvrow_destroy(&row);
    return rc;
}

/* The sample's text judged before it is analysed. 0 / -1 with err. */
static int judge_text(const converter *c, const encoding_report *rep, char *err, size_t errlen)
{
    size_t blank = 0;
    for (size_t i = 0; i < c->len; i++)
        blank += c->text[i] == ' ' || c->text[i] == '\t' || c->text[i] == '\r' || c->text[i] == '\n';
    if (c->len == blank) {
        err_set(err, errlen, "%s is empty: a sample needs a few records of the export", c->name);
        return -1;
    }
    if (memchr(c->text, '\0', c->len) != NULL || (rep->bad_total > 16 && rep->bad_total * 20 > c->len)) {
        err_set(err, errlen, "%s is not a text file in %s (%s): a binary file, or another encoding (--encoding)",
                c->name, c->encoding, rep->bad_total ? "many bytes invalid in it" : "it holds NUL bytes");
        return -1;
    }
    return 0;
}

converter *conv_new(const char *bytes, size_t len, const char *encoding, const char *name, int header, char *err,
                    size_t errlen)
{
    converter *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        err_set(err, errlen, "out of memory");
        return NULL;
    }
    str_copy(c->name, sizeof(c->name), name ? name : "sample");
    sb_init(&c->notes);
    c->match_district_id = 1;
    if (encoding && *encoding) {
        str_copy(c->encoding, sizeof(c->encoding), encoding);
        err_set(c->encoding_why, sizeof(c->encoding_why), "as given");
    } else {
        str_copy(c->encoding, sizeof(c->encoding),
                 conv_guess_encoding(bytes, len, c->encoding_why, sizeof(c->encoding_why)));
    }
    if (!encoding_known(c->encoding)) {
        err_set(err, errlen, "encoding '%s' is not known", c->encoding);
        goto fail;
    }
    encoding_report rep;
    c->text = encoding_convert_mem(c->encoding, bytes, len, c->name, &c->len, &rep, err, errlen);
    int bad = c->text == NULL || judge_text(c, &rep, err, errlen) < 0;
    encoding_report_free(&rep);
    if (bad || read_rows(c, err, errlen) < 0)
        goto fail;
    if (c->ncols < 2) {
        err_set(err, errlen, "%s has one column only: a patron export has several, separated by commas", c->name);
        goto fail;
    }
    if (conv_analyse(c, header, err, errlen) < 0)
        goto fail;
    return c;
fail:
    conv_destroy(&c);
    return NULL;
}

void conv_destroy(converter **cp)
{
    if (cp == NULL || *cp == NULL)
        return;
    converter *c = *cp;
    free_rows(c);
    for (int k = 0; c->cols && k < c->ncols; k++) {
        free(c->cols[k].header);
        for (size_t i = 0; i < c->cols[k].kept; i++)
            free(c->cols[k].distinct[i].value);
        free(c->cols[k].distinct);
    }
    free(c->cols);
    conv_clear_maps(c);
    free(c->maps);
    for (int f = 0; f < PF__COUNT; f++)
        free(c->defaults[f]);
    for (int w = 0; w < 2; w++) {
        conv_clear_rules(c, w);
        free(c->rules[w]);
    }
    for (size_t i = 0; i < c->ntypes; i++)
        free(c->patron_types[i]);
    free(c->patron_types);
    free(c->sites);
    sb_free(&c->notes);
    free(c->text);
    free(c);
    *cp = NULL;
}

/* ---------------------------------------------------------------- sites, types */

int conv_add_site(converter *c, const char *short_name, const char *number, const char *name, int checked)
{
    for (size_t i = 0; i < c->nsites; i++) {
        conv_site *s = &c->sites[i];
        if (strcasecmp(s->short_name, short_name) == 0) {
            if (number && *number && !s->number[0])
                str_copy(s->number, sizeof(s->number), number);
            if (name && *name && !s->name[0])
                str_copy(s->name, sizeof(s->name), name);
            return 0;
        }
    }
    if (array_grow(&c->sites, &c->sitecap, c->nsites + 1, sizeof(*c->sites), 64) < 0)
        return -1;
    conv_site *s = &c->sites[c->nsites++];
    memset(s, 0, sizeof(*s));
    str_copy(s->short_name, sizeof(s->short_name), short_name);
    str_copy(s->number, sizeof(s->number), number);
    str_copy(s->name, sizeof(s->name), name);
    if (checked)
        c->sites_checked = 1;
    return 0;
}

static int site_known(const converter *c, const char *short_name)
{
    for (size_t i = 0; i < c->nsites; i++)
        if (strcasecmp(c->sites[i].short_name, short_name) == 0)
            return 1;
    return 0;
}

static int header_index(const char *const *f, size_t nf, const char *const *names)
{
    for (size_t k = 0; k < nf; k++)
        for (size_t j = 0; names[j]; j++)
            if (strcasecmp(f[k], names[j]) == 0)
                return (int)k;
    return -1;
}

int conv_sites_from_csv(converter *c, const char *text, size_t len, const char *name, char *err, size_t errlen)
{
    static const char *const shorts[] = {"short_name", "shortname", "site", "site_short_name", NULL};
    static const char *const numbers[] = {"school_number", "number", "school_id", "schoolid", "code", "school_code",
                                          NULL};
    static const char *const names[] = {"name", "site_name", "school_name", NULL};
    csvrow *row = csvrow_new(256);
    csvscan sc;
    csvscan_init(&sc, text, len, 1, 1 << 16);
    csvscan_rec r;
    int ks = -1, kn = -1, kname = -1, added = 0, rc = -1;
    if (row == NULL) {
        err_set(err, errlen, "out of memory reading %s", name);
        return -1;
    }
    while (csvscan_next(&sc, &r)) {
        if (csvrow_parse(row, text + r.off, r.len, err, errlen) < 0) {
            err_prefix(err, errlen, "%s:%llu: ", name, (unsigned long long)r.line);
            goto out;
        }
        const char *const *f = csvrow_fields(row);
        size_t nf = csvrow_count(row);
        if (ks < 0) {
            ks = header_index(f, nf, shorts);
            kn = header_index(f, nf, numbers);
            kname = header_index(f, nf, names);
            if (ks < 0 || kn < 0) {
                err_set(err, errlen, "%s:%llu: expected a header row naming short_name and school_number", name,
                        (unsigned long long)r.line);
                goto out;
            }
            continue;
        }
        if ((size_t)ks >= nf || f[ks][0] == '\0')
            continue;
        const char *num = (size_t)kn < nf ? f[kn] : "";
        if (c->sites_checked && !site_known(c, f[ks])) {
            sb_printf(&c->notes, "%s:%llu: site %s is not a site of the store: left out\n", name,
                      (unsigned long long)r.line, f[ks]);
            continue;
        }
        if (conv_add_site(c, f[ks], num, kname >= 0 && (size_t)kname < nf ? f[kname] : "", 0) < 0) {
            err_set(err, errlen, "out of memory reading %s", name);
            goto out;
        }
        added++;
    }
    rc = added;
out:
    csvrow_destroy(&row);
    return rc;
}

int conv_set_patron_types(converter *c, char *const *names, size_t n, const char *dflt)
{
    for (size_t i = 0; i < c->ntypes; i++)
        free(c->patron_types[i]);
    free(c->patron_types);
    c->ntypes = 0;
    c->patron_types = calloc(n ? n : 1, sizeof(char *));
    if (c->patron_types == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        c->patron_types[i] = strdup(names[i]);
        if (c->patron_types[i] == NULL)
            return -1;
        c->ntypes++;
    }
    str_copy(c->default_type, sizeof(c->default_type), dflt);
    return 0;
}

/* ---------------------------------------------------------------- choices */

void conv_drop_map(converter *c, int field)
{
    for (size_t i = 0; i < c->nmaps; i++) {
        if (c->maps[i].field != field)
            continue;
        conv_free_map(&c->maps[i]);
        memmove(&c->maps[i], &c->maps[i + 1], (c->nmaps - i - 1) * sizeof(*c->maps));
        c->nmaps--;
        return;
    }
}

int conv_set_field(converter *c, int col, int field, const char *why, char *err, size_t errlen)
{
    if (col < 1 || col > c->ncols) {
        err_set(err, errlen, "column %d is out of range: %s has columns 1 to %d", col, c->name, c->ncols);
        return -1;
    }
    if (field >= PF__COUNT) {
        err_set(err, errlen, "field %d is not a patron field", field);
        return -1;
    }
    conv_column *k = &c->cols[col - 1];
    if (k->field == field)
        return 0;
    if (k->field >= 0)
        conv_drop_map(c, k->field);
    if (field >= 0) {
        int before = conv_field_column(c, field);
        if (before > 0) {
            c->cols[before - 1].field = -1;
            err_set(c->cols[before - 1].reason, sizeof(c->cols[before - 1].reason), "%s is column %d's now",
                    patron_fields[field].label, col);
        }
        conv_drop_map(c, field);
    }
    k->field = field;
    k->score = 100;
    str_copy(k->reason, sizeof(k->reason), why ? why : "as chosen");
    return field >= 0 ? conv_propose_map(c, col) : 0;
}

int conv_map_value(converter *c, int field, const char *from, const char *to, char *err, size_t errlen)
{
    if (field < 0 || field >= PF__COUNT) {
        err_set(err, errlen, "not a patron field");
        return -1;
    }
    if (conv_writable(from, "value", err, errlen) < 0 || conv_writable(to, "value", err, errlen) < 0)
        return -1;
    int col = conv_field_column(c, field);
    if (col == 0 && field == PF_PATRON_TYPE)
        col = conv_field_column(c, PF_GRADE_LEVEL);
    if (col == 0) {
        err_set(err, errlen, "%s has no column to map: give it one first (--map N=%s)", patron_fields[field].pic,
                patron_fields[field].pic);
        return -1;
    }
    conv_map *m = conv_map_for(c, field, col == conv_field_column(c, field) ? 0 : col);
    if (m == NULL || conv_pair_set(m, from, to, "as chosen") < 0) {
        err_set(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

int conv_set_default(converter *c, int field, const char *value, char *err, size_t errlen)
{
    if (field < 0 || field >= PF__COUNT) {
        err_set(err, errlen, "not a patron field");
        return -1;
    }
    if (conv_writable(value, "value", err, errlen) < 0)
        return -1;
    if (strpbrk(value, ",()") != NULL) {
        err_set(err, errlen, "default \"%s\" for %s holds a comma or parenthesis: it is written inside ISEMPTY(...), "
                "which cannot hold them", value, patron_fields[field].pic);
        return -1;
    }
    free(c->defaults[field]);
    c->defaults[field] = NULL;
    if (*value == '\0')
        return 0;
    c->defaults[field] = strdup(value);
    if (c->defaults[field] == NULL) {
        err_set(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

int conv_set_site_default(converter *c, const char *short_name, char *err, size_t errlen)
{
    if (strlen(short_name) > 10 || conv_writable(short_name, "site", err, errlen) < 0) {
        if (strlen(short_name) > 10)
            err_set(err, errlen, "site short name '%s' is longer than 10 characters", short_name);
        return -1;
    }
    str_copy(c->site_default, sizeof(c->site_default), short_name);
    return 0;
}
