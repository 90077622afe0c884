/* jobfiles: a job's work folder, DATA/work/<job>/ — request.pb, what
 * prepare decided (prepared.pb), a held job's record (held), the done
 * marker — and what is cleared away once a job has ended. */
#ifndef BROKER_JOBFILES_H
#define BROKER_JOBFILES_H

#include <stddef.h>

#include "config.h"
#include "job.h"

/* Pack msg and write it to path atomically. 0 / -1 with err. */
int jobfiles_write_pb(const char *path, const ProtobufCMessage *msg, char *err, size_t errlen);
/* Save what prepare decided, so a restarted broker uses the same shards.
 * 0 / -1 with err. */
int jobfiles_save_prepared(job *j, char *err, size_t errlen);
/* Load a saved preparation into j (and open its work file): 1 loaded, 0
 * none saved, -1 with err. */
int jobfiles_load_prepared(job *j, char *err, size_t errlen);
/* Keep a held job's record (held): its reason and its failed shards, for
 * the operator's decision (logged either way). */
void jobfiles_write_held(job *j);
/* Write the done marker (j->final_state) and leave (jobfiles_leave). */
void jobfiles_finish(const ps_config *cfg, job *j);
/* What a job that ended leaves behind is removed: its UTF-8 copy, its
 * staged plans and, for a run-now, its input (req NULL: not known). */
void jobfiles_leave(const ps_config *cfg, const char *id, const char *workdir, const Patronsync__JobRequest *req);
/* Read dir/name whole (at most 64 MiB; the caller frees). NULL with err. */
char *jobfiles_read(const char *dir, const char *name, size_t *len, char *err, size_t errlen);
/* dir/request.pb decoded (the caller frees it with
 * patronsync__job_request__free_unpacked). NULL with err. */
Patronsync__JobRequest *jobfiles_read_request(const char *dir, char *err, size_t errlen);

#endif
