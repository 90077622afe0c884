/* wire: ZeroMQ sockets set up so nothing is dropped silently, and protobuf
 * messages sent and received over them (one body frame per message, after
 * the peer's identity frame on ROUTER sockets). */
#ifndef WIRE_H
#define WIRE_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

typedef struct {
    unsigned char id[256];
    size_t len;
} wire_peer;

/* Whether two identities are the same peer. */
int wire_peer_same(const wire_peer *a, const wire_peer *b);

/* Frames that did not decode or had the wrong shape, since start. */
extern uint64_t wire_rejected;
/* Whether to log the rejection just counted (the 1st, 2nd, 4th, 8th, ...):
 * a flood of garbage must not flood the log. */
int wire_should_log_rejected(void);

/* A socket of the given type with LINGER bounded, MAXMSGSIZE set,
 * ROUTER_MANDATORY on routers and IMMEDIATE on dealers. NULL with err. */
void *wire_socket(void *ctx, int type, int64_t max_message, char *err, size_t errlen);
/* Bind (a wildcard port is allowed); the real endpoint is written to
 * actual. 0 / -1. */
int wire_bind(void *sock, const char *endpoint, char *actual, size_t actual_len, char *err, size_t errlen);
int wire_connect(void *sock, const char *endpoint, char *err, size_t errlen);

/* A listening socket's guard against a peer that sends garbage: past
 * WIRE_GUARD_STRIKES frames that do not decode within a second, the peer's
 * frames are dropped unread (and counted in wire_rejected) for a while —
 * 1 s, doubling at each relapse up to 60 s — and that is logged once. */
#define WIRE_GUARD_STRIKES 20
typedef struct wire_guard wire_guard;
wire_guard *wire_guard_new(const char *what);
void wire_guard_free(wire_guard **g);
/* 1: decode the frame from p; 0: drop it unread (counted). */
int wire_guard_admit(wire_guard *g, const wire_peer *p);
/* A frame from p did not decode (or had the wrong shape). */
void wire_guard_strike(wire_guard *g, const wire_peer *p);

/* The one protobuf pack helper: msg packed into a new buffer the caller
 * frees (never NULL for an empty message), its length in *len. NULL with
 * err when out of memory. */
uint8_t *wire_pack(const ProtobufCMessage *msg, size_t *len, char *err, size_t errlen);

/* Send one message; `to` is the identity frame for a ROUTER, NULL otherwise.
 * Non-blocking: a full queue or an unknown peer is an error (-1), never a
 * silent drop. */
int wire_send(void *sock, const wire_peer *to, const ProtobufCMessage *msg, char *err, size_t errlen);

/* Receive one message without blocking. On a ROUTER `from` gets the
 * identity. Returns 1 and the body in *body (caller zmq_msg_close()s it),
 * 0 when nothing is waiting, -1 for a malformed multipart message (drained
 * and counted in wire_rejected). */
int wire_recv(void *sock, wire_peer *from, zmq_msg_t *body);

/* Blocking variant with a timeout in ms (-1 forever): 1, 0 on timeout, -1. */
int wire_recv_wait(void *sock, wire_peer *from, zmq_msg_t *body, long timeout_ms);

#endif
