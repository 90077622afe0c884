/* test_hashes: the store side of Incremental runs against a real store and
 * real staged files — which records' hashes a job keeps (not the refused
 * ones, not a failed shard's), the counts it adds, a job without staged
 * hashes, and the patrons of the records left out. */
#include "../../worker/hashes.h"
#include "t.h"
#include "t_sql.h"

#include <stdlib.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

typedef struct {
    worker_ctx w;
    ps_config cfg;
    char dir[256];
} env;

static void env_open(env *e)
{
    memset(e, 0, sizeof(*e));
    snprintf(e->dir, sizeof(e->dir), "/tmp/test_hashes.XXXXXX");
    if (mkdtemp(e->dir) == NULL)
        abort();
    config_defaults(&e->cfg);
    config_set(&e->cfg, "data_dir", e->dir, NULL, 0);
    char err[ERRLEN];
    if (config_finish(&e->cfg, err, sizeof(err)) < 0)
        abort();
    e->w.cfg = &e->cfg;
    e->w.st = store_open(e->cfg.store_path, 8, 0, err, sizeof(err));
    if (e->w.st == NULL) {
        printf("store: %s\n", err);
        abort();
    }
}

static void env_close(env *e)
{
    store_close(&e->w.st);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
    if (system(cmd) != 0)
        printf("cleanup of %s failed\n", e->dir);
}

static void stage_file(env *e, const char *job, const char *leaf, const void *buf, size_t len)
{
    char dir[1200], path[1300];
    snprintf(dir, sizeof(dir), "%s/%s", e->cfg.stage_dir, job);
    snprintf(path, sizeof(path), "%s/%s", dir, leaf);
    mkdir_p(dir, 0750, NULL, 0);
    file_write_atomic(path, buf, len, NULL, 0);
}

/* incremental.pb with records key<i> on line i+2, shard shards[i] (-1: left out). */
static void stage_hashes(env *e, const char *job, const int *shards, size_t n, uint64_t dropped, int64_t fired_ms)
{
    Patronsync__RecordHash rh[16], *rp[16];
    char keys[16][32];
    for (size_t i = 0; i < n; i++) {
        patronsync__record_hash__init(&rh[i]);
        snprintf(keys[i], sizeof(keys[i]), "key%zu", i);
        rh[i].key = keys[i];
        rh[i].hash = 1000 + i;
        rh[i].line = i + 2;
        rh[i].shard = shards[i];
        rp[i] = &rh[i];
    }
    Patronsync__RecordHashes m = PATRONSYNC__RECORD_HASHES__INIT;
    m.schedule_id = "sabc";
    m.incremental = 1;
    m.dropped = dropped;
    m.records = rp;
    m.n_records = n;
    m.match_district_id = 1;
    m.fired_at_ms = fired_ms;
    uint8_t buf[4096];
    size_t len = patronsync__record_hashes__pack(&m, buf);
    stage_file(e, job, "incremental.pb", buf, len);
}

/* A shard plan with a change (the bulk the reader steps over) and the given SKIP / INFO lines. */
static void stage_plan(env *e, const char *job, unsigned shard, const uint64_t *skip, size_t nskip, uint64_t info)
{
    Patronsync__Exception ex[8], *xp[8];
    size_t n = 0;
    for (size_t i = 0; i < nskip; i++) {
        patronsync__exception__init(&ex[n]);
        ex[n].line = skip[i];
        ex[n].outcome = "SKIP";
        ex[n].message = "refused";
        xp[n] = &ex[n];
        n++;
    }
    patronsync__exception__init(&ex[n]);
    ex[n].line = info;
    ex[n].outcome = "INFO";
    xp[n] = &ex[n];
    n++;
    char *vals[2] = {"x", "y"};
    Patronsync__Change c = PATRONSYNC__CHANGE__INIT, *cp = &c;
    c.op = 1;
    c.line = info;
    c.key = "k";
    c.values = vals;
    c.n_values = 2;
    Patronsync__Counts counts = PATRONSYNC__COUNTS__INIT;
    Patronsync__ShardPlan p = PATRONSYNC__SHARD_PLAN__INIT;
    p.job_id = (char *)job;
    p.shard = shard;
    p.counts = &counts;
    p.exceptions = xp;
    p.n_exceptions = n;
    p.changes = &cp;
    p.n_changes = 1;
    uint8_t buf[4096];
    size_t len = patronsync__shard_plan__pack(&p, buf);
    char leaf[64];
    snprintf(leaf, sizeof(leaf), "shard-%06u.plan", shard);
    stage_file(e, job, leaf, buf, len);
}

static int64_t count(env *e, const char *sql)
{
    int64_t n = t_sql_int(e->cfg.store_path, sql);
    return n;
}

static void test_apply_keeps_what_reached_the_store(void)
{
    env e;
    env_open(&e);
    /* Ten records: 0-2 left out, 3-5 in shard 0, 6-7 in shard 1 (failed), 8-9 in shard 2. */
    const int shards[10] = {-1, -1, -1, 0, 0, 0, 1, 1, 2, 2};
    stage_hashes(&e, "job1", shards, 10, 3, 5000);
    const uint64_t refused[1] = {6}; /* record 4 (line 6): refused in planning */
    stage_plan(&e, "job1", 0, refused, 1, 5);
    stage_plan(&e, "job1", 2, NULL, 0, 10);
    exc_list exc;
    exc_list_init(&exc);
    exc_add(&exc, 11, "key9", "", "SKIP", "refused when applied");
    exc_add(&exc, 10, "key8", "", "INFO", "a note");
    uint32_t failed[1] = {1};
    Patronsync__JobOptions o = PATRONSYNC__JOB_OPTIONS__INIT;
    o.schedule_id = "sabc";
    o.incremental = 1;
    Patronsync__ApplyTask t = PATRONSYNC__APPLY_TASK__INIT;
    t.job_id = "job1";
    t.nshards = 3;
    t.options = &o;
    t.failed_shards = failed;
    t.n_failed_shards = 1;
    Patronsync__Counts counts = PATRONSYNC__COUNTS__INIT;
    counts.read = 7;
    counts.unchanged = 1;
    char err[ERRLEN] = "";
    CHECK(store_begin(e.w.st, 1, err, sizeof(err)) == 0);
    CHECK(hashes_apply(&e.w, &t, &counts, &exc, err, sizeof(err)) == 0);
    CHECK(store_commit(e.w.st, err, sizeof(err)) == 0);
    if (err[0])
        printf("  %s\n", err);
    CHECK(counts.read == 10 && counts.unchanged == 4);
    /* Kept: 0,1,2 (left out), 3, 5 (shard 0 but line 6 refused), 8 (9 refused when applied). */
    CHECK(count(&e, "SELECT count(*) FROM record_hashes WHERE schedule_id='sabc'") == 6);
    CHECK(count(&e, "SELECT count(*) FROM record_hashes WHERE key IN ('key0','key1','key2','key3','key5','key8')") == 6);
    CHECK(count(&e, "SELECT hash FROM record_hashes WHERE key='key5'") == 1005);
    CHECK(count(&e, "SELECT records FROM record_hash_runs WHERE schedule_id='sabc' AND job_id='job1'") == 6);

    /* A job fired before job1, applied after it (a held job approved late): the hashes are cleared. */
    const int one[1] = {0};
    stage_hashes(&e, "job0", one, 1, 0, 4000);
    stage_plan(&e, "job0", 0, NULL, 0, 2);
    Patronsync__ApplyTask t0 = t;
    t0.job_id = "job0";
    t0.nshards = 1;
    t0.n_failed_shards = 0;
    Patronsync__Counts c0 = PATRONSYNC__COUNTS__INIT;
    CHECK(store_begin(e.w.st, 1, err, sizeof(err)) == 0);
    CHECK(hashes_apply(&e.w, &t0, &c0, &exc, err, sizeof(err)) == 0);
    store_rollback(e.w.st);
    CHECK(count(&e, "SELECT count(*) FROM record_hashes") == 6);
    CHECK(store_begin(e.w.st, 1, err, sizeof(err)) == 0);
    CHECK(hashes_apply(&e.w, &t0, &c0, &exc, err, sizeof(err)) == 0);
    CHECK(store_commit(e.w.st, err, sizeof(err)) == 0);
    CHECK(count(&e, "SELECT count(*) FROM record_hashes") + count(&e, "SELECT count(*) FROM record_hash_runs") == 0);
    /* job1 again (a retry that found no marker): its hashes are back. */
    CHECK(store_begin(e.w.st, 1, err, sizeof(err)) == 0);
    counts.read = 7;
    CHECK(hashes_apply(&e.w, &t, &counts, &exc, err, sizeof(err)) == 0);
    CHECK(store_commit(e.w.st, err, sizeof(err)) == 0);
    CHECK(count(&e, "SELECT count(*) FROM record_hashes") == 6);

    /* A later job of the schedule without staged hashes: the next Incremental run starts over. */
    Patronsync__ApplyTask t2 = t;
    t2.job_id = "job2";
    t2.n_failed_shards = 0;
    t2.nshards = 0;
    Patronsync__Counts c2 = PATRONSYNC__COUNTS__INIT;
    CHECK(store_begin(e.w.st, 1, err, sizeof(err)) == 0);
    CHECK(hashes_apply(&e.w, &t2, &c2, &exc, err, sizeof(err)) == 0);
    store_rollback(e.w.st); /* a held job or a dry run: nothing changes */
    CHECK(count(&e, "SELECT count(*) FROM record_hashes") == 6);
    CHECK(store_begin(e.w.st, 1, err, sizeof(err)) == 0);
    CHECK(hashes_apply(&e.w, &t2, &c2, &exc, err, sizeof(err)) == 0);
    CHECK(store_commit(e.w.st, err, sizeof(err)) == 0);
    CHECK(count(&e, "SELECT count(*) FROM record_hashes") == 0);
    CHECK(count(&e, "SELECT count(*) FROM record_hash_runs") == 0);
    CHECK(c2.read == 0);

    /* Not a schedule's job: nothing at all. */
    Patronsync__JobOptions plain = PATRONSYNC__JOB_OPTIONS__INIT;
    t2.options = &plain;
    CHECK(hashes_apply(&e.w, &t2, &c2, &exc, err, sizeof(err)) == 0);
    exc_list_free(&exc);
    env_close(&e);
}

static void test_plan_that_does_not_decode(void)
{
    env e;
    env_open(&e);
    const int shards[2] = {0, 0};
    stage_hashes(&e, "job3", shards, 2, 0, 0);
    stage_file(&e, "job3", "shard-000000.plan", "\x22\xff\xff\xff", 4);
    Patronsync__JobOptions o = PATRONSYNC__JOB_OPTIONS__INIT;
    o.schedule_id = "sabc";
    Patronsync__ApplyTask t = PATRONSYNC__APPLY_TASK__INIT;
    t.job_id = "job3";
    t.nshards = 1;
    t.options = &o;
    Patronsync__Counts counts = PATRONSYNC__COUNTS__INIT;
    exc_list exc;
    exc_list_init(&exc);
    char err[ERRLEN] = "";
    CHECK(store_begin(e.w.st, 1, err, sizeof(err)) == 0);
    CHECK(hashes_apply(&e.w, &t, &counts, &exc, err, sizeof(err)) < 0);
    CHECK(strstr(err, "does not decode") != NULL);
    store_rollback(e.w.st);
    exc_list_free(&exc);
    env_close(&e);
}

static void test_unsent_patrons(void)
{
    env e;
    env_open(&e);
    char err[ERRLEN] = "";
    patron_rec r;
    patron_rec_init(&r);
    static const char *sites[4] = {"LHS", "LES", "LHS", "LMS"};
    int64_t ids[4];
    CHECK(store_begin(e.w.st, 1, err, sizeof(err)) == 0);
    for (int i = 0; i < 4; i++) {
        char key[16];
        snprintf(key, sizeof(key), "key%d", i);
        patron_rec_reset(&r);
        patron_rec_set(&r, PF_DISTRICT_ID, key, strlen(key), PV_VALUE);
        patron_rec_set(&r, PF_LAST_NAME, "Doe", 3, PV_VALUE);
        patron_rec_set(&r, PF_SITE_SHORT_NAME, sites[i], strlen(sites[i]), PV_VALUE);
        CHECK(store_insert(e.w.st, &r, "seed", 0, &ids[i], err, sizeof(err)) == 0);
    }
    CHECK(store_commit(e.w.st, err, sizeof(err)) == 0);
    patron_rec_free(&r);
    /* key0, key2 and key5 (not stored) left out; key1 and key3 sent. */
    const int shards[6] = {-1, 0, -1, 0, 0, -1};
    stage_hashes(&e, "job4", shards, 6, 3, 0);
    int64_t *got = NULL;
    size_t n = 0, ns = 0;
    char **gs = NULL;
    CHECK(hashes_unsent_patrons(&e.w, "job4", &got, &n, &gs, &ns, err, sizeof(err)) == 0);
    CHECK(n == 2 && got[0] == ids[0] && got[1] == ids[2]);
    CHECK(ns == 1 && strcmp(gs[0], "LHS") == 0);
    for (size_t i = 0; i < ns; i++)
        free(gs[i]);
    free(gs);
    free(got);
    CHECK(hashes_unsent_patrons(&e.w, "no-such-job", &got, &n, &gs, &ns, err, sizeof(err)) == 0);
    CHECK(n == 0 && ns == 0 && got == NULL && gs == NULL);
    env_close(&e);
}

int main(void)
{
    log_init("test_hashes", LOG_ERROR);
    T_RUN(test_apply_keeps_what_reached_the_store);
    T_RUN(test_plan_that_does_not_decode);
    T_RUN(test_unsent_patrons);
    T_END();
}
