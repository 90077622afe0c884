/* jobs: the broker's job state machine — accept (once per job id),
 * prepare, plan, apply, assemble, hold or finish; the workers' results
 * and the loss of a worker; recovery after a restart; the operator's
 * decision on a held job. The jobs live in b->jobs (jobq.h). */
#ifndef BROKER_JOBS_H
#define BROKER_JOBS_H

#include <stddef.h>

#include "main.h"
#include "patronsync.pb-c.h"

/* Queue a job (written to its work folder first; a job id seen before is
 * acked and not run again). 0 / -1 with err. */
int jobs_accept(broker *b, const Patronsync__JobRequest *req, char *err, size_t errlen);
/* Start, dispatch, finish: called every loop. */
void jobs_step(broker *b);
void jobs_on_shard_result(broker *b, const wire_peer *from, const Patronsync__ShardResult *r);
void jobs_on_apply_result(broker *b, const wire_peer *from, const Patronsync__ApplyResult *r);
void jobs_on_apply_progress(broker *b, const wire_peer *from, const Patronsync__ApplyProgress *p);
/* The worker of peer left: its tasks go back (b->worker_lost). */
void jobs_on_worker_lost(broker *b, const wire_peer *peer);
/* Rebuild in-flight jobs after a restart (a poison job quarantined). */
void jobs_recover(broker *b);
/* At a clean stop: its in-flight jobs start no poison count. */
void jobs_stopped_cleanly(broker *b);
/* An operator's decision on a held job: "approve" queues its apply step
 * (the staged plans, exactly as previewed), "discard" ends it unchanged.
 * 0 with the job's new state, or -1 with err (not held, unknown, ...). */
int jobs_decide(broker *b, const Patronsync__JobDecision *d, char *state, size_t statelen, char *err, size_t errlen);

#endif
