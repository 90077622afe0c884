/* profile_new: `patronctl profile new` (the Patron Import Converter) and
 * `patronctl profile explain` (local: no cluster needed; docs/CONVERTER.md). */
#ifndef CLI_PROFILE_NEW_H
#define CLI_PROFILE_NEW_H

#include "args.h"

int profile_new_cmd(const cli_ctx *c);
int profile_explain_cmd(const cli_ctx *c);

#endif
