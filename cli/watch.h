/* watch: `patronctl watch [ID] [--once]` — a live view from Redis. */
#ifndef CLI_WATCH_H
#define CLI_WATCH_H

#include "args.h"

int cmd_watch(const cli_ctx *c);

#endif
