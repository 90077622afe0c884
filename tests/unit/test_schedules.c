/* test_schedules: the scheduler's timing step driven by a controllable
 * clock against a real control.db — daily and weekly patterns, every DST
 * change in New York and London 2026-2030, missed slots, a scheduler
 * killed at a claim, two schedulers on one control.db — and the schedule
 * verbs' checks. No broker or Redis: what the step queues is read back
 * from the outbox table it writes. */
#include "schedule_parse.h"
#include "schedule_timing.h"
#include "t.h"
#include "t_control.h"

#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define DAY 86400
#define HOUR 3600

static const char *PROFILE =
    "MatchUsingDistrictID=true\nInputRowsToSkip=1\nfield_districtID={1}\nfield_lastName={2}\nfield_patronType={3}\n";

typedef t_env env;

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

static void set_clock(env *e, int64_t t)
{
    char text[32];
    int n = snprintf(text, sizeof(text), "%lld\n", (long long)t);
    file_write_atomic(e->cfg.test_clock_file, text, (size_t)n, NULL, 0);
}

static int db_open(env *e)
{
    return t_env_db_open(e);
}

static void db_close(env *e)
{
    t_env_db_close(e);
}

static void env_open(env *e, const char *tz)
{
    t_env_make(e, "test_schedules");
    config_set(&e->cfg, "timezone", tz, NULL, 0);
    char clock[300];
    snprintf(clock, sizeof(clock), "%s/clock", e->dir);
    config_set(&e->cfg, "test_clock_file", clock, NULL, 0);
    t_env_finish(e);
}

static void env_close(env *e)
{
    t_env_remove(e);
}

/* One schedule.* request; kv: key, value, ..., NULL. The reply body (or
 * the error) into out; the status (0 ok). */
static int verb(env *e, const char *v, const char *name, const char *payload, char *out, size_t outlen, ...)
{
    Patronsync__ControlRequest rq;
    Patronsync__ControlRequest__OptsEntry ents[32], *ptrs[32];
    char vb[64], *args[1];
    snprintf(vb, sizeof(vb), "schedule.%s", v);
    va_list ap;
    va_start(ap, outlen);
    t_request(&rq, args, ents, ptrs, 32, vb, name, payload, ap);
    va_end(ap);
    Patronsync__ControlReply rep = PATRONSYNC__CONTROL_REPLY__INIT;
    rep.ok = 1; /* as control_handle sets it before dispatching */
    rep.error = "";
    strbuf body;
    sb_init(&body);
    control_dispatch(&e->s, "tester", &rq, &rep, &body);
    if (out)
        str_copy(out, outlen, rep.ok ? sb_str(&body) : rep.error);
    int rc = rep.ok ? rep.status : (rep.status ? rep.status : 1);
    sb_free(&body);
    return rc;
}

static int64_t count(env *e, const char *sql)
{
    return t_count(e, sql);
}

/* The job requests queued, in job id order. */
typedef struct {
    Patronsync__JobRequest **v;
    size_t n;
} queued;

static void queued_load(env *e, queued *q)
{
    memset(q, 0, sizeof(*q));
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(e->q, "SELECT request FROM outbox ORDER BY job_id", -1, &st, NULL);
    while (sqlite3_step(st) == SQLITE_ROW) {
        q->v = realloc(q->v, (q->n + 1) * sizeof(*q->v));
        q->v[q->n++] = patronsync__job_request__unpack(NULL, (size_t)sqlite3_column_bytes(st, 0), sqlite3_column_blob(st, 0));
    }
    sqlite3_finalize(st);
}

static void queued_free(queued *q)
{
    for (size_t i = 0; i < q->n; i++)
        if (q->v[i])
            patronsync__job_request__free_unpacked(q->v[i], NULL);
    free(q->v);
}

/* ---- an independent oracle: glibc's localtime in the zone ---- */

static void oracle_zone(const char *tz)
{
    setenv("TZ", tz, 1);
    tzset();
}

static int64_t oracle_local(int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    localtime_r(&tt, &tm);
    return t + tm.tm_gmtoff;
}

/* The smallest instant whose wall clock reads L (local seconds) or later:
 * checked by looking back three hours minute by minute (covers every
 * overlap of these zones). */
static int oracle_is_slot(int64_t when, int64_t L)
{
    if (oracle_local(when) < L)
        return 0;
    for (int k = 1; k <= 180; k++)
        if (oracle_local(when - k * 60) >= L)
            return 0;
    return 1;
}

/* Local midnight-based day number of a "YYYY-MM-DD" date. */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

static int64_t date_days(const char *d)
{
    return utc(digits(d, 4), digits(d + 5, 2), digits(d + 8, 2), 0, 0) / DAY;
}

/* ---- cases ---- */

static void test_parse(void)
{
    unsigned char set[7];
    char err[256];
    CHECK(schedules_parse_days("mon-fri", set, err, sizeof(err)) == 0);
    CHECK(memcmp(set, "\0\1\1\1\1\1\0", 7) == 0);
    CHECK(schedules_parse_days("Sat, sunday", set, err, sizeof(err)) == 0);
    CHECK(memcmp(set, "\1\0\0\0\0\0\1", 7) == 0);
    CHECK(schedules_parse_days("fri-mon", set, err, sizeof(err)) == 0);
    CHECK(memcmp(set, "\1\1\0\0\0\1\1", 7) == 0);
    CHECK(schedules_parse_days("daily", set, err, sizeof(err)) == 0);
    CHECK(memcmp(set, "\1\1\1\1\1\1\1", 7) == 0);
    CHECK(schedules_parse_days("weekdays,weekends", set, err, sizeof(err)) == 0);
    CHECK(memcmp(set, "\1\1\1\1\1\1\1", 7) == 0);
    CHECK(schedules_parse_days("funday", set, err, sizeof(err)) < 0);
    CHECK(strstr(err, "'funday'") != NULL);
    int m;
    CHECK(schedules_parse_time("06:30", &m, err, sizeof(err)) == 0 && m == 390);
    CHECK(schedules_parse_time("6:30", &m, err, sizeof(err)) == 0 && m == 390);
    CHECK(schedules_parse_time("6:30 PM", &m, err, sizeof(err)) == 0 && m == 18 * 60 + 30);
    CHECK(schedules_parse_time("12:00am", &m, err, sizeof(err)) == 0 && m == 0);
    CHECK(schedules_parse_time("12:05 pm", &m, err, sizeof(err)) == 0 && m == 12 * 60 + 5);
    CHECK(schedules_parse_time("23:59", &m, err, sizeof(err)) == 0 && m == 1439);
    CHECK(schedules_parse_time("24:00", &m, err, sizeof(err)) < 0);
    CHECK(schedules_parse_time("13:00 pm", &m, err, sizeof(err)) < 0);
    CHECK(schedules_parse_time("7", &m, err, sizeof(err)) < 0);
    CHECK(schedules_parse_time("07:5", &m, err, sizeof(err)) < 0);
}

static void test_refusals(void)
{
    env e;
    env_open(&e, "America/New_York");
    set_clock(&e, utc(2026, 1, 5, 12, 0));
    char out[2048];
    char longname[200];
    memset(longname, 'x', 129);
    longname[129] = '\0';
/* The first of a key wins: the case's own settings, then the defaults. */
#define ADD(name, ...) verb(&e, "add", name, PROFILE, out, sizeof(out), __VA_ARGS__, "file", "f.csv", "time", "06:00", NULL)
    CHECK(ADD(longname, "full", "daily") == 2);
    CHECK(strstr(out, "1 to 128 characters") != NULL);
    longname[128] = '\0';
    CHECK(ADD(longname, "full", "daily") == 0);
    CHECK(ADD("n", "full", "daily", "file", "/etc/passwd") == 2);
    CHECK(strstr(out, "absolute") != NULL);
    CHECK(ADD("n", "full", "daily", "file", "a/../../x.csv") == 2);
    CHECK(strstr(out, "'..'") != NULL);
    CHECK(ADD("n", "none", "daily") == 2);
    CHECK(strstr(out, "at least one day") != NULL);
    CHECK(ADD("n", "incremental", "mon-fri", "keep_jobs", "1") == 2);
    CHECK_STR(out, "Number of jobs to keep must be at least 2 when any day runs Incremental.");
    CHECK(ADD("n", "full", "mon-fri", "keep_jobs", "100") == 2);
    CHECK_STR(out, "Number of jobs to keep must be between 1 and 99.");
    CHECK(ADD("n", "full", "daily", "min_records", "1000000") == 2);
    CHECK_STR(out, "Patron records read must be between 0 and 999,999.");
    CHECK(ADD("n", "full", "daily", "min_records", "-1") == 2);
    CHECK_STR(out, "Patron records read must be between 0 and 999,999.");
    CHECK(ADD("n", "full", "daily", "days_before_inactivate", "1000") == 2);
    CHECK_STR(out, "Number of days before inactivating patrons must be between 0 and 999.");
    CHECK(ADD("n", "full", "daily", "inactive_homeroom", "Gone") == 2);
    CHECK_STR(out, "An inactive homeroom can be set only when patrons missing from the file are inactivated.");
    CHECK(ADD("n", "full", "daily", "max_delete_pct", "101") == 2);
    CHECK(ADD("n", "full", "daily", "encoding", "klingon-8") == 2);
    CHECK(strstr(out, "klingon-8") != NULL);
    CHECK(ADD("n", "full", "daily", "time", "25:00") == 2);
    CHECK(ADD("n", "full", "daily", "colour", "blue") == 2);
    CHECK(strstr(out, "unknown schedule setting 'colour'") != NULL);
    CHECK(verb(&e, "add", "n", "field_nothing={1}\n", out, sizeof(out), "file", "f.csv", "time", "06:00", "full", "daily",
               NULL) == 2);
    CHECK(strstr(out, "properties file refused") != NULL);
    CHECK(verb(&e, "add", "n", NULL, out, sizeof(out), "file", "f.csv", "time", "06:00", "full", "daily", NULL) == 2);
    CHECK(strstr(out, "properties file is required") != NULL);
    /* A good one, then its name again in other case. */
    CHECK(ADD("Students", "full", "daily", "keep_jobs", "5", "inactivate_missing", "yes", "min_records", "999999",
              "days_before_inactivate", "999", "inactive_homeroom", "Withdrawn", "delete_after_days", "30",
              "scope_sites", "LHS, LES", "scope_types", "Student", "max_add_pct", "off", "max_update_pct", "50%") == 0);
    CHECK(ADD("students", "full", "daily") == 2);
    CHECK(strstr(out, "already exists") != NULL);
    CHECK(verb(&e, "show", "STUDENTS", NULL, out, sizeof(out), NULL) == 0);
    CHECK(strstr(out, "Minimum patron records read:             999999") != NULL);
    CHECK(strstr(out, "Scope, sites:                            LHS, LES") != NULL);
    CHECK(strstr(out, "Hold when updates exceed:                50%") != NULL);
    CHECK(strstr(out, "Created by:       tester") != NULL);
    CHECK(verb(&e, "show", longname, NULL, out, sizeof(out), NULL) == 0); /* no threshold set: the defaults */
    CHECK(strstr(out, "Hold when removals (both) exceed:        10% (default)") != NULL);
    CHECK(strstr(out, "Hold when updates exceed:                75% (default)") != NULL);
    CHECK(strstr(out, "Hold when adds exceed:                   off") != NULL);
    CHECK(verb(&e, "show", "nobody", NULL, out, sizeof(out), NULL) == 5);
    /* Edit: a bad value changes nothing. */
    CHECK(verb(&e, "edit", "Students", NULL, out, sizeof(out), "none", "daily", NULL) == 2);
    CHECK(verb(&e, "edit", "Students", NULL, out, sizeof(out), "name", "Students 2", "incremental", "sat,sun",
               "scope_sites", "file", NULL) == 0);
    CHECK(strstr(out, "Full Mon-Fri; Incremental Sat, Sun") != NULL);
    CHECK(verb(&e, "show", "Students 2", NULL, out, sizeof(out), NULL) == 0);
    CHECK(strstr(out, "Scope, sites:                            the sites in the file") != NULL);
    CHECK(strstr(out, "Minimum patron records read:             999999") != NULL); /* kept by the edit */
    CHECK(verb(&e, "show", "Students", NULL, out, sizeof(out), NULL) == 5);
    CHECK(verb(&e, "delete", "students 2", NULL, out, sizeof(out), NULL) == 0);
    CHECK(count(&e, "SELECT count(*) FROM schedules") == 1);
#undef ADD
    env_close(&e);
}

/* Daily, weekly and weekend patterns over eight weeks in Chicago, the
 * clock moving in 15-minute steps: every job at its instant, with its
 * mode, id and request. */
static void test_patterns_weeks(void)
{
    env e;
    env_open(&e, "America/Chicago");
    int64_t start = utc(2026, 4, 5, 12, 0); /* Sunday, after the March change */
    set_clock(&e, start);
    char out[2048];
    CHECK(verb(&e, "add", "daily", PROFILE, out, sizeof(out), "file", "d.csv", "time", "06:00", "full", "daily", NULL) == 0);
    CHECK(verb(&e, "add", "weekly", PROFILE, out, sizeof(out), "file", "w.csv", "time", "18:30", "full", "mon",
               "incremental", "wed,fri", "keep_jobs", "3", NULL) == 0);
    CHECK(verb(&e, "add", "weekend", PROFILE, out, sizeof(out), "file", "e.csv", "time", "23:59", "full", "weekends",
               "allow_delete_outstanding", "yes", "errors_only", "yes", NULL) == 0);
    int fired = 0, missed = 0;
    for (int64_t t = start; t <= start + 56 * DAY; t += 900) {
        schedules_tick_report rep;
        CHECK(schedules_tick(&e.s, t, &rep) == 0);
        fired += rep.fired;
        missed += rep.missed;
    }
    CHECK(missed == 0);
    oracle_zone("America/Chicago");
    queued q;
    queued_load(&e, &q);
    CHECK((int)q.n == fired);
    int per[3] = {0, 0, 0};
    for (size_t i = 0; i < q.n; i++) {
        Patronsync__JobRequest *r = q.v[i];
        CHECK(r != NULL);
        if (r == NULL)
            continue;
        int64_t at = r->fired_at_ms / 1000;
        int64_t local = oracle_local(at);
        int64_t day = local / DAY;
        int wd = (int)((day + 4) % 7);
        int minute = (int)(local % DAY / 60);
        int k = strcmp(r->schedule, "daily") == 0 ? 0 : strcmp(r->schedule, "weekly") == 0 ? 1 : 2;
        per[k]++;
        if (k == 0) {
            CHECK(minute == 360 && !r->options->incremental);
            CHECK_STR(r->file, "d.csv");
        } else if (k == 1) {
            CHECK(minute == 18 * 60 + 30);
            CHECK(wd == 1 || wd == 3 || wd == 5);
            CHECK(r->options->incremental == (wd != 1));
            CHECK(r->options->keep_jobs == 3);
        } else {
            CHECK(minute == 23 * 60 + 59);
            CHECK(wd == 0 || wd == 6);
            CHECK(r->options->allow_delete_outstanding && r->options->errors_only);
        }
        /* The id is the schedule's and the slot's local date. */
        char date[16];
        time_t tt = (time_t)local;
        struct tm tm;
        gmtime_r(&tt, &tm);
        strftime(date, sizeof(date), "-%Y%m%d", &tm);
        CHECK(strstr(r->job_id, date) != NULL && strncmp(r->job_id, r->options->schedule_id, strlen(r->options->schedule_id)) == 0);
        CHECK_STR(r->requested_by, "scheduler");
        CHECK(strstr(r->profile_text, "field_districtID") != NULL);
    }
    /* Sunday 12:00 to Sunday eight weeks later, 12:00. */
    CHECK(per[0] == 56);
    CHECK(per[1] == 24);
    CHECK(per[2] == 16);
    queued_free(&q);
    CHECK(count(&e, "SELECT count(*) FROM slots WHERE state<>'fired'") == 0);
    env_close(&e);
}

/* Every day 2026-2030 at wall times that fall in the spring gap or the
 * autumn overlap (and at their edges): exactly one job per local date, at
 * the first valid instant at or after the wall time. */
static void dst_zone(const char *tz, const int *minutes, int nm)
{
    env e;
    env_open(&e, tz);
    /* The clock moves in 3-hour steps: each slot is claimed up to 3 hours
     * late (inside a 4-hour grace window); its instant is the slot's own. */
    config_set(&e.cfg, "grace_minutes", "240", NULL, 0);
    int64_t start = utc(2025, 12, 31, 12, 0), end = utc(2031, 1, 1, 0, 0);
    set_clock(&e, start);
    char out[2048], name[32], tm_s[16];
    for (int i = 0; i < nm; i++) {
        snprintf(name, sizeof(name), "at-%d", minutes[i]);
        snprintf(tm_s, sizeof(tm_s), "%02d:%02d", minutes[i] / 60, minutes[i] % 60);
        CHECK(verb(&e, "add", name, PROFILE, out, sizeof(out), "file", "f.csv", "time", tm_s, "full", "daily", NULL) == 0);
    }
    for (int64_t t = start; t <= end; t += 3 * HOUR) {
        schedules_tick_report rep;
        CHECK(schedules_tick(&e.s, t, &rep) == 0);
        CHECK(rep.missed == 0 && rep.lost == 0);
    }
    oracle_zone(tz);
    int64_t first = date_days("2026-01-01"), last = date_days("2030-12-31");
    for (int i = 0; i < nm; i++) {
        sqlite3_stmt *st = NULL;
        sqlite3_prepare_v2(e.q,
                           "SELECT sl.local_date, sl.at, sl.state, o.job_id IS NOT NULL FROM slots sl JOIN schedules s ON "
                           "s.id=sl.schedule_id LEFT JOIN outbox o ON o.job_id=sl.job_id WHERE s.minute=? ORDER BY sl.at",
                           -1, &st, NULL);
        sqlite3_bind_int(st, 1, minutes[i]);
        int64_t want = first, prev_at = 0;
        int bad = 0, n = 0;
        while (sqlite3_step(st) == SQLITE_ROW) {
            int64_t d = date_days((const char *)sqlite3_column_text(st, 0));
            int64_t at = sqlite3_column_int64(st, 1);
            int ok = d == want && strcmp((const char *)sqlite3_column_text(st, 2), "fired") == 0 &&
                     sqlite3_column_int(st, 3) == 1 && at > prev_at &&
                     oracle_is_slot(at, d * DAY + (int64_t)minutes[i] * 60);
            if (!ok && bad++ < 3)
                printf("  %s %02d:%02d: slot %s at %lld wrong\n", tz, minutes[i] / 60, minutes[i] % 60,
                       sqlite3_column_text(st, 0), (long long)at);
            want = d + 1;
            prev_at = at;
            n++;
        }
        sqlite3_finalize(st);
        CHECK(bad == 0);
        CHECK(n == last - first + 1); /* zero doubles, zero skips */
        CHECK(want == last + 1);
    }
    CHECK(count(&e, "SELECT count(*) FROM outbox") == (last - first + 1) * nm);
    env_close(&e);
}

static void test_dst_new_york(void)
{
    const int m[4] = {60, 90, 120, 150}; /* 01:00 01:30 (overlap), 02:00 02:30 (gap) */
    dst_zone("America/New_York", m, 4);
}

static void test_dst_london(void)
{
    const int m[4] = {30, 60, 90, 120}; /* 01:00 01:30 (gap and overlap), 00:30, 02:00 */
    dst_zone("Europe/London", m, 4);
}

/* Down across three daily slots: the newest, within the grace window,
 * runs once; the two before are recorded as missed. Down again past the
 * grace window: nothing runs, all three are missed. */
static void test_down_three_slots(void)
{
    env e;
    env_open(&e, "America/New_York");
    config_set(&e.cfg, "grace_minutes", "60", NULL, 0);
    int64_t t0 = utc(2026, 6, 1, 12, 0); /* 08:00 EDT */
    set_clock(&e, t0);
    char out[4096];
    CHECK(verb(&e, "add", "daily", PROFILE, out, sizeof(out), "file", "d.csv", "time", "06:00", "full", "daily", NULL) == 0);
    int64_t at = utc(2026, 6, 2, 10, 0); /* 06:00 EDT */
    schedules_tick_report rep;
    CHECK(schedules_tick(&e.s, at - 1, &rep) == 0 && rep.fired == 0);
    CHECK(schedules_tick(&e.s, at, &rep) == 0 && rep.fired == 1);
    /* Down for the next three slots; back 40 minutes after the third. */
    CHECK(schedules_tick(&e.s, at + 3 * DAY + 40 * 60, &rep) == 0);
    CHECK(rep.fired == 1 && rep.missed == 2);
    CHECK(count(&e, "SELECT count(*) FROM outbox") == 2);
    CHECK(count(&e, "SELECT count(*) FROM outbox WHERE job_id LIKE '%-20260605'") == 1);
    CHECK(count(&e, "SELECT count(*) FROM slots WHERE state='missed' AND local_date IN ('2026-06-03','2026-06-04')") == 2);
    /* Starting again changes nothing. */
    CHECK(schedules_tick(&e.s, at + 3 * DAY + 41 * 60, &rep) == 0 && rep.fired + rep.missed + rep.lost == 0);
    /* Down for three more, back 2 hours after the last: past the grace window. */
    CHECK(schedules_tick(&e.s, at + 6 * DAY + 2 * HOUR, &rep) == 0);
    CHECK(rep.fired == 0 && rep.missed == 3);
    CHECK(count(&e, "SELECT count(*) FROM outbox") == 2);
    set_clock(&e, at + 6 * DAY + 2 * HOUR);
    CHECK(verb(&e, "show", "daily", NULL, out, sizeof(out), NULL) == 0);
    CHECK(strstr(out, "Missed slots:     5 (latest 2026-06-08)") != NULL);
    CHECK(strstr(out, "past the grace window of 60 minutes") != NULL);
    CHECK(strstr(out, "a later slot (2026-06-05) was due too") != NULL);
    CHECK(verb(&e, "list", NULL, NULL, out, sizeof(out), NULL) == 0);
    CHECK(strstr(out, "2026-06-09 06:00 Full") != NULL);
    env_close(&e);
}

/* Killed at the claim: before its commit (nothing happened: the slot runs
 * after the restart), and after it (the job waits in the outbox; the
 * restart does not claim it again). */
static void test_killed_at_claim(void)
{
    env e;
    env_open(&e, "Europe/London");
    int64_t t0 = utc(2026, 9, 1, 12, 0);
    set_clock(&e, t0);
    char out[2048];
    CHECK(verb(&e, "add", "daily", PROFILE, out, sizeof(out), "file", "d.csv", "time", "07:00", "full", "daily", NULL) == 0);
    int64_t at = utc(2026, 9, 2, 6, 0); /* 07:00 BST */
    for (int fault = 1; fault <= 2; fault++) {
        /* SQLite connections must not cross a fork: the child opens its own. */
        db_close(&e);
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            env c = e; /* its own connection, as a separate scheduler process */
            c.s.cfg = &c.cfg;
            char f[4];
            snprintf(f, sizeof(f), "%d", fault);
            config_set(&c.cfg, "test_fault_claim", f, NULL, 0);
            if (db_open(&c) < 0)
                _exit(3);
            schedules_tick(&c.s, at + (fault - 1) * DAY + 10, NULL);
            _exit(0); /* not reached: the fault switch kills it */
        }
        int st = 0;
        waitpid(pid, &st, 0);
        CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
        CHECK(db_open(&e) == 0); /* the restarted scheduler */
        if (fault == 1) {
            CHECK(count(&e, "SELECT count(*) FROM slots") == 0);
            CHECK(count(&e, "SELECT count(*) FROM outbox") == 0);
            schedules_tick_report rep;
            CHECK(schedules_tick(&e.s, at + 20, &rep) == 0 && rep.fired == 1);
        } else {
            CHECK(count(&e, "SELECT count(*) FROM slots") == 2);
            CHECK(count(&e, "SELECT count(*) FROM outbox WHERE acked_ms IS NULL AND last_sent_ms=0") == 2);
            schedules_tick_report rep;
            CHECK(schedules_tick(&e.s, at + DAY + 20, &rep) == 0 && rep.fired + rep.missed + rep.lost == 0);
        }
    }
    CHECK(count(&e, "SELECT count(DISTINCT job_id) FROM outbox") == 2);
    env_close(&e);
}

/* Two schedulers on one control.db, each its own process and connection,
 * stepping through the same clock: hundreds of slots, each claimed and
 * queued exactly once. */
typedef struct {
    volatile int64_t clock;
    volatile int64_t seen[2];
    volatile int stop;
    volatile int fired[2], lost[2], errors[2];
} shared_clock;

static void test_two_schedulers(void)
{
    env e;
    env_open(&e, "America/New_York");
    int64_t t0 = utc(2026, 10, 1, 12, 0);
    set_clock(&e, t0);
    char out[2048], name[16];
    enum { NSCHED = 10, NDAYS = 60 };
    for (int i = 0; i < NSCHED; i++) {
        snprintf(name, sizeof(name), "s%d", i);
        /* All at the same minute: every slot is raced for. */
        CHECK(verb(&e, "add", name, PROFILE, out, sizeof(out), "file", "f.csv", "time", "06:00", "full", "daily",
                   "incremental", i % 2 ? "sat" : "sun", "keep_jobs", "2", NULL) == 0);
    }
    shared_clock *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(sh != MAP_FAILED);
    if (sh == MAP_FAILED)
        return;
    memset((void *)sh, 0, sizeof(*sh));
    __atomic_store_n(&sh->clock, t0, __ATOMIC_SEQ_CST);
    pid_t kids[2];
    db_close(&e);
    fflush(stdout);
    for (int k = 0; k < 2; k++) {
        kids[k] = fork();
        if (kids[k] == 0) {
            env c = e;
            c.s.cfg = &c.cfg;
            if (db_open(&c) < 0)
                _exit(3);
            int64_t last = 0;
            while (!__atomic_load_n(&sh->stop, __ATOMIC_SEQ_CST)) {
                int64_t t = __atomic_load_n(&sh->clock, __ATOMIC_SEQ_CST);
                if (t == last) {
                    usleep(20);
                    continue;
                }
                schedules_tick_report rep;
                if (schedules_tick(&c.s, t, &rep) < 0)
                    sh->errors[k]++;
                sh->fired[k] += rep.fired;
                sh->lost[k] += rep.lost;
                last = t;
                __atomic_store_n(&sh->seen[k], t, __ATOMIC_SEQ_CST);
            }
            db_close(&c);
            _exit(0);
        }
    }
    for (int64_t t = t0 + 2 * HOUR; t <= t0 + NDAYS * DAY; t += 2 * HOUR) {
        __atomic_store_n(&sh->clock, t, __ATOMIC_SEQ_CST);
        while (__atomic_load_n(&sh->seen[0], __ATOMIC_SEQ_CST) != t || __atomic_load_n(&sh->seen[1], __ATOMIC_SEQ_CST) != t)
            usleep(20);
    }
    __atomic_store_n(&sh->stop, 1, __ATOMIC_SEQ_CST);
    for (int k = 0; k < 2; k++) {
        int st = 0;
        waitpid(kids[k], &st, 0);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    CHECK(db_open(&e) == 0);
    int64_t slots = (int64_t)NSCHED * NDAYS;
    printf("  two schedulers: %lld slots; claimed %d by one, %d by the other (%d + %d found claimed)\n",
           (long long)slots, sh->fired[0], sh->fired[1], sh->lost[0], sh->lost[1]);
    CHECK(sh->errors[0] == 0 && sh->errors[1] == 0);
    CHECK(sh->fired[0] + sh->fired[1] == slots);
    CHECK(count(&e, "SELECT count(*) FROM slots WHERE state='fired'") == slots);
    CHECK(count(&e, "SELECT count(*) FROM outbox") == slots);
    CHECK(count(&e, "SELECT count(*) FROM runs") == slots);
    CHECK(count(&e, "SELECT count(DISTINCT claimed_by) FROM slots") == 2);
    munmap((void *)sh, sizeof(*sh));
    env_close(&e);
}

/* Edits and disabling take effect from now; run-now queues a request that
 * carries everything, so editing or deleting the schedule afterwards does
 * not change the job; a stored properties file that no longer parses is
 * never run. */
static void test_edit_disable_run(void)
{
    env e;
    env_open(&e, "America/New_York");
    int64_t t0 = utc(2026, 5, 4, 15, 0); /* Monday 11:00 EDT */
    set_clock(&e, t0);
    char out[4096];
    CHECK(verb(&e, "add", "staff", PROFILE, out, sizeof(out), "file", "staff.csv", "time", "12:00", "incremental",
               "mon-fri", NULL) == 0);
    /* 11:30: moved to 11:00, already past today: not due, not missed. */
    schedules_tick_report rep;
    set_clock(&e, t0 + 1800);
    CHECK(verb(&e, "edit", "staff", NULL, out, sizeof(out), "time", "11:00", NULL) == 0);
    CHECK(schedules_tick(&e.s, t0 + 1801, &rep) == 0 && rep.fired + rep.missed == 0);
    CHECK(strstr(out, "next run: 2026-05-05 11:00 -04:00 (Incremental)") != NULL);
    /* Disabled over Tuesday's slot, enabled Wednesday: Tuesday is neither run nor missed. */
    CHECK(verb(&e, "disable", "staff", NULL, out, sizeof(out), NULL) == 0);
    CHECK(strstr(out, "next run: Disabled") != NULL);
    CHECK(schedules_tick(&e.s, t0 + DAY + HOUR, &rep) == 0 && rep.fired + rep.missed == 0);
    set_clock(&e, t0 + 2 * DAY - HOUR);
    CHECK(verb(&e, "enable", "staff", NULL, out, sizeof(out), NULL) == 0);
    CHECK(schedules_tick(&e.s, t0 + 2 * DAY + 1, &rep) == 0 && rep.fired == 1 && rep.missed == 0);
    /* Run now: Full unless asked; a dry run when asked. */
    CHECK(verb(&e, "run", "staff", NULL, out, sizeof(out), NULL) == 0);
    char id1[128];
    str_copy(id1, sizeof(id1), out);
    id1[strcspn(id1, "\n")] = '\0';
    CHECK(verb(&e, "run", "staff", NULL, out, sizeof(out), "mode", "incremental", "dry_run", "1", NULL) == 0);
    CHECK(verb(&e, "run", "staff", NULL, out, sizeof(out), "mode", "sideways", NULL) == 2);
    queued q;
    queued_load(&e, &q);
    CHECK(q.n == 3);
    int full = 0, dry_incr = 0;
    for (size_t i = 0; i < q.n; i++) {
        if (strstr(q.v[i]->job_id, "-run-") == NULL)
            continue;
        if (!q.v[i]->options->incremental && !q.v[i]->options->dry_run && strcmp(q.v[i]->job_id, id1) == 0)
            full++;
        if (q.v[i]->options->incremental && q.v[i]->options->dry_run)
            dry_incr++;
        CHECK_STR(q.v[i]->requested_by, "tester");
    }
    CHECK(full == 1 && dry_incr == 1);
    queued_free(&q);
    /* Edit the file and properties, then delete: the queued requests keep theirs. */
    CHECK(verb(&e, "edit", "staff", "field_districtID={2}\nfield_lastName={1}\nfield_patronType={3}\n", out, sizeof(out),
               "file", "other.csv", "profile_name", "new.properties", NULL) == 0);
    CHECK(verb(&e, "delete", "staff", NULL, out, sizeof(out), NULL) == 0);
    queued_load(&e, &q);
    CHECK(q.n == 3);
    for (size_t i = 0; i < q.n; i++) {
        CHECK_STR(q.v[i]->file, "staff.csv");
        CHECK_STR(q.v[i]->profile_text, PROFILE);
    }
    queued_free(&q);
    CHECK(count(&e, "SELECT count(*) FROM slots") + count(&e, "SELECT count(*) FROM runs") == 0);
    /* A stored properties file that does not parse: the slot is claimed, never run. */
    CHECK(verb(&e, "add", "broken", PROFILE, out, sizeof(out), "file", "b.csv", "time", "12:00", "full", "daily", NULL) == 0);
    sqlite3_exec(e.q, "UPDATE schedules SET profile_text='field_nosuch={1}' WHERE name='broken'", NULL, NULL, NULL);
    CHECK(schedules_tick(&e.s, t0 + 3 * DAY + HOUR + 1, &rep) == 0 && rep.refused == 1 && rep.fired == 0);
    CHECK(count(&e, "SELECT count(*) FROM outbox") == 3);
    CHECK(count(&e, "SELECT count(*) FROM slots WHERE state='refused' AND note LIKE 'properties file refused%'") == 1);
    CHECK(verb(&e, "run", "broken", NULL, out, sizeof(out), NULL) == 2);
    CHECK(strstr(out, "properties file refused") != NULL);
    env_close(&e);
}

int main(void)
{
    log_init("test_schedules", LOG_ERROR);
    T_RUN(test_parse);
    T_RUN(test_refusals);
    T_RUN(test_patterns_weeks);
    T_RUN(test_dst_new_york);
    T_RUN(test_dst_london);
    T_RUN(test_down_three_slots);
    T_RUN(test_killed_at_claim);
    T_RUN(test_two_schedulers);
    T_RUN(test_edit_disable_run);
    T_END();
}
