/* profile_keys: the keys a profile may hold — each line sorted into its
 * class — and pass 1, the plain settings, rule modes and bounds, and
 * field_type_total. Internal to lib/profile*. */
#ifndef PROFILE_KEYS_H
#define PROFILE_KEYS_H

#include "profile.h"
#include "profile_ctx.h"

/* Pass 1: classify every entry and apply the plain settings to c->p.
 * 0 / -1 with the message set (unknown key, bad value). */
int keys_pass_settings(pctx *c);
/* The spelling of the *Max key of a rule kind ("SkipMax" ...). */
const char *keys_rule_max(enum profile_rule which);

#endif
