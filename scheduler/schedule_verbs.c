/* schedule_verbs: the "schedule.*" control verbs — add, edit, show, list,
 * delete, run, enable, disable (docs/SCHEDULES.md). Every check is the
 * scheduler's (schedule_parse.c), so every client is refused the same
 * things with the same words. */
#include "schedule_verbs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sodium.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"
#include "outbox.h"
#include "reply.h"
#include "safety.h"
#include "schedule_db.h"
#include "schedule_parse.h"
#include "schedule_text.h"
#include "schedule_timing.h"

/* The schedule named in args[0], or a reply saying why not. 1 / 0. */
static int named(scheduler *s, const Patronsync__ControlRequest *rq, sched *sc, Patronsync__ControlReply *rep,
                 strbuf *body)
{
    memset(sc, 0, sizeof(*sc));
    if (rq->n_args != 1) {
        reply_fail(rep, body, 2, "%s: expected the schedule's name", rq->verb);
        return 0;
    }
    int found = sched_get(s->db, rq->args[0], -1, sc);
    if (found < 0)
        reply_fail(rep, body, 1, "control store: %s", controldb_errmsg(s->db));
    else if (found == 0)
        reply_fail(rep, body, 5, "no schedule named '%s'", rq->args[0]);
    return found == 1;
}

static void new_uid(char *out, size_t outlen)
{
    unsigned char r[4];
    randombytes_buf(r, sizeof(r));
    snprintf(out, outlen, "s%02x%02x%02x%02x", r[0], r[1], r[2], r[3]);
}

/* The tail of an add or edit reply: when it runs next; whether the file is there. */
static void saved_reply(scheduler *s, const sched *sc, int64_t now, const char *what, int json, strbuf *body)
{
    sched_info in;
    sched_info_get(s, sc, now, &in);
    char path[CONFIG_STR + SCHED_FILE_MAX_BYTES + 2];
    snprintf(path, sizeof(path), "%s/%s", s->cfg->import_root, sc->file);
    struct stat sb;
    int present = stat(path, &sb) == 0;
    if (json) {
        sb_puts(body, "{");
        sched_info_json(s->cfg->timezone, sc, &in, body);
        sb_printf(body, ",\"file_present\":%s}\n", present ? "true" : "false");
        return;
    }
    char pat[160], lt[80];
    sched_pattern_text(sc, pat, sizeof(pat));
    sb_printf(body, "schedule '%s' %s: %s at %02d:%02d (%s)\n", sc->name, what, pat, sc->minute / 60, sc->minute % 60,
              s->cfg->timezone);
    if (sc->disabled) {
        sb_puts(body, "next run: Disabled\n");
    } else if (in.has_next) {
        sched_local_time(s->cfg->timezone, in.next.when, 1, lt, sizeof(lt));
        sb_printf(body, "next run: %s (%s)\n", lt, sched_mode_name((int)in.next.mode));
    }
    if (!present)
        sb_printf(body, "note: '%s' is not in the import root (%s) yet; a run fails until it is there\n", sc->file,
                  s->cfg->import_root);
}

void schedule_verb_add(scheduler *s, const char *user, const Patronsync__ControlRequest *rq, Patronsync__ControlReply *rep,
                     strbuf *body)
{
    if (rq->n_args != 1) {
        reply_fail(rep, body, 2, "schedule add: expected the schedule's name");
        return;
    }
    sched sc;
    memset(&sc, 0, sizeof(sc));
    char err[ERRLEN];
    int timing = 0;
    int64_t now = schedules_clock(s->cfg);
    memcpy(sc.days, "NNNNNNN", 8);
    sc.minute = -1;
    sched_opts_defaults(&sc.o);
    if (sched_set_str(&sc.name, rq->args[0], strlen(rq->args[0])) < 0 || sched_set_str(&sc.file, "", 0) < 0 ||
        sched_set_str(&sc.encoding, "", 0) < 0 || sched_set_str(&sc.profile_name, "", 0) < 0 || sched_set_str(&sc.profile_text, "", 0) < 0) {
        reply_fail(rep, body, 1, "out of memory");
        goto out;
    }
    if (sched_apply_opts(&sc, rq, &timing, err, sizeof(err)) < 0) {
        reply_fail(rep, body, 2, "%s", err);
        goto out;
    }
    if (rq->payload.len == 0) {
        reply_fail(rep, body, 2, "schedule add: the properties file is required (--profile FILE.properties)");
        goto out;
    }
    if (sc.minute < 0) {
        reply_fail(rep, body, 2, "schedule add: the time of day is required (--time HH:MM)");
        goto out;
    }
    if (sched_validate(&sc, err, sizeof(err)) < 0) {
        reply_fail(rep, body, 2, "%s", err);
        goto out;
    }
    str_copy(sc.created_by, sizeof(sc.created_by), user);
    str_copy(sc.updated_by, sizeof(sc.updated_by), user);
    sc.created_ms = sc.updated_ms = now * 1000;
    sc.baseline = now;
    for (int tries = 0;; tries++) {
        new_uid(sc.uid, sizeof(sc.uid));
        if (sched_write(s->db, &sc, 1) == 0)
            break;
        if (controldb_errcode(s->db) != SQLITE_CONSTRAINT_UNIQUE || tries > 5) {
            reply_fail(rep, body, 1, "control store: %s", controldb_errmsg(s->db));
            goto out;
        }
        if (strstr(controldb_errmsg(s->db), "schedules.name") != NULL) {
            reply_fail(rep, body, 2, "a schedule named '%s' already exists", sc.name);
            goto out;
        }
    }
    sc.id = controldb_last_rowid(s->db);
    log_info("schedule %s (%s) added by %s", sc.name, sc.uid, user);
    saved_reply(s, &sc, now, "added", rq->json, body);
    schedules_publish(s, now);
out:
    sched_free(&sc);
}

void schedule_verb_edit(scheduler *s, const char *user, const Patronsync__ControlRequest *rq, Patronsync__ControlReply *rep,
                      strbuf *body)
{
    sched sc;
    if (!named(s, rq, &sc, rep, body))
        goto out;
    char err[ERRLEN];
    int timing = 0, was_disabled = sc.disabled;
    int64_t now = schedules_clock(s->cfg);
    if (sched_apply_opts(&sc, rq, &timing, err, sizeof(err)) < 0 || sched_validate(&sc, err, sizeof(err)) < 0) {
        reply_fail(rep, body, 2, "%s", err);
        goto out;
    }
    /* New days or time, or back from disabled: slots count from now, so
     * an edit never makes a slot earlier today due (or missed) at once. */
    if (timing || (was_disabled && !sc.disabled))
        sc.baseline = now;
    str_copy(sc.updated_by, sizeof(sc.updated_by), user);
    sc.updated_ms = now * 1000;
    if (sched_write(s->db, &sc, 0) < 0) {
        if (controldb_errcode(s->db) == SQLITE_CONSTRAINT_UNIQUE)
            reply_fail(rep, body, 2, "a schedule named '%s' already exists", sc.name);
        else
            reply_fail(rep, body, 1, "control store: %s", controldb_errmsg(s->db));
        goto out;
    }
    log_info("schedule %s (%s) changed by %s", sc.name, sc.uid, user);
    saved_reply(s, &sc, now, "saved", rq->json, body);
    schedules_publish(s, now);
out:
    sched_free(&sc);
}

static void verb_enable(scheduler *s, const char *user, const Patronsync__ControlRequest *rq, Patronsync__ControlReply *rep,
                        strbuf *body, int enable)
{
    sched sc;
    if (!named(s, rq, &sc, rep, body))
        goto out;
    int64_t now = schedules_clock(s->cfg);
    if (enable && sc.disabled)
        sc.baseline = now; /* the slots while it was disabled are neither run nor missed */
    sc.disabled = !enable;
    str_copy(sc.updated_by, sizeof(sc.updated_by), user);
    sc.updated_ms = now * 1000;
    if (sched_write(s->db, &sc, 0) < 0) {
        reply_fail(rep, body, 1, "control store: %s", controldb_errmsg(s->db));
        goto out;
    }
    saved_reply(s, &sc, now, enable ? "enabled" : "disabled", rq->json, body);
    schedules_publish(s, now);
out:
    sched_free(&sc);
}

void schedule_verb_delete(scheduler *s, const char *user, const Patronsync__ControlRequest *rq, Patronsync__ControlReply *rep,
                        strbuf *body)
{
    sched sc;
    if (!named(s, rq, &sc, rep, body))
        goto out;
    if (sched_delete(s->db, sc.id) < 0) {
        reply_fail(rep, body, 1, "control store: %s", controldb_errmsg(s->db));
        controldb_rollback(s->db);
        goto out;
    }
    log_info("schedule %s (%s) deleted by %s", sc.name, sc.uid, user);
    if (rq->json) {
        sb_puts(body, "{\"deleted\":");
        sb_json_str(body, sc.name, strlen(sc.name));
        sb_puts(body, "}\n");
    } else {
        sb_printf(body, "schedule '%s' deleted\n", sc.name);
    }
    schedules_publish(s, schedules_clock(s->cfg));
out:
    sched_free(&sc);
}

void schedule_verb_run(scheduler *s, const char *user, const Patronsync__ControlRequest *rq, Patronsync__ControlReply *rep,
                     strbuf *body)
{
    sched sc;
    if (!named(s, rq, &sc, rep, body))
        goto out;
    const char *m = reply_opt(rq, "mode");
    const char *d = reply_opt(rq, "dry_run");
    int mode = SLOT_FULL, dry = 0;
    if (m && strcasecmp(m, "incremental") == 0)
        mode = SLOT_INCREMENTAL;
    else if (m && strcasecmp(m, "full") != 0) {
        reply_fail(rep, body, 2, "schedule run: mode '%s' is not full or incremental", m);
        goto out;
    }
    if (d && sched_truthy(d, &dry) < 0) {
        reply_fail(rep, body, 2, "schedule run: dry_run '%s' is not yes or no", d);
        goto out;
    }
    int64_t now = schedules_clock(s->cfg);
    time_t t = (time_t)now;
    struct tm tm;
    gmtime_r(&t, &tm);
    char ts[32], job_id[96], err[ERRLEN];
    strftime(ts, sizeof(ts), "%Y%m%dT%H%M%SZ", &tm);
    unsigned char r[3];
    randombytes_buf(r, sizeof(r));
    snprintf(job_id, sizeof(job_id), "%s-run-%s-%02x%02x%02x", sc.uid, ts, r[0], r[1], r[2]);
    uint8_t *buf = NULL;
    size_t len = 0;
    char today[16] = "";
    int off = 0;
    if (slots_utc_offset(s->cfg->timezone, now, &off, NULL, 0) == 0)
        safety_date_of(now + off, today, sizeof(today));
    if (sched_request_pack(&sc, job_id, mode, dry, user, now * 1000, today, &buf, &len, err, sizeof(err)) < 0) {
        free(buf);
        reply_fail(rep, body, 2, "schedule %s: %s", sc.name, err);
        goto out;
    }
    int ok = controldb_begin(s->db, NULL, 0) == 0 && controldb_outbox_put(s->db, job_id, buf, len, NULL, 0) == 0 &&
             sched_run_put(s->db, job_id, sc.id, "", now, mode, user, dry) == 0 && controldb_commit(s->db, NULL, 0) == 0;
    free(buf);
    if (!ok) {
        reply_fail(rep, body, 1, "control store: recording job %s: %s", job_id, controldb_errmsg(s->db));
        controldb_rollback(s->db);
        goto out;
    }
    log_info("schedule %s: run now (%s%s) by %s as job %s", sc.name, sched_mode_name(mode), dry ? ", dry run" : "", user, job_id);
    sched_mark_pending(s, &sc, job_id, mode, dry, user, now * 1000);
    if (s->broker_sock != NULL)
        outbox_step(s);
    sched_prune_jobs(s, &sc);
    reply_job_id(body, rq->json, job_id);
    schedules_publish(s, now);
out:
    sched_free(&sc);
}

/* One schedule shown: its row, what it did, and its recent runs (runs:
 * CDB_RUN_RECENT) and slots not run (missed: CDB_SLOT_NOT_FIRED). */
typedef struct {
    scheduler *s;
    const sched *sc;
    sched_info in;
    const char *tz;
    sqlite3_stmt *runs, *missed;
    strbuf *body;
} show_view;

/* A recent run's state: "deleted" once pruned, else Redis's. */
static void run_state(const show_view *v, char *state, size_t statelen)
{
    if (sqlite3_column_int(v->runs, 6))
        str_copy(state, statelen, "deleted");
    else
        sched_job_state(v->s, controldb_text(v->runs, 0), state, statelen);
}

static void show_json_runs(show_view *v)
{
    strbuf *body = v->body;
    char lt[80], state[40];
    sb_puts(body, ",\"runs\":[");
    for (int i = 0; v->runs && sqlite3_step(v->runs) == SQLITE_ROW; i++) {
        run_state(v, state, sizeof(state));
        sched_local_iso(v->tz, sqlite3_column_int64(v->runs, 2), lt, sizeof(lt));
        sb_puts(body, i ? ",{" : "{");
        sched_json_kv(body, "job_id", controldb_text(v->runs, 0), 0);
        sched_json_kv(body, "local_date", controldb_text(v->runs, 1), 1);
        sb_printf(body, ",\"at_ms\":%lld", (long long)sqlite3_column_int64(v->runs, 2) * 1000);
        sched_json_kv(body, "local", lt, 1);
        sched_json_kv(body, "mode", sched_mode_name(sqlite3_column_int(v->runs, 3)), 1);
        sched_json_kv(body, "requested_by", controldb_text(v->runs, 4), 1);
        sb_printf(body, ",\"dry_run\":%s", sqlite3_column_int(v->runs, 5) ? "true" : "false");
        sched_json_kv(body, "state", state, 1);
        sb_puts(body, "}");
    }
    sb_puts(body, "]");
}

static void show_json_missed(show_view *v)
{
    strbuf *body = v->body;
    char lt[80];
    sb_puts(body, ",\"missed_slots\":[");
    for (int i = 0; v->missed && sqlite3_step(v->missed) == SQLITE_ROW; i++) {
        sched_local_iso(v->tz, sqlite3_column_int64(v->missed, 1), lt, sizeof(lt));
        sb_puts(body, i ? ",{" : "{");
        sched_json_kv(body, "local_date", controldb_text(v->missed, 0), 0);
        sb_printf(body, ",\"at_ms\":%lld", (long long)sqlite3_column_int64(v->missed, 1) * 1000);
        sched_json_kv(body, "local", lt, 1);
        sched_json_kv(body, "mode", sched_mode_name(sqlite3_column_int(v->missed, 2)), 1);
        sched_json_kv(body, "state", controldb_text(v->missed, 3), 1);
        sched_json_kv(body, "note", controldb_text(v->missed, 4), 1);
        sb_puts(body, "}");
    }
    sb_puts(body, "]");
}

static void show_json(show_view *v)
{
    const sched *sc = v->sc;
    strbuf *body = v->body;
    sb_puts(body, "{");
    sched_info_json(v->tz, sc, &v->in, body);
    sched_json_kv(body, "encoding", sc->encoding, 1);
    sched_json_kv(body, "profile_name", sc->profile_name, 1);
    sched_json_kv(body, "timezone", v->tz, 1);
    sched_json_kv(body, "updated_by", sc->updated_by, 1);
    sb_printf(body, ",\"created_ms\":%lld,\"updated_ms\":%lld", (long long)sc->created_ms, (long long)sc->updated_ms);
    sched_opts_json(&sc->o, body);
    show_json_runs(v);
    show_json_missed(v);
    sb_puts(body, "}\n");
}

static void show_text_head(show_view *v)
{
    const sched *sc = v->sc;
    const sched_info *in = &v->in;
    strbuf *body = v->body;
    char pat[160], lt[80], t1[40], t2[40];
    sched_pattern_text(sc, pat, sizeof(pat));
    sb_printf(body, "Schedule:         %s (id %s)\n", sc->name, sc->uid);
    sb_printf(body, "File:             %s\n", sc->file);
    sb_printf(body, "Encoding:         %s\n", sc->encoding[0] ? sc->encoding : "from the properties file");
    sb_printf(body, "Properties file:  %s\n", sc->profile_name);
    sb_printf(body, "Days:             %s\n", pat);
    sb_printf(body, "Time:             %02d:%02d (%s)\n", sc->minute / 60, sc->minute % 60, v->tz);
    if (sc->disabled) {
        sb_puts(body, "Next run:         Disabled\n");
    } else if (in->has_next) {
        sched_local_time(v->tz, in->next.when, 1, lt, sizeof(lt));
        sb_printf(body, "Next run:         %s (%s)\n", lt, sched_mode_name((int)in->next.mode));
    }
    if (in->has_last)
        sb_printf(body, "Last run:         %s (%s)\n", in->last_job, in->last_state);
    else
        sb_puts(body, "Last run:         never\n");
    sb_printf(body, "Missed slots:     %lld%s%s%s\n", (long long)in->missed, in->missed ? " (latest " : "",
              in->missed ? in->missed_latest : "", in->missed ? ")" : "");
    sched_utc_ms_text(sc->created_ms, t1, sizeof(t1));
    sched_utc_ms_text(sc->updated_ms, t2, sizeof(t2));
    sb_printf(body, "Created by:       %s at %s; last changed by %s at %s\n", sc->created_by, t1, sc->updated_by, t2);
    sb_puts(body, "Options:\n");
    sched_opts_text(&sc->o, body);
}

static void show_text_rows(show_view *v)
{
    strbuf *body = v->body;
    char lt[80], state[40];
    int header = 0;
    while (v->runs && sqlite3_step(v->runs) == SQLITE_ROW) {
        if (!header++)
            sb_printf(body, "Recent runs:\n  %-23s %-11s %-40s %s\n", "WHEN", "MODE", "JOB", "STATE");
        run_state(v, state, sizeof(state));
        sched_local_time(v->tz, sqlite3_column_int64(v->runs, 2), 1, lt, sizeof(lt));
        sb_printf(body, "  %-23s %-11s %-40s %s%s\n", lt, sched_mode_name(sqlite3_column_int(v->runs, 3)),
                  controldb_text(v->runs, 0), state, sqlite3_column_int(v->runs, 5) ? " (dry run)" : "");
    }
    header = 0;
    while (v->missed && sqlite3_step(v->missed) == SQLITE_ROW) {
        if (!header++)
            sb_puts(body, "Slots not run:\n");
        sched_local_time(v->tz, sqlite3_column_int64(v->missed, 1), 1, lt, sizeof(lt));
        sb_printf(body, "  %-23s %-11s %-8s %s\n", lt, sched_mode_name(sqlite3_column_int(v->missed, 2)),
                  controldb_text(v->missed, 3), controldb_text(v->missed, 4));
    }
}

static void verb_show(scheduler *s, const Patronsync__ControlRequest *rq, Patronsync__ControlReply *rep, strbuf *body)
{
    sched sc;
    if (!named(s, rq, &sc, rep, body))
        goto out;
    if (reply_flag(rq, "properties")) {
        sb_puts(body, sc.profile_text);
        goto out;
    }
    show_view v = {.s = s, .sc = &sc, .tz = s->cfg->timezone, .body = body};
    sched_info_get(s, &sc, schedules_clock(s->cfg), &v.in);
    v.runs = controldb_stmt(s->db, CDB_RUN_RECENT, NULL, 0);
    v.missed = controldb_stmt(s->db, CDB_SLOT_NOT_FIRED, NULL, 0);
    if (v.runs)
        sqlite3_bind_int64(v.runs, 1, sc.id);
    if (v.missed)
        sqlite3_bind_int64(v.missed, 1, sc.id);
    if (rq->json) {
        show_json(&v);
    } else {
        show_text_head(&v);
        show_text_rows(&v);
    }
    controldb_done(v.runs);
    controldb_done(v.missed);
out:
    sched_free(&sc);
}

typedef struct {
    scheduler *s;
    int json, i;
    strbuf *body;
} listing;

/* One row of schedule list. */
static int list_one(void *ctx, const sched *sc, const sched_info *in)
{
    listing *l = ctx;
    strbuf *body = l->body;
    if (l->json) {
        sb_puts(body, l->i++ ? ",{" : "{");
        sched_info_json(l->s->cfg->timezone, sc, in, body);
        sb_puts(body, "}");
        return 0;
    }
    char last[200] = "never", next[120] = "Disabled", lt[80];
    if (in->has_last)
        snprintf(last, sizeof(last), "%s %s", in->last_state, in->last_job);
    if (!sc->disabled && in->has_next) {
        sched_local_time(l->s->cfg->timezone, in->next.when, 0, lt, sizeof(lt));
        snprintf(next, sizeof(next), "%s %s", lt, sched_mode_name((int)in->next.mode));
    } else if (!sc->disabled) {
        str_copy(next, sizeof(next), "-");
    }
    sb_printf(body, "%-24s %-12s %-44s %-30s %lld\n", sc->name, sc->created_by, last, next, (long long)in->missed);
    return 0;
}

static void verb_list(scheduler *s, const Patronsync__ControlRequest *rq, Patronsync__ControlReply *rep, strbuf *body)
{
    listing l = {s, rq->json, 0, body};
    if (rq->json)
        sb_puts(body, "[");
    else
        sb_printf(body, "%-24s %-12s %-44s %-30s %s\n", "NAME", "CREATED BY", "LAST RUN", "NEXT RUN", "MISSED");
    /* A refusal replaces what was written. */
    if (sched_each(s, schedules_clock(s->cfg), list_one, &l) < 0) {
        reply_fail(rep, body, 1, "control store: %s", controldb_errmsg(s->db));
        return;
    }
    if (rq->json)
        sb_puts(body, "]\n");
}

/* ---- the handlers of control.c's table ---- */

/* What operators are shown is never behind the clock: a slot due now is
 * claimed before the answer, not on the next step. */
void schedule_verb_show(scheduler *s, const char *user, const Patronsync__ControlRequest *rq,
                        Patronsync__ControlReply *rep, strbuf *body)
{
    schedules_tick(s, schedules_clock(s->cfg), NULL);
    verb_show(s, rq, rep, body);
}

void schedule_verb_list(scheduler *s, const char *user, const Patronsync__ControlRequest *rq,
                        Patronsync__ControlReply *rep, strbuf *body)
{
    schedules_tick(s, schedules_clock(s->cfg), NULL);
    verb_list(s, rq, rep, body);
}

void schedule_verb_enable(scheduler *s, const char *user, const Patronsync__ControlRequest *rq,
                          Patronsync__ControlReply *rep, strbuf *body)
{
    verb_enable(s, user, rq, rep, body, 1);
}

void schedule_verb_disable(scheduler *s, const char *user, const Patronsync__ControlRequest *rq,
                           Patronsync__ControlReply *rep, strbuf *body)
{
    verb_enable(s, user, rq, rep, body, 0);
}
