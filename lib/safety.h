/* safety: the options of a job's finishing step and safety thresholds
 * (missing patrons, minimum records, grace days, deletion, scope,
 * percentages) — defaults, setting them by name (patronctl flags,
 * schedules), validation with Destiny's messages, the threshold check —
 * and the change codes of job_changes that undo reads. docs/SAFETY.md. */
#ifndef SAFETY_H
#define SAFETY_H

#include <stddef.h>
#include <stdint.h>

#include "patronsync.pb-c.h"
#include "util.h"

/* What a row of job_changes records (its `op`, also Change.op). The
 * before-image is a packed Change: the whole row for 2..6, nothing for an
 * add, only missing_since and updated_job for 7 and 8. */
enum safety_op {
    SAFETY_OP_ADD = 1,
    SAFETY_OP_UPDATE = 2,
    SAFETY_OP_DELETE = 3,          /* deleted by a rule (docs/RULES.md) */
    SAFETY_OP_ASSOC = 4,           /* a site association changed */
    SAFETY_OP_INACTIVATE = 5,      /* missing from the file */
    SAFETY_OP_DELETE_MISSING = 6,  /* missing from the file */
    SAFETY_OP_MARK_MISSING = 7,    /* missing_since set */
    SAFETY_OP_CLEAR_MISSING = 8,   /* missing_since cleared (seen again) */
    SAFETY_OP_MEMO = 9,            /* staged only, never in job_changes: an unchanged
                                    * patron's memo made again (docs/RULES.md) */
    SAFETY_OP_ADD_RANGE = 10       /* a bulk load's adds: ids patron_id .. Change.patron_id,
                                    * one row for them all (docs/STORE.md) */
};

/* The thresholds, percent of the patrons in scope. */
enum { SAFETY_T_ADD, SAFETY_T_UPDATE, SAFETY_T_INACTIVATE, SAFETY_T_DELETE, SAFETY_T_REMOVE, SAFETY_NT };

/* Defaults (Clever's): hold when more than 10% would be removed
 * (inactivated or deleted) or more than 75% updated; adds, inactivations
 * and deletes on their own are not limited. They apply whenever
 * JobOptions.thresholds_set is false: run-now jobs and schedules that do
 * not set any threshold. */
#define SAFETY_DEFAULT_REMOVE_PCT 10.0
#define SAFETY_DEFAULT_UPDATE_PCT 75.0

/* Options as a run without any safety setting has them: nothing missing is
 * touched, delete_after_days -1 (never), default thresholds. Clears o. */
void safety_options_init(Patronsync__JobOptions *o);

/* Whether name is an option safety_option_set knows (the JobOptions field
 * names: inactivate_missing, min_records, days_before_inactivate,
 * inactive_homeroom, delete_after_days, scope_sites, scope_types,
 * allow_delete_outstanding, max_add_pct, max_update_pct,
 * max_inactivate_pct, max_delete_pct, max_remove_pct). */
int safety_is_option(const char *name);

/* Set one option from text: booleans true/false/yes/no/1/0 (empty: true),
 * days and counts as whole numbers, "never"/"off" for delete_after_days,
 * percentages 0-100 or "off", lists comma-separated. Setting a threshold
 * first fills the others with their defaults (thresholds_set becomes
 * true). Strings and lists are allocated here: free them with
 * safety_option_lists_free (only for options filled this way). 0, or -1
 * with the message for the operator in err. */
int safety_option_set(Patronsync__JobOptions *o, const char *name, const char *value, char *err, size_t errlen);
void safety_option_lists_free(Patronsync__JobOptions *o);

/* Check every safety option is in range and consistent (Destiny's
 * messages where Destiny has one). 0, or -1 with err. For the scheduler
 * when a schedule is saved and for run-now requests. */
int safety_validate(const Patronsync__JobOptions *o, char *err, size_t errlen);

/* The thresholds in effect, percent; < 0 means off. */
void safety_thresholds(const Patronsync__JobOptions *o, double pct[SAFETY_NT]);

/* Whether the counts cross a threshold, scope being the number of patrons
 * in scope before the job (no threshold applies to an empty scope). 1 with
 * reason ("which threshold and the figures"), 0 when none is crossed. */
int safety_check(const Patronsync__JobOptions *o, uint64_t scope, const Patronsync__Counts *c, char *reason,
                 size_t reasonlen);

/* Calendar days: YYYY-MM-DD to a day number (days since 1970-01-01), 0 /
 * -1 when not a valid date; and the UTC date of an instant (out: 11 bytes). */
int safety_day_number(const char *ymd, int64_t *day);
void safety_date_of(int64_t epoch_sec, char *out, size_t outlen);

/* The options in words, one "name: value" line each, for summaries and
 * `schedule show`. */
void safety_describe(const Patronsync__JobOptions *o, strbuf *out);

#endif
