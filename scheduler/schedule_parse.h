/* schedule_parse: a schedule's settings from a request — days, times,
 * yes/no words, the file name, the options — and the checks a schedule
 * passes before it is saved, with the operator's messages. */
#ifndef SCHEDULE_PARSE_H
#define SCHEDULE_PARSE_H

#include <stddef.h>

#include "patronsync.pb-c.h"
#include "schedule.h"

/* Days like "mon-fri", "sat,sun", "daily", "weekdays", "weekends" into a
 * 7-flag set (0 = Sunday). 0 / -1 with err quoting the bad part. */
int schedules_parse_days(const char *text, unsigned char set[7], char *err, size_t errlen);
/* "06:30", "6:30", "18:05", "6:30 PM", "12:00am" into minutes after
 * midnight. 0 / -1 with err. */
int schedules_parse_time(const char *text, int *minute, char *err, size_t errlen);
/* yes/no words (1 yes y true t on, 0 no n false f off) into *out. 0 / -1. */
int sched_truthy(const char *v, int *out);

/* Apply the request's settings to sc (a new schedule or a copy of the
 * stored one). *timing is set when the days or the time changed. 0, or
 * -1 with err (an unknown setting, a value that does not parse). */
int sched_apply_opts(sched *sc, const Patronsync__ControlRequest *rq, int *timing, char *err, size_t errlen);
/* Whether sc may be saved: name, file, encoding, properties file, days,
 * time, options. 0 / -1 with err. */
int sched_validate(const sched *sc, char *err, size_t errlen);

#endif
