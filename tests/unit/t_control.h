/* t_control.h: what the scheduler's unit tests share — a scheduler on a
 * real control.db in a temp folder, the test's own connection to it for
 * what a case checks, and a control request built from key, value pairs. */
#ifndef T_CONTROL_H
#define T_CONTROL_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control.h"

typedef struct {
    scheduler s;
    ps_config cfg;
    char dir[256];
    sqlite3 *q; /* the test's own connection, for what it checks */
} t_env;

/* A temp folder (/tmp/PREFIX.XXXXXX) as the data folder, default settings
 * otherwise; set more with config_set, then t_env_finish. */
static inline void t_env_make(t_env *e, const char *prefix)
{
    memset(e, 0, sizeof(*e));
    snprintf(e->dir, sizeof(e->dir), "/tmp/%s.XXXXXX", prefix);
    if (mkdtemp(e->dir) == NULL)
        abort();
    config_defaults(&e->cfg);
    config_set(&e->cfg, "data_dir", e->dir, NULL, 0);
}

/* control.db opened (fast: durability is not under test), the first
 * administrator made, the test's own connection. 0 / -1 (printed). */
static inline int t_env_db_open(t_env *e)
{
    char err[ERRLEN];
    e->s.db = controldb_open(e->cfg.control_db, 1, err, sizeof(err));
    if (e->s.db == NULL || control_first_admin(&e->s, err, sizeof(err)) < 0) {
        printf("open: %s\n", err);
        return -1;
    }
    if (sqlite3_open(e->cfg.control_db, &e->q) != SQLITE_OK)
        return -1;
    sqlite3_busy_timeout(e->q, 30000);
    return 0;
}

static inline void t_env_db_close(t_env *e)
{
    controldb_close(&e->s.db);
    sqlite3_close(e->q);
    e->q = NULL;
}

/* The settings final, the scheduler's, control.db open; aborts on failure. */
static inline void t_env_finish(t_env *e)
{
    char err[ERRLEN];
    if (config_finish(&e->cfg, err, sizeof(err)) < 0)
        abort();
    e->s.cfg = &e->cfg;
    if (t_env_db_open(e) < 0)
        abort();
}

/* control.db closed and the temp folder removed. */
static inline void t_env_remove(t_env *e)
{
    t_env_db_close(e);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
    if (system(cmd) != 0)
        printf("cleanup of %s failed\n", e->dir);
}

/* The first column of the first row of sql, or -1. */
static inline int64_t t_count(t_env *e, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t n = -1;
    if (sqlite3_prepare_v2(e->q, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* A request: verb, one operand (or none), a payload (or none), and the
 * options of ap (key, value, ..., NULL; at most cap). args: room for one. */
static inline void t_request(Patronsync__ControlRequest *rq, char **args, Patronsync__ControlRequest__OptsEntry *ents,
                      Patronsync__ControlRequest__OptsEntry **ptrs, size_t cap, const char *verb, const char *arg,
                      const char *payload, va_list ap)
{
    patronsync__control_request__init(rq);
    rq->verb = (char *)verb;
    args[0] = (char *)arg;
    rq->args = args;
    rq->n_args = arg ? 1 : 0;
    rq->opts = ptrs;
    for (const char *k; rq->n_opts < cap && (k = va_arg(ap, const char *)) != NULL;) {
        patronsync__control_request__opts_entry__init(&ents[rq->n_opts]);
        ents[rq->n_opts].key = (char *)k;
        ents[rq->n_opts].value = va_arg(ap, char *);
        ptrs[rq->n_opts] = &ents[rq->n_opts];
        rq->n_opts++;
    }
    if (payload) {
        rq->payload.data = (uint8_t *)payload;
        rq->payload.len = strlen(payload);
    }
}

#endif
