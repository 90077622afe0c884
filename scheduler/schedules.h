/* schedules: scheduled patron updates — their definitions in control.db,
 * the "schedule.*" control verbs, and the timing step that claims each due
 * slot (once per schedule and local day) and queues its job in the outbox
 * in the same transaction. Layout and rules: docs/SCHEDULES.md. */
#ifndef SCHEDULES_H
#define SCHEDULES_H

#include <stddef.h>
#include <stdint.h>

#include "scheduler.h"
#include "slots.h"

/* Create the schedule tables (idempotent). 0 / -1 with err. */
int schedules_init(sqlite3 *db, char *err, size_t errlen);

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

/* Serve one "schedule.*" control request (add edit show list delete run
 * enable disable). rep and body as control_handle. */
void schedules_verb(scheduler *s, const char *user, const Patronsync__ControlRequest *rq,
                    Patronsync__ControlReply *rep, strbuf *body);

/* Publish each schedule's next run, last run and missed slots to Redis
 * (hash ps:schedules, one JSON value per schedule name). */
void schedules_publish(scheduler *s, int64_t now);

/* ---- parsing, exposed for the tests ---- */

/* Days like "mon-fri", "sat,sun", "daily", "weekdays", "weekends" into a
 * 7-flag set (0 = Sunday). 0 / -1 with err quoting the bad part. */
int schedules_parse_days(const char *text, unsigned char set[7], char *err, size_t errlen);
/* "06:30", "6:30", "18:05", "6:30 PM", "12:00am" into minutes after
 * midnight. 0 / -1 with err. */
int schedules_parse_time(const char *text, int *minute, char *err, size_t errlen);

#endif
