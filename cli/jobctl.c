/* jobctl: `patronctl job approve|discard|undo ID` — decide a held job,
 * put back what a job changed (docs/SAFETY.md). The scheduler does the
 * work (scheduler/jobctl.c); the options are the table's (verbs.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobctl.h"
#include "call.h"
#include "jobs.h"

int jobctl_cmd(const cli_ctx *c)
{
    const char *sub = c->verb->sub;
    const char *id = c->pos[0];
    int json = cli_flag(c, "--json"), wait = cli_flag(c, "--wait");
    char verb[32];
    snprintf(verb, sizeof(verb), "job.%s", sub);
    Patronsync__ControlRequest rq = PATRONSYNC__CONTROL_REQUEST__INIT;
    Patronsync__ControlRequest__OptsEntry ents[4], *ptrs[4];
    char *args[1] = {(char *)id};
    rq.verb = verb;
    rq.args = args;
    rq.n_args = 1;
    rq.opts = ptrs;
    rq.json = json && !wait;
    if (cli_put_keyed(c, &rq, ents, 4) < 0)
        return PS_EXIT_USAGE;
    /* An undo of a large job writes every patron it touched. */
    char *body = NULL;
    int rc = cli_call(c, &rq, strcmp(sub, "undo") == 0 ? 600000 : 30000, wait ? &body : NULL);
    free(body);
    if (rc == PS_EXIT_OK && wait)
        rc = show_job(c->cfg, id, json, 1);
    return rc;
}
