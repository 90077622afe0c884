/* profile_props: the .properties reader — physical lines to key=value lines
 * (BOM, CRLF, comments and comment blocks, continuation, Java escapes), and
 * which of a key given twice is the later one. Internal to lib/profile*. */
#ifndef PROFILE_PROPS_H
#define PROFILE_PROPS_H

#include <stddef.h>

/* One key=value line (a logical line: continuation lines joined). */
typedef struct {
    char *key, *val; /* unescaped, trimmed, NUL-terminated */
    size_t keylen, vallen;
    char *text; /* the line as written, trimmed, for messages */
    int line;   /* of its first physical line */
    char *norm; /* key as compared for "the later one wins" */
    int dead;   /* superseded by a later line with the same key */
} props_line;

/* The lines of one file, in file order. */
typedef struct {
    props_line *v;
    size_t n, cap;
} props;

/* Read text[0..len) into pr (initialized here; the caller frees it with
 * props_free), marking each line a later line with the same key supersedes.
 * 0 / -1 with err "<name>:<line>: <text>: <why>" (no '=', bad escape, NUL
 * byte, unterminated comment block) or "<name>: out of memory"; pr holds
 * nothing then. */
int props_read(props *pr, const char *text, size_t len, const char *name, char *err, size_t errlen);
void props_free(props *pr);

#endif
