/* profile_regex: regex() in profile expressions, POSIX extended (see
 * profile_regex.h and docs/PROFILE.md §3). */
#include "profile_regex.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define MAX_GROUP 9 /* {$0}..{$9} in a replacement */

typedef struct {
    int group; /* -1: literal text */
    char *text;
    size_t len;
} repl_piece;

struct rx {
    regex_t re;
    int compiled;
    repl_piece *repl;
    int nrepl;
    size_t replcap;
};

void rx_free(rx *r)
{
    if (r == NULL)
        return;
    if (r->compiled)
        regfree(&r->re);
    for (int i = 0; i < r->nrepl; i++)
        free(r->repl[i].text);
    free(r->repl);
    free(r);
}

/* Append a replacement piece: literal text (group -1, empty text skipped) or a group. */
static int push_piece(rx *r, int group, const char *text, size_t len)
{
    if (group < 0 && len == 0)
        return 0;
    if (array_grow(&r->repl, &r->replcap, (size_t)r->nrepl + 1, sizeof(*r->repl), 4) != 0)
        return -1;
    repl_piece *rp = &r->repl[r->nrepl];
    rp->group = group;
    rp->len = len;
    rp->text = NULL;
    if (group < 0) {
        rp->text = txt_dup(text, len);
        if (rp->text == NULL)
            return -1;
    }
    r->nrepl++;
    return 0;
}

/* The replacement cut into literal text and {$n} groups (n up to the
 * pattern's group count). 0 / -1 with why. */
static int parse_replacement(rx *r, size_t ngroups, const char *rep, size_t replen, char *why, size_t whylen)
{
    size_t lit = 0, i = 0;
    while (i < replen) {
        if (rep[i] == '{' && i + 1 < replen && rep[i + 1] == '$') {
            size_t j = i + 2;
            long v = 0;
            while (j < replen && j < i + 6 && txt_is_digit((unsigned char)rep[j]))
                v = v * 10 + (rep[j++] - '0');
            if (j > i + 2 && j < replen && rep[j] == '}') {
                if (v > MAX_GROUP || (size_t)v > ngroups) {
                    snprintf(why, whylen, "replacement refers to group {$%ld}; the pattern has %zu", v, ngroups);
                    return -1;
                }
                if (push_piece(r, -1, rep + lit, i - lit) != 0 || push_piece(r, (int)v, NULL, 0) != 0)
                    goto oom;
                i = j + 1;
                lit = i;
                continue;
            }
        }
        i++;
    }
    if (push_piece(r, -1, rep + lit, replen - lit) != 0)
        goto oom;
    return 0;
oom:
    snprintf(why, whylen, "out of memory");
    return -1;
}

rx *rx_compile(const char *pat, const char *rep, size_t replen, char *why, size_t whylen)
{
    rx *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    int rc = regcomp(&r->re, pat, REG_EXTENDED);
    if (rc != 0) {
        char msg[200];
        regerror(rc, &r->re, msg, sizeof(msg));
        snprintf(why, whylen, "bad regular expression \"%s\": %s", pat, msg);
        rx_free(r);
        return NULL;
    }
    r->compiled = 1;
    if (parse_replacement(r, r->re.re_nsub, rep, replen, why, whylen) != 0) {
        rx_free(r);
        return NULL;
    }
    return r;
}

/* Append the replacement of one match (m: its groups) to b. */
static int put_replacement(const rx *r, slice in, const regmatch_t *m, scratch *sc, sc_str *b)
{
    for (int k = 0; k < r->nrepl; k++) {
        const repl_piece *rp = &r->repl[k];
        if (rp->group < 0) {
            if (sc_put(sc, b, rp->text, rp->len) != 0)
                return -1;
        } else if (m[rp->group].rm_so >= 0) {
            size_t gs = (size_t)m[rp->group].rm_so, ge = (size_t)m[rp->group].rm_eo;
            if (sc_put(sc, b, in.p + gs, ge - gs) != 0)
                return -1;
        }
    }
    return 0;
}

int rx_replace(const rx *r, slice in, scratch *sc, slice *out, char *err, size_t errlen)
{
    regmatch_t m[MAX_GROUP + 1];
    sc_str b = {NULL, 0, 0};
    size_t pos = 0;
    int matched = 0;
    while (pos <= in.len) {
        m[0].rm_so = (regoff_t)pos;
        m[0].rm_eo = (regoff_t)in.len;
        int rc = regexec(&r->re, in.p, MAX_GROUP + 1, m, REG_STARTEND);
        if (rc == REG_NOMATCH)
            break;
        if (rc != 0) {
            char msg[160];
            regerror(rc, &r->re, msg, sizeof(msg));
            err_set(err, errlen, "regular expression failed on \"%.*s\": %s", (int)(in.len > 80 ? 80 : in.len),
                    in.p, msg);
            return -1;
        }
        matched = 1;
        size_t so = (size_t)m[0].rm_so, eo = (size_t)m[0].rm_eo;
        if (sc_put(sc, &b, in.p + pos, so - pos) != 0 || put_replacement(r, in, m, sc, &b) != 0)
            return sc_oom(err, errlen);
        if (eo > so) {
            pos = eo;
            continue;
        }
        /* an empty match: keep the next character and search after it */
        if (so >= in.len) {
            pos = in.len + 1;
            break;
        }
        size_t cl = 1;
        while (so + cl < in.len && ((unsigned char)in.p[so + cl] & 0xC0) == 0x80)
            cl++;
        if (sc_put(sc, &b, in.p + so, cl) != 0)
            return sc_oom(err, errlen);
        pos = so + cl;
    }
    if (!matched) {
        *out = in;
        return 0;
    }
    if (pos < in.len && sc_put(sc, &b, in.p + pos, in.len - pos) != 0)
        return sc_oom(err, errlen);
    *out = txt_slice(b.p, b.len);
    return 0;
}
