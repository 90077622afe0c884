/* users: users, their tokens and permissions, and the user.* and audit
 * verbs (users.h).
 *   user.add NAME      opts permission=P[,P], sites=A[,B]
 *   user.list
 *   user.grant NAME    opts permission=P     user.revoke NAME  opts permission=P
 *   user.disable NAME  user.enable NAME      user.token NAME (a new token; the old one stops working)
 *   audit.list         opts since=MS, limit=N */
#include "users.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exitcodes.h"
#include "log.h"
#include "schedule_text.h"
#include "scheduler.h"
#include "util.h"

#define TOKEN_KEY_BYTES crypto_generichash_KEYBYTES
_Static_assert(TOKEN_KEY_BYTES == sizeof(((scheduler *)0)->token_key), "the scheduler keeps the token key");

/* The token key: DATA/keys/token.key, 32 random bytes in hex, made once. */
static int token_key(const scheduler *s, unsigned char key[TOKEN_KEY_BYTES], char *err, size_t errlen)
{
    char path[CONFIG_STR + 32];
    snprintf(path, sizeof(path), "%s/token.key", s->cfg->keys_dir);
    char e[ERRLEN];
    char *t = file_read_all(path, 256, NULL, e, sizeof(e));
    if (t == NULL && errno == ENOENT) {
        unsigned char raw[TOKEN_KEY_BYTES];
        char hex[2 * TOKEN_KEY_BYTES + 2];
        randombytes_buf(raw, sizeof(raw));
        sodium_bin2hex(hex, sizeof(hex) - 1, raw, sizeof(raw));
        hex[2 * TOKEN_KEY_BYTES] = '\n';
        hex[2 * TOKEN_KEY_BYTES + 1] = '\0';
        sodium_memzero(raw, sizeof(raw));
        int w = mkdir_p(s->cfg->keys_dir, 0700, err, errlen) < 0 ? -1
                                                                   : file_write_once(path, hex, strlen(hex), err, errlen);
        sodium_memzero(hex, sizeof(hex));
        if (w < 0 || chmod(path, 0600) < 0)
            return -1;
        t = file_read_all(path, 256, NULL, e, sizeof(e));
    }
    if (t == NULL) {
        err_set(err, errlen, "the token key %s: %s", path, e);
        return -1;
    }
    size_t got = 0;
    int rc = sodium_hex2bin(key, TOKEN_KEY_BYTES, t, strlen(t), "\r\n", &got, NULL) == 0 && got == TOKEN_KEY_BYTES
                 ? 0
                 : -1;
    sodium_memzero(t, strlen(t));
    free(t);
    if (rc < 0)
        err_set(err, errlen, "the token key %s is not 32 bytes in hex", path);
    return rc;
}

int users_init(scheduler *s, char *err, size_t errlen)
{
    if (sodium_init() < 0) {
        err_set(err, errlen, "libsodium failed to initialise");
        return -1;
    }
    /* Read once, at start: every request's token is hashed with it. */
    if (token_key(s, s->token_key, err, errlen) < 0)
        return -1;
    s->have_token_key = 1;
    return 0;
}

/* The hash control.db keeps of a token: keyed (the district's key) or, for
 * a row made before keys, plain. */
static int token_hash(const scheduler *s, const uint8_t *token, size_t len, int keyed, char *out, size_t outlen)
{
    unsigned char h[32];
    if (keyed && !s->have_token_key)
        return -1;
    crypto_generichash(h, sizeof(h), token, len, keyed ? s->token_key : NULL, keyed ? sizeof(s->token_key) : 0);
    sodium_bin2hex(out, outlen, h, sizeof(h));
    return 0;
}

int users_authenticate(scheduler *s, const uint8_t *token, size_t len, controldb_user *u)
{
    if (len == 0 || len > 256)
        return 0;
    char hash[80];
    if (token_hash(s, token, len, 1, hash, sizeof(hash)) < 0)
        return -1;
    int r = controldb_user_get(s->db, CDB_USER_BY_HASH, hash, u);
    if (r != 0)
        return r;
    /* A row made before tokens were keyed: found by the plain hash once,
     * then kept keyed. */
    char plain[80];
    token_hash(s, token, len, 0, plain, sizeof(plain));
    r = controldb_user_get(s->db, CDB_USER_BY_HASH, plain, u);
    if (r == 1 && !u->keyed) {
        char err[ERRLEN];
        if (controldb_user_set_token(s->db, u->name, hash, err, sizeof(err)) < 0)
            log_warn("user %s: keeping its token keyed: %s", u->name, err);
        return 1;
    }
    return r == 1 ? 0 : r;
}

/* Whether the comma list has the word. */
static int listed(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; p && *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && strncmp(p, word, n) == 0)
            return 1;
        p = e ? e + 1 : NULL;
    }
    return 0;
}

int users_may(const controldb_user *u, const char *perm)
{
    if (!u->enabled)
        return 0;
    int manage = listed(u->permissions, PERM_MANAGE) && strcmp(u->level, "district") == 0;
    if (strcmp(perm, PERM_MANAGE) == 0)
        return manage;
    return manage || listed(u->permissions, PERM_VIEW);
}

static int new_token(char *token, size_t tokenlen)
{
    unsigned char raw[32];
    if (tokenlen < 2 * sizeof(raw) + 1)
        return -1;
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2hex(token, tokenlen, raw, sizeof(raw));
    sodium_memzero(raw, sizeof(raw));
    return 0;
}

int users_add(scheduler *s, const controldb_user *u, char *token, size_t tokenlen, char *err, size_t errlen)
{
    char hash[80];
    if (new_token(token, tokenlen) < 0 || token_hash(s, (const uint8_t *)token, strlen(token), 1, hash, sizeof(hash)) < 0) {
        err_set(err, errlen, "cannot make a token");
        return -1;
    }
    return controldb_user_add(s->db, u, hash, err, errlen);
}

/* ---- the verbs ---- */

static const char *const known_perms[] = {PERM_MANAGE, PERM_VIEW};

/* A comma list of permissions checked into out (sorted as known_perms). 0 / -1 with the refusal. */
static int parse_perms(const char *given, char *out, size_t outlen, Patronsync__ControlReply *rep, strbuf *body)
{
    out[0] = '\0';
    for (const char *p = given; p && *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        int ok = 0;
        for (size_t k = 0; k < sizeof(known_perms) / sizeof(known_perms[0]); k++)
            ok |= len == strlen(known_perms[k]) && strncmp(p, known_perms[k], len) == 0;
        if (!ok)
            return reply_fail(rep, body, PS_EXIT_USAGE, "unknown permission '%.*s' (%s or %s)", (int)len, p,
                              PERM_MANAGE, PERM_VIEW);
        p = e ? e + 1 : NULL;
    }
    for (size_t k = 0; k < sizeof(known_perms) / sizeof(known_perms[0]); k++)
        if (listed(given, known_perms[k]))
            snprintf(out + strlen(out), outlen - strlen(out), "%s%s", out[0] ? "," : "", known_perms[k]);
    return 0;
}

/* The user named by args[0], or a refusal. 1 / 0. */
static int named(scheduler *s, const Patronsync__ControlRequest *rq, controldb_user *u, Patronsync__ControlReply *rep,
                 strbuf *body)
{
    if (rq->n_args != 1) {
        reply_fail(rep, body, PS_EXIT_USAGE, "%s: expected a user name", rq->verb);
        return 0;
    }
    int r = controldb_user_get(s->db, CDB_USER_BY_NAME, rq->args[0], u);
    if (r == 1)
        return 1;
    if (r == 0)
        reply_fail(rep, body, PS_EXIT_NOT_FOUND, "no user '%s'", rq->args[0]);
    else
        reply_fail(rep, body, PS_EXIT_FAILED, "control store: %s", controldb_errmsg(s->db));
    return 0;
}

/* A comma list as a JSON array of strings. */
static void json_list(strbuf *b, const char *list)
{
    sb_puts(b, "[");
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        sb_puts(b, p == list ? "" : ",");
        sb_json_str(b, p, len);
        p += len + (p[len] == ',');
    }
    sb_puts(b, "]");
}

static void user_json(strbuf *b, const controldb_user *u)
{
    sb_puts(b, "{\"name\":");
    sb_json_str(b, u->name, strlen(u->name));
    sb_puts(b, ",\"level\":");
    sb_json_str(b, u->level, strlen(u->level));
    sb_puts(b, ",\"sites\":");
    json_list(b, u->sites);
    sb_puts(b, ",\"permissions\":");
    json_list(b, u->permissions);
    sb_printf(b, ",\"enabled\":%s,\"created_ms\":%lld}", u->enabled ? "true" : "false", (long long)u->created_ms);
}

static void user_text(strbuf *b, const controldb_user *u)
{
    sb_printf(b, "%-20s %-8s %-8s %-40s %s\n", u->name, u->level, u->enabled ? "enabled" : "disabled",
              u->permissions[0] ? u->permissions : "(none)", u->sites);
}

/* Refuse a change that leaves no enabled district user able to manage. */
static int keeps_a_manager(scheduler *s, const Patronsync__ControlRequest *rq, const controldb_user *before,
                           const controldb_user *after, Patronsync__ControlReply *rep, strbuf *body)
{
    if (!users_may(before, PERM_MANAGE) || users_may(after, PERM_MANAGE))
        return 0;
    int64_t n = controldb_count(s->db, CDB_USER_MANAGERS, 0, NULL, 0);
    if (n > 1)
        return 0;
    return reply_fail(rep, body, PS_EXIT_REFUSED,
                      "%s: refused: '%s' is the last enabled user who may manage patrons for the district", rq->verb,
                      before->name);
}

void users_verb_add(scheduler *s, const char *user, const Patronsync__ControlRequest *rq, Patronsync__ControlReply *rep,
                    strbuf *body)
{
    (void)user;
    if (rq->n_args != 1 || rq->args[0][0] == '\0' || strlen(rq->args[0]) >= sizeof(((controldb_user *)0)->name) ||
        strspn(rq->args[0], "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-@") !=
            strlen(rq->args[0])) {
        reply_fail(rep, body, PS_EXIT_USAGE,
                   "user add: expected a user name of 1 to 63 letters, digits and . _ - @ "
                   "(user add NAME --permission %s|%s)",
                   PERM_MANAGE, PERM_VIEW);
        return;
    }
    controldb_user u = {.enabled = 1};
    str_copy(u.name, sizeof(u.name), rq->args[0]);
    const char *perms = reply_opt(rq, "permission"), *sites = reply_opt(rq, "sites");
    if (perms == NULL || perms[0] == '\0') {
        reply_fail(rep, body, PS_EXIT_USAGE, "user add: --permission %s|%s is required", PERM_MANAGE, PERM_VIEW);
        return;
    }
    if (parse_perms(perms, u.permissions, sizeof(u.permissions), rep, body) < 0)
        return;
    str_copy(u.level, sizeof(u.level), sites && *sites ? "site" : "district");
    str_copy(u.sites, sizeof(u.sites), sites ? sites : "");
    if (strcmp(u.level, "site") == 0 && listed(u.permissions, PERM_MANAGE)) {
        reply_fail(rep, body, PS_EXIT_USAGE,
                   "user add: a site-level user (--site) may not hold %s: only district-level users manage patrons "
                   "for the district",
                   PERM_MANAGE);
        return;
    }
    char token[80], err[ERRLEN];
    if (users_add(s, &u, token, sizeof(token), err, sizeof(err)) < 0) {
        int taken = (controldb_errcode(s->db) & 0xff) == SQLITE_CONSTRAINT;
        reply_fail(rep, body, taken ? PS_EXIT_USAGE : PS_EXIT_FAILED, "user add: %s",
                   taken ? "a user of that name exists already" : err);
        return;
    }
    controldb_user_get(s->db, CDB_USER_BY_NAME, u.name, &u);
    if (rq->json) {
        sb_puts(body, "{\"user\":");
        user_json(body, &u);
        sb_printf(body, ",\"token\":\"%s\"}\n", token);
    } else {
        sb_printf(body, "user %s added (%s, %s)\ntoken: %s\n(shown this once: give it to the user; "
                        "patronctl reads it from PATRONSYNC_TOKEN or --token-file FILE)\n",
                  u.name, u.level, u.permissions, token);
    }
    sodium_memzero(token, sizeof(token));
    log_info("user %s added by %s (%s)", u.name, user, u.permissions);
}

void users_verb_list(scheduler *s, const char *user, const Patronsync__ControlRequest *rq,
                     Patronsync__ControlReply *rep, strbuf *body)
{
    (void)user;
    sqlite3_stmt *st = controldb_stmt(s->db, CDB_USER_ALL, NULL, 0);
    if (st == NULL) {
        reply_fail(rep, body, PS_EXIT_FAILED, "control store: %s", controldb_errmsg(s->db));
        return;
    }
    sb_puts(body, rq->json ? "[" : "");
    if (!rq->json)
        sb_printf(body, "%-20s %-8s %-8s %-40s %s\n", "USER", "LEVEL", "STATE", "PERMISSIONS", "SITES");
    for (int n = 0; sqlite3_step(st) == SQLITE_ROW; n++) {
        controldb_user u;
        controldb_user_row(st, &u);
        if (rq->json) {
            sb_puts(body, n ? "," : "");
            user_json(body, &u);
        } else {
            user_text(body, &u);
        }
    }
    controldb_done(st);
    sb_puts(body, rq->json ? "]\n" : "");
}

/* grant, revoke, disable, enable: the user as it will be, checked and kept. */
static void change(scheduler *s, const char *by, const Patronsync__ControlRequest *rq, Patronsync__ControlReply *rep,
                   strbuf *body, int grant, int enabled)
{
    controldb_user u, before;
    if (!named(s, rq, &u, rep, body))
        return;
    before = u;
    if (grant != 0) {
        char perm[128];
        const char *given = reply_opt(rq, "permission");
        if (given == NULL || given[0] == '\0') {
            reply_fail(rep, body, PS_EXIT_USAGE, "%s: --permission %s|%s is required", rq->verb, PERM_MANAGE,
                       PERM_VIEW);
            return;
        }
        if (parse_perms(given, perm, sizeof(perm), rep, body) < 0)
            return;
        char merged[256] = "";
        for (size_t k = 0; k < sizeof(known_perms) / sizeof(known_perms[0]); k++) {
            int has = listed(u.permissions, known_perms[k]);
            if (listed(perm, known_perms[k]))
                has = grant > 0;
            if (has)
                snprintf(merged + strlen(merged), sizeof(merged) - strlen(merged), "%s%s", merged[0] ? "," : "",
                         known_perms[k]);
        }
        if (grant > 0 && strcmp(u.level, "site") == 0 && listed(perm, PERM_MANAGE)) {
            reply_fail(rep, body, PS_EXIT_USAGE, "user grant: '%s' is a site-level user: only district-level users "
                       "may hold %s", u.name, PERM_MANAGE);
            return;
        }
        str_copy(u.permissions, sizeof(u.permissions), merged);
    } else {
        u.enabled = enabled;
    }
    char err[ERRLEN];
    if (keeps_a_manager(s, rq, &before, &u, rep, body) < 0)
        return;
    if (controldb_user_set(s->db, &u, err, sizeof(err)) < 0) {
        reply_fail(rep, body, PS_EXIT_FAILED, "%s", err);
        return;
    }
    if (rq->json)
        user_json(body, &u), sb_puts(body, "\n");
    else
        user_text(body, &u);
    log_info("%s %s by %s", rq->verb, u.name, by);
}

CONTROL_VERB(users_verb_grant)
{
    change(s, user, rq, rep, body, 1, 0);
}

CONTROL_VERB(users_verb_revoke)
{
    change(s, user, rq, rep, body, -1, 0);
}

CONTROL_VERB(users_verb_disable)
{
    change(s, user, rq, rep, body, 0, 0);
}

CONTROL_VERB(users_verb_enable)
{
    change(s, user, rq, rep, body, 0, 1);
}

CONTROL_VERB(users_verb_token)
{
    controldb_user u;
    if (!named(s, rq, &u, rep, body))
        return;
    char token[80], hash[80], err[ERRLEN];
    if (new_token(token, sizeof(token)) < 0 ||
        token_hash(s, (const uint8_t *)token, strlen(token), 1, hash, sizeof(hash)) < 0 ||
        controldb_user_set_token(s->db, u.name, hash, err, sizeof(err)) < 0) {
        reply_fail(rep, body, PS_EXIT_FAILED, "user token: cannot make a new token");
        return;
    }
    if (rq->json)
        sb_printf(body, "{\"name\":\"%s\",\"token\":\"%s\"}\n", u.name, token);
    else
        sb_printf(body, "user %s: new token: %s\n(shown this once; the old token no longer works)\n", u.name, token);
    sodium_memzero(token, sizeof(token));
    log_info("user %s: a new token, by %s", u.name, user);
}

CONTROL_VERB(users_verb_audit)
{
    (void)user;
    int64_t since = 0, limit = 1000;
    const char *v = reply_opt(rq, "since"), *l = reply_opt(rq, "limit");
    if ((v && parse_i64(v, 0, INT64_MAX, &since) < 0) || (l && parse_i64(l, 1, 1000000, &limit) < 0)) {
        reply_fail(rep, body, PS_EXIT_USAGE, "audit: since is milliseconds since 1970 and limit 1 to 1000000");
        return;
    }
    sqlite3_stmt *st = controldb_stmt(s->db, CDB_AUDIT_SINCE, NULL, 0);
    if (st == NULL) {
        reply_fail(rep, body, PS_EXIT_FAILED, "control store: %s", controldb_errmsg(s->db));
        return;
    }
    sqlite3_bind_int64(st, 1, since);
    sqlite3_bind_int64(st, 2, limit);
    sb_puts(body, rq->json ? "[" : "");
    if (!rq->json)
        sb_printf(body, "%-24s %-16s %-18s %-9s %-6s %-22s %s\n", "WHEN (UTC)", "USER", "VERB", "RESULT", "STATUS",
                  "FROM", "ARGUMENTS");
    for (int n = 0; sqlite3_step(st) == SQLITE_ROW; n++) {
        const char *cols[] = {controldb_text(st, 1), controldb_text(st, 2), controldb_text(st, 3),
                              controldb_text(st, 4), controldb_text(st, 5)};
        int64_t ts = sqlite3_column_int64(st, 0);
        int code = sqlite3_column_int(st, 6);
        if (rq->json) {
            static const char *const names[] = {"user", "verb", "arguments", "from", "result"};
            sb_printf(body, "%s{\"ts_ms\":%lld,\"status\":%d", n ? "," : "", (long long)ts, code);
            for (size_t k = 0; k < 5; k++) {
                sb_printf(body, ",\"%s\":", names[k]);
                sb_json_str(body, cols[k], strlen(cols[k]));
            }
            sb_puts(body, "}");
        } else {
            char when[40];
            sched_utc_ms_text(ts, when, sizeof(when));
            sb_printf(body, "%-24s %-16s %-18s %-9s %-6d %-22s %s\n", when, cols[0], cols[1], cols[4], code,
                      cols[3], cols[2]);
        }
    }
    controldb_done(st);
    sb_puts(body, rq->json ? "]\n" : "");
}
