/* control: the control verbs patronctl sends (docs/PROTOCOL.md lists
 * them) as one table, the user tokens, and the one place a verb's
 * permission is checked. Every verb but ping needs a valid user token. */
#include "control.h"

#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exitcodes.h"
#include "jobctl.h"
#include "log.h"
#include "refdata.h"
#include "runnow.h"
#include "schedule_verbs.h"
#include "sites.h"

static void verb_ping(scheduler *s, const char *user, const Patronsync__ControlRequest *rq,
                      Patronsync__ControlReply *rep, strbuf *body)
{
    sb_puts(body, "pong\n");
}

/* Every control verb. Reading a patron is not audited; everything else
 * that succeeds is. */
const control_verb control_verbs[] = {
    {"ping", verb_ping, CONTROL_NONE, 0},
    {"run", runnow_verb, CONTROL_MANAGE, 1},
    {"site.add", sites_add, CONTROL_MANAGE, 1},
    {"site.import", sites_import, CONTROL_MANAGE, 1},
    {"patron.show", sites_patron_show, CONTROL_READ, 0},
    {"schedule.add", schedule_verb_add, CONTROL_MANAGE, 1},
    {"schedule.edit", schedule_verb_edit, CONTROL_MANAGE, 1},
    {"schedule.show", schedule_verb_show, CONTROL_READ, 1},
    {"schedule.list", schedule_verb_list, CONTROL_READ, 1},
    {"schedule.delete", schedule_verb_delete, CONTROL_MANAGE, 1},
    {"schedule.run", schedule_verb_run, CONTROL_MANAGE, 1},
    {"schedule.enable", schedule_verb_enable, CONTROL_MANAGE, 1},
    {"schedule.disable", schedule_verb_disable, CONTROL_MANAGE, 1},
    {"job.approve", jobctl_approve, CONTROL_MANAGE, 1},
    {"job.discard", jobctl_discard, CONTROL_MANAGE, 1},
    {"job.undo", jobctl_undo, CONTROL_MANAGE, 1},
    {"ref.add", refdata_add, CONTROL_MANAGE, 1},
    {"ref.list", refdata_list, CONTROL_READ, 1},
};
const size_t control_nverbs = sizeof(control_verbs) / sizeof(control_verbs[0]);

/* The roles and what each may do. */
static const struct {
    const char *role;
    int may; /* the highest enum control_perm */
} roles[] = {
    {"administrator", CONTROL_MANAGE},
};

const control_verb *control_find(const char *name)
{
    for (size_t i = 0; i < control_nverbs; i++)
        if (strcmp(control_verbs[i].name, name) == 0)
            return &control_verbs[i];
    return NULL;
}

int control_role_may(const char *role, int perm)
{
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
        if (strcmp(roles[i].role, role) == 0)
            return perm <= roles[i].may;
    return perm <= CONTROL_READ;
}

static void token_hash(const char *token, char *out, size_t outlen)
{
    unsigned char h[32];
    crypto_generichash(h, sizeof(h), (const unsigned char *)token, strlen(token), NULL, 0);
    sodium_bin2hex(out, outlen, h, sizeof(h));
}

/* The token into DATA/admin.token, mode 0600. 0 / -1 with err. */
static int write_token(const char *path, const char *token, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        err_set(err, errlen, "cannot write %s", path);
        return -1;
    }
    char line[80];
    int n = snprintf(line, sizeof(line), "%s\n", token);
    int ok = write(fd, line, (size_t)n) == n;
    fchmod(fd, 0600);
    close(fd);
    if (!ok) {
        err_set(err, errlen, "cannot write %s", path);
        return -1;
    }
    return 0;
}

int control_first_admin(scheduler *s, char *err, size_t errlen)
{
    if (sodium_init() < 0) {
        err_set(err, errlen, "libsodium failed to initialise");
        return -1;
    }
    int64_t users = controldb_user_count(s->db, err, errlen);
    if (users != 0)
        return users < 0 ? -1 : 0;
    unsigned char raw[24];
    randombytes_buf(raw, sizeof(raw));
    char token[64], hash[80];
    sodium_bin2hex(token, sizeof(token), raw, sizeof(raw));
    token_hash(token, hash, sizeof(hash));
    char path[CONFIG_STR + 32];
    snprintf(path, sizeof(path), "%s/admin.token", s->cfg->data_dir);
    if (write_token(path, token, err, errlen) < 0)
        return -1;
    char e[ERRLEN];
    if (controldb_user_add(s->db, "admin", hash, "administrator", e, sizeof(e)) < 0) {
        err_set(err, errlen, "cannot create the administrator: %s", controldb_errmsg(s->db));
        return -1;
    }
    log_info("first administrator 'admin' created; token in %s", path);
    return 0;
}

int control_user(scheduler *s, const char *token, char *user, size_t userlen, char *role, size_t rolelen)
{
    if (token == NULL || token[0] == '\0')
        return -1;
    char hash[80];
    token_hash(token, hash, sizeof(hash));
    return controldb_user_find(s->db, hash, user, userlen, role, rolelen) == 1 ? 0 : -1;
}

/* A verb no row names: the message says what the family has. */
static void unknown_verb(const char *verb, Patronsync__ControlReply *rep, strbuf *body)
{
    if (strncmp(verb, "schedule.", 9) == 0)
        reply_fail(rep, body, PS_EXIT_USAGE,
                   "unknown request '%s' (schedule add, edit, show, list, delete, run, enable, disable)", verb);
    else
        reply_fail(rep, body, PS_EXIT_USAGE, "unknown request '%s'", verb);
}

void control_dispatch(scheduler *s, const char *user, const Patronsync__ControlRequest *rq,
                      Patronsync__ControlReply *rep, strbuf *body)
{
    rep->ok = 1;
    rep->status = 0;
    rep->error = "";
    const control_verb *v = control_find(rq->verb);
    if (v == NULL)
        unknown_verb(rq->verb, rep, body);
    else
        v->run(s, user, rq, rep, body);
}

/* Whether the request's token may use v: 0, or -1 with the refusal. */
static int check_token(scheduler *s, const control_verb *v, const Patronsync__ControlRequest *rq, char *user,
                       size_t userlen, Patronsync__ControlReply *rep, strbuf *body)
{
    char role[64];
    if (control_user(s, rq->token, user, userlen, role, sizeof(role)) < 0)
        return reply_fail(rep, body, PS_EXIT_REFUSED,
                          "%s: refused: %s; a valid user token is required (patronctl sends PATRONSYNC_TOKEN, else "
                          "DATA/admin.token)",
                          rq->verb,
                          rq->token == NULL || rq->token[0] == '\0' ? "no user token was given"
                                                                    : "the token given is not a user's");
    if (v != NULL && !control_role_may(role, v->perm))
        return reply_fail(rep, body, PS_EXIT_REFUSED, "%s: refused: user '%s' (role %s) may not %s", rq->verb, user,
                          role, v->perm == CONTROL_MANAGE ? "change anything" : "read");
    return 0;
}

void control_handle(scheduler *s, const Patronsync__ControlRequest *rq, Patronsync__ControlReply *rep, strbuf *body)
{
    rep->ok = 1;
    rep->status = 0;
    rep->error = "";
    const control_verb *v = control_find(rq->verb);
    char user[128] = "";
    if ((v == NULL || v->perm != CONTROL_NONE) && check_token(s, v, rq, user, sizeof(user), rep, body) < 0)
        return;
    control_dispatch(s, user, rq, rep, body);
    if (rep->ok)
        rep->body = body->buf ? body->buf : "";
    if (rep->ok && v != NULL && v->audited)
        controldb_audit(s->db, user, rq->verb, rq->n_args ? rq->args[0] : "");
}
