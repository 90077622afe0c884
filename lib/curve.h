/* curve: CURVE keys for every ZeroMQ endpoint (docs/SECURITY.md).
 *
 * Under the keys folder (setting keys_dir, default DATA/keys, mode 0700):
 *   <role>.key   public=<z85> and secret=<z85> lines (mode 0600)
 *   <role>.pub   public=<z85>
 *   <domain>.allow   "<z85> <name>" lines: the client keys each server
 *                    endpoint admits (domains jobs, workers, control), and
 *                    the name its messages then carry (ZAP User-Id).
 * Roles: broker (server of jobs and workers), scheduler (server of
 * control; client of jobs), worker (client of workers), client (patronctl
 * and the web page: client of control; of jobs, a ping only). */
#ifndef CURVE_H
#define CURVE_H

#include <stddef.h>

#include "config.h"

#define CURVE_Z85 41 /* a key in Z85 and its NUL */

typedef struct {
    char pub[CURVE_Z85];
    char sec[CURVE_Z85];
} curve_keypair;

/* Make each role's keypair and each allow-list that is missing (what is
 * there stays: idempotent). 0 / -1 with err. */
int curve_keygen(const ps_config *cfg, char *err, size_t errlen);
/* Make one role's keypair in dir unless there (a worker on another
 * machine: its public key then goes into the broker's workers.allow).
 * 1 made, 0 already there, -1 with err; kp gets the keys either way. */
int curve_keygen_role(const char *dir, const char *role, curve_keypair *kp, char *err, size_t errlen);
/* A role's keypair (secret and public) / public key only. 0 / -1 with err. */
int curve_load(const ps_config *cfg, const char *role, curve_keypair *kp, char *err, size_t errlen);
int curve_load_public(const ps_config *cfg, const char *role, char pub[CURVE_Z85], char *err, size_t errlen);

/* A key file (public; and secret when asked) into kp. 0 / -1 with err. */
int curve_read_key(const char *path, curve_keypair *kp, int secret, char *err, size_t errlen);
/* sock a CURVE client of the server key (z85) with the keypair kp. */
int curve_client(void *sock, const char *server_pub, const curve_keypair *kp, char *err, size_t errlen);

/* Make sock the CURVE server of domain (jobs, workers, control) with the
 * role's keys; the ZAP handler (zap.h) admits the listed clients. A no-op
 * with curve=0. 0 / -1 with err. */
int curve_serve(void *sock, const ps_config *cfg, const char *role, const char *domain, char *err, size_t errlen);
/* Make sock a CURVE client with the role's keys of the server role's
 * endpoint. A no-op with curve=0. 0 / -1 with err. */
int curve_connect_as(void *sock, const ps_config *cfg, const char *role, const char *server_role, char *err,
                     size_t errlen);

/* The ZAP User-Id of a received message ("" when none: curve=0). */
const char *curve_user(void *msg);

#endif
