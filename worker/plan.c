/* plan: the parallel, read-only phase of a job for one shard — parse with
 * libcsv, map with the profile, validate, compare with the store — ending
 * in a staged plan file and the shard's published result. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "csvscan.h"
#include "log.h"
#include "profile.h"
#include "rules.h"
#include "util.h"
#include "worker.h"

int plan_path(const ps_config *c, const char *job, unsigned shard, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "%s/%s/shard-%06u.plan", c->stage_dir, job, shard);
    return (n < 0 || (size_t)n >= outlen) ? -1 : 0;
}

/* One parsed profile is kept: consecutive shards of a job share it. */
static profile *cached_profile;
static uint64_t cached_profile_hash;

static profile *get_profile(const char *name, const char *text, char *err, size_t errlen)
{
    uint64_t h = hash64(text, strlen(text), HASH64_SEED);
    if (cached_profile != NULL && h == cached_profile_hash)
        return cached_profile;
    profile_destroy(&cached_profile);
    cached_profile = profile_parse(text, strlen(text), name, err, errlen);
    cached_profile_hash = h;
    return cached_profile;
}

/* A Change owning one block: the struct, the value pointers and the text
 * (rec has every field as PV_VALUE, as rules_decide leaves it). */
static Patronsync__Change *change_new(int op, uint64_t line, const char *key, int64_t id,
                                      const patron_rec *rec)
{
    size_t keylen = strlen(key);
    size_t need = sizeof(Patronsync__Change) + PF__COUNT * sizeof(char *) + rec->arena_len + keylen + 1;
    char *block = malloc(need);
    if (block == NULL)
        return NULL;
    Patronsync__Change *c = (Patronsync__Change *)block;
    patronsync__change__init(c);
    char **vals = (char **)(block + sizeof(*c));
    char *text = (char *)(vals + PF__COUNT);
    memcpy(text, rec->arena, rec->arena_len);
    char *k = text + rec->arena_len;
    memcpy(k, key, keylen + 1);
    for (int f = 0; f < PF__COUNT; f++)
        vals[f] = rec->state[f] == PV_VALUE ? text + rec->off[f] : k + keylen;
    c->op = (uint32_t)op;
    c->line = line;
    c->key = k;
    c->patron_id = id;
    c->n_values = PF__COUNT;
    c->values = vals;
    return c;
}

typedef struct {
    Patronsync__Change **v;
    size_t n, cap;
} change_list;

static int changes_push(change_list *l, Patronsync__Change *c)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        Patronsync__Change **v = realloc(l->v, cap * sizeof(*v));
        if (v == NULL)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = c;
    return 0;
}

static void changes_free(change_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

/* Return a stored plan's result (a retried shard changes nothing). 1 found, 0 not, -1 error. */
static int replay(worker_ctx *w, const Patronsync__ShardTask *t, const char *path, Patronsync__Counts *counts,
                  char *err, size_t errlen)
{
    if (access(path, F_OK) != 0)
        return 0;
    size_t len;
    char *data = file_read_all(path, (size_t)1 << 34, &len, err, errlen);
    if (data == NULL)
        return -1;
    Patronsync__ShardPlan *p = patronsync__shard_plan__unpack(NULL, len, (const uint8_t *)data);
    free(data);
    if (p == NULL) {
        err_set(err, errlen, "staged plan %s does not decode", path);
        unlink(path);
        return 0; /* plan it again */
    }
    char part[32];
    snprintf(part, sizeof(part), "s%06u", t->shard);
    int rc = worker_publish(w, t->job_id, part, p->counts, p->exceptions, p->n_exceptions, t->attempt);
    if (p->counts)
        *counts = *p->counts;
    patronsync__shard_plan__free_unpacked(p, NULL);
    (void)rc;
    return 1;
}

int plan_shard(worker_ctx *w, const Patronsync__ShardTask *t, Patronsync__Counts *counts, char *err,
               size_t errlen)
{
    char path[2048];
    if (plan_path(w->cfg, t->job_id, t->shard, path, sizeof(path)) < 0) {
        err_set(err, errlen, "stage path too long");
        return -1;
    }
    patronsync__counts__init(counts);
    int r = replay(w, t, path, counts, err, errlen);
    if (r != 0)
        return r < 0 ? -1 : 0;

    profile *prof = get_profile(t->profile_name, t->profile_text, err, errlen);
    if (prof == NULL)
        return -1;

    int rc = -1;
    store_site *sites = NULL;
    size_t nsites = 0;
    exc_list exc;
    exc_list_init(&exc);
    change_list ch = {0};
    patron_rec mapped, existing, out;
    patron_rec_init(&mapped);
    patron_rec_init(&existing);
    patron_rec_init(&out);
    csvrow *row = csvrow_new((size_t)w->cfg->max_fields);
    uint8_t *packed = NULL;
    int in_txn = 0;
    if (row == NULL) {
        err_set(err, errlen, "out of memory");
        goto out;
    }
    /* One read transaction: every record of the shard is compared with the
     * same snapshot of the store. */
    if (store_begin(w->st, 0, err, errlen) < 0)
        goto out;
    in_txn = 1;
    if (store_sites(w->st, &sites, &nsites, err, errlen) < 0)
        goto out;
    rules_ctx rctx = {sites, nsites, profile_match_district_id(prof), profile_site_default(prof)};
    int by = rctx.match_district_id ? PF_DISTRICT_ID : PF_BARCODE;

    csvscan sc;
    csvscan_init(&sc, (const char *)t->data.data, t->data.len, t->first_line, (size_t)w->cfg->max_record_bytes);
    csvscan_rec rec;
    size_t note = 0;
    int max_col = profile_max_column(prof);
    int total_cols = profile_column_total(prof);
    uint64_t nrec = 0;
    while (csvscan_next(&sc, &rec)) {
        nrec++;
        if ((nrec & 1023) == 0)
            worker_pump(w);
        counts->read++;
        uint64_t line = rec.line;
        if (w->cfg->test_fault_line > 0 && line == (uint64_t)w->cfg->test_fault_line) {
            log_error("test fault switch: aborting on line %llu", (unsigned long long)line);
            abort();
        }
        while (note < t->n_notes && t->notes[note]->line < line)
            note++;
        if (note < t->n_notes && t->notes[note]->line == line) {
            const Patronsync__RecordNote *n = t->notes[note];
            if (n->kind == 2) {
                counts->invalid_skipped++;
                exc_add(&exc, line, "", "", "SKIP", "%s", n->message);
            } else {
                counts->duplicates_superseded++;
                exc_add(&exc, line, n->kind == 0 ? n->key : "", "", "SKIP",
                        "%s '%s' appears again on line %llu; this line was superseded.",
                        n->kind == 0 ? "District ID" : "Barcode", n->key, (unsigned long long)n->by_line);
            }
            continue;
        }
        if (rec.flags & CSVSCAN_UNTERMINATED) {
            counts->invalid_skipped++;
            exc_add(&exc, line, "", "", "SKIP", "Line %llu: a quoted field is not closed before the end of the file.",
                    (unsigned long long)line);
            continue;
        }
        if (rec.flags & CSVSCAN_TOO_LONG) {
            counts->invalid_skipped++;
            exc_add(&exc, line, "", "", "SKIP", "Line %llu: record of %zu bytes is longer than the limit of %lld bytes.",
                    (unsigned long long)line, rec.len, (long long)w->cfg->max_record_bytes);
            continue;
        }
        if (rec.flags & CSVSCAN_NUL) {
            counts->invalid_skipped++;
            exc_add(&exc, line, "", "", "SKIP", "Line %llu: record holds a NUL byte; not a text record.",
                    (unsigned long long)line);
            continue;
        }
        char perr[ERRLEN];
        if (csvrow_parse(row, (const char *)t->data.data + rec.off, rec.len, perr, sizeof(perr)) < 0) {
            counts->invalid_skipped++;
            exc_add(&exc, line, "", "", "SKIP", "Line %llu: %s", (unsigned long long)line, perr);
            continue;
        }
        size_t ncols = csvrow_count(row);
        if ((int)ncols < max_col || (total_cols > 0 && (int)ncols > total_cols)) {
            counts->invalid_skipped++;
            exc_add(&exc, line, "", "", "SKIP", "Line %llu: %zu fields; the profile expects %s%d.",
                    (unsigned long long)line, ncols, (int)ncols < max_col ? "at least " : "at most ",
                    (int)ncols < max_col ? max_col : total_cols);
            continue;
        }
        if (profile_map(prof, csvrow_fields(row), csvrow_lens(row), ncols, &mapped, perr, sizeof(perr)) < 0) {
            counts->invalid_skipped++;
            exc_add(&exc, line, "", "", "SKIP", "Line %llu: %s", (unsigned long long)line, perr);
            continue;
        }
        if (profile_rule_count(prof, PR_SKIP) > 0 &&
            profile_rule_matches(prof, PR_SKIP, &mapped, csvrow_fields(row), csvrow_lens(row), ncols) == 1) {
            counts->skipped_by_rule++;
            continue;
        }
        const char *key = NULL;
        if (!rules_match_key(&rctx, line, &mapped, &key, &exc)) {
            counts->invalid_skipped++;
            continue;
        }
        store_patron_meta meta = {0};
        int found = store_find(w->st, by, key, &existing, &meta, err, errlen);
        if (found < 0)
            goto out;
        int warned = 0;
        int save = rules_decide(&rctx, line, &mapped, found ? &existing : NULL, &out, &exc, &warned);
        if (save < 0) {
            err_set(err, errlen, "out of memory deciding line %llu", (unsigned long long)line);
            goto out;
        }
        if (save == 0) {
            counts->invalid_skipped++;
            continue;
        }
        /* A barcode another patron holds is refused, decided against the
         * store as it was before this job (so shards never race). */
        const char *bc = patron_rec_get(&out, PF_BARCODE);
        if (*bc && (!found || strcmp(bc, patron_rec_get(&existing, PF_BARCODE)) != 0) &&
            store_value_taken(w->st, PF_BARCODE, bc, found ? meta.id : 0) == 1) {
            char name[200];
            rules_display_name(&out, name, sizeof(name));
            if (found)
                exc_add(&exc, line, patron_rec_get(&out, PF_DISTRICT_ID), name, "SKIP",
                        "Patron's new barcode '%s' is already assigned to another patron.", bc);
            else
                exc_add(&exc, line, patron_rec_get(&out, PF_DISTRICT_ID), name, "SKIP",
                        "Barcode \"%s\" already exists at target site.", bc);
            counts->invalid_skipped++;
            continue;
        }
        if (found) {
            uint64_t h = patron_hash(&out);
            if (h == patron_hash(&existing)) {
                counts->unchanged++;
                continue;
            }
        }
        Patronsync__Change *c = change_new(found ? 2 : 1, line, key, found ? meta.id : 0, &out);
        if (c == NULL || changes_push(&ch, c) < 0) {
            free(c);
            err_set(err, errlen, "out of memory staging line %llu", (unsigned long long)line);
            goto out;
        }
        c->warned = warned;
        if (found) {
            c->before_hash = meta.hash;
            uint64_t mask = 0;
            for (int f = 0; f < PF__COUNT; f++)
                if (strcmp(patron_rec_get(&out, f), patron_rec_get(&existing, f)) != 0)
                    mask |= (uint64_t)1 << f;
            c->changed = mask;
            const char *s0 = patron_rec_get(&existing, PF_SITE_SHORT_NAME);
            if (mask & ((uint64_t)1 << PF_SITE_SHORT_NAME)) {
                c->site_before = strdup(s0);
                counts->transferred++;
            }
            counts->updated++;
            if (warned)
                counts->updated_with_warnings++;
        } else {
            counts->added++;
            if (warned)
                counts->added_with_warnings++;
        }
    }
    store_rollback(w->st);
    in_txn = 0;
    if (nrec != t->nrecords)
        log_warn("job %s shard %u: broker counted %u records, worker found %llu", t->job_id, t->shard,
                 t->nrecords, (unsigned long long)nrec);

    Patronsync__ShardPlan plan = PATRONSYNC__SHARD_PLAN__INIT;
    plan.job_id = t->job_id;
    plan.shard = t->shard;
    plan.counts = counts;
    plan.exceptions = exc.v;
    plan.n_exceptions = exc.n;
    plan.changes = ch.v;
    plan.n_changes = ch.n;
    size_t plen = patronsync__shard_plan__get_packed_size(&plan);
    packed = malloc(plen ? plen : 1);
    if (packed == NULL) {
        err_set(err, errlen, "out of memory packing the plan");
        goto out;
    }
    patronsync__shard_plan__pack(&plan, packed);
    char dir[2048];
    snprintf(dir, sizeof(dir), "%s/%s", w->cfg->stage_dir, t->job_id);
    if (mkdir_p(dir, 0750, err, errlen) < 0 || file_write_atomic(path, packed, plen, err, errlen) < 0)
        goto out;
    char part[32];
    snprintf(part, sizeof(part), "s%06u", t->shard);
    if (worker_publish(w, t->job_id, part, counts, exc.v, exc.n, t->attempt) < 0) {
        err_set(err, errlen, "stopped before the result could be published");
        goto out;
    }
    rc = 0;
out:
    if (in_txn)
        store_rollback(w->st);
    for (size_t i = 0; i < ch.n; i++)
        if (ch.v[i]->site_before != NULL && ch.v[i]->site_before != protobuf_c_empty_string)
            free(ch.v[i]->site_before);
    changes_free(&ch);
    exc_list_free(&exc);
    patron_rec_free(&mapped);
    patron_rec_free(&existing);
    patron_rec_free(&out);
    csvrow_destroy(&row);
    free(sites);
    free(packed);
    return rc;
}
