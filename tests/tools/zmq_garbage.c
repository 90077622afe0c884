/* zmq_garbage: sends garbage, truncated and oversized frames to a
 * patronsync socket (test tool).
 * usage: zmq_garbage ENDPOINT COUNT SEED [SERVER.pub CLIENT.key]
 * (with the keys: as a CURVE client with a listed key, so the frames reach
 * the decoder past the handshake)
 *
 * Every frame but the oversized ones goes over one connection that waits
 * (linger) until all of it is delivered, so the peer sees each of them however
 * slowly it reads. An oversized frame makes the peer drop the connection it
 * came on, and whatever was queued behind it on that connection: so each goes
 * on a connection of its own. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "curve.h"
#include "patronsync.pb-c.h"
#include "util.h"

/* The CURVE keys to connect with (none: plaintext). */
static curve_keypair server_key, client_key;
static int use_curve;

static void secure(void *s)
{
    char err[ERRLEN];
    if (use_curve && curve_client(s, server_key.pub, &client_key, err, sizeof(err)) < 0)
        fprintf(stderr, "zmq_garbage: %s\n", err);
}

/* One frame over MAXMSGSIZE on a connection of its own: the peer drops it. */
static int send_oversized(void *ctx, const char *endpoint, const char *buf, size_t len)
{
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    secure(s);
    int linger = 2000;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
    int rc = zmq_connect(s, endpoint) == 0 ? zmq_send(s, buf, len, 0) : -1;
    zmq_close(s);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 6) {
        fprintf(stderr, "usage: zmq_garbage ENDPOINT COUNT SEED [SERVER.pub CLIENT.key]\n");
        return 2;
    }
    if (argc == 6) {
        char err[ERRLEN];
        if (curve_read_key(argv[4], &server_key, 0, err, sizeof(err)) < 0 ||
            curve_read_key(argv[5], &client_key, 1, err, sizeof(err)) < 0) {
            fprintf(stderr, "zmq_garbage: %s\n", err);
            return 1;
        }
        use_curve = 1;
    }
    long count = strtol(argv[2], NULL, 10);
    srandom((unsigned)strtoul(argv[3], NULL, 10));
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    secure(s);
    int linger = 120000, hwm = 100000;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    if (zmq_connect(s, argv[1]) != 0) {
        fprintf(stderr, "connect %s: %s\n", argv[1], zmq_strerror(zmq_errno()));
        return 1;
    }
    /* A valid message to cut short. */
    Patronsync__JobRequest jr = PATRONSYNC__JOB_REQUEST__INIT;
    jr.job_id = "garbage-job";
    jr.file = "../../etc/passwd";
    jr.profile_text = "field_districtID={1}";
    Patronsync__BrokerRequest br = PATRONSYNC__BROKER_REQUEST__INIT;
    br.body_case = PATRONSYNC__BROKER_REQUEST__BODY_JOB;
    br.job = &jr;
    size_t vlen = patronsync__broker_request__get_packed_size(&br);
    uint8_t *valid = malloc(vlen);
    patronsync__broker_request__pack(&br, valid);
    size_t big = (size_t)17 << 20;
    char *buf = calloc(1, big);
    long sent = 0;
    for (long i = 0; i < count; i++) {
        int kind = (int)(random() % 10);
        size_t n = (size_t)(random() % 300);
        for (size_t k = 0; k < n; k++)
            buf[k] = (char)random();
        int rc;
        if (kind < 5) {
            rc = zmq_send(s, buf, n, 0); /* random bytes */
        } else if (kind < 7) {
            zmq_send(s, buf, n / 2, ZMQ_SNDMORE); /* wrong number of frames */
            rc = zmq_send(s, buf + n / 2, n - n / 2, 0);
        } else if (kind < 9) {
            rc = zmq_send(s, valid, (size_t)random() % vlen, 0); /* truncated */
        } else if (i % 20000 == 9) {
            rc = send_oversized(ctx, argv[1], buf, big); /* over MAXMSGSIZE */
        } else {
            rc = zmq_send(s, "", 0, 0); /* empty */
        }
        if (rc >= 0)
            sent++;
    }
    printf("%ld sent\n", sent);
    free(buf);
    free(valid);
    zmq_close(s);
    zmq_ctx_term(ctx);
    return 0;
}
