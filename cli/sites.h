/* sites: `patronctl site add|import`, `patron show`. */
#ifndef CLI_SITES_H
#define CLI_SITES_H

#include "args.h"

int cmd_site_add(const cli_ctx *c);
int cmd_site_import(const cli_ctx *c);
int cmd_patron_show(const cli_ctx *c);

#endif
