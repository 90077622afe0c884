/* profile_regex: regex() in profile expressions, in PCRE2 (Perl's and
 * Java's syntax, as Destiny's patterns are written) with bounded cost: a
 * match limit, a depth limit and a heap limit, so that a pattern like
 * ^(a+)+\1$ on a long value ends with an error on that record instead of
 * running for hours (see profile_regex.h and docs/PROFILE.md §3). */
#include "profile_regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
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

/* The bounds of one match attempt: enough for any sane pattern on a field
 * of a patron file (a 32 KB field is a few thousand steps for a linear
 * pattern), small enough that the worst pattern ends in well under a second. */
#define RX_MATCH_LIMIT 1000000u /* calls of the internal match() */
#define RX_DEPTH_LIMIT 10000u   /* backtracking depth */
#define RX_HEAP_LIMIT 65536u    /* KiB of backtracking memory */

struct rx {
    pcre2_code *re;
    pcre2_match_context *mctx;
    char *pattern;
    const char *risk; /* why the pattern can blow up, or NULL */
    repl_piece *repl;
    int nrepl;
    size_t replcap;
};

void rx_free(rx *r)
{
    if (r == NULL)
        return;
    pcre2_match_context_free(r->mctx);
    free(r->pattern);
    pcre2_code_free(r->re);
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

/* The length of the quantifier at p ('*', '+', '?', '{n}', '{n,}',
 * '{n,m}'), 0 when none; *unbounded: it has no upper bound. A possessive
 * '+' after it is part of it (and makes it safe: *unbounded stays 0). */
static size_t quantifier(const char *p, int *unbounded)
{
    size_t n = 0;
    *unbounded = 0;
    if (*p == '*' || *p == '+') {
        *unbounded = 1;
        n = 1;
    } else if (*p == '?') {
        n = 1;
    } else if (*p == '{') {
        size_t i = 1;
        while (txt_is_digit((unsigned char)p[i]))
            i++;
        if (i == 1)
            return 0;
        if (p[i] == ',') {
            i++;
            *unbounded = !txt_is_digit((unsigned char)p[i]);
            while (txt_is_digit((unsigned char)p[i]))
                i++;
        }
        if (p[i] != '}')
            return 0;
        n = i + 1;
    }
    if (n > 0 && p[n] == '+') { /* possessive: never backtracks */
        *unbounded = 0;
        n++;
    } else if (n > 0 && p[n] == '?') {
        n++;
    }
    return n;
}

/* Why the pattern's matching can take time growing as a power of a
 * value's length, or NULL: a backreference, or a repeated group holding an
 * unbounded repeat of its own (nested quantifiers, as in (a+)+). A
 * heuristic for `patronctl profile check`; the match limits bound the cost
 * whatever it says. */
static const char *pattern_risk(const char *pat)
{
    enum { DEPTH = 64 };
    int inner[DEPTH] = {0}; /* per open group: it holds an unbounded repeat */
    int depth = 0, after_group = 0, group_inner = 0;
    for (size_t i = 0; pat[i] != '\0';) {
        int unb = 0;
        size_t q = quantifier(pat + i, &unb);
        if (q > 0) {
            if (unb && after_group && group_inner)
                return "a repeated group holds a repeat of its own (like (a+)+): a value that almost matches "
                       "can take time growing as a power of its length";
            if (unb && depth > 0)
                inner[depth - 1] = 1;
            after_group = 0;
            i += q;
            continue;
        }
        after_group = 0;
        char c = pat[i];
        if (c == '\\') {
            char d = pat[i + 1];
            if ((d >= '1' && d <= '9') || d == 'g' || d == 'k')
                return "a backreference (like \\1): matching it can take time growing as a power of a value's "
                       "length";
            i += d ? 2 : 1;
        } else if (c == '[') {
            size_t j = i + 1;
            if (pat[j] == '^')
                j++;
            if (pat[j] == ']')
                j++;
            while (pat[j] && pat[j] != ']')
                j += pat[j] == '\\' && pat[j + 1] ? 2 : 1;
            i = pat[j] ? j + 1 : j;
        } else if (c == '(') {
            if (depth < DEPTH)
                inner[depth] = 0;
            depth++;
            i++;
        } else if (c == ')') {
            if (depth > 0) {
                depth--;
                group_inner = depth < DEPTH ? inner[depth] : 1;
                if (group_inner && depth > 0 && depth - 1 < DEPTH)
                    inner[depth - 1] = 1;
            }
            after_group = 1;
            i++;
        } else {
            i++;
        }
    }
    return NULL;
}

const char *rx_risk(const rx *r)
{
    return r->risk;
}

const char *rx_pattern(const rx *r)
{
    return r->pattern;
}

rx *rx_compile(const char *pat, const char *rep, size_t replen, char *why, size_t whylen)
{
    rx *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    int ec = 0;
    PCRE2_SIZE eo = 0;
    r->re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &ec, &eo, NULL);
    if (r->re == NULL) {
        PCRE2_UCHAR msg[200];
        pcre2_get_error_message(ec, msg, sizeof(msg));
        snprintf(why, whylen, "bad regular expression \"%s\": %s at character %zu", pat, (const char *)msg,
                 (size_t)eo + 1);
        rx_free(r);
        return NULL;
    }
    uint32_t ngroups = 0;
    pcre2_pattern_info(r->re, PCRE2_INFO_CAPTURECOUNT, &ngroups);
    r->mctx = pcre2_match_context_create(NULL);
    if (r->mctx == NULL) {
        snprintf(why, whylen, "out of memory");
        rx_free(r);
        return NULL;
    }
    pcre2_set_match_limit(r->mctx, RX_MATCH_LIMIT);
    pcre2_set_depth_limit(r->mctx, RX_DEPTH_LIMIT);
    pcre2_set_heap_limit(r->mctx, RX_HEAP_LIMIT);
    r->pattern = txt_dup(pat, strlen(pat));
    if (r->pattern == NULL) {
        snprintf(why, whylen, "out of memory");
        rx_free(r);
        return NULL;
    }
    r->risk = pattern_risk(pat);
    if (parse_replacement(r, ngroups, rep, replen, why, whylen) != 0) {
        rx_free(r);
        return NULL;
    }
    return r;
}

/* Append the replacement of one match (m: its groups) to b. */
static int put_replacement(const rx *r, slice in, const PCRE2_SIZE *ov, int ngot, scratch *sc, sc_str *b)
{
    for (int k = 0; k < r->nrepl; k++) {
        const repl_piece *rp = &r->repl[k];
        if (rp->group < 0) {
            if (sc_put(sc, b, rp->text, rp->len) != 0)
                return -1;
        } else if (rp->group < ngot && ov[2 * rp->group] != PCRE2_UNSET) {
            size_t gs = ov[2 * rp->group], ge = ov[2 * rp->group + 1];
            if (sc_put(sc, b, in.p + gs, ge - gs) != 0)
                return -1;
        }
    }
    return 0;
}

/* Why a match attempt failed, for the record's line. */
static void match_error(int rc, slice in, char *err, size_t errlen)
{
    if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT || rc == PCRE2_ERROR_HEAPLIMIT) {
        err_set(err, errlen, "regular expression gave up on a value of %zu bytes: it reached its %s limit "
                "(the pattern backtracks too much; see 'patronctl profile check')", in.len,
                rc == PCRE2_ERROR_MATCHLIMIT ? "match" : rc == PCRE2_ERROR_DEPTHLIMIT ? "depth" : "memory");
        return;
    }
    PCRE2_UCHAR msg[160];
    pcre2_get_error_message(rc, msg, sizeof(msg));
    err_set(err, errlen, "regular expression failed on \"%.*s\": %s", (int)(in.len > 80 ? 80 : in.len), in.p,
            (const char *)msg);
}

/* rx_replace's loop, with its match data md. */
static int replace_all(const rx *r, pcre2_match_data *md, slice in, scratch *sc, slice *out, char *err,
                       size_t errlen)
{
    sc_str b = {NULL, 0, 0};
    size_t pos = 0;
    int matched = 0;
    while (pos <= in.len) {
        int rc = pcre2_match(r->re, (PCRE2_SPTR)in.p, in.len, pos, pos > 0 ? PCRE2_NO_UTF_CHECK : 0, md, r->mctx);
        if (rc == PCRE2_ERROR_NOMATCH)
            break;
        if (rc < 0) {
            match_error(rc, in, err, errlen);
            return -1;
        }
        matched = 1;
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t so = ov[0], eo = ov[1];
        if (so < pos || eo < so) { /* \K in a lookahead can do this: take no part of it */
            err_set(err, errlen, "regular expression matched outside its search (\\K in a lookaround)");
            return -1;
        }
        if (sc_put(sc, &b, in.p + pos, so - pos) != 0 || put_replacement(r, in, ov, rc == 0 ? MAX_GROUP + 1 : rc, sc, &b) != 0)
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

int rx_replace(const rx *r, slice in, scratch *sc, slice *out, char *err, size_t errlen)
{
    /* match data per call: a compiled profile is shared read-only */
    pcre2_match_data *md = pcre2_match_data_create(MAX_GROUP + 1, NULL);
    if (md == NULL)
        return sc_oom(err, errlen);
    int rc = replace_all(r, md, in, sc, out, err, errlen);
    pcre2_match_data_free(md);
    return rc;
}
