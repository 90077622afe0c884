/* user: the user and audit commands (user.h). */
#include "user.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "call.h"

int user_cmd(const cli_ctx *c)
{
    char verb[32], perms[256], sites[1024];
    snprintf(verb, sizeof(verb), "user.%s", c->verb->sub);
    Patronsync__ControlRequest rq = PATRONSYNC__CONTROL_REQUEST__INIT;
    Patronsync__ControlRequest__OptsEntry ents[2], *ptrs[2];
    rq.verb = verb;
    rq.opts = ptrs;
    rq.args = (char **)c->pos;
    rq.n_args = (size_t)c->npos;
    rq.json = cli_flag(c, "--json");
    if (cli_values(c, "--permission", perms, sizeof(perms)) < 0 || cli_values(c, "--site", sites, sizeof(sites)) < 0) {
        fprintf(stderr, "patronctl user: too many --permission or --site values\n");
        return PS_EXIT_USAGE;
    }
    if (perms[0])
        cli_put_opt(&rq, ents, "permission", perms);
    if (sites[0])
        cli_put_opt(&rq, ents, "sites", sites);
    return cli_call(c, &rq, 30000, NULL);
}

int audit_cmd(const cli_ctx *c)
{
    Patronsync__ControlRequest rq = PATRONSYNC__CONTROL_REQUEST__INIT;
    Patronsync__ControlRequest__OptsEntry ents[2], *ptrs[2];
    rq.verb = "audit.list";
    rq.opts = ptrs;
    rq.json = cli_flag(c, "--json");
    char since[32], limit[32];
    const char *w = cli_value(c, "--since");
    if (w != NULL) {
        int64_t ms = cli_when_ms(w);
        if (ms < 0) {
            fprintf(stderr, "patronctl audit: --since %s: expected YYYY-MM-DD[THH:MM[:SS]] (UTC), Nh or Nd\n", w);
            return PS_EXIT_USAGE;
        }
        snprintf(since, sizeof(since), "%lld", (long long)ms);
        cli_put_opt(&rq, ents, "since", since);
    }
    snprintf(limit, sizeof(limit), "%lld", (long long)cli_number(c, "--limit", 1000));
    cli_put_opt(&rq, ents, "limit", limit);
    return cli_call(c, &rq, 30000, NULL);
}
