/* jobadmin: a job's summary written to a file (`job export`) and finished
 * jobs removed from Redis (`job delete`, `jobs delete`). */
#ifndef CLI_JOBADMIN_H
#define CLI_JOBADMIN_H

#include "args.h"

/* A cell of a CSV export made safe for a spreadsheet: a value starting
 * with = + - @, a tab or a carriage return is prefixed with ' (it is never
 * read as a formula), and quoted when it holds a comma, quote or line end.
 * Appended to out. */
void jobadmin_csv_cell(strbuf *out, const char *value);

int cmd_job_export(const cli_ctx *c);
int cmd_job_delete(const cli_ctx *c);
int cmd_jobs_delete(const cli_ctx *c);

#endif
