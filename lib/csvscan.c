/* csvscan: CSV record boundaries exactly as libcsv 3.0.3 splits rows, and one record's fields parsed by libcsv. */
#include "csvscan.h"

#include "util.h"

#include <csv.h>
#include <stdlib.h>
#include <string.h>

/* The scanner mirrors libcsv's csv_parse state machine (libcsv.c, 3.0.3),
 * reduced to what decides where a row ends:
 *   ROW_NOT_BEGUN           spaces, tabs, CR and LF are skipped (blank)
 *   FIELD_NOT_BEGUN /       "unquoted": a CR or LF ends the row; a quote
 *   FIELD_BEGUN, !quoted    opens a quoted field only when no byte but
 *                           spaces/tabs follows the last comma
 *   FIELD_BEGUN, quoted     only a quote matters (it may close the field)
 *   FIELD_MIGHT_HAVE_ENDED  after that quote: see scan_after_quote
 * Ordinary bytes are skipped with memchr over cached "next special byte"
 * positions, which is what makes the scan fast. */

static int is_blank(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* Offset of the next ch at or after from (s->len when none), refreshing
 * the cache. Valid because the offsets asked for never decrease. */
static size_t next_of(const csvscan *s, size_t *cache, int ch, size_t from)
{
    if (*cache >= from)
        return *cache;
    const char *p = memchr(s->buf + from, ch, s->len - from);
    *cache = p ? (size_t)(p - s->buf) : s->len;
    return *cache;
}

static size_t min_sz(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* Physical line ends in buf[from..to): CRLF, lone CR and lone LF count one
 * each. from is never just after a CR here (it follows a quote or another
 * ordinary byte). */
static uint64_t count_lines(csvscan *s, size_t from, size_t to)
{
    const unsigned char *b = (const unsigned char *)s->buf;
    uint64_t n = 0;
    size_t k = from;
    for (;;) {
        size_t t = min_sz(next_of(s, &s->next_cr, '\r', k), next_of(s, &s->next_lf, '\n', k));
        if (t >= to)
            return n;
        n++;
        if (b[t] == '\r' && t + 1 < to && b[t + 1] == '\n')
            k = t + 2;
        else
            k = t + 1;
    }
}

void csvscan_init(csvscan *s, const char *buf, size_t len, uint64_t first_line, size_t max_record)
{
    s->buf = buf;
    s->len = buf ? len : 0;
    s->pos = 0;
    s->line = first_line;
    s->max_record = max_record;
    /* Seed the caches from offset 0 (next_of trusts any cached value at
     * or past the offset asked for). */
    s->next_quote = s->next_cr = s->next_lf = s->next_nul = s->len;
    if (s->len > 0) {
        const char *p = memchr(buf, '"', len);
        s->next_quote = p ? (size_t)(p - buf) : len;
        p = memchr(buf, '\r', len);
        s->next_cr = p ? (size_t)(p - buf) : len;
        p = memchr(buf, '\n', len);
        s->next_lf = p ? (size_t)(p - buf) : len;
        p = memchr(buf, '\0', len);
        s->next_nul = p ? (size_t)(p - buf) : len;
    }
}

enum { IN_UNQUOTED, IN_QUOTED, ROW_ENDED };

/* After the quote that may close a quoted field (libcsv's
 * FIELD_MIGHT_HAVE_ENDED), from *i: sets *i past what was consumed and
 * returns the next state; ROW_ENDED leaves *i at the line end or the end
 * of the buffer. */
static int scan_after_quote(const csvscan *s, size_t *i)
{
    const unsigned char *b = (const unsigned char *)s->buf;
    size_t k = *i;
    size_t spaces = 0;
    for (;;) {
        if (k >= s->len) {
            *i = k;
            return ROW_ENDED; /* csv_fini submits the field and the row */
        }
        unsigned char c = b[k];
        if (c == ',') {
            /* FIELD_NOT_BEGUN, starting at this comma. Shortcut for the
             * common `","`: blanks then a quote open the next field. */
            k++;
            while (k < s->len && is_blank(b[k]))
                k++;
            if (k < s->len && b[k] == '"') {
                *i = k + 1;
                return IN_QUOTED;
            }
            *i = k;
            return IN_UNQUOTED;
        }
        if (c == '\r' || c == '\n') {
            *i = k;
            return ROW_ENDED;
        }
        if (is_blank(c)) {
            spaces++;
            k++;
            continue;
        }
        if (c == '"' && spaces > 0) {
            /* libcsv keeps the quote as data and stays in this state */
            spaces = 0;
            k++;
            continue;
        }
        /* "" (an escaped quote) or any other byte: back inside the quotes */
        *i = k + 1;
        return IN_QUOTED;
    }
}

int csvscan_next(csvscan *s, csvscan_rec *out)
{
    const unsigned char *b = (const unsigned char *)s->buf;
    size_t n = s->len;
    size_t i = s->pos;
    uint64_t line = s->line;
    size_t line_start = i;

    /* ROW_NOT_BEGUN: skip blanks and line ends */
    for (;;) {
        if (i >= n) {
            s->pos = n;
            s->line = line;
            return 0;
        }
        unsigned char c = b[i];
        if (is_blank(c)) {
            i++;
        } else if (c == '\r') {
            line++;
            i++;
            if (i < n && b[i] == '\n')
                i++;
            line_start = i;
        } else if (c == '\n') {
            line++;
            i++;
            line_start = i;
        } else {
            break;
        }
    }

    size_t start = line_start;
    uint64_t start_line = line;
    uint32_t flags = 0;
    size_t end;
    int state = b[i] == '"' ? IN_QUOTED : IN_UNQUOTED;
    i++;

    for (;;) {
        if (state == IN_UNQUOTED) {
            size_t q = next_of(s, &s->next_quote, '"', i);
            size_t t = min_sz(next_of(s, &s->next_cr, '\r', i), next_of(s, &s->next_lf, '\n', i));
            if (t <= q) {
                end = t; /* a line end (or the buffer's end) ends the row */
                break;
            }
            /* The quote opens a field if only blanks follow the last comma
             * (FIELD_NOT_BEGUN); inside an unquoted field it is data. The
             * unquoted stretch always starts with a byte that is not blank
             * (the row's first byte, or a comma), so this stays in it. */
            size_t k = q;
            while (k > start && is_blank(b[k - 1]))
                k--;
            if (k > start && b[k - 1] == ',')
                state = IN_QUOTED;
            i = q + 1;
        } else {
            size_t q = next_of(s, &s->next_quote, '"', i);
            line += count_lines(s, i, q);
            if (q >= n) {
                end = n;
                flags |= CSVSCAN_UNTERMINATED;
                break;
            }
            i = q + 1;
            state = scan_after_quote(s, &i);
            if (state == ROW_ENDED) {
                end = i;
                break;
            }
        }
    }

    if (next_of(s, &s->next_nul, '\0', start) < end)
        flags |= CSVSCAN_NUL;
    if (end - start > s->max_record)
        flags |= CSVSCAN_TOO_LONG;
    out->off = start;
    out->len = end - start;
    out->line = start_line;
    out->flags = flags;
    s->pos = end;
    s->line = line;
    return 1;
}

/* ---- csvrow: one record's fields through libcsv ---- */

/* libcsv 3.0.3's parser state for "inside a field" (libcsv.c FIELD_BEGUN);
 * with p.quoted set it means the record ended inside quotes. */
#define LIBCSV_FIELD_BEGUN 2
/* libcsv grows its field buffer by this many bytes at a time (default 128,
 * too small for the 10 MB fields the limits allow). */
#define CSVROW_LIBCSV_BLOCK 16384

struct csvrow {
    struct csv_parser p;
    size_t max_fields;
    char *data; /* the kept fields, each NUL-terminated, back to back */
    size_t dlen, dcap;
    size_t *offs;      /* field i starts at data + offs[i] */
    size_t *lens;
    const char **ptrs; /* rebuilt after each parse (data may move) */
    size_t fcap;
    size_t kept, seen, rows;
    int oom, extra_row;
};

static void on_field(void *field, size_t len, void *data)
{
    csvrow *r = data;
    if (r->rows > 0)
        r->extra_row = 1;
    r->seen++;
    if (r->oom || (r->max_fields > 0 && r->seen > r->max_fields))
        return;
    if (r->kept == r->fcap) {
        size_t cap = r->fcap * 2;
        size_t *o = realloc(r->offs, cap * sizeof *o);
        if (o == NULL) {
            r->oom = 1;
            return;
        }
        r->offs = o;
        size_t *l = realloc(r->lens, cap * sizeof *l);
        if (l == NULL) {
            r->oom = 1;
            return;
        }
        r->lens = l;
        const char **pp = realloc(r->ptrs, cap * sizeof *pp);
        if (pp == NULL) {
            r->oom = 1;
            return;
        }
        r->ptrs = pp;
        r->fcap = cap;
    }
    if (buf_reserve(&r->data, &r->dcap, r->dlen + len + 1, 1024) < 0) {
        r->oom = 1;
        return;
    }
    if (len > 0)
        memcpy(r->data + r->dlen, field, len);
    r->data[r->dlen + len] = '\0';
    r->offs[r->kept] = r->dlen;
    r->lens[r->kept] = len;
    r->dlen += len + 1;
    r->kept++;
}

/* Append n bytes to the field on_field kept last (its NUL moved). 0 / -1. */
static int keep_more(csvrow *r, const char *s, size_t n)
{
    if (buf_reserve(&r->data, &r->dcap, r->dlen + n, 1024) < 0) {
        r->oom = 1;
        return -1;
    }
    memcpy(r->data + r->dlen - 1, s, n);
    r->dlen += n;
    r->data[r->dlen - 1] = '\0';
    r->lens[r->kept - 1] += n;
    return 0;
}

static void on_row(int c, void *data)
{
    csvrow *r = data;
    r->rows++;
}

csvrow *csvrow_new(size_t max_fields)
{
    csvrow *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    if (csv_init(&r->p, CSV_APPEND_NULL) != 0)
        goto err;
    csv_set_blk_size(&r->p, CSVROW_LIBCSV_BLOCK);
    r->max_fields = max_fields;
    r->fcap = 16;
    r->dcap = 1024;
    r->offs = malloc(r->fcap * sizeof *r->offs);
    r->lens = malloc(r->fcap * sizeof *r->lens);
    r->ptrs = malloc(r->fcap * sizeof *r->ptrs);
    r->data = malloc(r->dcap);
    if (r->offs == NULL || r->lens == NULL || r->ptrs == NULL || r->data == NULL)
        goto err;
    return r;
err:
    csvrow_destroy(&r);
    return NULL;
}

void csvrow_destroy(csvrow **rp)
{
    if (rp == NULL || *rp == NULL)
        return;
    csvrow *r = *rp;
    csv_free(&r->p);
    free(r->offs);
    free(r->lens);
    free(r->ptrs);
    free(r->data);
    free(r);
    *rp = NULL;
}

/* The common record split without libcsv, the way libcsv splits it:
 * blanks before a field skipped; an unquoted field ends at a comma, its
 * trailing blanks trimmed; a quoted field is taken whole, "" read as ",
 * and must be followed by a comma or the end; a record of blanks alone is
 * no row at all (libcsv's ROW_NOT_BEGUN). Anything else — a quote inside
 * an unquoted field, anything after a closing quote but a comma, a quote
 * never closed — returns 0 before any field is kept, for libcsv to parse.
 * (The caller has left out records holding a line end.)
 * tests/unit/test_csvscan.c holds it to libcsv on random records.
 * keep > 0 (csvrow_parse_lead): only the first `keep` fields are read, the
 * rest of the record neither checked nor counted; 0 (some fields may be
 * kept) when those fields do not split simply or hold a line end. */
static int split_simple(csvrow *r, const char *rec, size_t len, size_t keep)
{
    size_t i = 0;
    while (i < len && is_blank((unsigned char)rec[i]))
        i++;
    if (i == len)
        return 1;
    size_t upto = 0; /* keep > 0: the bytes read so far */
    /* No quote anywhere (most records): every field is unquoted, and the
     * check below could not fail. */
    if (keep > 0 || memchr(rec + i, '"', len - i) == NULL)
        goto split;
    /* Check the whole record first, so that nothing is kept on a fallback. */
    for (size_t k = i;;) {
        while (k < len && is_blank((unsigned char)rec[k]))
            k++;
        if (k < len && rec[k] == '"') {
            size_t q = k + 1;
            for (;;) {
                const char *e = q < len ? memchr(rec + q, '"', len - q) : NULL;
                if (e == NULL)
                    return 0;
                q = (size_t)(e - rec);
                if (q + 1 < len && rec[q + 1] == '"') {
                    q += 2;
                    continue;
                }
                break;
            }
            k = q + 1;
            if (k == len)
                break;
            if (rec[k] != ',')
                return 0;
            k++;
            continue;
        }
        const char *comma = k < len ? memchr(rec + k, ',', len - k) : NULL;
        size_t end = comma ? (size_t)(comma - rec) : len;
        if (memchr(rec + k, '"', end - k) != NULL)
            return 0;
        if (comma == NULL)
            break;
        k = end + 1;
    }
split:
    for (;;) {
        if (keep > 0 && r->seen == keep)
            break; /* the fields asked for are read */
        while (i < len && is_blank((unsigned char)rec[i]))
            i++;
        if (i < len && rec[i] == '"') {
            size_t start = ++i, kept = r->kept;
            on_field((void *)(rec + start), 0, r); /* the slot; filled below */
            int stored = r->kept > kept;
            for (;;) {
                const char *e = i < len ? memchr(rec + i, '"', len - i) : NULL;
                if (e == NULL)
                    return 0; /* keep > 0 only: never closed */
                size_t q = (size_t)(e - rec);
                size_t n = q - i + (q + 1 < len && rec[q + 1] == '"');
                if (stored && keep_more(r, rec + i, n) < 0)
                    return 1; /* r->oom */
                if (q + 1 < len && rec[q + 1] == '"') {
                    i = q + 2;
                    continue;
                }
                i = q + 1;
                break;
            }
            upto = i;
            if (i == len)
                break;
            if (rec[i] != ',')
                return 0; /* keep > 0 only */
            i++; /* the comma */
            continue;
        }
        size_t start = i;
        const char *comma = i < len ? memchr(rec + i, ',', len - i) : NULL;
        size_t end = comma ? (size_t)(comma - rec) : len;
        if (keep > 0 && memchr(rec + start, '"', end - start) != NULL)
            return 0;
        upto = end;
        size_t stop = end;
        while (stop > start && is_blank((unsigned char)rec[stop - 1]))
            stop--;
        on_field((void *)(rec + start), stop - start, r);
        if (comma == NULL)
            break;
        i = end + 1;
    }
    if (keep > 0)
        return memchr(rec, '\n', upto) == NULL && memchr(rec, '\r', upto) == NULL;
    r->rows = 1;
    return 1;
}

int csvrow_parse(csvrow *r, const char *rec, size_t len, char *err, size_t errlen)
{
    return csvrow_parse_as(r, rec, len, 0, err, errlen);
}

int csvrow_parse_as(csvrow *r, const char *rec, size_t len, int libcsv_only, char *err, size_t errlen)
{
    r->kept = r->seen = r->rows = 0;
    r->dlen = 0;
    r->oom = r->extra_row = 0;

    int failed = 0, unterminated = 0;
    if (!libcsv_only && len > 0 && memchr(rec, '\n', len) == NULL && memchr(rec, '\r', len) == NULL &&
        split_simple(r, rec, len, 0)) {
        /* split without libcsv */
    } else {
        if (len > 0 && csv_parse(&r->p, rec, len, on_field, on_row, r) != len)
            failed = 1;
        unterminated = r->p.pstate == LIBCSV_FIELD_BEGUN && r->p.quoted;
        /* csv_fini also resets the parser for the next record, error or not */
        csv_fini(&r->p, on_field, on_row, r);
    }

    for (size_t i = 0; i < r->kept; i++)
        r->ptrs[i] = r->data + r->offs[i];

    if (failed || r->oom) {
        err_set(err, errlen, "out of memory parsing a record of %zu bytes", len);
        return -1;
    }
    if (r->extra_row) {
        err_set(err, errlen, "record holds more than one row (an unquoted line end)");
        return -1;
    }
    if (unterminated) {
        err_set(err, errlen, "unterminated quoted field");
        return -1;
    }
    if (r->max_fields > 0 && r->seen > r->max_fields) {
        err_set(err, errlen, "%zu fields, more than the limit of %zu", r->seen, r->max_fields);
        return -1;
    }
    return 0;
}

int csvrow_parse_lead(csvrow *r, const char *rec, size_t len, size_t keep)
{
    r->kept = r->seen = r->rows = 0;
    r->dlen = 0;
    r->oom = r->extra_row = 0;
    if (keep == 0 || len == 0 || !split_simple(r, rec, len, keep) || r->oom)
        return 0;
    for (size_t i = 0; i < r->kept; i++)
        r->ptrs[i] = r->data + r->offs[i];
    return 1;
}

size_t csvrow_count(const csvrow *r)
{
    return r->kept;
}

const char *const *csvrow_fields(const csvrow *r)
{
    return r->ptrs;
}

const size_t *csvrow_lens(const csvrow *r)
{
    return r->lens;
}
