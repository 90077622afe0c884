/* status: the Redis view of jobs, shards and workers (key layout in
 * docs/REDIS.md). Redis may come and go: every call degrades to an error
 * return, and the connection is re-made with back-off on the next call. */
#ifndef STATUS_H
#define STATUS_H

#include <hiredis/hiredis.h>
#include <stddef.h>

#include "config.h"
#include "patronsync.pb-c.h"

typedef struct status status;

/* url: redis://host:port[/db]. Connecting is lazy. NULL with err on a bad url. */
status *status_new(const char *url, char *err, size_t errlen);
/* The status of cfg: its redis_url (redis://[user[:password]@]host:port[/db])
 * and, when set, the password in redis_password_file (a file of its own,
 * mode 0600: a password never goes in an argument list); with neither a
 * file nor a password in the url, the environment's
 * PATRONSYNC_REDIS_PASSWORD (containers). */
status *status_for(const ps_config *cfg, char *err, size_t errlen);
void status_destroy(status **s);
/* At a process's start: -1 with err when Redis answers but refuses the
 * password (a configuration error), else 0 (Redis down is not: it may come
 * back). */
int status_check(status *s, char *err, size_t errlen);
/* "host:port" for messages: never the user or the password. */
const char *status_where(const status *s, char *out, size_t outlen);
/* The same of a url (redis_url): "host:port", or "(a redis_url that does
 * not parse)"; never the user or the password. */
const char *status_where_url(const char *url, char *out, size_t outlen);

/* 1 when a connection is up (trying to make one if the back-off allows). */
int status_up(status *s);
/* One command (hiredis format). The reply is the caller's to freeReplyObject;
 * NULL when Redis is unreachable or answered an error (logged). */
redisReply *status_cmd(status *s, const char *fmt, ...);
redisReply *status_cmdargv(status *s, int argc, const char **argv, const size_t *lens);
/* Run a command and say whether it worked: 0 / -1. */
int status_do(status *s, const char *fmt, ...);

/* ---- The key layout (docs/REDIS.md): the programs name a job's keys by
 * these, never by command strings of their own. ---- */
typedef enum {
    SK_JOB,        /* ps:job:<id>             hash: state, phase, file, ... */
    SK_SUMMARY,    /* ps:job:<id>:summary     hash: the assembled counts */
    SK_PLANNED,    /* ps:job:<id>:planned     hash: what a failed job had planned */
    SK_NOTES,      /* ps:job:<id>:notes       list: job-level notes */
    SK_EXCEPTIONS, /* ps:job:<id>:exceptions  list: summary lines in line order */
} status_jobkey;
#define SK_BIT(k) (1u << (k))

/* HSET fields of one of a job's hashes, given as name/value pairs in
 * hiredis format: status_job_set(s, id, SK_JOB, "state %s finished_ms %lld",
 * state, ms). 0 / -1. */
int status_job_set(status *s, const char *job, status_jobkey k, const char *fields, ...)
    __attribute__((format(printf, 4, 5)));
/* Every count of c as a field of one of a job's hashes (SK_SUMMARY, SK_PLANNED). */
int status_job_counts(status *s, const char *job, status_jobkey k, const Patronsync__Counts *c);
/* HSETNX on the job hash (a value another process set first stays). */
int status_job_setnx(status *s, const char *job, const char *field, const char *value);
/* HSET fields of a shard's hash ps:job:<id>:shard:<n>. */
int status_shard_set(status *s, const char *job, unsigned long long shard, const char *fields, ...)
    __attribute__((format(printf, 4, 5)));
/* RPUSH one job-level note. */
int status_job_note(status *s, const char *job, const char *note);
/* Append summary lines to the job's exceptions list, in batches. */
int status_job_exceptions(status *s, const char *job, Patronsync__Exception *const *exc, size_t n);
/* DEL the job's keys in mask (SK_BIT(SK_NOTES) | ...). */
int status_job_clear(status *s, const char *job, unsigned mask);
/* The job in the index ps:jobs, scored by its fire time (kept when present). */
int status_job_index(status *s, const char *job, long long fired_ms);
/* Every key of a job and its index entry. 0 / -1 (Redis down). */
int status_job_forget(status *s, const char *job);
/* HGET of the job hash: NULL when Redis is down; a reply of type NIL when
 * absent. The reply is the caller's. */
redisReply *status_job_get(status *s, const char *job, status_jobkey k, const char *field);
/* The job's state into out: 1 found, 0 no such job, -1 Redis down. */
int status_job_state(status *s, const char *job, char *out, size_t outlen);
/* A job's hash (HGETALL) or list (LRANGE 0 -1). */
redisReply *status_job_all(status *s, const char *job, status_jobkey k);
/* The newest job ids first (at most limit). */
redisReply *status_jobs_recent(status *s, size_t limit);
/* A worker's line in ps:workers (value formatted like printf) / every worker. */
int status_worker_set(status *s, const char *worker, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
redisReply *status_workers(status *s);
/* Replace ps:schedules at once (readers never see half a set): begin, put
 * each name → JSON entry, then commit (n entries put; ok 0 leaves the old
 * set). 0 / -1. */
int status_schedules_begin(status *s);
int status_schedules_put(status *s, const char *name, const char *json);
int status_schedules_commit(status *s, size_t n, int ok);
/* 1 when Redis answers a PING. */
int status_ping(status *s);

/* Publish a shard's (or the apply step's: shard "apply") result: its
 * counts and its exception lines replace whatever was there (a replay
 * overwrites, never adds). 0 / -1 (Redis down: publish later). */
int status_publish_result(status *s, const char *job, const char *part, const Patronsync__Counts *c,
                          Patronsync__Exception *const *exc, size_t nexc, const char *worker,
                          unsigned attempt);
/* Read a part's counts and exceptions back. 1 found, 0 absent, -1 Redis down. */
int status_read_result(status *s, const char *job, const char *part, Patronsync__Counts *c,
                       Patronsync__Exception ***exc, size_t *nexc);
void status_free_exceptions(Patronsync__Exception **exc, size_t n);

/* Append an event line (capped list ps:events) and PUBLISH it on the
 * channel ps:events:live (watchers: `patronctl watch`). */
void status_event(status *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A running job's progress (ps:job:<id> fields, docs/REDIS.md). rate:
 * records/s since the job began planning; eta_s: seconds left, -1 unknown. */
typedef struct {
    const char *phase;
    unsigned long long shards, shards_done, shards_failed;
    unsigned long long records_done, records_total, rate;
    long long eta_s;
} status_progress;
/* The progress into the job hash (with progress_ms), and a line
 * "progress JOB PHASE DONE/TOTAL" PUBLISHed on ps:events:live (not in the
 * capped list: one a shard would push the events out). 0 / -1. */
int status_job_progress(status *s, const char *job, const status_progress *p);
/* The counts of the shard parts s000000.. of a job published so far,
 * summed into c (a running job's counts so far). How many parts were
 * found, -1 when Redis is down. */
int status_job_parts_sum(status *s, const char *job, size_t nshards, Patronsync__Counts *c);
/* A shard's hash ps:job:<id>:shard:<n> (HGETALL); the caller frees it. */
redisReply *status_shard_all(status *s, const char *job, unsigned long long shard);
/* The schedules the scheduler published (HGETALL ps:schedules: name →
 * JSON entry); the caller frees it. */
redisReply *status_schedules(status *s);
/* As status_job_forget, with how many keys were deleted into *removed. */
int status_job_forget_count(status *s, const char *job, size_t *removed);

/* Exceptions as stored in Redis lists: line \t district_id \t name \t outcome \t message. */
int status_exception_encode(const Patronsync__Exception *e, char **out, size_t *len);
Patronsync__Exception *status_exception_decode(const char *s, size_t len);

#endif
