/* schedule: `patronctl schedule add|edit|show|list|delete|run|enable|disable`
 * — scheduled patron updates, served by the scheduler's "schedule.*" verbs
 * (docs/SCHEDULES.md). This side only turns the command into a request
 * (the options are the table's, verbs.c, each with its request key): every
 * check is the scheduler's, so the web page and patronctl refuse the same
 * things with the same words. */
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schedule.h"
#include "call.h"
#include "jobs.h"

/* The job id of a schedule run's reply: "ID\n" or {"job_id":"ID"}. */
static void reply_job_id(const char *b, int json, char *id, size_t idlen)
{
    const char *q = json ? strstr(b, "\"job_id\":\"") : NULL;
    if (q)
        b = q + strlen("\"job_id\":\"");
    size_t n = strcspn(b, "\"\n");
    if (n >= idlen)
        n = idlen - 1;
    memcpy(id, b, n);
    id[n] = '\0';
}

int schedule_cmd(const cli_ctx *c)
{
    const char *sub = c->verb->sub;
    char verb[32];
    snprintf(verb, sizeof(verb), "schedule.%s", sub);
    Patronsync__ControlRequest rq = PATRONSYNC__CONTROL_REQUEST__INIT;
    Patronsync__ControlRequest__OptsEntry ents[CLI_MAX_OPTS + 2], *ptrs[CLI_MAX_OPTS + 2];
    rq.verb = verb;
    rq.opts = ptrs;
    rq.args = (char **)c->pos;
    rq.n_args = (size_t)c->npos;
    rq.json = cli_flag(c, "--json");
    int rc;
    char *ptext = NULL, pname[256];
    const char *profile = cli_value(c, "--profile");
    if (profile != NULL) {
        size_t len;
        ptext = cli_read_operand(c, profile, 4u << 20, &len, &rc);
        if (ptext == NULL)
            return rc;
        char tmp[PATH_MAX];
        str_copy(tmp, sizeof(tmp), profile);
        str_copy(pname, sizeof(pname), basename(tmp));
        rq.payload.data = (uint8_t *)ptext;
        rq.payload.len = len;
        cli_put_opt(&rq, ents, "profile_name", pname);
    }
    if (cli_put_keyed(c, &rq, ents, sizeof(ents) / sizeof(ents[0])) < 0) {
        free(ptext);
        return PS_EXIT_USAGE;
    }
    int wait = cli_flag(c, "--wait");
    char *body = NULL;
    rc = cli_call(c, &rq, 30000, wait ? &body : NULL);
    free(ptext);
    if (rc == PS_EXIT_OK && body != NULL) {
        /* Wait on the job in Redis. */
        char id[128];
        reply_job_id(body, rq.json, id, sizeof(id));
        if (!rq.json)
            printf("%s\n", id);
        fflush(stdout);
        rc = show_job(c->cfg, id, rq.json, 1);
    }
    free(body);
    return rc;
}
