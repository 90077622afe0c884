/* refdata: `patronctl ref add|list` — the reference data the patron rules
 * check values against (patron types, access levels, resource groups) and
 * the district's defaults; docs/RULES.md. The scheduler does the work
 * (scheduler/refdata.c); the options are the table's (verbs.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "refdata.h"
#include "call.h"

int ref_cmd(const cli_ctx *c)
{
    Patronsync__ControlRequest rq = PATRONSYNC__CONTROL_REQUEST__INIT;
    Patronsync__ControlRequest__OptsEntry ents[2], *ptrs[2];
    rq.verb = strcmp(c->verb->sub, "add") == 0 ? "ref.add" : "ref.list";
    rq.opts = ptrs;
    rq.args = (char **)c->pos;
    rq.n_args = (size_t)c->npos;
    rq.json = cli_flag(c, "--json");
    if (cli_put_keyed(c, &rq, ents, 2) < 0)
        return PS_EXIT_USAGE;
    return cli_call(c, &rq, 30000, NULL);
}
