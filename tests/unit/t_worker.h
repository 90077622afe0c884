/* t_worker.h: a worker's task context for the unit tests of its plan and
 * apply steps — a data folder of its own under /tmp with a real store
 * (one site, LHS), the worker's settings, and a publish callback that
 * keeps what a step published instead of sending it to Redis. */
#ifndef T_WORKER_H
#define T_WORKER_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../worker/task.h"
#include "stage.h"
#include "t.h"
#include "util.h"

/* What the step published last. */
static struct {
    int calls;
    char part[32];
    Patronsync__Counts counts;
    char lines[16][512]; /* "<line> <outcome> <message>" */
    size_t nlines;
} t_pub;

static int t_publish(worker_ctx *w, const char *job, const char *part, const Patronsync__Counts *c,
                     Patronsync__Exception *const *exc, size_t nexc, unsigned attempt)
{
    (void)w, (void)job, (void)attempt;
    t_pub.calls++;
    snprintf(t_pub.part, sizeof(t_pub.part), "%s", part);
    t_pub.counts = c ? *c : (Patronsync__Counts)PATRONSYNC__COUNTS__INIT;
    t_pub.nlines = 0;
    for (size_t i = 0; i < nexc && i < 16; i++) {
        snprintf(t_pub.lines[i], sizeof(t_pub.lines[i]), "%llu %s %s", (unsigned long long)exc[i]->line,
                 exc[i]->outcome, exc[i]->message);
        t_pub.nlines++;
    }
    return 0;
}

/* Whether a published line holds s. */
static inline int t_pub_has(const char *s)
{
    for (size_t i = 0; i < t_pub.nlines; i++)
        if (strstr(t_pub.lines[i], s) != NULL)
            return 1;
    return 0;
}

typedef struct {
    worker_ctx w;
    ps_config cfg;
    char dir[256];
} t_env;

/* The profile the tests plan with: a row is id,last,first,site,barcode,type. */
static const char *const t_profile = "field_districtID={1}\n"
                                     "field_lastName={2}\n"
                                     "field_firstName={3}\n"
                                     "field_siteShortName={4}\n"
                                     "field_barcode={5}\n"
                                     "field_patronType={6}\n";

/* A data folder, its store with site LHS (open read-write as e->w.st). */
static void t_env_open(t_env *e)
{
    memset(e, 0, sizeof(*e));
    memset(&t_pub, 0, sizeof(t_pub));
    snprintf(e->dir, sizeof(e->dir), "/tmp/test_worker.XXXXXX");
    if (mkdtemp(e->dir) == NULL)
        abort();
    config_defaults(&e->cfg);
    char err[ERRLEN];
    if (config_set(&e->cfg, "data_dir", e->dir, err, sizeof(err)) < 0 || config_finish(&e->cfg, err, sizeof(err)) < 0 ||
        mkdir_p(e->cfg.stage_dir, 0750, err, sizeof(err)) < 0) {
        printf("config: %s\n", err);
        abort();
    }
    e->w.cfg = &e->cfg;
    e->w.ctl = -1;
    e->w.publish = t_publish;
    e->w.st = store_open(e->cfg.store_path, 8, 0, err, sizeof(err));
    if (e->w.st == NULL || store_site_upsert(e->w.st, "LHS", "Lincoln High", 1, err, sizeof(err)) < 0) {
        printf("store: %s\n", err);
        abort();
    }
}

/* The store as a plan task opens it (read-only), or as an apply does. */
static inline void t_env_reopen(t_env *e, int flags)
{
    char err[ERRLEN];
    store_close(&e->w.st);
    e->w.st = store_open(e->cfg.store_path, 8, flags, err, sizeof(err));
    if (e->w.st == NULL) {
        printf("store: %s\n", err);
        abort();
    }
}

static void t_env_close(t_env *e)
{
    store_close(&e->w.st);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
    if (system(cmd) != 0)
        printf("cleanup of %s failed\n", e->dir);
}

/* A shard task over csv (its first record on line 2). */
static inline Patronsync__ShardTask t_shard_task(const char *job, unsigned shard, const char *csv, unsigned nrecords)
{
    Patronsync__ShardTask t = PATRONSYNC__SHARD_TASK__INIT;
    t.job_id = (char *)job;
    t.shard = shard;
    t.attempt = 1;
    t.data.data = (uint8_t *)csv;
    t.data.len = strlen(csv);
    t.first_line = 2;
    t.nrecords = nrecords;
    t.profile_name = "t.properties";
    t.profile_text = (char *)t_profile;
    return t;
}

/* Whether DIR/<job>/<leaf> is staged. */
static inline int t_staged(const t_env *e, const char *job, const char *leaf)
{
    char path[2048];
    snprintf(path, sizeof(path), "%s/%s/%s", e->cfg.stage_dir, job, leaf);
    return access(path, F_OK) == 0;
}

/* The staged plan of a shard (NULL when there is none). */
static inline Patronsync__ShardPlan *t_staged_plan(t_env *e, const char *job, unsigned shard)
{
    char err[ERRLEN];
    return stage_read_plan(&e->cfg, job, shard, err, sizeof(err));
}

#endif
