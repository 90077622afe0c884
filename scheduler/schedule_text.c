/* schedule_text: a schedule as operators see it. */
#include "schedule_text.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "safety.h"

static const char *day_abbr[7] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};

/* when in zone tz into base ("2026-03-10 06:30", iso: "2026-03-10T06:30:00");
 * its UTC offset (seconds east). */
static int local_base(const char *tz, int64_t when, int iso, char *base, size_t baselen)
{
    int off = 0;
    if (slots_utc_offset(tz, when, &off, NULL, 0) < 0)
        off = 0;
    time_t t = (time_t)(when + off);
    struct tm tm;
    gmtime_r(&t, &tm);
    if (iso)
        strftime(base, baselen, "%Y-%m-%dT%H:%M:%S", &tm);
    else
        strftime(base, baselen, "%Y-%m-%d %H:%M", &tm);
    return off;
}

void sched_local_time(const char *tz, int64_t when, int with_zone, char *out, size_t outlen)
{
    char base[40];
    int off = local_base(tz, when, 0, base, sizeof(base));
    if (!with_zone) {
        str_copy(out, outlen, base);
        return;
    }
    int a = off < 0 ? -off : off;
    snprintf(out, outlen, "%s %c%02d:%02d", base, off < 0 ? '-' : '+', a / 3600, a / 60 % 60);
}

void sched_local_iso(const char *tz, int64_t when, char *out, size_t outlen)
{
    char base[40];
    int off = local_base(tz, when, 1, base, sizeof(base));
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

void sched_pattern_text(const sched *sc, char *out, size_t outlen)
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

void sched_json_kv(strbuf *b, const char *key, const char *v, int comma)
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

void sched_info_json(const char *tz, const sched *sc, const sched_info *in, strbuf *b)
{
    char t[80];
    sched_json_kv(b, "name", sc->name, 0);
    sched_json_kv(b, "id", sc->uid, 1);
    sched_json_kv(b, "created_by", sc->created_by, 1);
    sched_json_kv(b, "file", sc->file, 1);
    sched_json_kv(b, "days", sc->days, 1);
    snprintf(t, sizeof(t), "%02d:%02d", sc->minute / 60, sc->minute % 60);
    sched_json_kv(b, "time", t, 1);
    sb_printf(b, ",\"disabled\":%s", sc->disabled ? "true" : "false");
    if (in->has_last) {
        sb_puts(b, ",\"last_run\":{");
        sched_json_kv(b, "job_id", in->last_job, 0);
        sched_json_kv(b, "state", in->last_state, 1);
        sched_json_kv(b, "mode", sched_mode_name(in->last_mode), 1);
        sched_json_kv(b, "local_date", in->last_date, 1);
        sb_printf(b, ",\"at_ms\":%lld,\"dry_run\":%s}", (long long)in->last_at * 1000, in->last_dry ? "true" : "false");
    } else {
        sb_puts(b, ",\"last_run\":null");
    }
    if (in->has_next) {
        sched_local_iso(tz, in->next.when, t, sizeof(t));
        sb_printf(b, ",\"next_run\":{\"at_ms\":%lld", (long long)in->next.when * 1000);
        sched_json_kv(b, "local", t, 1);
        sched_json_kv(b, "local_date", in->next.local_date, 1);
        sched_json_kv(b, "mode", sched_mode_name((int)in->next.mode), 1);
        sb_puts(b, "}");
    } else {
        sb_puts(b, ",\"next_run\":null");
    }
    sb_printf(b, ",\"missed\":%lld", (long long)in->missed);
    sched_json_kv(b, "missed_latest", in->missed_latest, 1);
}

static void list_text(char *const *v, size_t n, const char *none, strbuf *b)
{
    if (n == 0)
        sb_puts(b, none);
    for (size_t i = 0; i < n; i++)
        sb_printf(b, "%s%s", i ? ", " : "", v[i]);
    sb_puts(b, "\n");
}

void sched_opts_text(const sched_opts *o, strbuf *b)
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

void sched_opts_json(const sched_opts *o, strbuf *b)
{
    const Patronsync__JobOptions *f = &o->safe;
    sb_printf(b, ",\"options\":{\"allow_delete_outstanding\":%s,\"errors_only\":%s,\"keep_jobs\":%d,"
                 "\"inactivate_missing\":%s,\"min_records\":%u,\"days_before_inactivate\":%u",
              f->allow_delete_outstanding ? "true" : "false", o->errors_only ? "true" : "false", o->keep_jobs,
              f->inactivate_missing ? "true" : "false", f->min_records, f->days_before_inactivate);
    sched_json_kv(b, "inactive_homeroom", f->inactive_homeroom ? f->inactive_homeroom : "", 1);
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

void sched_utc_ms_text(int64_t ms, char *out, size_t outlen)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, outlen, "%Y-%m-%d %H:%M:%SZ", &tm);
}

