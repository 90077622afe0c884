/* encoding: turns an input file in any encoding iconv knows into UTF-8,
 * streaming, honouring a BOM, and noting where bytes were invalid. */
#ifndef ENCODING_H
#define ENCODING_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t out_off; /* offset in the UTF-8 output where the bad bytes were replaced */
    uint64_t in_off;  /* their offset in the input file */
} encoding_bad;

/* rep->bad keeps at most this many entries; later runs are only counted. */
#define ENCODING_MAX_BAD 10000

typedef struct {
    char detected[32];    /* encoding actually used (a BOM wins), e.g. "UTF-16LE" */
    char note[256];       /* set when a BOM contradicted the configured encoding,
                           * or UTF-16 without a BOM was read as big-endian */
    encoding_bad *bad;    /* invalid byte runs, in order; owned, free with encoding_report_free */
    size_t nbad;          /* entries in bad (at most ENCODING_MAX_BAD) */
    uint64_t bad_total;   /* all invalid runs, including those past the cap */
    uint64_t in_bytes, out_bytes;
    const char *how;      /* "table" (a one-byte encoding), "iconv" or "validated" (UTF-8) */
} encoding_report;

/* Convert input fd (read to its end) from `encoding` to UTF-8 into output
 * fd. The BOM (UTF-8, UTF-16LE/BE) is removed and, when it names another
 * encoding than `encoding`, honoured and noted. An invalid byte sequence is
 * replaced with U+FFFD in the output, recorded in rep->bad (at most 10000
 * entries, then counted only), and conversion goes on. 0, or -1 with err
 * (unknown encoding, I/O error). `name` is used in messages.
 *   - Names are matched case-insensitively: windows-1252 / cp1252,
 *     ISO-8859-1 / latin1, MacRoman / macintosh, UTF-8 / utf8, UTF-16,
 *     UTF-16LE, UTF-16BE; any other name iconv knows is used as given.
 *   - Each invalid unit (one byte; two for UTF-16) becomes one U+FFFD; a run
 *     of adjacent invalid units is one rep->bad entry (its first byte). A
 *     sequence cut off by the end of the file is invalid too. windows-1252's
 *     undefined bytes (0x81 0x8D 0x8F 0x90 0x9D) are invalid.
 *   - UTF-8 input is validated strictly (no overlongs, surrogates or code
 *     points past U+10FFFF: glibc's iconv lets the last through) and copied.
 *   - UTF-16 without a BOM is read as big-endian (and noted).
 *   - NUL bytes pass through as NUL.
 * rep is reset first; free it with encoding_report_free even after -1. */
int encoding_convert_fd(const char *encoding, int in_fd, int out_fd, const char *name,
                        encoding_report *rep, char *err, size_t errlen);
/* Frees rep->bad; NULL-safe. */
void encoding_report_free(encoding_report *rep);

/* Whether iconv knows the encoding name, after the friendly-name mapping
 * above (0/1). */
int encoding_known(const char *encoding);

#endif
