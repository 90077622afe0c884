/* scheduler: the state of the scheduler process every module is handed —
 * its settings, control.db, the control socket patronctl talks to, the
 * broker's job socket, Redis. Its modules: control.c (the verb table and
 * the token check), reply.c, controldb.c, outbox.c, schedule*.c, runnow.c,
 * jobctl.c, refdata.c, sites.c, slots.c. */
#ifndef SCHEDULER_H
#define SCHEDULER_H

#include "config.h"
#include "controldb.h"
#include "status.h"
#include "util.h"

typedef struct scheduler scheduler;

struct scheduler {
    ps_config *cfg;
    controldb *db;      /* control.db */
    void *zctx;
    struct zap *zap;          /* the ZAP handler of the control endpoint (zap.h) */
    struct wire_guard *guard; /* control peers that send garbage (wire.h) */
    void *control_sock; /* ROUTER: patronctl */
    void *broker_sock;  /* DEALER: the broker's job socket; NULL: none (tests) */
    status *redis;
    volatile int *stopping;
    unsigned char token_key[32];       /* the district's token key (users.c), read at start */
    int have_token_key;
    struct control_attempts *attempts; /* failed attempts per client (control.c) */
};

#endif
