/* sites: `patronctl site add|import` and `patron show`, served by the
 * scheduler's site.add, site.import and patron.show verbs. */
#include "sites.h"

#include <stdlib.h>

#include "call.h"

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
