/* patronctl: the operator's tool — start and stop a cluster, sites, runs,
 * jobs and their summaries, patrons. `patronctl help` lists the commands;
 * docs/OPERATORS.md describes them. --json gives one JSON object. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "log.h"
#include "status.h"
#include "summary.h"
#include "wire.h"

static const char *usage =
    "usage: patronctl [--data DIR] COMMAND ...\n"
    "  up [--workers N]                    start a single-host cluster under DIR\n"
    "  down                                stop it\n"
    "  site add SHORT \"Name\" [--media] [--access-level LEVEL]\n"
    "                                      add or change a site (LEVEL: its default access level)\n"
    "  site import FILE.csv                sites from CSV: short_name,name,media\n"
    "  run FILE --profile FILE.properties [--encoding ENC] [--dry-run] [--shard-size N] [--wait] [--json]\n"
    "      [--allow-delete-outstanding]    (DeleteWhen rules may delete patrons with checkouts or fines)\n"
    "                                      update patrons from FILE now\n"
    "  jobs [--json]                       recent jobs\n"
    "  job show ID [--json]                a job summary\n"
    "  patron show DISTRICT_ID [--json]    every stored field of a patron\n"
    "  status [--json]                     workers and jobs in flight\n"
    "  profile check FILE.properties [--csv SAMPLE.csv] [--records N] [--encoding ENC]\n"
    "                                      check a profile; with a sample, how its first records map\n"
    "  ref add patron-type|access-level|resource-group NAME... [--default]\n"
    "  ref list [--json]                   reference data of the patron rules (docs/RULES.md)\n"
    "  schedule add|edit|show|list|delete|run|enable|disable ...\n"
    "                                      scheduled patron updates (patronctl schedule help)\n";
/* After the commands of the other modules (jobctl_usage). */
static const char *usage_tail =
    "DIR defaults to $PATRONSYNC_DATA_DIR, else ./data.\n"
    "Exit status: 0 done (a job: complete), 1 failed, 2 usage, 3 complete with errors, 4 held, 5 not found.\n";

char *control_token(const ps_config *cfg)
{
    const char *env = getenv("PATRONSYNC_TOKEN");
    if (env && *env)
        return strdup(env);
    char path[CONFIG_STR + 32];
    snprintf(path, sizeof(path), "%s/admin.token", cfg->data_dir);
    size_t len;
    char *t = file_read_all(path, 256, &len, NULL, 0);
    if (t == NULL)
        return NULL;
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
        wire_connect(sock, ep, err, errlen) < 0)
        goto out;
    /* IMMEDIATE: the send fails until connected; retry until the deadline. */
    int64_t until = mono_ms() + timeout_ms;
    while (wire_send(sock, NULL, &rq->base, err, errlen) < 0) {
        if (mono_ms() > until) {
            err_set(err, errlen, "the scheduler at %s does not answer (is the cluster up?)", ep);
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

typedef struct {
    int json, wait, dry_run, media, workers, allow_outstanding;
    const char *profile, *encoding, *shard_size, *access_level;
    char *pos[8];
    int npos;
    jobctl_flags safety; /* run: missing patrons and thresholds (jobctl.c) */
} args;

static int parse_args(int argc, char **argv, int start, args *a)
{
    memset(a, 0, sizeof(*a));
    a->workers = 3;
    for (int i = start; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--json") == 0)
            a->json = 1;
        else if (strcmp(s, "--wait") == 0)
            a->wait = 1;
        else if (strcmp(s, "--allow-delete-outstanding") == 0)
            a->allow_outstanding = 1;
        else if (strcmp(s, "--access-level") == 0 && i + 1 < argc)
            a->access_level = argv[++i];
        else if (strcmp(s, "--dry-run") == 0)
            a->dry_run = 1;
        else if (strcmp(s, "--media") == 0)
            a->media = 1;
        else if (strcmp(s, "--profile") == 0 && i + 1 < argc)
            a->profile = argv[++i];
        else if (strcmp(s, "--encoding") == 0 && i + 1 < argc)
            a->encoding = argv[++i];
        else if (strcmp(s, "--shard-size") == 0 && i + 1 < argc)
            a->shard_size = argv[++i];
        else if (strcmp(s, "--workers") == 0 && i + 1 < argc) {
            int64_t n;
            if (parse_i64(argv[++i], 1, 256, &n) < 0) {
                fprintf(stderr, "patronctl: --workers '%s' is not a number from 1 to 256\n", argv[i]);
                return -1;
            }
            a->workers = (int)n;
        } else if (jobctl_is_flag(s)) {
            if (jobctl_flag(argc, argv, &i, &a->safety) < 0)
                return -1;
        } else if (s[0] == '-' && s[1] == '-') {
            fprintf(stderr, "patronctl: unknown option '%s'\n", s);
            return -1;
        } else if (a->npos < 8) {
            a->pos[a->npos++] = argv[i];
        } else {
            fprintf(stderr, "patronctl: too many arguments\n");
            return -1;
        }
    }
    return 0;
}

static void add_opt(Patronsync__ControlRequest *rq, Patronsync__ControlRequest__OptsEntry *store, const char *k,
                    const char *v)
{
    Patronsync__ControlRequest__OptsEntry *e = &store[rq->n_opts];
    patronsync__control_request__opts_entry__init(e);
    e->key = (char *)k;
    e->value = (char *)v;
    rq->opts[rq->n_opts++] = e;
}

/* Send a request, print its body; the exit status. */
static int call_and_print(const ps_config *cfg, Patronsync__ControlRequest *rq, char **id_out)
{
    char err[ERRLEN];
    char *token = control_token(cfg);
    rq->token = token ? token : "";
    Patronsync__ControlReply *rep = control_call(cfg, rq, 30000, err, sizeof(err));
    free(token);
    if (rep == NULL) {
        fprintf(stderr, "patronctl: %s\n", err);
        return 1;
    }
    int rc = rep->ok ? rep->status : (rep->status ? rep->status : 1);
    if (!rep->ok)
        fprintf(stderr, "patronctl: %s\n", rep->error);
    else if (id_out)
        *id_out = strdup(rep->body);
    else
        fputs(rep->body, stdout);
    patronsync__control_reply__free_unpacked(rep, NULL);
    return rc;
}

static int state_exit(const char *state)
{
    if (strcmp(state, "complete") == 0)
        return 0;
    if (strcmp(state, "complete_with_errors") == 0)
        return 3;
    if (strcmp(state, "held") == 0)
        return 4;
    return 1;
}

int show_job(const ps_config *cfg, const char *id, int json, int wait)
{
    char err[ERRLEN];
    status *st = status_new(cfg->redis_url, err, sizeof(err));
    if (st == NULL) {
        fprintf(stderr, "patronctl: %s\n", err);
        return 1;
    }
    char state[64] = "";
    int64_t redis_down_since = 0;
    for (;;) {
        redisReply *r = status_cmd(st, "HGET ps:job:%s state", id);
        if (r == NULL) {
            if (redis_down_since == 0)
                redis_down_since = mono_ms();
            if (!wait || mono_ms() - redis_down_since > 120000) {
                fprintf(stderr, "patronctl: Redis at %s does not answer\n", cfg->redis_url);
                status_destroy(&st);
                return 1;
            }
            usleep(200 * 1000);
            continue;
        }
        redis_down_since = 0;
        str_copy(state, sizeof(state), r->type == REDIS_REPLY_STRING ? r->str : "");
        freeReplyObject(r);
        if (!wait || summary_state_final(state))
            break;
        usleep(25 * 1000); /* one HGET: an end seen within 25 ms */
    }
    strbuf out;
    sb_init(&out);
    int rc = summary_render(st, id, json, &out);
    status_destroy(&st);
    if (rc == 1) {
        fprintf(stderr, "patronctl: no job '%s'\n", id);
        sb_free(&out);
        return 5;
    }
    if (rc < 0) {
        fprintf(stderr, "patronctl: Redis at %s does not answer\n", cfg->redis_url);
        sb_free(&out);
        return 1;
    }
    fputs(sb_str(&out), stdout);
    sb_free(&out);
    return summary_state_final(state) ? state_exit(state) : 0;
}

/* Copy the operator's file into the import root (adhoc/), as Destiny's
 * upload does; the job runs on the copy. */
static int copy_in(const ps_config *cfg, const char *src, char *rel, size_t rellen)
{
    char err[ERRLEN];
    char base[256];
    char tmp[1024];
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
    char dir[CONFIG_STR + 16], dst[CONFIG_STR + 1100];
    snprintf(dir, sizeof(dir), "%s/adhoc", cfg->import_root);
    snprintf(dst, sizeof(dst), "%s/%s", cfg->import_root, rel);
    int rc = 0;
    if (mkdir_p(dir, 0750, err, sizeof(err)) < 0 ||
        file_copy_atomic(src, dst, (size_t)cfg->max_file_bytes, err, sizeof(err)) < 0) {
        fprintf(stderr, "patronctl: %s\n", err);
        rc = -1;
    } else {
        /* The copy keeps the original's time, so a file that has been
         * still costs no settle wait at the broker. */
        struct stat sb;
        if (stat(src, &sb) == 0) {
            struct timespec times[2] = {sb.st_atim, sb.st_mtim};
            utimensat(AT_FDCWD, dst, times, 0);
        }
    }
    return rc;
}

static int cmd_run(const ps_config *cfg, const args *a)
{
    if (a->npos != 1 || a->profile == NULL) {
        fprintf(stderr, "patronctl: run FILE --profile FILE.properties\n");
        return 2;
    }
    char err[ERRLEN];
    size_t plen;
    char *ptext = file_read_all(a->profile, 1 << 22, &plen, err, sizeof(err));
    if (ptext == NULL) {
        fprintf(stderr, "patronctl: %s\n", err);
        return 2;
    }
    char rel[1024];
    if (copy_in(cfg, a->pos[0], rel, sizeof(rel)) < 0) {
        free(ptext);
        return 1;
    }
    char pname[256], tmp[1024];
    str_copy(tmp, sizeof(tmp), a->profile);
    str_copy(pname, sizeof(pname), basename(tmp));
    Patronsync__ControlRequest rq = PATRONSYNC__CONTROL_REQUEST__INIT;
    Patronsync__ControlRequest__OptsEntry ents[8 + JOBCTL_MAX_FLAGS], *ptrs[8 + JOBCTL_MAX_FLAGS];
    rq.opts = ptrs;
    rq.verb = "run";
    char *argv1[] = {rel};
    rq.args = argv1;
    rq.n_args = 1;
    rq.payload.data = (uint8_t *)ptext;
    rq.payload.len = plen;
    add_opt(&rq, ents, "profile_name", pname);
    if (a->allow_outstanding)
        add_opt(&rq, ents, "allow_delete_outstanding", "1");
    if (a->dry_run)
        add_opt(&rq, ents, "dry_run", "1");
    if (a->encoding)
        add_opt(&rq, ents, "encoding", a->encoding);
    if (a->shard_size)
        add_opt(&rq, ents, "shard_size", a->shard_size);
    if (jobctl_add_opts(&a->safety, &rq, ents, sizeof(ents) / sizeof(ents[0])) < 0) {
        free(ptext);
        return 2;
    }
    char *id = NULL;
    int rc = call_and_print(cfg, &rq, &id);
    free(ptext);
    if (rc != 0 || id == NULL)
        return rc ? rc : 1;
    char *nl = strchr(id, '\n');
    if (nl)
        *nl = '\0';
    if (a->wait)
        rc = show_job(cfg, id, a->json, 1);
    else if (a->json)
        printf("{\"job_id\":\"%s\"}\n", id);
    else
        printf("%s\n", id);
    free(id);
    return rc;
}

static int cmd_status(const ps_config *cfg, int json)
{
    char err[ERRLEN];
    status *st = status_new(cfg->redis_url, err, sizeof(err));
    if (st == NULL) {
        fprintf(stderr, "patronctl: %s\n", err);
        return 1;
    }
    redisReply *r = status_cmd(st, "HGETALL ps:workers");
    if (r == NULL) {
        fprintf(stderr, "patronctl: Redis at %s does not answer\n", cfg->redis_url);
        status_destroy(&st);
        return 1;
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
    return 0;
}

int main(int argc, char **argv)
{
    ps_config cfg;
    char err[ERRLEN];
    int print = 0;
    /* What `up` wrote (ports) is read before the user's own settings. */
    const char *redis_env = getenv("PATRONSYNC_REDIS_URL");
    if (config_from_args(&cfg, &argc, argv, &print, err, sizeof(err)) < 0) {
        fprintf(stderr, "patronctl: %s\n", err);
        return 2;
    }
    log_init("patronctl", LOG_WARN);
    if (print) {
        config_print(&cfg, stdout);
        return 0;
    }
    if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        fputs(jobctl_usage, argc < 2 ? stderr : stdout);
        fputs(usage_tail, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    const char *sub = argc > 2 ? argv[2] : "";
    if (strcmp(cmd, "profile") == 0)
        return profile_cmd(&cfg, argc, argv);
    if (strcmp(cmd, "ref") == 0)
        return ref_cmd(&cfg, argc, argv);
    if (strcmp(cmd, "schedule") == 0)
        return schedule_cmd(&cfg, argc, argv);
    if (strcmp(cmd, "job") == 0 && jobctl_handles(sub))
        return jobctl_cmd(&cfg, argc, argv);
    args a;
    int two = strcmp(cmd, "site") == 0 || strcmp(cmd, "job") == 0 || strcmp(cmd, "patron") == 0;
    if (parse_args(argc, argv, two ? 3 : 2, &a) < 0)
        return 2;
    Patronsync__ControlRequest rq = PATRONSYNC__CONTROL_REQUEST__INIT;
    Patronsync__ControlRequest__OptsEntry ents[8], *ptrs[8];
    rq.opts = ptrs;
    rq.json = a.json;
    rq.args = a.pos;
    rq.n_args = (size_t)a.npos;

    if (strcmp(cmd, "up") == 0) {
        char userconf[CONFIG_STR + 32];
        snprintf(userconf, sizeof(userconf), "%s/patronsync.conf", cfg.data_dir);
        int redis_configured = redis_env != NULL;
        size_t len;
        char *uc = file_read_all(userconf, 1 << 20, &len, NULL, 0);
        if (uc) {
            redis_configured |= strstr(uc, "redis_url") != NULL;
            free(uc);
        }
        if (cluster_up(&cfg, a.workers, redis_configured, err, sizeof(err)) < 0) {
            fprintf(stderr, "patronctl up: %s\n", err);
            cluster_down(&cfg, NULL, 0);
            return 1;
        }
        printf("cluster up under %s: %d workers, scheduler at %s, Redis at %s\n", cfg.data_dir, a.workers,
               cfg.control_endpoint, cfg.redis_url);
        printf("administrator token: %s/admin.token\n", cfg.data_dir);
        return 0;
    }
    if (strcmp(cmd, "down") == 0) {
        cluster_down(&cfg, err, sizeof(err));
        printf("cluster under %s stopped\n", cfg.data_dir);
        return 0;
    }
    if (strcmp(cmd, "site") == 0 && strcmp(sub, "add") == 0) {
        rq.verb = "site.add";
        if (a.access_level)
            add_opt(&rq, ents, "access_level", a.access_level);
        if (a.media)
            add_opt(&rq, ents, "media", "1");
        return call_and_print(&cfg, &rq, NULL);
    }
    if (strcmp(cmd, "site") == 0 && strcmp(sub, "import") == 0) {
        if (a.npos != 1) {
            fprintf(stderr, "patronctl: site import FILE.csv\n");
            return 2;
        }
        size_t len;
        char *data = file_read_all(a.pos[0], 1 << 26, &len, err, sizeof(err));
        if (data == NULL) {
            fprintf(stderr, "patronctl: %s\n", err);
            return 2;
        }
        rq.verb = "site.import";
        rq.n_args = 0;
        rq.payload.data = (uint8_t *)data;
        rq.payload.len = len;
        add_opt(&rq, ents, "file_name", a.pos[0]);
        int rc = call_and_print(&cfg, &rq, NULL);
        free(data);
        return rc;
    }
    if (strcmp(cmd, "run") == 0)
        return cmd_run(&cfg, &a);
    if (strcmp(cmd, "jobs") == 0) {
        status *st = status_new(cfg.redis_url, err, sizeof(err));
        if (st == NULL) {
            fprintf(stderr, "patronctl: %s\n", err);
            return 1;
        }
        strbuf out;
        sb_init(&out);
        int rc = summary_render_jobs(st, a.json, 50, &out);
        status_destroy(&st);
        if (rc < 0) {
            fprintf(stderr, "patronctl: Redis at %s does not answer\n", cfg.redis_url);
            sb_free(&out);
            return 1;
        }
        fputs(sb_str(&out), stdout);
        sb_free(&out);
        return 0;
    }
    if (strcmp(cmd, "job") == 0 && strcmp(sub, "show") == 0 && a.npos == 1)
        return show_job(&cfg, a.pos[0], a.json, a.wait);
    if (strcmp(cmd, "patron") == 0 && strcmp(sub, "show") == 0 && a.npos == 1) {
        rq.verb = "patron.show";
        return call_and_print(&cfg, &rq, NULL);
    }
    if (strcmp(cmd, "status") == 0)
        return cmd_status(&cfg, a.json);
    fprintf(stderr, "patronctl: unknown command\n%s%s%s", usage, jobctl_usage, usage_tail);
    return 2;
}
