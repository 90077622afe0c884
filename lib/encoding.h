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

/* Bytes of the file's start (after any BOM) looked at for the NUL bytes
 * that tell UTF-16 without a BOM (rep->utf16_pattern). */
#define ENCODING_SNIFF_BYTES 65536

typedef struct {
    char detected[32];    /* encoding actually used (a BOM wins), e.g. "UTF-16LE" */
    char configured[32];  /* the encoding as given, by the name messages use ("windows-1252") */
    char bom[16];         /* the encoding a byte-order mark at the start names, "" without one */
    int bom_contradicts;  /* that BOM named another encoding than the configured one (it was followed) */
    /* NUL bytes among the first sniff_bytes bytes after any BOM (at most
     * ENCODING_SNIFF_BYTES, even), by place in each pair of bytes: UTF-16
     * text of letters, digits, commas and line ends has the NUL of each
     * such character's other byte in every second byte. */
    uint64_t sniff_bytes, nul_first, nul_second;
    const char *utf16_pattern; /* "UTF-16BE": the first byte of at least 1 in 8 pairs is NUL, the second
                                * seldom (at most 1 in 8 as often); "UTF-16LE": the reverse; NULL: neither */
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
 *   - UTF-16 without a BOM is read as the NUL bytes say (utf16_pattern), or
 *     as big-endian when they say nothing, and noted either way. Whether a
 *     file's bytes contradict the encoding given is the caller's to decide
 *     from the report (bom_contradicts, utf16_pattern).
 *   - NUL bytes pass through as NUL.
 * rep is reset first; free it with encoding_report_free even after -1. */
int encoding_convert_fd(const char *encoding, int in_fd, int out_fd, const char *name,
                        encoding_report *rep, char *err, size_t errlen);
/* The whole of in_fd converted as encoding_convert_fd does, into a new
 * NUL-terminated buffer of *len bytes the caller frees (through a
 * temporary file). NULL with err. rep as encoding_convert_fd. */
char *encoding_convert_to_buf(const char *encoding, int in_fd, const char *name, size_t *len,
                              encoding_report *rep, char *err, size_t errlen);
/* The same for bytes in memory (in[0..inlen)). */
char *encoding_convert_mem(const char *encoding, const char *in, size_t inlen, const char *name, size_t *len,
                           encoding_report *rep, char *err, size_t errlen);
/* Frees rep->bad; NULL-safe. */
void encoding_report_free(encoding_report *rep);

/* Whether iconv knows the encoding name, after the friendly-name mapping
 * above (0/1). */
int encoding_known(const char *encoding);

#endif
