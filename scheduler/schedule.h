/* schedule: one scheduled patron update in memory — its file, properties
 * file, days and time, options — and its options packed as stored
 * (control.db keeps them as a JobOptions). docs/SCHEDULES.md. */
#ifndef SCHEDULE_H
#define SCHEDULE_H

#include <stddef.h>
#include <stdint.h>

#include "patronsync.pb-c.h"
#include "slots.h"

#define SCHED_NAME_MAX_CHARS 128
#define SCHED_FILE_MAX_BYTES 1000
#define SCHED_PROFILE_MAX_BYTES (4u << 20)

/* A schedule's options: its own two, and the finishing-step and safety
 * options kept as lib/safety.c keeps them (its lists and strings are
 * allocated: sched_opts_free). */
typedef struct {
    int errors_only;
    int keep_jobs; /* 0: keep every job */
    Patronsync__JobOptions safe;
} sched_opts;

typedef struct {
    int64_t id;
    char uid[24];
    char *name, *file, *encoding, *profile_name, *profile_text;
    char days[8]; /* Sunday..Saturday: N none, F full, I incremental */
    int minute;
    int disabled;
    sched_opts o;
    char created_by[128], updated_by[128];
    int64_t created_ms, updated_ms;
    int64_t baseline; /* UTC seconds: slots at or before it are never due */
} sched;

/* Free what sc holds and clear it (a cleared sched is fine to free). */
void sched_free(sched *sc);
/* *dst = a copy of src's len bytes (the old value freed). 0 / -1 (no memory). */
int sched_set_str(char **dst, const char *src, size_t len);

/* A new schedule's options (every job kept, safety's defaults). */
void sched_opts_defaults(sched_opts *o);
void sched_opts_free(sched_opts *o);
/* The stored options (a packed JobOptions). 0 / -1 (does not decode, no memory). */
int sched_opts_from_blob(sched_opts *o, const void *blob, size_t len);
/* The JobOptions of a schedule: points into o, which must outlive jo. */
void sched_opts_to_job(const sched_opts *o, Patronsync__JobOptions *jo);
/* The options packed for storing (the caller frees it), or NULL. */
uint8_t *sched_opts_to_blob(const sched_opts *o, size_t *len);

/* Whether sc's properties file parses (a schedule never saves or runs one
 * that does not). 0, or -1 with the parser's message in err. */
int sched_profile_check(const sched *sc, char *err, size_t errlen);

/* The days and time as slots.c takes them. */
slot_pattern sched_pattern(const sched *sc);
/* "Full", "Incremental" or "None" for an enum slot_mode. */
const char *sched_mode_name(int mode);

#endif
