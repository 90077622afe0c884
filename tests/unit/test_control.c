/* test_control: the scheduler's control verbs through control_handle, as
 * a request from patronctl arrives, on a real control.db in a temp folder
 * — the first administrator, the token check, the verb table and its
 * permissions, the audit trail, unknown verbs, and run-now into the
 * outbox. No broker, Redis down (a port nothing listens on). Each case
 * runs in a process of its own. */
#include "t_control.h"
#include "t_fork.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exitcodes.h"
#include "log.h"

static const char *PROFILE =
    "MatchUsingDistrictID=true\nInputRowsToSkip=1\nfield_districtID={1}\nfield_lastName={2}\nfield_patronType={3}\n";

typedef struct {
    t_env t;         /* first: the scheduler, its settings, control.db */
    char token[128]; /* the first administrator's */
    const char *peer; /* where requests come from (the back-off's key) */
} env;

static void env_open(env *e)
{
    memset(e, 0, sizeof(*e));
    e->peer = "127.0.0.1 key client";
    t_env_make(&e->t, "test_control");
    config_set(&e->t.cfg, "redis_url", "redis://127.0.0.1:1", NULL, 0);
    t_env_finish(&e->t);
    char err[ERRLEN];
    e->t.s.redis = status_new(e->t.cfg.redis_url, err, sizeof(err));
    if (e->t.s.redis == NULL)
        abort();
    char path[400];
    snprintf(path, sizeof(path), "%s/admin.token", e->t.dir);
    size_t len;
    char *t = file_read_all(path, 256, &len, NULL, 0);
    if (t == NULL)
        abort();
    t[strcspn(t, "\n")] = '\0';
    str_copy(e->token, sizeof(e->token), t);
    free(t);
}

static void env_close(env *e)
{
    status_destroy(&e->t.s.redis);
    t_env_remove(&e->t);
}

static int64_t count(env *e, const char *sql)
{
    return t_count(&e->t, sql);
}

/* One request as patronctl sends it; kv: key, value, ..., NULL. The body
 * (or the error) into out; the status (patronctl's exit status). */
static int call(env *e, const char *token, const char *verb, const char *arg, const char *payload, char *out,
                size_t outlen, ...)
{
    Patronsync__ControlRequest rq;
    Patronsync__ControlRequest__OptsEntry ents[16], *ptrs[16];
    char *args[1];
    va_list ap;
    va_start(ap, outlen);
    t_request(&rq, args, ents, ptrs, 16, verb, arg, payload, ap);
    va_end(ap);
    rq.token.data = (uint8_t *)(token ? token : "");
    rq.token.len = token ? strlen(token) : 0;
    Patronsync__ControlReply rep = PATRONSYNC__CONTROL_REPLY__INIT;
    strbuf body;
    sb_init(&body);
    control_handle(&e->t.s, &rq, e->peer, &rep, &body);
    if (out)
        str_copy(out, outlen, rep.ok ? rep.body : rep.error);
    int rc = rep.ok ? (int)rep.status : (rep.status ? (int)rep.status : PS_EXIT_FAILED);
    sb_free(&body);
    return rc;
}

static void test_first_admin(void)
{
    env e;
    env_open(&e);
    char path[400];
    snprintf(path, sizeof(path), "%s/admin.token", e.t.dir);
    struct stat sb;
    CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
    CHECK(strlen(e.token) == 64);
    CHECK(count(&e, "SELECT count(*) FROM users WHERE name='admin' AND level='district' AND "
                    "permissions='manage_patrons_district' AND enabled=1 AND keyed=1") == 1);
    /* Only a keyed hash is kept: neither the token nor its plain hash. */
    unsigned char h[32];
    char plain[80], q[400];
    crypto_generichash(h, sizeof(h), (const unsigned char *)e.token, strlen(e.token), NULL, 0);
    sodium_bin2hex(plain, sizeof(plain), h, sizeof(h));
    snprintf(q, sizeof(q), "SELECT count(*) FROM users WHERE token_hash IN ('%s', '%s')", e.token, plain);
    CHECK(count(&e, q) == 0);
    char err[ERRLEN];
    CHECK(control_first_admin(&e.t.s, err, sizeof(err)) == 0); /* a user exists: nothing changes */
    CHECK(count(&e, "SELECT count(*) FROM users") == 1);
    size_t len;
    char *t = file_read_all(path, 256, &len, NULL, 0);
    CHECK(t != NULL && strncmp(t, e.token, strlen(e.token)) == 0);
    free(t);
    CHECK(count(&e, "PRAGMA user_version") == 2);
    snprintf(path, sizeof(path), "%s/keys/token.key", e.t.dir);
    CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
    env_close(&e);
}

static void test_reopen_keeps_everything(void)
{
    env e;
    env_open(&e);
    char out[4096];
    CHECK(call(&e, e.token, "schedule.add", "Nightly", PROFILE, out, sizeof(out), "file", "f.csv", "time", "02:00",
               "full", "daily", NULL) == 0);
    controldb_close(&e.t.s.db);
    char err[ERRLEN];
    e.t.s.db = controldb_open(e.t.cfg.control_db, 1, err, sizeof(err)); /* migrations: nothing to do */
    CHECK(e.t.s.db != NULL);
    CHECK(count(&e, "SELECT count(*) FROM schedules") == 1);
    CHECK(call(&e, e.token, "schedule.show", "Nightly", NULL, out, sizeof(out), NULL) == 0);
    CHECK(strstr(out, "Schedule:         Nightly") != NULL);
    env_close(&e);
}

static void test_ping_needs_no_token(void)
{
    env e;
    env_open(&e);
    char out[256];
    CHECK(call(&e, NULL, "ping", NULL, NULL, out, sizeof(out), NULL) == 0);
    CHECK_STR(out, "pong\n");
    CHECK(count(&e, "SELECT count(*) FROM audit") == 0);
    env_close(&e);
}

static void test_token_refusals(void)
{
    env e;
    env_open(&e);
    char out[1024];
    CHECK(call(&e, NULL, "schedule.list", NULL, NULL, out, sizeof(out), NULL) == PS_EXIT_REFUSED);
    CHECK(strstr(out, "schedule.list: refused: no user token was given; a valid user token is required") != NULL);
    CHECK(call(&e, "not-a-token", "ref.list", NULL, NULL, out, sizeof(out), NULL) == PS_EXIT_REFUSED);
    CHECK(strstr(out, "ref.list: refused: the token given is not a user's") != NULL);
    /* The token is checked before the verb is looked at. */
    CHECK(call(&e, "not-a-token", "no.such", NULL, NULL, out, sizeof(out), NULL) == PS_EXIT_REFUSED);
    /* Every refusal is in the audit trail: who (unknown), what, from where. */
    CHECK(count(&e, "SELECT count(*) FROM audit WHERE user='unknown token' AND result='refused' AND status=6 AND "
                    "peer='127.0.0.1 key client'") == 3);
    env_close(&e);
}

static void test_unknown_verbs(void)
{
    env e;
    env_open(&e);
    char out[1024];
    CHECK(call(&e, e.token, "no.such", NULL, NULL, out, sizeof(out), NULL) == PS_EXIT_USAGE);
    CHECK_STR(out, "unknown request 'no.such'");
    CHECK(call(&e, e.token, "schedule.bogus", "x", NULL, out, sizeof(out), NULL) == PS_EXIT_USAGE);
    CHECK_STR(out, "unknown request 'schedule.bogus' (schedule add, edit, show, list, delete, run, enable, disable)");
    CHECK(call(&e, e.token, "job.bogus", "x", NULL, out, sizeof(out), NULL) == PS_EXIT_USAGE);
    CHECK_STR(out, "unknown request 'job.bogus'");
    CHECK(count(&e, "SELECT count(*) FROM audit") == 0);
    env_close(&e);
}

static void test_audit_trail(void)
{
    env e;
    env_open(&e);
    char out[4096];
    CHECK(call(&e, e.token, "schedule.list", NULL, NULL, out, sizeof(out), NULL) == 0);
    CHECK(strstr(out, "NAME") != NULL);
    CHECK(count(&e, "SELECT count(*) FROM audit WHERE user='admin' AND verb='schedule.list' AND detail=''") == 1);
    /* A verb that fails is in the trail too, with its result. */
    CHECK(call(&e, e.token, "schedule.show", "nosuch", NULL, out, sizeof(out), NULL) == PS_EXIT_NOT_FOUND);
    CHECK(count(&e, "SELECT count(*) FROM audit WHERE verb='schedule.show' AND result='failed' AND status=5") == 1);
    CHECK(call(&e, e.token, "schedule.add", "Day", PROFILE, out, sizeof(out), "file", "d.csv", "time", "06:00", "full",
               "mon-fri", NULL) == 0);
    CHECK(count(&e, "SELECT count(*) FROM audit WHERE verb='schedule.add' AND detail='Day'") == 1);
    env_close(&e);
}

static void test_table(void)
{
    for (size_t i = 0; i < control_nverbs; i++) {
        const control_verb *v = &control_verbs[i];
        CHECK(v->run != NULL);
        CHECK(control_find(v->name) == v); /* names are unique */
        size_t n = strlen(v->name);
        int reads = (n > 5 && strcmp(v->name + n - 5, ".list") == 0) || (n > 5 && strcmp(v->name + n - 5, ".show") == 0);
        int admin = strncmp(v->name, "user.", 5) == 0 || strncmp(v->name, "audit.", 6) == 0;
        if (strcmp(v->name, "ping") == 0)
            CHECK(v->perm == CONTROL_NONE);
        else
            CHECK(v->perm == (reads && !admin ? CONTROL_READ : CONTROL_MANAGE));
        CHECK(v->audited == (strcmp(v->name, "ping") != 0 && strcmp(v->name, "patron.show") != 0));
    }
    CHECK(control_find("schedule.add") != NULL && control_find("schedule.") == NULL);
    controldb_user admin = {.name = "a", .level = "district", .permissions = "manage_patrons_district", .enabled = 1};
    controldb_user viewer = {.name = "v", .level = "district", .permissions = "view_jobs", .enabled = 1};
    controldb_user site_mgr = {.name = "s", .level = "site", .permissions = "manage_patrons_district", .enabled = 1};
    CHECK(control_user_may(&admin, CONTROL_MANAGE) && control_user_may(&admin, CONTROL_READ));
    CHECK(control_user_may(&viewer, CONTROL_READ) && !control_user_may(&viewer, CONTROL_MANAGE));
    CHECK(!control_user_may(&site_mgr, CONTROL_MANAGE)); /* only district-level users manage */
    admin.enabled = 0;
    CHECK(!control_user_may(&admin, CONTROL_READ));
}

/* A view_jobs user: reads, and is refused the rest, each refusal audited. */
static void test_permission_checked_once(void)
{
    env e;
    env_open(&e);
    char out[4096], token[80];
    CHECK(call(&e, e.token, "user.add", "viewer", NULL, out, sizeof(out), "permission", "view_jobs", NULL) == 0);
    CHECK(sscanf(strstr(out, "token: "), "token: %79s", token) == 1 && strlen(token) == 64);
    CHECK(call(&e, token, "schedule.list", NULL, NULL, out, sizeof(out), NULL) == 0);
    CHECK(call(&e, token, "schedule.add", "X", PROFILE, out, sizeof(out), "file", "x.csv", "time", "06:00", "full",
               "daily", NULL) == PS_EXIT_REFUSED);
    CHECK(strstr(out, "schedule.add: refused: user 'viewer' does not have the manage_patrons_district permission"));
    CHECK(call(&e, token, "run", "x.csv", PROFILE, out, sizeof(out), NULL) == PS_EXIT_REFUSED);
    CHECK(call(&e, token, "user.add", "mallory", NULL, out, sizeof(out), "permission", "manage_patrons_district",
               NULL) == PS_EXIT_REFUSED);
    CHECK(count(&e, "SELECT count(*) FROM schedules") == 0);
    CHECK(count(&e, "SELECT count(*) FROM outbox") == 0);
    CHECK(count(&e, "SELECT count(*) FROM users") == 2);
    CHECK(count(&e, "SELECT count(*) FROM audit WHERE user='viewer' AND result='ok'") == 1);
    CHECK(count(&e, "SELECT count(*) FROM audit WHERE user='viewer' AND result='refused' AND status=6") == 3);
    env_close(&e);
}

/* Disabled users, new tokens, site-level users and the last manager. */
static void test_user_lifecycle(void)
{
    env e;
    env_open(&e);
    char out[4096], token[80], token2[80];
    CHECK(call(&e, e.token, "user.add", "clerk", NULL, out, sizeof(out), "permission", "view_jobs", "sites",
               "ALAMEDA,BAYSIDE", NULL) == 0);
    CHECK(sscanf(strstr(out, "token: "), "token: %79s", token) == 1);
    CHECK(count(&e, "SELECT count(*) FROM users WHERE name='clerk' AND level='site' AND sites='ALAMEDA,BAYSIDE'") == 1);
    /* A site-level user may not manage patrons for the district. */
    CHECK(call(&e, e.token, "user.grant", "clerk", NULL, out, sizeof(out), "permission", "manage_patrons_district",
               NULL) == PS_EXIT_USAGE);
    CHECK(call(&e, e.token, "user.add", "boss", NULL, out, sizeof(out), "permission", "manage_patrons_district",
               "sites", "ALAMEDA", NULL) == PS_EXIT_USAGE);
    CHECK(call(&e, e.token, "user.add", "clerk", NULL, out, sizeof(out), "permission", "view_jobs", NULL) ==
          PS_EXIT_USAGE); /* taken */
    CHECK(call(&e, e.token, "user.add", "x", NULL, out, sizeof(out), "permission", "everything", NULL) == PS_EXIT_USAGE);
    CHECK(call(&e, token, "schedule.list", NULL, NULL, out, sizeof(out), NULL) == 0);
    CHECK(call(&e, e.token, "user.disable", "clerk", NULL, out, sizeof(out), NULL) == 0);
    CHECK(call(&e, token, "schedule.list", NULL, NULL, out, sizeof(out), NULL) == PS_EXIT_REFUSED);
    CHECK(strstr(out, "user 'clerk' is disabled") != NULL);
    CHECK(call(&e, e.token, "user.enable", "clerk", NULL, out, sizeof(out), NULL) == 0);
    CHECK(call(&e, token, "schedule.list", NULL, NULL, out, sizeof(out), NULL) == 0);
    /* A new token: the old one stops working. */
    CHECK(call(&e, e.token, "user.token", "clerk", NULL, out, sizeof(out), NULL) == 0);
    CHECK(sscanf(strstr(out, "new token: "), "new token: %79s", token2) == 1 && strcmp(token, token2) != 0);
    CHECK(call(&e, token, "schedule.list", NULL, NULL, out, sizeof(out), NULL) == PS_EXIT_REFUSED);
    CHECK(call(&e, token2, "schedule.list", NULL, NULL, out, sizeof(out), NULL) == 0);
    /* The last manager cannot be disabled or lose the permission. */
    CHECK(call(&e, e.token, "user.disable", "admin", NULL, out, sizeof(out), NULL) == PS_EXIT_REFUSED);
    CHECK(strstr(out, "last enabled user who may manage") != NULL);
    CHECK(call(&e, e.token, "user.revoke", "admin", NULL, out, sizeof(out), "permission", "manage_patrons_district",
               NULL) == PS_EXIT_REFUSED);
    CHECK(call(&e, e.token, "user.list", NULL, NULL, out, sizeof(out), NULL) == 0);
    CHECK(strstr(out, "clerk") && strstr(out, "admin") && !strstr(out, token2));
    CHECK(call(&e, e.token, "user.show", "nosuch", NULL, out, sizeof(out), NULL) == PS_EXIT_USAGE);
    env_close(&e);
}

/* A token with a NUL byte and garbage after it is not the token. */
static void test_token_compared_whole(void)
{
    env e;
    env_open(&e);
    char padded[200];
    size_t n = strlen(e.token);
    memcpy(padded, e.token, n);
    memcpy(padded + n, "\0garbage", 8);
    Patronsync__ControlRequest rq = PATRONSYNC__CONTROL_REQUEST__INIT;
    rq.verb = "schedule.list";
    rq.token.data = (uint8_t *)padded;
    rq.token.len = n + 8;
    Patronsync__ControlReply rep = PATRONSYNC__CONTROL_REPLY__INIT;
    strbuf body;
    sb_init(&body);
    control_handle(&e.t.s, &rq, e.peer, &rep, &body);
    CHECK(!rep.ok && rep.status == PS_EXIT_REFUSED);
    CHECK(strstr(rep.error, "the token given is not a user's") != NULL);
    sb_free(&body);
    /* A prefix of the token is not it either. */
    char out[1024];
    e.token[n - 1] = '\0';
    CHECK(call(&e, e.token, "schedule.list", NULL, NULL, out, sizeof(out), NULL) == PS_EXIT_REFUSED);
    env_close(&e);
}

/* Failed attempts from one client slow it down; others are not. */
static void test_failed_attempts_back_off(void)
{
    env e;
    env_open(&e);
    char out[1024];
    for (int i = 0; i < 5; i++)
        CHECK(call(&e, "wrong", "ref.list", NULL, NULL, out, sizeof(out), NULL) == PS_EXIT_REFUSED);
    /* In its back-off even the right token is refused, without being looked at. */
    CHECK(call(&e, e.token, "schedule.list", NULL, NULL, out, sizeof(out), NULL) == PS_EXIT_REFUSED);
    CHECK(strstr(out, "too many failed attempts from this client; try again in 1 s") != NULL);
    CHECK(count(&e, "SELECT count(*) FROM audit WHERE result='throttled'") == 1);
    e.peer = "10.0.0.9 key web";
    CHECK(call(&e, e.token, "schedule.list", NULL, NULL, out, sizeof(out), NULL) == 0);
    e.peer = "127.0.0.1 key client";
    usleep(1100 * 1000);
    CHECK(call(&e, e.token, "schedule.list", NULL, NULL, out, sizeof(out), NULL) == 0);
    env_close(&e);
}

static void test_run_now(void)
{
    env e;
    env_open(&e);
    char out[4096];
    CHECK(call(&e, e.token, "run", NULL, PROFILE, out, sizeof(out), NULL) == PS_EXIT_USAGE);
    CHECK(strstr(out, "run: expected the file name") != NULL);
    CHECK(call(&e, e.token, "run", "staff.csv", "field_nosuch={1}\n", out, sizeof(out), NULL) == PS_EXIT_USAGE);
    CHECK(strstr(out, "profile refused:") != NULL);
    CHECK(call(&e, e.token, "run", "staff.csv", PROFILE, out, sizeof(out), "max_add_pct", "200", NULL) == PS_EXIT_USAGE);
    CHECK(count(&e, "SELECT count(*) FROM outbox") == 0);
    CHECK(call(&e, e.token, "run", "staff.csv", PROFILE, out, sizeof(out), "profile_name", "s.properties", "dry_run", "1",
               "allow_delete_outstanding", "yes", "shard_size", "500", NULL) == 0);
    CHECK(strncmp(out, "run-", 4) == 0 && out[strlen(out) - 1] == '\n');
    out[strcspn(out, "\n")] = '\0';
    CHECK(count(&e, "SELECT count(*) FROM outbox") == 1);
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(e.t.q, "SELECT job_id, request FROM outbox", -1, &st, NULL);
    CHECK(sqlite3_step(st) == SQLITE_ROW);
    CHECK_STR((const char *)sqlite3_column_text(st, 0), out);
    Patronsync__JobRequest *req =
        patronsync__job_request__unpack(NULL, (size_t)sqlite3_column_bytes(st, 1), sqlite3_column_blob(st, 1));
    CHECK(req != NULL);
    if (req) {
        CHECK_STR(req->file, "staff.csv");
        CHECK_STR(req->profile_name, "s.properties");
        CHECK_STR(req->profile_text, PROFILE);
        CHECK_STR(req->requested_by, "admin");
        CHECK(strlen(req->local_date) == 10);
        CHECK(req->options && req->options->dry_run && req->options->allow_delete_outstanding &&
              req->options->shard_size == 500);
        patronsync__job_request__free_unpacked(req, NULL);
    }
    sqlite3_finalize(st);
    /* The job id, then the verb: two lines in the audit trail; the three
     * runs refused before it one line each. */
    CHECK(count(&e, "SELECT count(*) FROM audit WHERE verb='run' AND result='ok'") == 2);
    CHECK(count(&e, "SELECT count(*) FROM audit WHERE verb='run' AND result='failed' AND status=2") == 3);
    env_close(&e);
}

int main(void)
{
    log_init("test_control", LOG_ERROR);
    if (sodium_init() < 0)
        return 1;
    T_FORK(test_first_admin);
    T_FORK(test_reopen_keeps_everything);
    T_FORK(test_ping_needs_no_token);
    T_FORK(test_token_refusals);
    T_FORK(test_unknown_verbs);
    T_FORK(test_audit_trail);
    T_FORK(test_table);
    T_FORK(test_permission_checked_once);
    T_FORK(test_user_lifecycle);
    T_FORK(test_token_compared_whole);
    T_FORK(test_failed_attempts_back_off);
    T_FORK(test_run_now);
    T_END();
}
