/* hashes: record_hashes in the store, replaced in the apply step's
 * transaction from what the broker staged (stage_dir/<job>/incremental.pb,
 * written by broker/incremental.c).
 *
 * Tables (created here, in the store):
 *   record_hashes(schedule_id, key, hash)   one row per record of the
 *       schedule's last applied run that reached the store
 *   record_hash_runs(schedule_id, job_id, records, done_ms, fired_ms)
 *       which job left them ("no row" means: no previous run, process
 *       everything)
 * Changing them: add columns with defaults; the broker reads both. */
#include "hashes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

static const char *hash_schema =
    "CREATE TABLE IF NOT EXISTS record_hashes(schedule_id TEXT NOT NULL, key TEXT NOT NULL, hash INTEGER NOT NULL,\n"
    "  PRIMARY KEY(schedule_id, key)) WITHOUT ROWID;\n"
    "CREATE TABLE IF NOT EXISTS record_hash_runs(schedule_id TEXT PRIMARY KEY, job_id TEXT NOT NULL,\n"
    "  records INTEGER NOT NULL, done_ms INTEGER NOT NULL, fired_ms INTEGER NOT NULL DEFAULT 0);\n";

static int staged_path(const ps_config *c, const char *job, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "%s/%s/incremental.pb", c->stage_dir, job);
    return (n < 0 || (size_t)n >= outlen) ? -1 : 0;
}

/* The staged hashes: 1 read, 0 none staged, -1 error. */
static int load_staged(worker_ctx *w, const char *job, Patronsync__RecordHashes **out, char *err, size_t errlen)
{
    char path[2048];
    *out = NULL;
    if (staged_path(w->cfg, job, path, sizeof(path)) < 0) {
        err_set(err, errlen, "stage path too long");
        return -1;
    }
    if (access(path, F_OK) != 0)
        return 0;
    size_t len;
    char *data = file_read_all(path, (size_t)1 << 34, &len, err, errlen);
    if (data == NULL)
        return -1;
    *out = patronsync__record_hashes__unpack(NULL, len, (const uint8_t *)data);
    free(data);
    if (*out == NULL) {
        log_warn("job %s: staged %s does not decode; the schedule's next Incremental run processes every record", job,
                 path);
        return 0;
    }
    return 1;
}

/* ---- lines that did not reach the store ---- */

typedef struct {
    uint64_t *v;
    size_t n, cap;
} lineset;

static int lines_add(lineset *s, uint64_t line)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        uint64_t *v = realloc(s->v, cap * sizeof(*v));
        if (v == NULL)
            return -1;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = line;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int lines_has(const lineset *s, uint64_t line)
{
    return s->n > 0 && bsearch(&line, s->v, s->n, sizeof(uint64_t), cmp_u64) != NULL;
}

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0)
            return 0;
    }
    return -1;
}

/* The SKIP lines of a staged ShardPlan, read straight from its wire form:
 * only field 4 (exceptions) is decoded, the changes (field 5, the bulk of
 * a plan) are stepped over. 0 / -1 (does not decode). */
static int plan_skips(const uint8_t *buf, size_t len, lineset *out)
{
    const uint8_t *p = buf, *end = buf + len;
    while (p < end) {
        uint64_t tag, v;
        if (read_varint(&p, end, &tag) < 0)
            return -1;
        switch (tag & 7) {
        case 0:
            if (read_varint(&p, end, &v) < 0)
                return -1;
            break;
        case 1:
            if (end - p < 8)
                return -1;
            p += 8;
            break;
        case 5:
            if (end - p < 4)
                return -1;
            p += 4;
            break;
        case 2:
            if (read_varint(&p, end, &v) < 0 || v > (uint64_t)(end - p))
                return -1;
            if ((tag >> 3) == 4) {
                Patronsync__Exception *e = patronsync__exception__unpack(NULL, (size_t)v, p);
                if (e == NULL)
                    return -1;
                int r = strcmp(e->outcome, "SKIP") == 0 ? lines_add(out, e->line) : 0;
                patronsync__exception__free_unpacked(e, NULL);
                if (r < 0)
                    return -1;
            }
            p += v;
            break;
        default:
            return -1;
        }
    }
    return 0;
}

static int refused_lines(worker_ctx *w, const Patronsync__ApplyTask *t, const exc_list *exc, lineset *out, char *err,
                         size_t errlen)
{
    for (size_t i = 0; i < exc->n; i++)
        if (strcmp(exc->v[i]->outcome, "SKIP") == 0 && lines_add(out, exc->v[i]->line) < 0)
            goto oom;
    for (uint32_t s = 0; s < t->nshards; s++) {
        if (task_shard_failed(t, s))
            continue;
        char path[2048];
        if (plan_path(w->cfg, t->job_id, s, path, sizeof(path)) < 0) {
            err_set(err, errlen, "stage path too long");
            return -1;
        }
        size_t len;
        char *data = file_read_all(path, (size_t)1 << 34, &len, err, errlen);
        if (data == NULL)
            return -1;
        int r = plan_skips((const uint8_t *)data, len, out);
        free(data);
        if (r < 0) {
            err_set(err, errlen, "staged plan %s does not decode", path);
            return -1;
        }
    }
    if (out->n > 0)
        qsort(out->v, out->n, sizeof(uint64_t), cmp_u64);
    return 0;
oom:
    err_set(err, errlen, "out of memory");
    return -1;
}

static int exec_bound(sqlite3 *db, const char *sql, const char *a, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
        rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    }
    if (rc < 0)
        err_set(err, errlen, "store: record hashes: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return rc;
}

int hashes_apply(worker_ctx *w, const Patronsync__ApplyTask *t, Patronsync__Counts *counts, const exc_list *exc,
                 char *err, size_t errlen)
{
    const Patronsync__JobOptions *o = t->options;
    if (o == NULL || o->schedule_id == NULL || o->schedule_id[0] == '\0')
        return 0;
    sqlite3 *db = store_db(w->st);
    char *msg = NULL;
    if (sqlite3_exec(db, hash_schema, NULL, NULL, &msg) != SQLITE_OK) {
        err_set(err, errlen, "store: creating the record hash tables: %s", msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return -1;
    }
    Patronsync__RecordHashes *m = NULL;
    lineset refused = {0};
    sqlite3_stmt *ins = NULL;
    int rc = -1;
    int r = load_staged(w, t->job_id, &m, err, errlen);
    if (r < 0)
        goto out;
    /* A job fired before the one that left the hashes, applied after it
     * (a held job approved late): the store is no longer what either saw. */
    int64_t newer = 0;
    if (r == 1) {
        if (sqlite3_prepare_v2(db, "SELECT fired_ms FROM record_hash_runs WHERE schedule_id=?", -1, &ins, NULL) != SQLITE_OK)
            goto dberr;
        sqlite3_bind_text(ins, 1, o->schedule_id, -1, SQLITE_STATIC);
        if (sqlite3_step(ins) == SQLITE_ROW)
            newer = sqlite3_column_int64(ins, 0) > m->fired_at_ms;
        sqlite3_finalize(ins);
        ins = NULL;
        counts->read += m->dropped;
        counts->unchanged += m->dropped;
    }
    if (exec_bound(db, "DELETE FROM record_hashes WHERE schedule_id=?", o->schedule_id, err, errlen) < 0 ||
        exec_bound(db, "DELETE FROM record_hash_runs WHERE schedule_id=?", o->schedule_id, err, errlen) < 0)
        goto out;
    if (r == 0 || newer) {
        if (newer)
            log_info("job %s applied after a later job of schedule %s: its record hashes are cleared", t->job_id,
                     o->schedule_id);
        rc = 0;
        goto out;
    }
    if (refused_lines(w, t, exc, &refused, err, errlen) < 0)
        goto out;
    if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO record_hashes(schedule_id,key,hash) VALUES(?,?,?)", -1, &ins,
                           NULL) != SQLITE_OK)
        goto dberr;
    uint64_t kept = 0;
    for (size_t i = 0; i < m->n_records; i++) {
        const Patronsync__RecordHash *h = m->records[i];
        /* Left out (shard -1): applied by an earlier run and unchanged. */
        if (h->shard >= 0 && (task_shard_failed(t, (uint32_t)h->shard) || lines_has(&refused, h->line)))
            continue;
        sqlite3_reset(ins);
        sqlite3_bind_text(ins, 1, o->schedule_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 2, h->key, -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 3, (int64_t)h->hash);
        if (sqlite3_step(ins) != SQLITE_DONE)
            goto dberr;
        kept++;
    }
    sqlite3_finalize(ins);
    ins = NULL;
    if (sqlite3_prepare_v2(db,
                           "INSERT OR REPLACE INTO record_hash_runs(schedule_id,job_id,records,done_ms,fired_ms) "
                           "VALUES(?,?,?,?,?)",
                           -1, &ins, NULL) != SQLITE_OK)
        goto dberr;
    sqlite3_bind_text(ins, 1, o->schedule_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(ins, 2, t->job_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(ins, 3, (int64_t)kept);
    sqlite3_bind_int64(ins, 4, now_ms());
    sqlite3_bind_int64(ins, 5, m->fired_at_ms);
    if (sqlite3_step(ins) != SQLITE_DONE)
        goto dberr;
    log_info("job %s: %llu record hashes kept for schedule %s (%llu left out as unchanged, %zu lines refused)",
             t->job_id, (unsigned long long)kept, o->schedule_id, (unsigned long long)m->dropped, refused.n);
    rc = 0;
    goto out;
dberr:
    err_set(err, errlen, "store: record hashes: %s", sqlite3_errmsg(db));
out:
    sqlite3_finalize(ins);
    free(refused.v);
    if (m)
        patronsync__record_hashes__free_unpacked(m, NULL);
    return rc;
}

static int cmp_i64v(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int hashes_unsent_patrons(worker_ctx *w, const char *job, int64_t **ids, size_t *nids, char ***sites,
                          size_t *nsites, char *err, size_t errlen)
{
    *ids = NULL;
    *nids = 0;
    *sites = NULL;
    *nsites = 0;
    Patronsync__RecordHashes *m = NULL;
    int r = load_staged(w, job, &m, err, errlen);
    if (r <= 0)
        return r;
    int rc = -1;
    size_t cap = 0, capsites = 0;
    patron_rec rec;
    patron_rec_init(&rec);
    int by = m->match_district_id ? PF_DISTRICT_ID : PF_BARCODE;
    for (size_t i = 0; i < m->n_records; i++) {
        if (m->records[i]->shard >= 0)
            continue;
        store_patron_meta meta;
        int found = store_find(w->st, by, m->records[i]->key, &rec, &meta, err, errlen);
        if (found < 0)
            goto out;
        if (found == 0)
            continue;
        if (*nids == cap) {
            size_t nc = cap ? cap * 2 : 1024;
            int64_t *v = realloc(*ids, nc * sizeof(*v));
            if (v == NULL)
                goto oom;
            *ids = v;
            cap = nc;
        }
        (*ids)[(*nids)++] = meta.id;
        const char *site = patron_rec_get(&rec, PF_SITE_SHORT_NAME);
        int have = 0;
        for (size_t k = 0; k < *nsites && !have; k++)
            have = strcmp((*sites)[k], site) == 0;
        if (have || *site == '\0')
            continue;
        if (*nsites == capsites) {
            size_t nc = capsites ? capsites * 2 : 16;
            char **v = realloc(*sites, nc * sizeof(*v));
            if (v == NULL)
                goto oom;
            *sites = v;
            capsites = nc;
        }
        (*sites)[*nsites] = strdup(site);
        if ((*sites)[*nsites] == NULL)
            goto oom;
        (*nsites)++;
    }
    if (*nids > 1) {
        qsort(*ids, *nids, sizeof(int64_t), cmp_i64v);
        size_t k = 1;
        for (size_t i = 1; i < *nids; i++)
            if ((*ids)[i] != (*ids)[k - 1])
                (*ids)[k++] = (*ids)[i];
        *nids = k;
    }
    rc = 0;
    goto out;
oom:
    err_set(err, errlen, "out of memory");
out:
    patron_rec_free(&rec);
    patronsync__record_hashes__free_unpacked(m, NULL);
    if (rc < 0) {
        for (size_t k = 0; k < *nsites; k++)
            free((*sites)[k]);
        free(*sites);
        free(*ids);
        *ids = NULL;
        *sites = NULL;
        *nids = *nsites = 0;
    }
    return rc;
}
