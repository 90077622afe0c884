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
} env;

static void env_open(env *e)
{
    memset(e, 0, sizeof(*e));
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
    rq.token = (char *)(token ? token : "");
    Patronsync__ControlReply rep = PATRONSYNC__CONTROL_REPLY__INIT;
    strbuf body;
    sb_init(&body);
    control_handle(&e->t.s, &rq, &rep, &body);
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
    CHECK(strlen(e.token) == 48);
    CHECK(count(&e, "SELECT count(*) FROM users WHERE name='admin' AND role='administrator'") == 1);
    char err[ERRLEN];
    CHECK(control_first_admin(&e.t.s, err, sizeof(err)) == 0); /* a user exists: nothing changes */
    CHECK(count(&e, "SELECT count(*) FROM users") == 1);
    size_t len;
    char *t = file_read_all(path, 256, &len, NULL, 0);
    CHECK(t != NULL && strncmp(t, e.token, strlen(e.token)) == 0);
    free(t);
    CHECK(count(&e, "PRAGMA user_version") == 1);
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
    CHECK(count(&e, "SELECT count(*) FROM audit") == 0);
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
    /* A refused verb leaves no line. */
    CHECK(call(&e, e.token, "schedule.show", "nosuch", NULL, out, sizeof(out), NULL) == PS_EXIT_NOT_FOUND);
    CHECK(count(&e, "SELECT count(*) FROM audit WHERE verb='schedule.show'") == 0);
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
        if (strcmp(v->name, "ping") == 0)
            CHECK(v->perm == CONTROL_NONE);
        else
            CHECK(v->perm == (reads ? CONTROL_READ : CONTROL_MANAGE));
        CHECK(v->audited == (strcmp(v->name, "ping") != 0 && strcmp(v->name, "patron.show") != 0));
    }
    CHECK(control_find("schedule.add") != NULL && control_find("schedule.") == NULL);
    CHECK(control_role_may("administrator", CONTROL_MANAGE) && control_role_may("administrator", CONTROL_READ));
    CHECK(control_role_may("viewer", CONTROL_READ) && !control_role_may("viewer", CONTROL_MANAGE));
}

/* A user of a role the table gives no right to change things: reads, and
 * is refused the rest (no role but administrator exists today). */
static void test_permission_checked_once(void)
{
    env e;
    env_open(&e);
    /* hash of "viewer-token", as control.c makes it */
    unsigned char h[32];
    crypto_generichash(h, sizeof(h), (const unsigned char *)"viewer-token", 12, NULL, 0);
    char hex[80], err[ERRLEN];
    sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
    CHECK(controldb_user_add(e.t.s.db, "viewer", hex, "viewer", err, sizeof(err)) == 0);
    char out[4096];
    CHECK(call(&e, "viewer-token", "schedule.list", NULL, NULL, out, sizeof(out), NULL) == 0);
    CHECK(call(&e, "viewer-token", "schedule.add", "X", PROFILE, out, sizeof(out), "file", "x.csv", "time", "06:00",
               "full", "daily", NULL) == PS_EXIT_REFUSED);
    CHECK(strstr(out, "schedule.add: refused: user 'viewer' (role viewer) may not change anything") != NULL);
    CHECK(count(&e, "SELECT count(*) FROM schedules") == 0);
    CHECK(count(&e, "SELECT count(*) FROM audit WHERE user='viewer'") == 1);
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
    /* The job id, then the verb: two lines in the audit trail. */
    CHECK(count(&e, "SELECT count(*) FROM audit WHERE verb='run'") == 2);
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
    T_FORK(test_run_now);
    T_END();
}
