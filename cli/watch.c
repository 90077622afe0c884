/* watch: `patronctl watch [ID]` — running and queued jobs with a progress
 * bar, the workers and what each holds, the next scheduled runs; one
 * frame from Redis, redrawn each second on a terminal (--once, or not on
 * a terminal: one frame). */
#include "watch.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jobs.h"
#include "status.h"
#include "summary.h"

#define WATCH_MAX_JOBS 20
#define WATCH_BAR 24

static const char *hfield(const redisReply *r, const char *field)
{
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2)
        if (strcmp(r->element[i]->str, field) == 0)
            return r->element[i + 1]->str;
    return NULL;
}

static long long hnum(const redisReply *r, const char *field)
{
    const char *v = hfield(r, field);
    int64_t n = 0;
    if (v)
        parse_i64(v, INT64_MIN, INT64_MAX, &n);
    return (long long)n;
}

/* "[#########---------------]  37%" */
static void bar(long long done, long long total, strbuf *out)
{
    int pct = total > 0 ? (int)(done * 100 / total) : 0;
    int fill = pct * WATCH_BAR / 100;
    sb_puts(out, "[");
    for (int i = 0; i < WATCH_BAR; i++)
        sb_puts(out, i < fill ? "#" : "-");
    sb_printf(out, "] %3d%%", pct);
}

/* The workers' holdings of job id (its running shards, its apply step)
 * appended as "worker<TAB>what" lines to held. */
static void job_holders(status *st, const char *id, const redisReply *jr, strbuf *held)
{
    long long n = hnum(jr, "shards");
    const char *phase = hfield(jr, "phase");
    if (phase && strcmp(phase, "plan") == 0) {
        for (long long i = 0; i < n && i < 100000; i++) {
            redisReply *sr = status_shard_all(st, id, (unsigned long long)i);
            const char *state = hfield(sr, "state"), *w = hfield(sr, "worker");
            if (state && strcmp(state, "running") == 0 && w && *w)
                sb_printf(held, "%s\tjob %s shard %lld (lines %s)\n", w, id, i, hfield(sr, "lines") ? hfield(sr, "lines") : "?");
            if (sr)
                freeReplyObject(sr);
        }
    }
    const char *aw = hfield(jr, "apply_worker");
    if (phase && strcmp(phase, "apply") == 0 && aw && *aw)
        sb_printf(held, "%s\tjob %s apply\n", aw, id);
}

/* The jobs part of a frame: id, or every job not ended among the newest. */
static int frame_jobs(status *st, const char *only, strbuf *out, strbuf *held)
{
    redisReply *ids = NULL;
    const char *one[1] = {only};
    size_t n = 1;
    if (only == NULL) {
        ids = status_jobs_recent(st, 200);
        if (ids == NULL)
            return -1;
        n = ids->elements;
    }
    sb_puts(out, "JOBS\n");
    int shown = 0;
    for (size_t i = 0; i < n && shown < WATCH_MAX_JOBS; i++) {
        const char *id = ids ? ids->element[i]->str : one[0];
        redisReply *jr = status_job_all(st, id, SK_JOB);
        if (jr == NULL)
            break;
        char key[32], label[32];
        int final = jr->elements > 0 && summary_job_status(jr, key, sizeof(key), label, sizeof(label));
        if (jr->elements > 0 && (!final || only != NULL)) {
            const char *sched = hfield(jr, "schedule");
            sb_printf(out, "  %s  %s  %s\n    ", id, label, sched && *sched ? sched : hfield(jr, "file") ? hfield(jr, "file") : "");
            bar(final ? 1 : hnum(jr, "records_done"), final ? 1 : hnum(jr, "records_total"), out);
            sb_puts(out, "  ");
            summary_progress_text(jr, out);
            sb_puts(out, "\n");
            job_holders(st, id, jr, held);
            shown++;
        } else if (jr->elements == 0 && only != NULL) {
            sb_printf(out, "  no job '%s'\n", id);
            shown++;
        }
        freeReplyObject(jr);
    }
    if (shown == 0)
        sb_puts(out, "  (no job running or queued)\n");
    if (ids)
        freeReplyObject(ids);
    return 0;
}

/* What worker name holds, from held's "worker<TAB>what" lines ("" none). */
static void holding_of(const char *held, const char *name, strbuf *out)
{
    size_t nl = strlen(name);
    for (const char *p = held; p && *p;) {
        const char *end = strchr(p, '\n');
        if (strncmp(p, name, nl) == 0 && p[nl] == '\t')
            sb_printf(out, "  %.*s", (int)(end ? end - p - (long)nl - 1 : (long)strlen(p + nl + 1)), p + nl + 1);
        p = end ? end + 1 : NULL;
    }
}

static int frame_workers(status *st, const char *held, strbuf *out)
{
    redisReply *r = status_workers(st);
    if (r == NULL)
        return -1;
    sb_puts(out, "\nWORKERS\n");
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        sb_printf(out, "  %-16s %s", r->element[i]->str, r->element[i + 1]->str);
        holding_of(held, r->element[i]->str, out);
        sb_puts(out, "\n");
    }
    if (r->elements == 0)
        sb_puts(out, "  (none registered)\n");
    freeReplyObject(r);
    return 0;
}

/* A string value "key":"..." of a flat JSON text after from (NULL: none). */
static int json_str_after(const char *json, const char *from, const char *key, char *out, size_t n)
{
    const char *p = from ? strstr(json, from) : json;
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":\"", key);
    p = p ? strstr(p, pat) : NULL;
    if (p == NULL)
        return -1;
    p += strlen(pat);
    const char *e = strchr(p, '"');
    snprintf(out, n, "%.*s", (int)(e ? e - p : 0), p);
    return 0;
}

static int frame_schedules(status *st, strbuf *out)
{
    redisReply *r = status_schedules(st);
    if (r == NULL)
        return -1;
    sb_puts(out, "\nNEXT SCHEDULED RUNS\n");
    int shown = 0;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const char *js = r->element[i + 1]->str;
        char when[80], mode[32];
        if (json_str_after(js, "\"next_run\":{", "local", when, sizeof(when)) < 0)
            continue;
        if (json_str_after(js, "\"next_run\":{", "mode", mode, sizeof(mode)) < 0)
            mode[0] = '\0';
        sb_printf(out, "  %-20s %s  %s\n", r->element[i]->str, when, mode);
        shown++;
    }
    if (shown == 0)
        sb_puts(out, "  (none scheduled)\n");
    freeReplyObject(r);
    return 0;
}

/* One frame into out. 0 / -1 (Redis down). */
static int frame(status *st, const char *only, strbuf *out)
{
    char where[300], t[32];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(t, sizeof(t), "%Y-%m-%d %H:%M:%S", &tm);
    sb_printf(out, "patronsync — %s — Redis at %s\n\n", t, status_where(st, where, sizeof(where)));
    strbuf held;
    sb_init(&held);
    int rc = frame_jobs(st, only, out, &held) < 0 || frame_workers(st, sb_str(&held), out) < 0 ||
                     frame_schedules(st, out) < 0
                 ? -1
                 : 0;
    sb_free(&held);
    return rc;
}

static volatile sig_atomic_t watch_stop;

static void on_signal(int sig)
{
    (void)sig;
    watch_stop = 1;
}

int cmd_watch(const cli_ctx *c)
{
    char where[300];
    status *st = jobs_status(c);
    if (st == NULL)
        return PS_EXIT_FAILED;
    const char *only = c->npos > 0 ? c->pos[0] : NULL;
    int live = !cli_flag(c, "--once") && isatty(STDOUT_FILENO);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    int rc = PS_EXIT_OK;
    do {
        strbuf out;
        sb_init(&out);
        if (frame(st, only, &out) < 0) {
            fprintf(stderr, "patronctl watch: Redis at %s does not answer\n", status_where(st, where, sizeof(where)));
            rc = PS_EXIT_FAILED;
            sb_free(&out);
            if (!live)
                break;
        } else {
            rc = PS_EXIT_OK;
            printf("%s%s", live ? "\033[H\033[2J" : "", sb_str(&out));
            fflush(stdout);
            sb_free(&out);
        }
        if (live && !isatty(STDIN_FILENO)) {
            sleep(1);
        } else if (live) {
            struct pollfd pfd = {STDIN_FILENO, POLLIN, 0};
            if (poll(&pfd, 1, 1000) > 0) {
                char ch = 0;
                if (read(STDIN_FILENO, &ch, 1) <= 0 || ch == 'q')
                    watch_stop = 1;
            }
        }
    } while (live && !watch_stop);
    status_destroy(&st);
    return rc;
}
