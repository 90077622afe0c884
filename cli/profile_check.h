/* profile_check: `patronctl profile check FILE.properties [--csv SAMPLE]`
 * (local: no cluster needed). */
#ifndef CLI_PROFILE_CHECK_H
#define CLI_PROFILE_CHECK_H

#include "args.h"

int profile_cmd(const cli_ctx *c);

#endif
