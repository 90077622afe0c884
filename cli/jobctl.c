/* jobctl: `patronctl job approve|discard|undo ID` and the safety flags of
 * `patronctl run` (missing patrons, scope, thresholds). docs/SAFETY.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef struct {
    const char *flag;
    const char *opt;   /* the option name (lib/safety.h) */
    const char *fixed; /* value of a flag without an argument; NULL: takes one */
} flagdef;

static const flagdef flagdefs[] = {
    {"--inactivate-missing", "inactivate_missing", "1"},
    {"--min-records", "min_records", NULL},
    {"--days-before-inactivate", "days_before_inactivate", NULL},
    {"--inactive-homeroom", "inactive_homeroom", NULL},
    {"--delete-after-days", "delete_after_days", NULL},
    {"--scope-sites", "scope_sites", NULL},
    {"--scope-types", "scope_types", NULL},
    {"--max-add-pct", "max_add_pct", NULL},
    {"--max-update-pct", "max_update_pct", NULL},
    {"--max-inactivate-pct", "max_inactivate_pct", NULL},
    {"--max-delete-pct", "max_delete_pct", NULL},
    {"--max-remove-pct", "max_remove_pct", NULL},
};
#define NFLAGDEFS (sizeof(flagdefs) / sizeof(flagdefs[0]))

static const char *const thresholds[] = {"max_add_pct", "max_update_pct", "max_inactivate_pct", "max_delete_pct",
                                         "max_remove_pct"};

const char *jobctl_usage =
    "  run ... [--inactivate-missing] [--min-records N] [--days-before-inactivate N]\n"
    "      [--inactive-homeroom H] [--delete-after-days N|never]\n"
    "      [--scope-sites A,B] [--scope-types T,U] [--max-remove-pct P] [--max-update-pct P]\n"
    "      [--max-add-pct P] [--max-inactivate-pct P] [--max-delete-pct P] [--no-thresholds]\n"
    "                                      missing patrons and safety thresholds (P: 0-100 or off)\n"
    "  job approve ID [--wait] [--json]    apply a held job exactly as its preview shows\n"
    "  job discard ID [--json]             end a held job without any change\n"
    "  job undo ID [--force] [--json]      put back what a job changed (refused where later\n"
    "                                      jobs changed the same patrons, unless --force)\n";

int jobctl_is_flag(const char *arg)
{
    if (strcmp(arg, "--no-thresholds") == 0)
        return 1;
    for (size_t i = 0; i < NFLAGDEFS; i++)
        if (strcmp(arg, flagdefs[i].flag) == 0)
            return 1;
    return 0;
}

static int put(jobctl_flags *f, const char *key, const char *value)
{
    for (int i = 0; i < f->n; i++) {
        if (strcmp(f->key[i], key) == 0) {
            f->value[i] = value;
            return 0;
        }
    }
    if (f->n == JOBCTL_MAX_FLAGS) {
        fprintf(stderr, "patronctl: too many safety options\n");
        return -1;
    }
    f->key[f->n] = key;
    f->value[f->n] = value;
    f->n++;
    return 0;
}

int jobctl_flag(int argc, char **argv, int *i, jobctl_flags *f)
{
    const char *s = argv[*i];
    if (strcmp(s, "--no-thresholds") == 0) {
        for (size_t k = 0; k < sizeof(thresholds) / sizeof(thresholds[0]); k++)
            if (put(f, thresholds[k], "off") < 0)
                return -1;
        return 0;
    }
    for (size_t k = 0; k < NFLAGDEFS; k++) {
        if (strcmp(s, flagdefs[k].flag) != 0)
            continue;
        if (flagdefs[k].fixed)
            return put(f, flagdefs[k].opt, flagdefs[k].fixed);
        if (*i + 1 >= argc) {
            fprintf(stderr, "patronctl: %s needs a value\n", s);
            return -1;
        }
        (*i)++;
        return put(f, flagdefs[k].opt, argv[*i]);
    }
    fprintf(stderr, "patronctl: unknown option '%s'\n", s);
    return -1;
}

int jobctl_add_opts(const jobctl_flags *f, Patronsync__ControlRequest *rq, Patronsync__ControlRequest__OptsEntry *store,
                    size_t cap)
{
    for (int i = 0; i < f->n; i++) {
        if (rq->n_opts >= cap) {
            fprintf(stderr, "patronctl: too many options\n");
            return -1;
        }
        Patronsync__ControlRequest__OptsEntry *e = &store[rq->n_opts];
        patronsync__control_request__opts_entry__init(e);
        e->key = (char *)f->key[i];
        e->value = (char *)f->value[i];
        rq->opts[rq->n_opts++] = e;
    }
    return 0;
}

int jobctl_handles(const char *sub)
{
    return strcmp(sub, "approve") == 0 || strcmp(sub, "discard") == 0 || strcmp(sub, "undo") == 0;
}

int jobctl_cmd(const ps_config *cfg, int argc, char **argv)
{
    const char *sub = argv[2];
    const char *id = NULL;
    int json = 0, wait = 0, force = 0;
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (strcmp(argv[i], "--wait") == 0 && strcmp(sub, "approve") == 0)
            wait = 1;
        else if (strcmp(argv[i], "--force") == 0 && strcmp(sub, "undo") == 0)
            force = 1;
        else if (argv[i][0] != '-' && id == NULL)
            id = argv[i];
        else {
            fprintf(stderr, "patronctl: job %s: unexpected '%s'\n", sub, argv[i]);
            return 2;
        }
    }
    if (id == NULL) {
        fprintf(stderr, "patronctl: job %s ID\n", sub);
        return 2;
    }
    char verb[32];
    snprintf(verb, sizeof(verb), "job.%s", sub);
    Patronsync__ControlRequest rq = PATRONSYNC__CONTROL_REQUEST__INIT;
    Patronsync__ControlRequest__OptsEntry ent, *ptr = &ent;
    char *args[1] = {(char *)id};
    rq.verb = verb;
    rq.args = args;
    rq.n_args = 1;
    rq.json = json && !wait;
    if (force) {
        patronsync__control_request__opts_entry__init(&ent);
        ent.key = "force";
        ent.value = "1";
        rq.opts = &ptr;
        rq.n_opts = 1;
    }
    char err[ERRLEN];
    char *token = control_token(cfg);
    rq.token = token ? token : "";
    /* An undo of a large job writes every patron it touched. */
    Patronsync__ControlReply *rep = control_call(cfg, &rq, strcmp(sub, "undo") == 0 ? 600000 : 30000, err, sizeof(err));
    free(token);
    if (rep == NULL) {
        fprintf(stderr, "patronctl: %s\n", err);
        return 1;
    }
    int rc = rep->ok ? rep->status : (rep->status ? rep->status : 1);
    if (!rep->ok)
        fprintf(stderr, "patronctl: %s\n", rep->error);
    else if (!wait)
        fputs(rep->body, stdout);
    patronsync__control_reply__free_unpacked(rep, NULL);
    if (rc == 0 && wait)
        rc = show_job(cfg, id, json, 1);
    return rc;
}
