/* prepare: everything decided once per job before sharding (prepare.h) —
 * the steps of prepare_job over one prepare_run, the reading of each
 * record's keys for the duplicate index, and the checks that a file is
 * text in the encoding given. */
#include "prepare.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "csvscan.h"
#include "dups.h"
#include "encoding.h"
#include "incremental.h"
#include "input.h"
#include "log.h"
#include "profile.h"
#include "util.h"
#include "winscan.h"

/* A record whose keys wait to be looked up (dup_ahead_push). A key of
 * DUP_KEY_CMP bytes or more is kept cut (never compared, never noted). */
#define DUP_AHEAD 8
/* The tables are sized once this many records are read (dup_reserve). */
#define DUP_SAMPLE 4096
typedef struct {
    uint32_t h[2]; /* 0: no key */
    uint64_t off, line;
    size_t len;
    int checked;   /* the record was split whole (else only as far as its keys: record_keys) */
    char key[2][DUP_KEY_CMP];
} dup_pending;

typedef struct {
    const char *job_id;
    int fd;           /* the work file, re-read with pread */
    const char *base; /* the mapped work file */
    size_t len;       /* its bytes */
    size_t max_record;
    const profile *prof;
    int skip_rules;  /* the profile's SkipWhen rules: SKIP_NONE, SKIP_COLUMNS, SKIP_FIELDS */
    size_t keep;     /* the columns record_keys reads (0: all) */
    csvrow *row;     /* the record being read ... */
    patron_rec rec;  /* ... and its keys (or all of it, mapped) */
    char *vbuf;      /* an earlier record re-read to confirm a hash match ... */
    size_t vcap;
    csvrow *vrow;    /* ... its fields ... */
    patron_rec vrec; /* ... and its key */
    csvrow *crow;    /* a record read by its lead, split whole once it would supersede another */
    dup_table keys[2]; /* 0: the match key, 1: barcode (when matching on District ID) */
    int key_field[2];
    int min_cols, max_cols; /* the widths the profile accepts (max_cols 0: any) */
    dup_pending ahead[DUP_AHEAD]; /* keys waiting to be looked up, oldest at ahead_first */
    size_t ahead_first, ahead_n;
    Patronsync__RecordNote **notes;
    size_t nnotes, capnotes;
} prep;

/* SkipWhen rules: none; reading columns only; reading mapped fields. */
enum { SKIP_NONE, SKIP_COLUMNS, SKIP_FIELDS };


/* The bytes of a slot's record, read back from the work file into
 * p->vbuf: with pread, not through the mapping, so that re-reading records
 * long behind the scan (every duplicate, and the rare 32-bit hash that two
 * keys share) maps none of their pages into the broker. A record's length
 * is kept in the slot, or (DUP_LEN_FAR) found by scanning from its offset:
 * the same bounds as the whole file's scan (csvscan.h); a record in a table
 * is at most max_record bytes long, so no more than that is read. NULL
 * when it cannot be read. */
static const char *slot_record(prep *p, const dup_slot *s, size_t *len_out)
{
    uint64_t off = dup_slot_off(s);
    uint64_t len = dup_slot_len(s);
    int far = len == DUP_LEN_FAR;
    if (far) {
        len = p->len - off;
        if (len > (uint64_t)p->max_record + 1)
            len = (uint64_t)p->max_record + 1;
    }
    if (len > p->vcap) {
        char *v = realloc(p->vbuf, len ? (size_t)len : 1);
        if (v == NULL) {
            log_warn("job %s: out of memory re-reading the record at byte %llu", p->job_id, (unsigned long long)off);
            return NULL;
        }
        p->vbuf = v;
        p->vcap = (size_t)len;
    }
    for (size_t got = 0; got < len;) {
        ssize_t n = pread(p->fd, p->vbuf + got, (size_t)len - got, (off_t)(off + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            log_warn("job %s: cannot re-read the record at byte %llu of the work file: %s", p->job_id,
                     (unsigned long long)off, n < 0 ? strerror(errno) : "short read");
            return NULL;
        }
        got += (size_t)n;
    }
    if (far) {
        csvscan sc;
        csvscan_rec r;
        csvscan_init(&sc, p->vbuf, (size_t)len, 1, p->max_record);
        if (!csvscan_next(&sc, &r))
            return NULL;
        len = r.len;
    }
    *len_out = (size_t)len;
    return p->vbuf;
}

/* The key (field f) of a slot's record, re-read into vrec; "" when none.
 * A record the workers will skip for its width has no key: it never
 * supersedes a readable record. */
/* Split rec whole into row: 1 when it parses and has a width the profile
 * accepts (the workers skip any other record, so it has no key). */
static int split_whole(const prep *p, csvrow *row, const char *rec, size_t len)
{
    char e[ERRLEN];
    if (csvrow_parse(row, rec, len, e, sizeof(e)) < 0)
        return 0;
    int n = (int)csvrow_count(row);
    return n >= p->min_cols && (p->max_cols == 0 || n <= p->max_cols);
}

static const char *record_key(prep *p, const dup_slot *s, int f)
{
    char e[ERRLEN];
    size_t len;
    const char *rec = slot_record(p, s, &len);
    if (rec == NULL || !split_whole(p, p->vrow, rec, len))
        return "";
    if (profile_map_field(p->prof, f, csvrow_fields(p->vrow), csvrow_lens(p->vrow), csvrow_count(p->vrow), &p->vrec,
                          e, sizeof(e)) < 0)
        return "";
    if (p->vrec.state[f] != PV_VALUE)
        return "";
    return patron_rec_get(&p->vrec, f);
}

/* The keys of the record at off/len: keys[0] the match key, keys[1] the
 * barcode (only when both is 1); "" for no key. A record that does not
 * parse, one the workers will skip for its width, and one a SkipWhen rule
 * drops (the rules decide first, as Destiny does) have no key: they never
 * supersede another. Only the columns the keys and the column rules read
 * are split, the rest of the record not even checked: whether it splits
 * whole, and its width, matter only for a record that would supersede
 * another, and dup_see checks it then (the workers check every record).
 * A record whose lead does not split simply, and one a column rule
 * matches, is split whole here. SkipWhen rules that read columns only are
 * decided on those columns; rules that read fields need the whole record
 * mapped, and the keys are then taken from it; else (or when the whole
 * record cannot be mapped, which skips nothing) only the key fields are
 * mapped. The keys point into p->rec, valid until the next call. Returns
 * whether the record was split whole (and found whole). */
static int record_keys(prep *p, uint64_t off, size_t len, int both, const char *keys[2])
{
    char e[ERRLEN];
    const char *rec = p->base + off;
    keys[0] = keys[1] = "";
    int whole = p->skip_rules == SKIP_FIELDS || !csvrow_parse_lead(p->row, rec, len, p->keep);
    /* A record a column rule drops is mapped whole below: split it whole. */
    if (!whole && p->skip_rules == SKIP_COLUMNS &&
        profile_rule_matches(p->prof, PR_SKIP, NULL, csvrow_fields(p->row), csvrow_lens(p->row),
                             csvrow_count(p->row)) == 1)
        whole = 1;
    if (whole && !split_whole(p, p->row, rec, len))
        return 1;
    const char *const *cols = csvrow_fields(p->row);
    const size_t *lens = csvrow_lens(p->row);
    size_t ncols = csvrow_count(p->row);
    int nkeys = both ? 2 : 1;
    int mapped[2] = {0, 0};
    /* Rules that read columns only are decided first; the whole record
     * is mapped only for one they match (to the same end as below). */
    if (p->skip_rules == SKIP_COLUMNS && whole &&
        profile_rule_matches(p->prof, PR_SKIP, NULL, cols, lens, ncols) == 1 &&
        profile_map(p->prof, cols, lens, ncols, &p->rec, e, sizeof(e)) == 0)
        return 1;
    if (p->skip_rules == SKIP_FIELDS && profile_map(p->prof, cols, lens, ncols, &p->rec, e, sizeof(e)) == 0) {
        if (profile_rule_matches(p->prof, PR_SKIP, &p->rec, cols, lens, ncols) == 1)
            return 1;
        mapped[0] = mapped[1] = 1;
    }
    if (!mapped[0]) {
        for (int i = 0; i < nkeys; i++)
            mapped[i] = profile_map_field(p->prof, p->key_field[i], cols, lens, ncols, &p->rec, e, sizeof(e)) == 0;
    }
    /* (Values are read once every field is set: a set may move the arena.) */
    for (int i = 0; i < nkeys; i++)
        if (mapped[i] && p->rec.state[p->key_field[i]] == PV_VALUE)
            keys[i] = patron_rec_get(&p->rec, p->key_field[i]);
    return whole;
}

static Patronsync__RecordNote *add_note(prep *p, uint64_t line, uint32_t kind, const char *key, const char *msg)
{
    if (array_grow(&p->notes, &p->capnotes, p->nnotes + 1, sizeof(*p->notes), 64) < 0)
        return NULL;
    Patronsync__RecordNote *n = malloc(sizeof(*n));
    if (n == NULL)
        return NULL;
    patronsync__record_note__init(n);
    n->line = line;
    n->kind = kind;
    n->key = strdup(key);
    n->message = strdup(msg ? msg : "");
    if (n->key == NULL || n->message == NULL) {
        free(n->key);
        free(n->message);
        free(n);
        return NULL;
    }
    p->notes[p->nnotes++] = n;
    return n;
}

/* Record one occurrence of a key (not held in vrec), hashed h: an earlier
 * occurrence becomes superseded. checked: the record is known to split
 * whole (else it is checked here before it supersedes anything; slots
 * hold unchecked records too, and record_key never matches a bad one). */
static const char *slot_key0(void *ctx, const dup_slot *s)
{
    prep *p = ctx;
    return record_key(p, s, p->key_field[0]);
}

static const char *slot_key1(void *ctx, const dup_slot *s)
{
    prep *p = ctx;
    return record_key(p, s, p->key_field[1]);
}

/* Record one occurrence of a key (not held in vrec), hashed h: an earlier
 * occurrence becomes superseded. checked: the record is known to split
 * whole (else it is checked here before it supersedes anything; slots
 * hold unchecked records too, and record_key never matches a bad one). */
static int dup_see(prep *p, int which, const char *key, uint32_t h, uint64_t off, size_t len, uint64_t line,
                   int checked)
{
    dup_slot *s;
    int found = dup_lookup(&p->keys[which], key, h, which ? slot_key1 : slot_key0, p, &s);
    if (found < 0)
        return -1;
    if (found) {
        /* A record read by its lead alone is split whole before it
         * supersedes anything: one that is not whole has no key. */
        if (!checked && !split_whole(p, p->crow, p->base + off, len))
            return 0;
        Patronsync__RecordNote *n = add_note(p, s->line, (uint32_t)which, key, NULL);
        if (n == NULL)
            return -1;
        n->by_line = line;
    }
    dup_put(&p->keys[which], s, !found, h, off, len, line);
    return 0;
}

/* The keys of the latest records wait here a few records before they are
 * looked up, their slots asked of memory meanwhile: a table of a million
 * keys is far larger than the CPU's caches, and each lookup would
 * otherwise wait for its slot. Lookups still happen in line order. */
static void dup_ahead_push(prep *p, const char *const k[2], int checked, uint64_t off, size_t len, uint64_t line)
{
    dup_pending *e = &p->ahead[(p->ahead_first + p->ahead_n++) % DUP_AHEAD];
    e->checked = checked;
    e->off = off;
    e->len = len;
    e->line = line;
    for (int i = 0; i < 2; i++) {
        size_t klen = strlen(k[i]);
        e->h[i] = 0;
        e->key[i][0] = '\0';
        if (klen == 0)
            continue;
        e->h[i] = dup_hash(k[i], klen);
        /* A key too long ever to be compared is kept by its hash alone. */
        memcpy(e->key[i], k[i], klen < DUP_KEY_CMP ? klen + 1 : DUP_KEY_CMP);
        const dup_table *t = &p->keys[i];
        if (t->cap > 0)
            __builtin_prefetch(&t->v[e->h[i] & (t->cap - 1)], 1);
    }
}

/* Look up the oldest waiting record's keys. 0 / -1 (out of memory). */
static int dup_ahead_pop(prep *p)
{
    dup_pending *e = &p->ahead[p->ahead_first];
    p->ahead_first = (p->ahead_first + 1) % DUP_AHEAD;
    p->ahead_n--;
    for (int i = 0; i < 2; i++)
        if (e->h[i] != 0 && dup_see(p, i, e->key[i], e->h[i], e->off, e->len, e->line, e->checked) < 0)
            return -1;
    return 0;
}

static int note_cmp(const void *a, const void *b)
{
    const Patronsync__RecordNote *x = *(Patronsync__RecordNote *const *)a;
    const Patronsync__RecordNote *y = *(Patronsync__RecordNote *const *)b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->kind < y->kind ? -1 : x->kind > y->kind;
}

/* A file is refused as "not text" when this share of its records (or more)
 * hold NUL bytes or bytes invalid in its encoding, at least NOT_TEXT_MIN of
 * them: a binary file, or a file in another encoding than configured. A
 * few such records in a text file are skipped one by one instead. */
#define NOT_TEXT_PCT 10
#define NOT_TEXT_MIN 3
/* A shard never holds more bytes than this (nor more than a quarter of the
 * largest message), so a file of long records stays in bounded messages. */
#define SHARD_MAX_BYTES ((uint64_t)64 << 20)
/* The mapped work file is released from RSS every this many bytes of it
 * read (the window behind the read position). */
#define RELEASE_STEP ((uint64_t)16 << 20)

/* Whether a record's first bytes look like UTF-16 read as a one-byte
 * encoding: NUL in a quarter of them or more. */
static int looks_utf16(const char *rec, size_t len)
{
    size_t n = len < 4096 ? len : 4096, nul = 0;
    for (size_t i = 0; i < n; i++)
        nul += rec[i] == '\0';
    return n > 0 && nul * 4 >= n;
}

/* Whether the encoding given is one of UTF-16's names. */
static int named_utf16(const encoding_report *rep)
{
    return strncmp(rep->configured, "UTF-16", 6) == 0;
}

/* A file given as UTF-16 (without a BOM) whose NUL bytes say it is not
 * that: none in every second byte (not UTF-16 at all), or in the other
 * byte of each pair (the other byte order). 1 with err when refused. */
static int utf16_refused(const encoding_report *rep, const char *file, char *err, size_t errlen)
{
    if (!named_utf16(rep) || rep->bom[0] || rep->sniff_bytes < 2)
        return 0;
    unsigned long long n = rep->sniff_bytes, pairs = n / 2, f = rep->nul_first, s = rep->nul_second;
    if (rep->utf16_pattern == NULL) {
        if (f + s == 0)
            err_set(err, errlen,
                    "file '%s' does not read as %s: it has no byte order mark, and none of its first %llu bytes is "
                    "NUL, where UTF-16 text has a NUL in every second byte (in each digit, comma and line end); "
                    "give the encoding it is in (windows-1252? UTF-8?); no patron was changed",
                    file, rep->configured, n);
        else
            err_set(err, errlen,
                    "file '%s' does not read as %s: it has no byte order mark, and its NUL bytes are not every second "
                    "byte (%llu of its first %llu byte pairs have a NUL first, %llu a NUL second), where UTF-16 text "
                    "has a NUL in every second byte (in each digit, comma and line end); give the encoding it is "
                    "in; no patron was changed",
                    file, rep->configured, f, pairs, s);
        return 1;
    }
    if (strcmp(rep->configured, "UTF-16") != 0 && strcmp(rep->configured, rep->utf16_pattern) != 0) {
        int be = strcmp(rep->utf16_pattern, "UTF-16BE") == 0;
        err_set(err, errlen,
                "file '%s' does not read as %s: it has no byte order mark, and every second byte is NUL from the "
                "%s on (the %s byte of %llu of its first %llu byte pairs), the byte order of %s; give its encoding "
                "as %s (or UTF-16); no patron was changed",
                file, rep->configured, be ? "first" : "second", be ? "first" : "second", be ? f : s, pairs,
                rep->utf16_pattern, rep->utf16_pattern);
        return 1;
    }
    return 0;
}

/* The evidence that a file read as a one-byte encoding or UTF-8 (no BOM)
 * is UTF-16: its NUL bytes, for a message ("" when they say nothing). */
static void utf16_evidence(const encoding_report *rep, char *out, size_t outlen)
{
    out[0] = '\0';
    if (named_utf16(rep) || rep->bom[0] || rep->utf16_pattern == NULL)
        return;
    int be = strcmp(rep->utf16_pattern, "UTF-16BE") == 0;
    snprintf(out, outlen, "every second byte is NUL (the %s of %llu of its first %llu byte pairs), the pattern of %s",
             be ? "first" : "second", (unsigned long long)(be ? rep->nul_first : rep->nul_second),
             (unsigned long long)(rep->sniff_bytes / 2), rep->utf16_pattern);
}

/* Physical lines a record's line ends open after its first (CRLF, CR, LF
 * each one, as csvscan counts them). */
static uint64_t lines_within(const char *p, size_t n)
{
    uint64_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n') {
            k++;
        } else if (p[i] == '\r') {
            k++;
            if (i + 1 < n && p[i + 1] == '\n')
                i++;
        }
    }
    return k;
}

/* A file whose rows to skip hold more than this, or span more lines than
 * there are rows to skip and this many more, and that yields no record, is
 * not a header-only file: its line ends were not found (an encoding that
 * hides them, a quote that swallows them). A header row is a line of a
 * few hundred bytes. */
#define HEADER_MAX_BYTES 16384
#define HEADER_EXTRA_LINES 2

/* One job's preparation, step by step (prepare_job). */
typedef struct {
    const prepare_args *a;
    const Patronsync__JobRequest *req;
    const ps_config *cfg;
    prepared *out;
    char *err;
    size_t errlen;
    profile *prof;
    const char *enc;      /* the encoding given (the request's, else the profile's) */
    const char *enc_name; /* the encoding read (the one detected, else the one given) */
    input_file in;
    int src_fd;           /* what is converted: the archive's copy, else in.fd */
    encoding_report rep;
    char *map;            /* the UTF-8 work file, mapped */
    size_t maplen;
    prep p;
    int check_barcode;    /* the barcode is a second key (matching on District ID) */
    /* where the time goes, for the log: archive copy, conversion, scan */
    int64_t t_start, t_archived, t_converted;
    /* the scan */
    winscan sc;
    shard_cutter cut;
    int64_t skip;         /* rows to skip still ahead */
    uint64_t max_alone;   /* a record longer than this cannot travel to a worker, even alone */
    uint64_t huge_line, huge_len;
    size_t bad;           /* the first of rep.bad not before the record */
    uint64_t released;
    /* what decides whether the file is text at all (every record counts,
     * the rows to skip too) */
    uint64_t all, unreadable, first_unreadable, open_quote;
    int first_nul, first_utf16;
    /* the rows to skip: their bytes, the lines they start and end on */
    uint64_t skipped_bytes, skipped_first_line, skipped_last_line;
} prepare_run;

static int run_oom(prepare_run *r)
{
    err_set(r->err, r->errlen, "out of memory preparing '%s'", r->req->file);
    return -1;
}

/* The profile, and the input: found still, opened, kept in the archive. */
static int run_open(prepare_run *r)
{
    const ps_config *c = r->cfg;
    const Patronsync__JobRequest *req = r->req;
    char e[ERRLEN];
    r->prof = profile_parse(req->profile_text, strlen(req->profile_text), req->profile_name, e, sizeof(e));
    if (r->prof == NULL) {
        err_set(r->err, r->errlen, "profile refused: %s", e);
        return -1;
    }
    r->enc = req->encoding[0] ? req->encoding : profile_encoding(r->prof);
    if (input_open(c, req->file, &r->a->ka, &r->in, r->err, r->errlen) < 0)
        return -1;
    r->t_start = r->t_archived = mono_ms();
    if (input_judge(c, &r->in, req->file, r->err, r->errlen) < 0)
        return -1;
    if (mkdir_p(r->a->workdir, 0750, r->err, r->errlen) < 0)
        return -1;
    r->src_fd = r->in.fd;
    if (c->archive_keep > 0) {
        char copy[CONFIG_STR + 512];
        r->src_fd = input_archive(c, req, r->a->job_id, &r->in, &r->a->ka, copy, sizeof(copy), r->err, r->errlen);
        if (r->src_fd < 0)
            return -1;
        status_job_set(r->a->redis, r->a->job_id, SK_JOB, "input_copy %s", copy);
        log_info("job %s: input kept as %s", r->a->job_id, copy);
        r->t_archived = mono_ms();
    }
    return 0;
}

/* Convert the input into the UTF-8 work file; refuse an encoding its bytes
 * contradict, and note a BOM. */
static int run_convert(prepare_run *r)
{
    const Patronsync__JobRequest *req = r->req;
    encoding_report *rep = &r->rep;
    char e[ERRLEN];
    r->out->fd = open(r->a->utf8_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (r->out->fd < 0) {
        err_set(r->err, r->errlen, "cannot create %s: %s", r->a->utf8_path, strerror(errno));
        return -1;
    }
    if (encoding_convert_fd(r->enc, r->src_fd, r->out->fd, req->file, rep, e, sizeof(e)) < 0) {
        err_set(r->err, r->errlen, "file '%s': %s", req->file, e);
        return -1;
    }
    if (rep->in_bytes != (uint64_t)r->in.sb.st_size) {
        err_set(r->err, r->errlen, "file '%s' changed while it was read (%lld bytes when found still, %llu read); "
                "not loaded: run it again once the export has finished",
                req->file, (long long)r->in.sb.st_size, (unsigned long long)rep->in_bytes);
        return -1;
    }
    r->t_converted = mono_ms();
    r->enc_name = rep->detected[0] ? rep->detected : r->enc;
    if (utf16_refused(rep, req->file, r->err, r->errlen))
        return -1;
    if (rep->bom_contradicts) {
        /* Read as the BOM says, which is right; but the encoding given is
         * wrong, and the operator must hear of it (complete_with_errors). */
        char msg[400];
        snprintf(msg, sizeof(msg),
                 "file '%s' begins with a %s byte order mark, so it was read as %s, not as the %s it was given as. "
                 "Give its encoding as %s%s.",
                 req->file, rep->bom, rep->bom, rep->configured, rep->bom,
                 strncmp(rep->bom, "UTF-16", 6) == 0 ? " (or UTF-16)" : "");
        if (jobnotes_warn(&r->out->summary_notes, msg) < 0)
            return run_oom(r);
    } else if (rep->note[0] && jobnotes_add(&r->out->summary_notes, rep->note) < 0) {
        return run_oom(r);
    }
    keepalive_tick(&r->a->ka);
    return 0;
}

/* Map the work file for the scan. */
static int run_map(prepare_run *r)
{
    r->maplen = (size_t)r->rep.out_bytes;
    if ((uint64_t)r->maplen > DUP_MAX_FILE) {
        err_set(r->err, r->errlen,
                "file '%s' is %llu bytes once converted to UTF-8, more than the %llu bytes (64 GiB) the broker can "
                "index; not read",
                r->req->file, (unsigned long long)r->maplen, (unsigned long long)DUP_MAX_FILE);
        return -1;
    }
    if (r->maplen > 0) {
        r->map = mmap(NULL, r->maplen, PROT_READ, MAP_SHARED, r->out->fd, 0);
        if (r->map == MAP_FAILED) {
            r->map = NULL;
            err_set(r->err, r->errlen, "cannot map %s: %s", r->a->utf8_path, strerror(errno));
            return -1;
        }
        madvise(r->map, r->maplen, MADV_SEQUENTIAL);
    }
    return 0;
}

/* What the duplicate keys are read with: the profile's key fields, the
 * columns to split, the rows. */
static int run_keys_setup(prepare_run *r)
{
    const ps_config *c = r->cfg;
    const profile *prof = r->prof;
    prep *p = &r->p;
    p->job_id = r->a->job_id;
    p->fd = r->out->fd;
    p->base = r->map;
    p->len = r->maplen;
    p->max_record = (size_t)c->max_record_bytes;
    p->prof = prof;
    p->skip_rules = profile_rule_count(prof, PR_SKIP) == 0            ? SKIP_NONE
                    : profile_rule_columns_only(prof, PR_SKIP) ? SKIP_COLUMNS
                                                                 : SKIP_FIELDS;
    p->min_cols = profile_max_column(prof);
    p->max_cols = profile_column_total(prof);
    p->row = csvrow_new((size_t)c->max_fields);
    p->vrow = csvrow_new((size_t)c->max_fields);
    p->crow = csvrow_new((size_t)c->max_fields);
    if (p->row == NULL || p->vrow == NULL || p->crow == NULL) {
        err_set(r->err, r->errlen, "out of memory");
        return -1;
    }
    int match_id = profile_match_district_id(prof);
    p->key_field[0] = match_id ? PF_DISTRICT_ID : PF_BARCODE;
    p->key_field[1] = PF_BARCODE;
    r->check_barcode = match_id && profile_maps_field(prof, PF_BARCODE);
    if (p->skip_rules != SKIP_FIELDS) {
        int k = profile_field_max_column(prof, p->key_field[0]);
        if (r->check_barcode && profile_field_max_column(prof, PF_BARCODE) > k)
            k = profile_field_max_column(prof, PF_BARCODE);
        if (p->skip_rules == SKIP_COLUMNS && profile_rule_max_column(prof, PR_SKIP) > k)
            k = profile_rule_max_column(prof, PR_SKIP);
        p->keep = k > 0 ? (size_t)k : 1;
    }
    return 0;
}

/* The scan's limits: rows to skip, records and bytes per shard. */
static void run_scan_init(prepare_run *r)
{
    const ps_config *c = r->cfg;
    const Patronsync__JobRequest *req = r->req;
    winscan_init(&r->sc, r->map ? r->map : "", r->maplen, (size_t)c->max_record_bytes);
    r->skip = profile_rows_to_skip(r->prof);
    uint64_t shard_size = req->options && req->options->shard_size ? req->options->shard_size
                                                                     : (uint64_t)c->shard_size;
    uint64_t shard_bytes = SHARD_MAX_BYTES;
    if ((uint64_t)c->max_message_bytes / 4 < shard_bytes)
        shard_bytes = (uint64_t)c->max_message_bytes / 4;
    shard_cutter_init(&r->cut, shard_size, shard_bytes);
    r->max_alone = (uint64_t)c->max_message_bytes / 2;
}

/* What a record tells of the whole file (NUL bytes, bytes invalid, an open
 * quote, its length); 1 when it is one of the rows to skip. */
static int run_observe(prepare_run *r, const csvscan_rec *rec, int *bad_bytes)
{
    const encoding_report *rep = &r->rep;
    r->all++;
    while (r->bad < rep->nbad && rep->bad[r->bad].out_off < rec->off)
        r->bad++;
    *bad_bytes = r->bad < rep->nbad && rep->bad[r->bad].out_off < rec->off + rec->len;
    if (*bad_bytes || (rec->flags & CSVSCAN_NUL)) {
        if (r->unreadable++ == 0)
            r->first_unreadable = rec->line;
        if (r->all == 1 && (rec->flags & CSVSCAN_NUL)) {
            r->first_nul = 1;
            r->first_utf16 = looks_utf16(r->map + rec->off, rec->len);
        }
    }
    if (rec->flags & CSVSCAN_UNTERMINATED)
        r->open_quote = rec->line;
    if (rec->len > r->max_alone && r->huge_line == 0) {
        r->huge_line = rec->line;
        r->huge_len = rec->len;
    }
    if (r->skip <= 0)
        return 0;
    r->skip--;
    if (r->skipped_bytes == 0)
        r->skipped_first_line = rec->line;
    r->skipped_bytes += rec->len;
    r->skipped_last_line = rec->line + lines_within(r->map + rec->off, rec->len);
    return 1;
}

/* One record of the scan: counted, put in a shard, its keys queued for
 * the duplicate index (or a note when its bytes are unreadable). */
static int run_record(prepare_run *r, const csvscan_rec *rec)
{
    prepared *out = r->out;
    /* Pages behind us are not needed again (a hash match re-reads its
     * earlier record with pread): every RELEASE_STEP bytes, let the
     * kernel drop them from our RSS, so that the file's pages never
     * dominate it. */
    uint64_t upto = rec->off & ~(RELEASE_STEP - 1);
    if (upto > r->released) {
        madvise(r->map + r->released, upto - r->released, MADV_DONTNEED);
        r->released = upto;
    }
    if (rec->line > UINT32_MAX) {
        err_set(r->err, r->errlen,
                "file '%s' has more than %llu lines, more than the broker can count; no patron was changed",
                r->req->file, (unsigned long long)UINT32_MAX);
        return -1;
    }
    int bad_bytes;
    if (run_observe(r, rec, &bad_bytes))
        return 0;
    out->records++;
    if (out->records == DUP_SAMPLE && rec->off > 0) {
        /* The file's records so far tell about how many it holds. */
        uint64_t est = (uint64_t)((double)r->maplen / (double)(rec->off + rec->len) * DUP_SAMPLE * 0.9);
        if (dup_reserve(&r->p.keys[0], est) < 0 || (r->check_barcode && dup_reserve(&r->p.keys[1], est) < 0))
            return run_oom(r);
    }
    if ((out->records & 0xffff) == 0 && keepalive_tick(&r->a->ka)) {
        err_set(r->err, r->errlen, "broker stopping");
        return -1;
    }
    if (shard_cut_record(&r->cut, &out->shards, rec->off, rec->len, rec->line) < 0)
        return run_oom(r);
    if (bad_bytes) {
        /* Bytes the encoding could not read: the record is skipped. */
        char msg[300];
        snprintf(msg, sizeof(msg), "Line %llu: bytes invalid in %s at byte offset %llu of the file; record skipped.",
                 (unsigned long long)rec->line, r->enc_name, (unsigned long long)r->rep.bad[r->bad].in_off);
        if (add_note(&r->p, rec->line, 2, "", msg) == NULL)
            return run_oom(r);
    } else if (rec->flags == 0) {
        const char *k[2];
        int whole = record_keys(&r->p, rec->off, rec->len, r->check_barcode, k);
        if (r->p.ahead_n == DUP_AHEAD && dup_ahead_pop(&r->p) < 0)
            return run_oom(r);
        if (*k[0] || *k[1])
            dup_ahead_push(&r->p, k, whole, rec->off, rec->len, rec->line);
    }
    return 0;
}

static int run_scan(prepare_run *r)
{
    csvscan_rec rec;
    while (winscan_next(&r->sc, &rec))
        if (run_record(r, &rec) < 0)
            return -1;
    while (r->p.ahead_n > 0)
        if (dup_ahead_pop(&r->p) < 0)
            return run_oom(r);
    return 0;
}

/* A file that is not text, or that ends inside a quoted field, fails the
 * job before any record is planned: it must never pass for a short file
 * (whose missing patrons would be inactivated). */
static int run_verdict(prepare_run *r)
{
    const encoding_report *rep = &r->rep;
    const char *file = r->req->file, *enc_name = r->enc_name;
    char *err = r->err;
    size_t errlen = r->errlen;
    char utf16[200];
    utf16_evidence(rep, utf16, sizeof(utf16));
    if (r->first_nul) {
        if (utf16[0])
            err_set(err, errlen,
                    "file '%s' is not a text file: line 1 holds NUL bytes: %s (UTF-16 without a byte-order mark? "
                    "give its encoding as %s, or UTF-16); no patron was changed",
                    file, utf16, rep->utf16_pattern);
        else
            err_set(err, errlen, "file '%s' is not a text file: line 1 holds NUL bytes%s; no patron was changed",
                    file,
                    r->first_utf16 ? " (UTF-16 without a byte-order mark? give its encoding as UTF-16LE or UTF-16BE)" : "");
        return -1;
    }
    if (utf16[0]) {
        err_set(err, errlen,
                "file '%s' does not read as %s: %s (UTF-16 without a byte-order mark? give its encoding as %s, or "
                "UTF-16); no patron was changed",
                file, enc_name, utf16, rep->utf16_pattern);
        return -1;
    }
    if (r->unreadable >= NOT_TEXT_MIN && r->unreadable * 100 > r->all * NOT_TEXT_PCT) {
        err_set(err, errlen,
                "file '%s' does not read as %s text: %llu of its %llu records hold NUL bytes or bytes invalid in %s "
                "(the first on line %llu); no patron was changed. Is it the CSV export, and is its encoding right?",
                file, enc_name, (unsigned long long)r->unreadable, (unsigned long long)r->all, enc_name,
                (unsigned long long)r->first_unreadable);
        return -1;
    }
    if (rep->bad_total > rep->nbad) {
        err_set(err, errlen,
                "file '%s' holds bytes invalid in %s in %llu places (more than %d; the first on line %llu); nothing "
                "was read. Is its encoding right?",
                file, enc_name, (unsigned long long)rep->bad_total, ENCODING_MAX_BAD,
                (unsigned long long)r->first_unreadable);
        return -1;
    }
    if (r->open_quote > 0) {
        /* The file's last line (a line end at the very end opens no line). */
        uint64_t last = r->sc.sc.line;
        if (last > r->open_quote && r->maplen > 0 && (r->map[r->maplen - 1] == '\n' || r->map[r->maplen - 1] == '\r'))
            last--;
        err_set(err, errlen,
                "file '%s': the record starting on line %llu opens a quoted field that is never closed (the file ends "
                "inside it, on line %llu), so the file is cut off or broken from line %llu on; no patron was changed",
                file, (unsigned long long)r->open_quote, (unsigned long long)last, (unsigned long long)r->open_quote);
        return -1;
    }
    if (r->huge_line > 0) {
        err_set(err, errlen,
                "file '%s': the record starting on line %llu is %llu bytes long, more than the %llu bytes a worker "
                "accepts (half of max_message_bytes); it cannot be a patron record; no patron was changed",
                file, (unsigned long long)r->huge_line, (unsigned long long)r->huge_len,
                (unsigned long long)r->max_alone);
        return -1;
    }
    return 0;
}

/* The job-level notes of the scan, and a file of no records that holds
 * more than a header refused. */
static int run_counts(prepare_run *r)
{
    prepared *out = r->out;
    const char *file = r->req->file;
    int64_t skip_rows = profile_rows_to_skip(r->prof);
    if (r->rep.bad_total > 0) {
        char msg[300];
        snprintf(msg, sizeof(msg), "%llu place(s) in the file held bytes invalid in %s; each record holding them was skipped.",
                 (unsigned long long)r->rep.bad_total, r->enc_name);
        jobnotes_add(&out->summary_notes, msg);
    }
    if (out->records == 0 && r->skipped_bytes > 0 &&
        (r->skipped_bytes > HEADER_MAX_BYTES ||
         r->skipped_last_line - r->skipped_first_line + 1 > (uint64_t)skip_rows + HEADER_EXTRA_LINES)) {
        err_set(r->err, r->errlen,
                "file '%s' yields no records, though it holds %llu bytes: all of them read as its %lld row(s) to skip "
                "(the header), %llu bytes on lines %llu-%llu, where a header is one line of a few hundred bytes. Its "
                "line ends were not found: is its encoding right (%s), or does a quote on line %llu swallow the "
                "lines after it? no patron was changed",
                file, (unsigned long long)r->in.sb.st_size, (long long)skip_rows,
                (unsigned long long)r->skipped_bytes, (unsigned long long)r->skipped_first_line,
                (unsigned long long)r->skipped_last_line, r->enc_name, (unsigned long long)r->skipped_first_line);
        return -1;
    }
    if (out->records == 0) {
        char msg[300];
        snprintf(msg, sizeof(msg), "File '%s' holds no records (it is empty, or holds only the %lld row(s) to skip).",
                 file, (long long)skip_rows);
        jobnotes_add(&out->summary_notes, msg);
    }
    return 0;
}

/* The last shard closed, the record notes final (each superseded line
 * names the line that finally wins) and handed to out, then the
 * incremental step. */
static int run_finish(prepare_run *r)
{
    prepared *out = r->out;
    prep *p = &r->p;
    /* A shard's bytes end where the next begins (line ends included), so
     * a worker's line count agrees with ours. */
    if (shard_cut_end(&r->cut, &out->shards, r->maplen, 0) < 0)
        return run_oom(r);
    if (run_counts(r) < 0)
        return -1;
    for (size_t i = 0; i < p->nnotes; i++) {
        if (p->notes[i]->kind > 1)
            continue;
        int which = (int)p->notes[i]->kind;
        uint64_t fin = dup_final_line(&p->keys[which], p->notes[i]->key, which ? slot_key1 : slot_key0, p);
        if (fin > 0)
            p->notes[i]->by_line = fin;
    }
    if (p->nnotes > 1) /* qsort's pointer may not be NULL, even for no notes (UBSan) */
        qsort(p->notes, p->nnotes, sizeof(*p->notes), note_cmp);
    out->record_notes = p->notes;
    out->nrecord_notes = p->nnotes;
    p->notes = NULL;
    p->nnotes = 0;
    return incremental_prepare(r->a, out, r->prof, r->map, r->maplen, r->err, r->errlen);
}

static void run_log(const prepare_run *r)
{
    int64_t t_end = mono_ms();
    const prepared *out = r->out;
    log_info("job %s: %llu records in %zu shards, %zu duplicate or unreadable lines, %s → UTF-8 %llu bytes (by %s); "
             "prepared in %lld ms (archive copy %lld, conversion %lld, records and duplicates %lld)",
             r->a->job_id, (unsigned long long)out->records, out->shards.n, out->nrecord_notes, r->enc_name,
             (unsigned long long)r->rep.out_bytes, r->rep.how ? r->rep.how : "?", (long long)(t_end - r->t_start),
             (long long)(r->t_archived - r->t_start), (long long)(r->t_converted - r->t_archived),
             (long long)(t_end - r->t_converted));
}

static void run_free(prepare_run *r)
{
    prep *p = &r->p;
    if (r->map)
        munmap(r->map, r->maplen);
    /* The copy in the archive stays where it is whatever happened. */
    if (r->src_fd >= 0 && r->src_fd != r->in.fd)
        close(r->src_fd);
    if (r->in.fd >= 0)
        close(r->in.fd);
    prepare_notes_free(p->notes, p->nnotes);
    dup_free(&p->keys[0]);
    dup_free(&p->keys[1]);
    csvrow_destroy(&p->row);
    csvrow_destroy(&p->vrow);
    csvrow_destroy(&p->crow);
    free(p->vbuf);
    patron_rec_free(&p->rec);
    patron_rec_free(&p->vrec);
    encoding_report_free(&r->rep);
    profile_destroy(&r->prof);
}

void prepare_notes_free(Patronsync__RecordNote **notes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(notes[i]->key);
        free(notes[i]->message);
        free(notes[i]);
    }
    free(notes);
}

int prepare_job(const prepare_args *a, prepared *out, char *err, size_t errlen)
{
    prepare_run *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        err_set(err, errlen, "out of memory preparing '%s'", a->req->file);
        return -1;
    }
    r->a = a;
    r->req = a->req;
    r->cfg = a->cfg;
    r->out = out;
    r->err = err;
    r->errlen = errlen;
    r->in.fd = -1;
    r->src_fd = -1;
    patron_rec_init(&r->p.rec);
    patron_rec_init(&r->p.vrec);
    int rc = -1;
    if (run_open(r) == 0 && run_convert(r) == 0 && run_map(r) == 0 && run_keys_setup(r) == 0) {
        run_scan_init(r);
        if (run_scan(r) == 0 && run_verdict(r) == 0 && run_finish(r) == 0) {
            run_log(r);
            rc = 0;
        }
    }
    if (rc < 0) {
        /* A file refused reads as no records at all. */
        out->records = 0;
        out->shards.n = 0;
    }
    run_free(r);
    free(r);
    return rc;
}
