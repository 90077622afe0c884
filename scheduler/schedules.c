/* schedules: scheduled patron updates — definitions in control.db, the
 * "schedule.*" control verbs, and the timing step that claims each due
 * slot and queues its job exactly once. docs/SCHEDULES.md explains the
 * tables and the rules; changing a table means a migration step here. */
#include "schedules.h"

#include <ctype.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "encoding.h"
#include "log.h"
#include "patron.h"
#include "profile.h"
#include "safety.h"
#include "summary.h"

/* control.db, schedule part. A slot row is the claim: UNIQUE(schedule_id,
 * local_date) is what makes a slot fire once whatever the number of
 * schedulers or restarts. `runs` lists every job a schedule made (slots
 * and run-nows) for "last run" and for pruning old jobs. */
static const char *schema =
    "CREATE TABLE IF NOT EXISTS schedules(\n"
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "  uid TEXT NOT NULL UNIQUE,\n"
    "  name TEXT NOT NULL UNIQUE COLLATE NOCASE,\n"
    "  file TEXT NOT NULL,\n"
    "  encoding TEXT NOT NULL DEFAULT '',\n"
    "  profile_name TEXT NOT NULL,\n"
    "  profile_text TEXT NOT NULL,\n"
    "  days TEXT NOT NULL,\n"
    "  minute INTEGER NOT NULL,\n"
    "  disabled INTEGER NOT NULL DEFAULT 0,\n"
    "  options BLOB NOT NULL,\n"
    "  created_by TEXT NOT NULL,\n"
    "  created_ms INTEGER NOT NULL,\n"
    "  updated_by TEXT NOT NULL,\n"
    "  updated_ms INTEGER NOT NULL,\n"
    "  baseline INTEGER NOT NULL);\n"
    "CREATE TABLE IF NOT EXISTS slots(\n"
    "  schedule_id INTEGER NOT NULL,\n"
    "  local_date TEXT NOT NULL,\n"
    "  at INTEGER NOT NULL,\n"
    "  mode INTEGER NOT NULL,\n"
    "  state TEXT NOT NULL,\n"
    "  job_id TEXT,\n"
    "  claimed_ms INTEGER NOT NULL,\n"
    "  claimed_by TEXT NOT NULL,\n"
    "  note TEXT NOT NULL DEFAULT '',\n"
    "  UNIQUE(schedule_id, local_date));\n"
    "CREATE INDEX IF NOT EXISTS slots_at ON slots(schedule_id, at);\n"
    "CREATE TABLE IF NOT EXISTS runs(\n"
    "  job_id TEXT PRIMARY KEY,\n"
    "  schedule_id INTEGER NOT NULL,\n"
    "  local_date TEXT NOT NULL DEFAULT '',\n"
    "  at INTEGER NOT NULL,\n"
    "  mode INTEGER NOT NULL,\n"
    "  requested_by TEXT NOT NULL,\n"
    "  dry_run INTEGER NOT NULL DEFAULT 0,\n"
    "  pruned INTEGER NOT NULL DEFAULT 0);\n"
    "CREATE INDEX IF NOT EXISTS runs_schedule ON runs(schedule_id, at);\n";

#define NAME_MAX_CHARS 128
#define FILE_MAX_BYTES 1000
#define PROFILE_MAX_BYTES (4u << 20)
#define DUE_MAX 100000      /* slots examined in one step: 270 years of a daily schedule */
#define ON_TIME_MIN_S 60    /* a running scheduler's own lateness is never "missed" */

static const char *day_abbr[7] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *day_full[7] = {"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"};

/* ---- a schedule in memory ---- */

/* A schedule's options: its own two, and the finishing-step and safety
 * options kept as lib/safety.c keeps them (its lists and strings are
 * allocated: opts_free). */
typedef struct {
    int errors_only;
    int keep_jobs; /* 0: keep every job */
    Patronsync__JobOptions safe;
} sched_opts;

typedef struct {
    int64_t id;
    char uid[24];
    char *name, *file, *encoding, *profile_name, *profile_text;
    char days[8]; /* Sunday..Saturday: N none, F full, I incremental */
    int minute;
    int disabled;
    sched_opts o;
    char created_by[128], updated_by[128];
    int64_t created_ms, updated_ms;
    int64_t baseline; /* UTC seconds: slots at or before it are never due */
} sched;

static void opts_free(sched_opts *o);

static void sched_free(sched *sc)
{
    opts_free(&sc->o);
    free(sc->name);
    free(sc->file);
    free(sc->encoding);
    free(sc->profile_name);
    free(sc->profile_text);
    memset(sc, 0, sizeof(*sc));
}

static int set_str(char **dst, const char *src, size_t len)
{
    char *v = malloc(len + 1);
    if (v == NULL)
        return -1;
    memcpy(v, src, len);
    v[len] = '\0';
    free(*dst);
    *dst = v;
    return 0;
}

static void opts_defaults(sched_opts *o)
{
    o->errors_only = 0;
    o->keep_jobs = 0;
    safety_options_init(&o->safe);
}

static void opts_free(sched_opts *o)
{
    safety_option_lists_free(&o->safe);
}

static char **list_copy(char *const *v, size_t n)
{
    char **out = calloc(n ? n : 1, sizeof(char *));
    for (size_t i = 0; out && i < n; i++) {
        out[i] = strdup(v[i]);
        if (out[i] == NULL) {
            while (i > 0)
                free(out[--i]);
            free(out);
            return NULL;
        }
    }
    return out;
}

/* The stored options (a packed JobOptions). 0 / -1 (does not decode, no memory). */
static int opts_from_blob(sched_opts *o, const void *blob, size_t len)
{
    opts_defaults(o);
    Patronsync__JobOptions *jo = patronsync__job_options__unpack(NULL, len, blob);
    if (jo == NULL)
        return -1;
    int rc = 0;
    Patronsync__JobOptions *f = &o->safe;
    o->errors_only = jo->errors_only;
    o->keep_jobs = (int)jo->keep_jobs;
    f->allow_delete_outstanding = jo->allow_delete_outstanding;
    f->inactivate_missing = jo->inactivate_missing;
    f->min_records = jo->min_records;
    f->days_before_inactivate = jo->days_before_inactivate;
    f->delete_after_days = jo->delete_after_days;
    f->max_add_pct = jo->max_add_pct;
    f->max_update_pct = jo->max_update_pct;
    f->max_inactivate_pct = jo->max_inactivate_pct;
    f->max_delete_pct = jo->max_delete_pct;
    f->max_remove_pct = jo->max_remove_pct;
    f->thresholds_set = jo->thresholds_set;
    if (jo->inactive_homeroom[0] && safety_option_set(f, "inactive_homeroom", jo->inactive_homeroom, NULL, 0) < 0)
        rc = -1;
    f->scope_sites = list_copy(jo->scope_sites, jo->n_scope_sites);
    f->n_scope_sites = f->scope_sites ? jo->n_scope_sites : 0;
    f->scope_types = list_copy(jo->scope_types, jo->n_scope_types);
    f->n_scope_types = f->scope_types ? jo->n_scope_types : 0;
    if (f->scope_sites == NULL || f->scope_types == NULL)
        rc = -1;
    patronsync__job_options__free_unpacked(jo, NULL);
    return rc;
}

/* The JobOptions of a schedule: points into o, which must outlive jo. */
static void opts_to_job(const sched_opts *o, Patronsync__JobOptions *jo)
{
    *jo = o->safe;
    jo->errors_only = o->errors_only;
    jo->keep_jobs = (uint32_t)o->keep_jobs;
}

static uint8_t *opts_to_blob(const sched_opts *o, size_t *len)
{
    Patronsync__JobOptions jo;
    opts_to_job(o, &jo);
    *len = patronsync__job_options__get_packed_size(&jo);
    uint8_t *buf = malloc(*len ? *len : 1);
    if (buf != NULL)
        patronsync__job_options__pack(&jo, buf);
    return buf;
}

static slot_pattern sched_pattern(const sched *sc)
{
    slot_pattern p;
    for (int i = 0; i < 7; i++)
        p.day[i] = sc->days[i] == 'F' ? SLOT_FULL : sc->days[i] == 'I' ? SLOT_INCREMENTAL : SLOT_NONE;
    p.minute = sc->minute;
    return p;
}

static const char *mode_name(int mode)
{
    return mode == SLOT_INCREMENTAL ? "Incremental" : mode == SLOT_FULL ? "Full" : "None";
}

/* ---- the database ---- */

#define SCHED_COLS                                                                                               \
    "id,uid,name,file,encoding,profile_name,profile_text,days,minute,disabled,options,created_by,created_ms," \
    "updated_by,updated_ms,baseline"

static const char *col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *)t : "";
}

static int sched_from_row(sqlite3_stmt *st, sched *sc)
{
    memset(sc, 0, sizeof(*sc));
    sc->id = sqlite3_column_int64(st, 0);
    str_copy(sc->uid, sizeof(sc->uid), col_text(st, 1));
    const char *strs[5] = {col_text(st, 2), col_text(st, 3), col_text(st, 4), col_text(st, 5), col_text(st, 6)};
    char **dst[5] = {&sc->name, &sc->file, &sc->encoding, &sc->profile_name, &sc->profile_text};
    for (int i = 0; i < 5; i++)
        if (set_str(dst[i], strs[i], strlen(strs[i])) < 0)
            return -1;
    str_copy(sc->days, sizeof(sc->days), col_text(st, 7));
    sc->minute = sqlite3_column_int(st, 8);
    sc->disabled = sqlite3_column_int(st, 9);
    if (opts_from_blob(&sc->o, sqlite3_column_blob(st, 10), (size_t)sqlite3_column_bytes(st, 10)) < 0)
        return -1;
    str_copy(sc->created_by, sizeof(sc->created_by), col_text(st, 11));
    sc->created_ms = sqlite3_column_int64(st, 12);
    str_copy(sc->updated_by, sizeof(sc->updated_by), col_text(st, 13));
    sc->updated_ms = sqlite3_column_int64(st, 14);
    sc->baseline = sqlite3_column_int64(st, 15);
    return 0;
}

/* By name (id < 0) or by id. 1 found, 0 not, -1 error. */
static int sched_get(sqlite3 *db, const char *name, int64_t id, sched *sc)
{
    sqlite3_stmt *st = NULL;
    const char *sql = id < 0 ? "SELECT " SCHED_COLS " FROM schedules WHERE name=?" : "SELECT " SCHED_COLS " FROM schedules WHERE id=?";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    if (id < 0)
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    int found = 0;
    if (rc == SQLITE_ROW)
        found = sched_from_row(st, sc) == 0 ? 1 : -1;
    else if (rc != SQLITE_DONE)
        found = -1;
    sqlite3_finalize(st);
    return found;
}

static int exec_sql(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

int schedules_init(sqlite3 *db, char *err, size_t errlen)
{
    if (sodium_init() < 0) {
        err_set(err, errlen, "libsodium failed to initialise");
        return -1;
    }
    char *msg = NULL;
    if (sqlite3_exec(db, schema, NULL, NULL, &msg) != SQLITE_OK) {
        err_set(err, errlen, "control store: creating the schedule tables: %s", msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

int64_t schedules_clock(const ps_config *cfg)
{
    int64_t t = now_ms() / 1000;
    if (cfg->test_clock_file[0] != '\0') {
        size_t len;
        char *text = file_read_all(cfg->test_clock_file, 64, &len, NULL, 0);
        if (text != NULL) {
            char *p = text;
            while (*p == ' ' || *p == '\t')
                p++;
            char *e = p + strlen(p);
            while (e > p && isspace((unsigned char)e[-1]))
                *--e = '\0';
            int64_t v;
            if (parse_i64(p, 0, INT64_MAX / 2, &v) == 0)
                t = v;
            free(text);
        }
    }
    return t + cfg->test_clock_offset;
}

/* Who claimed a slot, for the record: host:pid. */
static const char *instance_name(void)
{
    static char name[160];
    static pid_t pid;
    if (pid != getpid()) {
        pid = getpid();
        char host[128] = "";
        if (gethostname(host, sizeof(host) - 1) != 0)
            str_copy(host, sizeof(host), "host");
        snprintf(name, sizeof(name), "%s:%d", host, (int)getpid());
    }
    return name;
}

/* ---- time display ---- */

/* "2026-03-10 06:30 -04:00" (with_zone) or "2026-03-10 06:30". */
static void local_time_str(const char *tz, int64_t when, int with_zone, char *out, size_t outlen)
{
    int off = 0;
    if (slots_utc_offset(tz, when, &off, NULL, 0) < 0)
        off = 0;
    time_t t = (time_t)(when + off);
    struct tm tm;
    gmtime_r(&t, &tm);
    char base[40];
    strftime(base, sizeof(base), "%Y-%m-%d %H:%M", &tm);
    if (!with_zone) {
        str_copy(out, outlen, base);
        return;
    }
    int a = off < 0 ? -off : off;
    snprintf(out, outlen, "%s %c%02d:%02d", base, off < 0 ? '-' : '+', a / 3600, a / 60 % 60);
}

/* ISO 8601 with the zone's offset: "2026-03-10T06:30:00-04:00". */
static void local_iso(const char *tz, int64_t when, char *out, size_t outlen)
{
    int off = 0;
    if (slots_utc_offset(tz, when, &off, NULL, 0) < 0)
        off = 0;
    time_t t = (time_t)(when + off);
    struct tm tm;
    gmtime_r(&t, &tm);
    char base[40];
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    int a = off < 0 ? -off : off;
    snprintf(out, outlen, "%s%c%02d:%02d", base, off < 0 ? '-' : '+', a / 3600, a / 60 % 60);
}

/* "Mon-Fri", "daily", "Sat, Sun", "" — the days with mode m, Monday first
 * (a school week reads Mon-Fri, its weekend Sat, Sun). */
static void days_render(const char days[8], char m, char *out, size_t outlen)
{
    out[0] = '\0';
    int n = 0;
    for (int i = 0; i < 7; i++)
        n += days[i] == m;
    if (n == 7) {
        str_copy(out, outlen, "daily");
        return;
    }
    size_t used = 0;
    for (int i = 0; i < 7;) {
        if (days[(i + 1) % 7] != m) {
            i++;
            continue;
        }
        int j = i;
        while (j + 1 < 7 && days[(j + 2) % 7] == m)
            j++;
        const char *a = day_abbr[(i + 1) % 7], *b = day_abbr[(j + 1) % 7];
        int k;
        if (j - i >= 2)
            k = snprintf(out + used, outlen - used, "%s%s-%s", used ? ", " : "", a, b);
        else if (j == i)
            k = snprintf(out + used, outlen - used, "%s%s", used ? ", " : "", a);
        else
            k = snprintf(out + used, outlen - used, "%s%s, %s", used ? ", " : "", a, b);
        if (k < 0 || (size_t)k >= outlen - used)
            return;
        used += (size_t)k;
        i = j + 1;
    }
}

static void pattern_render(const sched *sc, char *out, size_t outlen)
{
    char f[64], i[64];
    days_render(sc->days, 'F', f, sizeof(f));
    days_render(sc->days, 'I', i, sizeof(i));
    if (f[0] && i[0])
        snprintf(out, outlen, "Full %s; Incremental %s", f, i);
    else if (f[0])
        snprintf(out, outlen, "Full %s", f);
    else
        snprintf(out, outlen, "Incremental %s", i);
}

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

/* ---- parsing ---- */

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

/* ---- validation ---- */

static int truthy(const char *v, int *out)
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
    if (strlen(f) > FILE_MAX_BYTES || has_control(f)) {
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

static int validate(const sched *sc, char *err, size_t errlen)
{
    size_t nchars = utf8_chars(sc->name, strlen(sc->name));
    if (sc->name[0] == '\0' || nchars > NAME_MAX_CHARS || has_control(sc->name)) {
        err_set(err, errlen, "schedule name '%s' must be 1 to %d characters (it has %zu) without control characters",
                sc->name, NAME_MAX_CHARS, nchars);
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
    profile *p = profile_parse(sc->profile_text, strlen(sc->profile_text), sc->profile_name, e, sizeof(e));
    if (p == NULL) {
        err_set(err, errlen, "properties file refused: %s", e);
        return -1;
    }
    profile_destroy(&p);
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

/* Apply the request's settings to sc (a new schedule or a copy of the
 * stored one). *timing is set when the days or the time changed. */
static int apply_opts(sched *sc, const Patronsync__ControlRequest *rq, int *timing, char *err, size_t errlen)
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
    const char *v;
    sched_opts *o = &sc->o;
    v = control_opt(rq, "name");
    if (v && set_str(&sc->name, v, strlen(v)) < 0)
        goto oom;
    v = control_opt(rq, "file");
    if (v && set_str(&sc->file, v, strlen(v)) < 0)
        goto oom;
    v = control_opt(rq, "encoding");
    if (v && set_str(&sc->encoding, v, strlen(v)) < 0)
        goto oom;
    if (rq->payload.len > 0) {
        if (rq->payload.len > PROFILE_MAX_BYTES || memchr(rq->payload.data, '\0', rq->payload.len) != NULL) {
            err_set(err, errlen, "properties file refused: larger than %u bytes or holds NUL bytes", PROFILE_MAX_BYTES);
            return -1;
        }
        v = control_opt(rq, "profile_name");
        if (set_str(&sc->profile_text, (const char *)rq->payload.data, rq->payload.len) < 0 ||
            set_str(&sc->profile_name, v ? v : "schedule.properties", strlen(v ? v : "schedule.properties")) < 0)
            goto oom;
    }
    v = control_opt(rq, "time");
    if (v) {
        int m;
        if (schedules_parse_time(v, &m, err, errlen) < 0)
            return -1;
        *timing |= m != sc->minute;
        sc->minute = m;
    }
    char before[8];
    memcpy(before, sc->days, sizeof(before));
    v = control_opt(rq, "days");
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
        v = control_opt(rq, mkeys[k]);
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
    int b;
    v = control_opt(rq, "disabled");
    if (v) {
        if (truthy(v, &b) < 0)
            goto badbool;
        sc->disabled = b;
    }
    v = control_opt(rq, "errors_only");
    if (v) {
        if (truthy(v, &b) < 0)
            goto badbool;
        o->errors_only = b;
    }
    v = control_opt(rq, "keep_jobs");
    if (v) {
        if (strcasecmp(v, "off") == 0 || strcasecmp(v, "all") == 0)
            o->keep_jobs = 0;
        else if (int_opt(v, 1, 99, &o->keep_jobs) < 0) {
            err_set(err, errlen, "Number of jobs to keep must be between 1 and 99.");
            return -1;
        }
    }
    /* The finishing-step and safety options: lib/safety.c's names, values
     * and messages. A scope of "file" (sites) or "all" (types) is the
     * default, an empty list. */
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
badbool:
    err_set(err, errlen, "'%s' is not yes or no", v);
    return -1;
oom:
    err_set(err, errlen, "out of memory");
    return -1;
}

/* ---- jobs of a schedule ---- */

/* The job id of a slot: the schedule's uid and the slot's local date. */
static void slot_job_id(const sched *sc, const char *local_date, char *out, size_t outlen)
{
    char d[9];
    size_t k = 0;
    for (const char *p = local_date; *p && k < 8; p++)
        if (*p != '-')
            d[k++] = *p;
    d[k] = '\0';
    snprintf(out, outlen, "%s-%s", sc->uid, d);
}

/* The packed job request of one run of sc. The properties file is parsed
 * again: a schedule never runs with one that does not parse. 0, or -1 with
 * err (*buf is the caller's to free). */
static int request_pack(const sched *sc, const char *job_id, int mode, int dry_run, const char *requested_by,
                        int64_t fired_ms, const char *local_date, uint8_t **buf, size_t *len, char *err,
                        size_t errlen)
{
    char e[ERRLEN];
    profile *p = profile_parse(sc->profile_text, strlen(sc->profile_text), sc->profile_name, e, sizeof(e));
    if (p == NULL) {
        err_set(err, errlen, "properties file refused, not run: %s", e);
        return -1;
    }
    profile_destroy(&p);
    Patronsync__JobOptions jo;
    opts_to_job(&sc->o, &jo);
    jo.incremental = mode == SLOT_INCREMENTAL;
    jo.dry_run = dry_run != 0;
    jo.schedule_id = (char *)sc->uid;
    /* Only a schedule that runs Incremental needs the records' hashes kept. */
    jo.keep_hashes = jo.incremental || strchr(sc->days, 'I') != NULL;
    Patronsync__JobRequest req = PATRONSYNC__JOB_REQUEST__INIT;
    req.job_id = (char *)job_id;
    req.file = sc->file;
    req.profile_name = sc->profile_name;
    req.profile_text = sc->profile_text;
    req.encoding = sc->encoding;
    req.schedule = sc->name;
    req.requested_by = (char *)requested_by;
    req.fired_at_ms = fired_ms;
    /* The district's calendar day: "today" for missing patrons. */
    req.local_date = (char *)local_date;
    req.options = &jo;
    *len = patronsync__job_request__get_packed_size(&req);
    *buf = malloc(*len ? *len : 1);
    if (*buf == NULL) {
        err_set(err, errlen, "out of memory");
        return -1;
    }
    patronsync__job_request__pack(&req, *buf);
    return 0;
}

/* The outbox row (see outbox.c) written inside the caller's transaction. */
static int outbox_put(sqlite3 *db, const char *job_id, const uint8_t *buf, size_t len)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO outbox(job_id,request,created_ms,last_sent_ms) VALUES(?,?,?,0)", -1,
                           &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, buf, (int)len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now_ms());
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    sqlite3_finalize(st);
    return rc;
}

static int runs_put(sqlite3 *db, const char *job_id, int64_t sched_id, const char *local_date, int64_t at, int mode,
                    const char *requested_by, int dry_run)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "INSERT OR IGNORE INTO runs(job_id,schedule_id,local_date,at,mode,requested_by,dry_run) "
                           "VALUES(?,?,?,?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, sched_id);
    sqlite3_bind_text(st, 3, local_date, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, at);
    sqlite3_bind_int(st, 5, mode);
    sqlite3_bind_text(st, 6, requested_by, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 7, dry_run);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    sqlite3_finalize(st);
    return rc;
}

/* The job as operators first see it. HSETNX: a broker that already took
 * the job (another scheduler sent it) keeps its state. */
static void mark_pending(scheduler *s, const sched *sc, const char *job_id, int mode, int dry_run, const char *by,
                         int64_t fired_ms)
{
    if (s->redis == NULL)
        return;
    status_do(s->redis, "HSETNX ps:job:%s state pending", job_id);
    status_do(s->redis, "HSET ps:job:%s created_ms %lld file %s profile %s schedule %s requested_by %s dry_run %d mode %s",
              job_id, (long long)now_ms(), sc->file, sc->profile_name, sc->name, by, dry_run, mode_name(mode));
    status_do(s->redis, "ZADD ps:jobs NX %lld %s", (long long)fired_ms, job_id);
}

static void mark_refused(scheduler *s, const sched *sc, const char *job_id, const char *why, int64_t fired_ms)
{
    if (s->redis == NULL)
        return;
    status_do(s->redis, "HSET ps:job:%s state failed error %s file %s profile %s schedule %s requested_by scheduler finished_ms %lld",
              job_id, why, sc->file, sc->profile_name, sc->name, (long long)now_ms());
    status_do(s->redis, "ZADD ps:jobs NX %lld %s", (long long)fired_ms, job_id);
    status_event(s->redis, "schedule %s: job %s not run: %s", sc->name, job_id, why);
}

/* Every Redis key of a finished job. 0 / -1 (Redis down). */
static int redis_delete_job(status *r, const char *id)
{
    char cursor[32] = "0";
    do {
        redisReply *rr = status_cmd(r, "SCAN %s MATCH ps:job:%s:* COUNT 500", cursor, id);
        if (rr == NULL)
            return -1;
        if (rr->type != REDIS_REPLY_ARRAY || rr->elements != 2 || rr->element[0]->type != REDIS_REPLY_STRING) {
            freeReplyObject(rr);
            return -1;
        }
        str_copy(cursor, sizeof(cursor), rr->element[0]->str);
        redisReply *keys = rr->element[1];
        for (size_t i = 0; keys->type == REDIS_REPLY_ARRAY && i < keys->elements; i++)
            status_do(r, "DEL %s", keys->element[i]->str);
        freeReplyObject(rr);
    } while (strcmp(cursor, "0") != 0);
    if (status_do(r, "DEL ps:job:%s", id) < 0 || status_do(r, "ZREM ps:jobs %s", id) < 0)
        return -1;
    return 0;
}

/* Keep N previous jobs: the newest job and the N before it stay; older
 * finished ones leave Redis (their work folders stay with the broker, so
 * their ids are never run again). Unfinished and held jobs stay. */
static void prune_jobs(scheduler *s, const sched *sc)
{
    if (sc->o.keep_jobs <= 0 || s->redis == NULL)
        return;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT job_id FROM runs WHERE schedule_id=? AND pruned=0 ORDER BY at DESC, rowid DESC",
                           -1, &st, NULL) != SQLITE_OK)
        return;
    sqlite3_bind_int64(st, 1, sc->id);
    char (*old)[128] = NULL;
    size_t n = 0, cap = 0, row = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (row++ <= (size_t)sc->o.keep_jobs)
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            char (*v)[128] = realloc(old, nc * sizeof(*v));
            if (v == NULL)
                break;
            old = v;
            cap = nc;
        }
        str_copy(old[n++], sizeof(old[0]), col_text(st, 0));
    }
    sqlite3_finalize(st);
    for (size_t i = 0; i < n; i++) {
        redisReply *r = status_cmd(s->redis, "HGET ps:job:%s state", old[i]);
        if (r == NULL)
            break;
        /* A held job waits for an operator: never deleted. */
        int final = r->type != REDIS_REPLY_STRING || (summary_state_final(r->str) && strcmp(r->str, "held") != 0);
        freeReplyObject(r);
        if (!final || redis_delete_job(s->redis, old[i]) < 0)
            continue;
        sqlite3_stmt *up = NULL;
        if (sqlite3_prepare_v2(s->db, "UPDATE runs SET pruned=1 WHERE job_id=?", -1, &up, NULL) == SQLITE_OK) {
            sqlite3_bind_text(up, 1, old[i], -1, SQLITE_STATIC);
            sqlite3_step(up);
        }
        sqlite3_finalize(up);
        log_info("schedule %s: job %s deleted (keeping %d previous jobs)", sc->name, old[i], sc->o.keep_jobs);
    }
    free(old);
}

/* ---- timing ---- */

static int64_t last_claimed_at(sqlite3 *db, int64_t sched_id)
{
    sqlite3_stmt *st = NULL;
    int64_t at = INT64_MIN;
    if (sqlite3_prepare_v2(db, "SELECT MAX(at) FROM slots WHERE schedule_id=?", -1, &st, NULL) != SQLITE_OK)
        return at;
    sqlite3_bind_int64(st, 1, sched_id);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        at = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return at;
}

static int64_t grace_seconds(const ps_config *cfg)
{
    int64_t g = cfg->grace_minutes * 60;
    return g < ON_TIME_MIN_S ? ON_TIME_MIN_S : g;
}

/* One schedule's due slots, claimed under the write lock. */
static int tick_schedule(scheduler *s, int64_t id, int64_t now, schedules_tick_report *rep)
{
    sqlite3 *db = s->db;
    if (exec_sql(db, "BEGIN IMMEDIATE") < 0) {
        log_warn("control store busy: %s; slots tried again on the next step", sqlite3_errmsg(db));
        return -1;
    }
    sched sc;
    memset(&sc, 0, sizeof(sc));
    slot *due = NULL;
    size_t ndue = 0, cap = 0;
    int rc = -1;
    char fired_job[64] = "", refused_job[64] = "", why[ERRLEN] = "";
    int fired_mode = 0;
    int64_t fired_at = 0;
    int nmissed = 0;
    int found = sched_get(db, NULL, id, &sc);
    if (found != 1 || sc.disabled) {
        exec_sql(db, "COMMIT");
        sched_free(&sc);
        return found < 0 ? -1 : 0;
    }
    int64_t after = last_claimed_at(db, id);
    if (after < sc.baseline)
        after = sc.baseline;
    slot_pattern p = sched_pattern(&sc);
    for (int k = 0; k < DUE_MAX; k++) {
        slot sl;
        char e[ERRLEN];
        if (slots_next(&p, s->cfg->timezone, after, &sl, e, sizeof(e)) < 0) {
            log_warn("schedule %s: %s", sc.name, e);
            break;
        }
        if (sl.when > now)
            break;
        if (ndue == cap) {
            size_t nc = cap ? cap * 2 : 8;
            slot *v = realloc(due, nc * sizeof(*v));
            if (v == NULL)
                goto out;
            due = v;
            cap = nc;
        }
        due[ndue++] = sl;
        after = sl.when;
    }
    int64_t grace = grace_seconds(s->cfg);
    sqlite3_stmt *ins = NULL;
    if (sqlite3_prepare_v2(db,
                           "INSERT OR IGNORE INTO slots(schedule_id,local_date,at,mode,state,job_id,claimed_ms,claimed_by,note) "
                           "VALUES(?,?,?,?,?,?,?,?,?)",
                           -1, &ins, NULL) != SQLITE_OK)
        goto out;
    for (size_t i = 0; i < ndue; i++) {
        const slot *sl = &due[i];
        int fire = i + 1 == ndue && now - sl->when <= grace;
        char job_id[64];
        slot_job_id(&sc, sl->local_date, job_id, sizeof(job_id));
        char note[200] = "";
        if (!fire && i + 1 < ndue)
            snprintf(note, sizeof(note), "a later slot (%s) was due too; one run covers them", due[ndue - 1].local_date);
        else if (!fire)
            snprintf(note, sizeof(note), "found %lld minutes late, past the grace window of %lld minutes",
                     (long long)((now - sl->when) / 60), (long long)(grace / 60));
        sqlite3_reset(ins);
        sqlite3_bind_int64(ins, 1, id);
        sqlite3_bind_text(ins, 2, sl->local_date, -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 3, sl->when);
        sqlite3_bind_int(ins, 4, (int)sl->mode);
        sqlite3_bind_text(ins, 5, fire ? "fired" : "missed", -1, SQLITE_STATIC);
        if (fire)
            sqlite3_bind_text(ins, 6, job_id, -1, SQLITE_TRANSIENT);
        else
            sqlite3_bind_null(ins, 6);
        sqlite3_bind_int64(ins, 7, now_ms());
        sqlite3_bind_text(ins, 8, instance_name(), -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 9, note, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(ins) != SQLITE_DONE) {
            sqlite3_finalize(ins);
            goto out;
        }
        if (sqlite3_changes(db) == 0) {
            if (rep)
                rep->lost++; /* claimed already: another scheduler, or this day ran before an edit */
            continue;
        }
        if (!fire) {
            nmissed++;
            if (rep)
                rep->missed++;
            log_warn("schedule %s: slot %s %s missed (%s)", sc.name, sl->local_date, mode_name((int)sl->mode), note);
            continue;
        }
        uint8_t *buf = NULL;
        size_t len = 0;
        if (request_pack(&sc, job_id, (int)sl->mode, 0, "scheduler", sl->when * 1000, sl->local_date, &buf, &len, why,
                         sizeof(why)) < 0) {
            free(buf);
            sqlite3_stmt *up = NULL;
            if (sqlite3_prepare_v2(db, "UPDATE slots SET state='refused', note=? WHERE schedule_id=? AND local_date=?", -1,
                                   &up, NULL) == SQLITE_OK) {
                sqlite3_bind_text(up, 1, why, -1, SQLITE_STATIC);
                sqlite3_bind_int64(up, 2, id);
                sqlite3_bind_text(up, 3, sl->local_date, -1, SQLITE_STATIC);
                sqlite3_step(up);
            }
            sqlite3_finalize(up);
            runs_put(db, job_id, id, sl->local_date, sl->when, (int)sl->mode, "scheduler", 0);
            str_copy(refused_job, sizeof(refused_job), job_id);
            fired_at = sl->when;
            if (rep)
                rep->refused++;
            continue;
        }
        int w = outbox_put(db, job_id, buf, len) < 0 ||
                runs_put(db, job_id, id, sl->local_date, sl->when, (int)sl->mode, "scheduler", 0) < 0;
        free(buf);
        if (w) {
            sqlite3_finalize(ins);
            goto out;
        }
        str_copy(fired_job, sizeof(fired_job), job_id);
        fired_mode = (int)sl->mode;
        fired_at = sl->when;
        if (rep)
            rep->fired++;
        if (s->cfg->test_fault_claim == 1) {
            log_error("test fault switch: killed after claiming slot %s, before commit", sl->local_date);
            raise(SIGKILL);
        }
    }
    sqlite3_finalize(ins);
    if (exec_sql(db, "COMMIT") < 0)
        goto out;
    rc = 0;
    if (fired_job[0] && s->cfg->test_fault_claim == 2) {
        log_error("test fault switch: killed after claiming job %s, before sending it", fired_job);
        raise(SIGKILL);
    }
    if (fired_job[0]) {
        char lt[80];
        local_time_str(s->cfg->timezone, fired_at, 1, lt, sizeof(lt));
        log_info("schedule %s: slot %s (%s) fired as job %s", sc.name, lt, mode_name(fired_mode), fired_job);
        mark_pending(s, &sc, fired_job, fired_mode, 0, "scheduler", fired_at * 1000);
        prune_jobs(s, &sc);
    }
    if (refused_job[0]) {
        log_error("schedule %s: job %s not run: %s", sc.name, refused_job, why);
        mark_refused(s, &sc, refused_job, why, fired_at * 1000);
    }
    if (nmissed && s->redis)
        status_event(s->redis, "schedule %s: %d slot(s) missed", sc.name, nmissed);
out:
    if (rc < 0) {
        log_warn("schedule %s: claiming slots failed: %s", sc.name ? sc.name : "?", sqlite3_errmsg(db));
        exec_sql(db, "ROLLBACK");
    }
    free(due);
    sched_free(&sc);
    return rc;
}

int schedules_tick(scheduler *s, int64_t now, schedules_tick_report *rep)
{
    if (rep)
        memset(rep, 0, sizeof(*rep));
    /* A read first: the write lock is taken only for a schedule with a slot due. */
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT s.id, s.days, s.minute, s.baseline, (SELECT MAX(at) FROM slots WHERE schedule_id=s.id) "
                           "FROM schedules s WHERE disabled=0 ORDER BY s.id",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    int64_t *ids = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        sched tmp;
        memset(&tmp, 0, sizeof(tmp));
        str_copy(tmp.days, sizeof(tmp.days), col_text(st, 1));
        tmp.minute = sqlite3_column_int(st, 2);
        int64_t after = sqlite3_column_int64(st, 3);
        if (sqlite3_column_type(st, 4) != SQLITE_NULL && sqlite3_column_int64(st, 4) > after)
            after = sqlite3_column_int64(st, 4);
        slot_pattern p = sched_pattern(&tmp);
        slot sl;
        if (slots_next(&p, s->cfg->timezone, after, &sl, NULL, 0) < 0 || sl.when > now)
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 8;
            int64_t *v = realloc(ids, nc * sizeof(*v));
            if (v == NULL) {
                rc = -1;
                break;
            }
            ids = v;
            cap = nc;
        }
        ids[n++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    for (size_t i = 0; i < n; i++)
        if (tick_schedule(s, ids[i], now, rep) < 0)
            rc = -1;
    free(ids);
    if (n > 0)
        schedules_publish(s, now);
    return rc;
}

/* ---- what operators see ---- */

typedef struct {
    int has_last;
    char last_job[128];
    char last_date[11];
    int64_t last_at;
    int last_mode, last_pruned, last_dry;
    char last_state[40];
    int64_t missed;
    char missed_latest[11];
    int has_next;
    slot next;
} sched_info;

static int date_claimed(sqlite3 *db, int64_t id, const char *local_date)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM slots WHERE schedule_id=? AND local_date=?", -1, &st, NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, local_date, -1, SQLITE_STATIC);
    int found = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return found;
}

static void job_state(scheduler *s, const char *job, char *out, size_t outlen)
{
    str_copy(out, outlen, "unknown");
    if (s->redis == NULL)
        return;
    redisReply *r = status_cmd(s->redis, "HGET ps:job:%s state", job);
    if (r == NULL)
        return;
    if (r->type == REDIS_REPLY_STRING)
        str_copy(out, outlen, r->str);
    freeReplyObject(r);
}

static void sched_info_get(scheduler *s, const sched *sc, int64_t now, sched_info *in)
{
    memset(in, 0, sizeof(*in));
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT job_id, local_date, at, mode, pruned, dry_run FROM runs WHERE schedule_id=? "
                           "ORDER BY at DESC, rowid DESC LIMIT 1",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, sc->id);
        if (sqlite3_step(st) == SQLITE_ROW) {
            in->has_last = 1;
            str_copy(in->last_job, sizeof(in->last_job), col_text(st, 0));
            str_copy(in->last_date, sizeof(in->last_date), col_text(st, 1));
            in->last_at = sqlite3_column_int64(st, 2);
            in->last_mode = sqlite3_column_int(st, 3);
            in->last_pruned = sqlite3_column_int(st, 4);
            in->last_dry = sqlite3_column_int(st, 5);
        }
    }
    sqlite3_finalize(st);
    if (in->has_last) {
        if (in->last_pruned)
            str_copy(in->last_state, sizeof(in->last_state), "deleted");
        else
            job_state(s, in->last_job, in->last_state, sizeof(in->last_state));
    }
    st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT count(*), MAX(local_date) FROM slots WHERE schedule_id=? AND state='missed'", -1,
                           &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, sc->id);
        if (sqlite3_step(st) == SQLITE_ROW) {
            in->missed = sqlite3_column_int64(st, 0);
            str_copy(in->missed_latest, sizeof(in->missed_latest), col_text(st, 1));
        }
    }
    sqlite3_finalize(st);
    if (sc->disabled)
        return;
    int64_t after = now;
    if (sc->baseline > after)
        after = sc->baseline;
    int64_t last = last_claimed_at(s->db, sc->id);
    if (last > after)
        after = last;
    slot_pattern p = sched_pattern(sc);
    for (int k = 0; k < 16; k++) {
        if (slots_next(&p, s->cfg->timezone, after, &in->next, NULL, 0) < 0)
            return;
        if (!date_claimed(s->db, sc->id, in->next.local_date)) {
            in->has_next = 1;
            return;
        }
        after = in->next.when;
    }
}

static void json_kv_str(strbuf *b, const char *key, const char *v, int comma)
{
    sb_printf(b, "%s\"%s\":", comma ? "," : "", key);
    sb_json_str(b, v, strlen(v));
}

static void pct_json(strbuf *b, const char *key, double v)
{
    if (v < 0)
        sb_printf(b, ",\"%s\":null", key);
    else
        sb_printf(b, ",\"%s\":%g", key, v);
}

/* The common part of list and show entries. */
static void info_json(scheduler *s, const sched *sc, const sched_info *in, strbuf *b)
{
    char t[80];
    json_kv_str(b, "name", sc->name, 0);
    json_kv_str(b, "id", sc->uid, 1);
    json_kv_str(b, "created_by", sc->created_by, 1);
    json_kv_str(b, "file", sc->file, 1);
    json_kv_str(b, "days", sc->days, 1);
    snprintf(t, sizeof(t), "%02d:%02d", sc->minute / 60, sc->minute % 60);
    json_kv_str(b, "time", t, 1);
    sb_printf(b, ",\"disabled\":%s", sc->disabled ? "true" : "false");
    if (in->has_last) {
        sb_puts(b, ",\"last_run\":{");
        json_kv_str(b, "job_id", in->last_job, 0);
        json_kv_str(b, "state", in->last_state, 1);
        json_kv_str(b, "mode", mode_name(in->last_mode), 1);
        json_kv_str(b, "local_date", in->last_date, 1);
        sb_printf(b, ",\"at_ms\":%lld,\"dry_run\":%s}", (long long)in->last_at * 1000, in->last_dry ? "true" : "false");
    } else {
        sb_puts(b, ",\"last_run\":null");
    }
    if (in->has_next) {
        local_iso(s->cfg->timezone, in->next.when, t, sizeof(t));
        sb_printf(b, ",\"next_run\":{\"at_ms\":%lld", (long long)in->next.when * 1000);
        json_kv_str(b, "local", t, 1);
        json_kv_str(b, "local_date", in->next.local_date, 1);
        json_kv_str(b, "mode", mode_name((int)in->next.mode), 1);
        sb_puts(b, "}");
    } else {
        sb_puts(b, ",\"next_run\":null");
    }
    sb_printf(b, ",\"missed\":%lld", (long long)in->missed);
    json_kv_str(b, "missed_latest", in->missed_latest, 1);
}

void schedules_publish(scheduler *s, int64_t now)
{
    if (s->redis == NULL)
        return;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT " SCHED_COLS " FROM schedules ORDER BY name", -1, &st, NULL) != SQLITE_OK)
        return;
    int n = 0, ok = 1;
    status_do(s->redis, "DEL ps:schedules:next");
    while (ok && sqlite3_step(st) == SQLITE_ROW) {
        sched sc;
        if (sched_from_row(st, &sc) < 0) {
            sched_free(&sc);
            break;
        }
        sched_info in;
        sched_info_get(s, &sc, now, &in);
        strbuf b;
        sb_init(&b);
        sb_puts(&b, "{");
        info_json(s, &sc, &in, &b);
        sb_puts(&b, "}");
        ok = status_do(s->redis, "HSET ps:schedules:next %s %s", sc.name, sb_str(&b)) == 0;
        sb_free(&b);
        sched_free(&sc);
        n++;
    }
    sqlite3_finalize(st);
    if (!ok)
        return;
    if (n > 0)
        status_do(s->redis, "RENAME ps:schedules:next ps:schedules");
    else
        status_do(s->redis, "DEL ps:schedules");
}

/* ---- the verbs ---- */

/* The schedule named in args[0], or a reply saying why not. 1 / 0. */
static int named(scheduler *s, const Patronsync__ControlRequest *rq, sched *sc, Patronsync__ControlReply *rep,
                 strbuf *body)
{
    memset(sc, 0, sizeof(*sc));
    if (rq->n_args != 1) {
        control_fail(rep, body, 2, "%s: expected the schedule's name", rq->verb);
        return 0;
    }
    int found = sched_get(s->db, rq->args[0], -1, sc);
    if (found < 0)
        control_fail(rep, body, 1, "control store: %s", sqlite3_errmsg(s->db));
    else if (found == 0)
        control_fail(rep, body, 5, "no schedule named '%s'", rq->args[0]);
    return found == 1;
}

static void new_uid(char *out, size_t outlen)
{
    unsigned char r[4];
    randombytes_buf(r, sizeof(r));
    snprintf(out, outlen, "s%02x%02x%02x%02x", r[0], r[1], r[2], r[3]);
}

static int sched_write(sqlite3 *db, const sched *sc, int insert)
{
    size_t olen;
    uint8_t *ob = opts_to_blob(&sc->o, &olen);
    if (ob == NULL)
        return -1;
    sqlite3_stmt *st = NULL;
    const char *sql = insert ? "INSERT INTO schedules(uid,name,file,encoding,profile_name,profile_text,days,minute,disabled,"
                               "options,created_by,created_ms,updated_by,updated_ms,baseline) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
                             : "UPDATE schedules SET uid=?,name=?,file=?,encoding=?,profile_name=?,profile_text=?,days=?,"
                               "minute=?,disabled=?,options=?,created_by=?,created_ms=?,updated_by=?,updated_ms=?,baseline=? "
                               "WHERE id=?";
    int rc = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, sc->uid, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, sc->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, sc->file, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, sc->encoding, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, sc->profile_name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, sc->profile_text, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 7, sc->days, 7, SQLITE_STATIC);
        sqlite3_bind_int(st, 8, sc->minute);
        sqlite3_bind_int(st, 9, sc->disabled);
        sqlite3_bind_blob(st, 10, ob, (int)olen, SQLITE_STATIC);
        sqlite3_bind_text(st, 11, sc->created_by, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 12, sc->created_ms);
        sqlite3_bind_text(st, 13, sc->updated_by, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 14, sc->updated_ms);
        sqlite3_bind_int64(st, 15, sc->baseline);
        if (!insert)
            sqlite3_bind_int64(st, 16, sc->id);
        rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    }
    sqlite3_finalize(st);
    free(ob);
    return rc;
}

/* The tail of an add or edit reply: when it runs next; whether the file is there. */
static void saved_reply(scheduler *s, const sched *sc, int64_t now, const char *what, int json, strbuf *body)
{
    sched_info in;
    sched_info_get(s, sc, now, &in);
    char path[CONFIG_STR + FILE_MAX_BYTES + 2];
    snprintf(path, sizeof(path), "%s/%s", s->cfg->import_root, sc->file);
    struct stat sb;
    int present = stat(path, &sb) == 0;
    if (json) {
        sb_puts(body, "{");
        info_json(s, sc, &in, body);
        sb_printf(body, ",\"file_present\":%s}\n", present ? "true" : "false");
        return;
    }
    char pat[160], lt[80];
    pattern_render(sc, pat, sizeof(pat));
    sb_printf(body, "schedule '%s' %s: %s at %02d:%02d (%s)\n", sc->name, what, pat, sc->minute / 60, sc->minute % 60,
              s->cfg->timezone);
    if (sc->disabled) {
        sb_puts(body, "next run: Disabled\n");
    } else if (in.has_next) {
        local_time_str(s->cfg->timezone, in.next.when, 1, lt, sizeof(lt));
        sb_printf(body, "next run: %s (%s)\n", lt, mode_name((int)in.next.mode));
    }
    if (!present)
        sb_printf(body, "note: '%s' is not in the import root (%s) yet; a run fails until it is there\n", sc->file,
                  s->cfg->import_root);
}

static void verb_add(scheduler *s, const char *user, const Patronsync__ControlRequest *rq, Patronsync__ControlReply *rep,
                     strbuf *body)
{
    if (rq->n_args != 1) {
        control_fail(rep, body, 2, "schedule add: expected the schedule's name");
        return;
    }
    sched sc;
    memset(&sc, 0, sizeof(sc));
    char err[ERRLEN];
    int timing = 0;
    int64_t now = schedules_clock(s->cfg);
    memcpy(sc.days, "NNNNNNN", 8);
    sc.minute = -1;
    opts_defaults(&sc.o);
    if (set_str(&sc.name, rq->args[0], strlen(rq->args[0])) < 0 || set_str(&sc.file, "", 0) < 0 ||
        set_str(&sc.encoding, "", 0) < 0 || set_str(&sc.profile_name, "", 0) < 0 || set_str(&sc.profile_text, "", 0) < 0) {
        control_fail(rep, body, 1, "out of memory");
        goto out;
    }
    if (apply_opts(&sc, rq, &timing, err, sizeof(err)) < 0) {
        control_fail(rep, body, 2, "%s", err);
        goto out;
    }
    if (rq->payload.len == 0) {
        control_fail(rep, body, 2, "schedule add: the properties file is required (--profile FILE.properties)");
        goto out;
    }
    if (sc.minute < 0) {
        control_fail(rep, body, 2, "schedule add: the time of day is required (--time HH:MM)");
        goto out;
    }
    if (validate(&sc, err, sizeof(err)) < 0) {
        control_fail(rep, body, 2, "%s", err);
        goto out;
    }
    str_copy(sc.created_by, sizeof(sc.created_by), user);
    str_copy(sc.updated_by, sizeof(sc.updated_by), user);
    sc.created_ms = sc.updated_ms = now * 1000;
    sc.baseline = now;
    for (int tries = 0;; tries++) {
        new_uid(sc.uid, sizeof(sc.uid));
        if (sched_write(s->db, &sc, 1) == 0)
            break;
        if (sqlite3_extended_errcode(s->db) != SQLITE_CONSTRAINT_UNIQUE || tries > 5) {
            control_fail(rep, body, 1, "control store: %s", sqlite3_errmsg(s->db));
            goto out;
        }
        if (strstr(sqlite3_errmsg(s->db), "schedules.name") != NULL) {
            control_fail(rep, body, 2, "a schedule named '%s' already exists", sc.name);
            goto out;
        }
    }
    sc.id = sqlite3_last_insert_rowid(s->db);
    log_info("schedule %s (%s) added by %s", sc.name, sc.uid, user);
    saved_reply(s, &sc, now, "added", rq->json, body);
    schedules_publish(s, now);
out:
    sched_free(&sc);
}

static void verb_edit(scheduler *s, const char *user, const Patronsync__ControlRequest *rq, Patronsync__ControlReply *rep,
                      strbuf *body)
{
    sched sc;
    if (!named(s, rq, &sc, rep, body))
        goto out;
    char err[ERRLEN];
    int timing = 0, was_disabled = sc.disabled;
    int64_t now = schedules_clock(s->cfg);
    if (apply_opts(&sc, rq, &timing, err, sizeof(err)) < 0 || validate(&sc, err, sizeof(err)) < 0) {
        control_fail(rep, body, 2, "%s", err);
        goto out;
    }
    /* New days or time, or back from disabled: slots count from now, so
     * an edit never makes a slot earlier today due (or missed) at once. */
    if (timing || (was_disabled && !sc.disabled))
        sc.baseline = now;
    str_copy(sc.updated_by, sizeof(sc.updated_by), user);
    sc.updated_ms = now * 1000;
    if (sched_write(s->db, &sc, 0) < 0) {
        if (sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_UNIQUE)
            control_fail(rep, body, 2, "a schedule named '%s' already exists", sc.name);
        else
            control_fail(rep, body, 1, "control store: %s", sqlite3_errmsg(s->db));
        goto out;
    }
    log_info("schedule %s (%s) changed by %s", sc.name, sc.uid, user);
    saved_reply(s, &sc, now, "saved", rq->json, body);
    schedules_publish(s, now);
out:
    sched_free(&sc);
}

static void verb_enable(scheduler *s, const char *user, const Patronsync__ControlRequest *rq, Patronsync__ControlReply *rep,
                        strbuf *body, int enable)
{
    sched sc;
    if (!named(s, rq, &sc, rep, body))
        goto out;
    int64_t now = schedules_clock(s->cfg);
    if (enable && sc.disabled)
        sc.baseline = now; /* the slots while it was disabled are neither run nor missed */
    sc.disabled = !enable;
    str_copy(sc.updated_by, sizeof(sc.updated_by), user);
    sc.updated_ms = now * 1000;
    if (sched_write(s->db, &sc, 0) < 0) {
        control_fail(rep, body, 1, "control store: %s", sqlite3_errmsg(s->db));
        goto out;
    }
    saved_reply(s, &sc, now, enable ? "enabled" : "disabled", rq->json, body);
    schedules_publish(s, now);
out:
    sched_free(&sc);
}

static void verb_delete(scheduler *s, const char *user, const Patronsync__ControlRequest *rq, Patronsync__ControlReply *rep,
                        strbuf *body)
{
    sched sc;
    if (!named(s, rq, &sc, rep, body))
        goto out;
    /* Its slots and runs go with it; a job already queued or running keeps
     * going (the request in the outbox carries everything it needs). */
    sqlite3_stmt *st[3] = {NULL, NULL, NULL};
    static const char *sql[3] = {"DELETE FROM slots WHERE schedule_id=?", "DELETE FROM runs WHERE schedule_id=?",
                                 "DELETE FROM schedules WHERE id=?"};
    int ok = exec_sql(s->db, "BEGIN IMMEDIATE") == 0;
    for (int i = 0; ok && i < 3; i++) {
        ok = sqlite3_prepare_v2(s->db, sql[i], -1, &st[i], NULL) == SQLITE_OK;
        if (ok) {
            sqlite3_bind_int64(st[i], 1, sc.id);
            ok = sqlite3_step(st[i]) == SQLITE_DONE;
        }
        sqlite3_finalize(st[i]);
    }
    if (!ok || exec_sql(s->db, "COMMIT") < 0) {
        control_fail(rep, body, 1, "control store: %s", sqlite3_errmsg(s->db));
        exec_sql(s->db, "ROLLBACK");
        goto out;
    }
    log_info("schedule %s (%s) deleted by %s", sc.name, sc.uid, user);
    if (rq->json) {
        sb_puts(body, "{\"deleted\":");
        sb_json_str(body, sc.name, strlen(sc.name));
        sb_puts(body, "}\n");
    } else {
        sb_printf(body, "schedule '%s' deleted\n", sc.name);
    }
    schedules_publish(s, schedules_clock(s->cfg));
out:
    sched_free(&sc);
}

static void verb_run(scheduler *s, const char *user, const Patronsync__ControlRequest *rq, Patronsync__ControlReply *rep,
                     strbuf *body)
{
    sched sc;
    if (!named(s, rq, &sc, rep, body))
        goto out;
    const char *m = control_opt(rq, "mode");
    const char *d = control_opt(rq, "dry_run");
    int mode = SLOT_FULL, dry = 0;
    if (m && strcasecmp(m, "incremental") == 0)
        mode = SLOT_INCREMENTAL;
    else if (m && strcasecmp(m, "full") != 0) {
        control_fail(rep, body, 2, "schedule run: mode '%s' is not full or incremental", m);
        goto out;
    }
    if (d && truthy(d, &dry) < 0) {
        control_fail(rep, body, 2, "schedule run: dry_run '%s' is not yes or no", d);
        goto out;
    }
    int64_t now = schedules_clock(s->cfg);
    time_t t = (time_t)now;
    struct tm tm;
    gmtime_r(&t, &tm);
    char ts[32], job_id[96], err[ERRLEN];
    strftime(ts, sizeof(ts), "%Y%m%dT%H%M%SZ", &tm);
    unsigned char r[3];
    randombytes_buf(r, sizeof(r));
    snprintf(job_id, sizeof(job_id), "%s-run-%s-%02x%02x%02x", sc.uid, ts, r[0], r[1], r[2]);
    uint8_t *buf = NULL;
    size_t len = 0;
    char today[16] = "";
    int off = 0;
    if (slots_utc_offset(s->cfg->timezone, now, &off, NULL, 0) == 0)
        safety_date_of(now + off, today, sizeof(today));
    if (request_pack(&sc, job_id, mode, dry, user, now * 1000, today, &buf, &len, err, sizeof(err)) < 0) {
        free(buf);
        control_fail(rep, body, 2, "schedule %s: %s", sc.name, err);
        goto out;
    }
    int ok = exec_sql(s->db, "BEGIN IMMEDIATE") == 0 && outbox_put(s->db, job_id, buf, len) == 0 &&
             runs_put(s->db, job_id, sc.id, "", now, mode, user, dry) == 0 && exec_sql(s->db, "COMMIT") == 0;
    free(buf);
    if (!ok) {
        control_fail(rep, body, 1, "control store: recording job %s: %s", job_id, sqlite3_errmsg(s->db));
        exec_sql(s->db, "ROLLBACK");
        goto out;
    }
    log_info("schedule %s: run now (%s%s) by %s as job %s", sc.name, mode_name(mode), dry ? ", dry run" : "", user, job_id);
    mark_pending(s, &sc, job_id, mode, dry, user, now * 1000);
    if (s->broker_sock != NULL)
        outbox_step(s);
    prune_jobs(s, &sc);
    if (rq->json)
        sb_printf(body, "{\"job_id\":\"%s\"}\n", job_id);
    else
        sb_printf(body, "%s\n", job_id);
    schedules_publish(s, now);
out:
    sched_free(&sc);
}

static void list_text(char *const *v, size_t n, const char *none, strbuf *b)
{
    if (n == 0)
        sb_puts(b, none);
    for (size_t i = 0; i < n; i++)
        sb_printf(b, "%s%s", i ? ", " : "", v[i]);
    sb_puts(b, "\n");
}

static void opts_text(const sched_opts *o, strbuf *b)
{
    const Patronsync__JobOptions *f = &o->safe;
    double pct[SAFETY_NT];
    safety_thresholds(f, pct);
    static const char *labels[SAFETY_NT] = {"adds", "updates", "inactivations", "deletions", "removals (both)"};
    sb_printf(b, "  Allow deleting patrons with outstanding transactions: %s\n", f->allow_delete_outstanding ? "yes" : "no");
    sb_printf(b, "  Summary limited to errors and warnings:  %s\n", o->errors_only ? "yes" : "no");
    if (o->keep_jobs > 0)
        sb_printf(b, "  Delete previously run jobs, keeping:     %d\n", o->keep_jobs);
    else
        sb_puts(b, "  Delete previously run jobs:              no (every job kept)\n");
    sb_printf(b, "  Inactivate patrons missing from the file: %s\n", f->inactivate_missing ? "yes" : "no");
    sb_printf(b, "  Minimum patron records read:             %u\n", f->min_records);
    sb_printf(b, "  Days before inactivating:                %u\n", f->days_before_inactivate);
    sb_printf(b, "  Homeroom for inactivated patrons:        %s\n",
              f->inactive_homeroom && f->inactive_homeroom[0] ? f->inactive_homeroom : "(unchanged)");
    if (f->delete_after_days >= 0)
        sb_printf(b, "  Delete missing patrons after:            %d more days\n", f->delete_after_days);
    else
        sb_puts(b, "  Delete missing patrons:                  never\n");
    sb_puts(b, "  Scope, sites:                            ");
    list_text(f->scope_sites, f->n_scope_sites, "the sites in the file", b);
    sb_puts(b, "  Scope, patron types:                     ");
    list_text(f->scope_types, f->n_scope_types, "all", b);
    for (int i = 0; i < SAFETY_NT; i++) {
        char what[48];
        snprintf(what, sizeof(what), "Hold when %s exceed:", labels[i]);
        if (pct[i] < 0)
            sb_printf(b, "  %-40s %s\n", what, "off");
        else
            sb_printf(b, "  %-40s %g%%%s\n", what, pct[i], f->thresholds_set ? "" : " (default)");
    }
}

static void list_json(strbuf *b, const char *key, char *const *v, size_t n)
{
    sb_printf(b, ",\"%s\":[", key);
    for (size_t i = 0; i < n; i++) {
        if (i)
            sb_puts(b, ",");
        sb_json_str(b, v[i], strlen(v[i]));
    }
    sb_puts(b, "]");
}

static void opts_json(const sched_opts *o, strbuf *b)
{
    const Patronsync__JobOptions *f = &o->safe;
    sb_printf(b, ",\"options\":{\"allow_delete_outstanding\":%s,\"errors_only\":%s,\"keep_jobs\":%d,"
                 "\"inactivate_missing\":%s,\"min_records\":%u,\"days_before_inactivate\":%u",
              f->allow_delete_outstanding ? "true" : "false", o->errors_only ? "true" : "false", o->keep_jobs,
              f->inactivate_missing ? "true" : "false", f->min_records, f->days_before_inactivate);
    json_kv_str(b, "inactive_homeroom", f->inactive_homeroom ? f->inactive_homeroom : "", 1);
    if (f->delete_after_days >= 0)
        sb_printf(b, ",\"delete_after_days\":%d", f->delete_after_days);
    else
        sb_puts(b, ",\"delete_after_days\":null");
    list_json(b, "scope_sites", f->scope_sites, f->n_scope_sites);
    list_json(b, "scope_types", f->scope_types, f->n_scope_types);
    double pct[SAFETY_NT];
    safety_thresholds(f, pct);
    static const char *names[SAFETY_NT] = {"max_add_pct", "max_update_pct", "max_inactivate_pct", "max_delete_pct",
                                           "max_remove_pct"};
    for (int i = 0; i < SAFETY_NT; i++)
        pct_json(b, names[i], pct[i]);
    sb_printf(b, ",\"thresholds_set\":%s}", f->thresholds_set ? "true" : "false");
}

static void fmt_ms(int64_t ms, char *out, size_t outlen)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, outlen, "%Y-%m-%d %H:%M:%SZ", &tm);
}

static void verb_show(scheduler *s, const Patronsync__ControlRequest *rq, Patronsync__ControlReply *rep, strbuf *body)
{
    sched sc;
    if (!named(s, rq, &sc, rep, body))
        goto out;
    const char *pv = control_opt(rq, "properties");
    if (pv && strcmp(pv, "1") == 0) {
        sb_puts(body, sc.profile_text);
        goto out;
    }
    int64_t now = schedules_clock(s->cfg);
    sched_info in;
    sched_info_get(s, &sc, now, &in);
    const char *tz = s->cfg->timezone;
    char lt[80], t1[40], t2[40];
    /* Recent runs and recent missed slots. */
    sqlite3_stmt *runs = NULL, *missed = NULL;
    sqlite3_prepare_v2(s->db,
                       "SELECT job_id, local_date, at, mode, requested_by, dry_run, pruned FROM runs WHERE schedule_id=? "
                       "ORDER BY at DESC, rowid DESC LIMIT 10",
                       -1, &runs, NULL);
    sqlite3_prepare_v2(s->db,
                       "SELECT local_date, at, mode, state, note FROM slots WHERE schedule_id=? AND state<>'fired' "
                       "ORDER BY at DESC LIMIT 10",
                       -1, &missed, NULL);
    if (runs)
        sqlite3_bind_int64(runs, 1, sc.id);
    if (missed)
        sqlite3_bind_int64(missed, 1, sc.id);
    if (rq->json) {
        sb_puts(body, "{");
        info_json(s, &sc, &in, body);
        json_kv_str(body, "encoding", sc.encoding, 1);
        json_kv_str(body, "profile_name", sc.profile_name, 1);
        json_kv_str(body, "timezone", tz, 1);
        json_kv_str(body, "updated_by", sc.updated_by, 1);
        sb_printf(body, ",\"created_ms\":%lld,\"updated_ms\":%lld", (long long)sc.created_ms, (long long)sc.updated_ms);
        opts_json(&sc.o, body);
        sb_puts(body, ",\"runs\":[");
        for (int i = 0; runs && sqlite3_step(runs) == SQLITE_ROW; i++) {
            char state[40];
            if (sqlite3_column_int(runs, 6))
                str_copy(state, sizeof(state), "deleted");
            else
                job_state(s, col_text(runs, 0), state, sizeof(state));
            local_iso(tz, sqlite3_column_int64(runs, 2), lt, sizeof(lt));
            sb_puts(body, i ? ",{" : "{");
            json_kv_str(body, "job_id", col_text(runs, 0), 0);
            json_kv_str(body, "local_date", col_text(runs, 1), 1);
            sb_printf(body, ",\"at_ms\":%lld", (long long)sqlite3_column_int64(runs, 2) * 1000);
            json_kv_str(body, "local", lt, 1);
            json_kv_str(body, "mode", mode_name(sqlite3_column_int(runs, 3)), 1);
            json_kv_str(body, "requested_by", col_text(runs, 4), 1);
            sb_printf(body, ",\"dry_run\":%s", sqlite3_column_int(runs, 5) ? "true" : "false");
            json_kv_str(body, "state", state, 1);
            sb_puts(body, "}");
        }
        sb_puts(body, "],\"missed_slots\":[");
        for (int i = 0; missed && sqlite3_step(missed) == SQLITE_ROW; i++) {
            local_iso(tz, sqlite3_column_int64(missed, 1), lt, sizeof(lt));
            sb_puts(body, i ? ",{" : "{");
            json_kv_str(body, "local_date", col_text(missed, 0), 0);
            sb_printf(body, ",\"at_ms\":%lld", (long long)sqlite3_column_int64(missed, 1) * 1000);
            json_kv_str(body, "local", lt, 1);
            json_kv_str(body, "mode", mode_name(sqlite3_column_int(missed, 2)), 1);
            json_kv_str(body, "state", col_text(missed, 3), 1);
            json_kv_str(body, "note", col_text(missed, 4), 1);
            sb_puts(body, "}");
        }
        sb_puts(body, "]}\n");
    } else {
        char pat[160];
        pattern_render(&sc, pat, sizeof(pat));
        sb_printf(body, "Schedule:         %s (id %s)\n", sc.name, sc.uid);
        sb_printf(body, "File:             %s\n", sc.file);
        sb_printf(body, "Encoding:         %s\n", sc.encoding[0] ? sc.encoding : "from the properties file");
        sb_printf(body, "Properties file:  %s\n", sc.profile_name);
        sb_printf(body, "Days:             %s\n", pat);
        sb_printf(body, "Time:             %02d:%02d (%s)\n", sc.minute / 60, sc.minute % 60, tz);
        if (sc.disabled) {
            sb_puts(body, "Next run:         Disabled\n");
        } else if (in.has_next) {
            local_time_str(tz, in.next.when, 1, lt, sizeof(lt));
            sb_printf(body, "Next run:         %s (%s)\n", lt, mode_name((int)in.next.mode));
        }
        if (in.has_last)
            sb_printf(body, "Last run:         %s (%s)\n", in.last_job, in.last_state);
        else
            sb_puts(body, "Last run:         never\n");
        sb_printf(body, "Missed slots:     %lld%s%s%s\n", (long long)in.missed, in.missed ? " (latest " : "",
                  in.missed ? in.missed_latest : "", in.missed ? ")" : "");
        fmt_ms(sc.created_ms, t1, sizeof(t1));
        fmt_ms(sc.updated_ms, t2, sizeof(t2));
        sb_printf(body, "Created by:       %s at %s; last changed by %s at %s\n", sc.created_by, t1, sc.updated_by, t2);
        sb_puts(body, "Options:\n");
        opts_text(&sc.o, body);
        int header = 0;
        while (runs && sqlite3_step(runs) == SQLITE_ROW) {
            if (!header++)
                sb_printf(body, "Recent runs:\n  %-23s %-11s %-40s %s\n", "WHEN", "MODE", "JOB", "STATE");
            char state[40];
            if (sqlite3_column_int(runs, 6))
                str_copy(state, sizeof(state), "deleted");
            else
                job_state(s, col_text(runs, 0), state, sizeof(state));
            local_time_str(tz, sqlite3_column_int64(runs, 2), 1, lt, sizeof(lt));
            sb_printf(body, "  %-23s %-11s %-40s %s%s\n", lt, mode_name(sqlite3_column_int(runs, 3)), col_text(runs, 0), state,
                      sqlite3_column_int(runs, 5) ? " (dry run)" : "");
        }
        header = 0;
        while (missed && sqlite3_step(missed) == SQLITE_ROW) {
            if (!header++)
                sb_puts(body, "Slots not run:\n");
            local_time_str(tz, sqlite3_column_int64(missed, 1), 1, lt, sizeof(lt));
            sb_printf(body, "  %-23s %-11s %-8s %s\n", lt, mode_name(sqlite3_column_int(missed, 2)), col_text(missed, 3),
                      col_text(missed, 4));
        }
    }
    sqlite3_finalize(runs);
    sqlite3_finalize(missed);
out:
    sched_free(&sc);
}

static void verb_list(scheduler *s, const Patronsync__ControlRequest *rq, Patronsync__ControlReply *rep, strbuf *body)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT " SCHED_COLS " FROM schedules ORDER BY name", -1, &st, NULL) != SQLITE_OK) {
        control_fail(rep, body, 1, "control store: %s", sqlite3_errmsg(s->db));
        return;
    }
    int64_t now = schedules_clock(s->cfg);
    if (rq->json)
        sb_puts(body, "[");
    else
        sb_printf(body, "%-24s %-12s %-44s %-30s %s\n", "NAME", "CREATED BY", "LAST RUN", "NEXT RUN", "MISSED");
    for (int i = 0; sqlite3_step(st) == SQLITE_ROW; i++) {
        sched sc;
        if (sched_from_row(st, &sc) < 0) {
            sched_free(&sc);
            break;
        }
        sched_info in;
        sched_info_get(s, &sc, now, &in);
        if (rq->json) {
            sb_puts(body, i ? ",{" : "{");
            info_json(s, &sc, &in, body);
            sb_puts(body, "}");
        } else {
            char last[200] = "never", next[120] = "Disabled", lt[80];
            if (in.has_last)
                snprintf(last, sizeof(last), "%s %s", in.last_state, in.last_job);
            if (!sc.disabled && in.has_next) {
                local_time_str(s->cfg->timezone, in.next.when, 0, lt, sizeof(lt));
                snprintf(next, sizeof(next), "%s %s", lt, mode_name((int)in.next.mode));
            } else if (!sc.disabled) {
                str_copy(next, sizeof(next), "-");
            }
            sb_printf(body, "%-24s %-12s %-44s %-30s %lld\n", sc.name, sc.created_by, last, next, (long long)in.missed);
        }
        sched_free(&sc);
    }
    sqlite3_finalize(st);
    if (rq->json)
        sb_puts(body, "]\n");
}

void schedules_verb(scheduler *s, const char *user, const Patronsync__ControlRequest *rq, Patronsync__ControlReply *rep,
                    strbuf *body)
{
    const char *v = rq->verb + strlen("schedule.");
    /* What operators are shown is never behind the clock: a slot due now
     * is claimed before the answer, not on the next step. */
    if (strcmp(v, "list") == 0 || strcmp(v, "show") == 0)
        schedules_tick(s, schedules_clock(s->cfg), NULL);
    if (strcmp(v, "add") == 0)
        verb_add(s, user, rq, rep, body);
    else if (strcmp(v, "edit") == 0)
        verb_edit(s, user, rq, rep, body);
    else if (strcmp(v, "show") == 0)
        verb_show(s, rq, rep, body);
    else if (strcmp(v, "list") == 0)
        verb_list(s, rq, rep, body);
    else if (strcmp(v, "delete") == 0)
        verb_delete(s, user, rq, rep, body);
    else if (strcmp(v, "run") == 0)
        verb_run(s, user, rq, rep, body);
    else if (strcmp(v, "enable") == 0)
        verb_enable(s, user, rq, rep, body, 1);
    else if (strcmp(v, "disable") == 0)
        verb_enable(s, user, rq, rep, body, 0);
    else
        control_fail(rep, body, 2, "unknown request '%s' (schedule add, edit, show, list, delete, run, enable, disable)", rq->verb);
}
