/* control: the control tables (users, outbox, audit) and the verbs
 * patronctl sends (docs/PROTOCOL.md lists them). Every state-changing verb
 * needs a valid user token. */
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "csvscan.h"
#include "exitcodes.h"
#include "log.h"
#include "profile.h"
#include "safety.h"
#include "scheduler.h"
#include "schedules.h"
#include "store.h"

static const char *control_schema =
    "PRAGMA journal_mode=WAL;\n"
    "CREATE TABLE IF NOT EXISTS users(name TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE,\n"
    "  role TEXT NOT NULL, created_ms INTEGER NOT NULL);\n"
    "CREATE TABLE IF NOT EXISTS outbox(job_id TEXT PRIMARY KEY, request BLOB NOT NULL,\n"
    "  created_ms INTEGER NOT NULL, last_sent_ms INTEGER NOT NULL DEFAULT 0, acked_ms INTEGER, error TEXT);\n"
    "CREATE TABLE IF NOT EXISTS audit(ts_ms INTEGER NOT NULL, user TEXT NOT NULL, verb TEXT NOT NULL, detail TEXT);\n";

static void token_hash(const char *token, char *out, size_t outlen)
{
    unsigned char h[32];
    crypto_generichash(h, sizeof(h), (const unsigned char *)token, strlen(token), NULL, 0);
    sodium_bin2hex(out, outlen, h, sizeof(h));
}

int control_db_open(scheduler *s, char *err, size_t errlen)
{
    if (sodium_init() < 0) {
        err_set(err, errlen, "libsodium failed to initialise");
        return -1;
    }
    if (sqlite3_open(s->cfg->control_db, &s->db) != SQLITE_OK) {
        err_set(err, errlen, "cannot open %s: %s", s->cfg->control_db, sqlite3_errmsg(s->db));
        return -1;
    }
    sqlite3_busy_timeout(s->db, 30000);
    char *msg = NULL;
    if (sqlite3_exec(s->db, control_schema, NULL, NULL, &msg) != SQLITE_OK) {
        err_set(err, errlen, "%s: %s", s->cfg->control_db, msg ? msg : "schema");
        sqlite3_free(msg);
        return -1;
    }
    /* The first administrator: a token in DATA/admin.token (0600). */
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(s->db, "SELECT count(*) FROM users", -1, &st, NULL);
    int users = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    if (users > 0)
        return 0;
    unsigned char raw[24];
    randombytes_buf(raw, sizeof(raw));
    char token[64], hash[80];
    sodium_bin2hex(token, sizeof(token), raw, sizeof(raw));
    token_hash(token, hash, sizeof(hash));
    char path[CONFIG_STR + 32];
    snprintf(path, sizeof(path), "%s/admin.token", s->cfg->data_dir);
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
    sqlite3_prepare_v2(s->db, "INSERT INTO users(name,token_hash,role,created_ms) VALUES('admin',?,'administrator',?)", -1,
                       &st, NULL);
    sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now_ms());
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    sqlite3_finalize(st);
    if (rc < 0)
        err_set(err, errlen, "cannot create the administrator: %s", sqlite3_errmsg(s->db));
    else
        log_info("first administrator 'admin' created; token in %s", path);
    return rc;
}

int control_user(scheduler *s, const char *token, char *user, size_t userlen)
{
    if (token == NULL || token[0] == '\0')
        return -1;
    char hash[80];
    token_hash(token, hash, sizeof(hash));
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT name FROM users WHERE token_hash=?", -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
    int rc = -1;
    if (sqlite3_step(st) == SQLITE_ROW) {
        str_copy(user, userlen, (const char *)sqlite3_column_text(st, 0));
        rc = 0;
    }
    sqlite3_finalize(st);
    return rc;
}

void control_audit(scheduler *s, const char *user, const char *verb, const char *detail)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "INSERT INTO audit(ts_ms,user,verb,detail) VALUES(?,?,?,?)", -1, &st, NULL) != SQLITE_OK)
        return;
    sqlite3_bind_int64(st, 1, now_ms());
    sqlite3_bind_text(st, 2, user, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, verb, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, detail, -1, SQLITE_STATIC);
    sqlite3_step(st);
    sqlite3_finalize(st);
}

const char *control_opt(const Patronsync__ControlRequest *rq, const char *key)
{
    for (size_t i = 0; i < rq->n_opts; i++)
        if (strcmp(rq->opts[i]->key, key) == 0)
            return rq->opts[i]->value;
    return NULL;
}

int control_fail(Patronsync__ControlReply *rep, strbuf *body, int code, const char *fmt, ...)
{
    /* Whole, however long: undo lists every patron it refuses for. */
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    sb_reset(body);
    char *msg = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (msg != NULL) {
        va_start(ap, fmt);
        vsnprintf(msg, (size_t)n + 1, fmt, ap);
        va_end(ap);
        sb_append(body, msg, (size_t)n);
        free(msg);
    } else {
        sb_puts(body, "out of memory writing the refusal");
    }
    rep->ok = 0;
    rep->status = code;
    rep->error = body->buf;
    return -1;
}

static store *open_store(scheduler *s, int flags, Patronsync__ControlReply *rep, strbuf *body)
{
    char err[ERRLEN];
    store *st = store_open(s->cfg->store_path, 8, flags, err, sizeof(err));
    if (st == NULL)
        control_fail(rep, body, PS_EXIT_FAILED, "%s", err);
    return st;
}

static void verb_run(scheduler *s, const char *user, const Patronsync__ControlRequest *rq, Patronsync__ControlReply *rep,
                     strbuf *body)
{
    if (rq->n_args != 1) {
        control_fail(rep, body, PS_EXIT_USAGE, "run: expected the file name (relative to the import root)");
        return;
    }
    const char *pname = control_opt(rq, "profile_name");
    char err[ERRLEN];
    /* A profile is checked before any job exists: no job runs with a bad one. */
    char *ptext = malloc(rq->payload.len + 1);
    if (ptext == NULL) {
        control_fail(rep, body, PS_EXIT_FAILED, "out of memory");
        return;
    }
    memcpy(ptext, rq->payload.data, rq->payload.len);
    ptext[rq->payload.len] = '\0';
    profile *p = profile_parse(ptext, rq->payload.len, pname ? pname : "profile", err, sizeof(err));
    if (p == NULL) {
        free(ptext);
        control_fail(rep, body, PS_EXIT_USAGE, "profile refused: %s", err);
        return;
    }
    profile_destroy(&p);
    Patronsync__JobOptions o;
    safety_options_init(&o);
    int64_t fired_at_ms;
    char local_date[16];
    if (jobctl_run_options(s, rq, &o, &fired_at_ms, local_date, sizeof(local_date), err, sizeof(err)) < 0) {
        safety_option_lists_free(&o);
        free(ptext);
        control_fail(rep, body, PS_EXIT_USAGE, "%s", err);
        return;
    }
    const char *v = control_opt(rq, "dry_run");
    o.dry_run = v && strcmp(v, "1") == 0;
    v = control_opt(rq, "allow_delete_outstanding");
    o.allow_delete_outstanding = v && strcmp(v, "1") == 0;
    int64_t n;
    v = control_opt(rq, "shard_size");
    if (v && parse_i64(v, 1, 10000000, &n) == 0)
        o.shard_size = (uint32_t)n;
    char id[128];
    job_id_new(id, sizeof(id));
    Patronsync__JobRequest req = PATRONSYNC__JOB_REQUEST__INIT;
    req.job_id = id;
    req.file = rq->args[0];
    req.profile_name = (char *)(pname ? pname : "profile");
    req.profile_text = ptext;
    v = control_opt(rq, "encoding");
    req.encoding = (char *)(v ? v : "");
    req.requested_by = (char *)user;
    req.fired_at_ms = fired_at_ms;
    req.local_date = local_date;
    req.options = &o;
    int rc = outbox_add(s, &req, err, sizeof(err));
    safety_option_lists_free(&o);
    free(ptext);
    if (rc < 0) {
        control_fail(rep, body, PS_EXIT_FAILED, "%s", err);
        return;
    }
    control_audit(s, user, "run", id);
    if (rq->json)
        sb_printf(body, "{\"job_id\":\"%s\"}\n", id);
    else
        sb_printf(body, "%s\n", id);
}

static void verb_site_add(scheduler *s, const Patronsync__ControlRequest *rq, Patronsync__ControlReply *rep, strbuf *body)
{
    if (rq->n_args != 2) {
        control_fail(rep, body, PS_EXIT_USAGE, "site add: expected SHORT_NAME \"Name\"");
        return;
    }
    const char *shortname = rq->args[0];
    if (shortname[0] == '\0' || utf8_chars(shortname, strlen(shortname)) > 10) {
        control_fail(rep, body, PS_EXIT_USAGE, "site short name '%s' must be 1 to 10 characters", shortname);
        return;
    }
    const char *m = control_opt(rq, "media");
    store *st = open_store(s, 0, rep, body);
    if (st == NULL)
        return;
    char err[ERRLEN];
    const char *level = control_opt(rq, "access_level"); /* the site's default access level (docs/RULES.md) */
    if (store_site_upsert(st, shortname, rq->args[1], m && strcmp(m, "1") == 0, err, sizeof(err)) < 0 ||
        (level && store_site_set_access_level(st, shortname, level, err, sizeof(err)) < 0))
        control_fail(rep, body, PS_EXIT_FAILED, "%s", err);
    else
        sb_printf(body, "site %s saved\n", shortname);
    store_close(&st);
}

static int truthy(const char *v)
{
    return strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0 || strcmp(v, "1") == 0 || strcasecmp(v, "y") == 0 ||
           strcasecmp(v, "t") == 0;
}

static void verb_site_import(scheduler *s, const Patronsync__ControlRequest *rq, Patronsync__ControlReply *rep,
                             strbuf *body)
{
    const char *name = control_opt(rq, "file_name");
    if (name == NULL)
        name = "sites.csv";
    store *st = open_store(s, 0, rep, body);
    if (st == NULL)
        return;
    csvrow *row = csvrow_new(64);
    char err[ERRLEN];
    int n = 0, bad = 0;
    store_begin(st, 1, NULL, 0);
    csvscan sc;
    csvscan_init(&sc, (const char *)rq->payload.data, rq->payload.len, 1, 1 << 16);
    csvscan_rec r;
    strbuf problems;
    sb_init(&problems);
    while (row && csvscan_next(&sc, &r)) {
        if (csvrow_parse(row, (const char *)rq->payload.data + r.off, r.len, err, sizeof(err)) < 0) {
            sb_printf(&problems, "%s:%llu: %s\n", name, (unsigned long long)r.line, err);
            bad++;
            continue;
        }
        const char *const *f = csvrow_fields(row);
        size_t nf = csvrow_count(row);
        if (r.line == 1 && nf > 0 && strcasecmp(f[0], "short_name") == 0)
            continue; /* header */
        if (nf < 2 || f[0][0] == '\0' || utf8_chars(f[0], strlen(f[0])) > 10) {
            sb_printf(&problems, "%s:%llu: expected short_name (1-10 characters),name[,media]\n", name,
                      (unsigned long long)r.line);
            bad++;
            continue;
        }
        int media = nf >= 3 ? truthy(f[2]) : 1;
        if (store_site_upsert(st, f[0], f[1], media, err, sizeof(err)) < 0) {
            sb_printf(&problems, "%s:%llu: %s\n", name, (unsigned long long)r.line, err);
            bad++;
            continue;
        }
        n++;
    }
    if (store_commit(st, err, sizeof(err)) < 0)
        control_fail(rep, body, PS_EXIT_FAILED, "%s", err);
    else {
        sb_puts(body, sb_str(&problems));
        sb_printf(body, "%d sites imported, %d lines refused\n", n, bad);
        if (bad)
            rep->status = PS_EXIT_WITH_ERRORS; /* done, but not every line */
    }
    sb_free(&problems);
    csvrow_destroy(&row);
    store_close(&st);
}

static void verb_patron_show(scheduler *s, const Patronsync__ControlRequest *rq, Patronsync__ControlReply *rep,
                             strbuf *body)
{
    if (rq->n_args != 1) {
        control_fail(rep, body, PS_EXIT_USAGE, "patron show: expected a District ID");
        return;
    }
    store *st = open_store(s, STORE_READONLY, rep, body);
    if (st == NULL)
        return;
    patron_rec rec;
    patron_rec_init(&rec);
    store_patron_meta meta;
    char err[ERRLEN];
    int found = store_find(st, PF_DISTRICT_ID, rq->args[0], &rec, &meta, err, sizeof(err));
    if (found < 0) {
        control_fail(rep, body, PS_EXIT_FAILED, "%s", err);
    } else if (found == 0) {
        control_fail(rep, body, PS_EXIT_NOT_FOUND, "no patron with District ID '%s'", rq->args[0]);
    } else if (rq->json) {
        sb_puts(body, "{");
        for (int f = 0; f < PF__COUNT; f++) {
            if (f == PF_PASSWORD)
                continue; /* never shown, not even its hash */
            const char *v = patron_rec_get(&rec, f);
            sb_printf(body, "%s\"%s\":", f ? "," : "", patron_fields[f].pic);
            sb_json_str(body, v, strlen(v));
        }
        sb_printf(body, ",\"checkouts\":%lld,\"fines_cents\":%lld}\n", (long long)meta.checkouts,
                  (long long)meta.fines_cents);
    } else {
        for (int f = 0; f < PF__COUNT; f++) {
            if (f == PF_PASSWORD)
                continue;
            sb_printf(body, "%-36s %s\n", patron_fields[f].pic, patron_rec_get(&rec, f));
        }
        sb_printf(body, "%-36s %lld\n%-36s %lld\n", "checkouts", (long long)meta.checkouts, "finesCents",
                  (long long)meta.fines_cents);
    }
    patron_rec_free(&rec);
    store_close(&st);
}

void control_handle(scheduler *s, const Patronsync__ControlRequest *rq, Patronsync__ControlReply *rep, strbuf *body)
{
    rep->ok = 1;
    rep->status = 0;
    rep->error = "";
    const char *verb = rq->verb;
    if (strcmp(verb, "ping") == 0) {
        sb_puts(body, "pong\n");
        rep->body = body->buf;
        return;
    }
    /* Every verb but ping is a user's: reading a patron is allowed to any
     * user, everything else changes state. */
    char user[128];
    if (control_user(s, rq->token, user, sizeof(user)) < 0) {
        control_fail(rep, body, PS_EXIT_REFUSED,
                     "%s: refused: %s; a valid user token is required (patronctl sends PATRONSYNC_TOKEN, else "
                     "DATA/admin.token)",
                     verb, rq->token == NULL || rq->token[0] == '\0' ? "no user token was given"
                                                                      : "the token given is not a user's");
        return;
    }
    if (strcmp(verb, "run") == 0)
        verb_run(s, user, rq, rep, body);
    else if (strcmp(verb, "site.add") == 0)
        verb_site_add(s, rq, rep, body);
    else if (strcmp(verb, "site.import") == 0)
        verb_site_import(s, rq, rep, body);
    else if (strcmp(verb, "patron.show") == 0)
        verb_patron_show(s, rq, rep, body);
    else if (strncmp(verb, "schedule.", 9) == 0)
        schedules_verb(s, user, rq, rep, body);
    else if (strncmp(verb, "job.", 4) == 0)
        jobctl_verb(s, user, rq, rep, body);
    else if (refdata_handle(s, rq, rep, body) == 0)
        control_fail(rep, body, PS_EXIT_USAGE, "unknown request '%s'", verb);
    if (rep->ok)
        rep->body = body->buf ? body->buf : "";
    if (rep->ok && strcmp(verb, "patron.show") != 0)
        control_audit(s, user, verb, rq->n_args ? rq->args[0] : "");
}
