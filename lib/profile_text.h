/* profile_text: the text helpers the profile modules share — slices, ASCII
 * classes, case without regard to case (ASCII, Latin-1, Latin Extended-A),
 * bounded numbers, and the one-line parse message. Internal to lib/profile*. */
#ifndef PROFILE_TEXT_H
#define PROFILE_TEXT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* A piece of text that is not NUL-terminated. */
typedef struct {
    const char *p; /* never NULL ("" when empty) */
    size_t len;
} slice;

/* s[0..len); NULL gives the empty slice. */
static inline slice txt_slice(const char *p, size_t len)
{
    slice s;
    s.p = p ? p : "";
    s.len = p ? len : 0;
    return s;
}

static inline int txt_is_blank(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

static inline int txt_is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static inline int txt_is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline int txt_lower_ascii(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

/* s without the blanks around it. */
static inline slice txt_trim(slice s)
{
    while (s.len > 0 && txt_is_blank((unsigned char)s.p[0])) {
        s.p++;
        s.len--;
    }
    while (s.len > 0 && txt_is_blank((unsigned char)s.p[s.len - 1]))
        s.len--;
    return s;
}

/* s[0..n) equals the word w, ASCII case ignored. */
int txt_ci_eq(const char *s, size_t n, const char *w);
/* s[0..n) starts with the word w, ASCII case ignored. */
int txt_ci_prefix(const char *s, size_t n, const char *w);
/* A non-negative decimal number, digits only, in [min,max]. 0 / -1. */
int txt_int(slice s, long min, long max, long *out);
/* A new NUL-terminated copy of s[0..n) the caller frees; NULL: no memory. */
char *txt_dup(const char *s, size_t n);
/* out[0..n) = in[0..n) in upper or lower case (out may equal in); the byte
 * length never changes. */
void txt_case_map(const char *in, size_t n, char *out, int upper);
/* Equal without regard to case (the letters txt_case_map changes). */
int txt_fold_eq(slice a, slice b);

/* err = "<name>:<line>: <text>: <why>", the form of every refusal. */
void txt_line_err(char *err, size_t errlen, const char *name, int line, const char *text, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
void txt_line_verr(char *err, size_t errlen, const char *name, int line, const char *text, const char *fmt,
                   va_list ap) __attribute__((format(printf, 6, 0)));
/* err = "<name>: out of memory"; returns -1. */
int txt_oom(char *err, size_t errlen, const char *name);

#endif
