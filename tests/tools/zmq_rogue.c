/* zmq_rogue: an attacker on the same host, for the security tests.
 *   zmq_rogue MODE ENDPOINT AUTH [ARGS]
 * AUTH: "plain" (no CURVE), "unknown:SERVER.pub" (a fresh key the server
 * does not list), or "key:SERVER.pub:CLIENT.key" (a listed client key).
 * MODE:
 *   job JOB_ID          submit a job (a delete-everything profile) to the broker
 *   decision JOB_ID     approve a held job at the broker, as "mallory"
 *   worker SECONDS      register as a worker (READY) and count what comes
 *   result JOB_ID LIST  register, then at once send an ok ShardResult for each
 *                       shard in LIST (e.g. 0,3) and an ok ApplyResult of the
 *                       job: tasks it does not hold
 *   raw SECONDS         send stdin as one frame; the reply's frame to stdout
 *                       (nothing when none came within SECONDS)
 *   control N           send stdin (a ControlRequest) N times, one after the
 *                       other: prints "replies R accepted A" (A: replies ok)
 * ROGUE_IDENTITY in the environment: the routing identity to connect with.
 * Prints one line: "answered N" / "no answer" (job, decision) or
 * "heartbeats H tasks T" (worker, result). Exit 0 unless the tool itself
 * could not run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "curve.h"
#include "patronsync.pb-c.h"
#include "util.h"
#include "wire.h"

static int set_auth(void *s, const char *auth)
{
    char err[ERRLEN];
    if (strcmp(auth, "plain") == 0)
        return 0;
    char spec[2048];
    str_copy(spec, sizeof(spec), auth);
    char *server_path = strchr(spec, ':');
    if (server_path == NULL)
        return -1;
    *server_path++ = '\0';
    char *client_path = strchr(server_path, ':');
    if (client_path)
        *client_path++ = '\0';
    curve_keypair server, kp;
    if (curve_read_key(server_path, &server, 0, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    if (strcmp(spec, "unknown") == 0) {
        zmq_curve_keypair(kp.pub, kp.sec);
    } else if (strcmp(spec, "key") == 0 && client_path != NULL) {
        if (curve_read_key(client_path, &kp, 1, err, sizeof(err)) < 0) {
            fprintf(stderr, "%s\n", err);
            return -1;
        }
    } else {
        return -1;
    }
    return curve_client(s, server.pub, &kp, err, sizeof(err));
}

static int send_msg(void *s, const ProtobufCMessage *m)
{
    char err[ERRLEN];
    for (int i = 0; i < 40; i++) {
        if (wire_send(s, NULL, m, err, sizeof(err)) == 0)
            return 0;
        usleep(50 * 1000);
    }
    return -1;
}

/* Replies within ms. */
static int count_replies(void *s, long ms)
{
    int n = 0;
    zmq_msg_t body;
    while (wire_recv_wait(s, NULL, &body, ms) == 1) {
        zmq_msg_close(&body);
        n++;
        ms = 200;
    }
    return n;
}

static void to_broker(void *s, const char *mode, const char *job_id)
{
    Patronsync__BrokerRequest br = PATRONSYNC__BROKER_REQUEST__INIT;
    Patronsync__JobRequest jr = PATRONSYNC__JOB_REQUEST__INIT;
    Patronsync__JobDecision d = PATRONSYNC__JOB_DECISION__INIT;
    if (strcmp(mode, "job") == 0) {
        jr.job_id = (char *)job_id;
        jr.file = "rogue.csv";
        jr.profile_name = "rogue";
        jr.profile_text = "field_districtID={1}\nMatchBy=DistrictID\n";
        jr.requested_by = "mallory";
        br.body_case = PATRONSYNC__BROKER_REQUEST__BODY_JOB;
        br.job = &jr;
    } else {
        d.job_id = (char *)job_id;
        d.action = "approve";
        d.user = "mallory";
        br.body_case = PATRONSYNC__BROKER_REQUEST__BODY_DECISION;
        br.decision = &d;
    }
    int sent = send_msg(s, &br.base) == 0;
    int n = sent ? count_replies(s, 1500) : 0; /* a real answer takes milliseconds */
    if (n > 0)
        printf("answered %d\n", n);
    else
        printf("no answer\n");
}

static void as_worker(void *s, long seconds, const char *job_id, const char *shards)
{
    Patronsync__Ready rd = PATRONSYNC__READY__INIT;
    rd.worker_id = "rogue";
    rd.pid = (uint32_t)getpid();
    rd.host = "rogue-host";
    Patronsync__WorkerMsg m = PATRONSYNC__WORKER_MSG__INIT;
    m.body_case = PATRONSYNC__WORKER_MSG__BODY_READY;
    m.ready = &rd;
    send_msg(s, &m.base);
    int heartbeats = 0, tasks = 0;
    if (job_id != NULL) {
        Patronsync__Counts c = PATRONSYNC__COUNTS__INIT;
        for (const char *p = shards; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
            Patronsync__ShardResult r = PATRONSYNC__SHARD_RESULT__INIT;
            r.job_id = (char *)job_id;
            r.shard = (uint32_t)strtoul(p, NULL, 10);
            r.attempt = 1;
            r.ok = 1;
            r.counts = &c;
            Patronsync__WorkerMsg rm = PATRONSYNC__WORKER_MSG__INIT;
            rm.body_case = PATRONSYNC__WORKER_MSG__BODY_SHARD_RESULT;
            rm.shard_result = &r;
            send_msg(s, &rm.base);
        }
        Patronsync__ApplyResult ar = PATRONSYNC__APPLY_RESULT__INIT;
        ar.job_id = (char *)job_id;
        ar.attempt = 1;
        ar.ok = 1;
        ar.counts = &c;
        Patronsync__WorkerMsg am = PATRONSYNC__WORKER_MSG__INIT;
        am.body_case = PATRONSYNC__WORKER_MSG__BODY_APPLY_RESULT;
        am.apply_result = &ar;
        send_msg(s, &am.base);
    }
    int64_t until = mono_ms() + seconds * 1000;
    while (mono_ms() < until) {
        zmq_msg_t body;
        if (wire_recv_wait(s, NULL, &body, 200) != 1)
            continue;
        Patronsync__BrokerMsg *bm = patronsync__broker_msg__unpack(NULL, zmq_msg_size(&body), zmq_msg_data(&body));
        zmq_msg_close(&body);
        if (bm == NULL)
            continue;
        if (bm->body_case == PATRONSYNC__BROKER_MSG__BODY_HEARTBEAT) {
            heartbeats++;
            Patronsync__Heartbeat hb = PATRONSYNC__HEARTBEAT__INIT;
            Patronsync__WorkerMsg hm = PATRONSYNC__WORKER_MSG__INIT;
            hm.body_case = PATRONSYNC__WORKER_MSG__BODY_HEARTBEAT;
            hm.heartbeat = &hb;
            send_msg(s, &hm.base);
        } else {
            tasks++; /* a shard or an apply: personal data reached the rogue */
        }
        patronsync__broker_msg__free_unpacked(bm, NULL);
    }
    printf("heartbeats %d tasks %d\n", heartbeats, tasks);
}

static void read_stdin(strbuf *in)
{
    sb_init(in);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0)
        sb_append(in, buf, n);
}

static void control_loop(void *s, long n)
{
    strbuf in;
    read_stdin(&in);
    long replies = 0, accepted = 0;
    for (long i = 0; i < n; i++) {
        int sent = -1;
        for (int k = 0; k < 100 && sent < 0; k++)
            if ((sent = zmq_send(s, in.buf ? in.buf : "", in.len, ZMQ_DONTWAIT)) < 0)
                usleep(20 * 1000);
        zmq_msg_t body;
        if (sent < 0 || wire_recv_wait(s, NULL, &body, 10000) != 1)
            break;
        Patronsync__ControlReply *r =
            patronsync__control_reply__unpack(NULL, zmq_msg_size(&body), zmq_msg_data(&body));
        zmq_msg_close(&body);
        replies++;
        if (r && r->ok)
            accepted++;
        if (r)
            patronsync__control_reply__free_unpacked(r, NULL);
    }
    sb_free(&in);
    printf("replies %ld accepted %ld\n", replies, accepted);
}

static void raw(void *s, long seconds)
{
    strbuf in;
    read_stdin(&in);
    int sent = -1;
    for (int i = 0; i < 100 && sent < 0; i++) {
        sent = zmq_send(s, in.buf ? in.buf : "", in.len, ZMQ_DONTWAIT);
        if (sent < 0)
            usleep(50 * 1000);
    }
    sb_free(&in);
    zmq_msg_t body;
    if (sent >= 0 && wire_recv_wait(s, NULL, &body, seconds * 1000) == 1) {
        fwrite(zmq_msg_data(&body), 1, zmq_msg_size(&body), stdout);
        zmq_msg_close(&body);
    }
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: zmq_rogue job|decision|worker|result ENDPOINT AUTH ARG [N]\n");
        return 2;
    }
    const char *mode = argv[1];
    void *ctx = zmq_ctx_new();
    char err[ERRLEN];
    void *s = wire_socket(ctx, ZMQ_DEALER, 1 << 20, err, sizeof(err));
    const char *ident = getenv("ROGUE_IDENTITY");
    if (s != NULL && ident != NULL)
        zmq_setsockopt(s, ZMQ_ROUTING_ID, ident, strlen(ident));
    if (s == NULL || set_auth(s, argv[3]) < 0 || wire_connect(s, argv[2], err, sizeof(err)) < 0) {
        fprintf(stderr, "zmq_rogue: cannot set up the socket (%s)\n", argv[3]);
        return 1;
    }
    if (strcmp(mode, "raw") == 0)
        raw(s, strtol(argv[4], NULL, 10));
    else if (strcmp(mode, "control") == 0)
        control_loop(s, strtol(argv[4], NULL, 10));
    else if (strcmp(mode, "job") == 0 || strcmp(mode, "decision") == 0)
        to_broker(s, mode, argv[4]);
    else if (strcmp(mode, "worker") == 0)
        as_worker(s, strtol(argv[4], NULL, 10), NULL, NULL);
    else if (strcmp(mode, "result") == 0 && argc > 5)
        as_worker(s, 3, argv[4], argv[5]);
    else
        return 2;
    zmq_close(s);
    zmq_ctx_term(ctx);
    return 0;
}
