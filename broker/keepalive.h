/* keepalive: how a long step (waiting for a file to be still, copying,
 * converting, scanning a large file) gives up when its process stops: it
 * ticks now and then, calling fn(ctx) when one is given (the broker's
 * preparations run beside its loop and give none, preparer.h), and gives
 * up when *stopping is set. */
#ifndef BROKER_KEEPALIVE_H
#define BROKER_KEEPALIVE_H

typedef struct {
    void (*fn)(void *ctx); /* NULL: nothing to keep alive */
    void *ctx;
    const volatile int *stopping; /* NULL: never stops */
} keepalive;

/* Call the keepalive; 1 when the process is stopping (the step gives up). */
static inline int keepalive_tick(const keepalive *k)
{
    if (k == NULL)
        return 0;
    if (k->fn != NULL)
        k->fn(k->ctx);
    return k->stopping != NULL && *k->stopping;
}

#endif
