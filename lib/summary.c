/* summary: the counts table and job summaries rendered for operators. */
#include "summary.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "textwidth.h"
#include "verify.h"

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

/* What the Line column says of a summary line. */
static void line_cell(const Patronsync__Exception *e, char *out, size_t n)
{
    if (e->line == 0)
        str_copy(out, n, SUMMARY_NOT_IN_FILE);
    else
        snprintf(out, n, "%llu", (unsigned long long)e->line);
}

int summary_note_is_warning(const char *note)
{
    return note != NULL && strncmp(note, SUMMARY_WARNING, strlen(SUMMARY_WARNING)) == 0;
}

/* The table of a summary's lines, each column as wide as its widest cell
 * in display columns (textwidth: an accented or CJK name takes the columns
 * it shows in, not its bytes). A line about a patron who is not in the
 * file (line 0: the finishing step's missing patrons) says so instead of
 * a line number. */
static void render_lines(const redisReply *xr, int level, strbuf *out)
{
    if (xr->elements == 0)
        return;
    Patronsync__Exception **v = calloc(xr->elements, sizeof(*v));
    if (v == NULL) {
        sb_puts(out, "\n  (out of memory listing the summary lines)\n");
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < xr->elements; i++) {
        Patronsync__Exception *e = status_exception_decode(xr->element[i]->str, xr->element[i]->len);
        if (e != NULL && summary_line_level(e->outcome) < level)
            status_free_exceptions(&e, 1);
        else if (e != NULL)
            v[n++] = e;
    }
    if (n == 0) {
        free(v);
        return;
    }
    enum { LINE, DID, NAME, OUTCOME, NCOLS };
    static const char *heads[NCOLS] = {"Line", "District ID", "Name", "Outcome"};
    size_t width[NCOLS];
    for (int c = 0; c < NCOLS; c++)
        width[c] = textwidth_str(heads[c]);
    char num[32];
    for (size_t i = 0; i < n; i++) {
        line_cell(v[i], num, sizeof(num));
        const char *cell[NCOLS] = {num, v[i]->district_id, v[i]->name, v[i]->outcome};
        for (int c = 0; c < NCOLS; c++) {
            size_t cw = textwidth_str(cell[c]);
            if (cw > width[c])
                width[c] = cw;
        }
    }
    sb_puts(out, "\n");
    for (size_t i = 0; i <= n; i++) {
        const Patronsync__Exception *e = i > 0 ? v[i - 1] : NULL;
        const char *cell[NCOLS];
        const char *msg = "Message";
        if (e == NULL) {
            for (int c = 0; c < NCOLS; c++)
                cell[c] = heads[c];
        } else {
            line_cell(e, num, sizeof(num));
            cell[LINE] = num;
            cell[DID] = e->district_id;
            cell[NAME] = e->name;
            cell[OUTCOME] = e->outcome;
            msg = e->message;
        }
        sb_puts(out, "  ");
        for (int c = 0; c < NCOLS; c++) {
            textwidth_pad(out, cell[c], width[c]);
            sb_puts(out, " ");
        }
        sb_printf(out, "%s\n", msg ? msg : "");
    }
    status_free_exceptions(v, n);
    free(v);
}

/* Job job checked against rec's store: an enum verify_result, why into
 * why. jr: its job hash, cr: its summary hash. */
static int check_record(const summary_record *rec, const char *job, const redisReply *jr, const redisReply *cr,
                        char *why, size_t whylen)
{
    why[0] = '\0';
    if (rec == NULL)
        return VERIFY_NA;
    Patronsync__Counts c = PATRONSYNC__COUNTS__INIT;
    for (size_t i = 0; i < counts_nfields; i++) {
        int64_t n = 0;
        const char *v = hget(cr, counts_fields[i].name);
        if (v)
            parse_i64(v, 0, INT64_MAX, &n);
        *counts_ptr(&c, i) = (uint64_t)n;
    }
    verify_claim claim = {or_empty(hget(jr, "state")), hget(jr, "dry_run") && strcmp(hget(jr, "dry_run"), "1") == 0,
                          &c};
    return verify_job(rec->st, rec->err, job, &claim, why, whylen);
}

/* The JSON fields of a check: ,"verified":... */
static void json_verified(strbuf *out, int v, const char *why)
{
    if (v == VERIFY_OK) {
        sb_puts(out, ",\"verified\":true");
    } else if (v == VERIFY_MISMATCH) {
        sb_puts(out, ",\"verified\":false,\"mismatch\":");
        sb_json_str(out, why, strlen(why));
    } else {
        sb_puts(out, ",\"verified\":null");
        if (v == VERIFY_UNKNOWN) {
            sb_puts(out, ",\"verify_error\":");
            sb_json_str(out, why, strlen(why));
        }
    }
}


int summary_line_level(const char *outcome)
{
    if (outcome == NULL || strcmp(outcome, "INFO") == 0)
        return SUMMARY_LEVEL_INFO;
    if (strcmp(outcome, "WARNING") == 0 || strcmp(outcome, "WARN") == 0 || strcmp(outcome, "NOTE") == 0)
        return SUMMARY_LEVEL_WARNING;
    return SUMMARY_LEVEL_ERROR;
}

int summary_level_parse(const char *word)
{
    static const char *const names[] = {"info", "warning", "error"};
    for (int i = 0; i < 3; i++)
        if (strcmp(word, names[i]) == 0)
            return i;
    return -1;
}

/* The job's counts: its summary hash, or while it runs (no summary yet)
 * the parts its shards published so far. -1 when Redis is down. */
static int job_counts(status *st, const char *job, const redisReply *jr, const redisReply *cr, Patronsync__Counts *c)
{
    patronsync__counts__init(c);
    if (hget(cr, "read") != NULL || summary_state_final(or_empty(hget(jr, "state")))) {
        for (size_t i = 0; i < counts_nfields; i++)
            *counts_ptr(c, i) = (uint64_t)count_of(cr, counts_fields[i].name);
        return 0;
    }
    return status_job_parts_sum(st, job, (size_t)count_of(jr, "shards"), c) < 0 ? -1 : 0;
}

/* ,"progress":{...} of a job hash. */
static void json_progress(const redisReply *jr, strbuf *out)
{
    const char *phase = or_empty(hget(jr, "phase"));
    sb_puts(out, ",\"progress\":{\"phase\":");
    sb_json_str(out, phase, strlen(phase));
    static const char *const nums[] = {"shards_done", "shards", "records_done", "records_total", "rate"};
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
        sb_printf(out, ",\"%s\":%lld", nums[i], count_of(jr, nums[i]));
    int64_t eta = -1;
    const char *e = hget(jr, "eta_s");
    if (e == NULL || parse_i64(e, INT64_MIN, INT64_MAX, &eta) < 0 || eta < 0)
        sb_puts(out, ",\"eta_s\":null}");
    else
        sb_printf(out, ",\"eta_s\":%lld}", (long long)eta);
}

void summary_progress_text(const redisReply *jr, strbuf *out)
{
    const char *phase = hget(jr, "phase");
    sb_printf(out, "%s %lld/%lld shards, %lld/%lld records, %lld/s", phase ? phase : "pending",
              count_of(jr, "shards_done"), count_of(jr, "shards"), count_of(jr, "records_done"),
              count_of(jr, "records_total"), count_of(jr, "rate"));
    int64_t eta = -1;
    const char *e = hget(jr, "eta_s");
    if (e != NULL && parse_i64(e, INT64_MIN, INT64_MAX, &eta) == 0 && eta >= 0)
        sb_printf(out, ", ETA %lld s", (long long)eta);
    else
        sb_puts(out, ", ETA -");
}

int summary_progress(status *st, const char *job, char *state, size_t statelen, strbuf *line)
{
    redisReply *jr = status_job_all(st, job, SK_JOB);
    if (jr == NULL)
        return -1;
    int found = jr->type == REDIS_REPLY_ARRAY && jr->elements > 0;
    if (found) {
        str_copy(state, statelen, or_empty(hget(jr, "state")));
        summary_progress_text(jr, line);
    }
    freeReplyObject(jr);
    return found;
}

int summary_render(status *st, const summary_record *rec, const char *job, int json, strbuf *out)
{
    return summary_render_level(st, rec, job, json, SUMMARY_LEVEL_INFO, out);
}

/* The replies a summary is rendered from. */
typedef struct {
    const char *job;
    redisReply *jr, *cr, *xr, *nr;
    Patronsync__Counts counts; /* the summary's, or a running job's so far */
    int level;                 /* the lowest level of line shown */
    int verified;
    char why[ERRLEN];
} sum_view;

static void json_lines(const sum_view *v, strbuf *out)
{
    sb_puts(out, "],\"exceptions\":[");
    int first = 1;
    for (size_t i = 0; i < v->xr->elements; i++) {
        Patronsync__Exception *e = status_exception_decode(v->xr->element[i]->str, v->xr->element[i]->len);
        if (e == NULL)
            continue;
        if (summary_line_level(e->outcome) >= v->level) {
            sb_printf(out, "%s{\"line\":%llu,\"district_id\":", first ? "" : ",", (unsigned long long)e->line);
            sb_json_str(out, e->district_id, strlen(e->district_id));
            sb_puts(out, ",\"name\":");
            sb_json_str(out, e->name, strlen(e->name));
            sb_puts(out, ",\"message\":");
            sb_json_str(out, e->message, strlen(e->message));
            sb_puts(out, ",\"outcome\":");
            sb_json_str(out, e->outcome, strlen(e->outcome));
            sb_puts(out, "}");
            first = 0;
        }
        status_free_exceptions(&e, 1);
    }
    sb_puts(out, "]}\n");
}

static void render_json(const sum_view *v, strbuf *out)
{
    const redisReply *jr = v->jr;
    const char *state = or_empty(hget(jr, "state"));
    int dry = hget(jr, "dry_run") && strcmp(hget(jr, "dry_run"), "1") == 0;
    sb_puts(out, "{\"job_id\":");
    sb_json_str(out, v->job, strlen(v->job));
    sb_puts(out, ",\"state\":");
    sb_json_str(out, state, strlen(state));
    static const char *strs[] = {"file", "profile", "schedule", "requested_by", "error", "held_reason", "phase"};
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        const char *t = or_empty(hget(jr, strs[i]));
        sb_printf(out, ",\"%s\":", strs[i]);
        sb_json_str(out, t, strlen(t));
    }
    static const char *nums[] = {"created_ms", "started_ms", "finished_ms", "shards", "shards_done", "shards_failed"};
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        int64_t n = 0;
        const char *t = hget(jr, nums[i]);
        if (t)
            parse_i64(t, INT64_MIN, INT64_MAX, &n);
        sb_printf(out, ",\"%s\":%lld", nums[i], (long long)n);
    }
    json_verified(out, v->verified, v->why);
    json_progress(jr, out);
    sb_printf(out, ",\"dry_run\":%s,\"counts\":{", dry ? "true" : "false");
    for (size_t i = 0; i < counts_nfields; i++)
        sb_printf(out, "%s\"%s\":%llu", i ? "," : "", counts_fields[i].name,
                  (unsigned long long)counts_get(&v->counts, i));
    sb_puts(out, "},\"notes\":[");
    for (size_t i = 0; i < v->nr->elements; i++) {
        if (i)
            sb_puts(out, ",");
        sb_json_str(out, v->nr->element[i]->str, v->nr->element[i]->len);
    }
    json_lines(v, out);
}

static void render_counts_text(const Patronsync__Counts *c, strbuf *out)
{
#define N(f) (unsigned long long)c->f
    sb_printf(out, "\n  Patron records read:      %llu\n", N(read));
    sb_printf(out, "  Patrons added:            %llu (%llu with warnings)\n", N(added), N(added_with_warnings));
    sb_printf(out, "  Patrons updated:          %llu (%llu with warnings)\n", N(updated), N(updated_with_warnings));
    sb_printf(out, "  Patrons deleted:          %llu (%llu with warnings)\n", N(deleted), N(deleted_with_warnings));
    sb_printf(out, "  Patrons transferred:      %llu\n", N(transferred));
    sb_printf(out, "  Patrons inactivated:      %llu\n", N(inactivated));
    sb_printf(out, "  Unchanged:                %llu\n", N(unchanged));
    sb_printf(out, "  Skipped by rule:          %llu\n", N(skipped_by_rule));
    sb_printf(out, "  Invalid records skipped:  %llu\n", N(invalid_skipped));
    sb_printf(out, "  Duplicates superseded:    %llu\n", N(duplicates_superseded));
#undef N
}

static void render_text(const sum_view *v, strbuf *out)
{
    const redisReply *jr = v->jr, *nr = v->nr;
    const char *state = or_empty(hget(jr, "state"));
    int dry = hget(jr, "dry_run") && strcmp(hget(jr, "dry_run"), "1") == 0;
    char t1[32], t2[32];
    fmt_time(hget(jr, "started_ms"), t1, sizeof(t1));
    fmt_time(hget(jr, "finished_ms"), t2, sizeof(t2));
    sb_printf(out, "Job %s: %s%s\n", v->job, state, dry ? " (dry run: nothing was changed)" : "");
    if (v->verified == VERIFY_MISMATCH)
        sb_printf(out, "MISMATCH: %s. This summary is not the record: the store is (docs/SECURITY.md).\n", v->why);
    else if (v->verified == VERIFY_UNKNOWN)
        sb_printf(out, "Not verified against the store: %s.\n", v->why);
    sb_printf(out, "File: %s   Profile: %s", or_empty(hget(jr, "file")), or_empty(hget(jr, "profile")));
    if (hget(jr, "schedule") && *hget(jr, "schedule"))
        sb_printf(out, "   Schedule: %s", hget(jr, "schedule"));
    sb_printf(out, "\nStarted: %s   Finished: %s\n", t1, t2);
    if (!summary_state_final(state) && hget(jr, "phase") != NULL) {
        sb_puts(out, "Progress: ");
        summary_progress_text(jr, out);
        sb_puts(out, " (counts so far)\n");
    }
    if (hget(jr, "error") && *hget(jr, "error"))
        sb_printf(out, "Error: %s\n", hget(jr, "error"));
    if (hget(jr, "held_reason") && *hget(jr, "held_reason"))
        sb_printf(out, "Held: %s\n", hget(jr, "held_reason"));
    /* A warning (a note the broker marked so, docs/INPUT.md) first:
     * it is why the job did not end plain "complete". */
    for (size_t i = 0; i < nr->elements; i++)
        if (summary_note_is_warning(nr->element[i]->str))
            sb_printf(out, "%s\n", nr->element[i]->str);
    for (size_t i = 0; i < nr->elements; i++)
        if (!summary_note_is_warning(nr->element[i]->str))
            sb_printf(out, "Note: %s\n", nr->element[i]->str);
    render_counts_text(&v->counts, out);
    render_lines(v->xr, v->level, out);
}

static void view_free(sum_view *v)
{
    redisReply *r[] = {v->jr, v->cr, v->xr, v->nr};
    for (size_t i = 0; i < 4; i++)
        if (r[i])
            freeReplyObject(r[i]);
}

int summary_render_level(status *st, const summary_record *rec, const char *job, int json, int level, strbuf *out)
{
    sum_view v = {.job = job, .level = level};
    v.jr = status_job_all(st, job, SK_JOB);
    if (v.jr == NULL)
        return -1;
    if (v.jr->type != REDIS_REPLY_ARRAY || v.jr->elements == 0) {
        view_free(&v);
        return 1;
    }
    v.cr = status_job_all(st, job, SK_SUMMARY);
    v.xr = status_job_all(st, job, SK_EXCEPTIONS);
    v.nr = status_job_all(st, job, SK_NOTES);
    if (v.cr == NULL || v.xr == NULL || v.nr == NULL || job_counts(st, job, v.jr, v.cr, &v.counts) < 0) {
        view_free(&v);
        return -1;
    }
    v.verified = check_record(rec, job, v.jr, v.cr, v.why, sizeof(v.why));
    if (json)
        render_json(&v, out);
    else
        render_text(&v, out);
    view_free(&v);
    return v.verified == VERIFY_MISMATCH ? 2 : 0;
}

int summary_job_status(const redisReply *jr, char *key, size_t keylen, char *label, size_t labellen)
{
    const char *state = or_empty(hget(jr, "state"));
    const char *phase = or_empty(hget(jr, "phase"));
    int dry = hget(jr, "dry_run") && strcmp(hget(jr, "dry_run"), "1") == 0;
    int undone = hget(jr, "undone_by") && *hget(jr, "undone_by");
    int ok = strcmp(state, "complete") == 0 || strcmp(state, "complete_with_errors") == 0;
    static const struct {
        const char *state, *key, *label;
    } names[] = {
        {"pending", "pending", "Pending"},       {"running", "running", "Running"},
        {"stopping", "stopping", "Stopping"},   {"stopped", "stopped", "Stopped"},
        {"complete", "complete", "Complete"},   {"complete_with_errors", "complete_with_errors", "Complete with errors"},
        {"failed", "failed", "Failed"},         {"held", "held", "Held"},
        {"discarded", "discarded", "Discarded"},
    };
    const char *k = state, *l = state;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(state, names[i].state) == 0) {
            k = names[i].key;
            l = names[i].label;
        }
    if (strcmp(state, "running") == 0 && strcmp(phase, "queued") == 0) {
        k = "queued";
        l = "Queued";
    } else if (ok && undone) {
        k = "undone";
        l = "Undone";
    } else if (ok && dry) {
        k = "dry_run";
        l = "Dry run";
    }
    str_copy(key, keylen, k);
    str_copy(label, labellen, l);
    return summary_state_final(state);
}

/* A duration in ms as "45 s", "3m 05s", "2h 04m". */
static void fmt_duration(int64_t ms, char *out, size_t n)
{
    int64_t s = ms / 1000;
    if (ms < 0)
        str_copy(out, n, "-");
    else if (s < 60)
        snprintf(out, n, "%lld s", (long long)s);
    else if (s < 3600)
        snprintf(out, n, "%lldm %02llds", (long long)(s / 60), (long long)(s % 60));
    else
        snprintf(out, n, "%lldh %02lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
}

/* One row of the jobs list, gathered from Redis. */
typedef struct {
    const char *id;
    redisReply *jr, *cr;
    Patronsync__Counts c;
    char key[32], label[32];
    int final;
    int64_t started_ms, duration_ms; /* duration -1: not started */
    char name[CONFIG_STR], progress[64];
    int verified;
    char why[ERRLEN];
} job_row;

static void row_free(job_row *w)
{
    if (w->jr)
        freeReplyObject(w->jr);
    if (w->cr)
        freeReplyObject(w->cr);
    w->jr = w->cr = NULL;
}

/* The row of job id. 0, -1 (Redis down). */
static int row_fill(status *st, const summary_record *rec, const char *id, job_row *w)
{
    memset(w, 0, sizeof(*w));
    w->id = id;
    w->jr = status_job_all(st, id, SK_JOB);
    w->cr = status_job_all(st, id, SK_SUMMARY);
    if (w->jr == NULL || w->cr == NULL || job_counts(st, id, w->jr, w->cr, &w->c) < 0) {
        row_free(w);
        return -1;
    }
    w->final = summary_job_status(w->jr, w->key, sizeof(w->key), w->label, sizeof(w->label));
    w->started_ms = count_of(w->jr, "started_ms");
    if (w->started_ms == 0)
        w->started_ms = count_of(w->jr, "created_ms");
    int64_t end = count_of(w->jr, "finished_ms");
    if (end == 0 && !w->final)
        end = now_ms();
    w->duration_ms = count_of(w->jr, "started_ms") > 0 && end > 0 ? end - count_of(w->jr, "started_ms") : -1;
    const char *sched = or_empty(hget(w->jr, "schedule"));
    str_copy(w->name, sizeof(w->name), *sched ? sched : or_empty(hget(w->jr, "file")));
    long long total = count_of(w->jr, "records_total"), done = count_of(w->jr, "records_done");
    if (w->final)
        str_copy(w->progress, sizeof(w->progress), "done");
    else if (strcmp(w->key, "running") == 0 && total > 0)
        snprintf(w->progress, sizeof(w->progress), "%s %lld%%", or_empty(hget(w->jr, "phase")), done * 100 / total);
    else
        snprintf(w->progress, sizeof(w->progress), "%s", hget(w->jr, "phase") ? hget(w->jr, "phase") : "-");
    w->verified = check_record(rec, id, w->jr, w->cr, w->why, sizeof(w->why));
    return 0;
}

/* "Complete with errors" / "complete-with-errors" / "Complete_With_Errors" alike. */
static void norm_word(const char *s, char *out, size_t n)
{
    size_t k = 0;
    for (; *s && k + 1 < n; s++)
        out[k++] = (*s == ' ' || *s == '-') ? '_' : (char)((*s >= 'A' && *s <= 'Z') ? *s + 32 : *s);
    out[k] = '\0';
}

int summary_jobs_match(const summary_jobs_filter *f, const redisReply *jr)
{
    char key[32], label[32];
    summary_job_status(jr, key, sizeof(key), label, sizeof(label));
    if (f->states != NULL && *f->states) {
        char list[512], want[64];
        str_copy(list, sizeof(list), f->states);
        int hit = 0;
        for (char *save = NULL, *t = strtok_r(list, ",", &save); t && !hit; t = strtok_r(NULL, ",", &save)) {
            norm_word(t, want, sizeof(want));
            hit = strcmp(want, key) == 0;
        }
        if (!hit)
            return 0;
    }
    if (f->schedule != NULL && strcmp(f->schedule, or_empty(hget(jr, "schedule"))) != 0)
        return 0;
    int64_t t = count_of(jr, "started_ms");
    if (t == 0)
        t = count_of(jr, "created_ms");
    if (f->since_ms > 0 && t < f->since_ms)
        return 0;
    if (f->until_ms > 0 && (t == 0 || t >= f->until_ms))
        return 0;
    return 1;
}

static void row_json(const job_row *w, int first, strbuf *out)
{
    const char *strs[][2] = {{"state", or_empty(hget(w->jr, "state"))}, {"file", or_empty(hget(w->jr, "file"))},
                             {"schedule", or_empty(hget(w->jr, "schedule"))}, {"name", w->name},
                             {"submitted_by", or_empty(hget(w->jr, "requested_by"))}, {"status", w->label},
                             {"status_key", w->key}};
    sb_puts(out, first ? "{\"job_id\":" : ",{\"job_id\":");
    sb_json_str(out, w->id, strlen(w->id));
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        sb_printf(out, ",\"%s\":", strs[i][0]);
        sb_json_str(out, strs[i][1], strlen(strs[i][1]));
    }
    sb_printf(out, ",\"read\":%llu,\"created_ms\":%lld,\"started_ms\":%lld,\"finished_ms\":%lld", 
              (unsigned long long)w->c.read, count_of(w->jr, "created_ms"), count_of(w->jr, "started_ms"),
              count_of(w->jr, "finished_ms"));
    if (w->duration_ms >= 0)
        sb_printf(out, ",\"duration_ms\":%lld", (long long)w->duration_ms);
    else
        sb_puts(out, ",\"duration_ms\":null");
    json_verified(out, w->verified, w->why);
    json_progress(w->jr, out);
    sb_printf(out, ",\"counts\":{\"added\":%llu,\"updated\":%llu,\"inactivated\":%llu,\"errors\":%llu}}",
              (unsigned long long)w->c.added, (unsigned long long)w->c.updated,
              (unsigned long long)w->c.inactivated, (unsigned long long)w->c.invalid_skipped);
}

/* The jobs list as text: a header and one row a job, each column as wide
 * as its widest cell in display columns (the file, last, is not padded).
 * STATE STARTED RECORDS FILE stay last, in that order (scripts cut there). */
enum {
    JOBS_ID, JOBS_NAME, JOBS_BY, JOBS_STATUS, JOBS_PROGRESS, JOBS_ADDED, JOBS_UPDATED, JOBS_INACT, JOBS_ERRORS,
    JOBS_DURATION, JOBS_STATE, JOBS_STARTED, JOBS_READ, JOBS_FILE, JOBS_NCOLS
};

static void row_cells(const job_row *w, char **row)
{
    char t[32], num[32];
    fmt_time(w->started_ms > 0 ? hget(w->jr, "started_ms") : NULL, t, sizeof(t));
    row[JOBS_ID] = strdup(w->id);
    row[JOBS_NAME] = strdup(w->name);
    const char *by = or_empty(hget(w->jr, "requested_by"));
    row[JOBS_BY] = strdup(*by ? by : "-");
    row[JOBS_STATUS] = strdup(w->label);
    row[JOBS_PROGRESS] = strdup(w->progress);
    const uint64_t n[] = {w->c.added, w->c.updated, w->c.inactivated, w->c.invalid_skipped};
    for (int k = 0; k < 4; k++) {
        snprintf(num, sizeof(num), "%llu", (unsigned long long)n[k]);
        row[JOBS_ADDED + k] = strdup(num);
    }
    fmt_duration(w->duration_ms, num, sizeof(num));
    row[JOBS_DURATION] = strdup(num);
    strbuf cell;
    sb_init(&cell);
    sb_printf(&cell, "%s%s", or_empty(hget(w->jr, "state")), w->verified == VERIFY_MISMATCH ? " (MISMATCH)" : "");
    row[JOBS_STATE] = strdup(sb_str(&cell));
    sb_free(&cell);
    row[JOBS_STARTED] = strdup(t);
    snprintf(num, sizeof(num), "%llu", (unsigned long long)w->c.read);
    row[JOBS_READ] = strdup(num);
    row[JOBS_FILE] = strdup(or_empty(hget(w->jr, "file")));
}

static void render_job_rows(char **cells, size_t nrows, strbuf *out)
{
    static const char *heads[JOBS_NCOLS] = {"JOB",    "NAME",     "SUBMITTED BY", "STATUS",  "PROGRESS",
                                            "ADDED",  "UPDATED",  "INACTIVATED",  "ERRORS",  "DURATION",
                                            "STATE",  "STARTED",  "RECORDS",      "FILE"};
    size_t width[JOBS_NCOLS];
    for (int c = 0; c < JOBS_NCOLS; c++) {
        width[c] = textwidth_str(heads[c]);
        for (size_t i = 0; i < nrows; i++) {
            size_t w = textwidth_str(cells[i * JOBS_NCOLS + c]);
            if (w > width[c])
                width[c] = w;
        }
    }
    for (size_t i = 0; i <= nrows; i++) {
        for (int c = 0; c < JOBS_NCOLS; c++) {
            const char *cell = i == 0 ? heads[c] : cells[(i - 1) * JOBS_NCOLS + c];
            if (c + 1 < JOBS_NCOLS) {
                textwidth_pad(out, cell ? cell : "", width[c]);
                sb_puts(out, " ");
            } else {
                sb_printf(out, "%s\n", cell ? cell : "");
            }
        }
    }
}

int summary_render_jobs(status *st, const summary_record *rec, int json, size_t limit, strbuf *out,
                        size_t *mismatches)
{
    summary_jobs_filter f = {.limit = limit};
    return summary_render_jobs_filtered(st, rec, json, &f, out, mismatches);
}

int summary_render_jobs_filtered(status *st, const summary_record *rec, int json, const summary_jobs_filter *f,
                                 strbuf *out, size_t *mismatches)
{
    *mismatches = 0;
    int filtered = (f->states && *f->states) || f->schedule || f->since_ms || f->until_ms;
    redisReply *r = status_jobs_recent(st, filtered ? SUMMARY_JOBS_SCAN : f->limit);
    if (r == NULL)
        return -1;
    strbuf bad; /* text: a line for each job the store contradicts */
    sb_init(&bad);
    strbuf rows; /* JSON: the objects of the array */
    sb_init(&rows);
    int rc = -1;
    char **cells = calloc((r->elements ? r->elements : 1) * JOBS_NCOLS, sizeof(*cells)); /* owned */
    size_t nrows = 0;
    if (cells == NULL)
        goto out;
    for (size_t i = 0; i < r->elements && nrows < f->limit; i++) {
        job_row w;
        if (row_fill(st, rec, r->element[i]->str, &w) < 0)
            goto out;
        if (!summary_jobs_match(f, w.jr)) {
            row_free(&w);
            continue;
        }
        if (w.verified == VERIFY_MISMATCH) {
            (*mismatches)++;
            if (!json)
                sb_printf(&bad, "MISMATCH: job %s: %s (the store is the record: docs/SECURITY.md)\n", w.id, w.why);
        }
        if (json)
            row_json(&w, nrows == 0, &rows);
        else
            row_cells(&w, &cells[nrows * JOBS_NCOLS]);
        nrows++;
        row_free(&w);
    }
    if (json) {
        sb_puts(out, "[");
        sb_puts(out, sb_str(&rows));
        sb_puts(out, "]\n");
    } else {
        render_job_rows(cells, nrows, out);
    }
    sb_puts(out, sb_str(&bad));
    rc = 0;
out:
    sb_free(&bad);
    sb_free(&rows);
    for (size_t i = 0; cells && !json && i < nrows * JOBS_NCOLS; i++)
        free(cells[i]);
    free(cells);
    freeReplyObject(r);
    return rc;
}
