/* slots: a weekly pattern's next slot as a UTC instant, computed from the zone's own TZif data. */
#include "slots.h"

#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/*
 * Why read TZif ourselves: the alternative (setenv TZ + tzset + mktime) is
 * process-global, and glibc's mktime in a spring-forward gap picks an
 * instant by tm_isdst guesswork, not the rule we need. With the zone's
 * transitions in hand, every local->UTC question has one definition:
 *
 *     slot instant for local wall time L = the smallest t with t + off(t) >= L
 *
 * which is the first occurrence when L occurs twice, the only occurrence
 * when it occurs once, and the instant the gap ends when L does not exist.
 * It is also non-decreasing in L, so walking local days in order walks the
 * instants in order.
 *
 * Zone data: RFC 8536 (TZif). Version 2+ files carry 64-bit transitions
 * and a POSIX TZ footer that governs every instant after the last
 * transition; "slim" tzdata builds stop the table at 2007 or so, and even
 * "fat" ones end in 2037, so the footer is evaluated, not ignored.
 */

#define ZONEINFO_DIR "/usr/share/zoneinfo"
#define ZONE_NAME_MAX 255
#define TZIF_MAX (1u << 20)
#define DAY 86400
/* RFC 8536 bounds UT offsets to -89999..93599; 26 h covers both, and the
 * local->UTC search window relies on it. */
#define OFFSET_MAX (26 * 3600)
/* Accepted `after`: 0001-01-01T00:00:00Z .. 9999-11-30T00:00:00Z, so every
 * slot's local date has a four-digit year. */
#define INSTANT_MIN (-62135596800LL)
#define INSTANT_MAX (253399622400LL)

/* ---- civil calendar (proleptic Gregorian, days since 1970-01-01) ---- */

static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

/* 0 = Sunday; 1970-01-01 was a Thursday. */
static int weekday_of(int64_t days)
{
    int64_t w = (days + 4) % 7;
    return (int)(w < 0 ? w + 7 : w);
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int64_t y, int m)
{
    static const int len[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : len[m - 1];
}

/* ---- POSIX TZ footer ---- */

struct tz_rule {
    char kind;    /* 'J' (1..365, no Feb 29), 'D' (0..365), 'M' (month.week.day) */
    int n, m, w, d;
    int32_t time; /* seconds after local midnight, may be negative or > 24 h */
};

struct posix_tz {
    int32_t std_off, dst_off; /* seconds east of UTC */
    int has_dst;
    struct tz_rule start, end;
};

static const char *ptz_name(const char *s)
{
    if (*s == '<') {
        s++;
        while (*s && *s != '>')
            s++;
        return *s == '>' ? s + 1 : NULL;
    }
    const char *b = s;
    while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z'))
        s++;
    return s - b >= 1 ? s : NULL;
}

static const char *ptz_num(const char *s, int max, int *out)
{
    int v = 0;
    const char *b = s;
    while (*s >= '0' && *s <= '9') {
        v = v * 10 + (*s - '0');
        if (v > max)
            return NULL;
        s++;
    }
    if (s == b)
        return NULL;
    *out = v;
    return s;
}

/* [+-]hh[:mm[:ss]] with hh up to max_h; seconds, sign applied. */
static const char *ptz_hms(const char *s, int max_h, int32_t *out)
{
    int sign = 1, h = 0, mi = 0, se = 0;
    if (*s == '+' || *s == '-') {
        sign = *s == '-' ? -1 : 1;
        s++;
    }
    s = ptz_num(s, max_h, &h);
    if (s == NULL)
        return NULL;
    if (*s == ':') {
        s = ptz_num(s + 1, 59, &mi);
        if (s == NULL)
            return NULL;
        if (*s == ':') {
            s = ptz_num(s + 1, 59, &se);
            if (s == NULL)
                return NULL;
        }
    }
    *out = sign * (h * 3600 + mi * 60 + se);
    return s;
}

static const char *ptz_rule(const char *s, struct tz_rule *r)
{
    memset(r, 0, sizeof(*r));
    if (*s == 'J') {
        r->kind = 'J';
        s = ptz_num(s + 1, 365, &r->n);
        if (s == NULL || r->n < 1)
            return NULL;
    } else if (*s == 'M') {
        r->kind = 'M';
        s = ptz_num(s + 1, 12, &r->m);
        if (s == NULL || r->m < 1 || *s != '.')
            return NULL;
        s = ptz_num(s + 1, 5, &r->w);
        if (s == NULL || r->w < 1 || *s != '.')
            return NULL;
        s = ptz_num(s + 1, 6, &r->d);
        if (s == NULL)
            return NULL;
    } else {
        r->kind = 'D';
        s = ptz_num(s, 365, &r->n);
        if (s == NULL)
            return NULL;
    }
    r->time = 2 * 3600;
    if (*s == '/') {
        s = ptz_hms(s + 1, 167, &r->time);
        if (s == NULL)
            return NULL;
    }
    return s;
}

/* Parse a footer such as "EST5EDT,M3.2.0,M11.1.0". 0 / -1. */
static int ptz_parse(const char *s, struct posix_tz *p)
{
    memset(p, 0, sizeof(*p));
    int32_t v;
    s = ptz_name(s);
    if (s == NULL)
        return -1;
    s = ptz_hms(s, 24, &v);
    if (s == NULL)
        return -1;
    p->std_off = -v; /* POSIX counts hours west of Greenwich */
    if (*s == '\0')
        return 0;
    s = ptz_name(s);
    if (s == NULL)
        return -1;
    p->has_dst = 1;
    p->dst_off = p->std_off + 3600;
    if (*s != ',' && *s != '\0') {
        s = ptz_hms(s, 24, &v);
        if (s == NULL)
            return -1;
        p->dst_off = -v;
    }
    if (*s == '\0') {
        /* No rules given: POSIX leaves it to the implementation; use the
         * current US rules as glibc does. tzdata footers always have rules. */
        p->start = (struct tz_rule){'M', 0, 3, 2, 0, 7200};
        p->end = (struct tz_rule){'M', 0, 11, 1, 0, 7200};
        return 0;
    }
    if (*s != ',')
        return -1;
    s = ptz_rule(s + 1, &p->start);
    if (s == NULL || *s != ',')
        return -1;
    s = ptz_rule(s + 1, &p->end);
    if (s == NULL || *s != '\0')
        return -1;
    return 0;
}

/* The day (since the epoch) rule r falls on in year y. */
static int64_t rule_day(const struct tz_rule *r, int64_t y)
{
    int64_t jan1 = days_from_civil(y, 1, 1);
    if (r->kind == 'J')
        return jan1 + r->n - 1 + (is_leap(y) && r->n >= 60);
    if (r->kind == 'D')
        return jan1 + r->n;
    int64_t first = days_from_civil(y, r->m, 1);
    int64_t day = first + (r->d - weekday_of(first) + 7) % 7 + (int64_t)(r->w - 1) * 7;
    while (day >= first + month_days(y, r->m))
        day -= 7;
    return day;
}

/* Year y's DST start and end as UTC instants. Each rule time is local time
 * as it reads just before the change. */
static void ptz_year(const struct posix_tz *p, int64_t y, int64_t *start, int64_t *end)
{
    *start = rule_day(&p->start, y) * DAY + p->start.time - p->std_off;
    *end = rule_day(&p->end, y) * DAY + p->end.time - p->dst_off;
}

static int64_t utc_year(int64_t t)
{
    int64_t y;
    int m, d;
    civil_from_days(floor_div(t, DAY), &y, &m, &d);
    return y;
}

/* The footer's offset at t: the state set by the latest change at or
 * before t, looking at the neighbouring years so that rules near New Year
 * (and "permanent DST" encodings such as J365/25) come out right. */
static int32_t ptz_offset(const struct posix_tz *p, int64_t t)
{
    if (!p->has_dst)
        return p->std_off;
    int64_t y = utc_year(t);
    int64_t best = INT64_MIN;
    int32_t off = p->std_off;
    for (int64_t yy = y - 1; yy <= y + 1; yy++) {
        int64_t s, e;
        ptz_year(p, yy, &s, &e);
        if (s <= t && s >= best) {
            best = s;
            off = p->dst_off;
        }
        if (e <= t && e >= best) {
            best = e;
            off = p->std_off;
        }
    }
    return off;
}

/* The footer's first change strictly after t (INT64_MAX when none). */
static int64_t ptz_next(const struct posix_tz *p, int64_t t)
{
    if (!p->has_dst)
        return INT64_MAX;
    int64_t y = utc_year(t);
    int64_t best = INT64_MAX;
    for (int64_t yy = y - 1; yy <= y + 2; yy++) {
        int64_t s, e;
        ptz_year(p, yy, &s, &e);
        if (s > t && s < best)
            best = s;
        if (e > t && e < best)
            best = e;
    }
    return best;
}

/* ---- TZif zones, cached by name ---- */

typedef struct zone {
    struct zone *next;
    char *name;
    size_t n;        /* transitions */
    int64_t *at;     /* ascending UTC instants */
    int32_t *off;    /* offset in effect from at[i] on */
    int32_t off0;    /* before the first transition: local time type 0 */
    int has_footer;  /* the footer governs from at[n-1] (everything if n == 0) */
    struct posix_tz footer;
} zone;

static zone *zones;

static uint32_t be32(const unsigned char *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

static int64_t be64(const unsigned char *b)
{
    return (int64_t)((uint64_t)be32(b) << 32 | be32(b + 4));
}

static void zone_free(zone *z)
{
    if (z == NULL)
        return;
    free(z->name);
    free(z->at);
    free(z->off);
    free(z);
}

struct tzif_head {
    uint32_t isut, isstd, leap, time, type, chars;
};

static int tzif_head(const unsigned char *b, size_t len, size_t pos, struct tzif_head *h)
{
    if (len < pos || len - pos < 44 || memcmp(b + pos, "TZif", 4) != 0)
        return -1;
    const unsigned char *c = b + pos + 20;
    h->isut = be32(c);
    h->isstd = be32(c + 4);
    h->leap = be32(c + 8);
    h->time = be32(c + 12);
    h->type = be32(c + 16);
    h->chars = be32(c + 20);
    /* Each count is bounded by the 1 MiB file, so the sizes below cannot overflow. */
    if (h->isut > TZIF_MAX || h->isstd > TZIF_MAX || h->leap > TZIF_MAX || h->time > TZIF_MAX ||
        h->type > TZIF_MAX || h->chars > TZIF_MAX)
        return -1;
    return 0;
}

static size_t tzif_data_len(const struct tzif_head *h, size_t tsize)
{
    return (size_t)h->time * (tsize + 1) + (size_t)h->type * 6 + h->chars +
           (size_t)h->leap * (tsize + 4) + h->isstd + h->isut;
}

/* Parse TZif bytes into z (name not set). 0 / -1 with err. */
/* What a step of reading a TZif file found: fine, refused with its own
 * message in err, or not a valid TZif file. */
enum { TZIF_OK = 0, TZIF_REFUSED = -1, TZIF_BAD = -2 };

/* The transitions and their offsets (tsize: 4 or 8 bytes an instant). */
static int tzif_transitions(const unsigned char *times, size_t tsize, const struct tzif_head *h, const char *name,
                            zone *z, char *err, size_t errlen)
{
    const unsigned char *idx = times + (size_t)h->time * tsize;
    const unsigned char *types = idx + h->time;
    for (uint32_t i = 0; i < h->type; i++) {
        int32_t o = (int32_t)be32(types + (size_t)i * 6);
        if (o < -OFFSET_MAX || o > OFFSET_MAX || types[(size_t)i * 6 + 4] > 1)
            return TZIF_BAD;
    }
    z->off0 = (int32_t)be32(types);
    z->n = h->time;
    if (z->n > 0) {
        z->at = malloc(z->n * sizeof(*z->at));
        z->off = malloc(z->n * sizeof(*z->off));
        if (z->at == NULL || z->off == NULL) {
            err_set(err, errlen, "time zone \"%s\": out of memory", name);
            return TZIF_REFUSED;
        }
    }
    for (size_t i = 0; i < z->n; i++) {
        z->at[i] = tsize == 8 ? be64(times + i * 8) : (int64_t)(int32_t)be32(times + i * 4);
        if (i > 0 && z->at[i] <= z->at[i - 1])
            return TZIF_BAD;
        if (idx[i] >= h->type)
            return TZIF_BAD;
        z->off[i] = (int32_t)be32(types + (size_t)idx[i] * 6);
    }
    return TZIF_OK;
}

/* The footer at pos: "\n" TZ-string "\n"; an empty string means none. */
static int tzif_footer(const unsigned char *b, size_t len, size_t pos, const char *name, zone *z, char *err,
                       size_t errlen)
{
    if (len - pos < 2 || b[pos] != '\n')
        return TZIF_BAD;
    const unsigned char *nl = memchr(b + pos + 1, '\n', len - pos - 1);
    if (nl == NULL)
        return TZIF_BAD;
    size_t flen = (size_t)(nl - (b + pos + 1));
    if (flen == 0)
        return TZIF_OK;
    char footer[256];
    if (flen >= sizeof(footer))
        return TZIF_BAD;
    memcpy(footer, b + pos + 1, flen);
    footer[flen] = '\0';
    if (ptz_parse(footer, &z->footer) < 0) {
        err_set(err, errlen, "time zone \"%s\": cannot parse its rule \"%s\"", name, footer);
        return TZIF_REFUSED;
    }
    if (z->footer.std_off < -OFFSET_MAX || z->footer.std_off > OFFSET_MAX || z->footer.dst_off < -OFFSET_MAX ||
        z->footer.dst_off > OFFSET_MAX)
        return TZIF_BAD;
    z->has_footer = 1;
    return TZIF_OK;
}

static int tzif_parse(const unsigned char *b, size_t len, const char *name, zone *z, char *err,
                      size_t errlen)
{
    struct tzif_head h;
    if (tzif_head(b, len, 0, &h) < 0)
        goto bad;
    size_t pos = 44;
    size_t tsize = 4;
    size_t dlen = tzif_data_len(&h, 4);
    if (len - pos < dlen)
        goto bad;
    if (b[4] >= '2') {
        pos += dlen;
        if (tzif_head(b, len, pos, &h) < 0)
            goto bad;
        pos += 44;
        tsize = 8;
        dlen = tzif_data_len(&h, 8);
        if (len - pos < dlen)
            goto bad;
    }
    if (h.type == 0 || h.chars == 0)
        goto bad;
    if (h.leap != 0) {
        err_set(err, errlen, "time zone \"%s\": leap-second (\"right/\") zones are not supported", name);
        return -1;
    }
    int r = tzif_transitions(b + pos, tsize, &h, name, z, err, errlen);
    if (r == TZIF_OK && tsize == 8)
        r = tzif_footer(b, len, pos + dlen, name, z, err, errlen);
    if (r == TZIF_OK)
        return 0;
    if (r == TZIF_REFUSED)
        return -1;
bad:
    err_set(err, errlen, "time zone \"%s\": %s/%s is not a valid TZif file", name, ZONEINFO_DIR, name);
    return -1;
}

/* Names as tzdata spells them: letters, digits, "_-+." in '/'-separated
 * parts; no empty, "." or ".." part, nothing that starts with '/' or '.'. */
static int zone_name_ok(const char *tz)
{
    size_t len = strlen(tz);
    if (len == 0 || len > ZONE_NAME_MAX)
        return 0;
    const char *part = tz;
    for (const char *s = tz;; s++) {
        if (*s == '/' || *s == '\0') {
            size_t plen = (size_t)(s - part);
            if (plen == 0 || part[0] == '.')
                return 0;
            if (*s == '\0')
                return 1;
            part = s + 1;
            continue;
        }
        int ok = (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
                 *s == '_' || *s == '-' || *s == '+' || *s == '.';
        if (!ok)
            return 0;
    }
}

/* The cached zone for tz, loading it on first use. Owned by the cache. */
static const zone *zone_get(const char *tz, char *err, size_t errlen)
{
    if (tz == NULL) {
        err_set(err, errlen, "no time zone given");
        return NULL;
    }
    for (zone *z = zones; z != NULL; z = z->next) {
        if (strcmp(z->name, tz) == 0)
            return z;
    }
    if (!zone_name_ok(tz)) {
        err_set(err, errlen, "unknown time zone \"%.*s\": not an IANA zone name", ZONE_NAME_MAX, tz);
        return NULL;
    }
    char path[sizeof(ZONEINFO_DIR) + ZONE_NAME_MAX + 1];
    snprintf(path, sizeof(path), "%s/%s", ZONEINFO_DIR, tz);
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
        err_set(err, errlen, "unknown time zone \"%s\": no %s (is tzdata installed?)", tz, path);
        return NULL;
    }
    char ferr[ERRLEN];
    size_t len = 0;
    char *data = file_read_all(path, TZIF_MAX, &len, ferr, sizeof(ferr));
    if (data == NULL) {
        err_set(err, errlen, "time zone \"%s\": %s", tz, ferr);
        return NULL;
    }
    zone *z = calloc(1, sizeof(*z));
    if (z == NULL) {
        free(data);
        err_set(err, errlen, "time zone \"%s\": out of memory", tz);
        return NULL;
    }
    int rc = tzif_parse((const unsigned char *)data, len, tz, z, err, errlen);
    free(data);
    if (rc < 0)
        goto fail;
    z->name = strdup(tz);
    if (z->name == NULL) {
        err_set(err, errlen, "time zone \"%s\": out of memory", tz);
        goto fail;
    }
    z->next = zones;
    zones = z;
    return z;
fail:
    zone_free(z);
    return NULL;
}

static int64_t footer_from(const zone *z)
{
    return z->n > 0 ? z->at[z->n - 1] : INT64_MIN;
}

static int32_t zone_offset(const zone *z, int64_t t)
{
    if (z->has_footer && t >= footer_from(z))
        return ptz_offset(&z->footer, t);
    if (z->n == 0 || t < z->at[0])
        return z->off0;
    size_t lo = 0, hi = z->n; /* at[lo] <= t < at[hi] */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->at[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return z->off[lo];
}

/* The first change of offset rules strictly after t (INT64_MAX when none).
 * It may be a change to the same offset; callers do not care. */
static int64_t zone_next_change(const zone *z, int64_t t)
{
    if (!(z->has_footer && t >= footer_from(z))) {
        size_t lo = 0, hi = z->n; /* first index with at[i] > t */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (z->at[mid] <= t)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < z->n)
            return z->at[lo];
        if (!z->has_footer)
            return INT64_MAX;
    }
    return ptz_next(&z->footer, t);
}

/* The smallest instant whose wall clock reads local (seconds since the
 * local epoch) or later: see the comment at the top. */
static int64_t zone_local_to_utc(const zone *z, int64_t local)
{
    /* At t0 the wall clock reads at most local - 2 days + 26 h < local. */
    int64_t t = local - 2 * DAY;
    for (;;) {
        int32_t o = zone_offset(z, t);
        int64_t next = zone_next_change(z, t);
        int64_t cand = local - o;
        if (cand < t)
            cand = t;
        if (cand < next)
            return cand;
        t = next; /* strictly increasing; a zone changes a bounded number of times in 4 days */
    }
}

/* ---- the contract ---- */

static void format_date(char out[11], int64_t days)
{
    int64_t y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    int v = (int)y;
    out[0] = (char)('0' + v / 1000 % 10);
    out[1] = (char)('0' + v / 100 % 10);
    out[2] = (char)('0' + v / 10 % 10);
    out[3] = (char)('0' + v % 10);
    out[4] = '-';
    out[5] = (char)('0' + m / 10);
    out[6] = (char)('0' + m % 10);
    out[7] = '-';
    out[8] = (char)('0' + d / 10);
    out[9] = (char)('0' + d % 10);
    out[10] = '\0';
}

int slots_next(const slot_pattern *p, const char *tz, int64_t after, slot *out, char *err, size_t errlen)
{
    if (p == NULL || out == NULL) {
        err_set(err, errlen, "slots_next: no pattern or no output");
        return -1;
    }
    if (p->minute < 0 || p->minute > 1439) {
        err_set(err, errlen, "time of day %d is not within 0..1439 minutes after midnight", p->minute);
        return -1;
    }
    int any = 0;
    for (int i = 0; i < 7; i++) {
        if (p->day[i] > SLOT_INCREMENTAL) {
            err_set(err, errlen, "weekday %d has mode %d, not None, Full or Incremental", i, p->day[i]);
            return -1;
        }
        if (p->day[i] != SLOT_NONE)
            any = 1;
    }
    if (!any) {
        err_set(err, errlen, "the pattern has no day with a run (every weekday is None)");
        return -1;
    }
    if (after < INSTANT_MIN || after > INSTANT_MAX) {
        err_set(err, errlen, "instant %lld is outside the years 0001..9999", (long long)after);
        return -1;
    }
    const zone *z = zone_get(tz, err, errlen);
    if (z == NULL)
        return -1;

    /* A day before after's local day has its wall time before after's, so
     * its instant is at or before `after`: start at after's local day. The
     * instants are non-decreasing with the day, so the first one past
     * `after` wins; a wall time more than 26 h past `after` is never reached
     * by then, so this ends within nine days. */
    int64_t day = floor_div(after + zone_offset(z, after), DAY);
    for (int i = 0; i < 14; i++, day++) {
        enum slot_mode mode = (enum slot_mode)p->day[weekday_of(day)];
        if (mode == SLOT_NONE)
            continue;
        int64_t when = zone_local_to_utc(z, day * DAY + (int64_t)p->minute * 60);
        if (when <= after)
            continue;
        out->when = when;
        out->mode = mode;
        format_date(out->local_date, day);
        return 0;
    }
    err_set(err, errlen, "time zone \"%s\": no slot found after %lld", tz, (long long)after);
    return -1;
}

int slots_zone_known(const char *tz)
{
    return zone_get(tz, NULL, 0) != NULL;
}

int slots_utc_offset(const char *tz, int64_t when, int *offset, char *err, size_t errlen)
{
    const zone *z = zone_get(tz, err, errlen);
    if (z == NULL)
        return -1;
    if (when < INSTANT_MIN || when > INSTANT_MAX) {
        err_set(err, errlen, "instant %lld is outside the years 0001..9999", (long long)when);
        return -1;
    }
    *offset = zone_offset(z, when);
    return 0;
}

void slots_cache_clear(void)
{
    while (zones != NULL) {
        zone *z = zones;
        zones = z->next;
        zone_free(z);
    }
}
