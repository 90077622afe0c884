/* health: `patronctl health` (does every part answer: exit 0 or 1) and
 * `patronctl status` (each process from its pid file, Redis, the store:
 * works without Redis). */
#ifndef CLI_HEALTH_H
#define CLI_HEALTH_H

#include "args.h"

int cmd_health(const cli_ctx *c);
int cmd_status(const cli_ctx *c);

#endif
