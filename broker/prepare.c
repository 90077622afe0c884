/* prepare: everything decided once per job before sharding — the file
 * (under the import root, still, converted to UTF-8), record boundaries,
 * duplicate keys (the later line wins), and the row-range shards. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "csvscan.h"
#include "encoding.h"
#include "incremental.h"
#include "log.h"
#include "profile.h"
#include "summary.h"
#include "util.h"

/* What a mode is, for messages. */
static const char *file_kind(mode_t m)
{
    if (S_ISDIR(m))
        return "a folder";
    if (S_ISFIFO(m))
        return "a FIFO (named pipe)";
    if (S_ISCHR(m))
        return "a character device";
    if (S_ISBLK(m))
        return "a block device";
    if (S_ISSOCK(m))
        return "a socket";
    if (S_ISLNK(m))
        return "a symbolic link";
    return "of an unknown kind";
}

/* Whether path is root itself or under it (both resolved, no trailing '/'). */
static int under_root(const char *root, const char *path)
{
    size_t rl = strlen(root);
    if (rl == 1 && root[0] == '/')
        return path[0] == '/';
    return strncmp(path, root, rl) == 0 && (path[rl] == '/' || path[rl] == '\0');
}

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
    int n = snprintf(joined, sizeof(joined), "%s/%s", rroot, name);
    if (n < 0 || (size_t)n >= sizeof(joined)) {
        err_set(err, errlen, "file '%.80s...': name too long", name);
        return -1;
    }
    /* realpath follows every symbolic link (never opening the file, so a
     * FIFO cannot block here); where it ends up is what is checked. */
    if (realpath(joined, real) == NULL) {
        err_set(err, errlen, "file '%s' not found under the import root %s: %s", name, rroot, strerror(errno));
        return -1;
    }
    if (!under_root(rroot, real)) {
        err_set(err, errlen, "file '%s' leads outside the import root (to %s); refused", name, real);
        return -1;
    }
    struct stat sb;
    if (stat(real, &sb) < 0) {
        err_set(err, errlen, "file '%s': %s", name, strerror(errno));
        return -1;
    }
    if (!S_ISREG(sb.st_mode)) {
        err_set(err, errlen, "file '%s' is %s, not a regular file; refused", name, file_kind(sb.st_mode));
        return -1;
    }
    if (strlen(real) >= outlen) {
        err_set(err, errlen, "file '%s': path too long", name);
        return -1;
    }
    str_copy(out, outlen, real);
    return 0;
}

static int64_t mtime_ms(const struct stat *sb)
{
    return (int64_t)sb->st_mtim.tv_sec * 1000 + sb->st_mtim.tv_nsec / 1000000;
}

/* The same file with the same contents, as far as stat can tell. */
static int same_state(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* The input file, opened once it has been still long enough. */
typedef struct {
    int fd;
    struct stat sb; /* as it was when it was found still */
} input;

/* Open the resolved path for reading without ever blocking (a FIFO swapped
 * in after the checks opens at once with O_NONBLOCK and is then refused)
 * and without following a link swapped in for its last part; then check
 * that what was opened is the regular file that was checked, and that it
 * still lies under the import root. */
static int open_checked(const char *root, const char *path, const char *name, const struct stat *want, int *fd_out,
                        char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        err_set(err, errlen, "cannot open '%s': %s", name, strerror(errno));
        return -1;
    }
    struct stat sb;
    if (fstat(fd, &sb) < 0) {
        err_set(err, errlen, "file '%s': %s", name, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(sb.st_mode)) {
        err_set(err, errlen, "file '%s' is %s, not a regular file; refused", name, file_kind(sb.st_mode));
        close(fd);
        return -1;
    }
    if (sb.st_dev != want->st_dev || sb.st_ino != want->st_ino) {
        close(fd);
        return 1; /* replaced since it was checked: look again */
    }
    /* Where the open file really is (the kernel's answer, so no race with
     * renames of the folders above it). Without /proc this check is the
     * realpath one made before. */
    char link[64], real[PATH_MAX], rroot[PATH_MAX];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, real, sizeof(real) - 1);
    if (n > 0 && realpath(root, rroot) != NULL) {
        real[n] = '\0';
        if (!under_root(rroot, real)) {
            err_set(err, errlen, "file '%s' leads outside the import root (to %s); refused", name, real);
            close(fd);
            return -1;
        }
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    *fd_out = fd;
    return 0;
}

/* Resolve the file, wait until it is still, and open it. Still means: its
 * size, modification time and inode unchanged, and either its modification
 * time at least settle_seconds old (a file that has been still costs no
 * wait) or unchanged while watched for settle_seconds (a file stamped in
 * the future by a clock ahead of ours). A file still changing after
 * settle_timeout_seconds is not read: the job fails saying so. */
static int open_input(broker *b, const char *name, input *in, char *err, size_t errlen)
{
    const ps_config *c = b->cfg;
    char path[PATH_MAX];
    int64_t settle_ms = c->settle_seconds * 1000;
    int64_t start = mono_ms();
    int64_t give_up = start + c->settle_timeout_seconds * 1000;
    struct stat prev, first;
    memset(&prev, 0, sizeof(prev));
    memset(&first, 0, sizeof(first));
    int have_prev = 0;
    int64_t same_since = start;
    in->fd = -1;
    for (;;) {
        if (prepare_resolve(c->import_root, name, path, sizeof(path), err, errlen) < 0)
            return -1;
        struct stat sb;
        if (stat(path, &sb) < 0) {
            err_set(err, errlen, "file '%s': %s", name, strerror(errno));
            return -1;
        }
        if (!have_prev)
            first = sb;
        int same = have_prev && same_state(&prev, &sb);
        if (!same)
            same_since = mono_ms();
        int64_t age = now_ms() - mtime_ms(&sb);
        int still = (age >= settle_ms && (!have_prev || same)) || (same && mono_ms() - same_since >= settle_ms);
        if (still) {
            int r = open_checked(c->import_root, path, name, &sb, &in->fd, err, errlen);
            if (r < 0)
                return -1;
            if (r == 0) {
                in->sb = sb;
                return 0;
            }
            same_since = mono_ms(); /* replaced: watch the new one */
        }
        if (mono_ms() >= give_up) {
            err_set(err, errlen,
                    "file '%s' was still being written after %lld seconds (%lld bytes when first seen, %lld now); "
                    "not read: run it again once the export has finished",
                    name, (long long)c->settle_timeout_seconds, (long long)first.st_size, (long long)sb.st_size);
            return -1;
        }
        prev = sb;
        have_prev = 1;
        broker_pump(b);
        if (*b->stopping) {
            err_set(err, errlen, "broker stopping");
            return -1;
        }
        usleep(200 * 1000);
    }
}

/* ---- the archive: a copy of each run's input ---- */

/* The archive folder of a job: the schedule's name made safe for a file
 * name ("adhoc" for a run-now). A name that had to be changed gets a hash
 * of the original, so two schedules never share a folder. */
static void archive_folder(const char *schedule, char *out, size_t outlen)
{
    if (schedule == NULL || schedule[0] == '\0') {
        str_copy(out, outlen, "adhoc");
        return;
    }
    char safe[96];
    size_t n = 0;
    int changed = 0;
    for (const char *p = schedule; *p && n + 1 < sizeof(safe); p++) {
        char ch = *p;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
              ch == '_' || (ch == '.' && n > 0))) {
            ch = '_';
            changed = 1;
        }
        safe[n++] = ch;
    }
    safe[n] = '\0';
    if (strlen(schedule) != n)
        changed = 1;
    if (changed || strcmp(safe, "adhoc") == 0)
        snprintf(out, outlen, "%s-%08llx", safe,
                 (unsigned long long)(hash64(schedule, strlen(schedule), HASH64_SEED) & 0xffffffffu));
    else
        str_copy(out, outlen, safe);
}

static int name_cmp_desc(const void *a, const void *b)
{
    return strcmp(*(char *const *)b, *(char *const *)a);
}

/* Keep the newest `keep` copies in dir: names start with the job's UTC
 * fire time (to the millisecond), so name order is fire order. Other files
 * are left alone. */
static void archive_prune(const char *dir, int64_t keep)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *s = e->d_name;
        /* ours: YYYYMMDDTHHMMSS.mmmZ_... */
        if (strlen(s) < 21 || s[8] != 'T' || s[15] != '.' || s[19] != 'Z' || s[20] != '_' || s[0] < '0' || s[0] > '9')
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            char **v = realloc(names, nc * sizeof(*v));
            if (v == NULL)
                break;
            names = v;
            cap = nc;
        }
        names[n] = strdup(s);
        if (names[n] == NULL)
            break;
        n++;
    }
    closedir(d);
    if (n > 1)
        qsort(names, n, sizeof(*names), name_cmp_desc);
    for (size_t i = 0; i < n; i++) {
        if ((int64_t)i >= keep) {
            char path[PATH_MAX + 256];
            snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
            if (unlink(path) < 0)
                log_warn("archive: cannot remove %s: %s", path, strerror(errno));
        }
        free(names[i]);
    }
    free(names);
}

/* Keep the broker answering while a large input is copied. */
static void pump(void *b)
{
    broker_pump(b);
}

int prepare_is_run_now(const Patronsync__JobRequest *req)
{
    return (req->schedule == NULL || req->schedule[0] == '\0') && strncmp(req->file, "adhoc/", 6) == 0;
}

/* A run-now's file is patronctl's own copy of the operator's file
 * (prepare_is_run_now): while it has no other name
 * it becomes the archive's copy by a hard link to the very file opened,
 * made read-only, instead of a second copy of its bytes. 0 when linked;
 * -1 to copy instead (a scheduled file, which its exporter may rewrite in
 * place; another name; an archive on another file system; no /proc). */
static int archive_link(const Patronsync__JobRequest *req, const input *in, const char *tmp, const char *path)
{
    if (!prepare_is_run_now(req))
        return -1;
    struct stat sb;
    if (fstat(in->fd, &sb) < 0 || sb.st_nlink != 1 || sb.st_ino != in->sb.st_ino || sb.st_size != in->sb.st_size)
        return -1;
    char proc[64];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", in->fd);
    unlink(tmp);
    if (linkat(AT_FDCWD, proc, AT_FDCWD, tmp, AT_SYMLINK_FOLLOW) < 0)
        return -1;
    if (fchmod(in->fd, sb.st_mode & 0444) < 0 || rename(tmp, path) < 0) {
        log_warn("archive: cannot keep %s as a link (%s); copying it", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* Keep a copy of the input in archive_dir/<schedule or adhoc>/ named
 * <fire time>_<job id>_<file name>, prune to archive_keep copies, and
 * return an fd on the copy (read from its start): the job reads the copy,
 * so what is archived is exactly what was loaded. -1 with err. */
static int archive_input(broker *b, job *j, const input *in, char *path_out, size_t path_outlen, char *err,
                         size_t errlen)
{
    const Patronsync__JobRequest *req = j->req;
    char folder[128], dir[CONFIG_STR + 160], base[128], when[32];
    archive_folder(req->schedule, folder, sizeof(folder));
    snprintf(dir, sizeof(dir), "%s/%s", b->cfg->archive_dir, folder);
    const char *slash = strrchr(req->file, '/');
    str_copy(base, sizeof(base), slash ? slash + 1 : req->file);
    for (char *p = base; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' ||
              *p == '-' || *p == '_'))
            *p = '_';
    int64_t fired = req->fired_at_ms > 0 ? req->fired_at_ms : now_ms();
    time_t t = (time_t)(fired / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char secs[24];
    strftime(secs, sizeof(secs), "%Y%m%dT%H%M%S", &tm);
    snprintf(when, sizeof(when), "%s.%03dZ", secs, (int)(fired % 1000));
    char path[CONFIG_STR + 512], tmp[CONFIG_STR + 560];
    snprintf(path, sizeof(path), "%s/%s_%s_%s", dir, when, j->id, base);
    snprintf(tmp, sizeof(tmp), "%s/.%s_%s.tmp", dir, when, j->id);
    char e[ERRLEN];
    if (mkdir_p(dir, 0750, e, sizeof(e)) < 0) {
        err_set(err, errlen, "cannot keep a copy of '%s' in the archive: %s", req->file, e);
        return -1;
    }
    int fd;
    uint64_t copied = 0;
    if (archive_link(req, in, tmp, path) == 0) {
        /* The archive's copy is the very file opened. */
        fd = fcntl(in->fd, F_DUPFD_CLOEXEC, 0);
        if (fd < 0) {
            err_set(err, errlen, "archive copy %s: %s", path, strerror(errno));
            return -1;
        }
        goto kept;
    }
    fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
        err_set(err, errlen, "cannot keep a copy of '%s' in the archive: %s: %s", req->file, tmp, strerror(errno));
        return -1;
    }
    /* One byte more than it had tells a file that grew since. */
    if (fd_copy(in->fd, fd, (uint64_t)in->sb.st_size + 1, &copied, pump, b, e, sizeof(e)) < 0) {
        err_set(err, errlen, "cannot keep a copy of '%s' in the archive (%s): %s", req->file, tmp, e);
        goto err;
    }
    if (copied != (uint64_t)in->sb.st_size) {
        err_set(err, errlen, "file '%s' changed while it was read (%lld bytes when found still, %s%llu read); "
                "not loaded: run it again once the export has finished",
                req->file, (long long)in->sb.st_size, copied > (uint64_t)in->sb.st_size ? "more than " : "",
                (unsigned long long)(copied > (uint64_t)in->sb.st_size ? copied - 1 : copied));
        goto err;
    }
    if (rename(tmp, path) < 0) {
        err_set(err, errlen, "cannot keep a copy of '%s' in the archive: %s: %s", req->file, path, strerror(errno));
        goto err;
    }
kept:
    if (lseek(fd, 0, SEEK_SET) < 0) {
        err_set(err, errlen, "archive copy %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    archive_prune(dir, b->cfg->archive_keep);
    str_copy(path_out, path_outlen, path);
    return fd;
err:
    close(fd);
    unlink(tmp);
    return -1;
}

/* Duplicate detection: per key (the match key, and the barcode when
 * matching on District ID) an open-addressing table of key hashes, at most
 * half full. A hash match is confirmed by comparing the keys themselves
 * (the earlier record is re-read from the work file), so a 32-bit hash is
 * enough. A slot is 16 bytes and a table of n keys has the power of two
 * >= 2n slots (65,536 at least): a million keys cost 2,097,152 slots x 16 B
 * = 32 MiB per table, 64 MiB for the two (while a table grows, its old
 * slots are held too: 16 MiB more for a moment). */
typedef struct {
    uint32_t h;    /* the key's hash (a hash of 0 is kept as 1); 0: empty slot */
    uint32_t line; /* line of the latest occurrence (a file of more lines is refused) */
    uint64_t pos;  /* that record: offset << DUP_LEN_BITS | length (DUP_LEN_FAR: longer, scanned for) */
} dup_slot;

/* A record's length in a slot: records of DUP_LEN_FAR bytes or more (only
 * when max_record_bytes allows them: 256 MiB) keep DUP_LEN_FAR, and their
 * end is found again by scanning from their offset. Offsets take the other
 * 36 bits: a work file of more than 64 GiB is refused. */
#define DUP_LEN_BITS 28
#define DUP_LEN_FAR (((uint64_t)1 << DUP_LEN_BITS) - 1)
#define DUP_MAX_FILE ((uint64_t)1 << (64 - DUP_LEN_BITS))
/* Keys of this many bytes or more (far beyond the 40 characters of a
 * District ID and the 14 of a barcode) are never taken for duplicates, as
 * they never were (the key used to be compared through a 512-byte copy). */
#define DUP_KEY_CMP 512
_Static_assert(sizeof(dup_slot) == 16, "a duplicate slot is 16 bytes");

typedef struct {
    dup_slot *v;
    size_t cap, n;
} dup_table;

/* A table's slots are mapped for it alone (zero pages from the kernel) and
 * unmapped when it grows or the job is prepared: from the heap, the
 * smaller tables a growing table leaves behind stayed in the broker's
 * memory (~20 MB more at a million keys). */
static dup_slot *dup_slots(size_t cap)
{
    void *v = mmap(NULL, cap * sizeof(dup_slot), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return v == MAP_FAILED ? NULL : v;
}

static void dup_free(dup_table *t)
{
    if (t->v != NULL)
        munmap(t->v, t->cap * sizeof(dup_slot));
    t->v = NULL;
    t->cap = t->n = 0;
}

/* Grow to cap slots (a power of two, more than now). */
static int dup_grow_to(dup_table *t, size_t cap)
{
    dup_slot *v = dup_slots(cap);
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
    size_t n = t->n;
    dup_free(t);
    t->v = v;
    t->cap = cap;
    t->n = n;
    return 0;
}

static int dup_grow(dup_table *t)
{
    return dup_grow_to(t, t->cap ? t->cap * 2 : 1 << 16);
}

/* Size a table at once for about `keys` keys (each doubling on the way
 * would move every key again). Short of the estimate rather than over it:
 * a table one doubling too large costs as much memory again. */
static int dup_reserve(dup_table *t, uint64_t keys)
{
    size_t cap = t->cap ? t->cap : 1 << 16;
    while ((uint64_t)cap < keys * 2 && cap < ((size_t)1 << 31))
        cap *= 2;
    return cap > t->cap ? dup_grow_to(t, cap) : 0;
}

/* The 32-bit hash of a key, never 0. hash64's low bits mix poorly (FNV-1a),
 * so its high half is folded in; the table's index is the low bits. */
static uint32_t dup_hash(const char *key, size_t len)
{
    uint64_t h = hash64(key, len, HASH64_SEED);
    uint32_t x = (uint32_t)(h ^ (h >> 32));
    return x ? x : 1;
}

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
    broker *b;
    job *j;
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

static uint64_t slot_off(const dup_slot *s)
{
    return s->pos >> DUP_LEN_BITS;
}

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
    uint64_t off = slot_off(s);
    uint64_t len = s->pos & DUP_LEN_FAR;
    int far = len == DUP_LEN_FAR;
    if (far) {
        len = p->len - off;
        if (len > (uint64_t)p->max_record + 1)
            len = (uint64_t)p->max_record + 1;
    }
    if (len > p->vcap) {
        char *v = realloc(p->vbuf, len ? (size_t)len : 1);
        if (v == NULL) {
            log_warn("job %s: out of memory re-reading the record at byte %llu", p->j->id, (unsigned long long)off);
            return NULL;
        }
        p->vbuf = v;
        p->vcap = (size_t)len;
    }
    for (size_t got = 0; got < len;) {
        ssize_t n = pread(p->j->fd, p->vbuf + got, (size_t)len - got, (off_t)(off + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            log_warn("job %s: cannot re-read the record at byte %llu of the work file: %s", p->j->id,
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

static void slot_set(dup_slot *s, uint32_t h, uint64_t off, size_t len, uint64_t line)
{
    s->h = h;
    s->line = (uint32_t)line;
    s->pos = off << DUP_LEN_BITS | ((uint64_t)len < DUP_LEN_FAR ? (uint64_t)len : DUP_LEN_FAR);
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

/* Record one occurrence of a key (not held in vrec), hashed h: an earlier
 * occurrence becomes superseded. checked: the record is known to split
 * whole (else it is checked here before it supersedes anything; slots
 * hold unchecked records too, and record_key never matches a bad one). */
static int dup_see(prep *p, int which, const char *key, uint32_t h, uint64_t off, size_t len, uint64_t line,
                   int checked)
{
    dup_table *t = &p->keys[which];
    if ((t->n + 1) * 2 > t->cap && dup_grow(t) < 0)
        return -1;
    size_t klen = strlen(key);
    size_t k = h & (t->cap - 1);
    while (t->v[k].h != 0) {
        dup_slot *s = &t->v[k];
        if (s->h == h && klen < DUP_KEY_CMP && strcmp(record_key(p, s, p->key_field[which]), key) == 0) {
            /* A record read by its lead alone is split whole before it
             * supersedes anything: one that is not whole has no key. */
            if (!checked && !split_whole(p, p->crow, p->base + off, len))
                return 0;
            Patronsync__RecordNote *n = add_note(p, s->line, (uint32_t)which, key, NULL);
            if (n == NULL)
                return -1;
            n->by_line = line;
            slot_set(s, h, off, len, line);
            return 0;
        }
        k = (k + 1) & (t->cap - 1);
    }
    slot_set(&t->v[k], h, off, len, line);
    t->n++;
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

/* The line where a key occurs last (the one that wins), 0 if unknown. */
static uint64_t dup_final_line(prep *p, int which, const char *key)
{
    dup_table *t = &p->keys[which];
    if (t->cap == 0)
        return 0;
    size_t klen = strlen(key);
    uint32_t h = dup_hash(key, klen);
    for (size_t k = h & (t->cap - 1); t->v[k].h != 0; k = (k + 1) & (t->cap - 1)) {
        const dup_slot *s = &t->v[k];
        if (s->h == h && strcmp(record_key(p, s, p->key_field[which]), key) == 0)
            return s->line;
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

int job_note(job *j, const char *msg)
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

int job_warn(job *j, const char *msg)
{
    size_t n = strlen(SUMMARY_WARNING) + strlen(msg) + 1;
    char *w = malloc(n);
    if (w == NULL)
        return -1;
    snprintf(w, n, "%s%s", SUMMARY_WARNING, msg);
    int rc = job_note(j, w);
    free(w);
    return rc;
}

int job_warned(const job *j)
{
    for (size_t i = 0; i < j->njob_notes; i++)
        if (summary_note_is_warning(j->job_notes[i]))
            return 1;
    return 0;
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
/* The work file is scanned this many bytes at a time (more for a longer
 * record): csvscan_init reads its whole buffer (memchr for quotes, line
 * ends and NULs), which would map every page of the file at once. */
#define SCAN_WINDOW ((size_t)4 << 20)

/* The work file's records, found with csvscan one window at a time, exactly
 * as one scan of the whole file finds them: a window starts at a record
 * (the file's start, line 1, for the first), and scanning from a record's
 * offset with its line gives the same records and lines (csvscan.h). A
 * record is given out once the next one shows up in the same window (so
 * its end was not the window's); the window's last record starts the next
 * window. A window that holds no record past its first grows twice as
 * long from the same start; the one that reaches the file's end gives out
 * everything. */
typedef struct {
    const char *buf;
    size_t len, max_record;
    csvscan sc;         /* the window's scan; sc.line is the file's line */
    size_t win_off;     /* the window: buf[win_off .. win_off + win_len) */
    size_t win_len;
    uint64_t win_line;  /* the line it starts on */
    csvscan_rec held;   /* its latest record, not yet known complete */
    int have_held;
} winscan;

static void winscan_window(winscan *w, size_t off, size_t len, uint64_t line)
{
    w->win_off = off;
    w->win_len = len < w->len - off ? len : w->len - off;
    w->win_line = line;
    w->have_held = 0;
    csvscan_init(&w->sc, w->buf + off, w->win_len, line, w->max_record);
}

static void winscan_init(winscan *w, const char *buf, size_t len, size_t max_record)
{
    memset(w, 0, sizeof(*w));
    w->buf = buf;
    w->len = len;
    w->max_record = max_record;
    winscan_window(w, 0, SCAN_WINDOW, 1);
}

/* The next record, its offset in the whole file: 1 and *out, 0 at the end. */
static int winscan_next(winscan *w, csvscan_rec *out)
{
    for (;;) {
        int last = w->win_off + w->win_len >= w->len; /* this window ends where the file does */
        csvscan_rec r;
        if (csvscan_next(&w->sc, &r)) {
            r.off += w->win_off;
            if (last) {
                *out = r;
                return 1;
            }
            if (w->have_held) {
                *out = w->held;
                w->held = r;
                return 1;
            }
            w->held = r;
            w->have_held = 1;
            continue;
        }
        if (last)
            return 0;
        if (w->have_held && w->held.off > w->win_off)
            winscan_window(w, w->held.off, SCAN_WINDOW, w->held.line);
        else
            winscan_window(w, w->win_off, w->win_len * 2, w->win_line);
    }
}

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

int prepare_job(broker *b, job *j, char *err, size_t errlen)
{
    const Patronsync__JobRequest *req = j->req;
    char e[ERRLEN];
    int rc = -1, src_fd = -1;
    input in = {.fd = -1};
    char *map = NULL;
    size_t maplen = 0;
    encoding_report rep;
    memset(&rep, 0, sizeof(rep));
    prep p;
    memset(&p, 0, sizeof(p));
    patron_rec_init(&p.rec);
    patron_rec_init(&p.vrec);

    profile *prof = profile_parse(req->profile_text, strlen(req->profile_text), req->profile_name, e, sizeof(e));
    if (prof == NULL) {
        err_set(err, errlen, "profile refused: %s", e);
        return -1;
    }
    const char *enc = req->encoding[0] ? req->encoding : profile_encoding(prof);
    if (open_input(b, req->file, &in, err, errlen) < 0)
        goto out;
    /* Where the time goes, for the log: archive copy, conversion, scan. */
    int64_t t_start = mono_ms(), t_archived = t_start, t_converted;
    if (b->cfg->max_file_bytes > 0 && in.sb.st_size > b->cfg->max_file_bytes) {
        err_set(err, errlen, "file '%s' is %lld bytes, over the limit of %lld bytes (max_file_bytes); not read",
                req->file, (long long)in.sb.st_size, (long long)b->cfg->max_file_bytes);
        goto out;
    }
    if (mkdir_p(j->workdir, 0750, err, errlen) < 0)
        goto out;
    src_fd = in.fd;
    if (b->cfg->archive_keep > 0) {
        char copy[CONFIG_STR + 512];
        src_fd = archive_input(b, j, &in, copy, sizeof(copy), err, errlen);
        if (src_fd < 0)
            goto out;
        status_do(b->redis, "HSET ps:job:%s input_copy %s", j->id, copy);
        log_info("job %s: input kept as %s", j->id, copy);
        t_archived = mono_ms();
    }
    j->fd = open(j->utf8_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (j->fd < 0) {
        err_set(err, errlen, "cannot create %s: %s", j->utf8_path, strerror(errno));
        goto out;
    }
    if (encoding_convert_fd(enc, src_fd, j->fd, req->file, &rep, e, sizeof(e)) < 0) {
        err_set(err, errlen, "file '%s': %s", req->file, e);
        goto out;
    }
    if (rep.in_bytes != (uint64_t)in.sb.st_size) {
        err_set(err, errlen, "file '%s' changed while it was read (%lld bytes when found still, %llu read); "
                "not loaded: run it again once the export has finished",
                req->file, (long long)in.sb.st_size, (unsigned long long)rep.in_bytes);
        goto out;
    }
    t_converted = mono_ms();
    const char *enc_name = rep.detected[0] ? rep.detected : enc;
    if (utf16_refused(&rep, req->file, err, errlen))
        goto out;
    if (rep.bom_contradicts) {
        /* Read as the BOM says, which is right; but the encoding given is
         * wrong, and the operator must hear of it (complete_with_errors). */
        char msg[400];
        snprintf(msg, sizeof(msg),
                 "file '%s' begins with a %s byte order mark, so it was read as %s, not as the %s it was given as. "
                 "Give its encoding as %s%s.",
                 req->file, rep.bom, rep.bom, rep.configured, rep.bom, strncmp(rep.bom, "UTF-16", 6) == 0 ? " (or UTF-16)" : "");
        if (job_warn(j, msg) < 0)
            goto oom;
    } else if (rep.note[0] && job_note(j, rep.note) < 0) {
        goto oom;
    }
    broker_pump(b);

    maplen = (size_t)rep.out_bytes;
    if ((uint64_t)maplen > DUP_MAX_FILE) {
        err_set(err, errlen,
                "file '%s' is %llu bytes once converted to UTF-8, more than the %llu bytes (64 GiB) the broker can "
                "index; not read",
                req->file, (unsigned long long)maplen, (unsigned long long)DUP_MAX_FILE);
        goto out;
    }
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
    p.len = maplen;
    p.max_record = (size_t)b->cfg->max_record_bytes;
    p.prof = prof;
    p.skip_rules = profile_rule_count(prof, PR_SKIP) == 0            ? SKIP_NONE
                   : profile_rule_columns_only(prof, PR_SKIP) ? SKIP_COLUMNS
                                                                : SKIP_FIELDS;
    p.min_cols = profile_max_column(prof);
    p.max_cols = profile_column_total(prof);
    p.row = csvrow_new((size_t)b->cfg->max_fields);
    p.vrow = csvrow_new((size_t)b->cfg->max_fields);
    p.crow = csvrow_new((size_t)b->cfg->max_fields);
    if (p.row == NULL || p.vrow == NULL || p.crow == NULL) {
        err_set(err, errlen, "out of memory");
        goto out;
    }
    int match_id = profile_match_district_id(prof);
    p.key_field[0] = match_id ? PF_DISTRICT_ID : PF_BARCODE;
    p.key_field[1] = PF_BARCODE;
    int check_barcode = match_id && profile_maps_field(prof, PF_BARCODE);
    if (p.skip_rules != SKIP_FIELDS) {
        int k = profile_field_max_column(prof, p.key_field[0]);
        if (check_barcode && profile_field_max_column(prof, PF_BARCODE) > k)
            k = profile_field_max_column(prof, PF_BARCODE);
        if (p.skip_rules == SKIP_COLUMNS && profile_rule_max_column(prof, PR_SKIP) > k)
            k = profile_rule_max_column(prof, PR_SKIP);
        p.keep = k > 0 ? (size_t)k : 1;
    }

    winscan sc;
    winscan_init(&sc, map ? map : "", maplen, (size_t)b->cfg->max_record_bytes);
    csvscan_rec r;
    int64_t skip = profile_rows_to_skip(prof);
    uint64_t shard_size = req->options && req->options->shard_size ? req->options->shard_size
                                                                     : (uint64_t)b->cfg->shard_size;
    uint64_t shard_bytes = SHARD_MAX_BYTES;
    if ((uint64_t)b->cfg->max_message_bytes / 4 < shard_bytes)
        shard_bytes = (uint64_t)b->cfg->max_message_bytes / 4;
    /* A record longer than this cannot travel to a worker, even alone. */
    uint64_t max_alone = (uint64_t)b->cfg->max_message_bytes / 2;
    uint64_t huge_line = 0, huge_len = 0;
    uint64_t in_shard = 0, shard_off = 0, shard_first = 0, shard_last = 0;
    size_t bad = 0;
    uint64_t released = 0;
    /* What decides whether the file is text at all (every record counts,
     * the rows to skip too). */
    uint64_t all = 0, unreadable = 0, first_unreadable = 0, open_quote = 0;
    /* the rows to skip: their bytes, the lines they start and end on */
    uint64_t skipped_bytes = 0, skipped_first_line = 0, skipped_last_line = 0;
    int first_nul = 0, first_utf16 = 0;
    while (winscan_next(&sc, &r)) {
        /* Pages behind us are not needed again (a hash match re-reads its
         * earlier record with pread): every RELEASE_STEP bytes, let the
         * kernel drop them from our RSS, so that the file's pages never
         * dominate it. */
        uint64_t upto = r.off & ~(RELEASE_STEP - 1);
        if (upto > released) {
            madvise(map + released, upto - released, MADV_DONTNEED);
            released = upto;
        }
        if (r.line > UINT32_MAX) {
            err_set(err, errlen,
                    "file '%s' has more than %llu lines, more than the broker can count; no patron was changed",
                    req->file, (unsigned long long)UINT32_MAX);
            goto out;
        }
        all++;
        while (bad < rep.nbad && rep.bad[bad].out_off < r.off)
            bad++;
        int bad_bytes = bad < rep.nbad && rep.bad[bad].out_off < r.off + r.len;
        if (bad_bytes || (r.flags & CSVSCAN_NUL)) {
            if (unreadable++ == 0)
                first_unreadable = r.line;
            if (all == 1 && (r.flags & CSVSCAN_NUL)) {
                first_nul = 1;
                first_utf16 = looks_utf16(map + r.off, r.len);
            }
        }
        if (r.flags & CSVSCAN_UNTERMINATED)
            open_quote = r.line;
        if (r.len > max_alone && huge_line == 0) {
            huge_line = r.line;
            huge_len = r.len;
        }
        if (skip > 0) {
            skip--;
            if (skipped_bytes == 0)
                skipped_first_line = r.line;
            skipped_bytes += r.len;
            skipped_last_line = r.line + lines_within(map + r.off, r.len);
            continue;
        }
        j->records++;
        if (j->records == DUP_SAMPLE && r.off > 0) {
            /* The file's records so far tell about how many it holds. */
            uint64_t est = (uint64_t)((double)maplen / (double)(r.off + r.len) * DUP_SAMPLE * 0.9);
            if (dup_reserve(&p.keys[0], est) < 0 || (check_barcode && dup_reserve(&p.keys[1], est) < 0))
                goto oom;
        }
        if ((j->records & 0xffff) == 0) {
            broker_pump(b);
            if (*b->stopping) {
                err_set(err, errlen, "broker stopping");
                goto out;
            }
        }
        if (in_shard > 0 && r.off + r.len - shard_off > shard_bytes) {
            if (add_shard(j, shard_off, r.off, shard_first, shard_last, (uint32_t)in_shard) < 0)
                goto oom;
            in_shard = 0;
        }
        if (in_shard == 0) {
            shard_off = r.off;
            shard_first = r.line;
        }
        shard_last = r.line;
        in_shard++;
        /* Bytes the encoding could not read: the record is skipped. */
        if (bad_bytes) {
            char msg[300];
            snprintf(msg, sizeof(msg), "Line %llu: bytes invalid in %s at byte offset %llu of the file; record skipped.",
                     (unsigned long long)r.line, enc_name, (unsigned long long)rep.bad[bad].in_off);
            if (add_note(&p, r.line, 2, "", msg) == NULL)
                goto oom;
        } else if (r.flags == 0) {
            const char *k[2];
            int whole = record_keys(&p, r.off, r.len, check_barcode, k);
            if (p.ahead_n == DUP_AHEAD && dup_ahead_pop(&p) < 0)
                goto oom;
            if (*k[0] || *k[1])
                dup_ahead_push(&p, k, whole, r.off, r.len, r.line);
        }
        if (in_shard == shard_size) {
            if (add_shard(j, shard_off, r.off + r.len, shard_first, shard_last, (uint32_t)in_shard) < 0)
                goto oom;
            in_shard = 0;
        }
    }
    while (p.ahead_n > 0)
        if (dup_ahead_pop(&p) < 0)
            goto oom;
    /* A file that is not text, or that ends inside a quoted field, fails
     * the job before any record is planned: it must never pass for a short
     * file (whose missing patrons would be inactivated). */
    char utf16[200];
    utf16_evidence(&rep, utf16, sizeof(utf16));
    if (first_nul) {
        if (utf16[0])
            err_set(err, errlen,
                    "file '%s' is not a text file: line 1 holds NUL bytes: %s (UTF-16 without a byte-order mark? "
                    "give its encoding as %s, or UTF-16); no patron was changed",
                    req->file, utf16, rep.utf16_pattern);
        else
            err_set(err, errlen, "file '%s' is not a text file: line 1 holds NUL bytes%s; no patron was changed",
                    req->file,
                    first_utf16 ? " (UTF-16 without a byte-order mark? give its encoding as UTF-16LE or UTF-16BE)" : "");
        goto out;
    }
    if (utf16[0]) {
        err_set(err, errlen,
                "file '%s' does not read as %s: %s (UTF-16 without a byte-order mark? give its encoding as %s, or "
                "UTF-16); no patron was changed",
                req->file, enc_name, utf16, rep.utf16_pattern);
        goto out;
    }
    if (unreadable >= NOT_TEXT_MIN && unreadable * 100 > all * NOT_TEXT_PCT) {
        err_set(err, errlen,
                "file '%s' does not read as %s text: %llu of its %llu records hold NUL bytes or bytes invalid in %s "
                "(the first on line %llu); no patron was changed. Is it the CSV export, and is its encoding right?",
                req->file, enc_name, (unsigned long long)unreadable, (unsigned long long)all, enc_name,
                (unsigned long long)first_unreadable);
        goto out;
    }
    if (rep.bad_total > rep.nbad) {
        err_set(err, errlen,
                "file '%s' holds bytes invalid in %s in %llu places (more than %d; the first on line %llu); nothing "
                "was read. Is its encoding right?",
                req->file, enc_name, (unsigned long long)rep.bad_total, ENCODING_MAX_BAD,
                (unsigned long long)first_unreadable);
        goto out;
    }
    if (open_quote > 0) {
        /* The file's last line (a line end at the very end opens no line). */
        uint64_t last = sc.sc.line;
        if (last > open_quote && maplen > 0 && (map[maplen - 1] == '\n' || map[maplen - 1] == '\r'))
            last--;
        err_set(err, errlen,
                "file '%s': the record starting on line %llu opens a quoted field that is never closed (the file ends "
                "inside it, on line %llu), so the file is cut off or broken from line %llu on; no patron was changed",
                req->file, (unsigned long long)open_quote, (unsigned long long)last, (unsigned long long)open_quote);
        goto out;
    }
    if (huge_line > 0) {
        err_set(err, errlen,
                "file '%s': the record starting on line %llu is %llu bytes long, more than the %llu bytes a worker "
                "accepts (half of max_message_bytes); it cannot be a patron record; no patron was changed",
                req->file, (unsigned long long)huge_line, (unsigned long long)huge_len, (unsigned long long)max_alone);
        goto out;
    }
    if (in_shard > 0 && add_shard(j, shard_off, maplen, shard_first, shard_last, (uint32_t)in_shard) < 0)
        goto oom;
    /* A shard's bytes end where the next begins (line ends included), so
     * a worker's line count agrees with ours. */
    for (size_t i = 0; i + 1 < j->nshards; i++)
        j->shards[i].len = j->shards[i + 1].off - j->shards[i].off;
    if (rep.bad_total > 0) {
        char msg[300];
        snprintf(msg, sizeof(msg), "%llu place(s) in the file held bytes invalid in %s; each record holding them was skipped.",
                 (unsigned long long)rep.bad_total, enc_name);
        job_note(j, msg);
    }
    if (j->records == 0 && skipped_bytes > 0 &&
        (skipped_bytes > HEADER_MAX_BYTES ||
         skipped_last_line - skipped_first_line + 1 > (uint64_t)profile_rows_to_skip(prof) + HEADER_EXTRA_LINES)) {
        err_set(err, errlen,
                "file '%s' yields no records, though it holds %llu bytes: all of them read as its %lld row(s) to skip "
                "(the header), %llu bytes on lines %llu-%llu, where a header is one line of a few hundred bytes. Its "
                "line ends were not found: is its encoding right (%s), or does a quote on line %llu swallow the "
                "lines after it? no patron was changed",
                req->file, (unsigned long long)in.sb.st_size, (long long)profile_rows_to_skip(prof),
                (unsigned long long)skipped_bytes, (unsigned long long)skipped_first_line,
                (unsigned long long)skipped_last_line, enc_name, (unsigned long long)skipped_first_line);
        goto out;
    }
    if (j->records == 0) {
        char msg[300];
        snprintf(msg, sizeof(msg), "File '%s' holds no records (it is empty, or holds only the %lld row(s) to skip).",
                 req->file, (long long)profile_rows_to_skip(prof));
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
    if (p.nnotes > 1) /* qsort's pointer may not be NULL, even for no notes (UBSan) */
        qsort(p.notes, p.nnotes, sizeof(*p.notes), note_cmp);
    j->notes = p.notes;
    j->nnotes = p.nnotes;
    p.notes = NULL;
    p.nnotes = 0;
    if (incremental_prepare(b, j, prof, map, maplen, err, errlen) < 0)
        goto out;
    int64_t t_end = mono_ms();
    log_info("job %s: %llu records in %zu shards, %zu duplicate or unreadable lines, %s → UTF-8 %llu bytes (by %s); "
             "prepared in %lld ms (archive copy %lld, conversion %lld, records and duplicates %lld)",
             j->id, (unsigned long long)j->records, j->nshards, j->nnotes, enc_name, (unsigned long long)rep.out_bytes,
             rep.how ? rep.how : "?",
             (long long)(t_end - t_start), (long long)(t_archived - t_start), (long long)(t_converted - t_archived),
             (long long)(t_end - t_converted));
    rc = 0;
    goto out;
oom:
    err_set(err, errlen, "out of memory preparing '%s'", req->file);
out:
    if (rc < 0) {
        /* A file refused reads as no records at all. */
        j->records = 0;
        j->nshards = 0;
    }
    if (map)
        munmap(map, maplen);
    /* The copy in the archive stays where it is whatever happened. */
    if (src_fd >= 0 && src_fd != in.fd)
        close(src_fd);
    if (in.fd >= 0)
        close(in.fd);
    for (size_t i = 0; i < p.nnotes; i++) {
        free(p.notes[i]->key);
        free(p.notes[i]->message);
        free(p.notes[i]);
    }
    free(p.notes);
    dup_free(&p.keys[0]);
    dup_free(&p.keys[1]);
    csvrow_destroy(&p.row);
    csvrow_destroy(&p.vrow);
    csvrow_destroy(&p.crow);
    free(p.vbuf);
    patron_rec_free(&p.rec);
    patron_rec_free(&p.vrec);
    encoding_report_free(&rep);
    profile_destroy(&prof);
    return rc;
}
