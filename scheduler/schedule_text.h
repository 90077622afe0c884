/* schedule_text: what operators are shown of a schedule — local times,
 * its days as words, its options, the JSON of list/show entries and of
 * the Redis hash ps:schedules. */
#ifndef SCHEDULE_TEXT_H
#define SCHEDULE_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "schedule.h"
#include "slots.h"
#include "util.h"

/* A schedule's last run, missed slots and next slot (schedule_timing.c
 * fills it). */
typedef struct {
    int has_last;
    char last_job[128];
    char last_date[11];
    int64_t last_at;
    int last_mode, last_pruned, last_dry;
    char last_state[40];
    int64_t missed;
    char missed_latest[11];
    int has_next;
    slot next;
} sched_info;

/* "2026-03-10 06:30 -04:00" (with_zone) or "2026-03-10 06:30", in zone tz. */
void sched_local_time(const char *tz, int64_t when, int with_zone, char *out, size_t outlen);
/* ISO 8601 with the zone's offset: "2026-03-10T06:30:00-04:00". */
void sched_local_iso(const char *tz, int64_t when, char *out, size_t outlen);
/* "2026-03-10 06:30:00Z" of a time in ms. */
void sched_utc_ms_text(int64_t ms, char *out, size_t outlen);
/* "Full Mon-Fri; Incremental Sat, Sun" */
void sched_pattern_text(const sched *sc, char *out, size_t outlen);

/* ,"key":"v" (no comma when comma is 0). */
void sched_json_kv(strbuf *b, const char *key, const char *v, int comma);
/* The fields list and show entries share (no braces). */
void sched_info_json(const char *tz, const sched *sc, const sched_info *in, strbuf *b);
/* The options, a line each / as ,"options":{...}. */
void sched_opts_text(const sched_opts *o, strbuf *b);
void sched_opts_json(const sched_opts *o, strbuf *b);

#endif
