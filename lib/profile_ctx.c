/* profile_ctx: the parse context of the profile's passes (see profile_ctx.h). */
#include "profile_ctx.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "profile_text.h"

int pctx_read(pctx *c, const char *text, size_t len)
{
    if (props_read(&c->pr, text, len, c->name, c->err, c->errlen) != 0)
        return -1;
    c->ents = calloc(c->pr.n ? c->pr.n : 1, sizeof(entry));
    if (c->ents == NULL)
        return pctx_oom(c);
    c->n = 0;
    for (size_t i = 0; i < c->pr.n; i++) {
        const props_line *l = &c->pr.v[i];
        if (l->dead)
            continue;
        entry *e = &c->ents[c->n++];
        e->key = l->key;
        e->val = l->val;
        e->keylen = l->keylen;
        e->vallen = l->vallen;
        e->text = l->text;
        e->line = l->line;
    }
    return 0;
}

void pctx_free(pctx *c)
{
    free(c->ents);
    c->ents = NULL;
    c->n = 0;
    props_free(&c->pr);
}

void pctx_err(pctx *c, int line, const char *text, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    txt_line_verr(c->err, c->errlen, c->name, line, text, fmt, ap);
    va_end(ap);
}

int pctx_oom(pctx *c)
{
    return txt_oom(c->err, c->errlen, c->name);
}
