/* status: hiredis with lazy reconnect and back-off, and the key layout. */
#include "status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "summary.h"
#include "util.h"

struct status {
    char host[256];
    int port;
    int db;
    redisContext *ctx;
    int64_t next_try_ms;
    int64_t backoff_ms;
};

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
    const char *colon = strrchr(p, ':');
    const char *slash = strchr(p, '/');
    if (colon == NULL || (slash != NULL && slash < colon)) {
        err_set(err, errlen, "redis url '%s': expected redis://host:port[/db]", url);
        free(s);
        return NULL;
    }
    size_t hl = (size_t)(colon - p);
    if (hl == 0 || hl >= sizeof(s->host)) {
        err_set(err, errlen, "redis url '%s': bad host", url);
        free(s);
        return NULL;
    }
    memcpy(s->host, p, hl);
    s->host[hl] = '\0';
    char portbuf[16];
    size_t pl = slash ? (size_t)(slash - colon - 1) : strlen(colon + 1);
    int64_t v;
    if (pl == 0 || pl >= sizeof(portbuf)) {
        err_set(err, errlen, "redis url '%s': bad port", url);
        free(s);
        return NULL;
    }
    memcpy(portbuf, colon + 1, pl);
    portbuf[pl] = '\0';
    if (parse_i64(portbuf, 1, 65535, &v) < 0) {
        err_set(err, errlen, "redis url '%s': bad port", url);
        free(s);
        return NULL;
    }
    s->port = (int)v;
    if (slash != NULL && slash[1] != '\0') {
        if (parse_i64(slash + 1, 0, 1000, &v) < 0) {
            err_set(err, errlen, "redis url '%s': bad database number", url);
            free(s);
            return NULL;
        }
        s->db = (int)v;
    }
    return s;
}

void status_destroy(status **sp)
{
    if (sp == NULL || *sp == NULL)
        return;
    if ((*sp)->ctx)
        redisFree((*sp)->ctx);
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
    const size_t batch = 500;
    for (size_t i = 0; i < nexc; i += batch) {
        size_t m = nexc - i < batch ? nexc - i : batch;
        const char **argv = calloc(m + 2, sizeof(char *));
        size_t *lens = calloc(m + 2, sizeof(size_t));
        char **bufs = calloc(m, sizeof(char *));
        if (!argv || !lens || !bufs) {
            free(argv);
            free(lens);
            free(bufs);
            pipeline_replies(s, n);
            return -1;
        }
        argv[0] = "RPUSH";
        lens[0] = 5;
        argv[1] = tmpkey;
        lens[1] = strlen(tmpkey);
        for (size_t j = 0; j < m; j++) {
            status_exception_encode(exc[i + j], &bufs[j], &lens[j + 2]);
            argv[j + 2] = bufs[j] ? bufs[j] : "";
        }
        redisAppendCommandArgv(s->ctx, (int)(m + 2), argv, lens);
        n++;
        for (size_t j = 0; j < m; j++)
            free(bufs[j]);
        free(argv);
        free(lens);
        free(bufs);
    }
    redisAppendCommand(s->ctx, "MULTI");
    redisAppendCommand(s->ctx, "DEL %s %s", key, xkey);
    n += 2;
    if (nexc > 0) {
        redisAppendCommand(s->ctx, "RENAME %s %s", tmpkey, xkey);
        n++;
    }
    for (size_t i = 0; i < summary_ncounts; i++) {
        uint64_t v = *summary_count_ptr((Patronsync__Counts *)c, i);
        redisAppendCommand(s->ctx, "HSET %s %s %llu", key, summary_counts[i].name, (unsigned long long)v);
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
        for (size_t k = 0; k < summary_ncounts; k++) {
            if (strcmp(r->element[i]->str, summary_counts[k].name) == 0) {
                int64_t v = 0;
                parse_i64(r->element[i + 1]->str, 0, INT64_MAX, &v);
                *summary_count_ptr(c, k) = (uint64_t)v;
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
}
