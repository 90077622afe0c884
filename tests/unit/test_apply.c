/* test_apply: the worker's apply step (worker/apply.c) on a real store in a
 * folder of its own, from plans the plan step staged — a first load, a
 * repeated apply, a patron changed since the plan, a dry run, a job held
 * by a threshold, a failed shard — each case in a process of its own
 * (t_fork.h). What the store holds is read through a connection of the
 * test's own (t_sql.h). */
#include "../../worker/apply.h"
#include "../../worker/plan.h"
#include "t_fork.h"
#include "t_sql.h"
#include "t_worker.h"

#include "log.h"
#include "safety.h"

/* Plan csv as shard `shard` of job (the store as a plan task opens it). */
static void plan(t_env *e, const char *job, unsigned shard, const char *csv, unsigned n)
{
    char err[ERRLEN] = "";
    t_env_reopen(e, STORE_READONLY);
    Patronsync__ShardTask t = t_shard_task(job, shard, csv, n);
    Patronsync__Counts counts;
    int rc = plan_shard(&e->w, &t, &counts, err, sizeof(err));
    CHECK(rc == 0);
    if (rc != 0)
        printf("  plan: %s\n", err);
}

/* Apply job's nshards staged plans with options o (NULL: the defaults). */
static int apply(t_env *e, const char *job, unsigned nshards, const Patronsync__JobOptions *o,
                 Patronsync__ApplyResult *res, Patronsync__Counts *counts, char *err, size_t errlen)
{
    t_env_reopen(e, 0);
    Patronsync__ApplyTask t = PATRONSYNC__APPLY_TASK__INIT;
    t.job_id = (char *)job;
    t.attempt = 1;
    t.nshards = nshards;
    t.options = (Patronsync__JobOptions *)o;
    t.records_read = 2;
    t.today = "2026-12-08";
    patronsync__apply_result__init(res);
    patronsync__counts__init(counts);
    res->counts = counts;
    return apply_job(&e->w, &t, res, err, errlen);
}

static int64_t patrons(t_env *e, const char *where)
{
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM patrons%s%s", where ? " WHERE " : "", where ? where : "");
    return t_sql_int(e->cfg.store_path, sql);
}

static const char *const two_new = "2001,Cole,Ava,LHS,P2001,Student\n2002,Diaz,Noah,LHS,P2002,Student\n";

/* A data folder whose store job1 loaded with two_new. */
static void first_load(t_env *e)
{
    char err[ERRLEN] = "";
    t_env_open(e);
    plan(e, "job1", 0, two_new, 2);
    Patronsync__ApplyResult res;
    Patronsync__Counts counts;
    CHECK(apply(e, "job1", 1, NULL, &res, &counts, err, sizeof(err)) == 0);
}

static void a_first_load_adds_every_patron_once(void)
{
    t_env e;
    t_env_open(&e);
    char err[ERRLEN] = "";
    plan(&e, "job1", 0, two_new, 2);
    Patronsync__ApplyResult res;
    Patronsync__Counts counts;
    CHECK(apply(&e, "job1", 1, NULL, &res, &counts, err, sizeof(err)) == 0);
    CHECK(counts.added == 2 && counts.read == 2);
    CHECK_STR(t_pub.part, "apply");
    CHECK(t_pub.counts.added == 2);
    CHECK(patrons(&e, NULL) == 2);
    CHECK(patrons(&e, "district_id='2002' AND last_name='Diaz' AND created_job='job1'") == 1);
    CHECK(t_sql_int(e.cfg.store_path, "SELECT count(*) FROM job_markers WHERE job_id='job1' AND step='apply'") == 1);
    /* A bulk load keeps one before-image for its adds: the range of ids. */
    CHECK(t_sql_int(e.cfg.store_path, "SELECT count(*) FROM job_changes WHERE job_id='job1' AND op=10") == 1);
    /* The patron type the records name is created with its line. */
    CHECK(t_sql_int(e.cfg.store_path, "SELECT count(*) FROM patron_types WHERE name='Student'") == 1);
    /* Applied again (a retry): the stored result, nothing written twice. */
    int calls = t_pub.calls;
    CHECK(apply(&e, "job1", 1, NULL, &res, &counts, err, sizeof(err)) == 0);
    CHECK(counts.added == 2 && t_pub.calls == calls + 1 && t_pub.counts.added == 2);
    CHECK(patrons(&e, NULL) == 2);
    t_env_close(&e);
}

static void a_patron_changed_since_the_plan_is_refused(void)
{
    t_env e;
    char err[ERRLEN] = "";
    first_load(&e);
    Patronsync__ApplyResult res;
    Patronsync__Counts counts;
    /* job2 plans an update of 2001; then another job changes 2001 first. */
    plan(&e, "job2", 0, "2001,Cole,Ava,LHS,P2001,Teacher\n2002,Diaz,Noah,LHS,P2002,Student\n", 2);
    t_env_reopen(&e, 0);
    CHECK(store_exec(e.w.st, "UPDATE patrons SET first_name='Eva', row_hash=row_hash+1 WHERE district_id='2001'", err,
                     sizeof(err)) == 0);
    Patronsync__JobOptions o;
    safety_options_init(&o);
    o.thresholds_set = 1;
    o.max_update_pct = -1;
    o.max_remove_pct = -1;
    CHECK(apply(&e, "job2", 1, &o, &res, &counts, err, sizeof(err)) == 0);
    CHECK(counts.updated == 0 && counts.invalid_skipped == 1 && counts.unchanged == 1);
    CHECK(t_pub_has("2 SKIP Patron changed since this job was planned; not updated."));
    CHECK(patrons(&e, "district_id='2001' AND first_name='Eva' AND patron_type='Student'") == 1);
    t_env_close(&e);
}

static void a_dry_run_changes_nothing(void)
{
    t_env e;
    t_env_open(&e);
    char err[ERRLEN] = "";
    plan(&e, "job1", 0, two_new, 2);
    Patronsync__JobOptions o;
    safety_options_init(&o);
    o.dry_run = 1;
    Patronsync__ApplyResult res;
    Patronsync__Counts counts;
    CHECK(apply(&e, "job1", 1, &o, &res, &counts, err, sizeof(err)) == 0);
    CHECK(counts.added == 2 && t_pub.counts.added == 2 && !res.held);
    CHECK(patrons(&e, NULL) == 0);
    CHECK(t_sql_int(e.cfg.store_path, "SELECT count(*) FROM job_markers") == 0);
    CHECK(t_sql_int(e.cfg.store_path, "SELECT count(*) FROM job_changes") == 0);
    t_env_close(&e);
}

static void a_job_past_a_threshold_is_held_with_its_preview(void)
{
    t_env e;
    char err[ERRLEN] = "";
    first_load(&e);
    Patronsync__ApplyResult res;
    Patronsync__Counts counts;
    /* Both patrons updated: more than the default update limit. */
    plan(&e, "job2", 0, "2001,Cole,Ava,LHS,P2001,Teacher\n2002,Diaz,Noah,LHS,P2002,Teacher\n", 2);
    CHECK(apply(&e, "job2", 1, NULL, &res, &counts, err, sizeof(err)) == 0);
    CHECK(res.held && res.held_reason != NULL && strstr(res.held_reason, "more than the limit") != NULL);
    CHECK(t_pub_has("2 PREVIEW Would be updated (Patron Type)."));
    CHECK(patrons(&e, "patron_type='Teacher'") == 0);
    CHECK(t_staged(&e, "job2", "finish.plan"));
    t_env_close(&e);
}

static void a_failed_shard_is_left_out(void)
{
    t_env e;
    t_env_open(&e);
    char err[ERRLEN] = "";
    plan(&e, "job1", 0, "2001,Cole,Ava,LHS,P2001,Student\n", 1);
    plan(&e, "job1", 1, "2002,Diaz,Noah,LHS,P2002,Student\n", 1);
    t_env_reopen(&e, 0);
    Patronsync__ApplyTask t = PATRONSYNC__APPLY_TASK__INIT;
    uint32_t failed[1] = {1};
    t.job_id = "job1";
    t.attempt = 1;
    t.nshards = 2;
    t.failed_shards = failed;
    t.n_failed_shards = 1;
    t.records_read = 2;
    Patronsync__ApplyResult res = PATRONSYNC__APPLY_RESULT__INIT;
    Patronsync__Counts counts = PATRONSYNC__COUNTS__INIT;
    res.counts = &counts;
    CHECK(apply_job(&e.w, &t, &res, err, sizeof(err)) == 0);
    CHECK(counts.added == 1);
    CHECK(patrons(&e, NULL) == 1 && patrons(&e, "district_id='2001'") == 1);
    t_env_close(&e);
}

static void a_missing_plan_fails_the_apply(void)
{
    t_env e;
    t_env_open(&e);
    char err[ERRLEN] = "";
    Patronsync__ApplyResult res;
    Patronsync__Counts counts;
    CHECK(apply(&e, "job1", 1, NULL, &res, &counts, err, sizeof(err)) == -1);
    CHECK(err[0] != '\0');
    CHECK(t_pub.calls == 0);
    CHECK(t_sql_int(e.cfg.store_path, "SELECT count(*) FROM job_markers") == 0);
    t_env_close(&e);
}

int main(void)
{
    log_init("test_apply", LOG_ERROR);
    T_FORK(a_first_load_adds_every_patron_once);
    T_FORK(a_patron_changed_since_the_plan_is_refused);
    T_FORK(a_dry_run_changes_nothing);
    T_FORK(a_job_past_a_threshold_is_held_with_its_preview);
    T_FORK(a_failed_shard_is_left_out);
    T_FORK(a_missing_plan_fails_the_apply);
    T_END();
}
