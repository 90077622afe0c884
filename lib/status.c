/* status: hiredis with lazy reconnect and back-off, and the key layout. */
#include "status.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "counts.h"
#include "log.h"
#include "util.h"

struct status {
    char host[256];
    int port;
    int db;
    char user[128];     /* ACL user ("" the default user) */
    char password[256]; /* "" none; never logged */
    int auth_refused;   /* the last connection's AUTH was refused */
    redisContext *ctx;
    int64_t next_try_ms;
    int64_t backoff_ms;
};

/* "user[:password]@" before the host, into s. 0 / -1. */
static int parse_userinfo(status *s, const char **p)
{
    const char *at = strchr(*p, '@');
    if (at == NULL)
        return 0;
    const char *colon = memchr(*p, ':', (size_t)(at - *p));
    size_t ul = (size_t)((colon ? colon : at) - *p);
    size_t pl = colon ? (size_t)(at - colon - 1) : 0;
    if (ul >= sizeof(s->user) || pl >= sizeof(s->password))
        return -1;
    memcpy(s->user, *p, ul);
    s->user[ul] = '\0';
    if (colon) {
        memcpy(s->password, colon + 1, pl);
        s->password[pl] = '\0';
    }
    *p = at + 1;
    return 0;
}

status *status_new(const char *url, char *err, size_t errlen)
{
    const char *p = url;
    if (strncmp(p, "redis://", 8) == 0)
        p += 8;
    status *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        err_set(err, errlen, "out of memory");
        return NULL;
    }
    if (parse_userinfo(s, &p) < 0) {
        err_set(err, errlen, "redis url: user or password too long");
        free(s);
        return NULL;
    }
    const char *colon = strrchr(p, ':');
    const char *slash = strchr(p, '/');
    if (colon == NULL || (slash != NULL && slash < colon)) {
        err_set(err, errlen, "redis url '%s': expected redis://[user[:password]@]host:port[/db]", p);
        free(s);
        return NULL;
    }
    size_t hl = (size_t)(colon - p);
    if (hl == 0 || hl >= sizeof(s->host)) {
        err_set(err, errlen, "redis url '%s': bad host", p);
        free(s);
        return NULL;
    }
    memcpy(s->host, p, hl);
    s->host[hl] = '\0';
    char portbuf[16];
    size_t pl = slash ? (size_t)(slash - colon - 1) : strlen(colon + 1);
    int64_t v;
    if (pl == 0 || pl >= sizeof(portbuf)) {
        err_set(err, errlen, "redis url '%s': bad port", p);
        free(s);
        return NULL;
    }
    memcpy(portbuf, colon + 1, pl);
    portbuf[pl] = '\0';
    if (parse_i64(portbuf, 1, 65535, &v) < 0) {
        err_set(err, errlen, "redis url '%s': bad port", p);
        free(s);
        return NULL;
    }
    s->port = (int)v;
    if (slash != NULL && slash[1] != '\0') {
        if (parse_i64(slash + 1, 0, 1000, &v) < 0) {
            err_set(err, errlen, "redis url '%s': bad database number", p);
            free(s);
            return NULL;
        }
        s->db = (int)v;
    }
    return s;
}

status *status_for(const ps_config *cfg, char *err, size_t errlen)
{
    status *s = status_new(cfg->redis_url, err, errlen);
    if (s == NULL)
        return s;
    if (cfg->redis_password_file[0] == '\0') {
        /* A container's: the environment, never a setting (--print-config
         * would show it). */
        const char *env = getenv("PATRONSYNC_REDIS_PASSWORD");
        if (s->password[0] == '\0' && env != NULL && env[0] != '\0') {
            if (strlen(env) >= sizeof(s->password)) {
                err_set(err, errlen, "PATRONSYNC_REDIS_PASSWORD: longer than %zu bytes", sizeof(s->password) - 1);
                status_destroy(&s);
                return NULL;
            }
            str_copy(s->password, sizeof(s->password), env);
        }
        return s;
    }
    char e[ERRLEN];
    char *t = file_read_all(cfg->redis_password_file, sizeof(s->password), NULL, e, sizeof(e));
    if (t == NULL) {
        err_set(err, errlen, "redis_password_file %s: %s", cfg->redis_password_file, e);
        status_destroy(&s);
        return NULL;
    }
    t[strcspn(t, "\r\n")] = '\0';
    str_copy(s->password, sizeof(s->password), t);
    sodium_memzero(t, strlen(t));
    free(t);
    return s;
}

int status_check(status *s, char *err, size_t errlen)
{
    if (status_up(s) || !s->auth_refused)
        return 0;
    err_set(err, errlen, "redis %s:%d refused the password of user '%s' (redis_url, redis_password_file)", s->host,
            s->port, s->user[0] ? s->user : "default");
    return -1;
}

const char *status_where(const status *s, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s:%d", s->host, s->port);
    return out;
}

const char *status_where_url(const char *url, char *out, size_t outlen)
{
    status *s = status_new(url, NULL, 0);
    if (s == NULL)
        str_copy(out, outlen, "(a redis_url that does not parse)");
    else
        status_where(s, out, outlen);
    status_destroy(&s);
    return out;
}

void status_destroy(status **sp)
{
    if (sp == NULL || *sp == NULL)
        return;
    if ((*sp)->ctx)
        redisFree((*sp)->ctx);
    sodium_memzero((*sp)->password, sizeof((*sp)->password));
    free(*sp);
    *sp = NULL;
}

static void drop(status *s, const char *why)
{
    if (s->ctx) {
        log_warn("redis %s:%d: %s; reconnecting", s->host, s->port, why);
        redisFree(s->ctx);
        s->ctx = NULL;
    }
}

/* AUTH on a new connection, when a password is set. 0 / -1 (dropped). */
static int authenticate(status *s)
{
    s->auth_refused = 0;
    if (s->password[0] == '\0')
        return 0;
    redisReply *r = s->user[0] ? redisCommand(s->ctx, "AUTH %s %s", s->user, s->password)
                               : redisCommand(s->ctx, "AUTH %s", s->password);
    int ok = r != NULL && r->type != REDIS_REPLY_ERROR;
    if (r != NULL && !ok) {
        s->auth_refused = 1;
        log_error("redis %s:%d refused the password of user '%s': %s", s->host, s->port,
                  s->user[0] ? s->user : "default", r->str);
    }
    if (r)
        freeReplyObject(r);
    if (!ok) {
        redisFree(s->ctx);
        s->ctx = NULL;
        s->next_try_ms = mono_ms() + 2000;
    }
    return ok ? 0 : -1;
}

int status_up(status *s)
{
    if (s->ctx != NULL)
        return 1;
    int64_t now = mono_ms();
    if (now < s->next_try_ms)
        return 0;
    /* Short timeouts: a Redis that hangs (stopped, overloaded) must not
     * stall a process's loop past its peers' liveness. */
    struct timeval tv = {0, 500000};
    redisContext *c = redisConnectWithTimeout(s->host, s->port, tv);
    if (c == NULL || c->err) {
        s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : 100;
        if (s->backoff_ms > 2000)
            s->backoff_ms = 2000;
        s->next_try_ms = now + s->backoff_ms;
        if (c)
            redisFree(c);
        return 0;
    }
    struct timeval rw = {0, 500000};
    redisSetTimeout(c, rw);
    s->ctx = c;
    s->backoff_ms = 0;
    if (authenticate(s) < 0)
        return 0;
    if (s->db != 0) {
        redisReply *r = redisCommand(c, "SELECT %d", s->db);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            if (r)
                freeReplyObject(r);
            drop(s, "SELECT failed");
            return 0;
        }
        freeReplyObject(r);
    }
    return 1;
}

static redisReply *checked(status *s, redisReply *r)
{
    if (r == NULL && s->ctx != NULL && s->ctx->err == REDIS_ERR_OTHER) {
        log_error("redis command refused by the client library: %s", s->ctx->errstr);
        s->ctx->err = 0;
        return NULL;
    }
    if (r == NULL) {
        drop(s, s->ctx && s->ctx->errstr[0] ? s->ctx->errstr : "connection lost");
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        log_warn("redis error: %s", r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

redisReply *status_cmd(status *s, const char *fmt, ...)
{
    if (!status_up(s))
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(s->ctx, fmt, ap);
    va_end(ap);
    return checked(s, r);
}

redisReply *status_cmdargv(status *s, int argc, const char **argv, const size_t *lens)
{
    if (!status_up(s))
        return NULL;
    return checked(s, redisCommandArgv(s->ctx, argc, argv, lens));
}

int status_do(status *s, const char *fmt, ...)
{
    if (!status_up(s))
        return -1;
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(s->ctx, fmt, ap);
    va_end(ap);
    r = checked(s, r);
    if (r == NULL)
        return -1;
    freeReplyObject(r);
    return 0;
}

/* Field text: tabs and newlines inside values would break the line format. */
static void put_clean(strbuf *sb, const char *v)
{
    for (const char *p = v ? v : ""; *p; p++) {
        char c = *p;
        if (c == '\t' || c == '\n' || c == '\r')
            c = ' ';
        sb_append(sb, &c, 1);
    }
}

int status_exception_encode(const Patronsync__Exception *e, char **out, size_t *len)
{
    strbuf sb;
    sb_init(&sb);
    sb_printf(&sb, "%llu\t", (unsigned long long)e->line);
    put_clean(&sb, e->district_id);
    sb_puts(&sb, "\t");
    put_clean(&sb, e->name);
    sb_puts(&sb, "\t");
    put_clean(&sb, e->outcome);
    sb_puts(&sb, "\t");
    put_clean(&sb, e->message);
    if (sb.buf == NULL)
        return -1;
    *out = sb.buf;
    *len = sb.len;
    return 0;
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d == NULL)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

Patronsync__Exception *status_exception_decode(const char *s, size_t len)
{
    const char *part[5];
    size_t plen[5];
    size_t k = 0, start = 0;
    for (size_t i = 0; i <= len && k < 5; i++) {
        if (i == len || (s[i] == '\t' && k < 4)) {
            part[k] = s + start;
            plen[k] = i - start;
            k++;
            start = i + 1;
        }
    }
    if (k != 5)
        return NULL;
    Patronsync__Exception *e = malloc(sizeof(*e));
    if (e == NULL)
        return NULL;
    patronsync__exception__init(e);
    char num[24];
    size_t nl = plen[0] < sizeof(num) - 1 ? plen[0] : sizeof(num) - 1;
    memcpy(num, part[0], nl);
    num[nl] = '\0';
    int64_t v = 0;
    parse_i64(num, 0, INT64_MAX, &v);
    e->line = (uint64_t)v;
    e->district_id = dup_n(part[1], plen[1]);
    e->name = dup_n(part[2], plen[2]);
    e->outcome = dup_n(part[3], plen[3]);
    e->message = dup_n(part[4], plen[4]);
    if (!e->district_id || !e->name || !e->outcome || !e->message) {
        status_free_exceptions(&e, 1);
        return NULL;
    }
    return e;
}

void status_free_exceptions(Patronsync__Exception **exc, size_t n)
{
    if (exc == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        if (exc[i] == NULL)
            continue;
        free(exc[i]->district_id);
        free(exc[i]->name);
        free(exc[i]->outcome);
        free(exc[i]->message);
        free(exc[i]);
    }
}

/* Pipeline the commands and read every reply; 0 if all succeeded. */
static int pipeline_replies(status *s, int n)
{
    int rc = 0;
    for (int i = 0; i < n; i++) {
        redisReply *r = NULL;
        if (redisGetReply(s->ctx, (void **)&r) != REDIS_OK || r == NULL) {
            drop(s, "connection lost during pipeline");
            return -1;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            log_warn("redis error: %s", r->str);
            rc = -1;
        }
        freeReplyObject(r);
    }
    return rc;
}

/* One RPUSH of up to EXC_BATCH encoded exception lines onto key. */
#define EXC_BATCH 500
typedef struct {
    int argc;
    const char **argv;
    size_t *lens;
    char **bufs;
} exc_batch;

static void exc_batch_free(exc_batch *eb)
{
    for (int k = 2; eb->bufs && k < eb->argc; k++)
        free(eb->bufs[k - 2]);
    free(eb->argv);
    free(eb->lens);
    free(eb->bufs);
}

static int exc_batch_make(exc_batch *eb, const char *key, Patronsync__Exception *const *exc, size_t n)
{
    size_t m = n < EXC_BATCH ? n : EXC_BATCH;
    eb->argc = (int)(m + 2);
    eb->argv = calloc(m + 2, sizeof(*eb->argv));
    eb->lens = calloc(m + 2, sizeof(*eb->lens));
    eb->bufs = calloc(m, sizeof(*eb->bufs));
    if (!eb->argv || !eb->lens || !eb->bufs) {
        eb->argc = 2;
        exc_batch_free(eb);
        return -1;
    }
    eb->argv[0] = "RPUSH";
    eb->lens[0] = 5;
    eb->argv[1] = key;
    eb->lens[1] = strlen(key);
    for (size_t j = 0; j < m; j++) {
        status_exception_encode(exc[j], &eb->bufs[j], &eb->lens[j + 2]);
        eb->argv[j + 2] = eb->bufs[j] ? eb->bufs[j] : "";
    }
    return 0;
}

int status_publish_result(status *s, const char *job, const char *part, const Patronsync__Counts *c,
                          Patronsync__Exception *const *exc, size_t nexc, const char *worker,
                          unsigned attempt)
{
    if (!status_up(s))
        return -1;
    char key[512], xkey[520];
    snprintf(key, sizeof(key), "ps:job:%s:part:%s", job, part);
    snprintf(xkey, sizeof(xkey), "%s:exc", key);
    char tmpkey[540];
    snprintf(tmpkey, sizeof(tmpkey), "%s:tmp", xkey);
    int n = 0;
    redisAppendCommand(s->ctx, "DEL %s", tmpkey);
    n++;
    /* Exceptions go to a temporary list first, then replace the real one in
     * one MULTI so a reader never sees half a result. */
    for (size_t i = 0; i < nexc; i += EXC_BATCH) {
        exc_batch eb;
        if (exc_batch_make(&eb, tmpkey, exc + i, nexc - i) < 0) {
            pipeline_replies(s, n);
            return -1;
        }
        redisAppendCommandArgv(s->ctx, eb.argc, eb.argv, eb.lens);
        n++;
        exc_batch_free(&eb);
    }
    redisAppendCommand(s->ctx, "MULTI");
    redisAppendCommand(s->ctx, "DEL %s %s", key, xkey);
    n += 2;
    if (nexc > 0) {
        redisAppendCommand(s->ctx, "RENAME %s %s", tmpkey, xkey);
        n++;
    }
    for (size_t i = 0; i < counts_nfields; i++) {
        uint64_t v = counts_get(c, i);
        redisAppendCommand(s->ctx, "HSET %s %s %llu", key, counts_fields[i].name, (unsigned long long)v);
        n++;
    }
    redisAppendCommand(s->ctx, "HSET %s worker %s attempt %u exceptions %llu published_ms %lld", key,
                       worker ? worker : "", attempt, (unsigned long long)nexc, (long long)now_ms());
    redisAppendCommand(s->ctx, "EXEC");
    n += 2;
    return pipeline_replies(s, n);
}

int status_read_result(status *s, const char *job, const char *part, Patronsync__Counts *c,
                       Patronsync__Exception ***exc, size_t *nexc)
{
    char key[512];
    snprintf(key, sizeof(key), "ps:job:%s:part:%s", job, part);
    redisReply *r = status_cmd(s, "HGETALL %s", key);
    if (r == NULL)
        return -1;
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
        freeReplyObject(r);
        return 0;
    }
    patronsync__counts__init(c);
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        for (size_t k = 0; k < counts_nfields; k++) {
            if (strcmp(r->element[i]->str, counts_fields[k].name) == 0) {
                int64_t v = 0;
                parse_i64(r->element[i + 1]->str, 0, INT64_MAX, &v);
                *counts_ptr(c, k) = (uint64_t)v;
            }
        }
    }
    freeReplyObject(r);
    if (exc == NULL)
        return 1;
    *exc = NULL;
    *nexc = 0;
    r = status_cmd(s, "LRANGE %s:exc 0 -1", key);
    if (r == NULL)
        return -1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
        *exc = calloc(r->elements, sizeof(**exc));
        if (*exc == NULL) {
            freeReplyObject(r);
            return -1;
        }
        for (size_t i = 0; i < r->elements; i++) {
            Patronsync__Exception *e = status_exception_decode(r->element[i]->str, r->element[i]->len);
            if (e != NULL)
                (*exc)[(*nexc)++] = e;
        }
    }
    freeReplyObject(r);
    return 1;
}

void status_event(status *s, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    char line[1100];
    snprintf(line, sizeof(line), "%lld %s", (long long)now_ms(), msg);
    if (status_do(s, "LPUSH ps:events %s", line) == 0)
        status_do(s, "LTRIM ps:events 0 999");
    status_do(s, "PUBLISH ps:events:live %s", line);
}

int status_job_progress(status *s, const char *job, const status_progress *p)
{
    int rc = status_job_set(s, job, SK_JOB,
                            "phase %s shards %llu shards_done %llu shards_failed %llu records %llu records_done %llu "
                            "records_total %llu rate %llu eta_s %lld progress_ms %lld",
                            p->phase, p->shards, p->shards_done, p->shards_failed, p->records_total,
                            p->records_done, p->records_total, p->rate, p->eta_s, (long long)now_ms());
    if (rc == 0) {
        char line[400];
        snprintf(line, sizeof(line), "%lld progress %s %s %llu/%llu", (long long)now_ms(), job, p->phase,
                 p->records_done, p->records_total);
        status_do(s, "PUBLISH ps:events:live %s", line);
    }
    return rc;
}

int status_job_parts_sum(status *s, const char *job, size_t nshards, Patronsync__Counts *c)
{
    patronsync__counts__init(c);
    int found = 0;
    for (size_t i = 0; i < nshards; i++) {
        char part[32];
        snprintf(part, sizeof(part), "s%06zu", i);
        Patronsync__Counts one;
        int r = status_read_result(s, job, part, &one, NULL, NULL);
        if (r < 0)
            return -1;
        if (r == 1) {
            counts_add(c, &one);
            found++;
        }
    }
    return found;
}

redisReply *status_shard_all(status *s, const char *job, unsigned long long shard)
{
    return status_cmd(s, "HGETALL ps:job:%s:shard:%llu", job, shard);
}

redisReply *status_schedules(status *s)
{
    return status_cmd(s, "HGETALL ps:schedules");
}

/* ---- the key layout ---- */

static const char *const jobkey_suffix[] = {
    [SK_JOB] = "", [SK_SUMMARY] = ":summary", [SK_PLANNED] = ":planned",
    [SK_NOTES] = ":notes", [SK_EXCEPTIONS] = ":exceptions",
};

static void job_key(char *out, size_t outlen, const char *job, status_jobkey k)
{
    snprintf(out, outlen, "ps:job:%s%s", job, jobkey_suffix[k]);
}

/* Read one bulk string "$len\r\ndata\r\n" of a formatted command. */
static const char *resp_bulk(const char *p, const char *end, const char **data, size_t *len)
{
    if (p >= end || *p != '$')
        return NULL;
    char *q;
    unsigned long long l = strtoull(p + 1, &q, 10);
    if (q + 2 > end || q[0] != '\r' || l > (unsigned long long)(end - q - 2))
        return NULL;
    *data = q + 2;
    *len = (size_t)l;
    return q + 2 + l + 2;
}

/* VERB KEY then the fields formatted by hiredis (its own escaping of each
 * argument: a value with spaces stays one argument). */
static int keyed_v(status *s, const char *verb, const char *key, const char *fields, va_list ap)
{
    char *cmd = NULL;
    int len = redisvFormatCommand(&cmd, fields, ap);
    if (len < 0)
        return -1;
    const char *p = cmd, *end = cmd + len;
    char *q;
    unsigned long n = strtoul(p + 1, &q, 10);
    p = q + 2;
    const char **argv = calloc(n + 2, sizeof(*argv));
    size_t *lens = calloc(n + 2, sizeof(*lens));
    int rc = -1;
    if (argv == NULL || lens == NULL)
        goto out;
    argv[0] = verb;
    lens[0] = strlen(verb);
    argv[1] = key;
    lens[1] = strlen(key);
    for (unsigned long i = 0; i < n; i++)
        if ((p = resp_bulk(p, end, &argv[i + 2], &lens[i + 2])) == NULL)
            goto out;
    redisReply *r = status_cmdargv(s, (int)(n + 2), argv, lens);
    if (r != NULL) {
        freeReplyObject(r);
        rc = 0;
    }
out:
    free(argv);
    free(lens);
    redisFreeCommand(cmd);
    return rc;
}

int status_job_set(status *s, const char *job, status_jobkey k, const char *fields, ...)
{
    char key[512];
    job_key(key, sizeof(key), job, k);
    va_list ap;
    va_start(ap, fields);
    int rc = keyed_v(s, "HSET", key, fields, ap);
    va_end(ap);
    return rc;
}

int status_shard_set(status *s, const char *job, unsigned long long shard, const char *fields, ...)
{
    char key[512];
    snprintf(key, sizeof(key), "ps:job:%s:shard:%llu", job, shard);
    va_list ap;
    va_start(ap, fields);
    int rc = keyed_v(s, "HSET", key, fields, ap);
    va_end(ap);
    return rc;
}

int status_job_counts(status *s, const char *job, status_jobkey k, const Patronsync__Counts *c)
{
    for (size_t i = 0; i < counts_nfields; i++)
        if (status_job_set(s, job, k, "%s %llu", counts_fields[i].name, (unsigned long long)counts_get(c, i)) < 0)
            return -1;
    return 0;
}

int status_job_setnx(status *s, const char *job, const char *field, const char *value)
{
    return status_do(s, "HSETNX ps:job:%s %s %s", job, field, value);
}

int status_job_note(status *s, const char *job, const char *note)
{
    return status_do(s, "RPUSH ps:job:%s:notes %s", job, note);
}

int status_job_exceptions(status *s, const char *job, Patronsync__Exception *const *exc, size_t n)
{
    char key[512];
    job_key(key, sizeof(key), job, SK_EXCEPTIONS);
    for (size_t i = 0; i < n; i += EXC_BATCH) {
        exc_batch eb;
        if (exc_batch_make(&eb, key, exc + i, n - i) < 0)
            return -1;
        redisReply *r = status_cmdargv(s, eb.argc, eb.argv, eb.lens);
        exc_batch_free(&eb);
        if (r == NULL)
            return -1;
        freeReplyObject(r);
    }
    return 0;
}

int status_job_clear(status *s, const char *job, unsigned mask)
{
    char keys[5][512];
    const char *argv[6] = {"DEL"};
    int n = 1;
    for (int k = SK_JOB; k <= SK_EXCEPTIONS; k++) {
        if (mask & SK_BIT(k)) {
            job_key(keys[k], sizeof(keys[k]), job, (status_jobkey)k);
            argv[n++] = keys[k];
        }
    }
    if (n == 1)
        return 0;
    redisReply *r = status_cmdargv(s, n, argv, NULL);
    if (r == NULL)
        return -1;
    freeReplyObject(r);
    return 0;
}

int status_job_index(status *s, const char *job, long long fired_ms)
{
    return status_do(s, "ZADD ps:jobs NX %lld %s", fired_ms, job);
}

int status_job_forget(status *s, const char *job)
{
    size_t removed;
    return status_job_forget_count(s, job, &removed);
}

int status_job_forget_count(status *s, const char *job, size_t *removed)
{
    *removed = 0;
    char cursor[32] = "0";
    do {
        redisReply *rr = status_cmd(s, "SCAN %s MATCH ps:job:%s:* COUNT 500", cursor, job);
        if (rr == NULL)
            return -1;
        if (rr->type != REDIS_REPLY_ARRAY || rr->elements != 2 || rr->element[0]->type != REDIS_REPLY_STRING) {
            freeReplyObject(rr);
            return -1;
        }
        str_copy(cursor, sizeof(cursor), rr->element[0]->str);
        redisReply *keys = rr->element[1];
        for (size_t i = 0; keys->type == REDIS_REPLY_ARRAY && i < keys->elements; i++)
            if (status_do(s, "DEL %s", keys->element[i]->str) == 0)
                (*removed)++;
        freeReplyObject(rr);
    } while (strcmp(cursor, "0") != 0);
    redisReply *r = status_cmd(s, "DEL ps:job:%s", job);
    if (r == NULL)
        return -1;
    if (r->type == REDIS_REPLY_INTEGER)
        *removed += (size_t)r->integer;
    freeReplyObject(r);
    if (status_do(s, "ZREM ps:jobs %s", job) < 0)
        return -1;
    return 0;
}

redisReply *status_job_get(status *s, const char *job, status_jobkey k, const char *field)
{
    char key[512];
    job_key(key, sizeof(key), job, k);
    return status_cmd(s, "HGET %s %s", key, field);
}

int status_job_state(status *s, const char *job, char *out, size_t outlen)
{
    redisReply *r = status_job_get(s, job, SK_JOB, "state");
    if (r == NULL)
        return -1;
    int found = r->type == REDIS_REPLY_STRING;
    if (found)
        str_copy(out, outlen, r->str);
    freeReplyObject(r);
    return found;
}

redisReply *status_job_all(status *s, const char *job, status_jobkey k)
{
    char key[512];
    job_key(key, sizeof(key), job, k);
    if (k == SK_NOTES || k == SK_EXCEPTIONS)
        return status_cmd(s, "LRANGE %s 0 -1", key);
    return status_cmd(s, "HGETALL %s", key);
}

redisReply *status_jobs_recent(status *s, size_t limit)
{
    return status_cmd(s, "ZREVRANGE ps:jobs 0 %lld", (long long)limit - 1);
}

int status_worker_set(status *s, const char *worker, const char *fmt, ...)
{
    char value[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(value, sizeof(value), fmt, ap);
    va_end(ap);
    return status_do(s, "HSET ps:workers %s %s", worker, value);
}

redisReply *status_workers(status *s)
{
    return status_cmd(s, "HGETALL ps:workers");
}

int status_schedules_begin(status *s)
{
    return status_do(s, "DEL ps:schedules:next");
}

int status_schedules_put(status *s, const char *name, const char *json)
{
    return status_do(s, "HSET ps:schedules:next %s %s", name, json);
}

int status_schedules_commit(status *s, size_t n, int ok)
{
    if (!ok)
        return -1;
    if (n > 0)
        return status_do(s, "RENAME ps:schedules:next ps:schedules");
    return status_do(s, "DEL ps:schedules");
}

int status_ping(status *s)
{
    redisReply *r = status_cmd(s, "PING");
    if (r == NULL)
        return 0;
    freeReplyObject(r);
    return 1;
}
