/* patronctl: the operator's tool — start and stop a cluster, sites, runs,
 * jobs and their summaries, patrons, schedules. The commands are a table
 * (verbs.c): `patronctl help` lists them, `patronctl COMMAND --help` shows
 * one; docs/OPERATORS.md describes them. This file: the global options
 * (--data, --set, --config, --print-config, --token, --token-file) and the
 * table's dispatch. */
#include <stdio.h>

#include "call.h"
#include "exitcodes.h"
#include "log.h"
#include "verbs.h"

int main(int argc, char **argv)
{
    ps_config cfg;
    char err[ERRLEN];
    int print = 0;
    if (control_token_args(&argc, argv, err, sizeof(err)) < 0) {
        fprintf(stderr, "patronctl: %s\n", err);
        return PS_EXIT_USAGE;
    }
    if (config_from_args(&cfg, &argc, argv, &print, err, sizeof(err)) < 0) {
        fprintf(stderr, "patronctl: %s\n", err);
        return PS_EXIT_USAGE;
    }
    log_init("patronctl", LOG_WARN);
    if (print) {
        config_print(&cfg, stdout);
        return PS_EXIT_OK;
    }
    return cli_main(&cfg, argc, argv);
}
