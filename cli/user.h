/* user: `patronctl user add|list|grant|revoke|disable|enable|token` and
 * `patronctl audit` — the district's users, their permissions and the
 * audit trail (docs/SECURITY.md). The scheduler does the work
 * (scheduler/users.c); the options are the table's (verbs.c). */
#ifndef CLI_USER_H
#define CLI_USER_H

#include "args.h"

int user_cmd(const cli_ctx *c);
int audit_cmd(const cli_ctx *c);

#endif
