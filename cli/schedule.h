/* schedule: `patronctl schedule add|edit|show|list|delete|run|enable|disable`
 * (scheduler/schedule_verbs.c does the work). */
#ifndef CLI_SCHEDULE_H
#define CLI_SCHEDULE_H

#include "args.h"

int schedule_cmd(const cli_ctx *c);

#endif
