/* zap: a process's ZAP handler (ZeroMQ RFC 27), in a thread of its own on
 * inproc://zeromq.zap.01 of the process's context. A CURVE client is
 * admitted to a server endpoint (ZAP domain jobs, workers, control) only
 * when its public key is listed in that domain's allow-list (curve.h); its
 * messages then carry the listed name as their User-Id. Everything else —
 * an unknown key, a plaintext peer, another mechanism — is refused and
 * logged (the 1st, 2nd, 4th, ... refusal of each kind). An allow-list
 * edited while the process runs is read again at its next request. */
#ifndef ZAP_H
#define ZAP_H

#include <stddef.h>

#include "config.h"

typedef struct zap zap;

/* Start the handler of ctx (before any server socket binds). With curve=0
 * nothing starts and a non-NULL dummy is returned. NULL with err. */
zap *zap_start(void *ctx, const ps_config *cfg, char *err, size_t errlen);
/* Log the peers of sock (the server of domain) that fail the handshake
 * before ZAP sees them: a plaintext peer, a wrong server key. Call before
 * the bind. 0 / -1 with err (a no-op with curve=0). */
int zap_watch(zap *z, void *ctx, void *sock, const char *domain, char *err, size_t errlen);
/* Stop and join it (before the context is terminated). NULL-safe. */
void zap_stop(zap **z);
/* Refusals since start. */
unsigned long zap_refused(const zap *z);

#endif
