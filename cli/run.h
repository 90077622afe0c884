/* run: `patronctl run FILE --profile FILE.properties [OPTIONS]`. */
#ifndef CLI_RUN_H
#define CLI_RUN_H

#include "args.h"

int cmd_run(const cli_ctx *c);

#endif
