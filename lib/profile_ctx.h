/* profile_ctx: the parse context the profile's passes share — the live lines
 * of the file, each sorted into its class of key, and the one-line refusal.
 * Internal to lib/profile*. */
#ifndef PROFILE_CTX_H
#define PROFILE_CTX_H

#include <stddef.h>

#include "profile.h"
#include "profile_props.h"

enum kclass {
    K_ERROR,
    K_ENCODING,
    K_MATCH_DID,
    K_ROWS_SKIP,
    K_SITE_DEFAULT,
    K_UPDATE_BEFORE_DELETE,
    K_TYPE_TOTAL,
    K_MODE,
    K_MAX,
    K_WHEN,
    K_TYPE_COL,
    K_FIELD,
    K_MAP
};

/* A line no later line supersedes (its text owned by the props), and what
 * the passes found it to be. */
typedef struct {
    const char *key, *val; /* unescaped, trimmed, NUL-terminated */
    size_t keylen, vallen;
    const char *text; /* the line as written, trimmed, for messages */
    int line;
    enum kclass cls;
    int a, b;      /* class arguments: rule kind / field / column, N */
    int map, ment; /* K_MAP: map index and entry index (-1: the default) */
} entry;

typedef struct {
    profile *p;
    const char *name;
    props pr;
    entry *ents; /* the live lines of pr, in file order */
    size_t n;
    char *err;
    size_t errlen;
} pctx;

/* Read text into c (c->p, name, err, errlen set by the caller): the lines
 * and their entries. 0 / -1 with the message set; pctx_free either way. */
int pctx_read(pctx *c, const char *text, size_t len);
void pctx_free(pctx *c);

/* err = "<name>:<line>: <text>: <why>". */
void pctx_err(pctx *c, int line, const char *text, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* err = "<name>: out of memory"; returns -1. */
int pctx_oom(pctx *c);

#endif
