/* control: the control endpoint's side of the scheduler — the first
 * administrator and the user tokens, and the one table of control verbs
 * {name, handler, permission} that dispatches every request patronctl
 * sends (docs/PROTOCOL.md lists them and the permission of each). */
#ifndef CONTROL_H
#define CONTROL_H

#include <stddef.h>

#include "reply.h"
#include "scheduler.h"

/* What a verb needs of the token's user. */
enum control_perm {
    CONTROL_NONE = 0,   /* no token at all (ping) */
    CONTROL_READ = 1,   /* any user: list and show verbs */
    CONTROL_MANAGE = 2, /* a user whose role may change things: run, approve, undo, schedules, reference data */
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
/* Whether role may use a verb needing perm: today's one role,
 * "administrator", may do everything; a role the table does not know may
 * read only. */
int control_role_may(const char *role, int perm);

/* The first administrator when control.db has no user: a token in
 * DATA/admin.token (0600). 0 / -1 with err. */
int control_first_admin(scheduler *s, char *err, size_t errlen);
/* The user (and role) a token belongs to, or -1 when it is not valid. */
int control_user(scheduler *s, const char *token, char *user, size_t userlen, char *role, size_t rolelen);

/* Answer one control request: the token checked against the verb's
 * permission, the verb run, the audit line written (reply filled;
 * strings it points to live in body). */
void control_handle(scheduler *s, const Patronsync__ControlRequest *rq, Patronsync__ControlReply *rep, strbuf *body);
/* Run the verb of rq for user without the token check (tests; rep->ok
 * set to 1 first). An unknown verb is refused (PS_EXIT_USAGE). */
void control_dispatch(scheduler *s, const char *user, const Patronsync__ControlRequest *rq,
                      Patronsync__ControlReply *rep, strbuf *body);

#endif
