/* link: the worker's side of its connection to the broker (docs/PROTOCOL.md)
 * — the DEALER socket, READY and heartbeats, and the broker's word passed
 * down to a streaming apply's process. */
#ifndef LINK_H
#define LINK_H

#include "patronsync.pb-c.h"
#include "task.h"

/* Send one message to the broker (w->last_sent_ms updated). 0 / -1 (logged). */
int link_send(worker_ctx *w, Patronsync__WorkerMsg *m);
/* A heartbeat: the largest task process so far, and whether the worker is
 * stopping. */
void link_heartbeat(worker_ctx *w);
/* READY: the worker, its machine and how many shards that machine plans at once. */
void link_ready(worker_ctx *w);
/* (Re)connect to the broker's workers endpoint and say READY. 0 / -1 (logged). */
int link_connect(worker_ctx *w);
/* Pass a streaming apply's word from the broker down w->ctl to its
 * process, as [u32 length][ApplyStream] in one message (up to
 * APPLY_STREAM_MAX bytes; a larger one, or a full socket, drops it: the
 * broker says it again). */
void link_pass_stream(worker_ctx *w, const Patronsync__ApplyStream *as);

#endif
