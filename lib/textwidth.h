/* textwidth: the display width of UTF-8 text (terminal columns), to align
 * text tables whatever the names in them. */
#ifndef TEXTWIDTH_H
#define TEXTWIDTH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "util.h"

/* Columns one code point takes: 0 (combining marks, zero-width and format
 * characters, controls), 2 (East Asian wide and fullwidth) or 1. */
int textwidth_cp(uint32_t cp);

/* Columns the UTF-8 text s[0..len) takes: the sum over its code points.
 * A byte that starts no well-formed sequence counts as one U+FFFD (1). */
size_t textwidth(const char *s, size_t len);
/* The same for a NUL-terminated string; NULL is 0. */
size_t textwidth_str(const char *s);

/* Append s (NULL: "") to out, then spaces up to `width` columns (none when
 * s is as wide or wider). 0, or -1 when out of memory. */
int textwidth_pad(strbuf *out, const char *s, size_t width);

#endif
