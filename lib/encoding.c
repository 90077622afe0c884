/* encoding: streams an input file to UTF-8 (a byte table for one-byte encodings over ASCII, iconv for the others, a strict validator for UTF-8), honouring a BOM and recording invalid bytes. */
#include "encoding.h"

#include "util.h"

#include <errno.h>
#include <iconv.h>
#include <stdio.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define IN_CHUNK (1u << 20)  /* bytes read at a time */
#define OUT_CAP (4u << 20)   /* output buffer (UTF-8 grows at most 3x from these encodings) */
#define IN_CARRY 8           /* room for an incomplete sequence carried to the next chunk */

static const char REPLACEMENT[3] = {(char)0xEF, (char)0xBF, (char)0xBD}; /* U+FFFD */

typedef struct {
    const char *names[6]; /* friendly names, matched case-insensitively */
    const char *iconv_name;
    const char *display; /* how messages and rep->detected name it */
    int unit;            /* bytes skipped per invalid unit */
} known_enc;

static const known_enc KNOWN[] = {
    {{"windows-1252", "cp1252", "win-1252", "windows1252", "cp-1252", NULL}, "WINDOWS-1252", "windows-1252", 1},
    {{"iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "latin-1", "l1"}, "ISO-8859-1", "ISO-8859-1", 1},
    {{"macroman", "mac-roman", "mac_roman", "macintosh", "mac", NULL}, "MACINTOSH", "MacRoman", 1},
    {{"utf-8", "utf8", NULL}, "UTF-8", "UTF-8", 1},
    {{"utf-16", "utf16", NULL}, "UTF-16", "UTF-16", 2},
    {{"utf-16le", "utf16le", NULL}, "UTF-16LE", "UTF-16LE", 2},
    {{"utf-16be", "utf16be", NULL}, "UTF-16BE", "UTF-16BE", 2},
};

static const known_enc *lookup(const char *encoding)
{
    for (size_t i = 0; i < sizeof KNOWN / sizeof KNOWN[0]; i++)
        for (size_t j = 0; j < sizeof KNOWN[i].names / sizeof KNOWN[i].names[0]; j++)
            if (KNOWN[i].names[j] != NULL && strcasecmp(KNOWN[i].names[j], encoding) == 0)
                return &KNOWN[i];
    return NULL;
}

/* The iconv name for a configured encoding, or NULL when it is not one. */
static const char *iconv_name_of(const char *encoding)
{
    if (encoding == NULL || encoding[0] == '\0' || strchr(encoding, '/') != NULL)
        return NULL;
    const known_enc *k = lookup(encoding);
    const char *from = k ? k->iconv_name : encoding;
    iconv_t cd = iconv_open("UTF-8", from);
    if (cd == (iconv_t)-1)
        return NULL;
    iconv_close(cd);
    return from;
}

int encoding_known(const char *encoding)
{
    return iconv_name_of(encoding) != NULL;
}

void encoding_report_free(encoding_report *rep)
{
    if (rep == NULL)
        return;
    free(rep->bad);
    rep->bad = NULL;
    rep->nbad = 0;
}

/* ---- I/O ---- */

typedef struct {
    int fd;
    char *buf;
    size_t len;
    uint64_t flushed;
    const char *name;
} out_writer;

static int write_all(int fd, const char *p, size_t n, const char *name, char *err, size_t errlen)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            err_set(err, errlen, "writing the UTF-8 copy of %s: %s", name,
                    w < 0 ? strerror(errno) : "nothing written");
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int out_flush(out_writer *o, char *err, size_t errlen)
{
    if (write_all(o->fd, o->buf, o->len, o->name, err, errlen) < 0)
        return -1;
    o->flushed += o->len;
    o->len = 0;
    return 0;
}

static int out_put(out_writer *o, const char *p, size_t n, char *err, size_t errlen)
{
    if (n > OUT_CAP - o->len) {
        if (out_flush(o, err, errlen) < 0)
            return -1;
        if (n >= OUT_CAP) {
            if (write_all(o->fd, p, n, o->name, err, errlen) < 0)
                return -1;
            o->flushed += n;
            return 0;
        }
    }
    memcpy(o->buf + o->len, p, n);
    o->len += n;
    return 0;
}

/* Read until want bytes or end of file. Bytes read, or -1 with err. */
static ssize_t read_full(int fd, char *p, size_t want, const char *name, char *err, size_t errlen)
{
    size_t got = 0;
    while (got < want) {
        ssize_t r = read(fd, p + got, want - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            err_set(err, errlen, "reading %s: %s", name, strerror(errno));
            return -1;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* ---- invalid bytes ---- */

typedef struct {
    encoding_report *rep;
    size_t cap;                       /* entries allocated in rep->bad */
    uint64_t run_in_end, run_out_end; /* where the last run ended, to merge */
    int have_run;
} bad_log;

/* One invalid unit of unit_len bytes at input offset in_off, replaced by
 * U+FFFD at output offset out_off. Adjacent units make one run. */
static int bad_add(bad_log *b, uint64_t in_off, uint64_t out_off, size_t unit_len)
{
    encoding_report *rep = b->rep;
    if (b->have_run && b->run_in_end == in_off && b->run_out_end == out_off) {
        b->run_in_end += unit_len;
        b->run_out_end += sizeof REPLACEMENT;
        return 0;
    }
    b->have_run = 1;
    b->run_in_end = in_off + unit_len;
    b->run_out_end = out_off + sizeof REPLACEMENT;
    rep->bad_total++;
    if (rep->nbad >= ENCODING_MAX_BAD)
        return 0;
    if (rep->nbad == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        if (cap > ENCODING_MAX_BAD)
            cap = ENCODING_MAX_BAD;
        encoding_bad *nb = realloc(rep->bad, cap * sizeof *nb);
        if (nb == NULL)
            return -1;
        rep->bad = nb;
        b->cap = cap;
    }
    rep->bad[rep->nbad].in_off = in_off;
    rep->bad[rep->nbad].out_off = out_off;
    rep->nbad++;
    return 0;
}

/* ---- UTF-8: strict validation (Unicode Table 3-7) ---- */

/* Length (1-4) of the well-formed sequence at p, 0 when p[0] starts no
 * well-formed sequence, -1 when avail cuts off a sequence that could
 * still be well-formed. */
static int utf8_seq(const unsigned char *p, size_t avail)
{
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    int need;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0)
            lo = 0xA0; /* no overlongs */
        else if (c == 0xED)
            hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F; /* nothing past U+10FFFF */
    } else {
        return 0;
    }
    if (avail < 2)
        return -1;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (int i = 2; i < need; i++) {
        if (avail <= (size_t)i)
            return -1;
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    }
    return need;
}

/* Bytes of p[0..n) that are ASCII, from the start. */
static size_t ascii_prefix(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i + 8 <= n) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        if (w & 0x8080808080808080ULL)
            break;
        i += 8;
    }
    while (i < n && p[i] < 0x80)
        i++;
    return i;
}

/* Validate and copy p[0..n) (input offset in_base). Returns bytes
 * consumed: all but a trailing incomplete sequence unless at_eof, or -1. */
static ssize_t utf8_chunk(const unsigned char *p, size_t n, uint64_t in_base, int at_eof,
                          out_writer *o, bad_log *bl, char *err, size_t errlen)
{
    size_t i = 0, span = 0; /* valid bytes p[span..i) not yet written */
    while (i < n) {
        i += ascii_prefix(p + i, n - i);
        if (i >= n)
            break;
        int k = utf8_seq(p + i, n - i);
        if (k > 0) {
            i += (size_t)k;
            continue;
        }
        if (k < 0 && !at_eof)
            break; /* carried to the next chunk */
        if (out_put(o, (const char *)p + span, i - span, err, errlen) < 0)
            return -1;
        if (bad_add(bl, in_base + i, o->flushed + o->len, 1) < 0) {
            err_set(err, errlen, "out of memory noting invalid bytes in %s", o->name);
            return -1;
        }
        if (out_put(o, REPLACEMENT, sizeof REPLACEMENT, err, errlen) < 0)
            return -1;
        i++;
        span = i;
    }
    if (out_put(o, (const char *)p + span, i - span, err, errlen) < 0)
        return -1;
    return (ssize_t)i;
}

/* ---- iconv ---- */

/* Convert p[0..n) (input offset in_base). Returns bytes consumed: all but
 * a trailing incomplete sequence unless at_eof, or -1. */
static ssize_t iconv_chunk(iconv_t cd, int unit, const char *p, size_t n, uint64_t in_base,
                           int at_eof, out_writer *o, bad_log *bl, char *err, size_t errlen)
{
    char *ip = (char *)(uintptr_t)p; /* iconv's prototype lacks const */
    size_t il = n;
    while (il > 0) {
        char *op = o->buf + o->len;
        size_t ol = OUT_CAP - o->len;
        size_t rc = iconv(cd, &ip, &il, &op, &ol);
        int e = errno;
        o->len = (size_t)(op - o->buf);
        if (rc != (size_t)-1)
            break;
        if (e == E2BIG) {
            if (out_flush(o, err, errlen) < 0)
                return -1;
            continue;
        }
        if (e == EINVAL && !at_eof)
            break; /* incomplete sequence: carried to the next chunk */
        if (e != EILSEQ && e != EINVAL) {
            err_set(err, errlen, "converting %s: %s", o->name, strerror(e));
            return -1;
        }
        /* invalid (or cut off by the end of the file): one U+FFFD per unit */
        if (OUT_CAP - o->len < sizeof REPLACEMENT && out_flush(o, err, errlen) < 0)
            return -1;
        size_t skip = il < (size_t)unit ? il : (size_t)unit;
        if (bad_add(bl, in_base + (uint64_t)(ip - p), o->flushed + o->len, skip) < 0) {
            err_set(err, errlen, "out of memory noting invalid bytes in %s", o->name);
            return -1;
        }
        memcpy(o->buf + o->len, REPLACEMENT, sizeof REPLACEMENT);
        o->len += sizeof REPLACEMENT;
        ip += skip;
        il -= skip;
        iconv(cd, NULL, NULL, NULL, NULL); /* back to the initial state */
    }
    return (ssize_t)(n - il);
}

/* ---- one-byte encodings, by table ---- */

/* An encoding of one byte per character that keeps ASCII (windows-1252,
 * ISO-8859-1, MacRoman, ...): what iconv makes of each of its 256 bytes
 * alone, found once; the file is then converted by the table, runs of
 * ASCII copied as they are. The same output as iconv_chunk's, byte for
 * byte, invalid bytes included (each one U+FFFD, noted). */
typedef struct {
    uint8_t len[256]; /* UTF-8 bytes of each byte; 0: invalid in the encoding */
    char utf8[256][4];
} byte_table;

/* 0 when `from` is such an encoding (t filled), -1 when it is not: a byte
 * that begins a longer sequence or shifts a state, an ASCII byte that is
 * not itself, a character longer than 4 bytes. */
static int byte_table_make(const char *from, byte_table *t)
{
    iconv_t cd = iconv_open("UTF-8", from);
    if (cd == (iconv_t)-1)
        return -1;
    int ok = 1;
    for (int c = 0; c < 256 && ok; c++) {
        char in[1] = {(char)c}, out[16];
        char *ip = in, *op = out;
        size_t il = 1, ol = sizeof out;
        iconv(cd, NULL, NULL, NULL, NULL);
        if (iconv(cd, &ip, &il, &op, &ol) == (size_t)-1) {
            ok = errno == EILSEQ && c >= 0x80; /* invalid alone and wherever it is */
            t->len[c] = 0;
            continue;
        }
        if (iconv(cd, NULL, NULL, &op, &ol) == (size_t)-1) { /* a state to close: not one byte a character */
            ok = 0;
            continue;
        }
        size_t n = (size_t)(op - out);
        if (n == 0 || n > 4 || (c < 0x80 && (n != 1 || out[0] != (char)c)))
            ok = 0;
        else {
            t->len[c] = (uint8_t)n;
            memcpy(t->utf8[c], out, n);
        }
    }
    iconv_close(cd);
    return ok ? 0 : -1;
}

/* Convert p[0..n) (input offset in_base) by table: all of it, or -1. */
static ssize_t table_chunk(const byte_table *t, const unsigned char *p, size_t n, uint64_t in_base, out_writer *o,
                           bad_log *bl, char *err, size_t errlen)
{
    size_t i = 0;
    while (i < n) {
        size_t a = ascii_prefix(p + i, n - i);
        if (a > 0) {
            if (out_put(o, (const char *)p + i, a, err, errlen) < 0)
                return -1;
            i += a;
            continue;
        }
        unsigned c = p[i];
        if (t->len[c] == 0) {
            if (bad_add(bl, in_base + i, o->flushed + o->len, 1) < 0) {
                err_set(err, errlen, "out of memory noting invalid bytes in %s", o->name);
                return -1;
            }
            if (out_put(o, REPLACEMENT, sizeof REPLACEMENT, err, errlen) < 0)
                return -1;
        } else if (out_put(o, t->utf8[c], t->len[c], err, errlen) < 0) {
            return -1;
        }
        i++;
    }
    return (ssize_t)n;
}

/* ---- the whole file ---- */

/* The encoding a BOM at the start of p names, and the BOM's length. */
static const char *bom_of(const unsigned char *p, size_t n, size_t *bom_len)
{
    if (n >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF) {
        *bom_len = 3;
        return "UTF-8";
    }
    if (n >= 2 && p[0] == 0xFF && p[1] == 0xFE) {
        *bom_len = 2;
        return "UTF-16LE";
    }
    if (n >= 2 && p[0] == 0xFE && p[1] == 0xFF) {
        *bom_len = 2;
        return "UTF-16BE";
    }
    *bom_len = 0;
    return NULL;
}

/* Count the NUL bytes of p[0..n) by place in each pair and name the
 * pattern they make, if it is UTF-16's. */
static void sniff_utf16(const unsigned char *p, size_t n, encoding_report *rep)
{
    n = n < ENCODING_SNIFF_BYTES ? n : ENCODING_SNIFF_BYTES;
    n &= ~(size_t)1;
    uint64_t first = 0, second = 0;
    for (size_t i = 0; i < n; i += 2) {
        first += p[i] == 0;
        second += p[i + 1] == 0;
    }
    uint64_t pairs = n / 2;
    rep->sniff_bytes = n;
    rep->nul_first = first;
    rep->nul_second = second;
    rep->utf16_pattern = NULL;
    if (pairs == 0)
        return;
    if (first * 8 >= pairs && second * 8 <= first)
        rep->utf16_pattern = "UTF-16BE";
    else if (second * 8 >= pairs && first * 8 <= second)
        rep->utf16_pattern = "UTF-16LE";
}

int encoding_convert_fd(const char *encoding, int in_fd, int out_fd, const char *name,
                        encoding_report *rep, char *err, size_t errlen)
{
    memset(rep, 0, sizeof *rep);
    if (name == NULL)
        name = "input";
    const char *from = iconv_name_of(encoding);
    if (from == NULL) {
        err_set(err, errlen, "unknown encoding \"%s\" for %s", encoding ? encoding : "", name);
        return -1;
    }
    const known_enc *k = lookup(encoding);
    const char *configured = k ? k->display : encoding;
    int unit = k ? k->unit : 1;

    int rc = -1;
    iconv_t cd = (iconv_t)-1;
    byte_table *table = NULL;
    bad_log bl = {rep, 0, 0, 0, 0};
    out_writer o = {out_fd, NULL, 0, 0, name};
    char *in = malloc(IN_CARRY + IN_CHUNK);
    o.buf = malloc(OUT_CAP);
    if (in == NULL || o.buf == NULL) {
        err_set(err, errlen, "out of memory converting %s", name);
        goto done;
    }

    ssize_t got = read_full(in_fd, in, IN_CHUNK, name, err, errlen);
    if (got < 0)
        goto done;
    size_t avail = (size_t)got;
    int at_eof = avail < IN_CHUNK;
    rep->in_bytes = avail;

    size_t bom_len;
    const char *bom = bom_of((const unsigned char *)in, avail, &bom_len);
    str_copy(rep->configured, sizeof rep->configured, configured);
    sniff_utf16((const unsigned char *)in + bom_len, avail - bom_len, rep);
    if (bom != NULL) {
        int agrees = strcmp(from, bom) == 0 || (strcmp(from, "UTF-16") == 0 && bom_len == 2);
        if (!agrees)
            err_set(rep->note, sizeof rep->note,
                    "file starts with a %s byte-order mark; read as %s instead of %s", bom, bom,
                    configured);
        rep->bom_contradicts = !agrees;
        str_copy(rep->bom, sizeof rep->bom, bom);
        from = bom;
        unit = bom_len == 2 ? 2 : 1;
        str_copy(rep->detected, sizeof rep->detected, bom);
    } else if (strcmp(from, "UTF-16") == 0) {
        from = rep->utf16_pattern ? rep->utf16_pattern : "UTF-16BE";
        str_copy(rep->detected, sizeof rep->detected, from);
        err_set(rep->note, sizeof rep->note, "UTF-16 file without a byte-order mark; read as %s", from);
    } else {
        str_copy(rep->detected, sizeof rep->detected, configured);
    }

    int is_utf8 = strcmp(from, "UTF-8") == 0;
    if (!is_utf8 && unit == 1 && (table = malloc(sizeof(*table))) != NULL && byte_table_make(from, table) < 0) {
        free(table);
        table = NULL;
    }
    rep->how = is_utf8 ? "validated" : table != NULL ? "table" : "iconv";
    if (!is_utf8 && table == NULL) {
        cd = iconv_open("UTF-8", from);
        if (cd == (iconv_t)-1) {
            err_set(err, errlen, "cannot convert %s from %s: %s", name, from, strerror(errno));
            goto done;
        }
    }

    uint64_t in_base = 0; /* file offset of in[0] */
    size_t start = bom_len;
    for (;;) {
        ssize_t used;
        if (is_utf8)
            used = utf8_chunk((const unsigned char *)in + start, avail - start, in_base + start,
                              at_eof, &o, &bl, err, errlen);
        else if (table != NULL)
            used = table_chunk(table, (const unsigned char *)in + start, avail - start, in_base + start, &o, &bl,
                               err, errlen);
        else
            used = iconv_chunk(cd, unit, in + start, avail - start, in_base + start, at_eof, &o,
                               &bl, err, errlen);
        if (used < 0)
            goto done;
        size_t consumed = start + (size_t)used;
        size_t left = avail - consumed;
        if (at_eof)
            break; /* everything consumed: at the end nothing is carried */
        /* carry the incomplete sequence (a few bytes) and read on */
        if (left > IN_CARRY) {
            err_set(err, errlen, "converting %s: %zu unconverted bytes at offset %llu", name, left,
                    (unsigned long long)(in_base + consumed));
            goto done;
        }
        memmove(in, in + consumed, left);
        in_base += consumed;
        got = read_full(in_fd, in + left, IN_CHUNK, name, err, errlen);
        if (got < 0)
            goto done;
        rep->in_bytes += (uint64_t)got;
        avail = left + (size_t)got;
        at_eof = (size_t)got < IN_CHUNK;
        start = 0;
    }
    if (out_flush(&o, err, errlen) < 0)
        goto done;
    rep->out_bytes = o.flushed;
    rc = 0;
done:
    free(table);
    if (cd != (iconv_t)-1)
        iconv_close(cd);
    free(in);
    free(o.buf);
    return rc;
}

char *encoding_convert_to_buf(const char *encoding, int in_fd, const char *name, size_t *len,
                              encoding_report *rep, char *err, size_t errlen)
{
    FILE *tmp = tmpfile();
    char *buf = NULL;
    if (name == NULL)
        name = "input";
    memset(rep, 0, sizeof *rep);
    if (tmp == NULL) {
        err_set(err, errlen, "cannot create a temporary file converting %s", name);
        return NULL;
    }
    if (encoding_convert_fd(encoding, in_fd, fileno(tmp), name, rep, err, errlen) < 0)
        goto out;
    size_t n = (size_t)rep->out_bytes;
    buf = malloc(n + 1);
    if (buf == NULL) {
        err_set(err, errlen, "out of memory reading %s", name);
        goto out;
    }
    if (n > 0 && pread(fileno(tmp), buf, n, 0) != (ssize_t)n) {
        err_set(err, errlen, "cannot read back %s after converting it", name);
        free(buf);
        buf = NULL;
        goto out;
    }
    buf[n] = '\0';
    *len = n;
out:
    fclose(tmp);
    return buf;
}

char *encoding_convert_mem(const char *encoding, const char *in, size_t inlen, const char *name, size_t *len,
                           encoding_report *rep, char *err, size_t errlen)
{
    memset(rep, 0, sizeof *rep);
    if (name == NULL)
        name = "input";
    int fd = memfd_create("encoding-in", MFD_CLOEXEC);
    if (fd < 0) {
        err_set(err, errlen, "cannot hold %s in memory: %s", name, strerror(errno));
        return NULL;
    }
    size_t done = 0;
    while (done < inlen) {
        ssize_t w = write(fd, in + done, inlen - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            err_set(err, errlen, "cannot hold %s in memory: %s", name, strerror(errno));
            close(fd);
            return NULL;
        }
        done += (size_t)w;
    }
    char *out = NULL;
    if (lseek(fd, 0, SEEK_SET) == 0)
        out = encoding_convert_to_buf(encoding, fd, name, len, rep, err, errlen);
    else
        err_set(err, errlen, "cannot rewind %s in memory: %s", name, strerror(errno));
    close(fd);
    return out;
}
