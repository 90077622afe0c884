/* users: the district's users (docs/SECURITY.md) — who a token belongs to,
 * what each may do, and the user.* and audit verbs.
 *
 * A user is district-level or site-level (with its sites), enabled or not,
 * and holds permissions: manage_patrons_district (Destiny's "Manage Patrons
 * for the District": schedules, runs, decisions on jobs, sites and
 * reference data, users) and view_jobs (job lists, summaries, patron
 * show). Only a district-level user may hold manage_patrons_district. A
 * token is 32 random bytes in hex, shown once; control.db keeps only its
 * hash keyed with the district's token key (DATA/keys/token.key, 0600). */
#ifndef USERS_H
#define USERS_H

#include <stddef.h>
#include <stdint.h>

#include "controldb.h"
#include "reply.h"

#define PERM_MANAGE "manage_patrons_district"
#define PERM_VIEW "view_jobs"

/* The token key (made the first time). 0 / -1 with err. */
int users_init(scheduler *s, char *err, size_t errlen);
/* The user of a token (len bytes, compared whole): 1 found (u filled), 0
 * not a user's token, -1 the store failed. */
int users_authenticate(scheduler *s, const uint8_t *token, size_t len, controldb_user *u);
/* Whether u holds permission perm (PERM_MANAGE, PERM_VIEW; a manager may
 * view too). */
int users_may(const controldb_user *u, const char *perm);
/* Make a user with a new token (into token, 65 bytes). 0 / -1 with err. */
int users_add(scheduler *s, const controldb_user *u, char *token, size_t tokenlen, char *err, size_t errlen);

CONTROL_VERB(users_verb_add);
CONTROL_VERB(users_verb_list);
CONTROL_VERB(users_verb_grant);
CONTROL_VERB(users_verb_revoke);
CONTROL_VERB(users_verb_disable);
CONTROL_VERB(users_verb_enable);
CONTROL_VERB(users_verb_token);
CONTROL_VERB(users_verb_audit);

#endif
