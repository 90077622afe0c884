/* schedule_parse: settings, parsing and checks of a schedule. */
#include "schedule_parse.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "encoding.h"
#include "patron.h"
#include "reply.h"
#include "safety.h"
#include "util.h"

static const char *day_full[7] = {"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"};

/* A comma-separated list split in place into v (trimmed, empties dropped). */
#define LIST_ITEMS 64
typedef struct {
    char buf[1024];
    char *v[LIST_ITEMS];
    size_t n;
} strlist;

static int strlist_split(strlist *l, const char *text)
{
    str_copy(l->buf, sizeof(l->buf), text);
    l->n = 0;
    char *p = l->buf;
    while (*p) {
        char *comma = strchr(p, ',');
        char *end = comma ? comma : p + strlen(p);
        char *next = comma ? comma + 1 : end;
        *end = '\0';
        while (*p == ' ' || *p == '\t')
            p++;
        char *e = p + strlen(p);
        while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
            *--e = '\0';
        if (*p) {
            if (l->n == LIST_ITEMS)
                return -1;
            l->v[l->n++] = p;
        }
        p = next;
    }
    return 0;
}

static int day_index(const char *s, size_t n)
{
    for (int d = 0; d < 7; d++) {
        if (n == 3 && strncasecmp(s, day_full[d], 3) == 0)
            return d;
        if (n == strlen(day_full[d]) && strncasecmp(s, day_full[d], n) == 0)
            return d;
    }
    return -1;
}

int schedules_parse_days(const char *text, unsigned char set[7], char *err, size_t errlen)
{
    memset(set, 0, 7);
    strlist l;
    if (strlist_split(&l, text) < 0 || strlen(text) >= sizeof(l.buf)) {
        err_set(err, errlen, "days '%s': too many entries", text);
        return -1;
    }
    for (size_t k = 0; k < l.n; k++) {
        const char *t = l.v[k];
        if (strcasecmp(t, "daily") == 0 || strcasecmp(t, "all") == 0 || strcasecmp(t, "everyday") == 0) {
            memset(set, 1, 7);
            continue;
        }
        if (strcasecmp(t, "weekdays") == 0) {
            for (int d = 1; d <= 5; d++)
                set[d] = 1;
            continue;
        }
        if (strcasecmp(t, "weekends") == 0) {
            set[0] = set[6] = 1;
            continue;
        }
        const char *dash = strchr(t, '-');
        int a = day_index(t, dash ? (size_t)(dash - t) : strlen(t));
        int b = dash ? day_index(dash + 1, strlen(dash + 1)) : a;
        if (a < 0 || b < 0) {
            err_set(err, errlen, "days: '%s' is not a day (Sun, Mon, ... Sat, a range like Mon-Fri, daily, weekdays, weekends)", t);
            return -1;
        }
        for (int d = a;; d = (d + 1) % 7) {
            set[d] = 1;
            if (d == b)
                break;
        }
    }
    return 0;
}

int schedules_parse_time(const char *text, int *minute, char *err, size_t errlen)
{
    const char *p = text;
    while (*p == ' ')
        p++;
    int h = 0, m = 0, nd = 0;
    while (isdigit((unsigned char)*p) && nd < 3) {
        h = h * 10 + (*p++ - '0');
        nd++;
    }
    if (nd == 0 || nd > 2 || *p != ':')
        goto bad;
    p++;
    if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1]))
        goto bad;
    m = (p[0] - '0') * 10 + (p[1] - '0');
    p += 2;
    while (*p == ' ')
        p++;
    int ampm = 0;
    if (strncasecmp(p, "am", 2) == 0 || strncasecmp(p, "pm", 2) == 0) {
        ampm = tolower((unsigned char)*p) == 'p' ? 2 : 1;
        p += 2;
        while (*p == ' ')
            p++;
    }
    if (*p != '\0' || m > 59)
        goto bad;
    if (ampm) {
        if (h < 1 || h > 12)
            goto bad;
        h = h % 12 + (ampm == 2 ? 12 : 0);
    } else if (h > 23) {
        goto bad;
    }
    *minute = h * 60 + m;
    return 0;
bad:
    err_set(err, errlen, "time '%s' is not a time of day (HH:MM from 00:00 to 23:59, or H:MM AM/PM)", text);
    return -1;
}

int sched_truthy(const char *v, int *out)
{
    static const char *yes[] = {"1", "yes", "y", "true", "t", "on"};
    static const char *no[] = {"0", "no", "n", "false", "f", "off"};
    for (size_t i = 0; i < 6; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

static int has_control(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return 1;
    return 0;
}

/* A file name relative to the import root: the broker checks it again
 * (realpath, symlinks, regular file) when it opens it. */
static int check_file(const char *f, char *err, size_t errlen)
{
    if (f[0] == '\0') {
        err_set(err, errlen, "the file is required (its name relative to the import root)");
        return -1;
    }
    if (strlen(f) > SCHED_FILE_MAX_BYTES || has_control(f)) {
        err_set(err, errlen, "file '%s': too long or holds control characters", f);
        return -1;
    }
    if (f[0] == '/') {
        err_set(err, errlen, "file '%s': absolute paths are refused; name it relative to the import root", f);
        return -1;
    }
    for (const char *p = f; *p;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            err_set(err, errlen, "file '%s': '..' is refused; the file must be under the import root", f);
            return -1;
        }
        p += n;
        while (*p == '/')
            p++;
    }
    return 0;
}

int sched_validate(const sched *sc, char *err, size_t errlen)
{
    size_t nchars = utf8_chars(sc->name, strlen(sc->name));
    if (sc->name[0] == '\0' || nchars > SCHED_NAME_MAX_CHARS || has_control(sc->name)) {
        err_set(err, errlen, "schedule name '%s' must be 1 to %d characters (it has %zu) without control characters",
                sc->name, SCHED_NAME_MAX_CHARS, nchars);
        return -1;
    }
    if (check_file(sc->file, err, errlen) < 0)
        return -1;
    if (sc->encoding[0] && !encoding_known(sc->encoding)) {
        err_set(err, errlen, "encoding '%s' is not one this system can convert (try windows-1252, UTF-8, ISO-8859-1, MacRoman, UTF-16)",
                sc->encoding);
        return -1;
    }
    char e[ERRLEN];
    if (sched_profile_check(sc, e, sizeof(e)) < 0) {
        err_set(err, errlen, "properties file refused: %s", e);
        return -1;
    }
    int any = 0, incr = 0;
    for (int i = 0; i < 7; i++) {
        any |= sc->days[i] != 'N';
        incr |= sc->days[i] == 'I';
    }
    if (!any) {
        err_set(err, errlen, "at least one day must be Full or Incremental (every day is None)");
        return -1;
    }
    if (sc->minute < 0 || sc->minute > 1439) {
        err_set(err, errlen, "time of day must be from 00:00 to 23:59");
        return -1;
    }
    const sched_opts *o = &sc->o;
    if (o->keep_jobs < 0 || o->keep_jobs > 99) {
        err_set(err, errlen, "Number of jobs to keep must be between 1 and 99.");
        return -1;
    }
    if (incr && o->keep_jobs == 1) {
        err_set(err, errlen, "Number of jobs to keep must be at least 2 when any day runs Incremental.");
        return -1;
    }
    return safety_validate(&o->safe, err, errlen);
}

static int int_opt(const char *v, int lo, int hi, int *out)
{
    int64_t n;
    if (parse_i64(v, lo, hi, &n) < 0)
        return -1;
    *out = (int)n;
    return 0;
}

/* Every setting is one a schedule has (or a safety option). 0 / -1 with err. */
static int known_settings(const Patronsync__ControlRequest *rq, char *err, size_t errlen)
{
    static const char *known[] = {"name", "file", "encoding", "profile_name", "time", "days", "full", "incremental",
                                  "none", "disabled", "errors_only", "keep_jobs"};
    for (size_t i = 0; i < rq->n_opts; i++) {
        size_t k = 0;
        while (k < sizeof(known) / sizeof(known[0]) && strcmp(known[k], rq->opts[i]->key) != 0)
            k++;
        if (k == sizeof(known) / sizeof(known[0]) && !safety_is_option(rq->opts[i]->key)) {
            err_set(err, errlen, "unknown schedule setting '%s'", rq->opts[i]->key);
            return -1;
        }
    }
    return 0;
}

/* name, file, encoding, and the properties file sent along. 0 / -1 with err. */
static int apply_texts(sched *sc, const Patronsync__ControlRequest *rq, char *err, size_t errlen)
{
    static const char *keys[3] = {"name", "file", "encoding"};
    char **dst[3] = {&sc->name, &sc->file, &sc->encoding};
    for (int k = 0; k < 3; k++) {
        const char *v = reply_opt(rq, keys[k]);
        if (v && sched_set_str(dst[k], v, strlen(v)) < 0)
            goto oom;
    }
    if (rq->payload.len > 0) {
        if (rq->payload.len > SCHED_PROFILE_MAX_BYTES || memchr(rq->payload.data, '\0', rq->payload.len) != NULL) {
            err_set(err, errlen, "properties file refused: larger than %u bytes or holds NUL bytes", SCHED_PROFILE_MAX_BYTES);
            return -1;
        }
        const char *v = reply_opt(rq, "profile_name");
        if (sched_set_str(&sc->profile_text, (const char *)rq->payload.data, rq->payload.len) < 0 ||
            sched_set_str(&sc->profile_name, v ? v : "schedule.properties", strlen(v ? v : "schedule.properties")) < 0)
            goto oom;
    }
    return 0;
oom:
    err_set(err, errlen, "out of memory");
    return -1;
}

/* time, days (7 letters), and full / incremental / none DAYS; *timing set
 * when they changed. 0 / -1 with err. */
static int apply_timing(sched *sc, const Patronsync__ControlRequest *rq, int *timing, char *err, size_t errlen)
{
    const char *v = reply_opt(rq, "time");
    if (v) {
        int m;
        if (schedules_parse_time(v, &m, err, errlen) < 0)
            return -1;
        *timing |= m != sc->minute;
        sc->minute = m;
    }
    char before[8];
    memcpy(before, sc->days, sizeof(before));
    v = reply_opt(rq, "days");
    if (v) {
        if (strlen(v) != 7 || strspn(v, "NFInfi") != 7) {
            err_set(err, errlen, "days '%s': expected 7 letters N, F or I, Sunday first (e.g. NFFFFFN)", v);
            return -1;
        }
        for (int i = 0; i < 7; i++)
            sc->days[i] = (char)toupper((unsigned char)v[i]);
    }
    static const char *mkeys[3] = {"none", "full", "incremental"};
    static const char mchar[3] = {'N', 'F', 'I'};
    for (int k = 0; k < 3; k++) {
        v = reply_opt(rq, mkeys[k]);
        if (v == NULL)
            continue;
        unsigned char set[7];
        if (schedules_parse_days(v, set, err, errlen) < 0)
            return -1;
        for (int d = 0; d < 7; d++)
            if (set[d])
                sc->days[d] = mchar[k];
    }
    *timing |= memcmp(before, sc->days, 7) != 0;
    return 0;
}

/* A yes/no setting into *out when it is given. 0 / -1 with err. */
static int apply_yesno(const Patronsync__ControlRequest *rq, const char *key, int *out, char *err, size_t errlen)
{
    const char *v = reply_opt(rq, key);
    if (v && sched_truthy(v, out) < 0) {
        err_set(err, errlen, "'%s' is not yes or no", v);
        return -1;
    }
    return 0;
}

/* disabled, errors_only, keep_jobs, then the finishing-step and safety
 * options (lib/safety.c's names, values and messages; a scope of "file"
 * (sites) or "all" (types) is the default, an empty list). 0 / -1. */
static int apply_options(sched *sc, const Patronsync__ControlRequest *rq, char *err, size_t errlen)
{
    sched_opts *o = &sc->o;
    if (apply_yesno(rq, "disabled", &sc->disabled, err, errlen) < 0 ||
        apply_yesno(rq, "errors_only", &o->errors_only, err, errlen) < 0)
        return -1;
    const char *v = reply_opt(rq, "keep_jobs");
    if (v) {
        if (strcasecmp(v, "off") == 0 || strcasecmp(v, "all") == 0)
            o->keep_jobs = 0;
        else if (int_opt(v, 1, 99, &o->keep_jobs) < 0) {
            err_set(err, errlen, "Number of jobs to keep must be between 1 and 99.");
            return -1;
        }
    }
    for (size_t i = 0; i < rq->n_opts; i++) {
        const char *key = rq->opts[i]->key, *val = rq->opts[i]->value;
        if (!safety_is_option(key))
            continue;
        if ((strcmp(key, "scope_sites") == 0 && strcasecmp(val, "file") == 0) ||
            (strcmp(key, "scope_types") == 0 && strcasecmp(val, "all") == 0))
            val = "";
        if (safety_option_set(&o->safe, key, val, err, errlen) < 0)
            return -1;
    }
    return 0;
}

int sched_apply_opts(sched *sc, const Patronsync__ControlRequest *rq, int *timing, char *err, size_t errlen)
{
    if (known_settings(rq, err, errlen) < 0 || apply_texts(sc, rq, err, errlen) < 0 ||
        apply_timing(sc, rq, timing, err, errlen) < 0 || apply_options(sc, rq, err, errlen) < 0)
        return -1;
    return 0;
}

