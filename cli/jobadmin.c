/* jobadmin: `job export` (CSV or JSON of a summary), `job delete` and
 * `jobs delete` (finished jobs out of Redis; never an unfinished or held
 * one). Redis-side like `job show`: whoever reaches Redis may use them. */
#include "jobadmin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs.h"
#include "status.h"
#include "store.h"
#include "summary.h"

void jobadmin_csv_cell(strbuf *out, const char *value)
{
    const char *v = value ? value : "";
    int risky = v[0] != '\0' && strchr("=+-@\t\r", v[0]) != NULL;
    int quote = strpbrk(v, ",\"\r\n") != NULL;
    if (quote)
        sb_puts(out, "\"");
    if (risky)
        sb_puts(out, "'");
    for (const char *p = v; *p; p++) {
        if (*p == '"')
            sb_puts(out, "\"\"");
        else
            sb_append(out, p, 1);
    }
    if (quote)
        sb_puts(out, "\"");
}

/* The summary lines of job id at level or above as CSV into out. 0, 1 no
 * such job, -1 Redis down. */
static int export_csv(status *st, const char *id, int level, strbuf *out, size_t *nlines)
{
    char state[64];
    int found = status_job_state(st, id, state, sizeof(state));
    if (found <= 0)
        return found < 0 ? -1 : 1;
    redisReply *xr = status_job_all(st, id, SK_EXCEPTIONS);
    if (xr == NULL)
        return -1;
    *nlines = 0;
    sb_puts(out, "Line,District ID,Name,Outcome,Message\r\n");
    for (size_t i = 0; xr->type == REDIS_REPLY_ARRAY && i < xr->elements; i++) {
        Patronsync__Exception *e = status_exception_decode(xr->element[i]->str, xr->element[i]->len);
        if (e == NULL)
            continue;
        if (summary_line_level(e->outcome) >= level) {
            if (e->line == 0)
                sb_puts(out, SUMMARY_NOT_IN_FILE);
            else
                sb_printf(out, "%llu", (unsigned long long)e->line);
            const char *cells[] = {e->district_id, e->name, e->outcome, e->message};
            for (size_t k = 0; k < 4; k++) {
                sb_puts(out, ",");
                jobadmin_csv_cell(out, cells[k]);
            }
            sb_puts(out, "\r\n");
            (*nlines)++;
        }
        status_free_exceptions(&e, 1);
    }
    freeReplyObject(xr);
    return 0;
}

int cmd_job_export(const cli_ctx *c)
{
    const char *id = c->pos[0];
    const char *csv = cli_value(c, "--csv"), *json = cli_value(c, "--json");
    if ((csv == NULL) == (json == NULL)) {
        fprintf(stderr, "patronctl job export: give one of --csv FILE or --json FILE\n");
        return PS_EXIT_USAGE;
    }
    int level = jobs_level_arg(c);
    if (level < 0)
        return PS_EXIT_USAGE;
    char err[ERRLEN], where[300];
    status *st = jobs_status(c);
    if (st == NULL)
        return PS_EXIT_FAILED;
    strbuf out;
    sb_init(&out);
    size_t nlines = 0;
    int rc;
    if (csv != NULL) {
        rc = export_csv(st, id, level, &out, &nlines);
    } else {
        rc = summary_render_level(st, NULL, id, 1, level, &out);
        rc = rc == 2 ? 0 : rc;
    }
    status_where(st, where, sizeof(where));
    status_destroy(&st);
    int exit = PS_EXIT_OK;
    const char *path = csv ? csv : json;
    if (rc == 1) {
        fprintf(stderr, "patronctl job export: no job '%s'\n", id);
        exit = PS_EXIT_NOT_FOUND;
    } else if (rc < 0) {
        fprintf(stderr, "patronctl job export: Redis at %s does not answer\n", where);
        exit = PS_EXIT_FAILED;
    } else if (file_write_atomic(path, sb_str(&out), out.len, err, sizeof(err)) < 0) {
        fprintf(stderr, "patronctl job export: cannot write %s: %s\n", path, err);
        exit = PS_EXIT_FAILED;
    } else if (csv != NULL) {
        printf("job %s: %zu summary lines written to %s\n", id, nlines, path);
    } else {
        printf("job %s: summary written to %s\n", id, path);
    }
    sb_free(&out);
    return exit;
}

/* Whether a job in state may be deleted: finished, and not held (a held
 * job waits for its decision). */
static int deletable(const char *state)
{
    return summary_state_final(state) && strcmp(state, "held") != 0;
}

int cmd_job_delete(const cli_ctx *c)
{
    const char *id = c->pos[0];
    char where[300], state[64];
    status *st = jobs_status(c);
    if (st == NULL)
        return PS_EXIT_FAILED;
    status_where(st, where, sizeof(where));
    int found = status_job_state(st, id, state, sizeof(state));
    size_t removed = 0;
    int rc = PS_EXIT_OK;
    if (found < 0) {
        fprintf(stderr, "patronctl job delete: Redis at %s does not answer\n", where);
        rc = PS_EXIT_FAILED;
    } else if (found == 0) {
        fprintf(stderr, "patronctl job delete: no job '%s'\n", id);
        rc = PS_EXIT_NOT_FOUND;
    } else if (!deletable(state)) {
        fprintf(stderr, "patronctl job delete: job %s is %s: only a finished job is deleted (never an unfinished "
                        "or held one%s)\n", id, state,
                strcmp(state, "held") == 0 ? "; 'job approve' or 'job discard' decides it first" : "");
        rc = PS_EXIT_USAGE;
    } else if (status_job_forget_count(st, id, &removed) < 0) {
        fprintf(stderr, "patronctl job delete: Redis at %s failed while deleting job %s\n", where, id);
        rc = PS_EXIT_FAILED;
    } else if (cli_flag(c, "--json")) {
        printf("{\"job_id\":\"%s\",\"state\":\"%s\",\"deleted\":true,\"keys_removed\":%zu}\n", id, state, removed);
    } else {
        printf("job %s (%s) deleted from Redis: %zu keys (its summary, lines, notes, shards and parts); the store "
               "keeps what it changed\n", id, state, removed);
    }
    status_destroy(&st);
    return rc;
}

/* jobs delete: each job passing f — finished ones removed, the others
 * named as kept — into the report. 0 / -1 (Redis down). */
static int delete_matching(status *st, const summary_jobs_filter *f, int json, strbuf *del, strbuf *kept,
                           size_t *ndel, size_t *nkept, size_t *keys)
{
    redisReply *r = status_jobs_recent(st, SUMMARY_JOBS_SCAN);
    if (r == NULL)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < r->elements && rc == 0; i++) {
        const char *id = r->element[i]->str;
        redisReply *jr = status_job_all(st, id, SK_JOB);
        if (jr == NULL) {
            rc = -1;
            break;
        }
        const char *state = "";
        for (size_t k = 0; k + 1 < jr->elements; k += 2)
            if (strcmp(jr->element[k]->str, "state") == 0)
                state = jr->element[k + 1]->str;
        if (jr->elements > 0 && summary_jobs_match(f, jr)) {
            strbuf *to = deletable(state) ? del : kept;
            size_t n = 0;
            if (to == del && status_job_forget_count(st, id, &n) < 0)
                rc = -1;
            *keys += n;
            *(to == del ? ndel : nkept) += 1;
            if (json) {
                sb_puts(to, to->len ? "," : "");
                sb_json_str(to, id, strlen(id));
            } else {
                sb_printf(to, "  %s (%s)\n", id, state);
            }
        }
        freeReplyObject(jr);
    }
    freeReplyObject(r);
    return rc;
}

int cmd_jobs_delete(const cli_ctx *c)
{
    if (cli_value(c, "--before") == NULL) {
        fprintf(stderr, "patronctl jobs delete: --before WHEN is required (usage: patronctl jobs delete --before "
                        "WHEN [--state STATUS])\n");
        return PS_EXIT_USAGE;
    }
    summary_jobs_filter f;
    char states[512];
    int rc = jobs_filter_args(c, &f, states, sizeof(states));
    if (rc != PS_EXIT_OK)
        return rc;
    char where[300];
    status *st = jobs_status(c);
    if (st == NULL)
        return PS_EXIT_FAILED;
    strbuf del, kept;
    sb_init(&del);
    sb_init(&kept);
    size_t ndel = 0, nkept = 0, keys = 0;
    int json = cli_flag(c, "--json");
    if (delete_matching(st, &f, json, &del, &kept, &ndel, &nkept, &keys) < 0) {
        fprintf(stderr, "patronctl jobs delete: Redis at %s does not answer (%zu jobs deleted before)\n",
                status_where(st, where, sizeof(where)), ndel);
        rc = PS_EXIT_FAILED;
    } else if (json) {
        printf("{\"deleted\":[%s],\"kept\":[%s],\"keys_removed\":%zu}\n", sb_str(&del), sb_str(&kept), keys);
    } else {
        printf("%zu jobs deleted from Redis (%zu keys)%s\n%s", ndel, keys, ndel ? ":" : "", sb_str(&del));
        if (nkept)
            printf("%zu unfinished or held jobs kept:\n%s", nkept, sb_str(&kept));
    }
    sb_free(&del);
    sb_free(&kept);
    status_destroy(&st);
    return rc;
}
