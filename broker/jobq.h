/* jobq: the broker's job queue — the jobs it holds, in fire order, the
 * head the one running. Opaque: ask it. */
#ifndef BROKER_JOBQ_H
#define BROKER_JOBQ_H

#include <stddef.h>

struct job;
typedef struct jobq jobq;

/* An empty queue. NULL: no memory. */
jobq *jobq_new(void);
/* Free the queue and every job in it; *q set to NULL (NULL-safe). */
void jobq_destroy(jobq **q);
/* Queue j in fire order (the queue owns it then). 0 / -1 (no memory). */
int jobq_push(jobq *q, struct job *j);
/* Take j out of the queue (not freed). */
void jobq_remove(jobq *q, struct job *j);
/* The job of that id, or NULL. */
struct job *jobq_find(const jobq *q, const char *id);
size_t jobq_count(const jobq *q);
/* The i-th in fire order (i < jobq_count); 0 is the running one. */
struct job *jobq_at(const jobq *q, size_t i);

#endif
