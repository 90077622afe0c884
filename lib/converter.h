/* converter: the Patron Import Converter — from a sample of a district's
 * SIS export to a Destiny PIC .properties file (docs/CONVERTER.md). It
 * reads the sample, describes each column (header, examples, what its
 * values look like), proposes a patron field per column with the reason in
 * words, proposes value maps (school numbers to sites, gender codes, grades
 * to patron types), takes the caller's choices and writes the text the way
 * Destiny's converter does. `patronctl profile new` and a future web page
 * both drive it; it never prints and never reads a terminal. */
#ifndef CONVERTER_H
#define CONVERTER_H

#include <stddef.h>

#include "patron.h"
#include "profile.h"
#include "util.h"

#define CONV_EXAMPLES 4        /* distinct example values shown per column */
#define CONV_MAX_DISTINCT 200  /* distinct values kept per column (for maps); more are counted only */
#define CONV_SAMPLE_ROWS 5000  /* records of the sample analysed (the rest is not read) */
#define CONV_MAX_COLUMNS 1000

/* What a column's values look like. */
enum conv_kind {
    CK_EMPTY,  /* no value in any record */
    CK_TEXT,   /* anything else */
    CK_NAME,   /* words of letters: names, cities */
    CK_NUMBER, /* digits only */
    CK_CODE,   /* few distinct values (at most 12, each used at least twice on average) */
    CK_DATE,   /* dates in one pattern (date_format) */
    CK_EMAIL,  /* e-mail addresses */
    CK_PHONE,  /* phone numbers */
};

typedef struct {
    char *value; /* trimmed */
    size_t count;
} conv_value;

typedef struct {
    int number;               /* 1-based */
    char *header;             /* the header row's cell; NULL without a header row */
    conv_value *distinct;     /* distinct values in order of first use (at most CONV_MAX_DISTINCT) */
    size_t ndistinct;         /* all distinct values (may exceed the kept ones) */
    size_t kept;              /* entries in distinct */
    size_t filled, rows;      /* records with a value here; records analysed */
    enum conv_kind kind;
    char date_format[24];     /* Java pattern when kind is CK_DATE ("MM/dd/yyyy") */
    int mean_year;            /* CK_DATE: the mean year of its values */
    int digits;               /* every value is digits only */
    int unique;               /* no value repeats */
    size_t maxlen;            /* longest value, bytes */
    /* the proposal (or the caller's choice) */
    int field;                /* patron field, or -1: not imported */
    int score;                /* how sure the proposal is (0-100) */
    char reason[256];
} conv_column;

/* A value map for one field: map_<name>_<from>=<to>. */
typedef struct {
    char *from, *to;
    char why[128]; /* "school number of ALAMEDA in the sites list" */
} conv_pair;

typedef struct {
    int field;       /* the field it feeds */
    int column;      /* the column it reads (0: the field's own column) */
    char name[32];   /* map_<name>: site, gender, patronType, ... */
    conv_pair *v;
    size_t n, cap;
    char *def;       /* map_<name>_default, or NULL */
} conv_map;

/* A site the converter may map to: its short name, and the school number
 * an SIS writes for it ("" when not known). */
typedef struct {
    char short_name[16];
    char number[32];
    char name[128];
} conv_site;

typedef struct {
    int field; /* patron field, or -1: column col */
    int col;
    char *value;
} conv_rule;

typedef struct converter {
    char name[256];          /* the sample's name in messages */
    char encoding[32];       /* CsvTextEncoding written */
    char encoding_why[160];  /* how it was chosen */
    char *text;              /* the sample in UTF-8 */
    size_t len;
    char ***cells;           /* rows[r][c], every row of ncols cells */
    size_t nrows;            /* rows read, the header row included */
    int ncols;
    int header;              /* 1: the first row is a header row */
    char header_why[256];
    conv_column *cols;       /* ncols of them */
    conv_site *sites;
    size_t nsites, sitecap;
    int sites_checked;       /* the sites are the store's */
    char **patron_types;     /* the store's patron types (for the grade map) */
    size_t ntypes;
    char default_type[64];
    conv_map *maps;
    size_t nmaps, mapcap;
    char *defaults[PF__COUNT]; /* a value when the column is empty, or a constant */
    int match_district_id;
    char site_default[16];
    conv_rule *rules[2];     /* PR_SKIP, PR_DELETE */
    size_t nrules[2], rulecap[2];
    strbuf notes;            /* what the caller should say: values no site matched, ... */
} converter;

/* Read a sample: bytes[0..len) in `encoding` (NULL or "": what a BOM or
 * the bytes say, else windows-1252), at most CONV_SAMPLE_ROWS records.
 * header: 1 the first row is a header row, 0 it is not, -1 decide from
 * the rows. A new converter with the columns described and nothing
 * proposed yet (conv_propose), or NULL with err naming `name`: an empty
 * sample, a binary one (NUL bytes, or mostly bytes invalid in the
 * encoding), one column only, rows of different widths (the line named). */
converter *conv_new(const char *bytes, size_t len, const char *encoding, const char *name, int header, char *err,
                    size_t errlen);
void conv_destroy(converter **c); /* NULL-safe; clears *c */

/* The encoding a sample's bytes say (a BOM, NUL bytes of UTF-16, valid
 * UTF-8 with non-ASCII letters), else "windows-1252"; why into why. */
const char *conv_guess_encoding(const char *bytes, size_t len, char *why, size_t whylen);

/* A site the sample's site column may name: merged by short name (a
 * number given later fills in one not known). checked: the store holds
 * it. 0 / -1 (no memory). */
int conv_add_site(converter *c, const char *short_name, const char *number, const char *name, int checked);
/* Sites from a sites CSV (short_name,name,media,school_number as `site
 * import` takes it, with a header row naming the columns; a column named
 * school_number, number, school_id or code holds the numbers): added
 * unchecked. The number added, or -1 with err. */
int conv_sites_from_csv(converter *c, const char *text, size_t len, const char *name, char *err, size_t errlen);
/* The store's patron types and its default one (the grade map's targets). */
int conv_set_patron_types(converter *c, char *const *names, size_t n, const char *dflt);

/* Propose a field for every column (header names first, then what the
 * values look like), the maps those fields need, the match mode and the
 * usual skip rule. Choices made before are replaced. 0 / -1 (no memory). */
int conv_propose(converter *c);

/* The caller's choices. Each returns 0, or -1 with err naming what was
 * refused (an unknown field, a column out of range, a value a
 * properties file cannot hold). */
/* Column col (1-based) feeds field (-1: not imported). The column that fed
 * it before is left without a field; the field's maps follow. */
int conv_set_field(converter *c, int col, int field, const char *why, char *err, size_t errlen);
/* A map entry for field: CSV value from → to ("default": the map's
 * default). A field with no column of its own reads the map from the
 * grade column (patronType) or is refused. */
int conv_map_value(converter *c, int field, const char *from, const char *to, char *err, size_t errlen);
/* A value for field when its column is empty, or, with no column, for
 * every record. "" removes it. */
int conv_set_default(converter *c, int field, const char *value, char *err, size_t errlen);
void conv_set_match(converter *c, int district_id);
int conv_set_site_default(converter *c, const char *short_name, char *err, size_t errlen);
/* A SkipWhen (PR_SKIP) or DeleteWhen (PR_DELETE) rule, "field_x,value"
 * or "{n},value" (an empty value: when blank). "" removes that kind's
 * rules. */
int conv_add_rule(converter *c, enum profile_rule which, const char *text, char *err, size_t errlen);

/* Field by name: a PIC name (lastName, any case), or "site", "type",
 * "grade", "email", "phone"; -1 when unknown. */
int conv_field_by_name(const char *s);
/* The column feeding field (1-based), 0 when none. */
int conv_field_column(const converter *c, int field);
/* The map feeding field, or NULL. */
const conv_map *conv_map_of(const converter *c, int field);
/* What a column looks like in words: "date MM/dd/yyyy", "code, 3 values",
 * "number, every value different" (into out). */
void conv_describe_column(const conv_column *col, char *out, size_t outlen);
/* The distinct examples of a column joined by ", " (at most n). */
void conv_examples(const conv_column *col, size_t n, char *out, size_t outlen);

/* The .properties text (NUL-terminated; *len bytes; the caller frees it):
 * Destiny's layout — the "machine generated" header block (stamp: the
 * time written, or NULL), #COMMENTS_BEGIN/END with a line per column,
 * the settings, the rules, the fields, the maps, the column types. NULL
 * with err (no memory). */
char *conv_write(const converter *c, const char *stamp, size_t *len, char *err, size_t errlen);

#endif
