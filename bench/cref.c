/* cref.c - the single-process C reference loader: no cluster, the limit a
 * cluster has to earn its keep against.
 *
 *   cref [--encoding cp1252|utf-8] [--schema bench/schema.sql] STORE.db FILE.csv
 *
 * libcsv parses FILE (read in 1 MiB blocks), cp1252 bytes are converted to
 * UTF-8 with a table, and one prepared
 * `INSERT ... ON CONFLICT(district_id) DO UPDATE` per row runs inside one
 * transaction, with the columns and SQLite settings of bench/schema.sql
 * (WAL, synchronous=NORMAL, 256 MB page cache, temp_store=MEMORY).
 * Prints one JSON line: {"method": "cref", "rows": N, "skipped": N, "seconds": S}.
 *
 * Built by bench/run: cc -O2 -Wall -Wextra -Werror cref.c -lcsv -lsqlite3
 */
#define _POSIX_C_SOURCE 200809L
#include <csv.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NCOLS 22

/* CSV column k (0-based) -> store column, as students.properties maps them. */
static const char *const columns[NCOLS] = {
    "district_id", "barcode", "last_name", "first_name", "middle_name",
    "nickname", "patron_type", "access_level", "site_short_name", "homeroom",
    "grade_level", "gender", "birthdate", "graduation_year", "card_expires",
    "email_primary", "address_primary_phone_primary", "address_primary_line1",
    "address_primary_city", "address_primary_state", "address_primary_zip_code",
    "user_defined1",
};

/* windows-1252 0x80..0x9F -> Unicode; 0xA0..0xFF are U+00A0..U+00FF. The five
 * bytes cp1252 leaves undefined map to the C1 control of the same number. */
static const unsigned short cp1252_hi[32] = {
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
    0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
    0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
};

struct loader {
    sqlite3 *db;
    sqlite3_stmt *st;
    int cp1252;          /* convert fields from cp1252 */
    int in_header;       /* the first record is the header */
    int col;             /* next field's column in the current record */
    int failed;
    long long rows, skipped;
    char *conv;          /* UTF-8 scratch for one field */
    size_t conv_cap;
};

/* UTF-8 of s[0..len) (cp1252) into l->conv; its length in *out_len. */
static const char *to_utf8(struct loader *l, const unsigned char *s, size_t len, size_t *out_len)
{
    size_t i, n = 0;
    for (i = 0; i < len; i++)
        if (s[i] >= 0x80)
            break;
    if (i == len) { /* ASCII: nothing to convert */
        *out_len = len;
        return (const char *)s;
    }
    if (l->conv_cap < 3 * len + 1) {
        size_t cap = 3 * len + 64;
        char *p = realloc(l->conv, cap);
        if (!p)
            return NULL;
        l->conv = p;
        l->conv_cap = cap;
    }
    memcpy(l->conv, s, i);
    n = i;
    for (; i < len; i++) {
        unsigned c = s[i];
        if (c < 0x80) {
            l->conv[n++] = (char)c;
            continue;
        }
        if (c < 0xA0)
            c = cp1252_hi[c - 0x80];
        if (c < 0x800) {
            l->conv[n++] = (char)(0xC0 | (c >> 6));
            l->conv[n++] = (char)(0x80 | (c & 0x3F));
        } else {
            l->conv[n++] = (char)(0xE0 | (c >> 12));
            l->conv[n++] = (char)(0x80 | ((c >> 6) & 0x3F));
            l->conv[n++] = (char)(0x80 | (c & 0x3F));
        }
    }
    *out_len = n;
    return l->conv;
}

static void on_field(void *s, size_t len, void *data)
{
    struct loader *l = data;
    const char *v = s ? s : "";
    size_t vlen = s ? len : 0;
    int col = l->col++;

    if (l->in_header || l->failed || col >= NCOLS)
        return;
    if (l->cp1252) {
        v = to_utf8(l, (const unsigned char *)v, vlen, &vlen);
        if (!v) {
            fprintf(stderr, "cref: out of memory\n");
            l->failed = 1;
            return;
        }
    }
    if (sqlite3_bind_text(l->st, col + 1, v, (int)vlen, SQLITE_TRANSIENT) != SQLITE_OK) {
        fprintf(stderr, "cref: bind: %s\n", sqlite3_errmsg(l->db));
        l->failed = 1;
    }
}

static void on_record(int c, void *data)
{
    struct loader *l = data;
    int ncol = l->col;
    (void)c;

    l->col = 0;
    if (l->in_header) {
        l->in_header = 0;
        return;
    }
    if (l->failed)
        return;
    if (ncol != NCOLS) {
        l->skipped++;
        return;
    }
    if (sqlite3_step(l->st) != SQLITE_DONE) {
        fprintf(stderr, "cref: record %lld: %s\n", l->rows + l->skipped + 1,
                sqlite3_errmsg(l->db));
        l->failed = 1;
    } else {
        l->rows++;
    }
    sqlite3_reset(l->st);
}

/* libcsv trims spaces around unquoted fields by default; Python's csv module
 * and the sqlite3 shell do not, so neither does this. */
static int no_space(unsigned char c)
{
    (void)c;
    return 0;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0, n;

    if (!f)
        return NULL;
    do {
        if (cap - len < 4096) {
            char *p;
            cap = cap ? 2 * cap : 8192;
            p = realloc(buf, cap);
            if (!p) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = p;
        }
        n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
    } while (n > 0);
    if (ferror(f)) {
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
}

/* Appends to a fixed buffer; a string that does not fit marks it full. */
struct sbuf {
    char *s;
    size_t len, cap;
    int full;
};

__attribute__((format(printf, 2, 3)))
static void sb_add(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    int w;

    if (b->full)
        return;
    va_start(ap, fmt);
    w = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (w < 0 || (size_t)w >= b->cap - b->len)
        b->full = 1;
    else
        b->len += (size_t)w;
}

/* The upsert: status is 'A' (active) for every patron in the file. */
static char *build_upsert(void)
{
    struct sbuf b = { malloc(4096), 0, 4096, 0 };
    int k;

    if (!b.s)
        return NULL;
    sb_add(&b, "INSERT INTO patrons (");
    for (k = 0; k < NCOLS; k++)
        sb_add(&b, "%s, ", columns[k]);
    sb_add(&b, "status) VALUES (");
    for (k = 0; k < NCOLS; k++) {
        if (k == 1)
            sb_add(&b, "NULLIF(?%d, ''), ", k + 1);
        else
            sb_add(&b, "?%d, ", k + 1);
    }
    sb_add(&b, "'A') ON CONFLICT(district_id) DO UPDATE SET ");
    for (k = 1; k < NCOLS; k++)
        sb_add(&b, "%s = excluded.%s, ", columns[k], columns[k]);
    sb_add(&b, "status = excluded.status");
    if (b.full) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int usage(void)
{
    fprintf(stderr, "usage: cref [--encoding cp1252|utf-8] [--schema FILE] STORE.db FILE.csv\n");
    return 2;
}

static int exec_sql(sqlite3 *db, const char *sql, const char *what)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "cref: %s: %s\n", what, err ? err : sqlite3_errmsg(db));
        sqlite3_free(err);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *schema_path = NULL, *enc = "cp1252", *store, *input;
    static char default_schema[4096];
    struct loader l;
    struct csv_parser p;
    char *schema = NULL, *sql = NULL;
    unsigned char *block = NULL;
    FILE *in = NULL;
    size_t n;
    int i, rc = 1, first_block = 1;
    double t0 = now();

    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--encoding") == 0 && i + 1 < argc)
            enc = argv[++i];
        else if (strcmp(argv[i], "--schema") == 0 && i + 1 < argc)
            schema_path = argv[++i];
        else
            return usage();
    }
    if (argc - i != 2)
        return usage();
    store = argv[i];
    input = argv[i + 1];
    if (!schema_path) { /* schema.sql beside this program */
        const char *slash = strrchr(argv[0], '/');
        size_t dir = slash ? (size_t)(slash - argv[0]) + 1 : 0;
        int w = snprintf(default_schema, sizeof default_schema, "%.*sschema.sql", (int)dir, argv[0]);
        if (w < 0 || (size_t)w >= sizeof default_schema)
            return usage();
        schema_path = default_schema;
    }

    memset(&l, 0, sizeof l);
    l.in_header = 1;
    if (strcmp(enc, "cp1252") == 0 || strcmp(enc, "windows-1252") == 0 ||
        strcmp(enc, "CP1252") == 0)
        l.cp1252 = 1;
    else if (strcmp(enc, "utf-8") != 0 && strcmp(enc, "UTF-8") != 0 && strcmp(enc, "utf8") != 0) {
        fprintf(stderr, "cref: encoding %s: only cp1252 and utf-8\n", enc);
        return 2;
    }

    schema = read_file(schema_path);
    if (!schema) {
        fprintf(stderr, "cref: %s: %s\n", schema_path, strerror(errno));
        return 1;
    }
    sql = build_upsert();
    block = malloc(1 << 20);
    if (!sql || !block) {
        fprintf(stderr, "cref: out of memory\n");
        goto out;
    }
    in = fopen(input, "rb");
    if (!in) {
        fprintf(stderr, "cref: %s: %s\n", input, strerror(errno));
        goto out;
    }
    if (sqlite3_open_v2(store, &l.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        fprintf(stderr, "cref: %s: %s\n", store, l.db ? sqlite3_errmsg(l.db) : "cannot open");
        goto out;
    }
    if (exec_sql(l.db, schema, "schema") < 0 || exec_sql(l.db, "BEGIN", "begin") < 0)
        goto out;
    if (sqlite3_prepare_v2(l.db, sql, -1, &l.st, NULL) != SQLITE_OK) {
        fprintf(stderr, "cref: prepare: %s\n", sqlite3_errmsg(l.db));
        goto out;
    }
    if (csv_init(&p, 0) != 0) {
        fprintf(stderr, "cref: csv_init failed\n");
        goto out;
    }
    csv_set_space_func(&p, no_space);
    while (!l.failed && (n = fread(block, 1, 1 << 20, in)) > 0) {
        const unsigned char *b = block;
        if (first_block) { /* a UTF-8 BOM is not part of the first field */
            first_block = 0;
            if (!l.cp1252 && n >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF) {
                b += 3;
                n -= 3;
            }
        }
        if (csv_parse(&p, b, n, on_field, on_record, &l) != n) {
            fprintf(stderr, "cref: %s: %s\n", input, csv_strerror(csv_error(&p)));
            l.failed = 1;
        }
    }
    if (ferror(in)) {
        fprintf(stderr, "cref: %s: read error\n", input);
        l.failed = 1;
    }
    if (!l.failed)
        csv_fini(&p, on_field, on_record, &l);
    csv_free(&p);
    if (l.failed)
        goto out;
    sqlite3_finalize(l.st);
    l.st = NULL;
    if (exec_sql(l.db, "COMMIT", "commit") < 0)
        goto out;
    if (sqlite3_close(l.db) != SQLITE_OK) {
        fprintf(stderr, "cref: close: %s\n", sqlite3_errmsg(l.db));
        l.db = NULL;
        goto out;
    }
    l.db = NULL;
    printf("{\"method\": \"cref\", \"rows\": %lld, \"skipped\": %lld, \"seconds\": %.3f}\n",
           l.rows, l.skipped, now() - t0);
    rc = 0;
out:
    if (l.st)
        sqlite3_finalize(l.st);
    if (l.db)
        sqlite3_close(l.db);
    if (in)
        fclose(in);
    free(block);
    free(sql);
    free(schema);
    free(l.conv);
    return rc;
}
