/* test_csvscan: record boundaries, line numbers, flags and fields of csvscan/csvrow, checked against libcsv itself. */
#include "csvscan.h"
#include "t.h"
#include "util.h"

#include <csv.h>
#include <stdlib.h>
#include <string.h>

#define MAXREC 64

typedef struct {
    csvscan_rec r[MAXREC];
    size_t n;
} scan_out;

static scan_out scan_buf(const char *buf, size_t len, uint64_t first_line, size_t max_record)
{
    scan_out o;
    memset(&o, 0, sizeof o);
    csvscan s;
    csvscan_init(&s, buf, len, first_line, max_record);
    csvscan_rec rec;
    while (o.n < MAXREC && csvscan_next(&s, &rec))
        o.r[o.n++] = rec;
    return o;
}

static scan_out scan_str(const char *s)
{
    return scan_buf(s, strlen(s), 1, 1 << 20);
}

/* The text of record i of buf. */
static const char *rec_text(const char *buf, const csvscan_rec *r)
{
    static char out[4096];
    size_t n = r->len < sizeof out - 1 ? r->len : sizeof out - 1;
    memcpy(out, buf + r->off, n);
    out[n] = '\0';
    return out;
}

/* Fields of a record joined with '|' (test inputs hold no '|'). */
static const char *joined(const csvrow *row)
{
    static char out[4096];
    size_t k = 0;
    for (size_t i = 0; i < csvrow_count(row); i++) {
        if (i > 0 && k < sizeof out - 1)
            out[k++] = '|';
        for (size_t j = 0; j < csvrow_lens(row)[i] && k < sizeof out - 1; j++)
            out[k++] = csvrow_fields(row)[i][j];
    }
    out[k] = '\0';
    return out;
}

/* ---- libcsv as the reference: rows of the whole buffer, joined ---- */

typedef struct {
    strbuf rows[MAXREC];
    size_t n;
    int fields_in_row;
} ref_rows;

static void ref_field(void *f, size_t len, void *data)
{
    ref_rows *r = data;
    if (r->n >= MAXREC)
        return;
    if (r->fields_in_row++ > 0)
        sb_append(&r->rows[r->n], "|", 1);
    sb_append(&r->rows[r->n], f, len);
}

static void ref_row(int c, void *data)
{
    ref_rows *r = data;
    if (r->n < MAXREC && r->rows[r->n].buf == NULL)
        sb_append(&r->rows[r->n], "", 0);
    r->n++;
    r->fields_in_row = 0;
}

/* csvrow_parse_lead of rec, keeping keep: when it splits (1) and the
 * whole parse takes the record (full, parsed with result full_rc), the
 * same first fields. 1 agrees, 0 not. */
static int lead_agrees(csvrow *lead, const csvrow *full, int full_rc, const char *rec, size_t len, size_t keep,
                       int *split)
{
    *split = csvrow_parse_lead(lead, rec, len, keep);
    if (!*split || full_rc != 0)
        return 1; /* unsplit: the caller parses whole; a refused record never reaches a memo */
    size_t want = csvrow_count(full) < keep ? csvrow_count(full) : keep;
    if (csvrow_count(lead) != want)
        return 0;
    for (size_t f = 0; f < want; f++)
        if (csvrow_lens(lead)[f] != csvrow_lens(full)[f] ||
            memcmp(csvrow_fields(lead)[f], csvrow_fields(full)[f], csvrow_lens(full)[f]) != 0)
            return 0;
    return 1;
}

/* Scan + csvrow per record == libcsv over the whole buffer; and a re-scan
 * from every record start gives the same records and lines. */
static int agrees_with_libcsv(const char *buf, size_t len)
{
    ref_rows ref;
    memset(&ref, 0, sizeof ref);
    struct csv_parser p;
    csv_init(&p, CSV_APPEND_NULL);
    csv_parse(&p, buf, len, ref_field, ref_row, &ref);
    csv_fini(&p, ref_field, ref_row, &ref);
    csv_free(&p);

    int ok = 1;
    scan_out o = scan_buf(buf, len, 7, 1 << 20);
    if (o.n != ref.n)
        ok = 0;
    csvrow *row = csvrow_new(0), *part = csvrow_new(0);
    char err[ERRLEN];
    for (size_t i = 0; ok && i < o.n; i++) {
        int prc = csvrow_parse(row, buf + o.r[i].off, o.r[i].len, err, sizeof err);
        /* the lead of a whole record: its first fields */
        for (size_t keep = 1; ok && keep <= 3; keep++) {
            int split;
            if (ok && !lead_agrees(part, row, prc, buf + o.r[i].off, o.r[i].len, keep, &split))
                ok = 0;
        }
        const char *want = sb_str(&ref.rows[i]);
        size_t wlen = ref.rows[i].len;
        /* compare with lengths: fields may hold NUL bytes */
        size_t glen = 0;
        for (size_t f = 0; f < csvrow_count(row); f++)
            glen += csvrow_lens(row)[f] + (f > 0);
        if (glen != wlen)
            ok = 0;
        size_t k = 0;
        for (size_t f = 0; ok && f < csvrow_count(row); f++) {
            if (f > 0 && want[k++] != '|')
                ok = 0;
            if (ok && memcmp(want + k, csvrow_fields(row)[f], csvrow_lens(row)[f]) != 0)
                ok = 0;
            k += csvrow_lens(row)[f];
        }
        /* every record start is a valid cut */
        scan_out cut = scan_buf(buf + o.r[i].off, len - o.r[i].off, o.r[i].line, 1 << 20);
        if (cut.n != o.n - i)
            ok = 0;
        for (size_t j = 0; ok && j < cut.n; j++) {
            const csvscan_rec *a = &cut.r[j], *b = &o.r[i + j];
            if (a->off + o.r[i].off != b->off || a->len != b->len || a->line != b->line ||
                a->flags != b->flags)
                ok = 0;
        }
    }
    csvrow_destroy(&row);
    csvrow_destroy(&part);
    for (size_t i = 0; i < MAXREC; i++)
        sb_free(&ref.rows[i]);
    if (!ok)
        printf("  (input: \"%.*s\")\n", (int)len, buf);
    return ok;
}

/* ---- cases ---- */

static void test_lf_crlf_cr(void)
{
    const char *in[] = {"a,b\nc,d\n", "a,b\r\nc,d\r\n", "a,b\rc,d\r", "a,b\nc,d"};
    for (size_t k = 0; k < sizeof in / sizeof in[0]; k++) {
        scan_out o = scan_str(in[k]);
        CHECK(o.n == 2);
        CHECK(o.r[0].off == 0 && o.r[0].len == 3 && o.r[0].line == 1 && o.r[0].flags == 0);
        CHECK_STR(rec_text(in[k], &o.r[1]), "c,d");
        CHECK(o.r[1].line == 2);
        CHECK(agrees_with_libcsv(in[k], strlen(in[k])));
    }
}

static void test_mixed_line_ends(void)
{
    /* CRLF counts one line end, lone CR one, lone LF one; \n\r is two */
    const char *in = "a\r\nb\rc\nd\n\re\r\r\nf";
    scan_out o = scan_str(in);
    CHECK(o.n == 6);
    const char *want[] = {"a", "b", "c", "d", "e", "f"};
    uint64_t lines[] = {1, 2, 3, 4, 6, 8};
    for (size_t i = 0; i < 6 && i < o.n; i++) {
        CHECK_STR(rec_text(in, &o.r[i]), want[i]);
        CHECK(o.r[i].line == lines[i]);
    }
    CHECK(agrees_with_libcsv(in, strlen(in)));
}

static void test_blank_lines_not_records(void)
{
    const char *in = "\n\r\n\ra,b\n\n\n  \n\t \t\r\n c , d \n\n";
    scan_out o = scan_str(in);
    CHECK(o.n == 2);
    CHECK(o.r[0].line == 4);
    CHECK_STR(rec_text(in, &o.r[0]), "a,b");
    /* the record starts at its line's start: leading blanks belong to it */
    CHECK(o.r[1].line == 9);
    CHECK_STR(rec_text(in, &o.r[1]), " c , d ");
    CHECK(agrees_with_libcsv(in, strlen(in)));

    csvrow *row = csvrow_new(10);
    char err[ERRLEN];
    CHECK(csvrow_parse(row, in + o.r[1].off, o.r[1].len, err, sizeof err) == 0);
    CHECK_STR(joined(row), "c|d"); /* spaces and tabs trimmed around unquoted fields */
    csvrow_destroy(&row);
}

static void test_empty_and_header_only(void)
{
    scan_out o = scan_str("");
    CHECK(o.n == 0);
    o = scan_buf(NULL, 0, 1, 10);
    CHECK(o.n == 0);
    o = scan_str("\r\n\n   \n");
    CHECK(o.n == 0);
    const char *hdr = "id,last,first\r\n";
    o = scan_str(hdr);
    CHECK(o.n == 1);
    CHECK(o.r[0].len == 13);
    CHECK(agrees_with_libcsv(hdr, strlen(hdr)));
}

static void test_quoted_commas_and_doubled_quotes(void)
{
    const char *in = "1,\"Lopez, Ana\",\"say \"\"hi\"\"\"\n2,\"\"\"\",\"\"\n";
    scan_out o = scan_str(in);
    CHECK(o.n == 2);
    csvrow *row = csvrow_new(10);
    char err[ERRLEN];
    CHECK(csvrow_parse(row, in + o.r[0].off, o.r[0].len, err, sizeof err) == 0);
    CHECK(csvrow_count(row) == 3);
    CHECK_STR(joined(row), "1|Lopez, Ana|say \"hi\"");
    CHECK(csvrow_parse(row, in + o.r[1].off, o.r[1].len, err, sizeof err) == 0);
    CHECK(csvrow_count(row) == 3);
    CHECK_STR(joined(row), "2|\"|");
    csvrow_destroy(&row);
    CHECK(agrees_with_libcsv(in, strlen(in)));
}

static void test_quoted_newlines(void)
{
    /* quoted line ends are data; they still count as physical lines */
    const char *in = "1,\"one\r\ntwo\rthree\nfour\",x\r\n2,y\r\n";
    scan_out o = scan_str(in);
    CHECK(o.n == 2);
    CHECK(o.r[0].line == 1);
    CHECK_STR(rec_text(in, &o.r[0]), "1,\"one\r\ntwo\rthree\nfour\",x");
    CHECK(o.r[1].line == 5);
    csvrow *row = csvrow_new(10);
    char err[ERRLEN];
    CHECK(csvrow_parse(row, in + o.r[0].off, o.r[0].len, err, sizeof err) == 0);
    CHECK(csvrow_count(row) == 3);
    CHECK(csvrow_lens(row)[1] == 19);
    CHECK_STR(csvrow_fields(row)[1], "one\r\ntwo\rthree\nfour");
    csvrow_destroy(&row);
    CHECK(agrees_with_libcsv(in, strlen(in)));
}

static void test_quote_after_closing_quote(void)
{
    csvrow *row = csvrow_new(10);
    char err[ERRLEN];

    /* a byte after the closing quote puts libcsv back inside the quotes:
     * the rest of the buffer is one unterminated field */
    const char *in = "\"a\"b,c\nd";
    scan_out o = scan_str(in);
    CHECK(o.n == 1);
    CHECK(o.r[0].len == strlen(in));
    CHECK(o.r[0].flags == CSVSCAN_UNTERMINATED);
    CHECK(csvrow_parse(row, in, o.r[0].len, err, sizeof err) == -1);
    CHECK_STR(err, "unterminated quoted field");
    CHECK(csvrow_count(row) == 1); /* the fields libcsv gave stay available */
    CHECK_STR(joined(row), "a\"b,c\nd");
    CHECK(agrees_with_libcsv(in, strlen(in)));

    /* ... and the next lone quote closes it again */
    in = "\"a\"b,c\"\nd\n";
    o = scan_str(in);
    CHECK(o.n == 2);
    CHECK(o.r[1].line == 2);
    CHECK(csvrow_parse(row, in, o.r[0].len, err, sizeof err) == 0);
    CHECK_STR(joined(row), "a\"b,c");

    /* after blanks, a quote is data and the field stays closed; libcsv
     * drops only the last quote (and blanks before it) at the comma */
    in = "\"a\" \",b\n";
    o = scan_str(in);
    CHECK(o.n == 1);
    CHECK(csvrow_parse(row, in, o.r[0].len, err, sizeof err) == 0);
    CHECK_STR(joined(row), "a\" |b");
    CHECK(agrees_with_libcsv(in, strlen(in)));

    /* blanks after the closing quote are trimmed */
    in = "\"d\"  ,\"e\" \t\r\n";
    o = scan_str(in);
    CHECK(o.n == 1);
    CHECK(csvrow_parse(row, in, o.r[0].len, err, sizeof err) == 0);
    CHECK_STR(joined(row), "d|e");
    CHECK(agrees_with_libcsv(in, strlen(in)));
    csvrow_destroy(&row);
}

static void test_stray_quotes_in_unquoted_fields(void)
{
    const char *in = "ab\"c,d\"e\"f,g\nh \"i\",  \"j,k\"  ,l\n";
    scan_out o = scan_str(in);
    CHECK(o.n == 2);
    csvrow *row = csvrow_new(10);
    char err[ERRLEN];
    CHECK(csvrow_parse(row, in + o.r[0].off, o.r[0].len, err, sizeof err) == 0);
    CHECK_STR(joined(row), "ab\"c|d\"e\"f|g");
    /* a quote after a comma and blanks opens a quoted field */
    CHECK(csvrow_parse(row, in + o.r[1].off, o.r[1].len, err, sizeof err) == 0);
    CHECK_STR(joined(row), "h \"i\"|j,k|l");
    csvrow_destroy(&row);
    CHECK(agrees_with_libcsv(in, strlen(in)));
}

static void test_unterminated_quote(void)
{
    const char *in = "1,a\n2,\"abc\n3,def\n";
    scan_out o = scan_str(in);
    CHECK(o.n == 2);
    CHECK(o.r[0].flags == 0);
    CHECK(o.r[1].flags == CSVSCAN_UNTERMINATED);
    CHECK(o.r[1].off == 4 && o.r[1].len == strlen(in) - 4);
    CHECK(o.r[1].line == 2);
    csvrow *row = csvrow_new(10);
    char err[ERRLEN];
    CHECK(csvrow_parse(row, in + o.r[1].off, o.r[1].len, err, sizeof err) == -1);
    CHECK_STR(err, "unterminated quoted field");
    csvrow_destroy(&row);
    CHECK(agrees_with_libcsv(in, strlen(in)));

    in = "\"";
    o = scan_str(in);
    CHECK(o.n == 1 && o.r[0].flags == CSVSCAN_UNTERMINATED);
    CHECK(agrees_with_libcsv(in, 1));
}

static void test_nul_byte(void)
{
    const char in[] = "a\0b,c\nd,e\n\"f\0\"\n";
    size_t len = sizeof in - 1;
    scan_out o = scan_buf(in, len, 1, 100);
    CHECK(o.n == 3);
    CHECK(o.r[0].flags == CSVSCAN_NUL);
    CHECK(o.r[1].flags == 0);
    CHECK(o.r[2].flags == CSVSCAN_NUL);
    csvrow *row = csvrow_new(10);
    char err[ERRLEN];
    CHECK(csvrow_parse(row, in, o.r[0].len, err, sizeof err) == 0);
    CHECK(csvrow_count(row) == 2);
    CHECK(csvrow_lens(row)[0] == 3);
    CHECK(memcmp(csvrow_fields(row)[0], "a\0b", 4) == 0);
    csvrow_destroy(&row);
    CHECK(agrees_with_libcsv(in, len));
}

static void test_too_long(void)
{
    const char *in = "12345,7\n123,5\n\"1\n3\",5\r\n";
    scan_out o = scan_buf(in, strlen(in), 1, 5);
    CHECK(o.n == 3);
    CHECK(o.r[0].flags == CSVSCAN_TOO_LONG && o.r[0].len == 7);
    CHECK(o.r[1].flags == 0 && o.r[1].len == 5);
    CHECK(o.r[2].flags == CSVSCAN_TOO_LONG && o.r[2].len == 7 && o.r[2].line == 3);
}

static void test_ten_mb_field(void)
{
    size_t big = 10u << 20;
    size_t len = big + 64;
    char *in = malloc(len);
    CHECK(in != NULL);
    if (in == NULL)
        return;
    size_t k = 0;
    memcpy(in + k, "1,\"", 3);
    k += 3;
    memset(in + k, 'x', big);
    in[k + 1000] = '\n'; /* a line end inside the big quoted field */
    k += big;
    memcpy(in + k, "\",z\r\n2,y\n", 9);
    k += 9;
    scan_out o = scan_buf(in, k, 1, 1 << 20);
    CHECK(o.n == 2);
    CHECK(o.r[0].len == big + 6);
    CHECK(o.r[0].flags == CSVSCAN_TOO_LONG);
    CHECK(o.r[1].line == 3);
    csvrow *row = csvrow_new(10);
    char err[ERRLEN];
    CHECK(csvrow_parse(row, in, o.r[0].len, err, sizeof err) == 0);
    CHECK(csvrow_count(row) == 3);
    CHECK(csvrow_lens(row)[1] == big);
    CHECK_STR(csvrow_fields(row)[2], "z");
    csvrow_destroy(&row);
    free(in);
}

static void test_field_limit(void)
{
    /* 10,000 columns against a limit of 2,000 */
    strbuf sb;
    sb_init(&sb);
    for (int i = 0; i < 10000; i++)
        sb_printf(&sb, i ? ",c%d" : "c%d", i);
    csvrow *row = csvrow_new(2000);
    char err[ERRLEN];
    CHECK(csvrow_parse(row, sb.buf, sb.len, err, sizeof err) == -1);
    CHECK_STR(err, "10000 fields, more than the limit of 2000");
    CHECK(csvrow_count(row) == 2000);
    CHECK_STR(csvrow_fields(row)[1999], "c1999");
    /* the same csvrow goes on working after an error */
    CHECK(csvrow_parse(row, "a,b", 3, err, sizeof err) == 0);
    CHECK_STR(joined(row), "a|b");
    csvrow_destroy(&row);

    row = csvrow_new(0); /* no limit */
    CHECK(csvrow_parse(row, sb.buf, sb.len, err, sizeof err) == 0);
    CHECK(csvrow_count(row) == 10000);
    csvrow_destroy(&row);
    sb_free(&sb);
}

/* A record with no line end is split without libcsv when it can be: on
 * 400,000 random records of blanks, commas, quotes, NUL, letters and UTF-8
 * the split is libcsv's exactly (fields, lengths, errors), with and
 * without a field limit. */
static void test_plain_split_is_libcsv(void)
{
    static const char alphabet[] = {' ', '\t', ',', ',', 'a', 'b', '\0', '\xc3', '\xa9', '\'', ';', 'x', '"', '"'};
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    csvrow *fast = csvrow_new(5), *ref = csvrow_new(5);
    csvrow *fast0 = csvrow_new(0), *ref0 = csvrow_new(0), *lead = csvrow_new(0);
    char rec[64], e1[ERRLEN], e2[ERRLEN];
    int bad = 0, lead_split = 0, lead_bad = 0;
    for (int n = 0; n < 400000 && bad < 5; n++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        size_t len = (seed >> 33) % sizeof(rec);
        if (n % 2 == 0) {
            for (size_t i = 0; i < len; i++) {
                seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
                rec[i] = alphabet[(seed >> 33) % sizeof(alphabet)];
            }
        } else {
            /* CSV as exports write it: fields quoted or not, "" inside
             * quotes, a blank here and there. */
            static const char *const parts[] = {"a", "b c", " ", "\"", "\"\"", ",", ",", "\xc3\xa9", "x,y"};
            len = 0;
            while (len < sizeof(rec) - 12) {
                seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
                unsigned k = (unsigned)(seed >> 33);
                if (k % 7 == 0)
                    break;
                int quoted = k % 3 == 0;
                if (quoted)
                    rec[len++] = '"';
                for (int m = 0; m < (int)(k >> 8) % 3 + 1; m++) {
                    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
                    const char *s = parts[(seed >> 33) % (quoted ? 9 : 3)];
                    if (quoted && strcmp(s, "\"") == 0)
                        s = "\"\"";
                    size_t sl = strlen(s);
                    memcpy(rec + len, s, sl);
                    len += sl;
                }
                if (quoted)
                    rec[len++] = '"';
                rec[len++] = ',';
            }
            if (len > 0 && (seed >> 40) % 2)
                len--; /* no trailing comma */
        }
        csvrow *pairs[2][2] = {{fast, ref}, {fast0, ref0}};
        for (int k = 0; k < 2; k++) {
            e1[0] = e2[0] = '\0';
            int r1 = csvrow_parse_as(pairs[k][0], rec, len, 0, e1, sizeof e1);
            int r2 = csvrow_parse_as(pairs[k][1], rec, len, 1, e2, sizeof e2);
            const csvrow *a = pairs[k][0], *b = pairs[k][1];
            int same = r1 == r2 && strcmp(e1, e2) == 0 && csvrow_count(a) == csvrow_count(b);
            for (size_t f = 0; same && f < csvrow_count(a); f++)
                same = csvrow_lens(a)[f] == csvrow_lens(b)[f] &&
                       memcmp(csvrow_fields(a)[f], csvrow_fields(b)[f], csvrow_lens(a)[f]) == 0;
            if (!same) {
                bad++;
                fprintf(stderr, "  plain split differs from libcsv (limit %d) on %zu bytes: '%.*s'\n", k ? 0 : 5, len,
                        (int)len, rec);
            }
        }
        /* The lead of a record the whole parse takes: its first fields. */
        for (size_t keep = 1; keep <= 3; keep++) {
            int split;
            if (!lead_agrees(lead, ref0, csvrow_parse_as(ref0, rec, len, 1, e2, sizeof e2), rec, len, keep, &split)) {
                lead_bad++;
                fprintf(stderr, "  lead of %zu differs from libcsv on %zu bytes: '%.*s'\n", keep, len, (int)len, rec);
            }
            lead_split += split;
        }
    }
    CHECK(bad == 0);
    CHECK(lead_bad == 0);
    CHECK(lead_split > 100000); /* most records split that simply */
    csvrow_destroy(&lead);
    csvrow_destroy(&fast);
    csvrow_destroy(&ref);
    csvrow_destroy(&fast0);
    csvrow_destroy(&ref0);
}

static void test_csvrow_edges(void)
{
    csvrow *row = csvrow_new(4);
    char err[ERRLEN];
    CHECK(csvrow_parse(row, "", 0, err, sizeof err) == 0);
    CHECK(csvrow_count(row) == 0);
    CHECK(csvrow_parse(row, "  \t", 3, err, sizeof err) == 0);
    CHECK(csvrow_count(row) == 0);
    CHECK(csvrow_parse(row, ",", 1, err, sizeof err) == 0);
    CHECK(csvrow_count(row) == 2);
    CHECK_STR(joined(row), "|");
    /* bytes that are not one record: an error, not a silent merge */
    CHECK(csvrow_parse(row, "a\nb", 3, err, sizeof err) == -1);
    CHECK_STR(err, "record holds more than one row (an unquoted line end)");
    CHECK(csvrow_parse(row, "x,y", 3, err, sizeof err) == 0);
    CHECK_STR(joined(row), "x|y");
    csvrow_destroy(&row);
    CHECK(row == NULL);
    csvrow_destroy(&row); /* NULL-safe */
    csvrow_destroy(NULL);
}

static void test_csvrow_reuses_buffers(void)
{
    csvrow *row = csvrow_new(100);
    char err[ERRLEN];
    const char *big = "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",b,c,d,e,f,g,h,i,j,"
                      "k,l,m,n,o,p,q,r,s,t,u,v,w,x,y,z";
    CHECK(csvrow_parse(row, big, strlen(big), err, sizeof err) == 0);
    CHECK(csvrow_count(row) == 26);
    const char *const *f0 = csvrow_fields(row);
    const size_t *l0 = csvrow_lens(row);
    const char *d0 = csvrow_fields(row)[0];
    for (int i = 0; i < 100; i++) {
        CHECK(csvrow_parse(row, "x,\"y\",z", 7, err, sizeof err) == 0);
        CHECK(csvrow_parse(row, big, strlen(big), err, sizeof err) == 0);
    }
    /* same arrays and the same field storage: nothing was reallocated */
    CHECK(csvrow_fields(row) == f0);
    CHECK(csvrow_lens(row) == l0);
    CHECK(csvrow_fields(row)[0] == d0);
    csvrow_destroy(&row);
}

static void test_cuts_with_first_line(void)
{
    const char *in = "h1,h2\r\n\r\n1,\"a\nb\"\r2,c\n\n  3,\"d\"\"\"\r\n4,e";
    scan_out all = scan_buf(in, strlen(in), 1, 100);
    CHECK(all.n == 5);
    uint64_t lines[] = {1, 3, 5, 7, 8};
    for (size_t i = 0; i < all.n && i < 5; i++)
        CHECK(all.r[i].line == lines[i]);
    /* a shard starting at record 3 (line 7) sees the same lines */
    scan_out part = scan_buf(in + all.r[3].off, strlen(in) - all.r[3].off, all.r[3].line, 100);
    CHECK(part.n == 2);
    CHECK(part.r[0].off == 0 && part.r[0].line == 7 && part.r[0].len == all.r[3].len);
    CHECK(part.r[1].line == 8);
    /* a shard that ends at the next record start stops cleanly */
    part = scan_buf(in + all.r[1].off, all.r[3].off - all.r[1].off, all.r[1].line, 100);
    CHECK(part.n == 2);
    CHECK(part.r[1].line == 5);
    CHECK(agrees_with_libcsv(in, strlen(in)));
}

static void test_tricky_inputs_agree(void)
{
    static const char *const in[] = {
        "\"a\" \"x,y\n", "\"a\" \"\"x,y\n", "\"a\"  \"b\"x,c\n", "\"a\"\"b\",c",
        "\"\"\"\"\"\"\n\"\n", ",\n,,\n\"\",\"\"\n, ,\n", "\ta\t,\t\"b\"\t,\t\n",
        "a,\"b\r\"\n,c\r\n\"\r\n\"\r\n", "\"a\"\r\"b\"\n\"c\"\r\n\"d\" \r\"e\"\t\n",
        "\"a\",b\"c,\"d\"e,f\"\ng\n", "\"a\"  ", "x,\"a\"\r\n\r\n", "\r", "\n\"", " \"", ", \"",
        "a\r\n\"b\r\n\"\"\r\n\"\r\nc", "\"a\" \" \" \",x\ny",
    };
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++)
        CHECK(agrees_with_libcsv(in[i], strlen(in[i])));
}

int main(void)
{
    T_RUN(test_lf_crlf_cr);
    T_RUN(test_mixed_line_ends);
    T_RUN(test_blank_lines_not_records);
    T_RUN(test_empty_and_header_only);
    T_RUN(test_quoted_commas_and_doubled_quotes);
    T_RUN(test_quoted_newlines);
    T_RUN(test_quote_after_closing_quote);
    T_RUN(test_stray_quotes_in_unquoted_fields);
    T_RUN(test_unterminated_quote);
    T_RUN(test_nul_byte);
    T_RUN(test_too_long);
    T_RUN(test_ten_mb_field);
    T_RUN(test_field_limit);
    T_RUN(test_csvrow_edges);
    T_RUN(test_plain_split_is_libcsv);
    T_RUN(test_csvrow_reuses_buffers);
    T_RUN(test_cuts_with_first_line);
    T_RUN(test_tricky_inputs_agree);
    T_END();
}
