/* test_util: lib/util's file functions (whole-file read, atomic copy) and
 * the string set the bulk load keeps its keys in. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "t.h"
#include "util.h"

static char dir[256];

static void path_in(char *out, size_t outlen, const char *name)
{
    snprintf(out, outlen, "%s/%s", dir, name);
}

static void write_bytes(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return;
    fwrite(data, 1, len, f);
    fclose(f);
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* hash64_fast: XXH64's values under 32 bytes (its published vectors), a
 * value fixed for a long row (memos are stored: it must never change), and
 * no collision among a million similar rows nor any one-bit change. */
static void fast_hash(void)
{
    CHECK(hash64_fast("", 0, 0) == 0xEF46DB3751D8E999ULL);
    CHECK(hash64_fast("abc", 3, 0) == 0x44BC2CF5AD770999ULL);
    const char *row = "41415926,20451271828182,Lopez,Wei,Henry,,Student,Elementary Student,114,138 - Martin,K,M,"
                      "01/23/2019,2037,2037-06-30,wei.lopez67@students.maplecreekisd.org,(214) 555-9685,"
                      "\"3449 Sunset St, Apt 196\",Oak Hollow,TX,75035,";
    uint64_t fixed = hash64_fast(row, strlen(row), HASH64_SEED);
    CHECK(fixed == 0xfd7a6ab4c23e0255ULL);
    size_t n = 1000000;
    uint64_t *v = malloc((n + 8 * 64) * sizeof(*v));
    CHECK(v != NULL);
    if (v == NULL)
        return;
    char buf[128];
    for (size_t i = 0; i < n; i++) {
        int len = snprintf(buf, sizeof(buf), "%08zu,2045127%07zu,Lopez,Wei,,Student,114,K,M,01/23/2019", i * 7919 % n, i);
        v[i] = hash64_fast(buf, (size_t)len, HASH64_SEED);
    }
    char flip[64];
    memcpy(flip, row, sizeof(flip));
    for (size_t b = 0; b < sizeof(flip) * 8; b++) {
        flip[b / 8] ^= (char)(1 << (b % 8));
        v[n + b] = hash64_fast(flip, sizeof(flip), 7);
        flip[b / 8] ^= (char)(1 << (b % 8));
    }
    qsort(v, n + 8 * 64, sizeof(*v), u64_cmp);
    size_t same = 0;
    for (size_t i = 1; i < n + 8 * 64; i++)
        same += v[i] == v[i - 1];
    CHECK(same == 0);
    free(v);
}

static void read_all_sizes(void)
{
    char path[512], err[256];
    /* empty, one byte, around the first read, over 64 KiB (several reads) */
    size_t sizes[] = {0, 1, 255, 256, 257, 65535, 65536, 65537, 1000003};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t n = sizes[k];
        char *data = malloc(n + 1);
        for (size_t i = 0; i < n; i++)
            data[i] = (char)('a' + (i * 7 + k) % 26);
        path_in(path, sizeof(path), "r.bin");
        write_bytes(path, data, n);
        size_t len = 99;
        char *got = file_read_all(path, (size_t)1 << 30, &len, err, sizeof(err));
        CHECK(got != NULL);
        CHECK(len == n);
        CHECK(got != NULL && memcmp(got, data, n) == 0);
        CHECK(got != NULL && got[n] == '\0'); /* NUL-terminated, the empty file too */
        CHECK(got != NULL && strlen(got) == n);
        free(got);
        free(data);
    }
    CHECK(file_read_all(path, 10, NULL, err, sizeof(err)) == NULL); /* over max */
    CHECK(strstr(err, "larger than") != NULL);
    path_in(path, sizeof(path), "missing");
    CHECK(file_read_all(path, 10, NULL, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "cannot open") != NULL && strstr(err, "missing") != NULL);
}

static void copy_atomic(void)
{
    char src[512], dst[512], err[256];
    path_in(src, sizeof(src), "src.csv");
    path_in(dst, sizeof(dst), "dst.csv");
    size_t n = 3000001;
    char *data = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (char)(i % 251);
    write_bytes(src, data, n);
    CHECK(file_copy_atomic(src, dst, n, err, sizeof(err)) == 0);
    size_t len = 0;
    char *got = file_read_all(dst, n, &len, err, sizeof(err));
    CHECK(got != NULL && len == n && memcmp(got, data, n) == 0);
    free(got);
    /* over max: refused by name, nothing left behind at dst's new name */
    char dst2[512];
    path_in(dst2, sizeof(dst2), "dst2.csv");
    CHECK(file_copy_atomic(src, dst2, n - 1, err, sizeof(err)) < 0);
    CHECK(strstr(err, "larger than") != NULL && strstr(err, "src.csv") != NULL);
    CHECK(access(dst2, F_OK) != 0);
    /* an empty file copies as empty */
    write_bytes(src, "", 0);
    CHECK(file_copy_atomic(src, dst, 10, err, sizeof(err)) == 0);
    got = file_read_all(dst, 10, &len, err, sizeof(err));
    CHECK(got != NULL && len == 0);
    free(got);
    path_in(src, sizeof(src), "nope.csv");
    CHECK(file_copy_atomic(src, dst, 10, err, sizeof(err)) < 0);
    CHECK(strstr(err, "nope.csv") != NULL);
    free(data);
}

static void strset_many(void)
{
    strset s;
    strset_init(&s);
    char k[32];
    int ok = 1;
    for (int i = 0; i < 200000 && ok; i++) {
        int n = snprintf(k, sizeof(k), "%d", i * 3);
        ok = strset_add(&s, k, (size_t)n) == 1;
    }
    CHECK(ok);
    for (int i = 0; i < 200000 && ok; i++) {
        int n = snprintf(k, sizeof(k), "%d", i * 3);
        ok = strset_add(&s, k, (size_t)n) == 0 && strset_has(&s, k, (size_t)n);
        n = snprintf(k, sizeof(k), "%d", i * 3 + 1);
        ok = ok && !strset_has(&s, k, (size_t)n);
    }
    CHECK(ok);
    CHECK(strset_add(&s, "a\0b", 3) < 0); /* keys are C strings */
    strset_free(&s);
}

int main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/test_util.%d", (int)getpid());
    mkdir(dir, 0700);
    T_RUN(fast_hash);
    T_RUN(read_all_sizes);
    T_RUN(copy_atomic);
    T_RUN(strset_many);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        printf("could not remove %s\n", dir);
    T_END();
}
