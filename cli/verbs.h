/* verbs: patronctl's commands as one table (name, sub-command, operands,
 * options, what each needs of the cluster, its handler), the help it
 * prints, and the dispatch. */
#ifndef CLI_VERBS_H
#define CLI_VERBS_H

#include <stddef.h>

#include "args.h"

extern const cli_verb cli_verbs[];
extern const size_t cli_nverbs;

/* patronctl's command line after config_from_args took --data, --set and
 * --config: find the command, parse its options by the table, check what
 * it needs, run it. The exit status (messages printed). */
int cli_main(ps_config *cfg, int argc, char **argv);

#endif
