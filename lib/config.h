/* config: every setting in one table (name, default, bounds), layered as
 * defaults < file < environment (PATRONSYNC_<NAME>) < flags. */
#ifndef CONFIG_H
#define CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_STR 1024

typedef struct {
    char data_dir[CONFIG_STR];        /* everything lives under it unless set */
    char import_root[CONFIG_STR];     /* where SIS exports are dropped; default DATA/import */
    char store_path[CONFIG_STR];      /* the patron store; default DATA/store.db */
    char control_db[CONFIG_STR];      /* schedules, slots, users; default DATA/control.db */
    char stage_dir[CONFIG_STR];       /* staged shard plans; default DATA/stage */
    char archive_dir[CONFIG_STR];     /* copies of loaded files; default DATA/archive */
    char redis_url[CONFIG_STR];       /* redis://host:port[/db] */
    char control_endpoint[CONFIG_STR];/* scheduler's control socket (patronctl) */
    char jobs_endpoint[CONFIG_STR];   /* broker's job socket (scheduler) */
    char workers_endpoint[CONFIG_STR];/* broker's worker socket */
    char timezone[CONFIG_STR];        /* the district's IANA zone */
    char worker_id[128];
    char machine[128];                /* worker: its machine's name for plan slots and pacing ("" host name + boot id) */
    char log_level[16];
    char redis_password_file[CONFIG_STR]; /* the Redis password ("" none) */
    char keys_dir[CONFIG_STR];        /* CURVE keys (default DATA/keys) */
    int64_t curve;                    /* 1: CURVE on every endpoint */
    int64_t shard_size;
    int64_t heartbeat_ms;
    int64_t liveness;
    int64_t max_attempts;
    int64_t max_file_bytes;
    int64_t max_record_bytes;
    int64_t max_fields;
    int64_t settle_seconds;
    int64_t settle_timeout_seconds;
    int64_t grace_minutes;
    int64_t job_deadline_seconds;
    int64_t prepare_parallel;         /* broker: preparations at once, each in a thread beside the loop */
    int64_t poison_starts;            /* broker: starts in a row a job may be in flight at before it fails */
    int64_t archive_keep;
    int64_t shutdown_grace_ms;
    int64_t task_cpu_seconds;         /* worker: CPU seconds a task's process may use (0: any) */
    int64_t task_memory_mb;           /* worker: anonymous resident memory a task's process may hold (0: any) */
    int64_t cache_mb;
    int64_t unchanged_memo;           /* 1: plan records unchanged by their memo (docs/RULES.md) */
    int64_t stream_apply;             /* 1: the apply starts while shards are planned (docs/PROTOCOL.md) */
    int64_t plan_beside_apply;        /* 1: a worker plans one shard beside its streaming apply */
    int64_t plan_slots;               /* shards the worker's machine plans at once (0: its online cores) */
    int64_t plan_ahead;               /* broker: shards planned ahead of a streaming apply at most (0: any) */
    int64_t plan_nice;                /* niceness of plan task processes */
    int64_t ack_resend_ms;
    int64_t max_message_bytes;
    int64_t test_clock_offset;        /* test only: seconds added to the scheduler's clock */
    char test_clock_file[CONFIG_STR]; /* test only: the scheduler's clock reads UTC seconds from this file */
    int64_t test_fault_claim;         /* test only: scheduler killed at a slot claim (1 before commit, 2 after) */
    int64_t test_fault_line;          /* test only: a worker aborts on this CSV line */
    char test_fault_kind[CONFIG_STR]; /* test only: abort | cpu | memory, at that line */
    int64_t test_apply_delay_ms;      /* test only: the apply waits this long after each shard */
} ps_config;

/* Defaults for everything. */
void config_defaults(ps_config *c);
/* Set one setting by name from text, checked against its bounds. 0 / -1. */
int config_set(ps_config *c, const char *name, const char *value, char *err, size_t errlen);
/* name=value lines, # comments. 0 / -1 naming file and line. */
int config_load_file(ps_config *c, const char *path, char *err, size_t errlen);
/* PATRONSYNC_<NAME> variables. 0 / -1. */
int config_load_env(ps_config *c, char *err, size_t errlen);
/* Derive the paths left empty from data_dir and validate. 0 / -1. */
int config_finish(ps_config *c, char *err, size_t errlen);
/* Print every setting as name=value. */
void config_print(const ps_config *c, FILE *out);

/* The usual layering for a process: defaults, then --data DIR (or
 * PATRONSYNC_DATA_DIR), DATA/patronsync.conf if present, --config FILE,
 * environment, then --set name=value flags, then finish. Recognised flags
 * are removed from argv (argc updated); --print-config sets *print. */
int config_from_args(ps_config *c, int *argc, char **argv, int *print, char *err, size_t errlen);

/* Read the endpoint a process advertised after binding (DATA/run/NAME.endpoint)
 * when the configured one has a wildcard port; else copy the configured one. */
int config_endpoint(const ps_config *c, const char *name, const char *configured, char *out,
                    size_t outlen, char *err, size_t errlen);
/* Write DATA/run/NAME.endpoint. */
int config_advertise(const ps_config *c, const char *name, const char *endpoint, char *err,
                     size_t errlen);

#endif
