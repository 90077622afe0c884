/* preparer: a job's preparation (prepare.h) beside the broker's loop, in a
 * thread of its own, so that the loop never runs a district's expressions
 * or long file work: heartbeats, pings, other jobs and decisions go on
 * while a file is settled, converted, scanned and its keys extracted.
 * The thread owns nothing of the job table: it reads the request and the
 * paths it was given and fills its own `prepared`, taken when it is done. */
#ifndef BROKER_PREPARER_H
#define BROKER_PREPARER_H

#include <stddef.h>

#include "prepare.h"

typedef struct preparer preparer;

/* Start preparing (a is copied; what it points to — the config and the
 * request — must outlive the preparer). The thread makes its own Redis
 * connection and ticks only a->ka.stopping (a->ka.fn is not called: the
 * loop is not the thread's). NULL with err when no thread can start. */
preparer *preparer_start(const prepare_args *a, char *err, size_t errlen);
/* 1 when the preparation has ended (preparer_take does not wait). */
int preparer_done(const preparer *p);
/* Wait for the end, hand over what was decided (out: as prepare_job left
 * it, after a failure too) and free the preparer. prepare_job's 0, or -1
 * with err. */
int preparer_take(preparer **p, prepared *out, char *err, size_t errlen);

#endif
