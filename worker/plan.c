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
#include "safety.h"
#include "stage.h"
#include "util.h"
#include "wire.h"
#include "plan.h"
#include "seen.h"
#include "task.h"

/* test only (test_fault_line): what a poison record could do to its planner
 * — crash it, spin, or take memory without end (test_fault_kind). */
static void test_fault(const ps_config *cfg, uint64_t line)
{
    log_error("test fault switch: '%s' on line %llu", cfg->test_fault_kind, (unsigned long long)line);
    if (strcmp(cfg->test_fault_kind, "cpu") == 0) {
        for (volatile uint64_t spin = 0;; spin++)
            ;
    }
    if (strcmp(cfg->test_fault_kind, "memory") == 0) {
        static void *volatile held; /* a chain of touched blocks: resident, and kept */
        for (;;) {
            void **p = malloc(1 << 20);
            if (p != NULL) {
                memset(p, 1, 1 << 20);
                *p = held;
                held = p;
            }
        }
    }
    abort();
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

/* A Change owning one block: the struct, the packed record (rec has every
 * field as PV_VALUE, as rules_decide leaves it; NULL: none), the key and an extra
 * string (a site: site_before or assoc_site) returned in *extra_out. */
static Patronsync__Change *change_new(int op, uint64_t line, const char *key, int64_t id, const patron_rec *rec,
                                      const char *extra, char **extra_out)
{
    size_t keylen = strlen(key);
    size_t extralen = extra ? strlen(extra) : 0;
    size_t reclen = rec ? patron_rec_packed_size(rec) : 0;
    size_t need = sizeof(Patronsync__Change) + reclen + keylen + 1 + extralen + 1;
    char *block = malloc(need);
    if (block == NULL)
        return NULL;
    Patronsync__Change *c = (Patronsync__Change *)block;
    patronsync__change__init(c);
    char *text = block + sizeof(*c);
    if (rec)
        patron_rec_pack(rec, text);
    char *k = text + reclen;
    memcpy(k, key, keylen + 1);
    char *x = k + keylen + 1;
    if (extralen > 0)
        memcpy(x, extra, extralen);
    x[extralen] = '\0';
    if (extra_out)
        *extra_out = x;
    c->op = (uint32_t)op;
    c->line = line;
    c->key = k;
    c->patron_id = id;
    c->record.data = (uint8_t *)text;
    c->record.len = reclen;
    return c;
}

typedef struct {
    Patronsync__Change **v;
    size_t n, cap;
} change_list;

static int changes_push(change_list *l, Patronsync__Change *c)
{
    if (array_grow(&l->v, &l->cap, l->n + 1, sizeof(*l->v), 256) < 0)
        return -1;
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
    char perr[ERRLEN];
    (void)task_publish(w, t->job_id, part, p->counts, p->exceptions, p->n_exceptions, t->attempt, perr, sizeof(perr));
    if (p->counts)
        *counts = *p->counts;
    patronsync__shard_plan__free_unpacked(p, NULL);
    return 1;
}

/* One shard being planned: the profile, the reference data and the store
 * as they were before the job, and what the shard has decided so far. */
typedef struct {
    worker_ctx *w;
    const profile *prof;
    rules_ctx rctx;
    int by;                   /* PF_DISTRICT_ID or PF_BARCODE */
    int allow_outstanding;    /* JobOptions.allow_delete_outstanding */
    int update_before_delete; /* UpdateBeforeDelete=true */
    int has_delete, has_assoc;
    Patronsync__Counts *counts;
    exc_list exc;
    change_list ch;
    patron_rec mapped, existing, out;
    seen_set seen; /* stored patrons and sites in the file, for the missing-patron step (seen.h) */
    uint64_t ref_gen;    /* the reference data generation read (store_ref_gen) */
    uint64_t memo_seed;  /* the profile and reference data every record memo starts from */
    const char *raw;     /* the record's row, as the scan gives it (record_memo) */
    size_t raw_len;
    int fast;            /* memo_fast may take records: memos on, District ID matching, no password */
    patron_rec key_only; /* memo_fast: the District ID mapped alone */
    uint64_t memo;       /* this record's memo, 0 when it may have none */
    uint64_t memo_stored;/* the memo the patron holds (store_memo_find) */
    int empty;           /* no patrons in the store: every lookup would find nothing */
    size_t rec_mark;     /* exc.n when this record began: a line since means no memo */
    uint64_t memo_hits;  /* records found unchanged by their memo */
    int64_t near;        /* the patron id after the last one looked up (store_memo_find), 0: none */
    struct {             /* this record's District ID looked up (look_up): on 0, not yet */
        int on, r;
        const char *key;
        store_memo m;
    } looked;
    /* The shard's records: the task, its row splitter, what the profile
     * expects of a row, the broker's notes passed so far. */
    const Patronsync__ShardTask *t;
    rules_ref ref;
    csvrow *row;
    int in_txn;          /* the read transaction is open */
    int max_col, total_cols;
    size_t memo_keep;    /* memo_fast: the columns a row is split into at first */
    size_t note;         /* t->notes before this one are passed */
    uint64_t nrec;
} planner;

/* The record's memo (docs/RULES.md, "Records that did not change"): the
 * bytes of its row, over the profile and the reference data generation
 * (what the mapping and the rules read: the same row under the same
 * profile maps to the same values). Never 0. */
static uint64_t record_memo(const planner *pl)
{
    return hash64_fast(pl->raw, pl->raw_len, pl->memo_seed) | 1;
}

/* Whether this record's District ID key was looked up already (look_up). */
static int looked_for(const planner *pl, const char *key)
{
    return pl->looked.on && strcmp(pl->looked.key, key) == 0;
}

/* The patron holding District ID key (store_memo_find), looked up once
 * a record: memo_fast, the full path's memo check and its row read all
 * ask the same of the same snapshot. 1 / 0 / -1. */
static int look_up(planner *pl, const char *key, store_memo *m, char *err, size_t errlen)
{
    if (looked_for(pl, key)) {
        *m = pl->looked.m;
        return pl->looked.r;
    }
    int r = pl->empty ? 0 : store_memo_find(pl->w->st, key, pl->near, m, err, errlen);
    if (r < 0)
        return -1;
    if (r == 1)
        pl->near = m->id + 1;
    pl->looked.on = 1;
    pl->looked.r = r;
    pl->looked.key = key;
    if (r == 1)
        pl->looked.m = *m;
    return r;
}

/* A stored patron's memo against this record: 1 it matches (the record is
 * counted unchanged and its patron seen), 0 not (*m as found: r == 1),
 * -1 error. */
static int memo_check(planner *pl, const char *key, uint64_t memo, store_memo *m, int *r, char *err,
                      size_t errlen)
{
    *r = look_up(pl, key, m, err, errlen);
    if (*r < 0)
        return -1;
    if (*r == 0 || m->memo == 0 || m->memo != store_memo_of(memo, m->row_hash))
        return 0;
    if (seen_id(&pl->seen, m->id) < 0 || seen_site(&pl->seen, m->site) < 0) {
        err_set(err, errlen, "out of memory");
        return -1;
    }
    pl->counts->unchanged++;
    pl->memo_hits++;
    return 1;
}

/* Before the record is mapped: its District ID alone, and the memo of its
 * row. A hit is the same record under the same profile the rules took
 * without a line for this patron's row, so the whole mapping and the rules
 * are skipped; a miss leaves nothing behind (the full path follows). 1 taken,
 * 0 not, -1 error. */
static int memo_fast(planner *pl, const char *const *cols, const size_t *lens, size_t ncols, char *err,
                     size_t errlen)
{
    if (!pl->fast)
        return 0;
    char perr[ERRLEN];
    patron_rec_reset(&pl->key_only);
    if (profile_map_field(pl->prof, PF_DISTRICT_ID, cols, lens, ncols, &pl->key_only, perr, sizeof(perr)) < 0 ||
        pl->key_only.state[PF_DISTRICT_ID] != PV_VALUE)
        return 0;
    const char *key = patron_rec_get(&pl->key_only, PF_DISTRICT_ID);
    if (*key == '\0')
        return 0;
    store_memo m;
    int r;
    return memo_check(pl, key, record_memo(pl), &m, &r, err, errlen);
}

/* A record that took the rules without a line before, for a patron whose
 * row is still the one it wrote, is unchanged again: counted so without
 * reading the row or running the rules. 1 taken, 0 not (pl->memo set for
 * the full path), -1 error. */
static int memo_unchanged(planner *pl, const char *key, char *err, size_t errlen)
{
    pl->memo = 0;
    if (!pl->w->cfg->unchanged_memo || !pl->rctx.match_district_id || pl->mapped.state[PF_PASSWORD] == PV_VALUE)
        return 0; /* barcode+site matching decides more; a password is never memoised */
    uint64_t memo = record_memo(pl);
    store_memo m;
    int r;
    int hit = memo_check(pl, key, memo, &m, &r, err, errlen);
    if (hit != 0)
        return hit;
    pl->memo = memo;
    pl->memo_stored = r == 1 ? m.memo : 0;
    return 0;
}

static void who(const planner *pl, int found, const char **id, char *name, size_t namelen)
{
    *id = patron_rec_get(&pl->mapped, PF_DISTRICT_ID);
    if (**id == '\0' && found)
        *id = patron_rec_get(&pl->existing, PF_DISTRICT_ID);
    rules_display_name(&pl->mapped, name, namelen);
    if (*name == '\0' && found)
        rules_display_name(&pl->existing, name, namelen);
}

static int oom(char *err, size_t errlen, uint64_t line)
{
    err_set(err, errlen, "out of memory planning line %llu", (unsigned long long)line);
    return -1;
}

/* pl->out as every field of the stored patron (the record a delete without
 * UpdateBeforeDelete, or an association, carries). */
static int out_from_existing(planner *pl)
{
    patron_rec_reset(&pl->out);
    for (int f = 0; f < PF__COUNT; f++)
        if (patron_rec_set(&pl->out, f, patron_rec_get(&pl->existing, f), pl->existing.len[f], PV_VALUE) < 0)
            return -1;
    return 0;
}

/* Stage pl->out as an add (found == 0) or an update of meta->id, or count
 * it unchanged; counts it. 0 / -1. */
static int stage_save(planner *pl, uint64_t line, const char *key, int found, const store_patron_meta *meta,
                      int warned, char *err, size_t errlen)
{
    Patronsync__Counts *counts = pl->counts;
    if (seen_site(&pl->seen, patron_rec_get(&pl->out, PF_SITE_SHORT_NAME)) < 0)
        return oom(err, errlen, line);
    if (found && patron_hash(&pl->out) == patron_hash(&pl->existing)) {
        counts->unchanged++;
        /* Unchanged without a line, but not known so by its memo (the
         * reference data changed, or the patron was written before memos):
         * the memo is made again, so the next run need not read the row. */
        uint64_t memo = pl->exc.n == pl->rec_mark ? pl->memo : 0;
        if (memo != 0 && pl->memo_stored != store_memo_of(memo, meta->hash)) {
            Patronsync__Change *c = change_new(SAFETY_OP_MEMO, line, key, meta->id, NULL, NULL, NULL);
            if (c == NULL || changes_push(&pl->ch, c) < 0) {
                free(c);
                return oom(err, errlen, line);
            }
            c->before_hash = meta->hash;
            c->memo = memo;
        }
        return 0;
    }
    const char *s0 = found ? patron_rec_get(&pl->existing, PF_SITE_SHORT_NAME) : "";
    int moved = found && strcmp(patron_rec_get(&pl->out, PF_SITE_SHORT_NAME), s0) != 0;
    char *extra = NULL;
    Patronsync__Change *c =
        change_new(found ? 2 : 1, line, key, found ? meta->id : 0, &pl->out, moved ? s0 : NULL, &extra);
    if (c == NULL || changes_push(&pl->ch, c) < 0) {
        free(c);
        return oom(err, errlen, line);
    }
    c->warned = warned != 0;
    c->memo = pl->exc.n == pl->rec_mark ? pl->memo : 0;
    if (found) {
        c->before_hash = meta->hash;
        uint64_t mask = 0;
        for (int f = 0; f < PF__COUNT; f++)
            if (strcmp(patron_rec_get(&pl->out, f), patron_rec_get(&pl->existing, f)) != 0)
                mask |= (uint64_t)1 << f;
        c->changed = mask;
        if (moved) {
            c->site_before = extra;
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
    return 0;
}

/* An add or update: validate (rules_decide), then what needs the store:
 * a barcode, District ID or user name another patron holds, all decided
 * against the store as it was before this job (so shards never race).
 * given_warning: the caller already gave this record a warning line. */
static int plan_save(planner *pl, uint64_t line, const char *key, int found, const store_patron_meta *meta,
                     int given_warning, char *err, size_t errlen)
{
    store *st = pl->w->st;
    size_t mark = pl->exc.n;
    int warned = 0;
    const patron_rec *ex = found ? &pl->existing : NULL;
    int save = rules_decide(&pl->rctx, line, &pl->mapped, ex, &pl->out, &pl->exc, &warned);
    if (save < 0) {
        err_set(err, errlen, "line %llu: out of memory, or the password could not be hashed",
                (unsigned long long)line);
        return -1;
    }
    if (save == 0) {
        pl->counts->invalid_skipped++;
        return 0;
    }
    int64_t self = found ? meta->id : 0;
    char name[200]; /* made only for a line */
    const char *id = patron_rec_get(&pl->out, PF_DISTRICT_ID);
    const char *bc = patron_rec_get(&pl->out, PF_BARCODE);
    if (*bc && (!found || strcmp(bc, patron_rec_get(ex, PF_BARCODE)) != 0)) {
        int taken = pl->empty ? 0 : store_value_taken(st, PF_BARCODE, bc, self);
        if (taken < 0) {
            err_set(err, errlen, "store: looking up barcode '%s': %s", bc, store_errmsg(st));
            return -1;
        }
        if (taken) {
            exc_truncate(&pl->exc, mark);
            rules_display_name(&pl->out, name, sizeof(name));
            if (found)
                exc_add(&pl->exc, line, id, name, "SKIP", RULES_MSG_BARCODE_ASSIGNED, bc);
            else
                exc_add(&pl->exc, line, id, name, "SKIP", RULES_MSG_BARCODE_EXISTS, bc);
            pl->counts->invalid_skipped++;
            return 0;
        }
    }
    if (!pl->rctx.match_district_id && *id && (!found || strcmp(id, patron_rec_get(ex, PF_DISTRICT_ID)) != 0)) {
        int taken = pl->empty ? 0 : store_value_taken(st, PF_DISTRICT_ID, id, self);
        if (taken < 0) {
            err_set(err, errlen, "store: looking up District ID '%s': %s", id, store_errmsg(st));
            return -1;
        }
        if (taken) {
            exc_truncate(&pl->exc, mark);
            rules_display_name(&pl->out, name, sizeof(name));
            exc_add(&pl->exc, line, id, name, "SKIP", RULES_MSG_DISTRICT_ID_TAKEN, id);
            pl->counts->invalid_skipped++;
            return 0;
        }
    }
    if (rules_username_changed(&pl->out, ex)) {
        int taken = pl->empty ? 0 : store_username_taken(st, patron_rec_get(&pl->out, PF_USERNAME), self, err, errlen);
        if (taken < 0)
            return -1;
        if (taken && rules_keep_username(line, &pl->out, ex, &pl->exc, &warned) < 0)
            return oom(err, errlen, line);
    }
    return stage_save(pl, line, key, found, meta, warned || given_warning, err, errlen);
}

/* A record a DeleteWhen rule matched. */
static int plan_delete(planner *pl, uint64_t line, const char *key, int found, const store_patron_meta *meta,
                       char *err, size_t errlen)
{
    const char *id;
    char name[200];
    who(pl, found, &id, name, sizeof(name));
    if (!found) {
        exc_add(&pl->exc, line, id, name, "SKIP", RULES_MSG_NOT_FOUND);
        pl->counts->invalid_skipped++;
        return 0;
    }
    int outstanding = meta->checkouts > 0 || meta->fines_cents > 0;
    if (outstanding && !pl->allow_outstanding) {
        exc_add(&pl->exc, line, id, name, "SKIP", RULES_MSG_OUTSTANDING, key);
        if (pl->update_before_delete)
            return plan_save(pl, line, key, 1, meta, 1, err, errlen);
        pl->counts->invalid_skipped++;
        return 0;
    }
    int warned = 0;
    if (pl->update_before_delete) {
        int save = rules_decide(&pl->rctx, line, &pl->mapped, &pl->existing, &pl->out, &pl->exc, &warned);
        if (save < 0)
            return oom(err, errlen, line);
        if (save == 0) {
            pl->counts->invalid_skipped++;
            return 0;
        }
    } else if (out_from_existing(pl) < 0) {
        return oom(err, errlen, line);
    }
    Patronsync__Change *c = change_new(3, line, key, meta->id, &pl->out, NULL, NULL);
    if (c == NULL || changes_push(&pl->ch, c) < 0) {
        free(c);
        return oom(err, errlen, line);
    }
    c->before_hash = meta->hash;
    c->update_first = pl->update_before_delete != 0;
    if (outstanding) {
        long long fines = (long long)meta->fines_cents;
        exc_add(&pl->exc, line, id, name, "INFO", RULES_MSG_DELETED_OUTSTANDING, key, (long long)meta->checkouts,
                fines / 100, fines % 100);
        warned = 1;
    }
    c->warned = warned != 0;
    pl->counts->deleted++;
    if (warned)
        pl->counts->deleted_with_warnings++;
    return 0;
}

/* A record an AssociationWhen rule matched, for an existing patron at
 * another site: the patron stays where they are and is associated with
 * the record's site. *handled = 0 when the record is an ordinary update
 * after all (same site, or no site). */
static int plan_association(planner *pl, uint64_t line, const char *key, const store_patron_meta *meta,
                            int *handled, char *err, size_t errlen)
{
    const char *site = rules_record_site(&pl->rctx, &pl->mapped);
    *handled = 0;
    if (*site == '\0' || strcmp(site, patron_rec_get(&pl->existing, PF_SITE_SHORT_NAME)) == 0)
        return 0;
    *handled = 1;
    const char *id;
    char name[200];
    who(pl, 1, &id, name, sizeof(name));
    const store_site *ss = rules_site(&pl->rctx, site);
    if (ss == NULL) {
        exc_add(&pl->exc, line, id, name, "SKIP", "Site short name '%s' does not exist.", site);
        pl->counts->invalid_skipped++;
        return 0;
    }
    int has = store_assoc_has(pl->w->st, meta->id, ss->short_name, err, errlen);
    if (has < 0)
        return -1;
    if (has) {
        pl->counts->unchanged++;
        return 0;
    }
    if (out_from_existing(pl) < 0)
        return oom(err, errlen, line);
    char *extra = NULL;
    Patronsync__Change *c = change_new(4, line, key, meta->id, &pl->out, ss->short_name, &extra);
    if (c == NULL || changes_push(&pl->ch, c) < 0) {
        free(c);
        return oom(err, errlen, line);
    }
    c->assoc_site = extra;
    c->before_hash = meta->hash;
    pl->counts->updated++;
    return 0;
}

/* The stored patron of this record's key into pl->existing (by the
 * lookup the memo check made, when it made one). With barcode + site
 * matching, a patron holding the barcode at another site is not this
 * record's patron: the record is skipped with its line. 1 found, 0 not,
 * 2 skipped, -1 with err. */
static int find_patron(planner *pl, uint64_t line, const char *key, int is_delete, store_patron_meta *meta,
                       char *err, size_t errlen)
{
    int found;
    if (pl->by == PF_DISTRICT_ID && looked_for(pl, key))
        found = pl->looked.r == 0 ? 0 : store_get(pl->w->st, pl->looked.m.id, &pl->existing, meta, err, errlen);
    else
        found = pl->empty ? 0 : store_find(pl->w->st, pl->by, key, &pl->existing, meta, err, errlen);
    if (found <= 0)
        return found;
    pl->near = meta->id + 1;
    if (pl->rctx.match_district_id)
        return 1;
    const char *site = rules_record_site(&pl->rctx, &pl->mapped);
    if (strcmp(site, patron_rec_get(&pl->existing, PF_SITE_SHORT_NAME)) == 0)
        return 1;
    const char *id;
    char name[200];
    who(pl, 0, &id, name, sizeof(name));
    if (rules_site(&pl->rctx, site) == NULL)
        exc_add(&pl->exc, line, id, name, "SKIP", "Site short name '%s' does not exist.", site);
    else if (is_delete)
        exc_add(&pl->exc, line, id, name, "SKIP", RULES_MSG_NOT_FOUND);
    else
        exc_add(&pl->exc, line, id, name, "SKIP", RULES_MSG_BARCODE_EXISTS, key);
    pl->counts->invalid_skipped++;
    return 2;
}

/* One mapped record (pl->mapped) of the shard. 0 / -1 (the shard fails). */
static int plan_record(planner *pl, uint64_t line, const char *const *cols, const size_t *lens, size_t ncols,
                       char *err, size_t errlen)
{
    const profile *prof = pl->prof;
    pl->rec_mark = pl->exc.n;
    pl->memo = 0;
    if (profile_rule_count(prof, PR_SKIP) > 0 &&
        profile_rule_matches(prof, PR_SKIP, &pl->mapped, cols, lens, ncols) == 1) {
        pl->counts->skipped_by_rule++;
        return 0;
    }
    int is_delete = pl->has_delete && profile_rule_matches(prof, PR_DELETE, &pl->mapped, cols, lens, ncols) == 1;
    int is_assoc = !is_delete && pl->has_assoc &&
                   profile_rule_matches(prof, PR_ASSOCIATION, &pl->mapped, cols, lens, ncols) == 1;
    const char *key = NULL;
    if (!rules_match_key(&pl->rctx, line, &pl->mapped, &key, &pl->exc)) {
        pl->counts->invalid_skipped++;
        return 0;
    }
    if (!is_delete && !is_assoc) {
        int r = memo_unchanged(pl, key, err, errlen);
        if (r != 0)
            return r < 0 ? -1 : 0;
    }
    store_patron_meta meta = {0};
    int found = find_patron(pl, line, key, is_delete, &meta, err, errlen);
    if (found < 0)
        return -1;
    if (found == 2)
        return 0;
    /* In the file, changed or not: not missing (missing.c). */
    if (found && seen_id(&pl->seen, meta.id) < 0)
        return oom(err, errlen, line);
    if (is_delete)
        return plan_delete(pl, line, key, found, &meta, err, errlen);
    if (is_assoc && found) {
        int handled = 0;
        if (plan_association(pl, line, key, &meta, &handled, err, errlen) < 0)
            return -1;
        if (handled)
            return 0;
    }
    return plan_save(pl, line, key, found, &meta, 0, err, errlen);
}

/* The planner's seed of every record memo: the profile, the reference
 * data generation and what decides a record besides its row. */
static uint64_t memo_seed_of(const planner *pl)
{
    const char *sd = profile_site_default(pl->prof);
    const char *text = pl->t->profile_text;
    /* max_fields too: a record it refuses must never pass by its memo. */
    uint64_t seed[3] = {pl->ref_gen, (uint64_t)pl->rctx.match_district_id, (uint64_t)pl->w->cfg->max_fields};
    uint64_t h = hash64(text, strlen(text), HASH64_SEED);
    h = hash64(seed, sizeof(seed), h);
    return hash64(sd ? sd : "", sd ? strlen(sd) : 0, h);
}

/* Set up a planner for task t with profile prof: its buffers, the read
 * transaction every record of the shard is compared in, the reference data
 * and what the profile asks. planner_close frees it, also after an error.
 * 0 / -1 with err. */
static int planner_open(planner *pl, worker_ctx *w, const Patronsync__ShardTask *t, const profile *prof,
                        Patronsync__Counts *counts, char *err, size_t errlen)
{
    memset(pl, 0, sizeof(*pl));
    pl->w = w;
    pl->t = t;
    pl->prof = prof;
    pl->counts = counts;
    exc_list_init(&pl->exc);
    patron_rec_init(&pl->mapped);
    patron_rec_init(&pl->existing);
    patron_rec_init(&pl->out);
    patron_rec_init(&pl->key_only);
    pl->row = csvrow_new((size_t)w->cfg->max_fields);
    if (pl->row == NULL) {
        err_set(err, errlen, "out of memory");
        return -1;
    }
    /* One read transaction: every record of the shard is compared with the
     * same snapshot of the store. */
    if (store_begin(w->st, 0, err, errlen) < 0)
        return -1;
    pl->in_txn = 1;
    /* A first load: nothing to look up, in this snapshot. */
    pl->empty = store_patrons_empty(w->st, err, errlen);
    if (pl->empty < 0 || rules_ref_load(&pl->ref, w->st, err, errlen) < 0)
        return -1;
    rules_ctx_init(&pl->rctx, &pl->ref, profile_match_district_id(prof), profile_site_default(prof));
    if (store_ref_gen(w->st, &pl->ref_gen, err, errlen) < 0)
        return -1;
    pl->memo_seed = memo_seed_of(pl);
    pl->by = pl->rctx.match_district_id ? PF_DISTRICT_ID : PF_BARCODE;
    pl->fast = w->cfg->unchanged_memo && pl->rctx.match_district_id && !pl->empty &&
               !profile_maps_field(prof, PF_PASSWORD);
    pl->allow_outstanding = t->options && t->options->allow_delete_outstanding;
    pl->update_before_delete = profile_update_before_delete(prof);
    pl->has_delete = profile_rule_count(prof, PR_DELETE) > 0;
    /* Associations need District ID matching (docs/RULES.md). */
    pl->has_assoc = pl->rctx.match_district_id && profile_rule_count(prof, PR_ASSOCIATION) > 0;
    pl->max_col = profile_max_column(prof);
    pl->total_cols = profile_column_total(prof);
    if (pl->fast) {
        int k = profile_field_max_column(prof, PF_DISTRICT_ID);
        pl->memo_keep = k > 0 ? (size_t)k : 1;
    }
    return 0;
}

static void planner_close(planner *pl)
{
    if (pl->in_txn)
        store_rollback(pl->w->st);
    pl->in_txn = 0;
    changes_free(&pl->ch);
    exc_list_free(&pl->exc);
    patron_rec_free(&pl->mapped);
    patron_rec_free(&pl->existing);
    patron_rec_free(&pl->out);
    patron_rec_free(&pl->key_only);
    csvrow_destroy(&pl->row);
    rules_ref_free(&pl->ref);
    seen_free(&pl->seen);
}

/* A line the broker noted (an in-file duplicate superseded, a record it
 * refused): skipped with its line. 1 noted, 0 not. */
static int record_noted(planner *pl, uint64_t line)
{
    const Patronsync__ShardTask *t = pl->t;
    while (pl->note < t->n_notes && t->notes[pl->note]->line < line)
        pl->note++;
    if (pl->note >= t->n_notes || t->notes[pl->note]->line != line)
        return 0;
    const Patronsync__RecordNote *n = t->notes[pl->note];
    if (n->kind == 2) {
        pl->counts->invalid_skipped++;
        exc_add(&pl->exc, line, "", "", "SKIP", "%s", n->message);
    } else {
        pl->counts->duplicates_superseded++;
        exc_add(&pl->exc, line, n->kind == 0 ? n->key : "", "", "SKIP",
                "%s '%s' appears again on line %llu; this line was superseded.", n->kind == 0 ? "District ID" : "Barcode",
                n->key, (unsigned long long)n->by_line);
    }
    return 1;
}

/* A record the scan marked as no record at all: skipped with its line.
 * 1 refused, 0 not. */
static int record_malformed(planner *pl, const csvscan_rec *rec)
{
    unsigned long long line = (unsigned long long)rec->line;
    if (rec->flags & CSVSCAN_UNTERMINATED)
        exc_add(&pl->exc, rec->line, "", "", "SKIP",
                "Line %llu: a quoted field is not closed before the end of the file.", line);
    else if (rec->flags & CSVSCAN_TOO_LONG)
        exc_add(&pl->exc, rec->line, "", "", "SKIP",
                "Line %llu: record of %zu bytes is longer than the limit of %lld bytes.", line, rec->len,
                (long long)pl->w->cfg->max_record_bytes);
    else if (rec->flags & CSVSCAN_NUL)
        exc_add(&pl->exc, rec->line, "", "", "SKIP", "Line %llu: record holds a NUL byte; not a text record.", line);
    else
        return 0;
    pl->counts->invalid_skipped++;
    return 1;
}

/* A record skipped for its form (split, field count, mapping): perr says why. */
static void record_unreadable(planner *pl, uint64_t line, const char *perr)
{
    pl->counts->invalid_skipped++;
    exc_add(&pl->exc, line, "", "", "SKIP", "Line %llu: %s", (unsigned long long)line, perr);
}

/* One record of the shard, from its row: by its memo when it can, else
 * split, mapped and planned (plan_record). 0 / -1 (the shard fails). */
static int plan_row(planner *pl, const csvscan_rec *rec, char *err, size_t errlen)
{
    uint64_t line = rec->line;
    char perr[ERRLEN];
    const char *rtext = (const char *)pl->t->data.data + rec->off;
    csvrow *row = pl->row;
    pl->raw = rtext;
    pl->raw_len = rec->len;
    /* With the memo, the District ID's columns alone, the rest of the
     * row not even checked: a record whose memo matches is byte for
     * byte one the full path took whole before, under the same profile
     * and limits (the memo's seed), so it splits and counts the same.
     * The others are split whole below. */
    if (pl->fast && csvrow_parse_lead(row, rtext, rec->len, pl->memo_keep)) {
        int fast = memo_fast(pl, csvrow_fields(row), csvrow_lens(row), csvrow_count(row), err, errlen);
        if (fast != 0)
            return fast < 0 ? -1 : 0;
    }
    if (csvrow_parse(row, rtext, rec->len, perr, sizeof(perr)) < 0) {
        record_unreadable(pl, line, perr);
        return 0;
    }
    size_t ncols = csvrow_count(row);
    int few = (int)ncols < pl->max_col;
    if (few || (pl->total_cols > 0 && (int)ncols > pl->total_cols)) {
        snprintf(perr, sizeof(perr), "%zu fields; the profile expects %s%d.", ncols, few ? "at least " : "at most ",
                 few ? pl->max_col : pl->total_cols);
        record_unreadable(pl, line, perr);
        return 0;
    }
    if (profile_map(pl->prof, csvrow_fields(row), csvrow_lens(row), ncols, &pl->mapped, perr, sizeof(perr)) < 0) {
        record_unreadable(pl, line, perr);
        return 0;
    }
    return plan_record(pl, line, csvrow_fields(row), csvrow_lens(row), ncols, err, errlen);
}

/* Every record of the shard, in the read transaction (closed after).
 * 0 / -1 with err. */
static int plan_records(planner *pl, char *err, size_t errlen)
{
    const Patronsync__ShardTask *t = pl->t;
    const ps_config *cfg = pl->w->cfg;
    csvscan sc;
    csvscan_init(&sc, (const char *)t->data.data, t->data.len, t->first_line, (size_t)cfg->max_record_bytes);
    csvscan_rec rec;
    while (csvscan_next(&sc, &rec)) {
        pl->nrec++;
        pl->counts->read++;
        pl->looked.on = 0;
        if (cfg->test_fault_line > 0 && rec.line == (uint64_t)cfg->test_fault_line)
            test_fault(cfg, rec.line);
        if (record_noted(pl, rec.line) || record_malformed(pl, &rec))
            continue;
        if (plan_row(pl, &rec, err, errlen) < 0)
            return -1;
    }
    store_rollback(pl->w->st);
    pl->in_txn = 0;
    if (pl->nrec != t->nrecords)
        log_warn("job %s shard %u: broker counted %u records, worker found %llu", t->job_id, t->shard, t->nrecords,
                 (unsigned long long)pl->nrec);
    return 0;
}

/* Stage the shard's plan at path (what it saw first) and publish its
 * result; another attempt's plan staged first stands, and its result is
 * published instead. 0 / -1 with err. */
static int plan_stage(planner *pl, const char *path, char *err, size_t errlen)
{
    worker_ctx *w = pl->w;
    const Patronsync__ShardTask *t = pl->t;
    Patronsync__ShardPlan plan = PATRONSYNC__SHARD_PLAN__INIT;
    plan.job_id = t->job_id;
    plan.shard = t->shard;
    plan.counts = pl->counts;
    plan.exceptions = pl->exc.v;
    plan.n_exceptions = pl->exc.n;
    plan.changes = pl->ch.v;
    plan.n_changes = pl->ch.n;
    plan.ref_gen = pl->ref_gen;
    size_t plen = 0;
    uint8_t *packed = wire_pack(&plan.base, &plen, err, errlen);
    if (packed == NULL)
        return -1;
    int rc = -1;
    char dir[2048];
    snprintf(dir, sizeof(dir), "%s/%s", w->cfg->stage_dir, t->job_id);
    /* Before the plan: a staged plan implies what its shard saw. */
    if (mkdir_p(dir, 0750, err, errlen) < 0 || seen_stage(w->cfg, t->job_id, t->shard, &pl->seen, err, errlen) < 0)
        goto out;
    /* Another attempt of this shard may have staged it first (a worker
     * given up for dead that woke): the first plan stands. */
    int wr = file_write_once(path, packed, plen, err, errlen);
    if (wr < 0)
        goto out;
    if (wr == 1) {
        patronsync__counts__init(pl->counts);
        rc = replay(w, t, path, pl->counts, err, errlen) == 1 ? 0 : -1;
        goto out;
    }
    char part[32];
    snprintf(part, sizeof(part), "s%06u", t->shard);
    rc = task_publish(w, t->job_id, part, pl->counts, pl->exc.v, pl->exc.n, t->attempt, err, errlen);
out:
    free(packed);
    return rc;
}

int plan_shard(worker_ctx *w, const Patronsync__ShardTask *t, Patronsync__Counts *counts, char *err,
               size_t errlen)
{
    char path[2048];
    if (stage_plan_path(w->cfg, t->job_id, t->shard, path, sizeof(path)) < 0) {
        err_set(err, errlen, "stage path too long");
        return -1;
    }
    patronsync__counts__init(counts);
    int64_t t0 = mono_ms();
    int r = replay(w, t, path, counts, err, errlen);
    if (r != 0)
        return r < 0 ? -1 : 0;
    profile *prof = get_profile(t->profile_name, t->profile_text, err, errlen);
    if (prof == NULL)
        return -1;
    planner pl;
    int rc = -1;
    if (planner_open(&pl, w, t, prof, counts, err, errlen) < 0)
        goto out;
    int64_t t_loop = mono_ms();
    if (plan_records(&pl, err, errlen) < 0)
        goto out;
    log_debug("job %s shard %u: %llu records, %llu unchanged by their memo; %lld ms to begin, %lld ms the records",
              t->job_id, t->shard, (unsigned long long)pl.nrec, (unsigned long long)pl.memo_hits,
              (long long)(t_loop - t0), (long long)(mono_ms() - t_loop));
    rc = plan_stage(&pl, path, err, errlen);
out:
    planner_close(&pl);
    return rc;
}
