/* jobs: `patronctl jobs`, `job show`, `status` — what Redis says of jobs
 * and workers — and the wait on a job's end other commands use. */
#ifndef CLI_JOBS_H
#define CLI_JOBS_H

#include "args.h"
#include "status.h"
#include "summary.h"

/* Print a job's summary from Redis (waiting until it is final when wait
 * is set), and for a held job the commands that decide it, with the
 * --data the operator used; the exit status for it. */
int show_job(const ps_config *cfg, const char *id, int json, int wait);
/* As show_job, listing the summary lines of level or above only
 * (SUMMARY_LEVEL_*, lib/summary.h). While it waits, the job's progress
 * goes to stderr: on a terminal one line redrawn, else a line every
 * PROGRESS_PLAIN_MS ("job ID: plan 12/50 shards, ..."). */
int show_job_level(const ps_config *cfg, const char *id, int json, int wait, int level);
#define PROGRESS_PLAIN_MS 2000

/* --state (every one given), --schedule, --since, --until or --before,
 * --limit of c into f (states: the caller's room for the states). The
 * exit status: PS_EXIT_USAGE (printed) for a bad WHEN. */
int jobs_filter_args(const cli_ctx *c, summary_jobs_filter *f, char *states, size_t stateslen);

/* The Redis status of c's configuration, or NULL with "patronctl VERB:
 * why" printed. The caller destroys it. */
status *jobs_status(const cli_ctx *c);
/* --level / --errors-only of c as a SUMMARY_LEVEL_*, or -1 (printed). */
int jobs_level_arg(const cli_ctx *c);

int cmd_jobs(const cli_ctx *c);
int cmd_job_show(const cli_ctx *c);

#endif
