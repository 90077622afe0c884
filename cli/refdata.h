/* refdata: `patronctl ref add|list` (scheduler/refdata.c does the work). */
#ifndef CLI_REFDATA_H
#define CLI_REFDATA_H

#include "args.h"

int ref_cmd(const cli_ctx *c);

#endif
