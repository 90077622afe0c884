/* test_slots: next-slot computation across patterns, zones and every DST change 2026-2030. */
#include "slots.h"
#include "t.h"

#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#define DAY 86400

static const char *ALL = "\1\1\1\1\1\1\1"; /* every day Full */

static slot_pattern pattern(const char *days, int minute)
{
    slot_pattern p;
    for (int i = 0; i < 7; i++)
        p.day[i] = (unsigned char)days[i];
    p.minute = minute;
    return p;
}

static int64_t utc(int y, int mo, int d, int h, int mi)
{
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    return (int64_t)timegm(&tm);
}

static void date_str(char out[11], int64_t days)
{
    time_t t = (time_t)(days * DAY);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 11, "%Y-%m-%d", &tm);
}

static int64_t date_days(int y, int mo, int d)
{
    return utc(y, mo, d, 0, 0) / DAY;
}

static int weekday(int64_t days)
{
    return (int)(((days + 4) % 7 + 7) % 7);
}

/* ---- glibc as an independent oracle (test only: TZ is process-global) ---- */

static void oracle_zone(const char *tz)
{
    setenv("TZ", tz, 1);
    tzset();
}

/* Wall clock at t in the oracle zone, as seconds since the local epoch. */
static int64_t oracle_local(int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    localtime_r(&tt, &tm);
    return t + tm.tm_gmtoff;
}

/* Whether when is the smallest instant whose wall clock reads L or later
 * (looking back three hours, which covers every overlap in these zones). */
static int oracle_is_slot(int64_t when, int64_t L)
{
    if (oracle_local(when) < L)
        return 0;
    if (oracle_local(when - 1) >= L)
        return 0;
    for (int k = 1; k <= 12; k++) {
        if (oracle_local(when - k * 900) >= L)
            return 0;
    }
    return 1;
}

/* ---- cases ---- */

static void test_daily_utc(void)
{
    slot_pattern p = pattern(ALL, 9 * 60);
    char err[256] = "";
    int64_t after = utc(2026, 1, 1, 0, 0);
    for (int k = 0; k < 42; k++) {
        slot s;
        CHECK(slots_next(&p, "UTC", after, &s, err, sizeof(err)) == 0);
        CHECK(s.when == utc(2026, 1, 1, 9, 0) + (int64_t)k * DAY);
        char want[11];
        date_str(want, date_days(2026, 1, 1) + k);
        CHECK_STR(s.local_date, want);
        CHECK(s.mode == SLOT_FULL);
        after = s.when;
    }
}

static void test_strictly_after(void)
{
    slot_pattern p = pattern(ALL, 9 * 60);
    char err[256] = "";
    slot s;
    CHECK(slots_next(&p, "Etc/UTC", utc(2026, 5, 1, 8, 59), &s, err, sizeof(err)) == 0);
    CHECK(s.when == utc(2026, 5, 1, 9, 0));
    CHECK(slots_next(&p, "Etc/UTC", utc(2026, 5, 1, 9, 0), &s, err, sizeof(err)) == 0);
    CHECK(s.when == utc(2026, 5, 2, 9, 0));
    CHECK_STR(s.local_date, "2026-05-02");
    CHECK(slots_next(&p, "Etc/UTC", utc(2026, 5, 1, 9, 0) - 1, &s, err, sizeof(err)) == 0);
    CHECK(s.when == utc(2026, 5, 1, 9, 0));
}

/* Mon/Fri Full, Tue/Thu Incremental at 06:15 New York, 8 weeks across the
 * March change: every instant, date and mode. */
static void test_weekly_new_york(void)
{
    slot_pattern p = pattern("\0\1\2\0\2\1\0", 6 * 60 + 15);
    char err[256] = "";
    int64_t after = utc(2026, 2, 1, 0, 0);
    int64_t first = date_days(2026, 2, 1), change = date_days(2026, 3, 8);
    int64_t d = first;
    int n = 0;
    for (;;) {
        slot s;
        CHECK(slots_next(&p, "America/New_York", after, &s, err, sizeof(err)) == 0);
        while (p.day[weekday(d)] == SLOT_NONE)
            d++;
        if (d >= first + 56)
            break;
        int off = d < change ? -5 : -4;
        CHECK(s.when == d * DAY + (6 * 60 + 15) * 60 - off * 3600);
        char want[11];
        date_str(want, d);
        CHECK_STR(s.local_date, want);
        CHECK(s.mode == (enum slot_mode)p.day[weekday(d)]);
        after = s.when;
        d++;
        n++;
    }
    CHECK(n == 8 * 4);
}

/* Weekly on Wednesdays only, several weeks: one slot a week, seven days apart. */
static void test_weekly_once(void)
{
    slot_pattern p = pattern("\0\0\0\2\0\0\0", 17 * 60 + 45);
    char err[256] = "";
    int64_t after = utc(2026, 6, 1, 0, 0); /* a Monday */
    slot prev = {0};
    for (int k = 0; k < 10; k++) {
        slot s;
        CHECK(slots_next(&p, "Europe/London", after, &s, err, sizeof(err)) == 0);
        CHECK(s.mode == SLOT_INCREMENTAL);
        if (k == 0) {
            CHECK(s.when == utc(2026, 6, 3, 16, 45));
            CHECK_STR(s.local_date, "2026-06-03");
        } else {
            CHECK(s.when - prev.when == 7 * DAY);
        }
        prev = s;
        after = s.when;
    }
    CHECK_STR(prev.local_date, "2026-08-05");
}

struct dst_zone {
    const char *tz;
    int std_min, dst_min;   /* offsets east of UTC in minutes */
    int gap_start;          /* spring: local minute the clock jumps forward from */
    int overlap_end;        /* autumn: local minute the clock falls back from */
    int spring[5][2], fall[5][2]; /* month, day for 2026..2030 */
};

static const struct dst_zone DST_ZONES[] = {
    {"America/New_York", -300, -240, 120, 120,
     {{3, 8}, {3, 14}, {3, 12}, {3, 11}, {3, 10}},
     {{11, 1}, {11, 7}, {11, 5}, {11, 4}, {11, 3}}},
    {"Europe/London", 0, 60, 60, 120,
     {{3, 29}, {3, 28}, {3, 26}, {3, 25}, {3, 31}},
     {{10, 25}, {10, 31}, {10, 29}, {10, 28}, {10, 27}}},
};

/* The expected instant of minute m on a change day (from the table above,
 * not from any zone code): the gap maps to its end, the overlap to its
 * first occurrence. */
static int64_t expected_on_change(const struct dst_zone *z, int64_t day, int m, int spring)
{
    int64_t base = day * DAY + (int64_t)m * 60;
    if (spring) {
        if (m < z->gap_start)
            return base - z->std_min * 60;
        if (m < z->gap_start + (z->dst_min - z->std_min))
            return day * DAY + (int64_t)z->gap_start * 60 - z->std_min * 60;
        return base - z->dst_min * 60;
    }
    return base - (m < z->overlap_end ? z->dst_min : z->std_min) * 60;
}

/* Every minute of every change day 2026-2030, New York and London: the
 * instant is right and belongs to that day. */
static void test_dst_every_minute(void)
{
    char err[256] = "";
    for (size_t zi = 0; zi < sizeof(DST_ZONES) / sizeof(DST_ZONES[0]); zi++) {
        const struct dst_zone *z = &DST_ZONES[zi];
        for (int yi = 0; yi < 5; yi++) {
            for (int spring = 0; spring <= 1; spring++) {
                const int *md = spring ? z->spring[yi] : z->fall[yi];
                int64_t day = date_days(2026 + yi, md[0], md[1]);
                CHECK(weekday(day) == 0);
                char want[11];
                date_str(want, day);
                int bad = 0;
                for (int m = 0; m < 1440; m++) {
                    slot_pattern p = pattern(ALL, m);
                    slot s;
                    /* from one second before local midnight (standard time on
                     * a spring day, summer time on an autumn one) */
                    int64_t after = day * DAY - (spring ? z->std_min : z->dst_min) * 60 - 1;
                    if (slots_next(&p, z->tz, after, &s, err, sizeof(err)) != 0 ||
                        s.when != expected_on_change(z, day, m, spring) ||
                        strcmp(s.local_date, want) != 0) {
                        if (bad++ < 3)
                            printf("  %s %s minute %d: got %lld %s, want %lld\n", z->tz, want, m,
                                   (long long)s.when, s.local_date,
                                   (long long)expected_on_change(z, day, m, spring));
                    }
                }
                CHECK(bad == 0);
            }
        }
    }
}

/* Walk daily slots from four days before to four days after each change
 * day, at times in the gap, in the overlap and just outside them: one slot
 * per local day, none doubled, none skipped, the change day's at the right
 * instant. */
static void test_dst_walk(void)
{
    static const int minutes[] = {0, 59, 60, 90, 119, 120, 150, 179, 180, 181, 1439};
    char err[256] = "";
    for (size_t zi = 0; zi < sizeof(DST_ZONES) / sizeof(DST_ZONES[0]); zi++) {
        const struct dst_zone *z = &DST_ZONES[zi];
        for (int yi = 0; yi < 5; yi++) {
            for (int spring = 0; spring <= 1; spring++) {
                const int *md = spring ? z->spring[yi] : z->fall[yi];
                int64_t day = date_days(2026 + yi, md[0], md[1]);
                for (size_t mi = 0; mi < sizeof(minutes) / sizeof(minutes[0]); mi++) {
                    int m = minutes[mi];
                    slot_pattern p = pattern(ALL, m);
                    int64_t after = (day - 4) * DAY - (spring ? z->std_min : z->dst_min) * 60 - 1;
                    int64_t prev_when = after;
                    for (int64_t d = day - 4; d <= day + 4; d++) {
                        slot s;
                        CHECK(slots_next(&p, z->tz, after, &s, err, sizeof(err)) == 0);
                        char want[11];
                        date_str(want, d);
                        CHECK_STR(s.local_date, want);
                        CHECK(s.when > prev_when);
                        if (d == day) {
                            CHECK(s.when == expected_on_change(z, day, m, spring));
                        } else {
                            int off = (d < day) == spring ? z->std_min : z->dst_min;
                            CHECK(s.when == d * DAY + (int64_t)(m - off) * 60);
                        }
                        prev_when = s.when;
                        after = s.when;
                    }
                }
            }
        }
    }
}

static const char *WALK_ZONES[] = {
    "America/New_York", "Europe/London",   "Australia/Sydney", "Australia/Lord_Howe",
    "Europe/Dublin",    "Pacific/Chatham", "Asia/Kolkata",     "America/Sao_Paulo",
    "Africa/Casablanca", "America/Santiago", "America/Havana", "UTC",
    "America/St_Johns", "Asia/Tehran",
};

/* A whole year of slots in many zones, several patterns and times: exactly
 * one slot per enabled local day, in order, each the earliest instant whose
 * wall clock (per glibc) reads that day's time or later. 2026 comes from the
 * zone files' tables, 2040 from their POSIX footers. */
static void test_year_walk(void)
{
    static const int minutes[] = {0, 30, 90, 150, 720, 1439};
    static const char *patterns[] = {"\1\1\1\1\1\1\1", "\0\1\2\1\2\1\0", "\2\0\0\0\0\0\1"};
    static const int years[] = {2026, 2040};
    char err[256] = "";
    for (size_t zi = 0; zi < sizeof(WALK_ZONES) / sizeof(WALK_ZONES[0]); zi++) {
        const char *tz = WALK_ZONES[zi];
        oracle_zone(tz);
        for (size_t yi = 0; yi < 2; yi++) {
            int y = years[yi];
            int64_t first = date_days(y, 1, 1), end = date_days(y + 1, 1, 1);
            for (size_t pi = 0; pi < 3; pi++) {
                for (size_t mi = 0; mi < sizeof(minutes) / sizeof(minutes[0]); mi++) {
                    slot_pattern p = pattern(patterns[pi], minutes[mi]);
                    int64_t after = (first - 2) * DAY; /* before any 1 January slot */
                    int64_t d = first;
                    int64_t prev_when = INT64_MIN;
                    int count = 0, bad = 0, expected = 0;
                    for (int64_t e = first; e < end; e++)
                        expected += p.day[weekday(e)] != SLOT_NONE;
                    for (;;) {
                        slot s;
                        if (slots_next(&p, tz, after, &s, err, sizeof(err)) != 0) {
                            bad++;
                            break;
                        }
                        after = s.when;
                        char before[11];
                        date_str(before, first);
                        if (strcmp(s.local_date, before) < 0)
                            continue;
                        while (p.day[weekday(d)] == SLOT_NONE)
                            d++;
                        if (d >= end)
                            break;
                        char want[11];
                        date_str(want, d);
                        int64_t L = d * DAY + (int64_t)p.minute * 60;
                        if (strcmp(s.local_date, want) != 0 || s.when <= prev_when ||
                            !oracle_is_slot(s.when, L) || s.mode != (enum slot_mode)p.day[weekday(d)]) {
                            if (bad++ < 3)
                                printf("  %s pattern %zu minute %d: got %lld %s, want day %s\n", tz, pi,
                                       p.minute, (long long)s.when, s.local_date, want);
                        }
                        prev_when = s.when;
                        count++;
                        d++;
                    }
                    CHECK(bad == 0);
                    CHECK(count == expected);
                }
            }
        }
    }
    unsetenv("TZ");
    tzset();
}

static int offsets_agree(const char *tz, int64_t from, int64_t to, int64_t step)
{
    char err[256] = "";
    int bad = 0;
    oracle_zone(tz);
    for (int64_t t = from; t < to; t += step) {
        int off = 0;
        time_t tt = (time_t)t;
        struct tm tm;
        localtime_r(&tt, &tm);
        if (slots_utc_offset(tz, t, &off, err, sizeof(err)) != 0 || off != tm.tm_gmtoff) {
            if (bad++ < 2)
                printf("  %s at %lld: offset %d, glibc %ld (%s)\n", tz, (long long)t, off, tm.tm_gmtoff,
                       err);
        }
    }
    return bad;
}

/* Offsets agree with glibc: densely for the walk zones 1900-2100, coarsely
 * for every zone on the machine 1970-2100. */
static void test_offsets_match_glibc(void)
{
    for (size_t zi = 0; zi < sizeof(WALK_ZONES) / sizeof(WALK_ZONES[0]); zi++)
        CHECK(offsets_agree(WALK_ZONES[zi], utc(1900, 1, 1, 0, 0), utc(2100, 1, 1, 0, 0), 3 * 3600 + 7) == 0);

    FILE *f = fopen("/usr/share/zoneinfo/tzdata.zi", "r");
    CHECK(f != NULL);
    if (f == NULL)
        return;
    char line[512];
    int zones = 0, bad_zones = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        /* "Z America/New_York ..." zone lines and "L Target Link" links */
        char name[256];
        if (line[0] == 'Z' && line[1] == ' ') {
            size_t n = strcspn(line + 2, " \n");
            if (n >= sizeof(name))
                continue;
            memcpy(name, line + 2, n);
            name[n] = '\0';
        } else if (line[0] == 'L' && line[1] == ' ') {
            char *last = strrchr(line, ' ');
            size_t n = strcspn(last + 1, "\n");
            if (n >= sizeof(name))
                continue;
            memcpy(name, last + 1, n);
            name[n] = '\0';
        } else {
            continue;
        }
        if (!slots_zone_known(name))
            continue; /* tzdata.zi may list zones Debian ships elsewhere */
        zones++;
        if (offsets_agree(name, utc(1970, 1, 1, 0, 0), utc(2100, 1, 1, 0, 0), 29 * DAY + 3 * 3600 + 17) != 0)
            bad_zones++;
    }
    fclose(f);
    CHECK(zones > 300);
    CHECK(bad_zones == 0);
    unsetenv("TZ");
    tzset();
}

static void test_midnight_and_last_minute(void)
{
    char err[256] = "";
    slot s;
    slot_pattern p = pattern(ALL, 0);
    CHECK(slots_next(&p, "America/New_York", utc(2026, 7, 4, 3, 59), &s, err, sizeof(err)) == 0);
    CHECK(s.when == utc(2026, 7, 4, 4, 0));
    CHECK_STR(s.local_date, "2026-07-04");
    CHECK(slots_next(&p, "America/New_York", s.when, &s, err, sizeof(err)) == 0);
    CHECK(s.when == utc(2026, 7, 5, 4, 0));
    CHECK_STR(s.local_date, "2026-07-05");

    p = pattern(ALL, 23 * 60 + 59);
    CHECK(slots_next(&p, "America/New_York", utc(2026, 12, 31, 12, 0), &s, err, sizeof(err)) == 0);
    CHECK(s.when == utc(2027, 1, 1, 4, 59));
    CHECK_STR(s.local_date, "2026-12-31");
    CHECK(slots_next(&p, "America/New_York", s.when, &s, err, sizeof(err)) == 0);
    CHECK_STR(s.local_date, "2027-01-01");

    /* Havana springs forward at midnight: 00:00 and 00:30 fall at 01:00 CDT. */
    p = pattern(ALL, 30);
    CHECK(slots_next(&p, "America/Havana", utc(2026, 3, 7, 12, 0), &s, err, sizeof(err)) == 0);
    CHECK_STR(s.local_date, "2026-03-08");
    CHECK(s.when == utc(2026, 3, 8, 5, 0));
    /* and falls back at 01:00 CDT to 00:00 CST: 00:30 once, the first time. */
    CHECK(slots_next(&p, "America/Havana", utc(2026, 10, 31, 12, 0), &s, err, sizeof(err)) == 0);
    CHECK_STR(s.local_date, "2026-11-01");
    CHECK(s.when == utc(2026, 11, 1, 4, 30));
    CHECK(slots_next(&p, "America/Havana", s.when, &s, err, sizeof(err)) == 0);
    CHECK_STR(s.local_date, "2026-11-02");
    CHECK(s.when == utc(2026, 11, 2, 5, 30));

    /* Tokyo, ahead of UTC: 23:59 local is 14:59Z the same day, 00:00 is 15:00Z the day before. */
    p = pattern(ALL, 0);
    CHECK(slots_next(&p, "Asia/Tokyo", utc(2026, 1, 1, 0, 0), &s, err, sizeof(err)) == 0);
    CHECK_STR(s.local_date, "2026-01-02");
    CHECK(s.when == utc(2026, 1, 1, 15, 0));
}

/* Samoa skipped 2011-12-30: that day's slot falls when the gap ends
 * (2011-12-31 00:00 local); with a 00:00 time it coincides with the 31st's,
 * and the walk reports that instant once. */
static void test_skipped_day(void)
{
    char err[256] = "";
    slot s;
    slot_pattern p = pattern(ALL, 9 * 60);
    CHECK(slots_next(&p, "Pacific/Apia", utc(2011, 12, 29, 0, 0), &s, err, sizeof(err)) == 0);
    CHECK_STR(s.local_date, "2011-12-29");
    CHECK(slots_next(&p, "Pacific/Apia", s.when, &s, err, sizeof(err)) == 0);
    CHECK_STR(s.local_date, "2011-12-30");
    CHECK(s.when == utc(2011, 12, 30, 10, 0));
    CHECK(slots_next(&p, "Pacific/Apia", s.when, &s, err, sizeof(err)) == 0);
    CHECK_STR(s.local_date, "2011-12-31");
    CHECK(s.when == utc(2011, 12, 30, 19, 0));

    p = pattern(ALL, 0);
    CHECK(slots_next(&p, "Pacific/Apia", utc(2011, 12, 29, 12, 0), &s, err, sizeof(err)) == 0);
    CHECK_STR(s.local_date, "2011-12-30");
    CHECK(s.when == utc(2011, 12, 30, 10, 0));
    CHECK(slots_next(&p, "Pacific/Apia", s.when, &s, err, sizeof(err)) == 0);
    CHECK_STR(s.local_date, "2012-01-01");
}

static void test_errors(void)
{
    char err[256];
    slot s;
    slot_pattern p = pattern(ALL, 600);
    static const char *bad[] = {
        "Mars/Olympus_Mons", "../etc/passwd", "America/../UTC", "/etc/passwd", "", "America",
        "zone.tab", "America//New_York", "America/New_York/", "./UTC", "right/UTC", "UTC\n",
        "America/New York", "iso3166.tab", "tzdata.zi",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        CHECK(slots_next(&p, bad[i], 0, &s, err, sizeof(err)) == -1);
        CHECK(err[0] != '\0');
        CHECK(!slots_zone_known(bad[i]));
    }
    err[0] = '\0';
    CHECK(slots_next(&p, "Mars/Olympus_Mons", 0, &s, err, sizeof(err)) == -1);
    CHECK(strstr(err, "Mars/Olympus_Mons") != NULL);
    CHECK(slots_next(&p, NULL, 0, &s, err, sizeof(err)) == -1);
    CHECK(!slots_zone_known(NULL));

    static const char *good[] = {"UTC", "Etc/UTC", "America/New_York", "Europe/London",
                                 "America/Argentina/Buenos_Aires", "Etc/GMT+5"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        CHECK(slots_zone_known(good[i]));

    slot_pattern none = pattern("\0\0\0\0\0\0\0", 600);
    err[0] = '\0';
    CHECK(slots_next(&none, "UTC", 0, &s, err, sizeof(err)) == -1);
    CHECK(err[0] != '\0');

    slot_pattern late = pattern(ALL, 1440);
    CHECK(slots_next(&late, "UTC", 0, &s, err, sizeof(err)) == -1);
    slot_pattern early = pattern(ALL, -1);
    CHECK(slots_next(&early, "UTC", 0, &s, err, sizeof(err)) == -1);
    slot_pattern weird = pattern("\3\0\0\0\0\0\0", 600);
    CHECK(slots_next(&weird, "UTC", 0, &s, err, sizeof(err)) == -1);
    CHECK(slots_next(&p, "UTC", INT64_MAX, &s, err, sizeof(err)) == -1);
    CHECK(slots_next(&p, "UTC", INT64_MIN, &s, err, sizeof(err)) == -1);

    int off = 1;
    CHECK(slots_utc_offset("Nowhere/Special", 0, &off, err, sizeof(err)) == -1);
    CHECK(slots_utc_offset("America/New_York", utc(2026, 1, 15, 0, 0), &off, err, sizeof(err)) == 0);
    CHECK(off == -5 * 3600);

    /* a NULL or tiny error buffer is fine */
    CHECK(slots_next(&none, "UTC", 0, &s, NULL, 0) == -1);
    char tiny[4];
    CHECK(slots_next(&p, "No/Such_Zone", 0, &s, tiny, sizeof(tiny)) == -1);
    CHECK(strlen(tiny) < sizeof(tiny));
}

static void test_cache_clear(void)
{
    char err[256] = "";
    slot s;
    slot_pattern p = pattern(ALL, 600);
    CHECK(slots_next(&p, "Europe/London", utc(2026, 1, 1, 0, 0), &s, err, sizeof(err)) == 0);
    slots_cache_clear();
    slots_cache_clear();
    slot s2;
    CHECK(slots_next(&p, "Europe/London", utc(2026, 1, 1, 0, 0), &s2, err, sizeof(err)) == 0);
    CHECK(s.when == s2.when);
    CHECK(s.when == utc(2026, 1, 1, 10, 0));
}

int main(void)
{
    T_RUN(test_daily_utc);
    T_RUN(test_strictly_after);
    T_RUN(test_weekly_new_york);
    T_RUN(test_weekly_once);
    T_RUN(test_dst_every_minute);
    T_RUN(test_dst_walk);
    T_RUN(test_year_walk);
    T_RUN(test_offsets_match_glibc);
    T_RUN(test_midnight_and_last_minute);
    T_RUN(test_skipped_day);
    T_RUN(test_errors);
    T_RUN(test_cache_clear);
    slots_cache_clear();
    T_END();
}
