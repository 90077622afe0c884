/* schedule: `patronctl schedule ...` — scheduled patron updates, served by
 * the scheduler's "schedule.*" verbs (docs/SCHEDULES.md). This side only
 * turns arguments into a request: every check is the scheduler's, so the
 * web page and patronctl refuse the same things with the same words. */
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"

static const char *schedule_usage =
    "usage: patronctl schedule COMMAND ...\n"
    "  list [--json]                          every schedule: created by, last run, next run, missed slots\n"
    "  show NAME [--json] [--properties]      one schedule (--properties: its stored properties file)\n"
    "  add NAME --file FILE --profile FILE.properties --time HH:MM --full DAYS|--incremental DAYS [OPTIONS]\n"
    "  edit NAME [--name NEW] [--file FILE] [--profile FILE.properties] [--time HH:MM]\n"
    "            [--full DAYS] [--incremental DAYS] [--none DAYS] [OPTIONS]\n"
    "  delete NAME                            a job of it already running is not disturbed\n"
    "  run NAME [--incremental] [--dry-run] [--wait] [--json]   run now (Full unless --incremental)\n"
    "  enable NAME | disable NAME\n"
    "DAYS: Sun..Sat, ranges (Mon-Fri), daily, weekdays, weekends, comma-separated; other days are None.\n"
    "OPTIONS:\n"
    "  --encoding ENC                   the file's encoding (default: the properties file's CsvTextEncoding)\n"
    "  --disabled [yes|no]              added disabled\n"
    "  --allow-delete-outstanding [yes|no]  delete patrons with checkouts or fines (default no)\n"
    "  --errors-only [yes|no]           the job summary lists errors and warnings only\n"
    "  --keep-jobs N|off                delete previously run jobs, keeping N (1-99; 2+ with Incremental days)\n"
    "  --inactivate-missing [yes|no]    inactivate patrons missing from the file\n"
    "  --min-records N                  patron records read before missing patrons are touched (0-999,999)\n"
    "  --days-before-inactivate N       days a patron must be missing first (0-999)\n"
    "  --inactive-homeroom TEXT         homeroom set on inactivated patrons\n"
    "  --delete-after-days N|never      delete instead of inactivate after N more days\n"
    "  --scope-sites A,B|file           sites missing patrons are looked for in (default: the file's)\n"
    "  --scope-types X,Y|all            patron types likewise (default: all)\n"
    "  --max-add-pct P|off, --max-update-pct P|off, --max-inactivate-pct P|off, --max-delete-pct P|off,\n"
    "  --max-remove-pct P|off           hold a job crossing the threshold (percent of patrons in scope;\n"
    "                                   default: updates 75, removals 10, others off)\n"
    "Times are the district's local time (setting timezone).\n";

typedef struct {
    const char *flag; /* command-line option */
    const char *key;  /* request option */
    int boolean;      /* the value may be left out (yes) */
} flag_map;

static const flag_map flags[] = {
    {"--name", "name", 0},
    {"--file", "file", 0},
    {"--encoding", "encoding", 0},
    {"--time", "time", 0},
    {"--days", "days", 0},
    {"--full", "full", 0},
    {"--incremental", "incremental", 0},
    {"--none", "none", 0},
    {"--disabled", "disabled", 1},
    {"--allow-delete-outstanding", "allow_delete_outstanding", 1},
    {"--errors-only", "errors_only", 1},
    {"--keep-jobs", "keep_jobs", 0},
    {"--inactivate-missing", "inactivate_missing", 1},
    {"--min-records", "min_records", 0},
    {"--days-before-inactivate", "days_before_inactivate", 0},
    {"--inactive-homeroom", "inactive_homeroom", 0},
    {"--delete-after-days", "delete_after_days", 0},
    {"--scope-sites", "scope_sites", 0},
    {"--scope-types", "scope_types", 0},
    {"--max-add-pct", "max_add_pct", 0},
    {"--max-update-pct", "max_update_pct", 0},
    {"--max-inactivate-pct", "max_inactivate_pct", 0},
    {"--max-delete-pct", "max_delete_pct", 0},
    {"--max-remove-pct", "max_remove_pct", 0},
};
#define NFLAGS (sizeof(flags) / sizeof(flags[0]))
#define MAX_OPTS (NFLAGS + 4)

static int yes_no(const char *s)
{
    static const char *words[] = {"yes", "no", "y", "n", "true", "false", "on", "off", "1", "0"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strcasecmp(s, words[i]) == 0)
            return 1;
    return 0;
}

typedef struct {
    Patronsync__ControlRequest rq;
    Patronsync__ControlRequest__OptsEntry ents[MAX_OPTS];
    Patronsync__ControlRequest__OptsEntry *ptrs[MAX_OPTS];
    char *args[2];
    char profile_name[256];
    char *profile_text; /* owned */
    int wait;
} sched_req;

static int put_opt(sched_req *r, const char *key, const char *value)
{
    for (size_t i = 0; i < r->rq.n_opts; i++) {
        if (strcmp(r->ents[i].key, key) == 0) {
            r->ents[i].value = (char *)value; /* given twice: the later wins */
            return 0;
        }
    }
    if (r->rq.n_opts == MAX_OPTS)
        return -1;
    Patronsync__ControlRequest__OptsEntry *e = &r->ents[r->rq.n_opts];
    patronsync__control_request__opts_entry__init(e);
    e->key = (char *)key;
    e->value = (char *)value;
    r->ptrs[r->rq.n_opts++] = e;
    return 0;
}

static int read_profile(sched_req *r, const char *path)
{
    char err[ERRLEN];
    size_t len;
    free(r->profile_text);
    r->profile_text = file_read_all(path, 4u << 20, &len, err, sizeof(err));
    if (r->profile_text == NULL) {
        fprintf(stderr, "patronctl: %s\n", err);
        return -1;
    }
    char tmp[1024];
    str_copy(tmp, sizeof(tmp), path);
    str_copy(r->profile_name, sizeof(r->profile_name), basename(tmp));
    r->rq.payload.data = (uint8_t *)r->profile_text;
    r->rq.payload.len = len;
    return put_opt(r, "profile_name", r->profile_name);
}

/* argv[3..]: the name, then options. Only `run` takes --incremental bare. */
static int parse(sched_req *r, const char *sub, int argc, char **argv)
{
    int is_run = strcmp(sub, "run") == 0;
    size_t nargs = 0;
    for (int i = 3; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0) {
            r->rq.json = 1;
        } else if (strcmp(a, "--wait") == 0 && is_run) {
            r->wait = 1;
        } else if (strcmp(a, "--dry-run") == 0 && is_run) {
            put_opt(r, "dry_run", "1");
        } else if (strcmp(a, "--incremental") == 0 && is_run) {
            put_opt(r, "mode", "incremental");
        } else if (strcmp(a, "--full") == 0 && is_run) {
            put_opt(r, "mode", "full");
        } else if (strcmp(a, "--properties") == 0 && strcmp(sub, "show") == 0) {
            put_opt(r, "properties", "1");
        } else if (strcmp(a, "--profile") == 0 && !is_run) {
            if (i + 1 >= argc) {
                fprintf(stderr, "patronctl: --profile needs a properties file\n");
                return -1;
            }
            if (read_profile(r, argv[++i]) < 0)
                return -1;
        } else if (a[0] == '-' && a[1] == '-') {
            size_t k = 0;
            while (k < NFLAGS && (is_run || strcmp(flags[k].flag, a) != 0))
                k++;
            if (k == NFLAGS) {
                fprintf(stderr, "patronctl: schedule %s: unknown option '%s' (patronctl schedule help)\n", sub, a);
                return -1;
            }
            const char *v = NULL;
            if (i + 1 < argc && (!flags[k].boolean || yes_no(argv[i + 1])))
                v = argv[++i];
            else if (flags[k].boolean)
                v = "yes";
            if (v == NULL) {
                fprintf(stderr, "patronctl: %s needs a value\n", a);
                return -1;
            }
            if (put_opt(r, flags[k].key, v) < 0)
                return -1;
        } else if (nargs < 1) {
            r->args[nargs++] = argv[i];
        } else {
            fprintf(stderr, "patronctl: schedule %s: unexpected argument '%s' (quote a name with spaces)\n", sub, a);
            return -1;
        }
    }
    r->rq.args = r->args;
    r->rq.n_args = nargs;
    return 0;
}

int schedule_cmd(const ps_config *cfg, int argc, char **argv)
{
    const char *sub = argc > 2 ? argv[2] : "";
    static const char *subs[] = {"add", "edit", "show", "list", "delete", "run", "enable", "disable"};
    size_t k = 0;
    while (k < sizeof(subs) / sizeof(subs[0]) && strcmp(subs[k], sub) != 0)
        k++;
    if (k == sizeof(subs) / sizeof(subs[0])) {
        int help = strcmp(sub, "help") == 0 || strcmp(sub, "--help") == 0;
        fputs(schedule_usage, help ? stdout : stderr);
        return help ? 0 : 2;
    }
    sched_req r;
    memset(&r, 0, sizeof(r));
    patronsync__control_request__init(&r.rq);
    r.rq.opts = r.ptrs;
    char verb[32];
    snprintf(verb, sizeof(verb), "schedule.%s", sub);
    r.rq.verb = verb;
    int rc = 2;
    if (parse(&r, sub, argc, argv) < 0)
        goto out;
    if ((strcmp(sub, "list") == 0) != (r.rq.n_args == 0)) {
        fprintf(stderr, "patronctl: schedule %s: %s\n", sub, r.rq.n_args ? "takes no name" : "expected the schedule's name");
        goto out;
    }
    char err[ERRLEN];
    char *token = control_token(cfg);
    r.rq.token = token ? token : "";
    Patronsync__ControlReply *rep = control_call(cfg, &r.rq, 30000, err, sizeof(err));
    free(token);
    if (rep == NULL) {
        fprintf(stderr, "patronctl: %s\n", err);
        rc = 1;
        goto out;
    }
    rc = rep->ok ? rep->status : (rep->status ? rep->status : 1);
    if (!rep->ok) {
        fprintf(stderr, "patronctl: %s\n", rep->error);
    } else if (r.wait) {
        /* The reply is the job id (or {"job_id":...}); wait on it in Redis. */
        char id[128];
        const char *b = rep->body;
        const char *q = r.rq.json ? strstr(b, "\"job_id\":\"") : NULL;
        if (q)
            b = q + strlen("\"job_id\":\"");
        size_t n = strcspn(b, "\"\n");
        if (n >= sizeof(id))
            n = sizeof(id) - 1;
        memcpy(id, b, n);
        id[n] = '\0';
        if (!r.rq.json)
            printf("%s\n", id);
        fflush(stdout);
        rc = show_job(cfg, id, r.rq.json, 1);
    } else {
        fputs(rep->body, stdout);
    }
    patronsync__control_reply__free_unpacked(rep, NULL);
out:
    free(r.profile_text);
    return rc;
}
