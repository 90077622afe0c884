/* fuzz_csvscan: libFuzzer target: for any input, csvscan + csvrow give exactly libcsv's whole-buffer rows, and re-scans from record starts agree. */
/*
 * The property (issue 4): the broker finds record boundaries with csvscan,
 * the workers parse each record with csvrow; together they must give the
 * rows and fields that libcsv gives parsing the whole buffer in one go
 * (csv_parse over everything, then csv_fini), and a shard (a sub-buffer
 * cut at any record start, first_line = that record's line) must scan to
 * the same records with the same line numbers. Checked here:
 *   1. rows: same count; each record's csvrow fields == libcsv's row
 *      (count, bytes, lengths); csvrow fails with "unterminated" exactly
 *      for the record libcsv ended inside quotes (the last one).
 *   2. bounds: records in order; off is 0 or just after CR/LF; only
 *      blanks and line ends between records; a record ends at CR/LF or at
 *      the buffer's end; line == independent count of line ends before off.
 *   3. flags: CSVSCAN_NUL iff a NUL byte in the record, CSVSCAN_TOO_LONG
 *      iff len > max_record.
 *   4. a csvrow with a small max_fields fails iff there are more fields
 *      (or the record is unterminated) and keeps the first max_fields.
 *   5. cuts: record starts picked by a PRNG seeded from the input's hash;
 *      scanning each piece gives the same records (shifted) and lines.
 */
#include "csvscan.h"
#include "util.h"

#include <csv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(...)                                                                      \
    do {                                                                               \
        fprintf(stderr, "fuzz_csvscan: " __VA_ARGS__);                                 \
        fprintf(stderr, "\n");                                                         \
        abort();                                                                       \
    } while (0)

/* libcsv's rows, serialised: per field a size_t length then the bytes. */
typedef struct {
    strbuf bytes;
    size_t *row_end; /* end offset in bytes of each row */
    size_t nrows, cap;
    size_t *row_fields;
    size_t cur_fields;
} rows;

static void ser_field(strbuf *sb, const void *f, size_t len)
{
    if (sb_append(sb, (const char *)&len, sizeof len) < 0 || sb_append(sb, f ? f : "", len) < 0)
        FAIL("out of memory");
}

static void ref_field(void *f, size_t len, void *data)
{
    rows *r = data;
    ser_field(&r->bytes, f, len);
    r->cur_fields++;
}

static void ref_row(int c, void *data)
{
    rows *r = data;
    if (r->nrows == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 64;
        r->row_end = realloc(r->row_end, r->cap * sizeof *r->row_end);
        r->row_fields = realloc(r->row_fields, r->cap * sizeof *r->row_fields);
        if (r->row_end == NULL || r->row_fields == NULL)
            FAIL("out of memory");
    }
    r->row_end[r->nrows] = r->bytes.len;
    r->row_fields[r->nrows] = r->cur_fields;
    r->cur_fields = 0;
    r->nrows++;
}

static int is_eol(unsigned char c)
{
    return c == '\r' || c == '\n';
}

static uint64_t rng_next(uint64_t *st)
{
    /* splitmix64 */
    uint64_t z = (*st += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    uint64_t seed = hash64(data, size, HASH64_SEED);
    uint64_t st = seed;
    size_t max_record = (size_t)(rng_next(&st) % 64);
    uint64_t first_line = 1 + rng_next(&st) % 1000;

    /* 1. libcsv over the whole buffer */
    rows ref;
    memset(&ref, 0, sizeof ref);
    sb_init(&ref.bytes);
    struct csv_parser p;
    if (csv_init(&p, CSV_APPEND_NULL) != 0)
        FAIL("csv_init");
    if (csv_parse(&p, data, size, ref_field, ref_row, &ref) != size)
        FAIL("csv_parse: %s", csv_strerror(csv_error(&p)));
    int ref_unterminated = p.pstate == 2 && p.quoted; /* FIELD_BEGUN inside quotes */
    csv_fini(&p, ref_field, ref_row, &ref);
    csv_free(&p);

    /* scan the whole buffer */
    size_t cap = 64, n = 0;
    csvscan_rec *recs = malloc(cap * sizeof *recs);
    if (recs == NULL)
        FAIL("out of memory");
    csvscan s;
    csvscan_init(&s, buf, size, first_line, max_record);
    csvscan_rec rec;
    while (csvscan_next(&s, &rec)) {
        if (n == cap) {
            cap *= 2;
            recs = realloc(recs, cap * sizeof *recs);
            if (recs == NULL)
                FAIL("out of memory");
        }
        recs[n++] = rec;
    }
    if (n != ref.nrows)
        FAIL("%zu records scanned, libcsv gives %zu rows", n, ref.nrows);

    csvrow *row = csvrow_new(0);
    csvrow *small = csvrow_new(3);
    csvrow *lead = csvrow_new(0);
    if (row == NULL || small == NULL || lead == NULL)
        FAIL("out of memory");
    strbuf got;
    sb_init(&got);
    char err[ERRLEN];
    size_t prev_end = 0;
    uint64_t lines_before = 0; /* independent count of line ends in buf[0..k) */
    size_t counted_to = 0;
    for (size_t k = 0; k < n; k++) {
        const csvscan_rec *r = &recs[k];
        /* 2. bounds */
        if (r->off < prev_end || r->off > size || r->len > size - r->off)
            FAIL("record %zu: bounds off=%zu len=%zu (prev end %zu, size %zu)", k, r->off, r->len,
                 prev_end, size);
        if (r->off > 0 && !is_eol(data[r->off - 1]))
            FAIL("record %zu: off %zu is not at a line start", k, r->off);
        for (size_t i = prev_end; i < r->off; i++)
            if (data[i] != ' ' && data[i] != '\t' && !is_eol(data[i]))
                FAIL("record %zu: byte %zu between records is 0x%02x", k, i, data[i]);
        size_t end = r->off + r->len;
        if (end < size && !is_eol(data[end]))
            FAIL("record %zu: ends at %zu on byte 0x%02x", k, end, data[end]);
        for (; counted_to < r->off; counted_to++) {
            unsigned char c = data[counted_to];
            if (c == '\r' || (c == '\n' && (counted_to == 0 || data[counted_to - 1] != '\r')))
                lines_before++;
        }
        if (r->line != first_line + lines_before)
            FAIL("record %zu: line %llu, expected %llu", k, (unsigned long long)r->line,
                 (unsigned long long)(first_line + lines_before));
        prev_end = end;

        /* 3. flags */
        int has_nul = r->len > 0 && memchr(buf + r->off, 0, r->len) != NULL;
        if (!!(r->flags & CSVSCAN_NUL) != has_nul)
            FAIL("record %zu: NUL flag %u, NUL present %d", k, r->flags, has_nul);
        if (!!(r->flags & CSVSCAN_TOO_LONG) != (r->len > max_record))
            FAIL("record %zu: TOO_LONG flag %u, len %zu, max %zu", k, r->flags, r->len, max_record);
        int unterminated = ref_unterminated && k == n - 1;
        if (!!(r->flags & CSVSCAN_UNTERMINATED) != unterminated)
            FAIL("record %zu: UNTERMINATED flag %u, libcsv says %d", k, r->flags, unterminated);
        if (unterminated && end != size)
            FAIL("record %zu: unterminated but ends at %zu of %zu", k, end, size);

        /* 1. fields */
        int rc = csvrow_parse(row, buf + r->off, r->len, err, sizeof err);
        if (unterminated ? (rc != -1 || strstr(err, "unterminated") == NULL) : rc != 0)
            FAIL("record %zu: csvrow_parse rc %d (%s), unterminated %d", k, rc,
                 rc ? err : "ok", unterminated);
        size_t ref_from = k ? ref.row_end[k - 1] : 0;
        size_t ref_len = ref.row_end[k] - ref_from;
        size_t nf = csvrow_count(row);
        if (nf != ref.row_fields[k])
            FAIL("record %zu: %zu fields, libcsv gives %zu", k, nf, ref.row_fields[k]);
        sb_reset(&got);
        const char *const *f = csvrow_fields(row);
        const size_t *fl = csvrow_lens(row);
        for (size_t i = 0; i < nf; i++) {
            if (f[i][fl[i]] != '\0')
                FAIL("record %zu: field %zu not NUL-terminated", k, i);
            ser_field(&got, f[i], fl[i]);
        }
        if (got.len != ref_len || (ref_len > 0 && memcmp(got.buf, ref.bytes.buf + ref_from, ref_len) != 0))
            FAIL("record %zu (off %zu len %zu): fields differ from libcsv's row", k, r->off, r->len);

        /* 4. field limit */
        rc = csvrow_parse(small, buf + r->off, r->len, err, sizeof err);
        int over = nf > 3;
        if ((rc != 0) != (over || unterminated))
            FAIL("record %zu: limit 3, %zu fields, rc %d", k, nf, rc);
        if (over && !unterminated && strstr(err, "more than the limit of 3") == NULL)
            FAIL("record %zu: limit error \"%s\"", k, err);
        size_t keep = over ? 3 : nf;
        if (csvrow_count(small) != keep)
            FAIL("record %zu: limit 3 kept %zu of %zu", k, csvrow_count(small), nf);
        for (size_t i = 0; i < keep; i++)
            if (csvrow_lens(small)[i] != fl[i] || memcmp(csvrow_fields(small)[i], f[i], fl[i]) != 0)
                FAIL("record %zu: limit 3 field %zu differs", k, i);

        /* 6. the lead of a whole record (csvrow_parse_lead): its first fields */
        for (size_t want = 1; want <= 2; want++) {
            if (!csvrow_parse_lead(lead, buf + r->off, r->len, want) || unterminated)
                continue;
            size_t nl = nf < want ? nf : want;
            if (csvrow_count(lead) != nl)
                FAIL("record %zu: lead of %zu kept %zu of %zu", k, want, csvrow_count(lead), nf);
            for (size_t i = 0; i < nl; i++)
                if (csvrow_lens(lead)[i] != fl[i] || memcmp(csvrow_fields(lead)[i], f[i], fl[i]) != 0)
                    FAIL("record %zu: lead field %zu differs", k, i);
        }
    }
    for (size_t i = prev_end; i < size; i++)
        if (data[i] != ' ' && data[i] != '\t' && !is_eol(data[i]))
            FAIL("byte %zu after the last record is 0x%02x", i, data[i]);

    /* 5. cuts at record starts: every piece scans to the same records */
    for (int round = 0; round < 2 && n > 0; round++) {
        size_t k = 0;
        size_t piece_start = 0;
        uint64_t piece_line = first_line;
        for (;;) {
            /* the piece runs to the next chosen cut (a record start) or the end */
            size_t cut_rec = k + 1;
            uint64_t odds = round == 0 ? 4 : 1 + rng_next(&st) % 16;
            while (cut_rec < n && rng_next(&st) % odds != 0)
                cut_rec++;
            size_t piece_end = cut_rec < n ? recs[cut_rec].off : size;
            csvscan ps;
            csvscan_init(&ps, buf + piece_start, piece_end - piece_start, piece_line, max_record);
            while (csvscan_next(&ps, &rec)) {
                if (k >= cut_rec)
                    FAIL("piece [%zu,%zu): more records than the whole scan", piece_start, piece_end);
                const csvscan_rec *w = &recs[k];
                if (rec.off + piece_start != w->off || rec.len != w->len || rec.line != w->line ||
                    rec.flags != w->flags)
                    FAIL("piece [%zu,%zu) record %zu: off %zu len %zu line %llu flags %u, whole scan "
                         "off %zu len %zu line %llu flags %u",
                         piece_start, piece_end, k, rec.off + piece_start, rec.len,
                         (unsigned long long)rec.line, rec.flags, w->off, w->len,
                         (unsigned long long)w->line, w->flags);
                k++;
            }
            if (k != cut_rec && !(cut_rec >= n && k == n))
                FAIL("piece [%zu,%zu): stopped at record %zu, expected %zu", piece_start, piece_end,
                     k, cut_rec);
            if (piece_end >= size)
                break;
            piece_start = piece_end;
            piece_line = recs[cut_rec].line;
        }
        if (k != n)
            FAIL("cut scans found %zu records of %zu", k, n);
    }

    csvrow_destroy(&row);
    csvrow_destroy(&small);
    csvrow_destroy(&lead);
    sb_free(&got);
    free(recs);
    sb_free(&ref.bytes);
    free(ref.row_end);
    free(ref.row_fields);
    return 0;
}
