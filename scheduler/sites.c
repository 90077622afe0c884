/* sites: site.add, site.import and patron.show on the patron store. */
#include "sites.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <strings.h>

#include "csvscan.h"
#include "exitcodes.h"
#include "store.h"

static store *open_store(scheduler *s, int flags, Patronsync__ControlReply *rep, strbuf *body)
{
    char err[ERRLEN];
    store *st = store_open(s->cfg->store_path, 8, flags, err, sizeof(err));
    if (st == NULL)
        reply_fail(rep, body, PS_EXIT_FAILED, "%s", err);
    return st;
}

void sites_add(scheduler *s, const char *user, const Patronsync__ControlRequest *rq, Patronsync__ControlReply *rep,
               strbuf *body)
{
    if (rq->n_args != 2) {
        reply_fail(rep, body, PS_EXIT_USAGE, "site add: expected SHORT_NAME \"Name\"");
        return;
    }
    const char *shortname = rq->args[0];
    if (shortname[0] == '\0' || utf8_chars(shortname, strlen(shortname)) > 10) {
        reply_fail(rep, body, PS_EXIT_USAGE, "site short name '%s' must be 1 to 10 characters", shortname);
        return;
    }
    store *st = open_store(s, 0, rep, body);
    if (st == NULL)
        return;
    char err[ERRLEN];
    const char *level = reply_opt(rq, "access_level"); /* the site's default access level (docs/RULES.md) */
    if (store_site_upsert(st, shortname, rq->args[1], reply_flag(rq, "media"), err, sizeof(err)) < 0 ||
        (level && store_site_set_access_level(st, shortname, level, err, sizeof(err)) < 0))
        reply_fail(rep, body, PS_EXIT_FAILED, "%s", err);
    else
        sb_printf(body, "site %s saved\n", shortname);
    store_close(&st);
}

static int truthy(const char *v)
{
    return strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0 || strcmp(v, "1") == 0 || strcasecmp(v, "y") == 0 ||
           strcasecmp(v, "t") == 0;
}

void sites_import(scheduler *s, const char *user, const Patronsync__ControlRequest *rq, Patronsync__ControlReply *rep,
                  strbuf *body)
{
    const char *name = reply_opt(rq, "file_name");
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
    size_t number_col = 3; /* short_name,name,media,school_number; a header row may say otherwise */
    while (row && csvscan_next(&sc, &r)) {
        if (csvrow_parse(row, (const char *)rq->payload.data + r.off, r.len, err, sizeof(err)) < 0) {
            sb_printf(&problems, "%s:%llu: %s\n", name, (unsigned long long)r.line, err);
            bad++;
            continue;
        }
        const char *const *f = csvrow_fields(row);
        size_t nf = csvrow_count(row);
        if (r.line == 1 && nf > 0 && strcasecmp(f[0], "short_name") == 0) {
            number_col = SIZE_MAX; /* header: its school_number column, if any */
            for (size_t k = 0; k < nf; k++)
                if (strcasecmp(f[k], "school_number") == 0 || strcasecmp(f[k], "number") == 0)
                    number_col = k;
            continue;
        }
        if (nf < 2 || f[0][0] == '\0' || utf8_chars(f[0], strlen(f[0])) > 10) {
            sb_printf(&problems, "%s:%llu: expected short_name (1-10 characters),name[,media[,school_number]]\n", name,
                      (unsigned long long)r.line);
            bad++;
            continue;
        }
        int media = nf >= 3 ? truthy(f[2]) : 1;
        const char *number = number_col < nf ? f[number_col] : "";
        if (store_site_upsert(st, f[0], f[1], media, err, sizeof(err)) < 0 ||
            (*number && store_site_set_number(st, f[0], number, err, sizeof(err)) < 0)) {
            sb_printf(&problems, "%s:%llu: %s\n", name, (unsigned long long)r.line, err);
            bad++;
            continue;
        }
        n++;
    }
    if (store_commit(st, err, sizeof(err)) < 0)
        reply_fail(rep, body, PS_EXIT_FAILED, "%s", err);
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

void sites_patron_show(scheduler *s, const char *user, const Patronsync__ControlRequest *rq,
                       Patronsync__ControlReply *rep, strbuf *body)
{
    if (rq->n_args != 1) {
        reply_fail(rep, body, PS_EXIT_USAGE, "patron show: expected a District ID");
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
        reply_fail(rep, body, PS_EXIT_FAILED, "%s", err);
    } else if (found == 0) {
        reply_fail(rep, body, PS_EXIT_NOT_FOUND, "no patron with District ID '%s'", rq->args[0]);
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
