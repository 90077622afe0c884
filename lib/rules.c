/* rules: validations and outcomes of EXCEPTIONS.md for one record. */
#include "rules.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

void exc_list_init(exc_list *l)
{
    memset(l, 0, sizeof(*l));
}

static void exc_free_one(Patronsync__Exception *e)
{
    if (e == NULL)
        return;
    free(e->district_id);
    free(e->name);
    free(e->outcome);
    free(e->message);
    free(e);
}

void exc_list_free(exc_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        exc_free_one(l->v[i]);
    free(l->v);
    exc_list_init(l);
}

int exc_add(exc_list *l, uint64_t line, const char *district_id, const char *name, const char *outcome,
            const char *fmt, ...)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        Patronsync__Exception **v = realloc(l->v, cap * sizeof(*v));
        if (v == NULL)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    Patronsync__Exception *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return -1;
    patronsync__exception__init(e);
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    e->line = line;
    e->district_id = strdup(district_id ? district_id : "");
    e->name = strdup(name ? name : "");
    e->outcome = strdup(outcome);
    e->message = strdup(msg);
    if (!e->district_id || !e->name || !e->outcome || !e->message) {
        exc_free_one(e);
        return -1;
    }
    l->v[l->n++] = e;
    return 0;
}

static int site_cmp(const void *a, const void *b)
{
    return strcmp(((const store_site *)a)->short_name, ((const store_site *)b)->short_name);
}

const store_site *rules_site(const rules_ctx *ctx, const char *short_name)
{
    store_site k;
    str_copy(k.short_name, sizeof(k.short_name), short_name);
    if (strlen(short_name) >= sizeof(k.short_name))
        return NULL;
    return bsearch(&k, ctx->sites, ctx->nsites, sizeof(store_site), site_cmp);
}

void rules_display_name(const patron_rec *rec, char *out, size_t outlen)
{
    const char *last = patron_rec_get(rec, PF_LAST_NAME);
    const char *first = patron_rec_get(rec, PF_FIRST_NAME);
    if (*first)
        snprintf(out, outlen, "%s, %s", last, first);
    else
        snprintf(out, outlen, "%s", last);
}

int rules_match_key(const rules_ctx *ctx, uint64_t line, const patron_rec *mapped, const char **key,
                    exc_list *exc)
{
    char name[200];
    rules_display_name(mapped, name, sizeof(name));
    const char *id = patron_rec_get(mapped, PF_DISTRICT_ID);
    if (ctx->match_district_id) {
        if (*id == '\0') {
            exc_add(exc, line, "", name, "SKIP", "District ID is required.");
            return 0;
        }
        if (utf8_chars(id, strlen(id)) > (size_t)patron_fields[PF_DISTRICT_ID].maxlen) {
            exc_add(exc, line, id, name, "SKIP",
                    "Unable to match using District ID; District ID '%s' exceeds maximum length of 40 characters.",
                    id);
            return 0;
        }
        *key = id;
        return 1;
    }
    *key = patron_rec_get(mapped, PF_BARCODE);
    if (**key == '\0') {
        exc_add(exc, line, id, name, "SKIP", "No barcode match criteria specified.");
        return 0;
    }
    return 1;
}

/* Cut a value over its field's length, with the TRUNC warning. */
static int truncate_field(patron_rec *out, int f, uint64_t line, const char *id, const char *name,
                          exc_list *exc, int *warned)
{
    int maxlen = patron_fields[f].maxlen;
    if (maxlen <= 0 || out->state[f] != PV_VALUE)
        return 0;
    const char *v = patron_rec_get(out, f);
    size_t len = out->len[f];
    if (utf8_chars(v, len) <= (size_t)maxlen)
        return 0;
    size_t cut = utf8_prefix(v, len, (size_t)maxlen);
    out->len[f] = (uint32_t)cut;
    out->arena[out->off[f] + cut] = '\0';
    *warned = 1;
    return exc_add(exc, line, id, name, "TRUNC", "%s too long; shortened to fit.", patron_fields[f].label);
}

int rules_decide(const rules_ctx *ctx, uint64_t line, const patron_rec *mapped, const patron_rec *existing,
                 patron_rec *out, exc_list *exc, int *warned)
{
    char name[200];
    rules_display_name(mapped, name, sizeof(name));
    const char *id = patron_rec_get(mapped, PF_DISTRICT_ID);
    if (*id == '\0' && existing != NULL)
        id = patron_rec_get(existing, PF_DISTRICT_ID);
    *warned = 0;
    patron_rec_reset(out);
    size_t mark = exc->n;

    /* Overlay: mapped values win; unset/omitted fields keep what is stored. */
    for (int f = 0; f < PF__COUNT; f++) {
        const patron_rec *src = NULL;
        if (mapped->state[f] == PV_VALUE)
            src = mapped;
        else if (existing != NULL)
            src = existing;
        const char *v = src ? patron_rec_get(src, f) : "";
        size_t len = src ? src->len[f] : 0;
        if (src == NULL)
            len = 0;
        if (patron_rec_set(out, f, v, len, PV_VALUE) < 0)
            return -1;
    }

    /* Site: the mapped one, else the default, else what is stored. */
    const char *site = patron_rec_get(out, PF_SITE_SHORT_NAME);
    if (mapped->state[PF_SITE_SHORT_NAME] != PV_VALUE || *patron_rec_get(mapped, PF_SITE_SHORT_NAME) == '\0') {
        if (ctx->site_default && *ctx->site_default) {
            patron_rec_set(out, PF_SITE_SHORT_NAME, ctx->site_default, strlen(ctx->site_default), PV_VALUE);
        } else if (existing == NULL || *patron_rec_get(existing, PF_SITE_SHORT_NAME) == '\0') {
            exc_add(exc, line, id, name, "SKIP", "Site short name is required.");
            return 0;
        } else {
            const char *es = patron_rec_get(existing, PF_SITE_SHORT_NAME);
            patron_rec_set(out, PF_SITE_SHORT_NAME, es, strlen(es), PV_VALUE);
        }
        site = patron_rec_get(out, PF_SITE_SHORT_NAME);
    }
    if (rules_site(ctx, site) == NULL) {
        exc_add(exc, line, id, name, "SKIP", "Site short name '%s' does not exist.", site);
        return 0;
    }

    /* Last name. */
    if (*patron_rec_get(mapped, PF_LAST_NAME) == '\0' && mapped->state[PF_LAST_NAME] != PV_UNSET) {
        if (existing == NULL) {
            exc_add(exc, line, id, name, "SKIP",
                    "Last name is required for all patrons; Last name was blank; ignored.");
            return 0;
        }
        const char *el = patron_rec_get(existing, PF_LAST_NAME);
        patron_rec_set(out, PF_LAST_NAME, el, strlen(el), PV_VALUE);
        exc_add(exc, line, id, name, "KEEP", "Last name is required for all patrons; Last name was missing.");
        *warned = 1;
    } else if (existing == NULL && *patron_rec_get(out, PF_LAST_NAME) == '\0') {
        exc_add(exc, line, id, name, "SKIP", "Last name is required for all patrons; Last name was blank; ignored.");
        return 0;
    }

    /* Invalid dates keep the stored value. */
    for (int f = 0; f < PF__COUNT; f++) {
        if (mapped->state[f] != PV_INVALID)
            continue;
        const char *ev = existing ? patron_rec_get(existing, f) : "";
        patron_rec_set(out, f, ev, strlen(ev), PV_VALUE);
        const char *what = f == PF_BIRTHDATE ? "Birth Date" : f == PF_CARD_EXPIRES ? "Card Expiration" : patron_fields[f].label;
        exc_add(exc, line, id, name, "KEEP", "%s invalid; field left untouched.", what);
        *warned = 1;
    }

    for (int f = 0; f < PF__COUNT; f++)
        if (truncate_field(out, f, line, id, name, exc, warned) < 0)
            return -1;
    (void)mark;
    return 1;
}
