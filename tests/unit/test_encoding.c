/* test_encoding: conversion of small temp files from each supported encoding to UTF-8, BOMs, invalid bytes, chunk edges. */
#include "encoding.h"
#include "t.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FFFD "\xEF\xBF\xBD"

/* Write data to a new temp file in /tmp and return an fd open for reading
 * at its start (the file is already unlinked). -1 on failure. */
static int temp_input(const void *data, size_t len)
{
    char path[] = "/tmp/test_encoding_in.XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    unlink(path);
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w <= 0) {
            close(fd);
            return -1;
        }
        p += w;
        left -= (size_t)w;
    }
    if (lseek(fd, 0, SEEK_SET) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int temp_output(void)
{
    char path[] = "/tmp/test_encoding_out.XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0)
        unlink(path);
    return fd;
}

/* Convert data from enc; the UTF-8 result goes to *out (caller frees with
 * sb_free). Returns encoding_convert_fd's result. */
static int convert(const char *enc, const void *data, size_t len, strbuf *out, encoding_report *rep,
                   char *err)
{
    sb_init(out);
    memset(rep, 0, sizeof *rep);
    err[0] = '\0';
    int in = temp_input(data, len);
    int o = temp_output();
    if (in < 0 || o < 0) {
        printf("  temp files: %s\n", strerror(errno));
        return -2;
    }
    int rc = encoding_convert_fd(enc, in, o, "students.csv", rep, err, ERRLEN);
    if (rc == 0) {
        off_t size = lseek(o, 0, SEEK_END);
        lseek(o, 0, SEEK_SET);
        char *buf = malloc((size_t)size + 1);
        ssize_t r = buf ? read(o, buf, (size_t)size) : -1;
        if (r == size)
            sb_append(out, buf, (size_t)size);
        else
            rc = -2;
        free(buf);
        if (out->buf == NULL)
            sb_append(out, "", 0);
    }
    close(in);
    close(o);
    return rc;
}

static int out_is(const strbuf *out, const char *want, size_t wlen)
{
    return out->len == wlen && (wlen == 0 || memcmp(out->buf, want, wlen) == 0);
}

#define OUT_IS(out, lit) out_is((out), (lit), sizeof(lit) - 1)

static void test_windows_1252(void)
{
    strbuf out;
    encoding_report rep;
    char err[ERRLEN];
    const char in[] = "id,name\r\n1,Jos\xe9\r\n2,\x93quoted\x94 \x80 \x9f\r\n";
    const char *names[] = {"windows-1252", "cp1252", "CP1252", "Windows-1252"};
    for (size_t i = 0; i < 4; i++) {
        CHECK(convert(names[i], in, sizeof in - 1, &out, &rep, err) == 0);
        CHECK(OUT_IS(&out, "id,name\r\n1,Jos\xc3\xa9\r\n2,\xe2\x80\x9cquoted\xe2\x80\x9d \xe2\x82\xac "
                           "\xc5\xb8\r\n"));
        CHECK_STR(rep.detected, "windows-1252");
        CHECK_STR(rep.note, "");
        CHECK(rep.nbad == 0 && rep.bad_total == 0);
        CHECK(rep.in_bytes == sizeof in - 1);
        CHECK(rep.out_bytes == out.len);
        encoding_report_free(&rep);
        sb_free(&out);
    }
}

static void test_windows_1252_undefined_bytes(void)
{
    strbuf out;
    encoding_report rep;
    char err[ERRLEN];
    /* 0x81 alone; 0x8D 0x8F adjacent (one run, two U+FFFD); 0x90; 0x9D */
    const char in[] = "a\x81" "b\xe9\x8d\x8f" "c\x90\x9d";
    CHECK(convert("windows-1252", in, sizeof in - 1, &out, &rep, err) == 0);
    CHECK(OUT_IS(&out, "a" FFFD "b\xc3\xa9" FFFD FFFD "c" FFFD FFFD));
    CHECK(rep.nbad == 3 && rep.bad_total == 3);
    if (rep.nbad == 3) {
        CHECK(rep.bad[0].in_off == 1 && rep.bad[0].out_off == 1);
        CHECK(rep.bad[1].in_off == 4 && rep.bad[1].out_off == 7);
        CHECK(rep.bad[2].in_off == 7 && rep.bad[2].out_off == 14);
    }
    encoding_report_free(&rep);
    CHECK(rep.bad == NULL);
    sb_free(&out);
}

static void test_latin1(void)
{
    strbuf out;
    encoding_report rep;
    char err[ERRLEN];
    const char in[] = "M\xfcller,\xe9\x80\x81\xff\n"; /* 0x80-0x9F are C1 controls: defined */
    const char *names[] = {"ISO-8859-1", "latin1", "iso8859-1"};
    for (size_t i = 0; i < 3; i++) {
        CHECK(convert(names[i], in, sizeof in - 1, &out, &rep, err) == 0);
        CHECK(OUT_IS(&out, "M\xc3\xbcller,\xc3\xa9\xc2\x80\xc2\x81\xc3\xbf\n"));
        CHECK_STR(rep.detected, "ISO-8859-1");
        CHECK(rep.nbad == 0);
        encoding_report_free(&rep);
        sb_free(&out);
    }
}

static void test_macroman(void)
{
    strbuf out;
    encoding_report rep;
    char err[ERRLEN];
    const char in[] = "Jos\x8e,\xd2q\xd3,\xa5,\x80\r";
    const char *names[] = {"MacRoman", "macintosh", "mac-roman"};
    for (size_t i = 0; i < 3; i++) {
        CHECK(convert(names[i], in, sizeof in - 1, &out, &rep, err) == 0);
        CHECK(OUT_IS(&out, "Jos\xc3\xa9,\xe2\x80\x9cq\xe2\x80\x9d,\xe2\x80\xa2,\xc3\x84\r"));
        CHECK_STR(rep.detected, "MacRoman");
        CHECK(rep.nbad == 0);
        encoding_report_free(&rep);
        sb_free(&out);
    }
}

/* Every byte of the one-byte encodings (converted by table) comes out as
 * iconv itself converts it: the 256 bytes twice, in one file, against one
 * iconv call per byte; an invalid byte is one U+FFFD, each run noted. Encodings that
 * are not one byte per character over ASCII still convert (by iconv). */
static void test_every_byte_as_iconv(void)
{
    const char *encs[] = {"windows-1252", "ISO-8859-1", "MacRoman", "ISO-8859-15", "KOI8-R"};
    const char *iconv_names[] = {"WINDOWS-1252", "ISO-8859-1", "MACINTOSH", "ISO-8859-15", "KOI8-R"};
    char in[512];
    for (int i = 0; i < 512; i++)
        in[i] = (char)(i & 0xff);
    for (size_t e = 0; e < sizeof encs / sizeof encs[0]; e++) {
        strbuf want;
        sb_init(&want);
        size_t invalid = 0;
        int prev_bad = 0;
        iconv_t cd = iconv_open("UTF-8", iconv_names[e]);
        CHECK(cd != (iconv_t)-1);
        if (cd == (iconv_t)-1)
            continue;
        for (int i = 0; i < 512; i++) {
            char b = in[i], out[16], *ip = &b, *op = out;
            size_t il = 1, ol = sizeof out;
            if (iconv(cd, &ip, &il, &op, &ol) == (size_t)-1) {
                sb_append(&want, FFFD, 3);
                invalid += !prev_bad; /* adjacent invalid bytes are one run */
                prev_bad = 1;
            } else {
                sb_append(&want, out, (size_t)(op - out));
                prev_bad = 0;
            }
        }
        iconv_close(cd);
        strbuf out;
        encoding_report rep;
        char err[ERRLEN];
        CHECK(convert(encs[e], in, sizeof in, &out, &rep, err) == 0);
        CHECK(rep.how != NULL && strcmp(rep.how, "table") == 0);
        CHECK(out.len == want.len && memcmp(out.buf, want.buf, want.len) == 0);
        CHECK(rep.bad_total == invalid);
        if (out.len != want.len || rep.bad_total != invalid)
            printf("  %s: %zu bytes out, %zu wanted; %llu invalid, %zu wanted\n", encs[e], out.len, want.len,
                   (unsigned long long)rep.bad_total, invalid);
        encoding_report_free(&rep);
        sb_free(&out);
        sb_free(&want);
    }
    /* windows-1252 leaves 5 bytes undefined (0x8F and 0x90 one run): each run noted where it is */
    strbuf out;
    encoding_report rep;
    char err[ERRLEN];
    CHECK(convert("windows-1252", in, 256, &out, &rep, err) == 0);
    CHECK(rep.bad_total == 4 && rep.nbad == 4 && rep.bad[0].in_off == 0x81 && rep.bad[2].in_off == 0x8f &&
          rep.bad[3].in_off == 0x9d);
    encoding_report_free(&rep);
    sb_free(&out);
    /* two bytes a character (Shift_JIS) and not ASCII at all (EBCDIC) */
    CHECK(convert("SHIFT_JIS", "a\x82\xa0" "b", 4, &out, &rep, err) == 0);
    CHECK(OUT_IS(&out, "a\xe3\x81\x82" "b"));
    CHECK(rep.how != NULL && strcmp(rep.how, "iconv") == 0);
    encoding_report_free(&rep);
    sb_free(&out);
    CHECK(convert("IBM037", "\xc1\x81", 2, &out, &rep, err) == 0);
    CHECK(OUT_IS(&out, "Aa"));
    CHECK(rep.how != NULL && strcmp(rep.how, "iconv") == 0);
    encoding_report_free(&rep);
    sb_free(&out);
}

static void test_utf8_with_and_without_bom(void)
{
    strbuf out;
    encoding_report rep;
    char err[ERRLEN];
    const char plain[] = "id,name\n1,Siobh\xc3\xa1n \xe2\x82\xac \xf0\x9f\x93\x9a\n";
    CHECK(convert("UTF-8", plain, sizeof plain - 1, &out, &rep, err) == 0);
    CHECK(OUT_IS(&out, "id,name\n1,Siobh\xc3\xa1n \xe2\x82\xac \xf0\x9f\x93\x9a\n"));
    CHECK_STR(rep.detected, "UTF-8");
    CHECK_STR(rep.note, "");
    CHECK(rep.nbad == 0);
    encoding_report_free(&rep);
    sb_free(&out);

    const char bom[] = "\xef\xbb\xbfid,name\n1,Siobh\xc3\xa1n\n";
    CHECK(convert("utf8", bom, sizeof bom - 1, &out, &rep, err) == 0);
    CHECK(OUT_IS(&out, "id,name\n1,Siobh\xc3\xa1n\n")); /* BOM removed */
    CHECK_STR(rep.detected, "UTF-8");
    CHECK_STR(rep.note, ""); /* agrees with the configured encoding */
    CHECK(rep.in_bytes == sizeof bom - 1);
    encoding_report_free(&rep);
    sb_free(&out);

    /* only a BOM: empty output */
    CHECK(convert("UTF-8", "\xef\xbb\xbf", 3, &out, &rep, err) == 0);
    CHECK(out.len == 0);
    encoding_report_free(&rep);
    sb_free(&out);
}

static void test_utf8_invalid_bytes(void)
{
    strbuf out;
    encoding_report rep;
    char err[ERRLEN];
    /* C3 28: lone lead byte; ED A0 80: surrogate (3 invalid bytes, one run);
     * F4 90 80 80: past U+10FFFF (glibc's iconv would pass it); C0 AF:
     * overlong; then a sequence cut off by the end of the file */
    const char in[] = "a,\xc3(,\xed\xa0\x80,\xf4\x90\x80\x80,\xc0\xaf,ok\xe2\x82";
    CHECK(convert("UTF-8", in, sizeof in - 1, &out, &rep, err) == 0);
    CHECK(OUT_IS(&out, "a," FFFD "(," FFFD FFFD FFFD "," FFFD FFFD FFFD FFFD "," FFFD FFFD ",ok" FFFD
                       FFFD));
    CHECK(rep.nbad == 5 && rep.bad_total == 5);
    if (rep.nbad == 5) {
        CHECK(rep.bad[0].in_off == 2 && rep.bad[0].out_off == 2);
        CHECK(rep.bad[1].in_off == 5 && rep.bad[1].out_off == 7);
        CHECK(rep.bad[2].in_off == 9 && rep.bad[2].out_off == 17);
        CHECK(rep.bad[3].in_off == 14 && rep.bad[3].out_off == 30);
        CHECK(rep.bad[4].in_off == 19 && rep.bad[4].out_off == 39);
    }
    encoding_report_free(&rep);
    sb_free(&out);
}

static void test_utf16_with_bom(void)
{
    strbuf out;
    encoding_report rep;
    char err[ERRLEN];
    /* "é,\U0001F4DA\n" in UTF-16LE and UTF-16BE, each with its BOM */
    const char le[] = "\xff\xfe\xe9\x00,\x00\x3d\xd8\xda\xdc\n\x00";
    const char be[] = "\xfe\xff\x00\xe9\x00,\xd8\x3d\xdc\xda\x00\n";
    const char want[] = "\xc3\xa9,\xf0\x9f\x93\x9a\n";
    const char *cfg[] = {"UTF-16", "utf-16le", "UTF-16"};
    const char *files[] = {le, le, be};
    const char *det[] = {"UTF-16LE", "UTF-16LE", "UTF-16BE"};
    for (size_t i = 0; i < 3; i++) {
        CHECK(convert(cfg[i], files[i], sizeof le - 1, &out, &rep, err) == 0);
        CHECK(out_is(&out, want, sizeof want - 1));
        CHECK_STR(rep.detected, det[i]);
        CHECK_STR(rep.note, "");
        CHECK(rep.nbad == 0);
        encoding_report_free(&rep);
        sb_free(&out);
    }
    /* without a BOM: as configured */
    CHECK(convert("UTF-16LE", le + 2, sizeof le - 3, &out, &rep, err) == 0);
    CHECK(out_is(&out, want, sizeof want - 1));
    CHECK_STR(rep.detected, "UTF-16LE");
    encoding_report_free(&rep);
    sb_free(&out);
    /* UTF-16 without a BOM is big-endian, and the report says so */
    CHECK(convert("UTF-16", be + 2, sizeof be - 3, &out, &rep, err) == 0);
    CHECK(out_is(&out, want, sizeof want - 1));
    CHECK_STR(rep.detected, "UTF-16BE");
    CHECK_STR(rep.note, "UTF-16 file without a byte-order mark; read as UTF-16BE");
    encoding_report_free(&rep);
    sb_free(&out);
}

static void test_bom_contradicts_configured(void)
{
    strbuf out;
    encoding_report rep;
    char err[ERRLEN];
    const char le[] = "\xff\xfe" "a\x00,\x00\xe9\x00";
    CHECK(convert("windows-1252", le, sizeof le - 1, &out, &rep, err) == 0);
    CHECK(OUT_IS(&out, "a,\xc3\xa9"));
    CHECK_STR(rep.detected, "UTF-16LE");
    CHECK_STR(rep.note,
              "file starts with a UTF-16LE byte-order mark; read as UTF-16LE instead of windows-1252");
    encoding_report_free(&rep);
    sb_free(&out);

    /* Excel's "CSV UTF-8" on a schedule still set to the default */
    const char u8[] = "\xef\xbb\xbf" "Jos\xc3\xa9";
    CHECK(convert("cp1252", u8, sizeof u8 - 1, &out, &rep, err) == 0);
    CHECK(OUT_IS(&out, "Jos\xc3\xa9")); /* not double-encoded */
    CHECK_STR(rep.detected, "UTF-8");
    CHECK_STR(rep.note, "file starts with a UTF-8 byte-order mark; read as UTF-8 instead of windows-1252");
    encoding_report_free(&rep);
    sb_free(&out);

    const char be[] = "\xfe\xff\x00" "a";
    CHECK(convert("UTF-16LE", be, sizeof be - 1, &out, &rep, err) == 0);
    CHECK(OUT_IS(&out, "a"));
    CHECK_STR(rep.note, "file starts with a UTF-16BE byte-order mark; read as UTF-16BE instead of UTF-16LE");
    encoding_report_free(&rep);
    sb_free(&out);
}

static void test_utf16_invalid_units(void)
{
    strbuf out;
    encoding_report rep;
    char err[ERRLEN];
    /* lone low surrogate at 4; high surrogate then 'b' at 8; odd last byte */
    const char le[] = "\xff\xfe" "a\x00\x00\xdc" "a\x00\x3d\xd8" "b\x00" "c";
    CHECK(convert("UTF-16", le, sizeof le - 1, &out, &rep, err) == 0);
    CHECK(OUT_IS(&out, "a" FFFD "a" FFFD "b" FFFD));
    CHECK(rep.nbad == 3);
    if (rep.nbad == 3) {
        CHECK(rep.bad[0].in_off == 4 && rep.bad[0].out_off == 1);
        CHECK(rep.bad[1].in_off == 8 && rep.bad[1].out_off == 5);
        CHECK(rep.bad[2].in_off == 12 && rep.bad[2].out_off == 9);
    }
    encoding_report_free(&rep);
    sb_free(&out);
}

static void test_nul_passes_through(void)
{
    strbuf out;
    encoding_report rep;
    char err[ERRLEN];
    const char in[] = "a\0b,\xe9\n";
    CHECK(convert("windows-1252", in, sizeof in - 1, &out, &rep, err) == 0);
    CHECK(OUT_IS(&out, "a\0b,\xc3\xa9\n"));
    encoding_report_free(&rep);
    sb_free(&out);
    CHECK(convert("UTF-8", in, 4, &out, &rep, err) == 0);
    CHECK(OUT_IS(&out, "a\0b,"));
    CHECK(rep.nbad == 0);
    encoding_report_free(&rep);
    sb_free(&out);
}

/* Multibyte sequences cut by the 1 MB read boundary convert whole, and
 * offsets after it stay right. */
static void test_chunk_boundary(void)
{
    const size_t chunk = 1u << 20;
    strbuf out;
    encoding_report rep;
    char err[ERRLEN];
    size_t len = chunk + 4096;
    char *in = malloc(len);
    CHECK(in != NULL);
    if (in == NULL)
        return;

    /* UTF-8: a 3-byte euro sign cut 1|2 and, later, an invalid byte */
    memset(in, 'x', len);
    memcpy(in + chunk - 1, "\xe2\x82\xac", 3);
    in[chunk + 100] = (char)0xff;
    CHECK(convert("UTF-8", in, len, &out, &rep, err) == 0);
    CHECK(out.len == len + 2);
    CHECK(out.len > chunk + 2 && memcmp(out.buf + chunk - 1, "\xe2\x82\xac", 3) == 0);
    CHECK(rep.nbad == 1);
    if (rep.nbad == 1)
        CHECK(rep.bad[0].in_off == chunk + 100 && rep.bad[0].out_off == chunk + 100);
    CHECK(rep.in_bytes == len);
    encoding_report_free(&rep);
    sb_free(&out);

    /* UTF-8 with a BOM: a 4-byte sequence cut 3|1 */
    memset(in, 'y', len);
    memcpy(in, "\xef\xbb\xbf", 3);
    memcpy(in + chunk - 3, "\xf0\x9f\x93\x9a", 4);
    CHECK(convert("UTF-8", in, len, &out, &rep, err) == 0);
    CHECK(out.len == len - 3);
    CHECK(out.len > chunk && memcmp(out.buf + chunk - 6, "\xf0\x9f\x93\x9a", 4) == 0);
    CHECK(rep.nbad == 0);
    encoding_report_free(&rep);
    sb_free(&out);

    /* UTF-16LE: a surrogate pair cut between its halves, an invalid unit
     * after the boundary */
    for (size_t i = 2; i + 1 < len; i += 2) {
        in[i] = 'z';
        in[i + 1] = 0;
    }
    memcpy(in, "\xff\xfe", 2);
    memcpy(in + chunk - 2, "\x3d\xd8\xda\xdc", 4);
    memcpy(in + chunk + 200, "\x00\xdc", 2);
    CHECK(convert("UTF-16LE", in, len, &out, &rep, err) == 0);
    size_t units = (len - 2) / 2;
    CHECK(out.len == units - 2 + 4 - 1 + 3);
    size_t pair_out = (chunk - 2 - 2) / 2;
    CHECK(out.len > pair_out + 4 && memcmp(out.buf + pair_out, "\xf0\x9f\x93\x9a", 4) == 0);
    CHECK(rep.nbad == 1);
    if (rep.nbad == 1) {
        CHECK(rep.bad[0].in_off == chunk + 200);
        CHECK(rep.bad[0].out_off == (chunk + 200 - 2) / 2 - 2 + 4);
    }
    encoding_report_free(&rep);
    sb_free(&out);

    /* windows-1252 over several chunks: every € becomes 3 bytes */
    memset(in, (char)0x80, len);
    CHECK(convert("windows-1252", in, len, &out, &rep, err) == 0);
    CHECK(out.len == 3 * len);
    CHECK(out.len == 3 * len && memcmp(out.buf + 3 * (chunk - 1), "\xe2\x82\xac\xe2\x82\xac", 6) == 0);
    CHECK(rep.out_bytes == 3 * len);
    encoding_report_free(&rep);
    sb_free(&out);
    free(in);
}

static void test_bad_entries_capped(void)
{
    strbuf out;
    encoding_report rep;
    char err[ERRLEN];
    size_t runs = ENCODING_MAX_BAD + 500;
    char *in = malloc(runs * 2);
    CHECK(in != NULL);
    if (in == NULL)
        return;
    for (size_t i = 0; i < runs; i++) {
        in[2 * i] = (char)0x81;
        in[2 * i + 1] = 'a';
    }
    CHECK(convert("windows-1252", in, runs * 2, &out, &rep, err) == 0);
    CHECK(rep.nbad == ENCODING_MAX_BAD);
    CHECK(rep.bad_total == runs);
    CHECK(rep.bad[ENCODING_MAX_BAD - 1].in_off == 2 * (ENCODING_MAX_BAD - 1));
    CHECK(rep.bad[ENCODING_MAX_BAD - 1].out_off == 4 * (ENCODING_MAX_BAD - 1));
    CHECK(out.len == runs * 4);
    encoding_report_free(&rep);
    sb_free(&out);
    free(in);
}

static void test_empty_file(void)
{
    strbuf out;
    encoding_report rep;
    char err[ERRLEN];
    CHECK(convert("windows-1252", "", 0, &out, &rep, err) == 0);
    CHECK(out.len == 0);
    CHECK(rep.in_bytes == 0 && rep.out_bytes == 0);
    encoding_report_free(&rep);
    sb_free(&out);
}

static void test_unknown_encoding_and_io_errors(void)
{
    strbuf out;
    encoding_report rep;
    char err[ERRLEN];
    CHECK(convert("klingon", "a", 1, &out, &rep, err) == -1);
    CHECK_STR(err, "unknown encoding \"klingon\" for students.csv");
    encoding_report_free(&rep);
    sb_free(&out);
    CHECK(convert("UTF-8//IGNORE", "a", 1, &out, &rep, err) == -1);
    encoding_report_free(&rep);
    sb_free(&out);

    int in = temp_input("abc", 3);
    CHECK(encoding_convert_fd("UTF-8", in, -1, "students.csv", &rep, err, sizeof err) == -1);
    CHECK(strncmp(err, "writing the UTF-8 copy of students.csv: ", 40) == 0);
    encoding_report_free(&rep);
    close(in);

    int dir = open("/tmp", O_RDONLY | O_DIRECTORY);
    int o = temp_output();
    CHECK(encoding_convert_fd("UTF-8", dir, o, "students.csv", &rep, err, sizeof err) == -1);
    CHECK(strncmp(err, "reading students.csv: ", 22) == 0);
    encoding_report_free(&rep);
    encoding_report_free(NULL);
    close(dir);
    close(o);
}

static void test_known_names(void)
{
    CHECK(encoding_known("windows-1252") == 1);
    CHECK(encoding_known("CP1252") == 1);
    CHECK(encoding_known("Latin1") == 1);
    CHECK(encoding_known("MacRoman") == 1);
    CHECK(encoding_known("utf-16") == 1);
    CHECK(encoding_known("UTF-16BE") == 1);
    CHECK(encoding_known("ISO-8859-15") == 1); /* any name iconv knows */
    CHECK(encoding_known("klingon") == 0);
    CHECK(encoding_known("") == 0);
    CHECK(encoding_known(NULL) == 0);
    CHECK(encoding_known("UTF-8//IGNORE") == 0);
}

/* The report's evidence for the broker's wrong-encoding checks: the BOM
 * and whether it contradicts, and the NUL bytes of UTF-16 without a BOM,
 * by which a file given as "UTF-16" is read in the byte order they show. */
static void test_wrong_encoding_evidence(void)
{
    strbuf out;
    encoding_report rep;
    char err[ERRLEN];
    /* "id,name\nJos\xe9\n" in UTF-16LE without a BOM, given as UTF-16: little-endian by its NULs */
    const char le[] = "i\0d\0,\0n\0a\0m\0e\0\n\0J\0o\0s\0\xe9\0\n\0";
    CHECK(convert("UTF-16", le, sizeof le - 1, &out, &rep, err) == 0);
    CHECK(OUT_IS(&out, "id,name\nJos\xc3\xa9\n"));
    CHECK_STR(rep.detected, "UTF-16LE");
    CHECK_STR(rep.configured, "UTF-16");
    CHECK_STR(rep.note, "UTF-16 file without a byte-order mark; read as UTF-16LE");
    CHECK_STR(rep.bom, "");
    CHECK(rep.bom_contradicts == 0);
    CHECK(rep.sniff_bytes == sizeof le - 1 && rep.nul_second == 13 && rep.nul_first == 0);
    CHECK(rep.utf16_pattern != NULL && strcmp(rep.utf16_pattern, "UTF-16LE") == 0);
    encoding_report_free(&rep);
    sb_free(&out);

    /* the same bytes given as windows-1252: read as given (NULs and all), the pattern reported */
    CHECK(convert("cp1252", le, sizeof le - 1, &out, &rep, err) == 0);
    CHECK_STR(rep.detected, "windows-1252");
    CHECK_STR(rep.configured, "windows-1252");
    CHECK(rep.utf16_pattern != NULL && strcmp(rep.utf16_pattern, "UTF-16LE") == 0);
    encoding_report_free(&rep);
    sb_free(&out);

    /* big-endian: the first byte of each pair */
    const char be[] = "\0i\0d\0,\0\xe9\0\n";
    CHECK(convert("UTF-16LE", be, sizeof be - 1, &out, &rep, err) == 0);
    CHECK_STR(rep.detected, "UTF-16LE"); /* read as given; the broker refuses it */
    CHECK(rep.nul_first == 5 && rep.nul_second == 0);
    CHECK(rep.utf16_pattern != NULL && strcmp(rep.utf16_pattern, "UTF-16BE") == 0);
    encoding_report_free(&rep);
    sb_free(&out);

    /* windows-1252 text has no NUL: no pattern, whatever it is given as */
    const char cp[] = "id,name\r\n41415926,N\xfa\xf1" "ez\r\n";
    const char *as[] = {"windows-1252", "UTF-16", "UTF-16BE"};
    for (size_t i = 0; i < 3; i++) {
        CHECK(convert(as[i], cp, sizeof cp - 1, &out, &rep, err) == 0);
        CHECK(rep.utf16_pattern == NULL);
        CHECK(rep.nul_first == 0 && rep.nul_second == 0 && rep.sniff_bytes == sizeof cp - 1 - 1); /* even */
        encoding_report_free(&rep);
        sb_free(&out);
    }

    /* NULs on both sides (a binary file): no pattern */
    const char bin[] = "\0\0\0\0PK\0\0\0\0\x14\0\0\0";
    CHECK(convert("UTF-16", bin, sizeof bin - 1, &out, &rep, err) == 0);
    CHECK(rep.utf16_pattern == NULL);
    encoding_report_free(&rep);
    sb_free(&out);

    /* a BOM: named, and whether it contradicts; the NULs are counted after it */
    const char u8[] = "\xef\xbb\xbf" "Jos\xc3\xa9";
    CHECK(convert("windows-1252", u8, sizeof u8 - 1, &out, &rep, err) == 0);
    CHECK_STR(rep.bom, "UTF-8");
    CHECK(rep.bom_contradicts == 1);
    CHECK_STR(rep.configured, "windows-1252");
    CHECK(rep.sniff_bytes == 4);
    encoding_report_free(&rep);
    sb_free(&out);
    CHECK(convert("UTF-8", u8, sizeof u8 - 1, &out, &rep, err) == 0);
    CHECK_STR(rep.bom, "UTF-8");
    CHECK(rep.bom_contradicts == 0);
    encoding_report_free(&rep);
    sb_free(&out);
    const char bomle[] = "\xff\xfe" "a\0,\0";
    CHECK(convert("UTF-16", bomle, sizeof bomle - 1, &out, &rep, err) == 0);
    CHECK(rep.bom_contradicts == 0 && strcmp(rep.bom, "UTF-16LE") == 0);
    encoding_report_free(&rep);
    sb_free(&out);
    CHECK(convert("UTF-16BE", bomle, sizeof bomle - 1, &out, &rep, err) == 0);
    CHECK(rep.bom_contradicts == 1 && strcmp(rep.detected, "UTF-16LE") == 0);
    encoding_report_free(&rep);
    sb_free(&out);
}

int main(void)
{
    T_RUN(test_windows_1252);
    T_RUN(test_windows_1252_undefined_bytes);
    T_RUN(test_latin1);
    T_RUN(test_macroman);
    T_RUN(test_every_byte_as_iconv);
    T_RUN(test_utf8_with_and_without_bom);
    T_RUN(test_utf8_invalid_bytes);
    T_RUN(test_utf16_with_bom);
    T_RUN(test_bom_contradicts_configured);
    T_RUN(test_utf16_invalid_units);
    T_RUN(test_nul_passes_through);
    T_RUN(test_chunk_boundary);
    T_RUN(test_bad_entries_capped);
    T_RUN(test_empty_file);
    T_RUN(test_unknown_encoding_and_io_errors);
    T_RUN(test_known_names);
    T_RUN(test_wrong_encoding_evidence);
    T_END();
}
