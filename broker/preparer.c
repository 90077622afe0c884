/* preparer: prepare_job in a thread (preparer.h). */
#include "preparer.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct preparer {
    pthread_t thread;
    prepare_args args;
    prepared out;
    int rc;
    char err[ERRLEN];
    atomic_int done;
};

static void *run(void *arg)
{
    preparer *p = arg;
    char err[ERRLEN];
    /* Its own connection: a hiredis context is one thread's. */
    status *redis = status_for(p->args.cfg, err, sizeof(err));
    p->args.redis = redis;
    p->rc = prepare_job(&p->args, &p->out, p->err, sizeof(p->err));
    status_destroy(&redis);
    atomic_store(&p->done, 1);
    return NULL;
}

preparer *preparer_start(const prepare_args *a, char *err, size_t errlen)
{
    preparer *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        err_set(err, errlen, "out of memory");
        return NULL;
    }
    p->args = *a;
    p->args.ka.fn = NULL;
    p->args.ka.ctx = NULL;
    p->out.fd = -1;
    atomic_init(&p->done, 0);
    int e = pthread_create(&p->thread, NULL, run, p);
    if (e != 0) {
        err_set(err, errlen, "cannot start the preparation's thread: %s", strerror(e));
        free(p);
        return NULL;
    }
    return p;
}

int preparer_done(const preparer *p)
{
    return atomic_load(&((preparer *)p)->done);
}

int preparer_take(preparer **pp, prepared *out, char *err, size_t errlen)
{
    preparer *p = *pp;
    pthread_join(p->thread, NULL);
    *out = p->out;
    int rc = p->rc;
    if (rc < 0)
        err_set(err, errlen, "%s", p->err);
    free(p);
    *pp = NULL;
    return rc;
}
