/* util: small helpers every module uses: error buffers, growable strings,
 * hashing, time, files. */
#ifndef UTIL_H
#define UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define ERRLEN 512

/* Write one formatted line into a caller-supplied error buffer (NULL-safe). */
void err_set(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Make *buf (of *cap bytes) hold at least need bytes, doubling from
 * `first` (its contents kept). 0 / -1 (no memory; *buf unchanged). */
int buf_reserve(char **buf, size_t *cap, size_t need, size_t first);
/* The one growing-array helper: make the array *arrp (a T **, of *cap
 * elements of `size` bytes) hold at least need elements, doubling from
 * `first` (contents kept). 0 / -1 (no memory; the array unchanged). */
int array_grow(void *arrp, size_t *cap, size_t need, size_t size, size_t first);

/* Growable byte string, always NUL-terminated when non-empty. */
typedef struct {
    char *buf;
    size_t len, cap;
} strbuf;

void sb_init(strbuf *sb);
void sb_free(strbuf *sb);
void sb_reset(strbuf *sb);
int sb_append(strbuf *sb, const char *s, size_t len);
int sb_puts(strbuf *sb, const char *s);
int sb_printf(strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append s as a JSON string literal (quotes included). */
int sb_json_str(strbuf *sb, const char *s, size_t len);
/* The contents ("" when empty); owned by sb. */
const char *sb_str(const strbuf *sb);

/* 64-bit FNV-1a, stable across processes and versions (stored on disk). */
uint64_t hash64(const void *data, size_t len, uint64_t seed);
#define HASH64_SEED 0xcbf29ce484222325ULL
/* A 64-bit hash of a long byte string (a record's row), several times
 * faster than hash64 there: 8 bytes a step (XXH64's rounds). Also stable
 * across processes, versions and machines (stored on disk). */
uint64_t hash64_fast(const void *data, size_t len, uint64_t seed);

/* Wall clock, milliseconds since the epoch, and a monotonic clock in ms. */
int64_t now_ms(void);
int64_t mono_ms(void);

/* Parse a decimal integer in [min,max]; the whole string must be a number.
 * 0 / -1. */
int parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);

/* Read a whole file (up to max bytes) into a new NUL-terminated buffer the
 * caller frees. NULL and err on failure. */
char *file_read_all(const char *path, size_t max, size_t *len, char *err, size_t errlen);
/* Write data to path atomically (temp file, fsync, rename). 0 / -1. */
int file_write_atomic(const char *path, const void *data, size_t len, char *err, size_t errlen);
/* Copy in_fd (from where it is) to out_fd, in the kernel where it can, at
 * most limit bytes, starting the write to disk of each chunk as it goes;
 * the bytes copied into *copied; tick(arg), when given, after each chunk.
 * 0 / -1 with err. */
int fd_copy(int in_fd, int out_fd, uint64_t limit, uint64_t *copied, void (*tick)(void *), void *arg, char *err,
            size_t errlen);
/* Copy the file src to path atomically (temp file, fsync, rename), in the
 * kernel where it can; more than max bytes is an error. 0 / -1. */
int file_copy_atomic(const char *src, const char *path, size_t max, char *err, size_t errlen);
/* Write data to path only if path does not exist yet (temp file, fsync,
 * link): 0 written, 1 when it already existed (left as it was), -1 error. */
int file_write_once(const char *path, const void *data, size_t len, char *err, size_t errlen);
/* mkdir -p. 0 / -1. */
int mkdir_p(const char *path, int mode, char *err, size_t errlen);

/* Double an open-addressing hash table of 64-bit entries (0: empty; *cap
 * a power of two, 0 at first: `first` entries), each entry placed again
 * from home(entry) on. 0 / -1 (no memory; the table unchanged). */
int hashtab_grow(uint64_t **v, size_t *cap, size_t first, size_t (*home)(uint64_t entry));

/* A set of strings: the bytes in one arena, an open-addressing table of
 * 8-byte slots (32-bit hash, arena offset) kept at most half full — about
 * 17 bytes plus the key per member, and no allocation per member. */
typedef struct {
    uint64_t *slot; /* 0: empty; else hash32 << 32 | (arena offset + 1) */
    size_t cap, n;
    char *arena;
    size_t alen, acap;
} strset;

void strset_init(strset *s);
void strset_free(strset *s); /* and empty it (init again) */
/* 1 when the len bytes at k are a member, else 0. */
int strset_has(const strset *s, const char *k, size_t len);
/* Add: 1 added, 0 already a member, -1 out of memory (the set unchanged). */
int strset_add(strset *s, const char *k, size_t len);

/* Copy at most dstlen-1 bytes and always terminate (NULL-safe src). */
void str_copy(char *dst, size_t dstlen, const char *src);

/* Put the formatted text before what err holds (the reason stays whole
 * as far as errlen allows): "field_lastName: " + "regular expression ...". */
void err_prefix(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
