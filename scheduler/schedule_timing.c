/* schedule_timing: the timing step, a schedule's jobs, what it shows of
 * its runs. docs/SCHEDULES.md. */
#include "schedule_timing.h"

#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "schedule_db.h"
#include "summary.h"
#include "wire.h"

int64_t schedules_clock(const ps_config *cfg)
{
    int64_t t = now_ms() / 1000;
    if (cfg->test_clock_file[0] != '\0') {
        size_t len;
        char *text = file_read_all(cfg->test_clock_file, 64, &len, NULL, 0);
        if (text != NULL) {
            char *p = text;
            while (*p == ' ' || *p == '\t')
                p++;
            char *e = p + strlen(p);
            while (e > p && isspace((unsigned char)e[-1]))
                *--e = '\0';
            int64_t v;
            if (parse_i64(p, 0, INT64_MAX / 2, &v) == 0)
                t = v;
            free(text);
        }
    }
    return t + cfg->test_clock_offset;
}

/* Who claimed a slot, for the record: host:pid. */
static const char *instance_name(void)
{
    static char name[160];
    static pid_t pid;
    if (pid != getpid()) {
        pid = getpid();
        char host[128] = "";
        if (gethostname(host, sizeof(host) - 1) != 0)
            str_copy(host, sizeof(host), "host");
        snprintf(name, sizeof(name), "%s:%d", host, (int)getpid());
    }
    return name;
}

/* ---- the jobs of a schedule ---- */

/* The job id of a slot: the schedule's uid and the slot's local date. */
static void slot_job_id(const sched *sc, const char *local_date, char *out, size_t outlen)
{
    char d[9];
    size_t k = 0;
    for (const char *p = local_date; *p && k < 8; p++)
        if (*p != '-')
            d[k++] = *p;
    d[k] = '\0';
    snprintf(out, outlen, "%s-%s", sc->uid, d);
}

int sched_request_pack(const sched *sc, const char *job_id, int mode, int dry_run, const char *requested_by,
                       int64_t fired_ms, const char *local_date, uint8_t **buf, size_t *len, char *err,
                       size_t errlen)
{
    char e[ERRLEN];
    if (sched_profile_check(sc, e, sizeof(e)) < 0) {
        err_set(err, errlen, "properties file refused, not run: %s", e);
        return -1;
    }
    Patronsync__JobOptions jo;
    sched_opts_to_job(&sc->o, &jo);
    jo.incremental = mode == SLOT_INCREMENTAL;
    jo.dry_run = dry_run != 0;
    jo.schedule_id = (char *)sc->uid;
    /* Only a schedule that runs Incremental needs the records' hashes kept. */
    jo.keep_hashes = jo.incremental || strchr(sc->days, 'I') != NULL;
    Patronsync__JobRequest req = PATRONSYNC__JOB_REQUEST__INIT;
    req.job_id = (char *)job_id;
    req.file = sc->file;
    req.profile_name = sc->profile_name;
    req.profile_text = sc->profile_text;
    req.encoding = sc->encoding;
    req.schedule = sc->name;
    req.requested_by = (char *)requested_by;
    req.fired_at_ms = fired_ms;
    /* The district's calendar day: "today" for missing patrons. */
    req.local_date = (char *)local_date;
    req.options = &jo;
    *buf = wire_pack(&req.base, len, err, errlen);
    return *buf != NULL ? 0 : -1;
}

/* HSETNX: a broker that already took
 * the job (another scheduler sent it) keeps its state. */
void sched_mark_pending(scheduler *s, const sched *sc, const char *job_id, int mode, int dry_run, const char *by,
                        int64_t fired_ms)
{
    if (s->redis == NULL)
        return;
    status_job_setnx(s->redis, job_id, "state", "pending");
    status_job_set(s->redis, job_id, SK_JOB, "created_ms %lld file %s profile %s schedule %s requested_by %s dry_run %d mode %s",
                   (long long)now_ms(), sc->file, sc->profile_name, sc->name, by, dry_run, sched_mode_name(mode));
    status_job_index(s->redis, job_id, (long long)fired_ms);
}

static void mark_refused(scheduler *s, const sched *sc, const char *job_id, const char *why, int64_t fired_ms)
{
    if (s->redis == NULL)
        return;
    status_job_set(s->redis, job_id, SK_JOB,
                   "state failed error %s file %s profile %s schedule %s requested_by scheduler finished_ms %lld", why,
                   sc->file, sc->profile_name, sc->name, (long long)now_ms());
    status_job_index(s->redis, job_id, (long long)fired_ms);
    status_event(s->redis, "schedule %s: job %s not run: %s", sc->name, job_id, why);
}

/* Keep N previous jobs: the newest job and the N before it stay; older
 * finished ones leave Redis (their work folders stay with the broker, so
 * their ids are never run again). Unfinished and held jobs stay. */
void sched_prune_jobs(scheduler *s, const sched *sc)
{
    if (sc->o.keep_jobs <= 0 || s->redis == NULL)
        return;
    sqlite3_stmt *st = controldb_stmt(s->db, CDB_RUN_UNPRUNED, NULL, 0);
    if (st == NULL)
        return;
    sqlite3_bind_int64(st, 1, sc->id);
    char (*old)[128] = NULL;
    size_t n = 0, cap = 0, row = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (row++ <= (size_t)sc->o.keep_jobs)
            continue;
        if (array_grow(&old, &cap, n + 1, sizeof(*old), 16) < 0)
            break;
        str_copy(old[n++], sizeof(old[0]), controldb_text(st, 0));
    }
    controldb_done(st);
    for (size_t i = 0; i < n; i++) {
        char state[64];
        int found = status_job_state(s->redis, old[i], state, sizeof(state));
        if (found < 0)
            break;
        /* A held job waits for an operator: never deleted. */
        int final = !found || (summary_state_final(state) && strcmp(state, "held") != 0);
        if (!final || status_job_forget(s->redis, old[i]) < 0)
            continue;
        sqlite3_stmt *up = controldb_stmt(s->db, CDB_RUN_PRUNED, NULL, 0);
        if (up != NULL) {
            sqlite3_bind_text(up, 1, old[i], -1, SQLITE_STATIC);
            controldb_run(s->db, up, NULL, 0);
        }
        log_info("schedule %s: job %s deleted (keeping %d previous jobs)", sc->name, old[i], sc->o.keep_jobs);
    }
    free(old);
}

/* ---- the timing step ---- */

#define DUE_MAX 100000      /* slots examined in one step: 270 years of a daily schedule */
#define ON_TIME_MIN_S 60    /* a running scheduler's own lateness is never "missed" */

static int64_t grace_seconds(const ps_config *cfg)
{
    int64_t g = cfg->grace_minutes * 60;
    return g < ON_TIME_MIN_S ? ON_TIME_MIN_S : g;
}

/* One schedule's step: what it found due and what it did, for the log,
 * Redis and the report once the claims are committed. */
typedef struct {
    scheduler *s;
    int64_t id, now, grace;
    schedules_tick_report *rep;
    sched sc;
    slot *due;
    size_t ndue, cap;
    char fired_job[64], refused_job[64], why[ERRLEN];
    int fired_mode, nmissed;
    int64_t fired_at;
} tick_step;

/* The slots due by t->now since the last one claimed (or the baseline). 0 / -1. */
static int find_due(tick_step *t)
{
    int64_t after = sched_last_claimed_at(t->s->db, t->id);
    if (after < t->sc.baseline)
        after = t->sc.baseline;
    slot_pattern p = sched_pattern(&t->sc);
    for (int k = 0; k < DUE_MAX; k++) {
        slot sl;
        char e[ERRLEN];
        if (slots_next(&p, t->s->cfg->timezone, after, &sl, e, sizeof(e)) < 0) {
            log_warn("schedule %s: %s", t->sc.name, e);
            break;
        }
        if (sl.when > t->now)
            break;
        if (array_grow(&t->due, &t->cap, t->ndue + 1, sizeof(*t->due), 8) < 0)
            return -1;
        t->due[t->ndue++] = sl;
        after = sl.when;
    }
    return 0;
}

/* Why a due slot is not run (note), "" when it fires. */
static void slot_note(const tick_step *t, size_t i, int fire, char *note, size_t notelen)
{
    const slot *sl = &t->due[i];
    note[0] = '\0';
    if (!fire && i + 1 < t->ndue)
        snprintf(note, notelen, "a later slot (%s) was due too; one run covers them", t->due[t->ndue - 1].local_date);
    else if (!fire)
        snprintf(note, notelen, "found %lld minutes late, past the grace window of %lld minutes",
                 (long long)((t->now - sl->when) / 60), (long long)(t->grace / 60));
}

/* The claim of one slot (ins: CDB_SLOT_CLAIM). 1 claimed, 0 claimed
 * already (another scheduler, or this day ran before an edit), -1 error. */
static int claim(tick_step *t, sqlite3_stmt *ins, const slot *sl, int fire, const char *job_id, const char *note)
{
    sqlite3_reset(ins);
    sqlite3_bind_int64(ins, 1, t->id);
    sqlite3_bind_text(ins, 2, sl->local_date, -1, SQLITE_STATIC);
    sqlite3_bind_int64(ins, 3, sl->when);
    sqlite3_bind_int(ins, 4, (int)sl->mode);
    sqlite3_bind_text(ins, 5, fire ? "fired" : "missed", -1, SQLITE_STATIC);
    if (fire)
        sqlite3_bind_text(ins, 6, job_id, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(ins, 6);
    sqlite3_bind_int64(ins, 7, now_ms());
    sqlite3_bind_text(ins, 8, instance_name(), -1, SQLITE_STATIC);
    sqlite3_bind_text(ins, 9, note, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(ins) != SQLITE_DONE)
        return -1;
    return controldb_changes(t->s->db) != 0;
}

/* A claimed slot whose properties file no longer parses: recorded as
 * refused (t->why), its job never queued. */
static void refuse(tick_step *t, const slot *sl, const char *job_id)
{
    controldb *db = t->s->db;
    sqlite3_stmt *up = controldb_stmt(db, CDB_SLOT_REFUSED, NULL, 0);
    if (up != NULL) {
        sqlite3_bind_text(up, 1, t->why, -1, SQLITE_STATIC);
        sqlite3_bind_int64(up, 2, t->id);
        sqlite3_bind_text(up, 3, sl->local_date, -1, SQLITE_STATIC);
        controldb_run(db, up, NULL, 0);
    }
    sched_run_put(db, job_id, t->id, sl->local_date, sl->when, (int)sl->mode, "scheduler", 0);
    str_copy(t->refused_job, sizeof(t->refused_job), job_id);
    t->fired_at = sl->when;
    if (t->rep)
        t->rep->refused++;
}

/* A claimed slot that runs: its request into the outbox. 0 / -1. */
static int fire(tick_step *t, const slot *sl, const char *job_id)
{
    controldb *db = t->s->db;
    uint8_t *buf = NULL;
    size_t len = 0;
    if (sched_request_pack(&t->sc, job_id, (int)sl->mode, 0, "scheduler", sl->when * 1000, sl->local_date, &buf, &len,
                           t->why, sizeof(t->why)) < 0) {
        free(buf);
        refuse(t, sl, job_id);
        return 0;
    }
    int w = controldb_outbox_put(db, job_id, buf, len, NULL, 0) < 0 ||
            sched_run_put(db, job_id, t->id, sl->local_date, sl->when, (int)sl->mode, "scheduler", 0) < 0;
    free(buf);
    if (w)
        return -1;
    str_copy(t->fired_job, sizeof(t->fired_job), job_id);
    t->fired_mode = (int)sl->mode;
    t->fired_at = sl->when;
    if (t->rep)
        t->rep->fired++;
    if (t->s->cfg->test_fault_claim == 1) {
        log_error("test fault switch: killed after claiming slot %s, before commit", sl->local_date);
        raise(SIGKILL);
    }
    return 0;
}

/* Claim every due slot: the newest runs when it is within the grace
 * window, the others are missed. 0 / -1. */
static int claim_due(tick_step *t)
{
    sqlite3_stmt *ins = controldb_stmt(t->s->db, CDB_SLOT_CLAIM, NULL, 0);
    if (ins == NULL)
        return -1;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < t->ndue; i++) {
        const slot *sl = &t->due[i];
        int fires = i + 1 == t->ndue && t->now - sl->when <= t->grace;
        char job_id[64], note[200];
        slot_job_id(&t->sc, sl->local_date, job_id, sizeof(job_id));
        slot_note(t, i, fires, note, sizeof(note));
        int claimed = claim(t, ins, sl, fires, job_id, note);
        if (claimed < 0) {
            rc = -1;
        } else if (claimed == 0) {
            if (t->rep)
                t->rep->lost++;
        } else if (!fires) {
            t->nmissed++;
            if (t->rep)
                t->rep->missed++;
            log_warn("schedule %s: slot %s %s missed (%s)", t->sc.name, sl->local_date, sched_mode_name((int)sl->mode),
                     note);
        } else {
            rc = fire(t, sl, job_id);
        }
    }
    controldb_done(ins);
    return rc;
}

/* After the commit: the log, Redis, pruning. */
static void announce(tick_step *t)
{
    scheduler *s = t->s;
    if (t->fired_job[0] && s->cfg->test_fault_claim == 2) {
        log_error("test fault switch: killed after claiming job %s, before sending it", t->fired_job);
        raise(SIGKILL);
    }
    if (t->fired_job[0]) {
        char lt[80];
        sched_local_time(s->cfg->timezone, t->fired_at, 1, lt, sizeof(lt));
        log_info("schedule %s: slot %s (%s) fired as job %s", t->sc.name, lt, sched_mode_name(t->fired_mode),
                 t->fired_job);
        sched_mark_pending(s, &t->sc, t->fired_job, t->fired_mode, 0, "scheduler", t->fired_at * 1000);
        sched_prune_jobs(s, &t->sc);
    }
    if (t->refused_job[0]) {
        log_error("schedule %s: job %s not run: %s", t->sc.name, t->refused_job, t->why);
        mark_refused(s, &t->sc, t->refused_job, t->why, t->fired_at * 1000);
    }
    if (t->nmissed && s->redis)
        status_event(s->redis, "schedule %s: %d slot(s) missed", t->sc.name, t->nmissed);
}

/* One schedule's due slots, claimed under the write lock. */
static int tick_schedule(scheduler *s, int64_t id, int64_t now, schedules_tick_report *rep)
{
    controldb *db = s->db;
    if (controldb_begin(db, NULL, 0) < 0) {
        log_warn("control store busy: %s; slots tried again on the next step", controldb_errmsg(db));
        return -1;
    }
    tick_step t;
    memset(&t, 0, sizeof(t));
    t.s = s;
    t.id = id;
    t.now = now;
    t.rep = rep;
    t.grace = grace_seconds(s->cfg);
    int found = sched_get(db, NULL, id, &t.sc);
    if (found != 1 || t.sc.disabled) {
        controldb_commit(db, NULL, 0);
        sched_free(&t.sc);
        return found < 0 ? -1 : 0;
    }
    int rc = -1;
    if (find_due(&t) == 0 && claim_due(&t) == 0 && controldb_commit(db, NULL, 0) == 0) {
        rc = 0;
        announce(&t);
    } else {
        log_warn("schedule %s: claiming slots failed: %s", t.sc.name ? t.sc.name : "?", controldb_errmsg(db));
        controldb_rollback(db);
    }
    free(t.due);
    sched_free(&t.sc);
    return rc;
}

/* Whether a schedule read by CDB_SCHED_DUE_READ has a slot due by now. */
static int has_due(scheduler *s, sqlite3_stmt *st, int64_t now)
{
    sched tmp;
    memset(&tmp, 0, sizeof(tmp));
    str_copy(tmp.days, sizeof(tmp.days), controldb_text(st, 1));
    tmp.minute = sqlite3_column_int(st, 2);
    int64_t after = sqlite3_column_int64(st, 3);
    if (sqlite3_column_type(st, 4) != SQLITE_NULL && sqlite3_column_int64(st, 4) > after)
        after = sqlite3_column_int64(st, 4);
    slot_pattern p = sched_pattern(&tmp);
    slot sl;
    return slots_next(&p, s->cfg->timezone, after, &sl, NULL, 0) == 0 && sl.when <= now;
}

int schedules_tick(scheduler *s, int64_t now, schedules_tick_report *rep)
{
    if (rep)
        memset(rep, 0, sizeof(*rep));
    /* A read first: the write lock is taken only for a schedule with a slot due. */
    sqlite3_stmt *st = controldb_stmt(s->db, CDB_SCHED_DUE_READ, NULL, 0);
    if (st == NULL)
        return -1;
    int64_t *ids = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (!has_due(s, st, now))
            continue;
        if (array_grow(&ids, &cap, n + 1, sizeof(*ids), 8) < 0) {
            rc = -1;
            break;
        }
        ids[n++] = sqlite3_column_int64(st, 0);
    }
    controldb_done(st);
    for (size_t i = 0; i < n; i++)
        if (tick_schedule(s, ids[i], now, rep) < 0)
            rc = -1;
    free(ids);
    if (n > 0)
        schedules_publish(s, now);
    return rc;
}

/* ---- what operators see ---- */

void sched_job_state(scheduler *s, const char *job, char *out, size_t outlen)
{
    str_copy(out, outlen, "unknown");
    if (s->redis == NULL)
        return;
    status_job_state(s->redis, job, out, outlen);
}

void sched_info_get(scheduler *s, const sched *sc, int64_t now, sched_info *in)
{
    memset(in, 0, sizeof(*in));
    sqlite3_stmt *st = controldb_stmt(s->db, CDB_RUN_LAST, NULL, 0);
    if (st != NULL) {
        sqlite3_bind_int64(st, 1, sc->id);
        if (sqlite3_step(st) == SQLITE_ROW) {
            in->has_last = 1;
            str_copy(in->last_job, sizeof(in->last_job), controldb_text(st, 0));
            str_copy(in->last_date, sizeof(in->last_date), controldb_text(st, 1));
            in->last_at = sqlite3_column_int64(st, 2);
            in->last_mode = sqlite3_column_int(st, 3);
            in->last_pruned = sqlite3_column_int(st, 4);
            in->last_dry = sqlite3_column_int(st, 5);
        }
    }
    controldb_done(st);
    if (in->has_last) {
        if (in->last_pruned)
            str_copy(in->last_state, sizeof(in->last_state), "deleted");
        else
            sched_job_state(s, in->last_job, in->last_state, sizeof(in->last_state));
    }
    st = controldb_stmt(s->db, CDB_SLOT_MISSED, NULL, 0);
    if (st != NULL) {
        sqlite3_bind_int64(st, 1, sc->id);
        if (sqlite3_step(st) == SQLITE_ROW) {
            in->missed = sqlite3_column_int64(st, 0);
            str_copy(in->missed_latest, sizeof(in->missed_latest), controldb_text(st, 1));
        }
    }
    controldb_done(st);
    if (sc->disabled)
        return;
    int64_t after = now;
    if (sc->baseline > after)
        after = sc->baseline;
    int64_t last = sched_last_claimed_at(s->db, sc->id);
    if (last > after)
        after = last;
    slot_pattern p = sched_pattern(sc);
    for (int k = 0; k < 16; k++) {
        if (slots_next(&p, s->cfg->timezone, after, &in->next, NULL, 0) < 0)
            return;
        if (!sched_date_claimed(s->db, sc->id, in->next.local_date)) {
            in->has_next = 1;
            return;
        }
        after = in->next.when;
    }
}


int sched_each(scheduler *s, int64_t now, sched_visit visit, void *ctx)
{
    sqlite3_stmt *st = controldb_stmt(s->db, CDB_SCHED_ALL, NULL, 0);
    if (st == NULL)
        return -1;
    while (sqlite3_step(st) == SQLITE_ROW) {
        sched sc;
        if (sched_from_row(st, &sc) < 0) {
            sched_free(&sc);
            break;
        }
        sched_info in;
        sched_info_get(s, &sc, now, &in);
        int r = visit(ctx, &sc, &in);
        sched_free(&sc);
        if (r < 0)
            break;
    }
    controldb_done(st);
    return 0;
}

typedef struct {
    scheduler *s;
    int n, failed;
} publishing;

/* One schedule into ps:schedules:next. 0, or -1 when Redis failed. */
static int publish_one(void *ctx, const sched *sc, const sched_info *in)
{
    publishing *p = ctx;
    strbuf b;
    sb_init(&b);
    sb_puts(&b, "{");
    sched_info_json(p->s->cfg->timezone, sc, in, &b);
    sb_puts(&b, "}");
    int ok = status_schedules_put(p->s->redis, sc->name, sb_str(&b)) == 0;
    sb_free(&b);
    p->n++;
    p->failed = !ok;
    return ok ? 0 : -1;
}

void schedules_publish(scheduler *s, int64_t now)
{
    if (s->redis == NULL)
        return;
    publishing p = {s, 0, 0};
    status_schedules_begin(s->redis);
    int ok = sched_each(s, now, publish_one, &p) == 0 && !p.failed;
    status_schedules_commit(s->redis, (size_t)p.n, ok);
}
