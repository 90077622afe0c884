/* prepare: everything decided once per job before sharding — the file
 * (under the import root, still, converted to UTF-8), record boundaries,
 * duplicate keys (the later line wins), and the row-range shards. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker.h"
#include "csvscan.h"
#include "encoding.h"
#include "log.h"
#include "profile.h"
#include "util.h"

int prepare_resolve(const char *root, const char *name, char *out, size_t outlen, char *err, size_t errlen)
{
    if (name[0] == '\0') {
        err_set(err, errlen, "no file named");
        return -1;
    }
    if (name[0] == '/') {
        err_set(err, errlen, "file '%s': absolute paths are refused; name it relative to the import root", name);
        return -1;
    }
    /* No ".." component at all, whatever it would resolve to. */
    for (const char *p = name; *p;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            err_set(err, errlen, "file '%s': '..' is refused; the file must be under the import root", name);
            return -1;
        }
        p += n;
        while (*p == '/')
            p++;
    }
    char rroot[PATH_MAX], joined[PATH_MAX * 2], real[PATH_MAX];
    if (realpath(root, rroot) == NULL) {
        err_set(err, errlen, "import root %s: %s", root, strerror(errno));
        return -1;
    }
    snprintf(joined, sizeof(joined), "%s/%s", rroot, name);
    if (realpath(joined, real) == NULL) {
        err_set(err, errlen, "file '%s' not found under the import root %s: %s", name, rroot, strerror(errno));
        return -1;
    }
    size_t rl = strlen(rroot);
    if (strncmp(real, rroot, rl) != 0 || (real[rl] != '/' && real[rl] != '\0')) {
        err_set(err, errlen, "file '%s' leads outside the import root (to %s); refused", name, real);
        return -1;
    }
    struct stat sb;
    if (stat(real, &sb) < 0) {
        err_set(err, errlen, "file '%s': %s", name, strerror(errno));
        return -1;
    }
    if (!S_ISREG(sb.st_mode)) {
        err_set(err, errlen, "file '%s' is not a regular file (a device, FIFO or folder); refused", name);
        return -1;
    }
    if (strlen(real) >= outlen) {
        err_set(err, errlen, "file '%s': path too long", name);
        return -1;
    }
    str_copy(out, outlen, real);
    return 0;
}

/* Wait until the file has not changed for settle_seconds (SIS exports are
 * written slowly); a file that has been still costs nothing. */
static int settle(broker *b, const char *path, const char *name, char *err, size_t errlen)
{
    int64_t give_up = mono_ms() + b->cfg->settle_timeout_seconds * 1000;
    struct stat prev;
    memset(&prev, 0, sizeof(prev));
    for (;;) {
        struct stat sb;
        if (stat(path, &sb) < 0) {
            err_set(err, errlen, "file '%s': %s", name, strerror(errno));
            return -1;
        }
        int64_t mtime_ms = (int64_t)sb.st_mtim.tv_sec * 1000 + sb.st_mtim.tv_nsec / 1000000;
        int64_t still_for = now_ms() - mtime_ms;
        if (still_for >= b->cfg->settle_seconds * 1000 && (prev.st_size == 0 || prev.st_size == sb.st_size))
            return 0;
        if (mono_ms() > give_up) {
            err_set(err, errlen, "file '%s' was still being written after %lld seconds (size %lld bytes); not read",
                    name, (long long)b->cfg->settle_timeout_seconds, (long long)sb.st_size);
            return -1;
        }
        prev = sb;
        broker_pump(b);
        if (*b->stopping) {
            err_set(err, errlen, "broker stopping");
            return -1;
        }
        usleep(200 * 1000);
    }
}

/* Duplicate detection: a hash table of key hashes; a hash match is
 * confirmed by comparing the keys themselves (re-read from the work file). */
typedef struct {
    uint64_t h;      /* 0: empty slot */
    uint64_t off;    /* the record holding the latest occurrence */
    uint64_t line;
    uint32_t len;
    uint32_t note;   /* 1 + index of the note of the previous occurrence to fix up, or 0 */
} dup_slot;

typedef struct {
    dup_slot *v;
    size_t cap, n;
} dup_table;

static int dup_grow(dup_table *t)
{
    size_t cap = t->cap ? t->cap * 2 : 1 << 16;
    dup_slot *v = calloc(cap, sizeof(*v));
    if (v == NULL)
        return -1;
    for (size_t i = 0; i < t->cap; i++) {
        if (t->v[i].h == 0)
            continue;
        size_t k = t->v[i].h & (cap - 1);
        while (v[k].h != 0)
            k = (k + 1) & (cap - 1);
        v[k] = t->v[i];
    }
    free(t->v);
    t->v = v;
    t->cap = cap;
    return 0;
}

typedef struct {
    broker *b;
    job *j;
    const char *base; /* the mapped work file */
    const profile *prof;
    csvrow *row;
    patron_rec rec;
    dup_table keys[2]; /* 0: the match key, 1: barcode (when matching on District ID) */
    int key_field[2];
    Patronsync__RecordNote **notes;
    size_t nnotes, capnotes;
} prep;

/* The key (field f) of the record at off/len, into rec; "" when none. */
static const char *record_key(prep *p, uint64_t off, uint32_t len, int f)
{
    char e[ERRLEN];
    if (csvrow_parse(p->row, p->base + off, len, e, sizeof(e)) < 0)
        return "";
    if (profile_map_field(p->prof, f, csvrow_fields(p->row), csvrow_lens(p->row), csvrow_count(p->row), &p->rec,
                          e, sizeof(e)) < 0)
        return "";
    if (p->rec.state[f] != PV_VALUE)
        return "";
    return patron_rec_get(&p->rec, f);
}

/* A record a SkipWhen rule drops never supersedes another: the rules
 * decide first, as Destiny does. */
static int skipped_by_rule(prep *p, uint64_t off, uint32_t len)
{
    if (profile_rule_count(p->prof, PR_SKIP) == 0)
        return 0;
    char e[ERRLEN];
    if (csvrow_parse(p->row, p->base + off, len, e, sizeof(e)) < 0)
        return 0;
    if (profile_map(p->prof, csvrow_fields(p->row), csvrow_lens(p->row), csvrow_count(p->row), &p->rec, e,
                    sizeof(e)) < 0)
        return 0;
    return profile_rule_matches(p->prof, PR_SKIP, &p->rec, csvrow_fields(p->row), csvrow_lens(p->row),
                                csvrow_count(p->row)) == 1;
}

static Patronsync__RecordNote *add_note(prep *p, uint64_t line, uint32_t kind, const char *key, const char *msg)
{
    if (p->nnotes == p->capnotes) {
        size_t cap = p->capnotes ? p->capnotes * 2 : 64;
        Patronsync__RecordNote **v = realloc(p->notes, cap * sizeof(*v));
        if (v == NULL)
            return NULL;
        p->notes = v;
        p->capnotes = cap;
    }
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

/* Record one occurrence of a key; an earlier occurrence becomes superseded. */
static int dup_see(prep *p, int which, const char *key, uint64_t off, uint32_t len, uint64_t line)
{
    dup_table *t = &p->keys[which];
    if ((t->n + 1) * 2 > t->cap && dup_grow(t) < 0)
        return -1;
    uint64_t h = hash64(key, strlen(key), HASH64_SEED) | 1;
    size_t k = h & (t->cap - 1);
    char keycopy[512];
    str_copy(keycopy, sizeof(keycopy), key);
    while (t->v[k].h != 0) {
        if (t->v[k].h == h) {
            const char *prev = record_key(p, t->v[k].off, t->v[k].len, p->key_field[which]);
            if (strcmp(prev, keycopy) == 0) {
                Patronsync__RecordNote *n = add_note(p, t->v[k].line, (uint32_t)which, keycopy, NULL);
                if (n == NULL)
                    return -1;
                n->by_line = line;
                t->v[k].off = off;
                t->v[k].len = len;
                t->v[k].line = line;
                return 0;
            }
        }
        k = (k + 1) & (t->cap - 1);
    }
    t->v[k].h = h;
    t->v[k].off = off;
    t->v[k].len = len;
    t->v[k].line = line;
    t->n++;
    return 0;
}

/* The line where a key occurs last (the one that wins), 0 if unknown. */
static uint64_t dup_final_line(prep *p, int which, const char *key)
{
    dup_table *t = &p->keys[which];
    if (t->cap == 0)
        return 0;
    uint64_t h = hash64(key, strlen(key), HASH64_SEED) | 1;
    for (size_t k = h & (t->cap - 1); t->v[k].h != 0; k = (k + 1) & (t->cap - 1)) {
        if (t->v[k].h == h && strcmp(record_key(p, t->v[k].off, t->v[k].len, p->key_field[which]), key) == 0)
            return t->v[k].line;
    }
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

static int add_shard(job *j, uint64_t off, uint64_t end, uint64_t first_line, uint64_t last_line, uint32_t nrec)
{
    shard *v = realloc(j->shards, (j->nshards + 1) * sizeof(*v));
    if (v == NULL)
        return -1;
    j->shards = v;
    shard *s = &v[j->nshards++];
    memset(s, 0, sizeof(*s));
    s->off = off;
    s->len = end - off;
    s->first_line = first_line;
    s->last_line = last_line;
    s->nrec = nrec;
    s->state = SH_PENDING;
    return 0;
}

static int job_note(job *j, const char *msg)
{
    char **v = realloc(j->job_notes, (j->njob_notes + 1) * sizeof(*v));
    if (v == NULL)
        return -1;
    j->job_notes = v;
    v[j->njob_notes] = strdup(msg);
    if (v[j->njob_notes] == NULL)
        return -1;
    j->njob_notes++;
    return 0;
}

int prepare_job(broker *b, job *j, char *err, size_t errlen)
{
    const Patronsync__JobRequest *req = j->req;
    char path[PATH_MAX];
    char e[ERRLEN];
    int rc = -1, in_fd = -1;
    char *map = NULL;
    size_t maplen = 0;
    encoding_report rep;
    memset(&rep, 0, sizeof(rep));
    prep p;
    memset(&p, 0, sizeof(p));
    patron_rec_init(&p.rec);

    profile *prof = profile_parse(req->profile_text, strlen(req->profile_text), req->profile_name, e, sizeof(e));
    if (prof == NULL) {
        err_set(err, errlen, "profile refused: %s", e);
        return -1;
    }
    const char *enc = req->encoding[0] ? req->encoding : profile_encoding(prof);
    if (prepare_resolve(b->cfg->import_root, req->file, path, sizeof(path), err, errlen) < 0)
        goto out;
    if (settle(b, path, req->file, err, errlen) < 0)
        goto out;
    struct stat sb;
    if (stat(path, &sb) < 0) {
        err_set(err, errlen, "file '%s': %s", req->file, strerror(errno));
        goto out;
    }
    if (b->cfg->max_file_bytes > 0 && sb.st_size > b->cfg->max_file_bytes) {
        err_set(err, errlen, "file '%s' is %lld bytes, over the limit of %lld bytes (max_file_bytes); not read",
                req->file, (long long)sb.st_size, (long long)b->cfg->max_file_bytes);
        goto out;
    }
    in_fd = open(path, O_RDONLY | O_CLOEXEC);
    if (in_fd < 0) {
        err_set(err, errlen, "cannot open '%s': %s", req->file, strerror(errno));
        goto out;
    }
    if (mkdir_p(j->workdir, 0750, err, errlen) < 0)
        goto out;
    j->fd = open(j->utf8_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (j->fd < 0) {
        err_set(err, errlen, "cannot create %s: %s", j->utf8_path, strerror(errno));
        goto out;
    }
    if (encoding_convert_fd(enc, in_fd, j->fd, req->file, &rep, e, sizeof(e)) < 0) {
        err_set(err, errlen, "file '%s': %s", req->file, e);
        goto out;
    }
    if (rep.note[0])
        job_note(j, rep.note);
    broker_pump(b);

    maplen = (size_t)rep.out_bytes;
    if (maplen > 0) {
        map = mmap(NULL, maplen, PROT_READ, MAP_SHARED, j->fd, 0);
        if (map == MAP_FAILED) {
            map = NULL;
            err_set(err, errlen, "cannot map %s: %s", j->utf8_path, strerror(errno));
            goto out;
        }
        madvise(map, maplen, MADV_SEQUENTIAL);
    }
    p.b = b;
    p.j = j;
    p.base = map;
    p.prof = prof;
    p.row = csvrow_new((size_t)b->cfg->max_fields);
    if (p.row == NULL) {
        err_set(err, errlen, "out of memory");
        goto out;
    }
    int match_id = profile_match_district_id(prof);
    p.key_field[0] = match_id ? PF_DISTRICT_ID : PF_BARCODE;
    p.key_field[1] = PF_BARCODE;
    int check_barcode = match_id && profile_maps_field(prof, PF_BARCODE);

    csvscan sc;
    csvscan_init(&sc, map ? map : "", maplen, 1, (size_t)b->cfg->max_record_bytes);
    csvscan_rec r;
    int64_t skip = profile_rows_to_skip(prof);
    uint64_t shard_size = req->options && req->options->shard_size ? req->options->shard_size
                                                                     : (uint64_t)b->cfg->shard_size;
    uint64_t in_shard = 0, shard_off = 0, shard_first = 0, shard_last = 0;
    size_t bad = 0;
    uint64_t released = 0;
    while (csvscan_next(&sc, &r)) {
        if (skip > 0) {
            skip--;
            continue;
        }
        j->records++;
        if ((j->records & 0xffff) == 0) {
            broker_pump(b);
            if (*b->stopping) {
                err_set(err, errlen, "broker stopping");
                goto out;
            }
            /* Pages behind us are not needed again (except for the rare
             * hash match): let the kernel drop them from our RSS. */
            uint64_t upto = r.off & ~(uint64_t)((1 << 24) - 1);
            if (upto > released + (1 << 26)) {
                madvise(map + released, upto - released, MADV_DONTNEED);
                released = upto;
            }
        }
        if (in_shard == 0) {
            shard_off = r.off;
            shard_first = r.line;
        }
        shard_last = r.line;
        in_shard++;
        /* Bytes the encoding could not read: the record is skipped. */
        while (bad < rep.nbad && rep.bad[bad].out_off < r.off)
            bad++;
        if (bad < rep.nbad && rep.bad[bad].out_off < r.off + r.len) {
            char msg[300];
            snprintf(msg, sizeof(msg), "Line %llu: bytes invalid in %s at byte offset %llu of the file; record skipped.",
                     (unsigned long long)r.line, rep.detected[0] ? rep.detected : enc,
                     (unsigned long long)rep.bad[bad].in_off);
            if (add_note(&p, r.line, 2, "", msg) == NULL)
                goto oom;
        } else if (r.flags == 0 && !skipped_by_rule(&p, r.off, (uint32_t)r.len)) {
            const char *k = record_key(&p, r.off, (uint32_t)r.len, p.key_field[0]);
            if (*k && dup_see(&p, 0, k, r.off, (uint32_t)r.len, r.line) < 0)
                goto oom;
            if (check_barcode) {
                k = record_key(&p, r.off, (uint32_t)r.len, PF_BARCODE);
                if (*k && dup_see(&p, 1, k, r.off, (uint32_t)r.len, r.line) < 0)
                    goto oom;
            }
        }
        if (in_shard == shard_size) {
            if (add_shard(j, shard_off, r.off + r.len, shard_first, shard_last, (uint32_t)in_shard) < 0)
                goto oom;
            in_shard = 0;
        }
    }
    if (in_shard > 0 && add_shard(j, shard_off, maplen, shard_first, shard_last, (uint32_t)in_shard) < 0)
        goto oom;
    /* A shard's bytes end where the next begins (line ends included), so
     * a worker's line count agrees with ours. */
    for (size_t i = 0; i + 1 < j->nshards; i++)
        j->shards[i].len = j->shards[i + 1].off - j->shards[i].off;
    if (rep.nbad > 0) {
        char msg[200];
        snprintf(msg, sizeof(msg), "%zu place(s) in the file held bytes invalid in %s.", rep.nbad,
                 rep.detected[0] ? rep.detected : enc);
        job_note(j, msg);
    }
    /* Each superseded line names the line that finally wins. */
    for (size_t i = 0; i < p.nnotes; i++) {
        if (p.notes[i]->kind > 1)
            continue;
        uint64_t fin = dup_final_line(&p, (int)p.notes[i]->kind, p.notes[i]->key);
        if (fin > 0)
            p.notes[i]->by_line = fin;
    }
    qsort(p.notes, p.nnotes, sizeof(*p.notes), note_cmp);
    j->notes = p.notes;
    j->nnotes = p.nnotes;
    p.notes = NULL;
    p.nnotes = 0;
    log_info("job %s: %llu records in %zu shards, %zu duplicate or unreadable lines, %s → UTF-8 %llu bytes",
             j->id, (unsigned long long)j->records, j->nshards, j->nnotes, rep.detected[0] ? rep.detected : enc,
             (unsigned long long)rep.out_bytes);
    rc = 0;
    goto out;
oom:
    err_set(err, errlen, "out of memory preparing '%s'", req->file);
out:
    if (map)
        munmap(map, maplen);
    if (in_fd >= 0)
        close(in_fd);
    for (size_t i = 0; i < p.nnotes; i++) {
        free(p.notes[i]->key);
        free(p.notes[i]->message);
        free(p.notes[i]);
    }
    free(p.notes);
    free(p.keys[0].v);
    free(p.keys[1].v);
    csvrow_destroy(&p.row);
    patron_rec_free(&p.rec);
    encoding_report_free(&rep);
    profile_destroy(&prof);
    return rc;
}
