/* jobs: what Redis says — a job's summary (waiting for its end), the
 * recent jobs, the workers' states. */
#include "jobs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "status.h"
#include "store.h"
#include "summary.h"

/* s quoted for a shell when it needs it (a hint the operator pastes). */
static void shell_word(const char *s, char *out, size_t outlen)
{
    int plain = *s != '\0';
    for (const char *p = s; *p && plain; p++)
        plain = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+:=@,", *p) != NULL;
    if (plain) {
        str_copy(out, outlen, s);
        return;
    }
    strbuf sb;
    sb_init(&sb);
    sb_puts(&sb, "'");
    for (const char *p = s; *p; p++) {
        if (*p == '\'')
            sb_puts(&sb, "'\\''");
        else
            sb_append(&sb, p, 1);
    }
    sb_puts(&sb, "'");
    str_copy(out, outlen, sb_str(&sb));
    sb_free(&sb);
}

static void print_held_hint(const ps_config *cfg, const char *id)
{
    char dir[CONFIG_STR * 2];
    shell_word(cfg->data_dir, dir, sizeof(dir));
    fflush(stdout);
    fprintf(stderr,
            "patronctl: job %s is held for approval: nothing was changed.\n"
            "  'patronctl --data %s job approve %s' applies it exactly as previewed;\n"
            "  'patronctl --data %s job discard %s' ends it without any change.\n",
            id, dir, id, dir, id);
}

/* The store a summary is checked against, read-only (rec->st NULL and
 * rec->err why when it cannot be opened: a patronctl on another host). */
static void record_open(const ps_config *cfg, summary_record *rec, char *err, size_t errlen)
{
    rec->st = store_open(cfg->store_path, 2, STORE_READONLY, err, errlen);
    rec->err = err;
}

/* While waiting: the job's progress on stderr (stdout stays the summary
 * alone) — on a terminal one line redrawn, else a plain line every few
 * seconds. */
typedef struct {
    int tty;
    int64_t next_ms;
    int drawn; /* a terminal line is on screen */
} progress_out;

static void progress_tick(status *st, const char *id, progress_out *po)
{
    int64_t now = mono_ms();
    if (now < po->next_ms)
        return;
    po->next_ms = now + (po->tty ? 250 : PROGRESS_PLAIN_MS);
    strbuf line;
    sb_init(&line);
    char state[64];
    if (summary_progress(st, id, state, sizeof(state), &line) == 1 && !summary_state_final(state)) {
        if (po->tty)
            fprintf(stderr, "\r\033[Kjob %s: %s", id, sb_str(&line));
        else
            fprintf(stderr, "job %s: %s\n", id, sb_str(&line));
        fflush(stderr);
        po->drawn = po->tty;
    }
    sb_free(&line);
}

/* Wait (when wait is set) until the job's state is final, drawing its
 * progress. The state into state ("" no such job). 0, or -1 when Redis
 * does not answer (printed). */
static int wait_state(status *st, const char *id, int wait, char *state, size_t statelen)
{
    char where[300];
    int64_t redis_down_since = 0;
    progress_out po = {.tty = isatty(STDERR_FILENO), .next_ms = mono_ms() + 1000};
    for (;;) {
        int found = status_job_state(st, id, state, statelen);
        if (found < 0) {
            if (redis_down_since == 0)
                redis_down_since = mono_ms();
            if (!wait || mono_ms() - redis_down_since > 120000) {
                if (po.drawn)
                    fputs("\n", stderr);
                fprintf(stderr, "patronctl: Redis at %s does not answer\n", status_where(st, where, sizeof(where)));
                return -1;
            }
            usleep(200 * 1000);
            continue;
        }
        redis_down_since = 0;
        if (found == 0)
            state[0] = '\0';
        if (!wait || summary_state_final(state))
            break;
        if (found == 1)
            progress_tick(st, id, &po);
        usleep(25 * 1000); /* one HGET: an end seen within 25 ms */
    }
    if (po.drawn)
        fputs("\r\033[K", stderr);
    return 0;
}

int show_job(const ps_config *cfg, const char *id, int json, int wait)
{
    return show_job_level(cfg, id, json, wait, SUMMARY_LEVEL_INFO);
}

int show_job_level(const ps_config *cfg, const char *id, int json, int wait, int level)
{
    char err[ERRLEN], where[300];
    status *st = status_for(cfg, err, sizeof(err));
    if (st == NULL) {
        fprintf(stderr, "patronctl: %s\n", err);
        return PS_EXIT_FAILED;
    }
    char state[64] = "";
    if (wait_state(st, id, wait, state, sizeof(state)) < 0) {
        status_destroy(&st);
        return PS_EXIT_FAILED;
    }
    strbuf out;
    sb_init(&out);
    char serr[ERRLEN];
    summary_record rec;
    record_open(cfg, &rec, serr, sizeof(serr));
    int rc = summary_render_level(st, &rec, id, json, level, &out);
    store_close(&rec.st);
    status_where(st, where, sizeof(where));
    status_destroy(&st);
    if (rc == 1) {
        fprintf(stderr, "patronctl: no job '%s' ('patronctl --data %s jobs' lists the recent ones)\n", id,
                cfg->data_dir);
        sb_free(&out);
        return PS_EXIT_NOT_FOUND;
    }
    if (rc < 0) {
        fprintf(stderr, "patronctl: Redis at %s does not answer\n", where);
        sb_free(&out);
        return PS_EXIT_FAILED;
    }
    fputs(sb_str(&out), stdout);
    sb_free(&out);
    if (rc == 2) {
        fflush(stdout);
        fprintf(stderr, "patronctl: job %s: what Redis says of it, the store contradicts (exit %d)\n", id,
                PS_EXIT_MISMATCH);
        return PS_EXIT_MISMATCH;
    }
    if (!summary_state_final(state))
        return PS_EXIT_OK;
    rc = ps_exit_for_state(state);
    if (rc == PS_EXIT_HELD)
        print_held_hint(cfg, id);
    return rc;
}

int jobs_filter_args(const cli_ctx *c, summary_jobs_filter *f, char *states, size_t stateslen)
{
    memset(f, 0, sizeof(*f));
    f->limit = (size_t)cli_number(c, "--limit", 50);
    if (cli_values(c, "--state", states, stateslen) < 0) {
        fprintf(stderr, "patronctl %s: too many --state values\n", c->verb->name);
        return PS_EXIT_USAGE;
    }
    f->states = states;
    f->schedule = cli_value(c, "--schedule");
    static const char *const whens[] = {"--since", "--until", "--before"};
    int64_t *dst[] = {&f->since_ms, &f->until_ms, &f->until_ms};
    for (size_t i = 0; i < 3; i++) {
        const char *w = cli_value(c, whens[i]);
        if (w == NULL)
            continue;
        *dst[i] = cli_when_ms(w);
        if (*dst[i] < 0) {
            fprintf(stderr, "patronctl %s: %s %s: expected YYYY-MM-DD[THH:MM[:SS]] (UTC), Nh or Nd\n",
                    c->verb->name, whens[i], w);
            return PS_EXIT_USAGE;
        }
    }
    return PS_EXIT_OK;
}

int cmd_jobs(const cli_ctx *c)
{
    summary_jobs_filter f;
    char states[512];
    int frc = jobs_filter_args(c, &f, states, sizeof(states));
    if (frc != PS_EXIT_OK)
        return frc;
    char err[ERRLEN];
    status *st = status_for(c->cfg, err, sizeof(err));
    if (st == NULL) {
        fprintf(stderr, "patronctl jobs: %s\n", err);
        return PS_EXIT_FAILED;
    }
    strbuf out;
    sb_init(&out);
    char serr[ERRLEN];
    summary_record rec;
    record_open(c->cfg, &rec, serr, sizeof(serr));
    size_t mismatches = 0;
    int rc = summary_render_jobs_filtered(st, &rec, cli_flag(c, "--json"), &f, &out, &mismatches);
    store_close(&rec.st);
    char where[300];
    status_where(st, where, sizeof(where));
    status_destroy(&st);
    if (rc < 0) {
        fprintf(stderr, "patronctl jobs: Redis at %s does not answer\n", where);
        sb_free(&out);
        return PS_EXIT_FAILED;
    }
    fputs(sb_str(&out), stdout);
    sb_free(&out);
    return mismatches > 0 ? PS_EXIT_MISMATCH : PS_EXIT_OK;
}

status *jobs_status(const cli_ctx *c)
{
    char err[ERRLEN];
    status *st = status_for(c->cfg, err, sizeof(err));
    if (st == NULL) {
        char words[96];
        cli_verb_words(c->verb, words, sizeof(words));
        fprintf(stderr, "%s: %s\n", words, err);
    }
    return st;
}

int jobs_level_arg(const cli_ctx *c)
{
    int level = SUMMARY_LEVEL_INFO;
    const char *lv = cli_value(c, "--level");
    if (lv != NULL && (level = summary_level_parse(lv)) < 0) {
        char words[96];
        cli_verb_words(c->verb, words, sizeof(words));
        fprintf(stderr, "%s: --level '%s': expected info, warning or error\n", words, lv);
        return -1;
    }
    if (cli_flag(c, "--errors-only") && level < SUMMARY_LEVEL_WARNING)
        level = SUMMARY_LEVEL_WARNING;
    return level;
}

int cmd_job_show(const cli_ctx *c)
{
    int level = jobs_level_arg(c);
    if (level < 0)
        return PS_EXIT_USAGE;
    return show_job_level(c->cfg, c->pos[0], cli_flag(c, "--json"), cli_flag(c, "--wait"), level);
}
