/* outbox: job requests kept in control.db until the broker acknowledges
 * them, resent on a timer (outbox.h). */
#include "outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "wire.h"

int outbox_add(scheduler *s, Patronsync__JobRequest *req, char *err, size_t errlen)
{
    size_t n = patronsync__job_request__get_packed_size(req);
    uint8_t *buf = malloc(n ? n : 1);
    if (buf == NULL) {
        err_set(err, errlen, "out of memory");
        return -1;
    }
    patronsync__job_request__pack(req, buf);
    int rc = controldb_outbox_put(s->db, req->job_id, buf, n, NULL, 0);
    if (rc < 0)
        err_set(err, errlen, "control store: recording job %s: %s", req->job_id, controldb_errmsg(s->db));
    free(buf);
    if (rc == 0) {
        status_job_set(s->redis, req->job_id, SK_JOB,
                       "state pending created_ms %lld file %s profile %s schedule %s requested_by %s dry_run %d",
                       (long long)now_ms(), req->file, req->profile_name, req->schedule, req->requested_by,
                  req->options && req->options->dry_run ? 1 : 0);
        status_job_index(s->redis, req->job_id, (long long)req->fired_at_ms);
        outbox_step(s);
    }
    return rc;
}

/* Set a row's column of time (CDB_OUTBOX_SENT, CDB_OUTBOX_CORRUPT) to now. */
static void outbox_mark(scheduler *s, enum controldb_sql which, const char *id)
{
    sqlite3_stmt *st = controldb_stmt(s->db, which, NULL, 0);
    if (st == NULL)
        return;
    sqlite3_bind_int64(st, 1, now_ms());
    sqlite3_bind_text(st, 2, id, -1, SQLITE_TRANSIENT);
    controldb_run(s->db, st, NULL, 0);
}

void outbox_step(scheduler *s)
{
    sqlite3_stmt *st = controldb_stmt(s->db, CDB_OUTBOX_DUE, NULL, 0);
    if (st == NULL)
        return;
    sqlite3_bind_int64(st, 1, now_ms() - s->cfg->ack_resend_ms);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *id = controldb_text(st, 0);
        Patronsync__JobRequest *req =
            patronsync__job_request__unpack(NULL, (size_t)sqlite3_column_bytes(st, 1), sqlite3_column_blob(st, 1));
        if (req == NULL) {
            log_error("outbox: request for job %s does not decode; dropped", id);
            outbox_mark(s, CDB_OUTBOX_CORRUPT, id);
            continue;
        }
        Patronsync__BrokerRequest br = PATRONSYNC__BROKER_REQUEST__INIT;
        br.body_case = PATRONSYNC__BROKER_REQUEST__BODY_JOB;
        br.job = req;
        char err[ERRLEN];
        if (wire_send(s->broker_sock, NULL, &br.base, err, sizeof(err)) < 0)
            log_debug("job %s not sent yet (%s); will retry", id, err);
        outbox_mark(s, CDB_OUTBOX_SENT, id);
        patronsync__job_request__free_unpacked(req, NULL);
    }
    controldb_done(st);
}

void outbox_on_reply(scheduler *s, const Patronsync__BrokerReply *r)
{
    if (r->body_case != PATRONSYNC__BROKER_REPLY__BODY_ACK)
        return;
    const Patronsync__JobAck *a = r->ack;
    sqlite3_stmt *st = controldb_stmt(s->db, CDB_OUTBOX_ACK, NULL, 0);
    if (st == NULL)
        return;
    sqlite3_bind_int64(st, 1, now_ms());
    sqlite3_bind_text(st, 2, a->accepted ? "" : a->error, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, a->job_id, -1, SQLITE_STATIC);
    sqlite3_step(st);
    int changed = controldb_changes(s->db);
    controldb_done(st);
    if (changed && !a->accepted) {
        log_warn("broker refused job %s: %s", a->job_id, a->error);
        status_job_set(s->redis, a->job_id, SK_JOB, "state failed error %s finished_ms %lld", a->error,
                       (long long)now_ms());
    } else if (changed) {
        log_info("job %s handed to the broker", a->job_id);
    }
}
