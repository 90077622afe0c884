/* reply: request options and refusals for the control verbs. */
#include "reply.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *reply_opt(const Patronsync__ControlRequest *rq, const char *key)
{
    for (size_t i = 0; i < rq->n_opts; i++)
        if (strcmp(rq->opts[i]->key, key) == 0)
            return rq->opts[i]->value;
    return NULL;
}

int reply_flag(const Patronsync__ControlRequest *rq, const char *key)
{
    const char *v = reply_opt(rq, key);
    return v && strcmp(v, "1") == 0;
}

int reply_fail(Patronsync__ControlReply *rep, strbuf *body, int code, const char *fmt, ...)
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

void reply_job_id(strbuf *body, int json, const char *id)
{
    if (json)
        sb_printf(body, "{\"job_id\":\"%s\"}\n", id);
    else
        sb_printf(body, "%s\n", id);
}
