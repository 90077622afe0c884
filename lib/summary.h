/* summary: rendering a job summary as text or as JSON from Redis. */
#ifndef SUMMARY_H
#define SUMMARY_H

#include <stddef.h>
#include <stdint.h>

#include "counts.h"
#include "patronsync.pb-c.h"
#include "status.h"
#include "store.h"
#include "util.h"

/* A job note that is a warning begins with this ("Warning: "): the broker
 * adds one when the file was read, but not as it was given (a byte-order
 * mark contradicting the configured encoding, docs/INPUT.md); the job then
 * ends complete_with_errors, and the text summary lists it first. */
#define SUMMARY_WARNING "Warning: "
int summary_note_is_warning(const char *note);

/* What the text summary's Line column says of a line about a patron who
 * is not in the file (the finishing step's missing patrons: line 0). */
#define SUMMARY_NOT_IN_FILE "missing from the file"

/* Job states. */
int summary_state_final(const char *state);

/* The store a finished job's summary is checked against (lib/verify.h):
 * st opened read-only, or NULL with err saying why it could not be. */
typedef struct {
    store *st;
    const char *err;
} summary_record;

/* Render job `job` from Redis into out (text for operators, or one JSON
 * object). The text's table of lines is aligned by display width (UTF-8
 * names, lib/textwidth.h). With rec (NULL: not checked), a finished job is
 * checked against the store: JSON "verified" true, false (and "mismatch":
 * why) or null (and "verify_error"); the text says a mismatch in a line
 * under the state. 0, 1 when the job is unknown, 2 when the store
 * contradicts Redis, -1 when Redis is unreachable. */
int summary_render(status *st, const summary_record *rec, const char *job, int json, strbuf *out);
/* Levels of a summary line (job show --level, export): INFO lines are
 * info; WARNING and NOTE warnings; SKIP and every other outcome errors. */
enum { SUMMARY_LEVEL_INFO, SUMMARY_LEVEL_WARNING, SUMMARY_LEVEL_ERROR };
int summary_line_level(const char *outcome);
/* "info", "warning", "error" as a level; -1 for another word. */
int summary_level_parse(const char *word);
/* As summary_render, showing only the lines of level or above. While the
 * job runs its counts are its shards' so far (status_job_parts_sum); the
 * JSON has "progress" {phase, shards_done, shards, records_done,
 * records_total, rate, eta_s (null: unknown)}. */
int summary_render_level(status *st, const summary_record *rec, const char *job, int json, int level, strbuf *out);
/* "plan 12/50 shards, 240000/1000000 records, 52000/s, ETA 15 s" of a
 * job hash (HGETALL reply) appended to out. */
void summary_progress_text(const redisReply *jr, strbuf *out);
/* The job's state into state and its progress text into line: 1, 0 no
 * such job, -1 Redis down. */
int summary_progress(status *st, const char *job, char *state, size_t statelen, strbuf *line);
/* The list of recent jobs, newest first; each finished one checked as
 * summary_render does (JSON "verified", "mismatch"; text: the state
 * marked and a line under the table), the jobs the store contradicts
 * counted into *mismatches. 0 / -1 (Redis unreachable). */
int summary_render_jobs(status *st, const summary_record *rec, int json, size_t limit, strbuf *out,
                        size_t *mismatches);
/* The Job Manager's status of a job hash: key (pending, queued, running,
 * stopping, stopped, complete, complete_with_errors, failed, held,
 * discarded, undone, dry_run) and label ("Complete with errors"). Whether
 * the job has ended. */
int summary_job_status(const redisReply *jr, char *key, size_t keylen, char *label, size_t labellen);

/* Which jobs a list shows: states (comma-separated status keys or labels
 * of summary_job_status — "complete" is not a dry run's; NULL any), a schedule (NULL any), started (else
 * created) from since_ms and before until_ms (0: unbounded), at most
 * limit. A filtered list looks through the SUMMARY_JOBS_SCAN newest. */
typedef struct {
    const char *states;
    const char *schedule;
    int64_t since_ms, until_ms;
    size_t limit;
} summary_jobs_filter;
#define SUMMARY_JOBS_SCAN 10000
/* Whether job hash jr passes f. */
int summary_jobs_match(const summary_jobs_filter *f, const redisReply *jr);
/* As summary_render_jobs, of the jobs f passes. Text: JOB NAME
 * SUBMITTED BY STATUS PROGRESS ADDED UPDATED INACTIVATED ERRORS DURATION
 * STATE STARTED RECORDS FILE; JSON: an array of objects. */
int summary_render_jobs_filtered(status *st, const summary_record *rec, int json, const summary_jobs_filter *f,
                                 strbuf *out, size_t *mismatches);

#endif
