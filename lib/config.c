/* config: the settings table and its layers. */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

enum { T_STR, T_INT };

typedef struct {
    const char *name;
    int type;
    size_t off;
    size_t size;     /* for strings */
    const char *def; /* default as text */
    int64_t min, max;
    const char *help;
} setting;

#define S(field, def, help) {#field, T_STR, offsetof(ps_config, field), sizeof(((ps_config *)0)->field), def, 0, 0, help}
#define I(field, def, lo, hi, help) {#field, T_INT, offsetof(ps_config, field), 0, #def, lo, hi, help}

static const setting settings[] = {
    S(data_dir, "./data", "folder holding the store, config, logs and run files"),
    S(import_root, "", "folder the SIS drops exports into (default DATA/import)"),
    S(store_path, "", "SQLite patron store (default DATA/store.db)"),
    S(control_db, "", "SQLite control tables (default DATA/control.db)"),
    S(stage_dir, "", "staged shard plans (default DATA/stage)"),
    S(archive_dir, "", "copies of loaded files (default DATA/archive)"),
    S(redis_url, "redis://127.0.0.1:6379", "Redis for status and summaries"),
    S(redis_password_file, "", "file holding the Redis password (mode 0600; patronctl up makes DATA/keys/redis.password)"),
    S(control_endpoint, "tcp://127.0.0.1:5570", "scheduler control socket"),
    S(jobs_endpoint, "tcp://127.0.0.1:5571", "broker job socket"),
    S(workers_endpoint, "tcp://127.0.0.1:5572", "broker worker socket"),
    S(keys_dir, "", "CURVE keys and allow-lists of the endpoints (default DATA/keys; docs/SECURITY.md)"),
    I(curve, 1, 0, 1, "1: every ZeroMQ endpoint authenticated and encrypted with CURVE (0: plaintext, for a closed test bench only)"),
    S(timezone, "UTC", "district time zone (IANA name)"),
    S(worker_id, "", "worker name (default worker-PID)"),
    S(machine, "", "worker: the name of its machine, for plan slots and pacing (default its boot id)"),
    S(log_level, "info", "error|warn|info|debug"),
    I(shard_size, 20000, 1, 10000000, "records per shard"),
    I(heartbeat_ms, 1000, 50, 60000, "heartbeat interval"),
    I(liveness, 3, 1, 100, "missed heartbeats before a peer is dead"),
    I(max_attempts, 3, 1, 100, "attempts per shard before it fails"),
    I(max_file_bytes, 4294967296, 0, INT64_MAX, "largest input file"),
    I(max_record_bytes, 1048576, 64, 1073741824, "largest CSV record"),
    I(max_fields, 1000, 1, 100000, "most fields in one CSV record"),
    I(settle_seconds, 2, 0, 3600, "a file must be unchanged this long before it is read"),
    I(settle_timeout_seconds, 120, 0, 86400, "give up on a file still being written"),
    I(grace_minutes, 60, 0, 100000, "missed slots younger than this still run"),
    I(job_deadline_seconds, 7200, 1, 604800, "watchdog: a job running longer fails"),
    I(prepare_parallel, 2, 1, 64, "broker: jobs whose files are prepared (settled, converted, scanned) at once, beside its loop"),
    I(poison_starts, 3, 1, 1000, "a job in flight at this many broker starts in a row (each after a crash or kill) fails, not resumed"),
    I(archive_keep, 7, 0, 999, "input copies kept per schedule"),
    I(shutdown_grace_ms, 10000, 0, 600000, "time to finish work after SIGTERM"),
    I(task_cpu_seconds, 1800, 0, 604800, "CPU time a plan or apply task's process may use before it is ended (0: no limit)"),
    I(task_memory_mb, 4096, 0, 1048576, "memory (anonymous, resident) a task's process may hold before it is ended (0: no limit)"),
    I(cache_mb, 80, 2, 65536, "SQLite page cache of each worker task (MB)"),
    I(unchanged_memo, 1, 0, 1, "1: a record unchanged since its patron was written is known by its memo"),
    I(stream_apply, 1, 0, 1, "1: with two workers or more, the apply starts while the shards are planned"),
    I(plan_beside_apply, 1, 0, 1, "1: a worker holding a streaming apply plans a shard beside it"),
    I(plan_slots, 0, 0, 4096, "shards the worker's machine plans at once, over all its workers (0: its online cores)"),
    I(plan_ahead, 4, 0, 100000, "shards planned ahead of a streaming apply at most (0: no limit)"),
    I(plan_nice, 19, 0, 19, "niceness of a plan task's process (the apply, the critical path, keeps 0)"),
    I(ack_resend_ms, 1000, 10, 600000, "resend an unacknowledged job request after"),
    I(max_message_bytes, 268435456, 1024, INT64_MAX, "largest ZeroMQ message accepted"),
    I(test_clock_offset, 0, INT64_MIN, INT64_MAX, "test only: seconds added to the scheduler clock"),
    S(test_clock_file, "", "test only: the scheduler clock reads UTC seconds from this file"),
    I(test_fault_claim, 0, 0, 2, "test only: the scheduler kills itself at a slot claim (1 before commit, 2 after)"),
    I(test_fault_line, 0, 0, INT64_MAX, "test only: a worker aborts when it plans this line"),
    S(test_fault_kind, "abort", "test only: what happens at test_fault_line: abort, cpu (spins), memory (allocates)"),
    I(test_apply_delay_ms, 0, 0, 60000, "test only: the apply waits this long after each shard it writes"),
};
#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

static const setting *find(const char *name)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (strcmp(settings[i].name, name) == 0)
            return &settings[i];
    return NULL;
}

void config_defaults(ps_config *c)
{
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < NSETTINGS; i++)
        config_set(c, settings[i].name, settings[i].def, NULL, 0);
}

int config_set(ps_config *c, const char *name, const char *value, char *err, size_t errlen)
{
    const setting *s = find(name);
    if (s == NULL) {
        err_set(err, errlen, "unknown setting '%s'", name);
        return -1;
    }
    char *base = (char *)c;
    if (s->type == T_STR) {
        if (strlen(value) >= s->size) {
            err_set(err, errlen, "setting %s: value too long (%zu bytes, at most %zu)", name,
                    strlen(value), s->size - 1);
            return -1;
        }
        str_copy(base + s->off, s->size, value);
        return 0;
    }
    int64_t v;
    if (parse_i64(value, s->min, s->max, &v) < 0) {
        err_set(err, errlen, "setting %s: '%s' is not a whole number between %lld and %lld", name,
                value, (long long)s->min, (long long)s->max);
        return -1;
    }
    memcpy(base + s->off, &v, sizeof(v));
    return 0;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

int config_load_file(ps_config *c, const char *path, char *err, size_t errlen)
{
    char e[ERRLEN];
    size_t len;
    char *text = file_read_all(path, 1 << 20, &len, e, sizeof(e));
    if (text == NULL) {
        err_set(err, errlen, "%s", e);
        return -1;
    }
    int lineno = 0;
    char *save = NULL;
    int rc = 0;
    for (char *line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        char *l = trim(line);
        if (*l == '\0' || *l == '#')
            continue;
        char *eq = strchr(l, '=');
        if (eq == NULL) {
            err_set(err, errlen, "%s:%d: '%s': expected name=value", path, lineno, l);
            rc = -1;
            break;
        }
        *eq = '\0';
        if (config_set(c, trim(l), trim(eq + 1), e, sizeof(e)) < 0) {
            err_set(err, errlen, "%s:%d: %s", path, lineno, e);
            rc = -1;
            break;
        }
    }
    free(text);
    return rc;
}

int config_load_env(ps_config *c, char *err, size_t errlen)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        char var[96] = "PATRONSYNC_";
        size_t k = strlen(var);
        for (const char *p = settings[i].name; *p && k + 1 < sizeof(var); p++)
            var[k++] = (char)toupper((unsigned char)*p);
        var[k] = '\0';
        const char *v = getenv(var);
        if (v == NULL)
            continue;
        char e[ERRLEN];
        if (config_set(c, settings[i].name, v, e, sizeof(e)) < 0) {
            err_set(err, errlen, "environment %s: %s", var, e);
            return -1;
        }
    }
    return 0;
}

static int derive(char *dst, size_t size, const char *dir, const char *leaf, char *err, size_t errlen)
{
    if (dst[0] != '\0')
        return 0;
    int n = snprintf(dst, size, "%s/%s", dir, leaf);
    if (n < 0 || (size_t)n >= size) {
        err_set(err, errlen, "data_dir too long for %s", leaf);
        return -1;
    }
    return 0;
}

int config_finish(ps_config *c, char *err, size_t errlen)
{
    if (c->data_dir[0] == '\0') {
        err_set(err, errlen, "data_dir is empty");
        return -1;
    }
    if (derive(c->import_root, sizeof(c->import_root), c->data_dir, "import", err, errlen) < 0 ||
        derive(c->store_path, sizeof(c->store_path), c->data_dir, "store.db", err, errlen) < 0 ||
        derive(c->control_db, sizeof(c->control_db), c->data_dir, "control.db", err, errlen) < 0 ||
        derive(c->stage_dir, sizeof(c->stage_dir), c->data_dir, "stage", err, errlen) < 0 ||
        derive(c->archive_dir, sizeof(c->archive_dir), c->data_dir, "archive", err, errlen) < 0 ||
        derive(c->keys_dir, sizeof(c->keys_dir), c->data_dir, "keys", err, errlen) < 0)
        return -1;
    if (c->worker_id[0] == '\0')
        snprintf(c->worker_id, sizeof(c->worker_id), "worker-%d", (int)getpid());
    if (log_level_parse(c->log_level) < 0) {
        err_set(err, errlen, "log_level '%s' is not error, warn, info or debug", c->log_level);
        return -1;
    }
    return 0;
}

/* A url's password (scheme://user:PASSWORD@host) as "********": what is
 * printed is never a secret. */
static void print_masked_url(FILE *out, const char *name, const char *url)
{
    const char *start = strstr(url, "://");
    start = start ? start + 3 : url;
    const char *at = strchr(start, '@');
    const char *colon = at ? memchr(start, ':', (size_t)(at - start)) : NULL;
    if (colon == NULL) {
        fprintf(out, "%s=%s\n", name, url);
        return;
    }
    fprintf(out, "%s=%.*s:********%s\n", name, (int)(colon - url), url, at);
}

void config_print(const ps_config *c, FILE *out)
{
    const char *base = (const char *)c;
    for (size_t i = 0; i < NSETTINGS; i++) {
        const setting *s = &settings[i];
        if (s->type == T_STR && strcmp(s->name, "redis_url") == 0) {
            print_masked_url(out, s->name, base + s->off);
        } else if (s->type == T_STR) {
            fprintf(out, "%s=%s\n", s->name, base + s->off);
        } else {
            int64_t v;
            memcpy(&v, base + s->off, sizeof(v));
            fprintf(out, "%s=%lld\n", s->name, (long long)v);
        }
    }
}

static int take_flag(int *argc, char **argv, int i, int n)
{
    for (int k = i; k + n < *argc; k++)
        argv[k] = argv[k + n];
    *argc -= n;
    argv[*argc] = NULL;
    return 0;
}

int config_from_args(ps_config *c, int *argc, char **argv, int *print, char *err, size_t errlen)
{
    config_defaults(c);
    char e[ERRLEN];
    const char *data = getenv("PATRONSYNC_DATA_DIR");
    const char *file = NULL;
    if (print)
        *print = 0;
    for (int i = 1; i < *argc;) {
        if ((strcmp(argv[i], "--data") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < *argc) {
            if (strcmp(argv[i], "--data") == 0)
                data = argv[i + 1];
            else
                file = argv[i + 1];
            take_flag(argc, argv, i, 2);
        } else if (strcmp(argv[i], "--print-config") == 0) {
            if (print)
                *print = 1;
            take_flag(argc, argv, i, 1);
        } else {
            i++;
        }
    }
    if (data != NULL && config_set(c, "data_dir", data, err, errlen) < 0)
        return -1;
    /* What `patronctl up` generated (ports), then the operator's own file. */
    char path[CONFIG_STR + 32];
    snprintf(path, sizeof(path), "%s/run/cluster.conf", c->data_dir);
    if (access(path, R_OK) == 0 && config_load_file(c, path, err, errlen) < 0)
        return -1;
    snprintf(path, sizeof(path), "%s/patronsync.conf", c->data_dir);
    if (access(path, R_OK) == 0 && config_load_file(c, path, err, errlen) < 0)
        return -1;
    if (file != NULL && config_load_file(c, file, err, errlen) < 0)
        return -1;
    if (config_load_env(c, err, errlen) < 0)
        return -1;
    if (data != NULL)
        config_set(c, "data_dir", data, NULL, 0);
    for (int i = 1; i < *argc;) {
        if (strcmp(argv[i], "--set") == 0 && i + 1 < *argc) {
            char kv[2 * CONFIG_STR];
            str_copy(kv, sizeof(kv), argv[i + 1]);
            char *eq = strchr(kv, '=');
            if (eq == NULL) {
                err_set(err, errlen, "--set '%s': expected name=value", argv[i + 1]);
                return -1;
            }
            *eq = '\0';
            if (config_set(c, kv, eq + 1, e, sizeof(e)) < 0) {
                err_set(err, errlen, "--set: %s", e);
                return -1;
            }
            take_flag(argc, argv, i, 2);
        } else {
            i++;
        }
    }
    return config_finish(c, err, errlen);
}

int config_endpoint(const ps_config *c, const char *name, const char *configured, char *out,
                    size_t outlen, char *err, size_t errlen)
{
    if (strchr(configured, '*') == NULL) {
        str_copy(out, outlen, configured);
        return 0;
    }
    char path[CONFIG_STR + 64];
    snprintf(path, sizeof(path), "%s/run/%s.endpoint", c->data_dir, name);
    char e[ERRLEN];
    size_t len;
    char *text = file_read_all(path, 4096, &len, e, sizeof(e));
    if (text == NULL) {
        err_set(err, errlen, "%s endpoint not advertised yet (%s)", name, e);
        return -1;
    }
    str_copy(out, outlen, trim(text));
    free(text);
    return 0;
}

int config_advertise(const ps_config *c, const char *name, const char *endpoint, char *err,
                     size_t errlen)
{
    char dir[CONFIG_STR + 16];
    snprintf(dir, sizeof(dir), "%s/run", c->data_dir);
    if (mkdir_p(dir, 0750, err, errlen) < 0)
        return -1;
    char path[CONFIG_STR + 64];
    snprintf(path, sizeof(path), "%s/%s.endpoint", dir, name);
    char line[CONFIG_STR + 2];
    int n = snprintf(line, sizeof(line), "%s\n", endpoint);
    return file_write_atomic(path, line, (size_t)n, err, errlen);
}
