/* outbox: job requests kept in control.db until the broker acknowledges
 * them, resent on a timer, so a request fired while the broker is down runs
 * once when it comes back (the broker ignores ids it already has). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "scheduler.h"
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
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (sqlite3_prepare_v2(s->db, "INSERT OR IGNORE INTO outbox(job_id,request,created_ms,last_sent_ms) VALUES(?,?,?,0)",
                           -1, &st, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(st, 1, req->job_id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, buf, (int)n, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now_ms());
    if (sqlite3_step(st) != SQLITE_DONE)
        goto out;
    rc = 0;
out:
    if (rc < 0)
        err_set(err, errlen, "control store: recording job %s: %s", req->job_id, sqlite3_errmsg(s->db));
    sqlite3_finalize(st);
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

void outbox_step(scheduler *s)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT job_id,request FROM outbox WHERE acked_ms IS NULL AND last_sent_ms < ? ORDER BY created_ms LIMIT 100",
                           -1, &st, NULL) != SQLITE_OK)
        return;
    sqlite3_bind_int64(st, 1, now_ms() - s->cfg->ack_resend_ms);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        Patronsync__JobRequest *req =
            patronsync__job_request__unpack(NULL, (size_t)sqlite3_column_bytes(st, 1), sqlite3_column_blob(st, 1));
        if (req == NULL) {
            log_error("outbox: request for job %s does not decode; dropped", id);
            sqlite3_stmt *bad = NULL;
            if (sqlite3_prepare_v2(s->db, "UPDATE outbox SET acked_ms=?, error='corrupt' WHERE job_id=?", -1, &bad,
                                   NULL) == SQLITE_OK) {
                sqlite3_bind_int64(bad, 1, now_ms());
                sqlite3_bind_text(bad, 2, id, -1, SQLITE_TRANSIENT);
                sqlite3_step(bad);
            }
            sqlite3_finalize(bad);
            continue;
        }
        Patronsync__BrokerRequest br = PATRONSYNC__BROKER_REQUEST__INIT;
        br.body_case = PATRONSYNC__BROKER_REQUEST__BODY_JOB;
        br.job = req;
        char err[ERRLEN];
        if (wire_send(s->broker_sock, NULL, &br.base, err, sizeof(err)) < 0)
            log_debug("job %s not sent yet (%s); will retry", id, err);
        sqlite3_stmt *up = NULL;
        if (sqlite3_prepare_v2(s->db, "UPDATE outbox SET last_sent_ms=? WHERE job_id=?", -1, &up, NULL) == SQLITE_OK) {
            sqlite3_bind_int64(up, 1, now_ms());
            sqlite3_bind_text(up, 2, id, -1, SQLITE_TRANSIENT);
            sqlite3_step(up);
        }
        sqlite3_finalize(up);
        patronsync__job_request__free_unpacked(req, NULL);
    }
    sqlite3_finalize(st);
}

void outbox_on_reply(scheduler *s, const Patronsync__BrokerReply *r)
{
    if (r->body_case != PATRONSYNC__BROKER_REPLY__BODY_ACK)
        return;
    const Patronsync__JobAck *a = r->ack;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "UPDATE outbox SET acked_ms=?, error=? WHERE job_id=? AND acked_ms IS NULL", -1, &st,
                           NULL) != SQLITE_OK)
        return;
    sqlite3_bind_int64(st, 1, now_ms());
    sqlite3_bind_text(st, 2, a->accepted ? "" : a->error, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, a->job_id, -1, SQLITE_STATIC);
    sqlite3_step(st);
    int changed = sqlite3_changes(s->db);
    sqlite3_finalize(st);
    if (changed && !a->accepted) {
        log_warn("broker refused job %s: %s", a->job_id, a->error);
        status_job_set(s->redis, a->job_id, SK_JOB, "state failed error %s finished_ms %lld", a->error,
                       (long long)now_ms());
    } else if (changed) {
        log_info("job %s handed to the broker", a->job_id);
    }
}

void job_id_new(char *out, size_t outlen)
{
    int64_t ms = now_ms();
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char ts[32];
    strftime(ts, sizeof(ts), "%Y%m%dT%H%M%SZ", &tm);
    unsigned r = (unsigned)random() & 0xffffff;
    snprintf(out, outlen, "run-%s-%06x", ts, r);
}
