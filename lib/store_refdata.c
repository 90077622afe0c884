/* store_refdata: the reference data the patron rules read (sites, patron
 * types, access levels, resource groups, defaults, homerooms) and the
 * patrons' secondary site associations (docs/RULES.md). */
#include "store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int store_sites(store *s, store_site **out, size_t *n, char *err, size_t errlen)
{
    sqlite3_stmt *st = store_stmt(s, ST_SITES, err, errlen);
    if (st == NULL)
        return -1;
    size_t cap = 0, cnt = 0;
    store_site *v = NULL;
    int ok = array_grow(&v, &cap, 16, sizeof(*v), 16) == 0;
    while (ok && sqlite3_step(st) == SQLITE_ROW) {
        if (array_grow(&v, &cap, cnt + 1, sizeof(*v), 16) < 0)
            break;
        store_site *x = &v[cnt++];
        str_copy(x->short_name, sizeof(x->short_name), (const char *)sqlite3_column_text(st, 0));
        str_copy(x->name, sizeof(x->name), (const char *)sqlite3_column_text(st, 1));
        x->media = sqlite3_column_int(st, 2);
        str_copy(x->default_access_level, sizeof(x->default_access_level),
                 (const char *)sqlite3_column_text(st, 3));
        str_copy(x->school_number, sizeof(x->school_number), (const char *)sqlite3_column_text(st, 4));
    }
    sqlite3_reset(st);
    if (v == NULL) {
        err_set(err, errlen, "out of memory reading sites");
        return -1;
    }
    *out = v;
    *n = cnt;
    return 0;
}

int store_site_upsert(store *s, const char *short_name, const char *name, int media, char *err, size_t errlen)
{
    char what[64];
    snprintf(what, sizeof(what), "saving site %s", short_name);
    return store_run(s, ST_SITE_UPSERT, what, err, errlen, "tti", short_name, name, (int64_t)media);
}

int store_site_set_number(store *s, const char *short_name, const char *number, char *err, size_t errlen)
{
    return store_run(s, ST_SITE_NUMBER, "saving a site's school number", err, errlen, "tt", number, short_name);
}

static const char *const ref_kind_name[3] = {"patron_type", "access_level", "resource_group"};
static const char *const ref_kind_label[3] = {"patron type", "access level", "resource group"};

static int ref_kind_ok(enum store_ref kind, char *err, size_t errlen)
{
    if ((int)kind < 0 || kind > STORE_REF_RESOURCE_GROUP) {
        err_set(err, errlen, "store: unknown kind of reference data %d", (int)kind);
        return 0;
    }
    return 1;
}

void store_names_free(char **v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Every first-column text of a statement into a new array. */
static int collect_names(store *s, sqlite3_stmt *st, const char *what, char ***out, size_t *n, char *err,
                         size_t errlen)
{
    char **v = NULL;
    size_t cnt = 0, cap = 0;
    for (;;) {
        int rc = store_step_row(s, st, what, err, errlen);
        if (rc < 0) {
            store_names_free(v, cnt);
            return -1;
        }
        if (rc == 0)
            break;
        if (cnt == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **nv = realloc(v, ncap * sizeof(*v));
            if (nv == NULL)
                goto oom;
            v = nv;
            cap = ncap;
        }
        const unsigned char *t = sqlite3_column_text(st, 0);
        v[cnt] = strdup(t ? (const char *)t : "");
        if (v[cnt] == NULL)
            goto oom;
        cnt++;
    }
    sqlite3_reset(st);
    *out = v;
    *n = cnt;
    return 0;
oom:
    sqlite3_reset(st);
    store_names_free(v, cnt);
    err_set(err, errlen, "out of memory reading %s", what);
    return -1;
}

int store_ref_names(store *s, enum store_ref kind, char ***out, size_t *n, char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    if (!ref_kind_ok(kind, err, errlen))
        return -1;
    sqlite3_stmt *st = store_stmt(s, ST_REF_NAMES + (int)kind, err, errlen);
    if (st == NULL)
        return -1;
    return collect_names(s, st, ref_kind_name[kind], out, n, err, errlen);
}

int store_ref_canonical(store *s, enum store_ref kind, const char *name, char *canon, size_t canonlen, char *err,
                        size_t errlen)
{
    if (!ref_kind_ok(kind, err, errlen))
        return -1;
    sqlite3_stmt *st = store_stmt(s, ST_REF_FIND + (int)kind, err, errlen);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    char what[320];
    snprintf(what, sizeof(what), "looking up %s '%s'", ref_kind_label[kind], name);
    int found = store_step_row(s, st, what, err, errlen);
    if (found == 1)
        str_copy(canon, canonlen, (const char *)sqlite3_column_text(st, 0));
    sqlite3_reset(st);
    return found;
}

int store_ref_add(store *s, enum store_ref kind, const char *name, const char *job, char *err, size_t errlen)
{
    if (!ref_kind_ok(kind, err, errlen))
        return -1;
    int found = store_ask(s, ST_REF_FIND + (int)kind, "looking up reference data", err, errlen, "t", name);
    if (found != 0)
        return found < 0 ? -1 : 0;
    /* Access levels keep no job. */
    const char *spec = kind == STORE_REF_ACCESS_LEVEL ? "t" : "tt";
    if (store_run(s, ST_REF_ADD + (int)kind, "adding reference data", err, errlen, spec, name, job) < 0)
        return -1;
    return 1;
}

int store_ref_default(store *s, enum store_ref kind, char *out, size_t outlen, char *err, size_t errlen)
{
    str_copy(out, outlen, "");
    if (!ref_kind_ok(kind, err, errlen))
        return -1;
    sqlite3_stmt *st = store_stmt(s, ST_REF_DEFAULT, err, errlen);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, ref_kind_name[kind], -1, SQLITE_STATIC);
    int r = store_step_row(s, st, "reading a default", err, errlen);
    if (r == 1)
        str_copy(out, outlen, (const char *)sqlite3_column_text(st, 0));
    sqlite3_reset(st);
    return r < 0 ? -1 : 0;
}

int store_ref_set_default(store *s, enum store_ref kind, const char *name, char *err, size_t errlen)
{
    if (!ref_kind_ok(kind, err, errlen))
        return -1;
    if (kind == STORE_REF_ACCESS_LEVEL) {
        err_set(err, errlen, "access levels have a default per site (site add --access-level)");
        return -1;
    }
    if (store_ref_add(s, kind, name, NULL, err, errlen) < 0)
        return -1;
    /* The default is kept in the list's own spelling. */
    char canon[256];
    if (store_ref_canonical(s, kind, name, canon, sizeof(canon), NULL, 0) != 1)
        str_copy(canon, sizeof(canon), name);
    return store_run(s, ST_REF_SET_DEFAULT, "saving a default", err, errlen, "tt", ref_kind_name[kind], canon);
}

int store_site_set_access_level(store *s, const char *short_name, const char *level, char *err, size_t errlen)
{
    if (store_run(s, ST_SITE_LEVEL, "setting a site's access level", err, errlen, "tt", level, short_name) < 0)
        return -1;
    if (sqlite3_changes(s->db) != 1) {
        err_set(err, errlen, "site '%s' does not exist", short_name);
        return -1;
    }
    return 0;
}

int store_homeroom_add(store *s, const char *site, const char *name, const char *job, char *err, size_t errlen)
{
    int found = store_ask(s, ST_HOMEROOM_FIND, "looking up a homeroom", err, errlen, "tt", site, name);
    if (found != 0)
        return found < 0 ? -1 : 0;
    return store_homeroom_insert(s, site, name, job, err, errlen) < 0 ? -1 : 1;
}

int store_homeroom_insert(store *s, const char *site, const char *name, const char *job, char *err, size_t errlen)
{
    return store_run(s, ST_HOMEROOM_ADD, "adding a homeroom", err, errlen, "ttt", site, name, job);
}

int store_homerooms_each(store *s, int (*fn)(void *arg, const char *site, const char *name), void *arg, char *err,
                         size_t errlen)
{
    sqlite3_stmt *q = store_stmt(s, ST_HOMEROOMS, err, errlen);
    if (q == NULL)
        return -1;
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const unsigned char *site = sqlite3_column_text(q, 0), *name = sqlite3_column_text(q, 1);
        if (fn(arg, site ? (const char *)site : "", name ? (const char *)name : "") < 0) {
            err_set(err, errlen, "out of memory");
            sqlite3_reset(q);
            return -1;
        }
    }
    if (rc != SQLITE_DONE)
        err_set(err, errlen, "store: reading homerooms: %s", sqlite3_errmsg(s->db));
    sqlite3_reset(q);
    return rc == SQLITE_DONE ? 0 : -1;
}

int store_assoc_has(store *s, int64_t patron_id, const char *site, char *err, size_t errlen)
{
    return store_ask(s, ST_ASSOC_HAS, "looking up a site association", err, errlen, "it", patron_id, site);
}

int store_assoc_add(store *s, int64_t patron_id, const char *site, const char *job, char *err, size_t errlen)
{
    if (store_run(s, ST_ASSOC_ADD, "adding a site association", err, errlen, "itt", patron_id, site, job) < 0)
        return -1;
    return sqlite3_changes(s->db) == 1 ? 1 : 0;
}

int store_assoc_remove(store *s, int64_t patron_id, const char *site, char *err, size_t errlen)
{
    return store_run(s, ST_ASSOC_DEL, "removing a site association", err, errlen, "it", patron_id, site);
}

int store_assoc_list(store *s, int64_t patron_id, char ***out, size_t *n, char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = store_stmt(s, ST_ASSOC_LIST, err, errlen);
    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, patron_id);
    return collect_names(s, st, "site associations", out, n, err, errlen);
}

