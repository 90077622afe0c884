/* iofault: an LD_PRELOAD shim for the write-fault sweep (issue 20,
 * tests/integration/test_chaos_iofaults.py). It counts the write points of
 * patronsync's own processes (patron-scheduler, patron-broker,
 * patron-worker and their task processes; never redis-server or the test)
 * on files under IOFAULT_ROOT: write, pwrite, pwrite64, writev, fsync,
 * fdatasync, ftruncate, rename. The count is shared by all of them through
 * the state file IOFAULT_STATE (an mmap'd page: counter, target, errno), so
 * "the Nth write" means the Nth across the cluster. When the counter
 * reaches a nonzero target, that call fails with the errno given (ENOSPC
 * or EIO) and does nothing; every other call goes through unchanged.
 * The test arms it by writing the target, and reads the counter to learn
 * how many write points a job has. A test tool, never linked into the
 * programs. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

struct state {
    uint64_t counter; /* write points seen so far */
    uint64_t target;  /* the one to fail (0: none) */
    uint64_t err;     /* its errno */
    uint64_t failed;  /* how many were failed (at most one a target) */
};

static struct state *st;
static int active = -1; /* -1 unknown, 0 not one of ours, 1 counting */
static char root[512];
static size_t rootlen;

static void setup(void)
{
    if (active >= 0)
        return;
    active = 0;
    const char *r = getenv("IOFAULT_ROOT"), *sp = getenv("IOFAULT_STATE");
    char comm[64] = "";
    FILE *f = fopen("/proc/self/comm", "r");
    if (f != NULL) {
        if (fgets(comm, sizeof(comm), f) == NULL)
            comm[0] = '\0';
        fclose(f);
    }
    if (r == NULL || sp == NULL || strncmp(comm, "patron-", 7) != 0)
        return;
    int fd = open(sp, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return;
    void *m = mmap(NULL, sizeof(struct state), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED)
        return;
    st = m;
    snprintf(root, sizeof(root), "%s/", r);
    rootlen = strlen(root);
    active = 1;
}

static int under_root(const char *path)
{
    return strncmp(path, root, rootlen) == 0 && strstr(path + rootlen, "logs/") != path + rootlen;
}

static int fd_under_root(int fd)
{
    char link[64], path[1024];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof(path) - 1);
    if (n <= 0)
        return 0;
    path[n] = '\0';
    return under_root(path);
}

/* 1: fail this call (errno set). */
static int hit(int counted)
{
    if (!counted)
        return 0;
    uint64_t n = __atomic_add_fetch(&st->counter, 1, __ATOMIC_SEQ_CST);
    uint64_t target = __atomic_load_n(&st->target, __ATOMIC_SEQ_CST);
    if (target == 0 || n != target)
        return 0;
    __atomic_add_fetch(&st->failed, 1, __ATOMIC_SEQ_CST);
    errno = (int)st->err;
    return 1;
}

static int fd_point(int fd)
{
    setup();
    return active == 1 && hit(fd_under_root(fd));
}

/* The next definition of name (libc's), looked up once. */
#define REAL(name)                                \
    static __typeof__(name) *real_##name;         \
    if (real_##name == NULL)                      \
    real_##name = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

ssize_t write(int fd, const void *buf, size_t n)
{
    REAL(write);
    if (fd > 2 && fd_point(fd))
        return -1;
    return real_write(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    REAL(pwrite);
    if (fd_point(fd))
        return -1;
    return real_pwrite(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
    REAL(pwrite64);
    if (fd_point(fd))
        return -1;
    return real_pwrite64(fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    REAL(writev);
    if (fd > 2 && fd_point(fd))
        return -1;
    return real_writev(fd, iov, cnt);
}

int fsync(int fd)
{
    REAL(fsync);
    if (fd_point(fd))
        return -1;
    return real_fsync(fd);
}

int fdatasync(int fd)
{
    REAL(fdatasync);
    if (fd_point(fd))
        return -1;
    return real_fdatasync(fd);
}

int ftruncate(int fd, off_t len)
{
    REAL(ftruncate);
    if (fd_point(fd))
        return -1;
    return real_ftruncate(fd, len);
}

int rename(const char *from, const char *to)
{
    REAL(rename);
    setup();
    if (active == 1 && hit(under_root(to)))
        return -1;
    return real_rename(from, to);
}
