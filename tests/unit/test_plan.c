/* test_plan: the worker's plan step (worker/plan.c) on a real store in a
 * folder of its own — what a shard stages and publishes for new, changed,
 * unchanged and refused records, a retried shard, the broker's notes —
 * each case in a process of its own (t_fork.h). */
#include "../../worker/plan.h"
#include "t_fork.h"
#include "t_worker.h"

#include "log.h"
#include "safety.h"

/* Two stored patrons: 1001 Adams Emma and 1002 Brown Liam, both at LHS. */
static void seed(t_env *e)
{
    char err[ERRLEN];
    static const char *rows[2][6] = {{"1001", "Adams", "Emma", "LHS", "P1001", "Student"},
                                     {"1002", "Brown", "Liam", "LHS", "P1002", "Student"}};
    static const int fields[6] = {PF_DISTRICT_ID, PF_LAST_NAME, PF_FIRST_NAME, PF_SITE_SHORT_NAME, PF_BARCODE,
                                  PF_PATRON_TYPE};
    patron_rec r;
    patron_rec_init(&r);
    for (int i = 0; i < 2; i++) {
        patron_rec_reset(&r);
        for (int f = 0; f < PF__COUNT; f++)
            patron_rec_set(&r, f, "", 0, PV_VALUE);
        for (int k = 0; k < 6; k++)
            patron_rec_set(&r, fields[k], rows[i][k], strlen(rows[i][k]), PV_VALUE);
        int64_t id;
        CHECK(store_insert(e->w.st, &r, "seed", 0, &id, err, sizeof(err)) == 0);
    }
    CHECK(store_ref_add(e->w.st, STORE_REF_PATRON_TYPE, "Student", NULL, err, sizeof(err)) >= 0);
    patron_rec_free(&r);
}

/* Plan csv as shard 0 of job against the store as a plan task opens it. */
static int plan(t_env *e, const char *job, const char *csv, unsigned n, Patronsync__Counts *counts, char *err,
                size_t errlen)
{
    t_env_reopen(e, STORE_READONLY);
    Patronsync__ShardTask t = t_shard_task(job, 0, csv, n);
    return plan_shard(&e->w, &t, counts, err, errlen);
}

static void new_records_are_staged_as_adds(void)
{
    t_env e;
    t_env_open(&e);
    char err[ERRLEN] = "";
    Patronsync__Counts counts;
    const char *csv = "2001,Cole,Ava,LHS,P2001,Student\n2002,Diaz,Noah,LHS,P2002,Student\n";
    CHECK(plan(&e, "job1", csv, 2, &counts, err, sizeof(err)) == 0);
    CHECK(counts.read == 2 && counts.added == 2 && counts.invalid_skipped == 0);
    CHECK(t_pub.calls == 1);
    CHECK_STR(t_pub.part, "s000000");
    CHECK(t_pub.counts.added == 2);
    Patronsync__ShardPlan *p = t_staged_plan(&e, "job1", 0);
    CHECK(p != NULL && p->n_changes == 2);
    if (p != NULL && p->n_changes == 2) {
        CHECK(p->changes[0]->op == SAFETY_OP_ADD && p->changes[0]->line == 2);
        CHECK_STR(p->changes[1]->key, "2002");
        CHECK(p->changes[1]->line == 3);
    }
    if (p)
        patronsync__shard_plan__free_unpacked(p, NULL);
    /* what the shard saw is staged beside its plan */
    CHECK(t_staged(&e, "job1", "shard-000000.seen"));
    t_env_close(&e);
}

static void changed_unchanged_and_refused_records(void)
{
    t_env e;
    t_env_open(&e);
    seed(&e);
    char err[ERRLEN] = "";
    Patronsync__Counts counts;
    const char *csv = "1001,Adams,Emma,LHS,P1001,Student\n" /* unchanged */
                      "1002,Brown,Leo,LHS,P1002,Student\n"  /* first name changed */
                      "1003,Evans,Mia,NOPE,P1003,Student\n" /* no such site */
                      "1004,Fox,Eli,LHS,P1001,Student\n";   /* another patron's barcode */
    CHECK(plan(&e, "job1", csv, 4, &counts, err, sizeof(err)) == 0);
    CHECK(counts.read == 4);
    CHECK(counts.unchanged == 1);
    CHECK(counts.updated == 1);
    CHECK(counts.added == 0);
    CHECK(counts.invalid_skipped == 2);
    CHECK(t_pub_has("4 SKIP"));
    CHECK(t_pub_has("NOPE"));
    /* The update, and the unchanged record's memo (made: the patron was
     * written without one) for the next run to find it unchanged by. */
    Patronsync__ShardPlan *p = t_staged_plan(&e, "job1", 0);
    CHECK(p != NULL && p->n_changes == 2);
    if (p != NULL && p->n_changes == 2) {
        const Patronsync__Change *m = p->changes[0], *c = p->changes[1];
        CHECK(m->op == SAFETY_OP_MEMO && m->line == 2 && m->memo != 0);
        CHECK(c->op == SAFETY_OP_UPDATE && c->line == 3 && c->patron_id > 0);
        CHECK(c->changed == ((uint64_t)1 << PF_FIRST_NAME));
        CHECK(c->before_hash != 0);
    }
    if (p)
        patronsync__shard_plan__free_unpacked(p, NULL);
    t_env_close(&e);
}

static void a_retried_shard_returns_its_staged_result(void)
{
    t_env e;
    t_env_open(&e);
    char err[ERRLEN] = "";
    Patronsync__Counts counts, again;
    CHECK(plan(&e, "job1", "2001,Cole,Ava,LHS,P2001,Student\n", 1, &counts, err, sizeof(err)) == 0);
    /* The same shard with other data: the staged plan stands. */
    CHECK(plan(&e, "job1", "2001,Cole,Ava,LHS,P2001,Student\n2002,Diaz,Noah,LHS,P2002,Student\n", 2, &again, err,
               sizeof(err)) == 0);
    CHECK(again.read == counts.read && again.added == 1);
    CHECK(t_pub.calls == 2 && t_pub.counts.added == 1);
    Patronsync__ShardPlan *p = t_staged_plan(&e, "job1", 0);
    CHECK(p != NULL && p->n_changes == 1);
    if (p)
        patronsync__shard_plan__free_unpacked(p, NULL);
    t_env_close(&e);
}

static void notes_and_malformed_rows_are_lines(void)
{
    t_env e;
    t_env_open(&e);
    char err[ERRLEN] = "";
    t_env_reopen(&e, STORE_READONLY);
    const char *csv = "2001,Cole,Ava,LHS,P2001,Student\n"
                      "2001,Cole,Ava,LHS,P2001,Student\n"
                      "2003,Gray,Zoe\n"
                      "2004,\"Hill,Ian,LHS,P2004,Student\n";
    Patronsync__ShardTask t = t_shard_task("job1", 0, csv, 4);
    Patronsync__RecordNote note = PATRONSYNC__RECORD_NOTE__INIT, *np = &note;
    note.line = 2; /* superseded by line 3 */
    note.kind = 0;
    note.key = "2001";
    note.by_line = 3;
    t.notes = &np;
    t.n_notes = 1;
    Patronsync__Counts counts;
    CHECK(plan_shard(&e.w, &t, &counts, err, sizeof(err)) == 0);
    CHECK(counts.read == 4);
    CHECK(counts.duplicates_superseded == 1);
    CHECK(counts.added == 1);
    CHECK(counts.invalid_skipped == 2);
    CHECK(t_pub_has("2 SKIP District ID '2001' appears again on line 3"));
    CHECK(t_pub_has("4 SKIP Line 4: 3 fields; the profile expects at least 6."));
    CHECK(t_pub_has("5 SKIP Line 5: a quoted field is not closed"));
    t_env_close(&e);
}

static void a_profile_that_does_not_parse_fails_the_shard(void)
{
    t_env e;
    t_env_open(&e);
    char err[ERRLEN] = "";
    Patronsync__Counts counts;
    /* A profile that does not parse: the shard fails with its reason. */
    t_env_reopen(&e, STORE_READONLY);
    Patronsync__ShardTask t = t_shard_task("job1", 0, "2001,Cole,Ava,LHS,P2001,Student\n", 1);
    t.profile_text = "field_favoriteColor={1}\n";
    CHECK(plan_shard(&e.w, &t, &counts, err, sizeof(err)) == -1);
    CHECK(strstr(err, "favoriteColor") != NULL);
    CHECK(t_pub.calls == 0);
    t_env_close(&e);
}

int main(void)
{
    log_init("test_plan", LOG_ERROR);
    T_FORK(new_records_are_staged_as_adds);
    T_FORK(changed_unchanged_and_refused_records);
    T_FORK(a_retried_shard_returns_its_staged_result);
    T_FORK(notes_and_malformed_rows_are_lines);
    T_FORK(a_profile_that_does_not_parse_fails_the_shard);
    T_END();
}
