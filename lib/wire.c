/* wire: socket options, protobuf framing, checked sends and receives. */
#include "wire.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

uint64_t wire_rejected;

int wire_should_log_rejected(void)
{
    return (wire_rejected & (wire_rejected - 1)) == 0;
}

void *wire_socket(void *ctx, int type, int64_t max_message, char *err, size_t errlen)
{
    void *s = zmq_socket(ctx, type);
    if (s == NULL) {
        err_set(err, errlen, "zmq_socket: %s", zmq_strerror(errno));
        return NULL;
    }
    int linger = 500;
    int one = 1;
    int hwm = 1000;
    if (zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger)) < 0 ||
        zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &max_message, sizeof(max_message)) < 0 ||
        zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm)) < 0 ||
        zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof(hwm)) < 0)
        goto err;
    if (type == ZMQ_ROUTER && zmq_setsockopt(s, ZMQ_ROUTER_MANDATORY, &one, sizeof(one)) < 0)
        goto err;
    if (type == ZMQ_DEALER && zmq_setsockopt(s, ZMQ_IMMEDIATE, &one, sizeof(one)) < 0)
        goto err;
    return s;
err:
    err_set(err, errlen, "zmq_setsockopt: %s", zmq_strerror(errno));
    zmq_close(s);
    return NULL;
}

int wire_bind(void *sock, const char *endpoint, char *actual, size_t actual_len, char *err, size_t errlen)
{
    if (zmq_bind(sock, endpoint) < 0) {
        err_set(err, errlen, "cannot bind %s: %s", endpoint, zmq_strerror(errno));
        return -1;
    }
    if (actual != NULL) {
        size_t n = actual_len;
        if (zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, actual, &n) < 0) {
            err_set(err, errlen, "ZMQ_LAST_ENDPOINT: %s", zmq_strerror(errno));
            return -1;
        }
    }
    return 0;
}

int wire_connect(void *sock, const char *endpoint, char *err, size_t errlen)
{
    if (zmq_connect(sock, endpoint) < 0) {
        err_set(err, errlen, "cannot connect to %s: %s", endpoint, zmq_strerror(errno));
        return -1;
    }
    return 0;
}

static void free_buf(void *data, void *hint)
{
    (void)hint;
    free(data);
}

uint8_t *wire_pack(const ProtobufCMessage *msg, size_t *len, char *err, size_t errlen)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(n ? n : 1);
    if (buf == NULL) {
        err_set(err, errlen, "out of memory packing a %zu-byte message", n);
        return NULL;
    }
    protobuf_c_message_pack(msg, buf);
    *len = n;
    return buf;
}

int wire_send(void *sock, const wire_peer *to, const ProtobufCMessage *msg, char *err, size_t errlen)
{
    size_t n = 0;
    uint8_t *buf = wire_pack(msg, &n, err, errlen);
    if (buf == NULL)
        return -1;
    if (to != NULL && zmq_send(sock, to->id, to->len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        err_set(err, errlen, "send to peer: %s", zmq_strerror(errno));
        free(buf);
        return -1;
    }
    zmq_msg_t m;
    if (zmq_msg_init_data(&m, buf, n, free_buf, NULL) < 0) {
        free(buf);
        err_set(err, errlen, "zmq_msg_init_data: %s", zmq_strerror(errno));
        return -1;
    }
    if (zmq_msg_send(&m, sock, ZMQ_DONTWAIT) < 0) {
        err_set(err, errlen, "send: %s", zmq_strerror(errno));
        zmq_msg_close(&m);
        return -1;
    }
    return 0;
}

static void drain(void *sock)
{
    int more = 1;
    size_t sz = sizeof(more);
    while (zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &sz) == 0 && more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            return;
        }
        zmq_msg_close(&m);
        sz = sizeof(more);
    }
}

static int recv_flags(void *sock, wire_peer *from, zmq_msg_t *body, int flags)
{
    int type = 0;
    size_t tsz = sizeof(type);
    zmq_getsockopt(sock, ZMQ_TYPE, &type, &tsz);
    if (type == ZMQ_ROUTER) {
        zmq_msg_t id;
        zmq_msg_init(&id);
        if (zmq_msg_recv(&id, sock, flags) < 0) {
            zmq_msg_close(&id);
            return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
        }
        size_t len = zmq_msg_size(&id);
        int more = zmq_msg_more(&id);
        if (from != NULL) {
            from->len = len < sizeof(from->id) ? len : sizeof(from->id);
            memcpy(from->id, zmq_msg_data(&id), from->len);
        }
        zmq_msg_close(&id);
        if (!more) {
            wire_rejected++;
            return -1;
        }
        flags = 0; /* the rest of a multipart message is already here */
    }
    zmq_msg_init(body);
    if (zmq_msg_recv(body, sock, flags) < 0) {
        int e = errno;
        zmq_msg_close(body);
        return (e == EAGAIN || e == EINTR) ? 0 : -1;
    }
    if (zmq_msg_more(body)) {
        drain(sock);
        zmq_msg_close(body);
        wire_rejected++;
        return -1;
    }
    return 1;
}

int wire_recv(void *sock, wire_peer *from, zmq_msg_t *body)
{
    return recv_flags(sock, from, body, ZMQ_DONTWAIT);
}

int wire_recv_wait(void *sock, wire_peer *from, zmq_msg_t *body, long timeout_ms)
{
    zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
    int rc = zmq_poll(&it, 1, timeout_ms);
    if (rc < 0)
        return errno == EINTR ? 0 : -1;
    if (rc == 0)
        return 0;
    return recv_flags(sock, from, body, ZMQ_DONTWAIT);
}

int wire_peer_same(const wire_peer *a, const wire_peer *b)
{
    return a->len == b->len && memcmp(a->id, b->id, a->len) == 0;
}

/* ---- the guard ---- */

#define GUARD_PEERS 64

typedef struct {
    wire_peer peer;
    int64_t window_ms;  /* the second the strikes are counted in */
    unsigned strikes;
    int64_t until_ms;   /* dropped unread until then */
    int64_t penalty_ms; /* the next block's length */
    int64_t last_ms;    /* for the replacement of the oldest */
} guard_entry;

struct wire_guard {
    char what[32];
    guard_entry e[GUARD_PEERS];
};

wire_guard *wire_guard_new(const char *what)
{
    wire_guard *g = calloc(1, sizeof(*g));
    if (g != NULL)
        snprintf(g->what, sizeof(g->what), "%s", what);
    return g;
}

void wire_guard_free(wire_guard **g)
{
    if (g == NULL)
        return;
    free(*g);
    *g = NULL;
}

static guard_entry *guard_find(wire_guard *g, const wire_peer *p, int make)
{
    guard_entry *oldest = &g->e[0];
    for (size_t i = 0; i < GUARD_PEERS; i++) {
        if (g->e[i].peer.len > 0 && wire_peer_same(&g->e[i].peer, p))
            return &g->e[i];
        if (g->e[i].last_ms < oldest->last_ms)
            oldest = &g->e[i];
    }
    if (!make)
        return NULL;
    memset(oldest, 0, sizeof(*oldest));
    oldest->peer = *p;
    return oldest;
}

int wire_guard_admit(wire_guard *g, const wire_peer *p)
{
    if (g == NULL || p == NULL || p->len == 0)
        return 1;
    guard_entry *e = guard_find(g, p, 0);
    if (e == NULL || mono_ms() >= e->until_ms)
        return 1;
    wire_rejected++;
    return 0;
}

void wire_guard_strike(wire_guard *g, const wire_peer *p)
{
    if (g == NULL || p == NULL || p->len == 0)
        return;
    int64_t now = mono_ms();
    guard_entry *e = guard_find(g, p, 1);
    e->last_ms = now;
    if (now - e->window_ms >= 1000) {
        e->window_ms = now;
        e->strikes = 0;
    }
    if (++e->strikes < WIRE_GUARD_STRIKES)
        return;
    e->penalty_ms = e->penalty_ms ? e->penalty_ms * 2 : 1000;
    if (e->penalty_ms > 60000)
        e->penalty_ms = 60000;
    e->until_ms = now + e->penalty_ms;
    e->strikes = 0;
    log_warn("%s: a peer sent %u frames that do not decode within a second: its frames are dropped unread for %lld s",
             g->what, WIRE_GUARD_STRIKES, (long long)(e->penalty_ms / 1000));
}
