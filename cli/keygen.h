/* keygen: `patronctl keygen --data DIR [--role ROLE] [--json]` (local: no
 * cluster needed) — the CURVE keys and allow-lists for a container or a
 * machine of its own (docs/SECURITY.md). */
#ifndef CLI_KEYGEN_H
#define CLI_KEYGEN_H

#include "args.h"

/* Every missing key and allow-list under the keys folder, or with --role
 * one role's keypair and the allow-list line of its public key. What was
 * made (and what was there) printed; the exit status. */
int keygen_cmd(const cli_ctx *c);

#endif
