/* jobq: the broker's job queue (jobq.h). */
#include "jobq.h"

#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "util.h"

struct jobq {
    job **v;
    size_t n, cap;
};

jobq *jobq_new(void)
{
    return calloc(1, sizeof(jobq));
}

void jobq_destroy(jobq **q)
{
    if (q == NULL || *q == NULL)
        return;
    for (size_t i = 0; i < (*q)->n; i++)
        job_free((*q)->v[i]);
    free((*q)->v);
    free(*q);
    *q = NULL;
}

int jobq_push(jobq *q, job *j)
{
    if (array_grow(&q->v, &q->cap, q->n + 1, sizeof(*q->v), 8) < 0)
        return -1;
    /* Fire order. */
    size_t k = q->n;
    while (k > 1 && q->v[k - 1]->req->fired_at_ms > j->req->fired_at_ms)
        k--;
    memmove(&q->v[k + 1], &q->v[k], (q->n - k) * sizeof(*q->v));
    q->v[k] = j;
    q->n++;
    return 0;
}

void jobq_remove(jobq *q, job *j)
{
    for (size_t i = 0; i < q->n; i++) {
        if (q->v[i] == j) {
            memmove(&q->v[i], &q->v[i + 1], (q->n - i - 1) * sizeof(*q->v));
            q->n--;
            return;
        }
    }
}

job *jobq_find(const jobq *q, const char *id)
{
    for (size_t i = 0; i < q->n; i++)
        if (strcmp(q->v[i]->id, id) == 0)
            return q->v[i];
    return NULL;
}

size_t jobq_count(const jobq *q)
{
    return q->n;
}

job *jobq_at(const jobq *q, size_t i)
{
    return q->v[i];
}
