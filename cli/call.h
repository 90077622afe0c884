/* call: talking to the scheduler's control endpoint — the user token, one
 * request and its reply, and the way every command sends one and prints
 * the answer. */
#ifndef CLI_CALL_H
#define CLI_CALL_H

#include "args.h"

/* One request to the scheduler, waiting up to timeout_ms (connecting:
 * 5 s at most). The reply is the caller's to free with
 * patronsync__control_reply__free_unpacked. NULL and err when the
 * scheduler does not answer. */
Patronsync__ControlReply *control_call(const ps_config *cfg, Patronsync__ControlRequest *rq, long timeout_ms,
                                       char *err, size_t errlen);
/* Take --token TOKEN and --token-file FILE out of argv (anywhere; also
 * --token=T): a token given so is wiped from the argument list at once, so
 * other users' `ps` does not show it (prefer PATRONSYNC_TOKEN or a token
 * file). 0, or -1 with err (a value missing). */
int control_token_args(int *argc, char **argv, char *err, size_t errlen);
/* The user token: --token, else --token-file FILE (mode 0600), else
 * PATRONSYNC_TOKEN, else DATA/admin.token. NULL when none (owned by the
 * caller), with why in err. */
char *control_token(const ps_config *cfg, char *err, size_t errlen);
/* Send rq with the user's token; print a refusal ("patronctl: ..."). The
 * exit status (the scheduler's, lib/exitcodes.h). The reply's body into
 * *body (the caller frees it) when body is not NULL, else printed. */
int cli_call(const cli_ctx *c, Patronsync__ControlRequest *rq, long timeout_ms, char **body);

#endif
