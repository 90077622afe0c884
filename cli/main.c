/* patronctl: the operator's tool — start and stop a cluster, sites, runs,
 * jobs and their summaries, patrons. The commands are a table (verbs.c):
 * `patronctl help` lists them, `patronctl COMMAND --help` shows one;
 * docs/OPERATORS.md describes them. This file holds main, the talk with
 * the scheduler and Redis, and the handlers of the commands of its own. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "curve.h"
#include "log.h"
#include "status.h"
#include "summary.h"
#include "wire.h"

/* ---- the scheduler ---- */

char *control_token(const ps_config *cfg, char *err, size_t errlen)
{
    const char *env = getenv("PATRONSYNC_TOKEN");
    if (env && *env)
        return strdup(env);
    char path[CONFIG_STR + 32];
    snprintf(path, sizeof(path), "%s/admin.token", cfg->data_dir);
    size_t len;
    char e[ERRLEN];
    char *t = file_read_all(path, 256, &len, e, sizeof(e));
    if (t == NULL) {
        err_set(err, errlen, "PATRONSYNC_TOKEN is not set and %s", e);
        return NULL;
    }
    char *nl = strchr(t, '\n');
    if (nl)
        *nl = '\0';
    return t;
}

Patronsync__ControlReply *control_call(const ps_config *cfg, Patronsync__ControlRequest *rq, long timeout_ms,
                                       char *err, size_t errlen)
{
    void *ctx = zmq_ctx_new();
    void *sock = wire_socket(ctx, ZMQ_DEALER, (int64_t)1 << 30, err, errlen);
    Patronsync__ControlReply *rep = NULL;
    char ep[CONFIG_STR];
    if (sock == NULL || config_endpoint(cfg, "control", cfg->control_endpoint, ep, sizeof(ep), err, errlen) < 0 ||
        curve_connect_as(sock, cfg, "client", "scheduler", err, errlen) < 0 || wire_connect(sock, ep, err, errlen) < 0)
        goto out;
    /* IMMEDIATE: the send fails until connected; retry until the deadline.
     * A live scheduler is connected to at once: a connection is waited
     * for 5 s at most, whatever the answer may take. */
    int64_t until = mono_ms() + timeout_ms;
    int64_t connect_until = mono_ms() + (timeout_ms < 5000 ? timeout_ms : 5000);
    while (wire_send(sock, NULL, &rq->base, err, errlen) < 0) {
        if (mono_ms() > connect_until) {
            err_set(err, errlen, "the scheduler at %s does not answer (is the cluster under %s up? "
                    "'patronctl --data %s up' starts it)", ep, cfg->data_dir, cfg->data_dir);
            goto out;
        }
        usleep(20 * 1000);
    }
    zmq_msg_t body;
    long left = (long)(until - mono_ms());
    int r = wire_recv_wait(sock, NULL, &body, left > 0 ? left : 1);
    if (r != 1) {
        err_set(err, errlen, "no answer from the scheduler at %s within %ld ms", ep, timeout_ms);
        goto out;
    }
    rep = patronsync__control_reply__unpack(NULL, zmq_msg_size(&body), zmq_msg_data(&body));
    zmq_msg_close(&body);
    if (rep == NULL)
        err_set(err, errlen, "the scheduler's answer does not decode");
out:
    if (sock)
        zmq_close(sock);
    zmq_ctx_term(ctx);
    return rep;
}

int cli_call(const cli_ctx *c, Patronsync__ControlRequest *rq, long timeout_ms, char **body)
{
    char err[ERRLEN], words[96];
    cli_verb_words(c->verb, words, sizeof(words));
    char *token = control_token(c->cfg, err, sizeof(err));
    if (token == NULL) {
        fprintf(stderr, "%s: refused: no user token: %s\n", words, err);
        return PS_EXIT_REFUSED;
    }
    rq->token = token;
    Patronsync__ControlReply *rep = control_call(c->cfg, rq, timeout_ms, err, sizeof(err));
    rq->token = "";
    free(token);
    if (rep == NULL) {
        fprintf(stderr, "%s: %s\n", words, err);
        return PS_EXIT_FAILED;
    }
    int rc = rep->ok ? (int)rep->status : (rep->status ? (int)rep->status : PS_EXIT_FAILED);
    if (!rep->ok)
        fprintf(stderr, "patronctl: %s\n", rep->error);
    else if (body)
        *body = strdup(rep->body);
    else
        fputs(rep->body, stdout);
    patronsync__control_reply__free_unpacked(rep, NULL);
    return rc;
}

/* ---- job summaries (Redis) ---- */

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

int show_job(const ps_config *cfg, const char *id, int json, int wait)
{
    char err[ERRLEN];
    status *st = status_new(cfg->redis_url, err, sizeof(err));
    if (st == NULL) {
        fprintf(stderr, "patronctl: %s\n", err);
        return PS_EXIT_FAILED;
    }
    char state[64] = "";
    int64_t redis_down_since = 0;
    for (;;) {
        int found = status_job_state(st, id, state, sizeof(state));
        if (found < 0) {
            if (redis_down_since == 0)
                redis_down_since = mono_ms();
            if (!wait || mono_ms() - redis_down_since > 120000) {
                fprintf(stderr, "patronctl: Redis at %s does not answer\n", cfg->redis_url);
                status_destroy(&st);
                return PS_EXIT_FAILED;
            }
            usleep(200 * 1000);
            continue;
        }
        redis_down_since = 0;
        if (found == 0)
            state[0] = '\0';
        if (!wait || summary_state_final(state))
            break;
        usleep(25 * 1000); /* one HGET: an end seen within 25 ms */
    }
    strbuf out;
    sb_init(&out);
    int rc = summary_render(st, id, json, &out);
    status_destroy(&st);
    if (rc == 1) {
        fprintf(stderr, "patronctl: no job '%s' ('patronctl --data %s jobs' lists the recent ones)\n", id,
                cfg->data_dir);
        sb_free(&out);
        return PS_EXIT_NOT_FOUND;
    }
    if (rc < 0) {
        fprintf(stderr, "patronctl: Redis at %s does not answer\n", cfg->redis_url);
        sb_free(&out);
        return PS_EXIT_FAILED;
    }
    fputs(sb_str(&out), stdout);
    sb_free(&out);
    if (!summary_state_final(state))
        return PS_EXIT_OK;
    rc = ps_exit_for_state(state);
    if (rc == PS_EXIT_HELD)
        print_held_hint(cfg, id);
    return rc;
}

/* ---- up, down, status ---- */

int cmd_up(const cli_ctx *c)
{
    ps_config *cfg = c->cfg;
    int workers = 0; /* not given: a running cluster's count is fine */
    const char *w = cli_value(c, "--workers");
    if (w != NULL) {
        int64_t n;
        if (parse_i64(w, 1, 256, &n) < 0) {
            fprintf(stderr, "patronctl up: --workers '%s' is not a number from 1 to 256\n", w);
            return PS_EXIT_USAGE;
        }
        workers = (int)n;
    }
    char userconf[CONFIG_STR + 32];
    snprintf(userconf, sizeof(userconf), "%s/patronsync.conf", cfg->data_dir);
    int redis_configured = getenv("PATRONSYNC_REDIS_URL") != NULL;
    size_t len;
    char *uc = file_read_all(userconf, 1 << 20, &len, NULL, 0);
    if (uc) {
        redis_configured |= strstr(uc, "redis_url") != NULL;
        free(uc);
    }
    char err[2 * ERRLEN];
    int rc = cluster_up(cfg, workers, redis_configured, err, sizeof(err));
    if (rc == 1) {
        printf("%s\n", err);
        return PS_EXIT_OK;
    }
    if (rc < 0) {
        fprintf(stderr, "patronctl up: %s\n", err);
        return PS_EXIT_FAILED;
    }
    printf("cluster up under %s: %d workers, scheduler at %s, Redis at %s\n", cfg->data_dir,
           workers > 0 ? workers : CLUSTER_DEFAULT_WORKERS, cfg->control_endpoint, cfg->redis_url);
    printf("administrator token: %s/admin.token\n", cfg->data_dir);
    return PS_EXIT_OK;
}

int cmd_down(const cli_ctx *c)
{
    char err[ERRLEN];
    int stopped = 0;
    if (cluster_down(c->cfg, &stopped, err, sizeof(err)) < 0) {
        fprintf(stderr, "patronctl down: %s\n", err);
        return PS_EXIT_FAILED;
    }
    if (stopped == 0)
        printf("the cluster under %s was not running; nothing to stop\n", c->cfg->data_dir);
    else
        printf("cluster under %s stopped\n", c->cfg->data_dir);
    return PS_EXIT_OK;
}

int cmd_status(const cli_ctx *c)
{
    const ps_config *cfg = c->cfg;
    int json = cli_flag(c, "--json");
    char err[ERRLEN];
    status *st = status_new(cfg->redis_url, err, sizeof(err));
    if (st == NULL) {
        fprintf(stderr, "patronctl status: %s\n", err);
        return PS_EXIT_FAILED;
    }
    redisReply *r = status_workers(st);
    if (r == NULL) {
        fprintf(stderr, "patronctl status: Redis at %s does not answer\n", cfg->redis_url);
        status_destroy(&st);
        return PS_EXIT_FAILED;
    }
    if (json)
        fputs("{\"workers\":{", stdout);
    else
        printf("%-16s %s\n", "WORKER", "STATE");
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        if (json) {
            strbuf sb;
            sb_init(&sb);
            sb_json_str(&sb, r->element[i]->str, r->element[i]->len);
            sb_puts(&sb, ":");
            sb_json_str(&sb, r->element[i + 1]->str, r->element[i + 1]->len);
            printf("%s%s", i ? "," : "", sb_str(&sb));
            sb_free(&sb);
        } else {
            printf("%-16s %s\n", r->element[i]->str, r->element[i + 1]->str);
        }
    }
    freeReplyObject(r);
    if (json)
        fputs("}}\n", stdout);
    status_destroy(&st);
    return PS_EXIT_OK;
}

/* ---- sites, patrons, jobs ---- */

int cmd_site_add(const cli_ctx *c)
{
    Patronsync__ControlRequest rq = PATRONSYNC__CONTROL_REQUEST__INIT;
    Patronsync__ControlRequest__OptsEntry ents[8], *ptrs[8];
    rq.opts = ptrs;
    rq.verb = "site.add";
    rq.args = (char **)c->pos;
    rq.n_args = (size_t)c->npos;
    if (cli_put_keyed(c, &rq, ents, 8) < 0)
        return PS_EXIT_USAGE;
    return cli_call(c, &rq, 30000, NULL);
}

int cmd_site_import(const cli_ctx *c)
{
    size_t len;
    int rc;
    char *data = cli_read_operand(c, c->pos[0], 1 << 26, &len, &rc);
    if (data == NULL)
        return rc;
    Patronsync__ControlRequest rq = PATRONSYNC__CONTROL_REQUEST__INIT;
    Patronsync__ControlRequest__OptsEntry ent, *ptr;
    rq.opts = &ptr;
    rq.verb = "site.import";
    rq.payload.data = (uint8_t *)data;
    rq.payload.len = len;
    cli_put_opt(&rq, &ent, "file_name", c->pos[0]);
    rc = cli_call(c, &rq, 30000, NULL);
    free(data);
    return rc;
}

int cmd_patron_show(const cli_ctx *c)
{
    Patronsync__ControlRequest rq = PATRONSYNC__CONTROL_REQUEST__INIT;
    rq.verb = "patron.show";
    rq.args = (char **)c->pos;
    rq.n_args = (size_t)c->npos;
    rq.json = cli_flag(c, "--json");
    return cli_call(c, &rq, 30000, NULL);
}

int cmd_jobs(const cli_ctx *c)
{
    char err[ERRLEN];
    status *st = status_new(c->cfg->redis_url, err, sizeof(err));
    if (st == NULL) {
        fprintf(stderr, "patronctl jobs: %s\n", err);
        return PS_EXIT_FAILED;
    }
    strbuf out;
    sb_init(&out);
    int rc = summary_render_jobs(st, cli_flag(c, "--json"), 50, &out);
    status_destroy(&st);
    if (rc < 0) {
        fprintf(stderr, "patronctl jobs: Redis at %s does not answer\n", c->cfg->redis_url);
        sb_free(&out);
        return PS_EXIT_FAILED;
    }
    fputs(sb_str(&out), stdout);
    sb_free(&out);
    return PS_EXIT_OK;
}

int cmd_job_show(const cli_ctx *c)
{
    return show_job(c->cfg, c->pos[0], cli_flag(c, "--json"), cli_flag(c, "--wait"));
}

/* ---- run ---- */

/* Copy the operator's file into the import root (adhoc/), as Destiny's
 * upload does; the job runs on the copy. The exit status. */
static int copy_in(const cli_ctx *c, const char *src, char *rel, size_t rellen)
{
    const ps_config *cfg = c->cfg;
    int in;
    int rc = cli_open_operand(c, src, &in);
    if (rc != 0)
        return rc;
    close(in);
    char err[ERRLEN];
    char base[256];
    char tmp[PATH_MAX];
    str_copy(tmp, sizeof(tmp), src);
    str_copy(base, sizeof(base), basename(tmp));
    for (char *p = base; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' ||
              *p == '-' || *p == '_'))
            *p = '_';
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    char ts[32];
    strftime(ts, sizeof(ts), "%Y%m%dT%H%M%SZ", &tm);
    snprintf(rel, rellen, "adhoc/%s-%d-%s", ts, (int)getpid(), base);
    char dir[CONFIG_STR + 16], dst[CONFIG_STR + PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/adhoc", cfg->import_root);
    snprintf(dst, sizeof(dst), "%s/%s", cfg->import_root, rel);
    if (mkdir_p(dir, 0750, err, sizeof(err)) < 0 ||
        file_copy_atomic(src, dst, (size_t)cfg->max_file_bytes, err, sizeof(err)) < 0) {
        fprintf(stderr, "patronctl run: --copy-in: %s\n", err);
        return PS_EXIT_FAILED;
    }
    /* The copy keeps the original's time, so a file that has been
     * still costs no settle wait at the broker. */
    struct stat sb;
    if (stat(src, &sb) == 0) {
        struct timespec times[2] = {sb.st_atim, sb.st_mtim};
        utimensat(AT_FDCWD, dst, times, 0);
    }
    return PS_EXIT_OK;
}

/* The name the job reads FILE by, relative to the import root: FILE
 * itself when it is under the root (resolved: no symlink leads out), a
 * copy in adhoc/ with --copy-in, else refused. The exit status. */
static int run_input(const cli_ctx *c, const char *file, char *rel, size_t rellen)
{
    struct stat sb;
    if (stat(file, &sb) < 0)
        return cli_unreadable(c, file, strerror(errno));
    if (!S_ISREG(sb.st_mode)) {
        int fd;
        return cli_open_operand(c, file, &fd); /* says what it is instead; PS_EXIT_USAGE */
    }
    char real[PATH_MAX], root[PATH_MAX];
    if (realpath(file, real) == NULL)
        return cli_unreadable(c, file, strerror(errno));
    if (realpath(c->cfg->import_root, root) == NULL)
        str_copy(root, sizeof(root), c->cfg->import_root); /* none yet: nothing is under it */
    size_t rl = strlen(root);
    if (rl > 1 && strncmp(real, root, rl) == 0 && real[rl] == '/') {
        str_copy(rel, rellen, real + rl + 1);
        return PS_EXIT_OK;
    }
    if (cli_flag(c, "--copy-in"))
        return copy_in(c, file, rel, rellen);
    char also[PATH_MAX + 32] = "";
    if (strcmp(real, file) != 0)
        snprintf(also, sizeof(also), " (%s)", real);
    fprintf(stderr,
            "patronctl run: %s%s is outside the import root %s: put it under %s to run it in place, or pass "
            "--copy-in to copy it into %s/adhoc/ and run the copy\n",
            file, also, root, root, root);
    return PS_EXIT_USAGE;
}

int cmd_run(const cli_ctx *c)
{
    const char *profile = cli_value(c, "--profile");
    if (profile == NULL) {
        fprintf(stderr, "patronctl run: --profile FILE.properties is required (usage: patronctl run FILE "
                        "--profile FILE.properties [OPTIONS])\n");
        return PS_EXIT_USAGE;
    }
    size_t plen;
    int rc;
    char *ptext = cli_read_operand(c, profile, 1 << 22, &plen, &rc);
    if (ptext == NULL)
        return rc;
    char rel[PATH_MAX];
    rc = run_input(c, c->pos[0], rel, sizeof(rel));
    if (rc != PS_EXIT_OK) {
        free(ptext);
        return rc;
    }
    char pname[256], tmp[PATH_MAX];
    str_copy(tmp, sizeof(tmp), profile);
    str_copy(pname, sizeof(pname), basename(tmp));
    Patronsync__ControlRequest rq = PATRONSYNC__CONTROL_REQUEST__INIT;
    Patronsync__ControlRequest__OptsEntry ents[CLI_MAX_OPTS + 8], *ptrs[CLI_MAX_OPTS + 8];
    size_t cap = sizeof(ents) / sizeof(ents[0]);
    rq.opts = ptrs;
    rq.verb = "run";
    char *argv1[] = {rel};
    rq.args = argv1;
    rq.n_args = 1;
    rq.payload.data = (uint8_t *)ptext;
    rq.payload.len = plen;
    cli_put_opt(&rq, ents, "profile_name", pname);
    /* --no-thresholds first: a --max-*-pct given with it still counts. */
    if (cli_flag(c, "--no-thresholds")) {
        static const char *const thresholds[] = {"max_add_pct", "max_update_pct", "max_inactivate_pct",
                                                 "max_delete_pct", "max_remove_pct"};
        for (size_t k = 0; k < sizeof(thresholds) / sizeof(thresholds[0]); k++)
            cli_put_opt(&rq, ents, thresholds[k], "off");
    }
    if (cli_put_keyed(c, &rq, ents, cap) < 0) {
        free(ptext);
        return PS_EXIT_USAGE;
    }
    char *id = NULL;
    rc = cli_call(c, &rq, 30000, &id);
    free(ptext);
    if (rc != PS_EXIT_OK || id == NULL) {
        free(id);
        return rc != PS_EXIT_OK ? rc : PS_EXIT_FAILED;
    }
    char *nl = strchr(id, '\n');
    if (nl)
        *nl = '\0';
    int json = cli_flag(c, "--json");
    if (cli_flag(c, "--wait"))
        rc = show_job(c->cfg, id, json, 1);
    else if (json)
        printf("{\"job_id\":\"%s\"}\n", id);
    else
        printf("%s\n", id);
    free(id);
    return rc;
}

int main(int argc, char **argv)
{
    ps_config cfg;
    char err[ERRLEN];
    int print = 0;
    if (config_from_args(&cfg, &argc, argv, &print, err, sizeof(err)) < 0) {
        fprintf(stderr, "patronctl: %s\n", err);
        return PS_EXIT_USAGE;
    }
    log_init("patronctl", LOG_WARN);
    if (print) {
        config_print(&cfg, stdout);
        return PS_EXIT_OK;
    }
    return cli_main(&cfg, argc, argv);
}
