/* profile_text: text helpers shared by the profile modules (see profile_text.h). */
#include "profile_text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

int txt_ci_eq(const char *s, size_t n, const char *w)
{
    size_t wl = strlen(w);
    return n == wl && strncasecmp(s, w, n) == 0;
}

int txt_ci_prefix(const char *s, size_t n, const char *w)
{
    size_t wl = strlen(w);
    return n >= wl && strncasecmp(s, w, wl) == 0;
}

int txt_int(slice s, long min, long max, long *out)
{
    if (s.len == 0)
        return -1;
    long v = 0;
    for (size_t i = 0; i < s.len; i++) {
        if (!txt_is_digit((unsigned char)s.p[i]))
            return -1;
        if (v > (max - (s.p[i] - '0')) / 10)
            return -1;
        v = v * 10 + (s.p[i] - '0');
    }
    if (v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

char *txt_dup(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d == NULL)
        return NULL;
    if (n > 0)
        memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static int upper_ascii(int c)
{
    return (c >= 'a' && c <= 'z') ? c - 32 : c;
}

/* Case of letters: ASCII, Latin-1 and Latin Extended-A (U+0000..U+017F).
 * Every mapping keeps the UTF-8 length, so values are converted in place. */
static uint32_t cp_lower(uint32_t c)
{
    if (c >= 'A' && c <= 'Z')
        return c + 32;
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7)
        return c + 32;
    if (c == 0x178)
        return 0xFF;
    if (((c >= 0x100 && c <= 0x137) || (c >= 0x14A && c <= 0x177)) && c != 0x130 && (c & 1) == 0)
        return c + 1;
    if (((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) && (c & 1) == 1)
        return c + 1;
    return c;
}

static uint32_t cp_upper(uint32_t c)
{
    if (c >= 'a' && c <= 'z')
        return c - 32;
    if (c >= 0xE0 && c <= 0xFE && c != 0xF7)
        return c - 32;
    if (c == 0xFF)
        return 0x178;
    if (((c >= 0x101 && c <= 0x137) || (c >= 0x14B && c <= 0x177)) && c != 0x131 && (c & 1) == 1)
        return c - 1;
    if (((c >= 0x13A && c <= 0x148) || (c >= 0x17A && c <= 0x17E)) && (c & 1) == 0)
        return c - 1;
    return c;
}

/* Code point at s[i] when it is one this module changes case of (ASCII or
 * a two-byte sequence up to U+017F); *clen is its byte length. Any other
 * byte is returned as 0x80000000|byte with *clen 1. */
static uint32_t cp_at(const char *s, size_t n, size_t i, size_t *clen)
{
    unsigned char b = (unsigned char)s[i];
    *clen = 1;
    if (b < 0x80)
        return b;
    if (b >= 0xC2 && b <= 0xC5 && i + 1 < n && ((unsigned char)s[i + 1] & 0xC0) == 0x80) {
        *clen = 2;
        return ((uint32_t)(b & 0x1F) << 6) | ((unsigned char)s[i + 1] & 0x3F);
    }
    return 0x80000000u | b;
}

void txt_case_map(const char *in, size_t n, char *out, int upper)
{
    size_t i = 0;
    while (i < n) {
        size_t cl;
        uint32_t c = cp_at(in, n, i, &cl);
        if (cl == 1) {
            out[i] = (c & 0x80000000u) ? in[i] : (char)(upper ? upper_ascii((int)c) : txt_lower_ascii((int)c));
        } else {
            uint32_t m = upper ? cp_upper(c) : cp_lower(c);
            out[i] = (char)(0xC0 | (m >> 6));
            out[i + 1] = (char)(0x80 | (m & 0x3F));
        }
        i += cl;
    }
}

int txt_fold_eq(slice a, slice b)
{
    if (a.len != b.len)
        return 0;
    size_t i = 0;
    while (i < a.len) {
        size_t la, lb;
        uint32_t ca = cp_at(a.p, a.len, i, &la);
        uint32_t cb = cp_at(b.p, b.len, i, &lb);
        if (la != lb)
            return 0;
        if (!(ca & 0x80000000u))
            ca = cp_lower(ca);
        if (!(cb & 0x80000000u))
            cb = cp_lower(cb);
        if (ca != cb)
            return 0;
        i += la;
    }
    return 1;
}


void txt_line_verr(char *err, size_t errlen, const char *name, int line, const char *text, const char *fmt,
                   va_list ap)
{
    char why[384];
    vsnprintf(why, sizeof(why), fmt, ap);
    err_set(err, errlen, "%s:%d: %s: %s", name, line, text, why);
}

void txt_line_err(char *err, size_t errlen, const char *name, int line, const char *text, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    txt_line_verr(err, errlen, name, line, text, fmt, ap);
    va_end(ap);
}

int txt_oom(char *err, size_t errlen, const char *name)
{
    err_set(err, errlen, "%s: out of memory", name);
    return -1;
}
