/* assemble: a job's summary in Redis — every part's result gathered (and
 * published again from disk when Redis lost it), its exceptions in line
 * order, its notes, its counts and final state (docs/REDIS.md). */
#ifndef BROKER_ASSEMBLE_H
#define BROKER_ASSEMBLE_H

#include "job.h"
#include "main.h"

/* 0, or -1 when Redis is not there (tried again later) or a lost held or
 * dry-run apply step was queued again (j->phase is JP_APPLYING then). */
int assemble_job(broker *b, job *j);

#endif
