/* input: a job's input file — resolved strictly under the import root,
 * waited for until it is still, opened without following a swapped-in
 * link or blocking on a FIFO, and kept as a copy in the archive. */
#include "input.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
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

int input_resolve(const char *root, const char *name, char *out, size_t outlen, char *err, size_t errlen)
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
int input_open(const ps_config *c, const char *name, const keepalive *ka, input_file *in, char *err, size_t errlen)
{
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
        if (input_resolve(c->import_root, name, path, sizeof(path), err, errlen) < 0)
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
        if (keepalive_tick(ka)) {
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
        if (array_grow(&names, &cap, n + 1, sizeof(*names), 16) < 0)
            break;
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

#define JUDGE_HEAD 65536            /* bytes read of the file's start */
#define SPARSE_MIN (1LL << 20)      /* files smaller are never called sparse */

int input_judge(const ps_config *c, const input_file *in, const char *name, char *err, size_t errlen)
{
    long long size = (long long)in->sb.st_size, on_disk = (long long)in->sb.st_blocks * 512;
    if (c->max_file_bytes > 0 && size > c->max_file_bytes) {
        err_set(err, errlen, "file '%s' is %lld bytes, over the limit of %lld bytes (max_file_bytes); not read", name,
                size, (long long)c->max_file_bytes);
        return -1;
    }
    if (size >= SPARSE_MIN && on_disk < size / 8) {
        err_set(err, errlen, "file '%s' is a sparse file (%lld bytes long, %lld bytes on disk: its holes read as NUL "
                "bytes), not a text export; not read", name, size, on_disk);
        return -1;
    }
    char head[JUDGE_HEAD];
    ssize_t n = pread(in->fd, head, sizeof(head), 0);
    if (n < 0) {
        err_set(err, errlen, "file '%s': cannot read: %s", name, strerror(errno));
        return -1;
    }
    ssize_t nul = 0;
    while (nul < n && head[nul] == '\0')
        nul++;
    if (n >= 4096 && nul == n) {
        err_set(err, errlen, "file '%s' starts with %zd NUL bytes and nothing else: not a text export; not read", name,
                n);
        return -1;
    }
    return 0;
}

int input_is_run_now(const Patronsync__JobRequest *req)
{
    return (req->schedule == NULL || req->schedule[0] == '\0') && strncmp(req->file, "adhoc/", 6) == 0;
}

/* A run-now's file is patronctl's own copy of the operator's file
 * (input_is_run_now): while it has no other name
 * it becomes the archive's copy by a hard link to the very file opened,
 * made read-only, instead of a second copy of its bytes. 0 when linked;
 * -1 to copy instead (a scheduled file, which its exporter may rewrite in
 * place; another name; an archive on another file system; no /proc). */
static int archive_link(const Patronsync__JobRequest *req, const input_file *in, const char *tmp, const char *path)
{
    if (!input_is_run_now(req))
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
int input_archive(const ps_config *c, const Patronsync__JobRequest *req, const char *job_id, const input_file *in,
                  const keepalive *ka, char *path_out, size_t path_outlen, char *err, size_t errlen)
{
    char folder[128], dir[CONFIG_STR + 160], base[128], when[32];
    archive_folder(req->schedule, folder, sizeof(folder));
    snprintf(dir, sizeof(dir), "%s/%s", c->archive_dir, folder);
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
    snprintf(path, sizeof(path), "%s/%s_%s_%s", dir, when, job_id, base);
    snprintf(tmp, sizeof(tmp), "%s/.%s_%s.tmp", dir, when, job_id);
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
    if (fd_copy(in->fd, fd, (uint64_t)in->sb.st_size + 1, &copied, ka ? ka->fn : NULL, ka ? ka->ctx : NULL, e, sizeof(e)) < 0) {
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
    archive_prune(dir, c->archive_keep);
    str_copy(path_out, path_outlen, path);
    return fd;
err:
    close(fd);
    unlink(tmp);
    return -1;
}
