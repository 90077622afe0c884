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
static void render_lines(const redisReply *xr, strbuf *out)
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
        if (e != NULL)
            v[n++] = e;
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

int summary_render(status *st, const summary_record *rec, const char *job, int json, strbuf *out)
{
    redisReply *jr = status_job_all(st, job, SK_JOB);
    if (jr == NULL)
        return -1;
    if (jr->type != REDIS_REPLY_ARRAY || jr->elements == 0) {
        freeReplyObject(jr);
        return 1;
    }
    redisReply *cr = status_job_all(st, job, SK_SUMMARY);
    redisReply *xr = status_job_all(st, job, SK_EXCEPTIONS);
    redisReply *nr = status_job_all(st, job, SK_NOTES);
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
    char why[ERRLEN];
    int verified = check_record(rec, job, jr, cr, why, sizeof(why));
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
        json_verified(out, verified, why);
        sb_printf(out, ",\"dry_run\":%s,\"counts\":{", dry ? "true" : "false");
        for (size_t i = 0; i < counts_nfields; i++) {
            const char *v = hget(cr, counts_fields[i].name);
            int64_t n = 0;
            if (v)
                parse_i64(v, 0, INT64_MAX, &n);
            sb_printf(out, "%s\"%s\":%lld", i ? "," : "", counts_fields[i].name, (long long)n);
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
        if (verified == VERIFY_MISMATCH)
            sb_printf(out, "MISMATCH: %s. This summary is not the record: the store is (docs/SECURITY.md).\n", why);
        else if (verified == VERIFY_UNKNOWN)
            sb_printf(out, "Not verified against the store: %s.\n", why);
        sb_printf(out, "File: %s   Profile: %s", or_empty(hget(jr, "file")), or_empty(hget(jr, "profile")));
        if (hget(jr, "schedule") && *hget(jr, "schedule"))
            sb_printf(out, "   Schedule: %s", hget(jr, "schedule"));
        sb_printf(out, "\nStarted: %s   Finished: %s\n", t1, t2);
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
        render_lines(xr, out);
    }
    freeReplyObject(jr);
    freeReplyObject(cr);
    freeReplyObject(xr);
    freeReplyObject(nr);
    return verified == VERIFY_MISMATCH ? 2 : 0;
}

/* The jobs list as text: a header and one row a job, each column as wide
 * as its widest cell in display columns (the file, last, is not padded). */
enum { JOBS_ID, JOBS_STATE, JOBS_STARTED, JOBS_READ, JOBS_FILE, JOBS_NCOLS };

static void render_job_rows(char **cells, size_t nrows, strbuf *out)
{
    static const char *heads[JOBS_NCOLS] = {"JOB", "STATE", "STARTED", "RECORDS", "FILE"};
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
                textwidth_pad(out, cell, width[c]);
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
    *mismatches = 0;
    strbuf bad; /* text: a line for each job the store contradicts */
    sb_init(&bad);
    redisReply *r = status_jobs_recent(st, limit);
    if (r == NULL)
        return -1;
    int rc = -1;
    char **cells = NULL; /* text: JOBS_NCOLS strings a row, owned */
    size_t nrows = 0;
    if (json) {
        sb_puts(out, "[");
    } else if (r->elements > 0) {
        cells = calloc(r->elements * JOBS_NCOLS, sizeof(*cells));
        if (cells == NULL)
            goto out;
    }
    for (size_t i = 0; i < r->elements; i++) {
        const char *id = r->element[i]->str;
        redisReply *jr = status_job_all(st, id, SK_JOB);
        redisReply *cr = status_job_all(st, id, SK_SUMMARY);
        if (jr == NULL || cr == NULL) {
            if (jr)
                freeReplyObject(jr);
            if (cr)
                freeReplyObject(cr);
            goto out;
        }
        const char *state = or_empty(hget(jr, "state"));
        const char *file = or_empty(hget(jr, "file"));
        const char *read = hget(cr, "read") ? hget(cr, "read") : "0";
        char why[ERRLEN];
        int verified = check_record(rec, id, jr, cr, why, sizeof(why));
        if (verified == VERIFY_MISMATCH) {
            (*mismatches)++;
            if (!json)
                sb_printf(&bad, "MISMATCH: job %s: %s (the store is the record: docs/SECURITY.md)\n", id, why);
        }
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
            sb_printf(out, ",\"read\":%lld,\"created_ms\":%lld", (long long)n, (long long)created);
            json_verified(out, verified, why);
            sb_puts(out, "}");
        } else {
            char t[32];
            fmt_time(hget(jr, "started_ms"), t, sizeof(t));
            char **row = &cells[nrows * JOBS_NCOLS];
            row[JOBS_ID] = strdup(id);
            if (verified == VERIFY_MISMATCH) {
                strbuf cell;
                sb_init(&cell);
                sb_printf(&cell, "%s (MISMATCH)", state);
                row[JOBS_STATE] = strdup(sb_str(&cell));
                sb_free(&cell);
            } else {
                row[JOBS_STATE] = strdup(state);
            }
            row[JOBS_STARTED] = strdup(t);
            row[JOBS_READ] = strdup(read);
            row[JOBS_FILE] = strdup(file);
            nrows++;
        }
        freeReplyObject(jr);
        freeReplyObject(cr);
    }
    if (json)
        sb_puts(out, "]\n");
    else
        render_job_rows(cells, nrows, out);
    sb_puts(out, sb_str(&bad));
    rc = 0;
out:
    sb_free(&bad);
    for (size_t i = 0; i < nrows * JOBS_NCOLS; i++)
        free(cells[i]);
    free(cells);
    freeReplyObject(r);
    return rc;
}
