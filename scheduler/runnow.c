/* runnow: the "run" verb — a job now, from a file and a profile. */
#include "runnow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "exitcodes.h"
#include "outbox.h"
#include "profile.h"
#include "safety.h"
#include "schedule_timing.h"
#include "slots.h"

int runnow_options(scheduler *s, const Patronsync__ControlRequest *rq, Patronsync__JobOptions *o, int64_t *fired_at_ms,
                   char *local_date, size_t datelen, char *err, size_t errlen)
{
    for (size_t i = 0; i < rq->n_opts; i++) {
        const char *k = rq->opts[i]->key;
        if (safety_is_option(k) && safety_option_set(o, k, rq->opts[i]->value, err, errlen) < 0)
            return -1;
    }
    if (safety_validate(o, err, errlen) < 0)
        return -1;
    /* The scheduler's clock (tests move it): the job's day for missing
     * patrons is the district's calendar day at that instant. */
    int64_t now = now_ms();
    *fired_at_ms = now + (schedules_clock(s->cfg) - now / 1000) * 1000;
    int off = 0;
    if (slots_utc_offset(s->cfg->timezone, *fired_at_ms / 1000, &off, NULL, 0) < 0)
        off = 0;
    safety_date_of(*fired_at_ms / 1000 + off, local_date, datelen);
    return 0;
}

void runnow_job_id(char *out, size_t outlen)
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

/* The profile sent along, checked before any job exists (no job runs with
 * a bad one): its text (the caller frees it), or NULL with the refusal. */
static char *checked_profile(const Patronsync__ControlRequest *rq, const char *pname, Patronsync__ControlReply *rep,
                             strbuf *body)
{
    char err[ERRLEN];
    char *ptext = malloc(rq->payload.len + 1);
    if (ptext == NULL) {
        reply_fail(rep, body, PS_EXIT_FAILED, "out of memory");
        return NULL;
    }
    memcpy(ptext, rq->payload.data, rq->payload.len);
    ptext[rq->payload.len] = '\0';
    profile *p = profile_parse(ptext, rq->payload.len, pname ? pname : "profile", err, sizeof(err));
    if (p == NULL) {
        free(ptext);
        reply_fail(rep, body, PS_EXIT_USAGE, "profile refused: %s", err);
        return NULL;
    }
    profile_destroy(&p);
    return ptext;
}

void runnow_verb(scheduler *s, const char *user, const Patronsync__ControlRequest *rq, Patronsync__ControlReply *rep,
                 strbuf *body)
{
    if (rq->n_args != 1) {
        reply_fail(rep, body, PS_EXIT_USAGE, "run: expected the file name (relative to the import root)");
        return;
    }
    const char *pname = reply_opt(rq, "profile_name");
    char err[ERRLEN];
    char *ptext = checked_profile(rq, pname, rep, body);
    if (ptext == NULL)
        return;
    Patronsync__JobOptions o;
    safety_options_init(&o);
    int64_t fired_at_ms;
    char local_date[16];
    if (runnow_options(s, rq, &o, &fired_at_ms, local_date, sizeof(local_date), err, sizeof(err)) < 0) {
        safety_option_lists_free(&o);
        free(ptext);
        reply_fail(rep, body, PS_EXIT_USAGE, "%s", err);
        return;
    }
    /* allow_delete_outstanding is a safety option: runnow_options set it. */
    o.dry_run = reply_flag(rq, "dry_run");
    int64_t n;
    const char *v = reply_opt(rq, "shard_size");
    if (v && parse_i64(v, 1, 10000000, &n) == 0)
        o.shard_size = (uint32_t)n;
    char id[128];
    runnow_job_id(id, sizeof(id));
    Patronsync__JobRequest req = PATRONSYNC__JOB_REQUEST__INIT;
    req.job_id = id;
    req.file = rq->args[0];
    req.profile_name = (char *)(pname ? pname : "profile");
    req.profile_text = ptext;
    v = reply_opt(rq, "encoding");
    req.encoding = (char *)(v ? v : "");
    req.requested_by = (char *)user;
    req.fired_at_ms = fired_at_ms;
    req.local_date = local_date;
    req.options = &o;
    int rc = outbox_add(s, &req, err, sizeof(err));
    safety_option_lists_free(&o);
    free(ptext);
    if (rc < 0) {
        reply_fail(rep, body, PS_EXIT_FAILED, "%s", err);
        return;
    }
    controldb_audit(s->db, &(controldb_audit_row){.user = user, .verb = "run", .detail = id});
    reply_job_id(body, rq->json, id);
}
