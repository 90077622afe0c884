/* jobctl: `patronctl job approve|discard|undo ID` (scheduler/jobctl.c does
 * the work). */
#ifndef CLI_JOBCTL_H
#define CLI_JOBCTL_H

#include "args.h"

int jobctl_cmd(const cli_ctx *c);

#endif
