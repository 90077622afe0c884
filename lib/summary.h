/* summary: rendering a job summary as text or as JSON from Redis. */
#ifndef SUMMARY_H
#define SUMMARY_H

#include <stddef.h>
#include <stdint.h>

#include "counts.h"
#include "patronsync.pb-c.h"
#include "status.h"
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

/* Render job `job` from Redis into out (text for operators, or one JSON
 * object). The text's table of lines is aligned by display width (UTF-8
 * names, lib/textwidth.h). 0, 1 when the job is unknown, -1 when Redis is
 * unreachable. */
int summary_render(status *st, const char *job, int json, strbuf *out);
/* The list of recent jobs, newest first. */
int summary_render_jobs(status *st, int json, size_t limit, strbuf *out);

#endif
