/* refdata: `patronctl ref add|list` — the reference data the patron rules
 * check values against (patron types, access levels, resource groups) and
 * the district's defaults; docs/RULES.md. The scheduler does the work
 * (scheduler/refdata.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *ref_usage =
    "usage: patronctl ref add patron-type|access-level|resource-group NAME... [--default]\n"
    "       patronctl ref list [--json]\n"
    "  --default   NAME becomes the district's default patron type or resource group\n"
    "  (a site's default access level: patronctl site add SHORT \"Name\" --access-level LEVEL)\n";

int ref_cmd(const ps_config *cfg, int argc, char **argv)
{
    const char *sub = argc > 2 ? argv[2] : "";
    int json = 0, as_default = 0;
    char *pos[64];
    size_t npos = 0;
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (strcmp(argv[i], "--default") == 0)
            as_default = 1;
        else if (argv[i][0] == '-' && argv[i][1] == '-') {
            fprintf(stderr, "patronctl: unknown option '%s'\n%s", argv[i], ref_usage);
            return 2;
        } else if (npos < sizeof(pos) / sizeof(pos[0])) {
            pos[npos++] = argv[i];
        } else {
            fprintf(stderr, "patronctl: too many names (at most 64 at a time)\n");
            return 2;
        }
    }
    Patronsync__ControlRequest rq = PATRONSYNC__CONTROL_REQUEST__INIT;
    Patronsync__ControlRequest__OptsEntry ent, *ptr = &ent;
    if (strcmp(sub, "add") == 0 && npos >= 2) {
        rq.verb = "ref.add";
        if (as_default) {
            patronsync__control_request__opts_entry__init(&ent);
            ent.key = "default";
            ent.value = "1";
            rq.opts = &ptr;
            rq.n_opts = 1;
        }
    } else if (strcmp(sub, "list") == 0 && npos == 0) {
        rq.verb = "ref.list";
    } else {
        fputs(ref_usage, strcmp(sub, "help") == 0 ? stdout : stderr);
        return strcmp(sub, "help") == 0 ? 0 : 2;
    }
    rq.args = pos;
    rq.n_args = npos;
    rq.json = json;
    char err[ERRLEN];
    char *token = control_token(cfg);
    rq.token = token ? token : "";
    Patronsync__ControlReply *rep = control_call(cfg, &rq, 30000, err, sizeof(err));
    free(token);
    if (rep == NULL) {
        fprintf(stderr, "patronctl: %s\n", err);
        return 1;
    }
    int rc = rep->ok ? rep->status : (rep->status ? rep->status : 1);
    if (rep->ok)
        fputs(rep->body, stdout);
    else
        fprintf(stderr, "patronctl: %s\n", rep->error);
    patronsync__control_reply__free_unpacked(rep, NULL);
    return rc;
}
