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
#include "users.h"

static void verb_ping(scheduler *s, const char *user, const Patronsync__ControlRequest *rq,
                      Patronsync__ControlReply *rep, strbuf *body)
{
    sb_puts(body, "pong\n");
}

/* Every control verb. Reading a patron is not audited when it succeeds;
 * everything else is, and every refusal is. */
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
    {"user.add", users_verb_add, CONTROL_MANAGE, 1},
    {"user.list", users_verb_list, CONTROL_MANAGE, 1},
    {"user.grant", users_verb_grant, CONTROL_MANAGE, 1},
    {"user.revoke", users_verb_revoke, CONTROL_MANAGE, 1},
    {"user.disable", users_verb_disable, CONTROL_MANAGE, 1},
    {"user.enable", users_verb_enable, CONTROL_MANAGE, 1},
    {"user.token", users_verb_token, CONTROL_MANAGE, 1},
    {"audit.list", users_verb_audit, CONTROL_MANAGE, 1},
};
const size_t control_nverbs = sizeof(control_verbs) / sizeof(control_verbs[0]);

const control_verb *control_find(const char *name)
{
    for (size_t i = 0; i < control_nverbs; i++)
        if (strcmp(control_verbs[i].name, name) == 0)
            return &control_verbs[i];
    return NULL;
}

int control_user_may(const controldb_user *u, int perm)
{
    return perm == CONTROL_NONE || users_may(u, perm == CONTROL_MANAGE ? PERM_MANAGE : PERM_VIEW);
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
    sodium_memzero(line, sizeof(line));
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
    if (users_init(s, err, errlen) < 0)
        return -1;
    int64_t users = controldb_user_count(s->db, err, errlen);
    if (users != 0)
        return users < 0 ? -1 : 0;
    controldb_user admin = {.name = "admin", .level = "district", .permissions = PERM_MANAGE, .enabled = 1};
    char token[80], path[CONFIG_STR + 32], e[ERRLEN];
    if (users_add(s, &admin, token, sizeof(token), e, sizeof(e)) < 0) {
        err_set(err, errlen, "cannot create the administrator: %s", e);
        return -1;
    }
    snprintf(path, sizeof(path), "%s/admin.token", s->cfg->data_dir);
    int rc = write_token(path, token, err, errlen);
    sodium_memzero(token, sizeof(token));
    if (rc < 0)
        return -1;
    log_info("first administrator 'admin' (%s) created; token in %s", PERM_MANAGE, path);
    return 0;
}

/* ---- failed attempts: a per-client back-off ---- */

#define ATTEMPT_PEERS 64
#define ATTEMPTS_FREE 5 /* failures in a row before the back-off starts */

typedef struct {
    char peer[128];
    unsigned fails;
    int64_t until_ms, penalty_ms, last_ms;
} attempt;

struct control_attempts {
    attempt a[ATTEMPT_PEERS];
    unsigned long refused; /* for the log's back-off */
};

static attempt *attempt_of(scheduler *s, const char *peer)
{
    if (s->attempts == NULL && (s->attempts = calloc(1, sizeof(*s->attempts))) == NULL)
        return NULL;
    attempt *oldest = &s->attempts->a[0];
    for (size_t i = 0; i < ATTEMPT_PEERS; i++) {
        attempt *e = &s->attempts->a[i];
        if (e->peer[0] && strcmp(e->peer, peer) == 0)
            return e;
        if (e->last_ms < oldest->last_ms)
            oldest = e;
    }
    memset(oldest, 0, sizeof(*oldest));
    str_copy(oldest->peer, sizeof(oldest->peer), peer);
    return oldest;
}

/* A client in its back-off: ms left, else 0. */
static int64_t backing_off(scheduler *s, const char *peer)
{
    attempt *e = attempt_of(s, peer);
    int64_t left = e ? e->until_ms - mono_ms() : 0;
    return left > 0 ? left : 0;
}

static void attempt_result(scheduler *s, const char *peer, int ok, const char *why)
{
    attempt *e = attempt_of(s, peer);
    if (e == NULL)
        return;
    e->last_ms = mono_ms();
    if (ok) {
        e->fails = 0;
        e->penalty_ms = 0;
        return;
    }
    unsigned long n = ++s->attempts->refused;
    if ((n & (n - 1)) == 0)
        log_warn("control: refused a request from %s: %s (%lu refused so far)", peer, why, n);
    if (++e->fails < ATTEMPTS_FREE)
        return;
    e->penalty_ms = e->penalty_ms ? e->penalty_ms * 2 : 1000;
    if (e->penalty_ms > 60000)
        e->penalty_ms = 60000;
    e->until_ms = e->last_ms + e->penalty_ms;
}

void control_free(scheduler *s)
{
    free(s->attempts);
    s->attempts = NULL;
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

/* Whether the request's token may use v: 0 (u filled), or -1 with the
 * refusal and why (for the audit: "refused" or "throttled"). */
static int check_token(scheduler *s, const control_verb *v, const Patronsync__ControlRequest *rq, const char *peer,
                       controldb_user *u, const char **result, Patronsync__ControlReply *rep, strbuf *body)
{
    *result = "refused";
    int64_t wait = backing_off(s, peer);
    if (wait > 0) {
        /* Not looked at, and not counted: the back-off runs out as set. */
        *result = "throttled";
        return reply_fail(rep, body, PS_EXIT_REFUSED,
                          "%s: refused: too many failed attempts from this client; try again in %lld s", rq->verb,
                          (long long)((wait + 999) / 1000));
    }
    int found = users_authenticate(s, rq->token.data, rq->token.len, u);
    if (found != 1) {
        attempt_result(s, peer, 0, rq->token.len == 0 ? "no user token" : "a token that is not a user's");
        return reply_fail(rep, body, found < 0 ? PS_EXIT_FAILED : PS_EXIT_REFUSED,
                          "%s: refused: %s; a valid user token is required (patronctl sends PATRONSYNC_TOKEN, "
                          "--token-file FILE, else DATA/admin.token)",
                          rq->verb,
                          found < 0 ? "the users could not be read" : rq->token.len == 0 ? "no user token was given"
                                                                                         : "the token given is not a user's");
    }
    attempt_result(s, peer, 1, NULL);
    if (!u->enabled)
        return reply_fail(rep, body, PS_EXIT_REFUSED, "%s: refused: user '%s' is disabled", rq->verb, u->name);
    if (v != NULL && !control_user_may(u, v->perm))
        return reply_fail(rep, body, PS_EXIT_REFUSED, "%s: refused: user '%s' does not have the %s permission",
                          rq->verb, u->name, v->perm == CONTROL_MANAGE ? PERM_MANAGE : PERM_VIEW);
    return 0;
}

/* The request's arguments for the audit trail (never its payload or token). */
static void audit_detail(const Patronsync__ControlRequest *rq, char *out, size_t outlen)
{
    out[0] = '\0';
    for (size_t i = 0; i < rq->n_args && strlen(out) + 2 < outlen; i++)
        snprintf(out + strlen(out), outlen - strlen(out), "%s%s", i ? " " : "", rq->args[i]);
}

void control_handle(scheduler *s, const Patronsync__ControlRequest *rq, const char *peer,
                    Patronsync__ControlReply *rep, strbuf *body)
{
    const control_verb *v = control_find(rq->verb);
    controldb_user u = {.name = ""};
    const char *result = "ok";
    char detail[512];
    audit_detail(rq, detail, sizeof(detail));
    if ((v == NULL || v->perm != CONTROL_NONE) &&
        check_token(s, v, rq, peer ? peer : "", &u, &result, rep, body) < 0) {
        controldb_audit(s->db, &(controldb_audit_row){.user = u.name[0] ? u.name : "unknown token", .verb = rq->verb,
                                                      .detail = detail, .peer = peer, .result = result,
                                                      .status = (int)rep->status});
        return;
    }
    control_dispatch(s, u.name, rq, rep, body);
    if (rep->ok)
        rep->body = body->buf ? body->buf : "";
    if (v != NULL && v->perm != CONTROL_NONE && (!rep->ok || v->audited))
        controldb_audit(s->db, &(controldb_audit_row){.user = u.name, .verb = rq->verb, .detail = detail,
                                                      .peer = peer, .result = rep->ok ? "ok" : "failed",
                                                      .status = (int)rep->status});
}
