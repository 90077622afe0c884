/* summary: the counts table and job summaries rendered for operators. */
#include "summary.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define C(field) {#field, offsetof(Patronsync__Counts, field)}
const summary_count summary_counts[] = {
    C(read), C(added), C(added_with_warnings), C(updated), C(updated_with_warnings),
    C(unchanged), C(deleted), C(deleted_with_warnings), C(inactivated), C(transferred),
    C(skipped_by_rule), C(invalid_skipped), C(duplicates_superseded),
};
const size_t summary_ncounts = sizeof(summary_counts) / sizeof(summary_counts[0]);

uint64_t *summary_count_ptr(Patronsync__Counts *c, size_t i)
{
    return (uint64_t *)((char *)c + summary_counts[i].off);
}

void summary_counts_add(Patronsync__Counts *dst, const Patronsync__Counts *src)
{
    for (size_t i = 0; i < summary_ncounts; i++)
        *summary_count_ptr(dst, i) += *summary_count_ptr((Patronsync__Counts *)src, i);
}

int summary_state_final(const char *state)
{
    static const char *finals[] = {"complete", "complete_with_errors", "failed", "stopped", "held", "discarded"};
    for (size_t i = 0; i < sizeof(finals) / sizeof(finals[0]); i++)
        if (strcmp(state, finals[i]) == 0)
            return 1;
    return 0;
}

/* A hash reply as a small lookup. */
static const char *hget(const redisReply *r, const char *field)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < r->elements; i += 2)
        if (strcmp(r->element[i]->str, field) == 0)
            return r->element[i + 1]->str;
    return NULL;
}

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

static long long count_of(const redisReply *r, const char *field)
{
    const char *v = hget(r, field);
    int64_t n = 0;
    if (v)
        parse_i64(v, 0, INT64_MAX, &n);
    return (long long)n;
}

static void fmt_time(const char *ms, char *out, size_t n)
{
    int64_t v;
    if (ms == NULL || parse_i64(ms, 1, INT64_MAX, &v) < 0) {
        str_copy(out, n, "-");
        return;
    }
    time_t t = (time_t)(v / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%d %H:%M:%S", &tm);
}

int summary_render(status *st, const char *job, int json, strbuf *out)
{
    redisReply *jr = status_cmd(st, "HGETALL ps:job:%s", job);
    if (jr == NULL)
        return -1;
    if (jr->type != REDIS_REPLY_ARRAY || jr->elements == 0) {
        freeReplyObject(jr);
        return 1;
    }
    redisReply *cr = status_cmd(st, "HGETALL ps:job:%s:summary", job);
    redisReply *xr = status_cmd(st, "LRANGE ps:job:%s:exceptions 0 -1", job);
    redisReply *nr = status_cmd(st, "LRANGE ps:job:%s:notes 0 -1", job);
    if (cr == NULL || xr == NULL || nr == NULL) {
        freeReplyObject(jr);
        if (cr)
            freeReplyObject(cr);
        if (xr)
            freeReplyObject(xr);
        if (nr)
            freeReplyObject(nr);
        return -1;
    }
    const char *state = or_empty(hget(jr, "state"));
    int dry = hget(jr, "dry_run") && strcmp(hget(jr, "dry_run"), "1") == 0;
    if (json) {
        sb_puts(out, "{\"job_id\":");
        sb_json_str(out, job, strlen(job));
        sb_puts(out, ",\"state\":");
        sb_json_str(out, state, strlen(state));
        static const char *strs[] = {"file", "profile", "schedule", "requested_by", "error", "held_reason", "phase"};
        for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
            const char *v = or_empty(hget(jr, strs[i]));
            sb_printf(out, ",\"%s\":", strs[i]);
            sb_json_str(out, v, strlen(v));
        }
        static const char *nums[] = {"created_ms", "started_ms", "finished_ms", "shards", "shards_done", "shards_failed"};
        for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
            int64_t v = 0;
            const char *t = hget(jr, nums[i]);
            if (t)
                parse_i64(t, INT64_MIN, INT64_MAX, &v);
            sb_printf(out, ",\"%s\":%lld", nums[i], (long long)v);
        }
        sb_printf(out, ",\"dry_run\":%s,\"counts\":{", dry ? "true" : "false");
        for (size_t i = 0; i < summary_ncounts; i++) {
            const char *v = hget(cr, summary_counts[i].name);
            int64_t n = 0;
            if (v)
                parse_i64(v, 0, INT64_MAX, &n);
            sb_printf(out, "%s\"%s\":%lld", i ? "," : "", summary_counts[i].name, (long long)n);
        }
        sb_puts(out, "},\"notes\":[");
        for (size_t i = 0; i < nr->elements; i++) {
            if (i)
                sb_puts(out, ",");
            sb_json_str(out, nr->element[i]->str, nr->element[i]->len);
        }
        sb_puts(out, "],\"exceptions\":[");
        for (size_t i = 0; i < xr->elements; i++) {
            Patronsync__Exception *e = status_exception_decode(xr->element[i]->str, xr->element[i]->len);
            if (e == NULL)
                continue;
            sb_printf(out, "%s{\"line\":%llu,\"district_id\":", i ? "," : "", (unsigned long long)e->line);
            sb_json_str(out, e->district_id, strlen(e->district_id));
            sb_puts(out, ",\"name\":");
            sb_json_str(out, e->name, strlen(e->name));
            sb_puts(out, ",\"message\":");
            sb_json_str(out, e->message, strlen(e->message));
            sb_puts(out, ",\"outcome\":");
            sb_json_str(out, e->outcome, strlen(e->outcome));
            sb_puts(out, "}");
            status_free_exceptions(&e, 1);
        }
        sb_puts(out, "]}\n");
    } else {
        char t1[32], t2[32];
        fmt_time(hget(jr, "started_ms"), t1, sizeof(t1));
        fmt_time(hget(jr, "finished_ms"), t2, sizeof(t2));
        sb_printf(out, "Job %s: %s%s\n", job, state, dry ? " (dry run: nothing was changed)" : "");
        sb_printf(out, "File: %s   Profile: %s", or_empty(hget(jr, "file")), or_empty(hget(jr, "profile")));
        if (hget(jr, "schedule") && *hget(jr, "schedule"))
            sb_printf(out, "   Schedule: %s", hget(jr, "schedule"));
        sb_printf(out, "\nStarted: %s   Finished: %s\n", t1, t2);
        if (hget(jr, "error") && *hget(jr, "error"))
            sb_printf(out, "Error: %s\n", hget(jr, "error"));
        if (hget(jr, "held_reason") && *hget(jr, "held_reason"))
            sb_printf(out, "Held: %s\n", hget(jr, "held_reason"));
        for (size_t i = 0; i < nr->elements; i++)
            sb_printf(out, "Note: %s\n", nr->element[i]->str);
#define N(f) count_of(cr, f)
        sb_printf(out, "\n  Patron records read:      %lld\n", N("read"));
        sb_printf(out, "  Patrons added:            %lld (%lld with warnings)\n", N("added"), N("added_with_warnings"));
        sb_printf(out, "  Patrons updated:          %lld (%lld with warnings)\n", N("updated"), N("updated_with_warnings"));
        sb_printf(out, "  Patrons deleted:          %lld (%lld with warnings)\n", N("deleted"), N("deleted_with_warnings"));
        sb_printf(out, "  Patrons transferred:      %lld\n", N("transferred"));
        sb_printf(out, "  Patrons inactivated:      %lld\n", N("inactivated"));
        sb_printf(out, "  Unchanged:                %lld\n", N("unchanged"));
        sb_printf(out, "  Skipped by rule:          %lld\n", N("skipped_by_rule"));
        sb_printf(out, "  Invalid records skipped:  %lld\n", N("invalid_skipped"));
        sb_printf(out, "  Duplicates superseded:    %lld\n", N("duplicates_superseded"));
#undef N
        if (xr->elements > 0)
            sb_printf(out, "\n  %-7s %-14s %-24s %-8s %s\n", "Line", "District ID", "Name", "Outcome", "Message");
        for (size_t i = 0; i < xr->elements; i++) {
            Patronsync__Exception *e = status_exception_decode(xr->element[i]->str, xr->element[i]->len);
            if (e == NULL)
                continue;
            sb_printf(out, "  %-7llu %-14s %-24s %-8s %s\n", (unsigned long long)e->line, e->district_id,
                      e->name, e->outcome, e->message);
            status_free_exceptions(&e, 1);
        }
    }
    freeReplyObject(jr);
    freeReplyObject(cr);
    freeReplyObject(xr);
    freeReplyObject(nr);
    return 0;
}

int summary_render_jobs(status *st, int json, size_t limit, strbuf *out)
{
    redisReply *r = status_cmd(st, "ZREVRANGE ps:jobs 0 %lld", (long long)limit - 1);
    if (r == NULL)
        return -1;
    if (json)
        sb_puts(out, "[");
    else
        sb_printf(out, "%-34s %-22s %-19s %-8s %s\n", "JOB", "STATE", "STARTED", "RECORDS", "FILE");
    for (size_t i = 0; i < r->elements; i++) {
        const char *id = r->element[i]->str;
        redisReply *jr = status_cmd(st, "HGETALL ps:job:%s", id);
        redisReply *cr = status_cmd(st, "HGET ps:job:%s:summary read", id);
        if (jr == NULL || cr == NULL) {
            if (jr)
                freeReplyObject(jr);
            if (cr)
                freeReplyObject(cr);
            freeReplyObject(r);
            return -1;
        }
        const char *state = or_empty(hget(jr, "state"));
        const char *file = or_empty(hget(jr, "file"));
        const char *read = cr->type == REDIS_REPLY_STRING ? cr->str : "0";
        if (json) {
            sb_puts(out, i ? ",{\"job_id\":" : "{\"job_id\":");
            sb_json_str(out, id, strlen(id));
            sb_puts(out, ",\"state\":");
            sb_json_str(out, state, strlen(state));
            sb_puts(out, ",\"file\":");
            sb_json_str(out, file, strlen(file));
            const char *sched = or_empty(hget(jr, "schedule"));
            sb_puts(out, ",\"schedule\":");
            sb_json_str(out, sched, strlen(sched));
            int64_t n = 0;
            parse_i64(read, 0, INT64_MAX, &n);
            int64_t created = 0;
            if (hget(jr, "created_ms"))
                parse_i64(hget(jr, "created_ms"), 0, INT64_MAX, &created);
            sb_printf(out, ",\"read\":%lld,\"created_ms\":%lld}", (long long)n, (long long)created);
        } else {
            char t[32];
            fmt_time(hget(jr, "started_ms"), t, sizeof(t));
            sb_printf(out, "%-34s %-22s %-19s %-8s %s\n", id, state, t, read, file);
        }
        freeReplyObject(jr);
        freeReplyObject(cr);
    }
    if (json)
        sb_puts(out, "]\n");
    freeReplyObject(r);
    return 0;
}
