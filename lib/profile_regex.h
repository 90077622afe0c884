/* profile_regex: regex("pattern","replacement") — the pattern compiled once
 * with its {$n} replacement, and every match in a value replaced.
 * Internal to lib/profile*. */
#ifndef PROFILE_REGEX_H
#define PROFILE_REGEX_H

#include <stddef.h>

#include "profile_scratch.h"
#include "profile_text.h"

typedef struct rx rx;

/* Compile pat (NUL-terminated) and the replacement rep[0..replen). A new
 * rx the caller frees with rx_free, or NULL with why set ("bad regular
 * expression ...", "replacement refers to group ...", "out of memory"). */
rx *rx_compile(const char *pat, const char *rep, size_t replen, char *why, size_t whylen);
void rx_free(rx *r); /* NULL-safe */
/* The pattern as written, and why its matching can blow up (a
 * backreference, nested repeats) or NULL: for profile check's warnings. */
const char *rx_pattern(const rx *r);
const char *rx_risk(const rx *r);

/* in with every match replaced (out points into sc, or is in itself when
 * nothing matched). 0 / -1 with err (no memory, or the matcher failing). */
int rx_replace(const rx *r, slice in, scratch *sc, slice *out, char *err, size_t errlen);

#endif
