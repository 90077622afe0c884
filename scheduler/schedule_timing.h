/* schedule_timing: the scheduler's clock and the timing step — claim each
 * due slot once per schedule and local day and queue its job in the
 * outbox in the same transaction — the job requests of a schedule, the
 * pruning of its old jobs, and what each schedule shows of its runs
 * (published to Redis). Rules: docs/SCHEDULES.md. */
#ifndef SCHEDULE_TIMING_H
#define SCHEDULE_TIMING_H

#include <stddef.h>
#include <stdint.h>

#include "schedule.h"
#include "schedule_text.h"
#include "scheduler.h"

/* The scheduler's clock, UTC seconds: the wall clock, or (tests only) the
 * number in cfg->test_clock_file when that is set and readable, plus
 * cfg->test_clock_offset. */
int64_t schedules_clock(const ps_config *cfg);

/* What one timing step did (for logs and tests). */
typedef struct {
    int fired;   /* slots claimed and queued as jobs */
    int missed;  /* slots recorded as missed */
    int refused; /* slots claimed but not run (invalid properties file) */
    int lost;    /* due slots another scheduler had claimed first */
} schedules_tick_report;

/* Claim and queue every slot due at `now` (UTC seconds) for each enabled
 * schedule: of the slots due since the last one claimed, the newest runs
 * when it is at most the grace window old (never less than 60 s), the
 * others are recorded as missed. Each schedule's slots are claimed and its
 * job request put in the outbox in one transaction, so a crash or a second
 * scheduler on the same control.db never makes two jobs of one slot.
 * Sending is outbox_step's job. rep may be NULL. 0 / -1 (the database
 * failed; logged, tried again on the next step). */
int schedules_tick(scheduler *s, int64_t now, schedules_tick_report *rep);

/* Publish each schedule's next run, last run and missed slots to Redis
 * (hash ps:schedules, one JSON value per schedule name). */
void schedules_publish(scheduler *s, int64_t now);

/* The packed job request of one run of sc. The properties file is parsed
 * again: a schedule never runs with one that does not parse. 0, or -1 with
 * err (*buf is the caller's to free). */
int sched_request_pack(const sched *sc, const char *job_id, int mode, int dry_run, const char *requested_by,
                       int64_t fired_ms, const char *local_date, uint8_t **buf, size_t *len, char *err,
                       size_t errlen);
/* The job as operators first see it in Redis (pending). */
void sched_mark_pending(scheduler *s, const sched *sc, const char *job_id, int mode, int dry_run, const char *by,
                        int64_t fired_ms);
/* Keep N previous jobs: the newest job and the N before it stay; older
 * finished ones leave Redis. */
void sched_prune_jobs(scheduler *s, const sched *sc);

/* A job's state in Redis ("unknown" when it does not say). */
void sched_job_state(scheduler *s, const char *job, char *out, size_t outlen);
/* Visit each schedule (by name) with what it shows at now; visit returns
 * 0 to go on, -1 to stop. 0, or -1 when control.db cannot be read
 * (controldb_errmsg). */
typedef int (*sched_visit)(void *ctx, const sched *sc, const sched_info *in);
int sched_each(scheduler *s, int64_t now, sched_visit visit, void *ctx);
/* sc's last run, missed slots and next slot after now. */
void sched_info_get(scheduler *s, const sched *sc, int64_t now, sched_info *in);

#endif
