/* control: the control endpoint's side of the scheduler — the first
 * administrator and the user tokens, and the one table of control verbs
 * {name, handler, permission} that dispatches every request patronctl
 * sends (docs/PROTOCOL.md lists them and the permission of each). */
#ifndef CONTROL_H
#define CONTROL_H

#include <stddef.h>

#include "controldb.h"
#include "reply.h"
#include "scheduler.h"

/* What a verb needs of the token's user. */
enum control_perm {
    CONTROL_NONE = 0,   /* no token at all (ping) */
    CONTROL_READ = 1,   /* view_jobs: list and show verbs */
    CONTROL_MANAGE = 2, /* manage_patrons_district: run, approve, undo, schedules, reference data, users */
};

/* One control verb. */
typedef struct {
    const char *name;      /* "schedule.add" */
    control_verb_fn run;   /* fills the reply */
    int perm;              /* enum control_perm */
    int audited;           /* a line in control.db's audit trail when it succeeds */
} control_verb;

/* The table (control.c), and its length. */
extern const control_verb control_verbs[];
extern const size_t control_nverbs;

/* The verb of a name, or NULL. */
const control_verb *control_find(const char *name);
/* Whether user u may use a verb needing perm: CONTROL_READ needs
 * view_jobs (or manage_patrons_district), CONTROL_MANAGE
 * manage_patrons_district (users.h); a disabled user nothing. */
int control_user_may(const controldb_user *u, int perm);

/* The token key, and the first administrator when control.db has no
 * user: 'admin' with manage_patrons_district, its token in
 * DATA/admin.token (0600). 0 / -1 with err. */
int control_first_admin(scheduler *s, char *err, size_t errlen);

/* Answer one control request from peer (its address and key name, for the
 * audit trail and the back-off of failed attempts): the token checked
 * against the verb's permission, the verb run, the audit line written
 * (every refusal, and the successes of audited verbs). The reply filled;
 * strings it points to live in body. */
void control_handle(scheduler *s, const Patronsync__ControlRequest *rq, const char *peer,
                    Patronsync__ControlReply *rep, strbuf *body);
/* Run the verb of rq for user without the token check (tests; rep->ok
 * set to 1 first). An unknown verb is refused (PS_EXIT_USAGE). */
void control_dispatch(scheduler *s, const char *user, const Patronsync__ControlRequest *rq,
                      Patronsync__ControlReply *rep, strbuf *body);
/* What control_handle keeps (the back-off table). */
void control_free(scheduler *s);

#endif
