/* csvscan: finds CSV record boundaries exactly as libcsv splits rows (so the
 * broker's shards and the workers' parse always agree), and parses one
 * record's fields with libcsv. */
#ifndef CSVSCAN_H
#define CSVSCAN_H

#include <stddef.h>
#include <stdint.h>

enum {
    CSVSCAN_UNTERMINATED = 1, /* the buffer ended inside a quoted field */
    CSVSCAN_TOO_LONG = 2,     /* record longer than the scanner's limit */
    CSVSCAN_NUL = 4           /* record holds a NUL byte */
};

typedef struct {
    size_t off;     /* offset of the record's first byte in the buffer */
    size_t len;     /* bytes of the record, line end excluded */
    uint64_t line;  /* physical line (1-based, counted from first_line) where it starts */
    uint32_t flags; /* CSVSCAN_* */
} csvscan_rec;

typedef struct {
    const char *buf;
    size_t len, pos;
    uint64_t line;
    size_t max_record;
    /* Private: offsets of the next quote, CR, LF and NUL at or after pos
     * (len when there is none), so ordinary bytes are skipped by memchr. */
    size_t next_quote, next_cr, next_lf, next_nul;
} csvscan;

/* Scan buf[0..len): records start at physical line first_line. Records
 * longer than max_record bytes are reported with CSVSCAN_TOO_LONG (their
 * bounds stay exact). Blank lines are not records (as libcsv); a line of
 * only spaces and tabs is blank too. The rules are libcsv 3.0.3's with
 * CSV_APPEND_NULL (not strict), ',' and '"', spaces/tabs trimmed, CR and
 * LF as line ends:
 *   - a record is one row as libcsv reports it: it starts at the start of
 *     the physical line holding its first byte other than space or tab
 *     (so off is 0 or just after a CR or LF) and ends before the CR or LF
 *     that ends the row outside quotes, or at the end of the buffer;
 *   - CRLF, a lone CR and a lone LF each end one physical line, inside
 *     quoted fields as well;
 *   - a quote opens a quoted field only as the first byte of a field other
 *     than spaces/tabs; elsewhere in an unquoted field it is literal;
 *   - after the closing quote of a quoted field, anything but a comma, a
 *     line end, spaces/tabs or a second quote puts libcsv back inside the
 *     quoted field (`"a"b,c` is one field `a"b,c...` up to the next lone
 *     quote); after spaces, a quote is literal and the field stays closed;
 *   - a buffer that ends inside a quoted field ends the record there, with
 *     CSVSCAN_UNTERMINATED (libcsv's csv_fini gives the same row).
 * Parsing each record's bytes on its own (csvrow_parse) gives exactly the
 * row libcsv gives for it when parsing the whole buffer. Scanning a
 * sub-buffer that starts at a record's off, with first_line = that
 * record's line, gives the same records (offsets shifted) and lines. */
void csvscan_init(csvscan *s, const char *buf, size_t len, uint64_t first_line, size_t max_record);
/* Next record: 1 and *out filled, 0 at the end. */
int csvscan_next(csvscan *s, csvscan_rec *out);

/* Fields of one record, parsed by libcsv. Reusable across records. */
typedef struct csvrow csvrow;

/* max_fields bounds the columns kept per record (more is an error; 0 means
 * no limit). NULL when out of memory. Free with csvrow_destroy. */
csvrow *csvrow_new(size_t max_fields);
/* NULL-safe; clears *r. */
void csvrow_destroy(csvrow **r);
/* Parse one record's bytes (as csvscan gives them; NUL bytes allowed) with
 * csv_parse + csv_fini. 0, or -1 with err ("N fields, more than the limit
 * of M", "unterminated quoted field", "record holds more than one row",
 * "out of memory"). After the max_fields and unterminated errors the
 * fields are still available: the first max_fields of them, or all that
 * libcsv gave for the unterminated record. No allocation once the buffers
 * have grown to the largest record seen. Blank bytes give 0 fields. */
int csvrow_parse(csvrow *r, const char *rec, size_t len, char *err, size_t errlen);
/* The same, through libcsv always when libcsv_only (csvrow_parse splits a
 * record holding no quote and no line end itself, the same way, faster). */
int csvrow_parse_as(csvrow *r, const char *rec, size_t len, int libcsv_only, char *err, size_t errlen);
/* The first `keep` fields (> 0) of rec, as the full parse gives them when
 * the record is well formed — the rest of it neither checked nor counted
 * (csvrow_count is not its width): for a reader that learns from those
 * fields alone that the record is one taken whole before (the plan's memo:
 * the same bytes). 1, or 0 when they do not split that simply (a quote
 * inside an unquoted field, a quoted one not closed or not followed by a
 * comma, a line end): parse it whole. */
int csvrow_parse_lead(csvrow *r, const char *rec, size_t len, size_t keep);
size_t csvrow_count(const csvrow *r);
/* Arrays of the fields (NUL-terminated) and their lengths, valid until the
 * next parse; owned by r. */
const char *const *csvrow_fields(const csvrow *r);
const size_t *csvrow_lens(const csvrow *r);

#endif
