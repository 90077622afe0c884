/* refdata: the control verbs for the reference data the patron rules use
 * (docs/RULES.md): patron types, access levels and resource groups, and
 * the district's default patron type and resource group.
 *   ref.add KIND NAME...   (opt default=1: NAME is also the default)
 *   ref.list               every list, the defaults, each site's default access level */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "patron.h"
#include "refdata.h"
#include "reply.h"
#include "store.h"

static const struct {
    const char *name;
    enum store_ref kind;
    int field; /* its patron field, for the length limit */
} kinds[] = {
    {"patron-type", STORE_REF_PATRON_TYPE, PF_PATRON_TYPE},
    {"access-level", STORE_REF_ACCESS_LEVEL, PF_ACCESS_LEVEL},
    {"resource-group", STORE_REF_RESOURCE_GROUP, PF_RESOURCE_GROUP},
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

void refdata_add(scheduler *s, const char *user, const Patronsync__ControlRequest *rq, Patronsync__ControlReply *rep,
                 strbuf *body)
{
    size_t k = NKINDS;
    if (rq->n_args >= 1)
        for (k = 0; k < NKINDS; k++)
            if (strcmp(rq->args[0], kinds[k].name) == 0)
                break;
    if (rq->n_args < 2 || k == NKINDS) {
        reply_fail(rep, body, 2, "ref add: expected patron-type|access-level|resource-group NAME... [--default]");
        return;
    }
    int as_default = reply_flag(rq, "default");
    if (as_default && (rq->n_args != 2 || kinds[k].kind == STORE_REF_ACCESS_LEVEL)) {
        reply_fail(rep, body, 2, "ref add: --default takes one patron type or resource group "
                             "(access levels have a default per site: site add --access-level)");
        return;
    }
    for (size_t i = 1; i < rq->n_args; i++) {
        const char *n = rq->args[i];
        if (n[0] == '\0' || utf8_chars(n, strlen(n)) > (size_t)patron_fields[kinds[k].field].maxlen) {
            reply_fail(rep, body, 2, "%s '%s' must be 1 to %d characters", kinds[k].name, n,
                   patron_fields[kinds[k].field].maxlen);
            return;
        }
    }
    char err[ERRLEN];
    store *st = store_open(s->cfg->store_path, 8, 0, err, sizeof(err));
    if (st == NULL) {
        reply_fail(rep, body, 1, "%s", err);
        return;
    }
    if (store_begin(st, 1, err, sizeof(err)) < 0) {
        reply_fail(rep, body, 1, "%s", err);
        store_close(&st);
        return;
    }
    int added = 0;
    for (size_t i = 1; i < rq->n_args; i++) {
        int r = as_default ? store_ref_set_default(st, kinds[k].kind, rq->args[i], err, sizeof(err))
                           : store_ref_add(st, kinds[k].kind, rq->args[i], NULL, err, sizeof(err));
        if (r < 0) {
            store_rollback(st);
            reply_fail(rep, body, 1, "%s", err);
            store_close(&st);
            return;
        }
        added += r == 1;
    }
    if (store_commit(st, err, sizeof(err)) < 0)
        reply_fail(rep, body, 1, "%s", err);
    else if (as_default)
        sb_printf(body, "default %s: %s\n", kinds[k].name, rq->args[1]);
    else
        sb_printf(body, "%d %s(s) added, %zu known already\n", added, kinds[k].name, rq->n_args - 1 - (size_t)added);
    store_close(&st);
}

/* One kind's names and default. 0, or -1 with err. */
static int list_kind(store *st, size_t k, int json, strbuf *body, char *err, size_t errlen)
{
    char **v = NULL;
    size_t n = 0;
    char dflt[256] = "";
    if (store_ref_names(st, kinds[k].kind, &v, &n, err, errlen) < 0 ||
        (kinds[k].kind != STORE_REF_ACCESS_LEVEL && store_ref_default(st, kinds[k].kind, dflt, sizeof(dflt), err, errlen) < 0)) {
        store_names_free(v, n);
        return -1;
    }
    if (json) {
        sb_printf(body, "%s\"%s\":{\"names\":[", k ? "," : "", kinds[k].name);
        for (size_t i = 0; i < n; i++) {
            if (i)
                sb_puts(body, ",");
            sb_json_str(body, v[i], strlen(v[i]));
        }
        sb_puts(body, "],\"default\":");
        sb_json_str(body, dflt, strlen(dflt));
        sb_puts(body, "}");
    } else {
        sb_printf(body, "%s (%zu)%s%s%s\n", kinds[k].name, n, *dflt ? ", default " : "", dflt,
                  n == 0 && kinds[k].kind != STORE_REF_PATRON_TYPE ? ": none listed, any value is taken" : "");
        for (size_t i = 0; i < n; i++)
            sb_printf(body, "  %s\n", v[i]);
    }
    store_names_free(v, n);
    return 0;
}

/* Each site's default access level (nothing when the sites cannot be read). */
static void list_site_levels(store *st, int json, strbuf *body)
{
    char err[ERRLEN];
    store_site *sites = NULL;
    size_t ns = 0;
    if (store_sites(st, &sites, &ns, err, sizeof(err)) < 0)
        return;
    if (json)
        sb_puts(body, ",\"site_access_levels\":{");
    else
        sb_puts(body, "default access level per site\n");
    for (size_t i = 0; i < ns; i++) {
        if (json) {
            sb_printf(body, "%s", i ? "," : "");
            sb_json_str(body, sites[i].short_name, strlen(sites[i].short_name));
            sb_puts(body, ":");
            sb_json_str(body, sites[i].default_access_level, strlen(sites[i].default_access_level));
        } else {
            sb_printf(body, "  %-10s %s\n", sites[i].short_name,
                      sites[i].default_access_level[0] ? sites[i].default_access_level : "(none)");
        }
    }
    if (json)
        sb_puts(body, "}");
    free(sites);
}

void refdata_list(scheduler *s, const char *user, const Patronsync__ControlRequest *rq, Patronsync__ControlReply *rep,
                  strbuf *body)
{
    char err[ERRLEN];
    store *st = store_open(s->cfg->store_path, 8, STORE_READONLY, err, sizeof(err));
    if (st == NULL) {
        reply_fail(rep, body, 1, "%s", err);
        return;
    }
    if (rq->json)
        sb_puts(body, "{");
    for (size_t k = 0; k < NKINDS; k++) {
        if (list_kind(st, k, rq->json, body, err, sizeof(err)) < 0) {
            reply_fail(rep, body, 1, "%s", err);
            store_close(&st);
            return;
        }
    }
    list_site_levels(st, rq->json, body);
    if (rq->json)
        sb_puts(body, "}\n");
    store_close(&st);
}
