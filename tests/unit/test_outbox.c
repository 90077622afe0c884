/* test_outbox: the scheduler's outbox on a real control.db in a temp
 * folder, with a broker stand-in (a ROUTER socket, inproc: connected at once) — a
 * request recorded once and sent, resent until acknowledged and not
 * after, a refusal recorded, a request that no longer decodes dropped, no
 * broker at all. Redis is down throughout (a port nothing listens on):
 * the outbox never needs it. Each case runs in a process of its own. */
#include "outbox.h"
#include "t_control.h"
#include "t_fork.h"

#include <stdlib.h>
#include <unistd.h>

#include "log.h"
#include "wire.h"

typedef struct {
    t_env t;      /* first: the scheduler, its settings, control.db */
    void *broker; /* ROUTER: the broker's jobs socket */
} env;

static void env_open(env *e, int with_broker)
{
    memset(e, 0, sizeof(*e));
    t_env_make(&e->t, "test_outbox");
    config_set(&e->t.cfg, "redis_url", "redis://127.0.0.1:1", NULL, 0);
    config_set(&e->t.cfg, "ack_resend_ms", "200", NULL, 0);
    t_env_finish(&e->t);
    scheduler *s = &e->t.s;
    char err[ERRLEN];
    s->redis = status_new(e->t.cfg.redis_url, err, sizeof(err));
    if (s->redis == NULL)
        abort();
    s->zctx = zmq_ctx_new();
    if (!with_broker)
        return;
    char ep[256];
    e->broker = wire_socket(s->zctx, ZMQ_ROUTER, 1 << 20, err, sizeof(err));
    s->broker_sock = wire_socket(s->zctx, ZMQ_DEALER, 1 << 20, err, sizeof(err));
    if (e->broker == NULL || s->broker_sock == NULL ||
        wire_bind(e->broker, "inproc://broker", ep, sizeof(ep), err, sizeof(err)) < 0 ||
        wire_connect(s->broker_sock, ep, err, sizeof(err)) < 0) {
        printf("sockets: %s\n", err);
        abort();
    }
}

static void env_close(env *e)
{
    if (e->broker)
        zmq_close(e->broker);
    if (e->t.s.broker_sock)
        zmq_close(e->t.s.broker_sock);
    zmq_ctx_term(e->t.s.zctx);
    status_destroy(&e->t.s.redis);
    t_env_remove(&e->t);
}

static int64_t count(env *e, const char *sql)
{
    return t_count(&e->t, sql);
}

/* The job ids the broker stand-in receives within ms (into ids, at most cap). How many. */
static int received(env *e, long ms, char ids[][64], int cap)
{
    int n = 0;
    int64_t until = mono_ms() + ms;
    for (;;) {
        long left = (long)(until - mono_ms());
        if (left <= 0)
            return n;
        wire_peer from;
        zmq_msg_t body;
        if (wire_recv_wait(e->broker, &from, &body, left) != 1)
            continue;
        Patronsync__BrokerRequest *r =
            patronsync__broker_request__unpack(NULL, zmq_msg_size(&body), zmq_msg_data(&body));
        zmq_msg_close(&body);
        if (r != NULL && r->body_case == PATRONSYNC__BROKER_REQUEST__BODY_JOB && n < cap)
            str_copy(ids[n++], 64, r->job->job_id);
        if (r)
            patronsync__broker_request__free_unpacked(r, NULL);
    }
}

static Patronsync__JobRequest request(const char *id)
{
    Patronsync__JobRequest req = PATRONSYNC__JOB_REQUEST__INIT;
    req.job_id = (char *)id;
    req.file = "staff.csv";
    req.profile_name = "p.properties";
    req.profile_text = "field_districtID={1}\n";
    req.requested_by = "tester";
    req.fired_at_ms = 1000;
    return req;
}

static void ack(env *e, const char *id, int accepted, const char *error)
{
    Patronsync__JobAck a = PATRONSYNC__JOB_ACK__INIT;
    a.job_id = (char *)id;
    a.accepted = accepted;
    a.error = (char *)error;
    Patronsync__BrokerReply r = PATRONSYNC__BROKER_REPLY__INIT;
    r.body_case = PATRONSYNC__BROKER_REPLY__BODY_ACK;
    r.ack = &a;
    outbox_on_reply(&e->t.s, &r);
}

static void test_added_once_and_sent(void)
{
    env e;
    env_open(&e, 1);
    char err[ERRLEN];
    Patronsync__JobRequest req = request("job-1");
    CHECK(outbox_add(&e.t.s, &req, err, sizeof(err)) == 0);
    CHECK(outbox_add(&e.t.s, &req, err, sizeof(err)) == 0); /* the same id: not added twice */
    CHECK(count(&e, "SELECT count(*) FROM outbox") == 1);
    CHECK(count(&e, "SELECT count(*) FROM outbox WHERE job_id='job-1' AND acked_ms IS NULL AND last_sent_ms > 0") == 1);
    char ids[8][64];
    int n = received(&e, 500, ids, 8);
    CHECK(n >= 1);
    CHECK(n >= 1 && strcmp(ids[0], "job-1") == 0);
    env_close(&e);
}

static void test_resent_until_acked(void)
{
    env e;
    env_open(&e, 1);
    char err[ERRLEN];
    Patronsync__JobRequest req = request("job-2");
    CHECK(outbox_add(&e.t.s, &req, err, sizeof(err)) == 0);
    char ids[16][64];
    CHECK(received(&e, 100, ids, 16) == 1);
    outbox_step(&e.t.s); /* not due yet: sent less than ack_resend_ms ago */
    CHECK(received(&e, 100, ids, 16) == 0);
    usleep(250 * 1000);
    outbox_step(&e.t.s); /* due: resent */
    CHECK(received(&e, 200, ids, 16) == 1);
    ack(&e, "job-2", 1, "");
    CHECK(count(&e, "SELECT count(*) FROM outbox WHERE acked_ms IS NOT NULL AND error=''") == 1);
    usleep(250 * 1000);
    outbox_step(&e.t.s); /* acknowledged: never sent again */
    CHECK(received(&e, 200, ids, 16) == 0);
    ack(&e, "job-2", 0, "late"); /* a second ack changes nothing */
    CHECK(count(&e, "SELECT count(*) FROM outbox WHERE error='late'") == 0);
    env_close(&e);
}

static void test_refusal_recorded(void)
{
    env e;
    env_open(&e, 1);
    char err[ERRLEN];
    Patronsync__JobRequest req = request("job-3");
    CHECK(outbox_add(&e.t.s, &req, err, sizeof(err)) == 0);
    ack(&e, "job-3", 0, "no such file");
    CHECK(count(&e, "SELECT count(*) FROM outbox WHERE job_id='job-3' AND acked_ms IS NOT NULL AND "
                    "error='no such file'") == 1);
    ack(&e, "nosuch", 1, ""); /* an ack for a job it never had */
    CHECK(count(&e, "SELECT count(*) FROM outbox") == 1);
    env_close(&e);
}

static void test_corrupt_request_dropped(void)
{
    env e;
    env_open(&e, 1);
    CHECK(sqlite3_exec(e.t.q, "INSERT INTO outbox(job_id,request,created_ms,last_sent_ms) VALUES('bad',x'ffffffff',1,0)",
                       NULL, NULL, NULL) == SQLITE_OK);
    outbox_step(&e.t.s);
    CHECK(count(&e, "SELECT count(*) FROM outbox WHERE job_id='bad' AND acked_ms IS NOT NULL AND error='corrupt'") == 1);
    char ids[4][64];
    CHECK(received(&e, 200, ids, 4) == 0);
    env_close(&e);
}

static void test_no_broker(void)
{
    env e;
    env_open(&e, 0);
    char err[ERRLEN];
    Patronsync__JobRequest req = request("job-4");
    CHECK(outbox_add(&e.t.s, &req, err, sizeof(err)) == 0); /* kept: sent when a broker is there */
    CHECK(count(&e, "SELECT count(*) FROM outbox WHERE job_id='job-4' AND acked_ms IS NULL") == 1);
    env_close(&e);
}

static void test_database_gone(void)
{
    env e;
    env_open(&e, 0);
    CHECK(sqlite3_exec(e.t.q, "DROP TABLE outbox", NULL, NULL, NULL) == SQLITE_OK);
    char err[ERRLEN] = "";
    Patronsync__JobRequest req = request("job-5");
    CHECK(outbox_add(&e.t.s, &req, err, sizeof(err)) < 0);
    CHECK(strstr(err, "control store: recording job job-5") != NULL);
    outbox_step(&e.t.s); /* no table: nothing to do, no crash */
    env_close(&e);
}

int main(void)
{
    log_init("test_outbox", LOG_ERROR);
    T_FORK(test_added_once_and_sent);
    T_FORK(test_resent_until_acked);
    T_FORK(test_refusal_recorded);
    T_FORK(test_corrupt_request_dropped);
    T_FORK(test_no_broker);
    T_FORK(test_database_gone);
    T_END();
}
