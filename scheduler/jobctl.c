/* jobctl: the operator's verbs on finished and held jobs — approve and
 * discard a held job (passed to the broker, which keeps held jobs), undo a
 * job from its before-images. docs/SAFETY.md. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "curve.h"
#include "exitcodes.h"
#include "log.h"
#include "rules.h"
#include "safety.h"
#include "jobctl.h"
#include "reply.h"
#include "stage.h"
#include "store.h"
#include "summary.h"
#include "wire.h"

static void utc_time(int64_t ms, char *out, size_t outlen)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(out, outlen, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        str_copy(out, outlen, "?");
}

/* ---- approve / discard: the broker keeps held jobs ---- */

static int ask_broker(scheduler *s, const char *id, const char *action, const char *user, char *state, size_t statelen,
                      char *err, size_t errlen)
{
    char ep[CONFIG_STR];
    if (config_endpoint(s->cfg, "jobs", s->cfg->jobs_endpoint, ep, sizeof(ep), err, errlen) < 0)
        return -1;
    void *sock = wire_socket(s->zctx, ZMQ_DEALER, s->cfg->max_message_bytes, err, errlen);
    if (sock == NULL)
        return -1;
    int rc = -1;
    if (curve_connect_as(sock, s->cfg, "scheduler", "broker", err, errlen) < 0 || wire_connect(sock, ep, err, errlen) < 0)
        goto out;
    Patronsync__JobDecision d = PATRONSYNC__JOB_DECISION__INIT;
    d.job_id = (char *)id;
    d.action = (char *)action;
    d.user = (char *)user;
    Patronsync__BrokerRequest br = PATRONSYNC__BROKER_REQUEST__INIT;
    br.body_case = PATRONSYNC__BROKER_REQUEST__BODY_DECISION;
    br.decision = &d;
    int64_t until = mono_ms() + 10000;
    while (wire_send(sock, NULL, &br.base, err, errlen) < 0) {
        if (mono_ms() > until) {
            err_set(err, errlen, "the broker at %s does not answer; nothing was decided", ep);
            goto out;
        }
        usleep(20 * 1000);
    }
    for (;;) {
        long left = (long)(until - mono_ms());
        if (left <= 0) {
            err_set(err, errlen, "no answer from the broker at %s within 10 s; see 'patronctl job show %s'", ep, id);
            goto out;
        }
        zmq_msg_t body;
        if (wire_recv_wait(sock, NULL, &body, left) != 1)
            continue;
        Patronsync__BrokerReply *r = patronsync__broker_reply__unpack(NULL, zmq_msg_size(&body), zmq_msg_data(&body));
        zmq_msg_close(&body);
        if (r == NULL)
            continue;
        int mine = r->body_case == PATRONSYNC__BROKER_REPLY__BODY_DECISION && strcmp(r->decision->job_id, id) == 0;
        if (mine) {
            str_copy(state, statelen, r->decision->state);
            if (r->decision->ok)
                rc = 0;
            else
                err_set(err, errlen, "%s", r->decision->error);
        }
        patronsync__broker_reply__free_unpacked(r, NULL);
        if (mine)
            break;
    }
out:
    zmq_close(sock);
    return rc;
}

/* A job's state in Redis (into state). 0, or -1 when Redis does not say. */
static int redis_state(scheduler *s, const char *id, char *state, size_t statelen)
{
    if (s->redis == NULL)
        return -1;
    return status_job_state(s->redis, id, state, statelen) == 1 ? 0 : -1;
}

static void verb_decide(scheduler *s, const char *user, const Patronsync__ControlRequest *rq, const char *action,
                        Patronsync__ControlReply *rep, strbuf *body)
{
    if (rq->n_args != 1) {
        reply_fail(rep, body, PS_EXIT_USAGE, "job %s: expected the job id", action);
        return;
    }
    const char *id = rq->args[0];
    char state[64] = "", err[ERRLEN];
    if (ask_broker(s, id, action, user, state, sizeof(state), err, sizeof(err)) < 0) {
        /* The broker's word on an ended job may lack its state (its work
         * folder's end marker holds none, or is gone): Redis has it. */
        char ended[64] = "";
        if (state[0] == '\0' && redis_state(s, id, ended, sizeof(ended)) == 0 && summary_state_final(ended) &&
            strcmp(ended, "held") != 0) {
            reply_fail(rep, body, PS_EXIT_FAILED, "job %s is not held: it ended %s", id, ended);
            return;
        }
        reply_fail(rep, body, strncmp(err, "no job", 6) == 0 ? PS_EXIT_NOT_FOUND : PS_EXIT_FAILED, "%s", err);
        return;
    }
    if (rq->json) {
        sb_puts(body, "{\"job_id\":");
        sb_json_str(body, id, strlen(id));
        sb_puts(body, ",\"state\":");
        sb_json_str(body, state, strlen(state));
        sb_puts(body, "}\n");
    } else if (strcmp(action, "approve") == 0) {
        sb_printf(body, "job %s approved by %s: applying it as previewed\n", id, user);
    } else {
        sb_printf(body, "job %s discarded by %s: nothing was changed\n", id, user);
    }
}

/* ---- undo ---- */

/* A set of patron ids (open addressing; ids are rowids, never 0). */
typedef struct {
    uint64_t *v;
    size_t cap, n;
} idset;

static size_t id_home(uint64_t id)
{
    return (size_t)(id * 0x9E3779B97F4A7C15ULL);
}

static int idset_add(idset *s, int64_t id)
{
    if ((s->n + 1) * 2 > s->cap && hashtab_grow(&s->v, &s->cap, 1024, id_home) < 0)
        return -1;
    size_t h = id_home((uint64_t)id) & (s->cap - 1);
    while (s->v[h] != 0) {
        if (s->v[h] == (uint64_t)id)
            return 0;
        h = (h + 1) & (s->cap - 1);
    }
    s->v[h] = (uint64_t)id;
    s->n++;
    return 1;
}

typedef struct {
    store *st;
    const char *job;
    int force;
    idset seen;
    strbuf conflicts;
    size_t nconflicts;
    strbuf failures;
    size_t nfailures;
    uint64_t removed, restored, reactivated, recreated, marks, assoc;
    patron_rec rec, img;
    int in_txn; /* the store transaction is open */
} undoer;

#define LIST_CAP 1000 /* lines listed; the rest counted */

static void list_line(strbuf *sb, size_t *n, const char *did, const char *name, const char *what)
{
    if (*n < LIST_CAP)
        sb_printf(sb, "  %s%s%s%s: %s\n", did, *name ? " (" : "", name, *name ? ")" : "", what);
    (*n)++;
}

/* A before-image's record (empty when it does not decode). */
static void img_of(const Patronsync__Change *c, patron_rec *rec)
{
    if (stage_change_rec(c, rec) < 0)
        patron_rec_reset(rec);
}

/* Pass 1: the patrons a later job changed. The job's last change of each
 * patron comes first (rows in reverse), so it is the one compared. */
static int check_one(undoer *u, int64_t id, int op, const Patronsync__Change *c, char *err, size_t errlen)
{
    int first = idset_add(&u->seen, id);
    if (first < 0) {
        err_set(err, errlen, "out of memory");
        return -1;
    }
    if (first == 0)
        return 0;
    store_patron_meta meta;
    store_patron_extra x;
    memset(&x, 0, sizeof(x));
    int found = store_get(u->st, id, &u->rec, &meta, err, errlen);
    if (found < 0)
        return -1;
    if (found && store_extra_get(u->st, id, &x, err, errlen) < 0)
        return -1;
    char name[200] = "", what[300] = "";
    const char *did = "";
    if (c != NULL && stage_change_has_rec(c)) {
        img_of(c, &u->img);
        rules_display_name(&u->img, name, sizeof(name));
        did = patron_rec_get(&u->img, PF_DISTRICT_ID);
    } else if (found) {
        rules_display_name(&u->rec, name, sizeof(name));
        did = patron_rec_get(&u->rec, PF_DISTRICT_ID);
    }
    char idtext[32];
    if (*did == '\0') {
        snprintf(idtext, sizeof(idtext), "patron #%lld", (long long)id);
        did = idtext;
    }
    if (op == SAFETY_OP_DELETE || op == SAFETY_OP_DELETE_MISSING) {
        if (found)
            snprintf(what, sizeof(what), "its record exists again (changed by job %s)", x.updated_job[0] ? x.updated_job : "?");
        else if (c != NULL && stage_change_has_rec(c) && *patron_rec_get(&u->img, PF_DISTRICT_ID) &&
                 store_value_taken(u->st, PF_DISTRICT_ID, patron_rec_get(&u->img, PF_DISTRICT_ID), id) == 1)
            snprintf(what, sizeof(what), "deleted by this job; its District ID now belongs to another patron");
        else if (c != NULL && stage_change_has_rec(c) && *patron_rec_get(&u->img, PF_BARCODE) &&
                 store_value_taken(u->st, PF_BARCODE, patron_rec_get(&u->img, PF_BARCODE), id) == 1)
            snprintf(what, sizeof(what), "deleted by this job; its barcode now belongs to another patron");
    } else if (!found) {
        snprintf(what, sizeof(what), "deleted since, by a later job");
    } else if (op != SAFETY_OP_ASSOC && strcmp(x.updated_job, u->job) != 0) {
        snprintf(what, sizeof(what), "changed since by job %s", x.updated_job[0] ? x.updated_job : "(not a job)");
    }
    if (what[0])
        list_line(&u->conflicts, &u->nconflicts, did, name, what);
    return 0;
}

/* The patron's site associations set back to the image's. */
static int restore_assoc(undoer *u, int64_t id, const Patronsync__Change *c, char *err, size_t errlen)
{
    char **now = NULL;
    size_t n = 0;
    if (store_assoc_list(u->st, id, &now, &n, err, errlen) < 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        int keep = 0;
        for (size_t k = 0; k < c->n_assoc_sites && !keep; k++)
            keep = strcmp(now[i], c->assoc_sites[k]) == 0;
        if (!keep)
            rc = store_assoc_remove(u->st, id, now[i], err, errlen);
    }
    for (size_t k = 0; k < c->n_assoc_sites && rc == 0; k++)
        rc = store_assoc_add(u->st, id, c->assoc_sites[k], c->updated_job, err, errlen) < 0 ? -1 : 0;
    store_names_free(now, n);
    return rc;
}

/* Pass 2: put one change back (rows in reverse: the earliest image of a
 * patron is the last written). A uniqueness clash (forced undo) is listed,
 * not fatal. */
static int restore_one(undoer *u, int64_t id, int op, const Patronsync__Change *c, char *err, size_t errlen)
{
    store_patron_meta meta;
    int found = store_get(u->st, id, &u->rec, &meta, err, errlen);
    if (found < 0)
        return -1;
    char e[ERRLEN];
    if (op == SAFETY_OP_ADD) {
        if (found && store_delete(u->st, id, err, errlen) < 0)
            return -1;
        u->removed += found;
        return 0;
    }
    if (c == NULL)
        return 0;
    if (op == SAFETY_OP_ASSOC) {
        if (found && c->assoc_site && *c->assoc_site && store_assoc_remove(u->st, id, c->assoc_site, err, errlen) < 0)
            return -1;
        u->assoc += found;
        return 0;
    }
    store_patron_extra x;
    memset(&x, 0, sizeof(x));
    x.checkouts = c->checkouts;
    x.fines_cents = c->fines_cents;
    str_copy(x.missing_since, sizeof(x.missing_since), c->missing_since);
    str_copy(x.created_job, sizeof(x.created_job), c->created_job);
    str_copy(x.updated_job, sizeof(x.updated_job), c->updated_job);
    if (op == SAFETY_OP_MARK_MISSING || op == SAFETY_OP_CLEAR_MISSING) {
        if (found && store_set_missing(u->st, id, x.missing_since, x.updated_job, err, errlen) < 0)
            return -1;
        u->marks += found;
        return 0;
    }
    if (!stage_change_has_rec(c))
        return 0;
    img_of(c, &u->img);
    if (store_restore(u->st, id, &u->img, &x, !found, e, sizeof(e)) < 0) {
        if (!store_refused(u->st)) {
            err_set(err, errlen, "%s", e);
            return -1;
        }
        char name[200];
        rules_display_name(&u->img, name, sizeof(name));
        list_line(&u->failures, &u->nfailures, patron_rec_get(&u->img, PF_DISTRICT_ID), name, e);
        return 0;
    }
    if (restore_assoc(u, id, c, err, errlen) < 0)
        return -1;
    if (!found)
        u->recreated++;
    else if (op == SAFETY_OP_INACTIVATE)
        u->reactivated++;
    else
        u->restored++;
    return 0;
}

/* One of the job's changes, through pass 1 or 2 (walk). 0 / -1. */
typedef struct {
    undoer *u;
    int pass;
} walk_step;

static int walk_one(void *arg, int64_t id, int op, const uint8_t *before, size_t len, char *err, size_t errlen)
{
    walk_step *ws = arg;
    undoer *u = ws->u;
    int pass = ws->pass;
    int rc = 0;
    Patronsync__Change *c = NULL;
    if (before != NULL) {
        c = patronsync__change__unpack(NULL, len, before);
        if (c == NULL) {
            err_set(err, errlen, "job %s: a before-image of patron %lld does not decode", u->job, (long long)id);
            return -1;
        }
    }
    if (op == SAFETY_OP_ADD_RANGE) {
        /* A bulk load's adds, ids id .. c->patron_id: each as an add. */
        for (int64_t x = c ? c->patron_id : id - 1; rc == 0 && x >= id; x--)
            rc = pass == 1 ? check_one(u, x, SAFETY_OP_ADD, NULL, err, errlen)
                           : restore_one(u, x, SAFETY_OP_ADD, NULL, err, errlen);
    } else {
        rc = pass == 1 ? check_one(u, id, op, c, err, errlen) : restore_one(u, id, op, c, err, errlen);
    }
    if (c)
        patronsync__change__free_unpacked(c, NULL);
    return rc;
}

/* Walk the job's changes, newest first, through pass 1 or 2. 0 / -1. */
static int walk(undoer *u, int pass, char *err, size_t errlen)
{
    walk_step ws = {u, pass};
    return store_changes_each(u->st, u->job, walk_one, &ws, err, errlen);
}

static void more_line(strbuf *sb, size_t n)
{
    if (n > LIST_CAP)
        sb_printf(sb, "  ... and %zu more\n", n - LIST_CAP);
}

/* Whether job id can be undone: it changed the store, and was not undone
 * already. 0, or -1 with the refusal. */
static int undo_allowed(undoer *u, const char *id, Patronsync__ControlReply *rep, strbuf *body)
{
    uint8_t *blob = NULL;
    size_t blen = 0;
    int m = store_marker_get(u->st, id, "apply", &blob, &blen);
    free(blob);
    blob = NULL;
    if (m <= 0)
        return reply_fail(rep, body, m < 0 ? PS_EXIT_FAILED : PS_EXIT_NOT_FOUND,
               "job %s changed nothing in the store (unknown, or not applied: a dry run, held, discarded or failed); nothing to undo",
               id);
    m = store_marker_get(u->st, id, "undo", &blob, &blen);
    if (m == 1) {
        char done[256];
        size_t n = blen < sizeof(done) - 1 ? blen : sizeof(done) - 1;
        memcpy(done, blob, n);
        done[n] = '\0';
        free(blob);
        return reply_fail(rep, body, PS_EXIT_FAILED, "job %s was undone already (%s)", id, done);
    }
    return 0;
}

/* Both passes inside the store transaction (u->in_txn): later changes
 * first, then the before-images put back. 0, or -1 with the refusal. */
static int undo_passes(undoer *u, const char *id, Patronsync__ControlReply *rep, strbuf *body)
{
    char err[ERRLEN];
    if (store_begin(u->st, 1, err, sizeof(err)) < 0)
        return reply_fail(rep, body, PS_EXIT_FAILED, "%s", err);
    u->in_txn = 1;
    if (walk(u, 1, err, sizeof(err)) < 0)
        return reply_fail(rep, body, PS_EXIT_FAILED, "%s", err);
    if (u->nconflicts > 0 && !u->force) {
        more_line(&u->conflicts, u->nconflicts);
        return reply_fail(rep, body, PS_EXIT_FAILED,
               "job %s not undone: %zu patron%s changed by later jobs since (undo those first, or "
               "'patronctl job undo %s --force' puts this job's before-images back anyway):\n%s",
               id, u->nconflicts, u->nconflicts == 1 ? " was" : "s were", id, sb_str(&u->conflicts));
    }
    if (walk(u, 2, err, sizeof(err)) < 0)
        return reply_fail(rep, body, PS_EXIT_FAILED, "%s", err);
    if (u->nfailures > 0 && !u->force) {
        more_line(&u->failures, u->nfailures);
        return reply_fail(rep, body, PS_EXIT_FAILED, "job %s not undone: %zu patrons could not be put back:\n%s", id,
                          u->nfailures, sb_str(&u->failures));
    }
    return 0;
}

/* The line the job's notes, the log and the reply say. */
static void undo_summary(const undoer *u, const char *user, int64_t now, char *out, size_t outlen)
{
    char when[40];
    utc_time(now, when, sizeof(when));
    snprintf(out, outlen,
             "Undone by %s at %s%s: %llu added removed, %llu updated put back, %llu inactivated put back, "
             "%llu deleted re-created, %llu missing-since marks put back, %llu site associations removed.",
             user, when, u->force && u->nconflicts ? " (forced over later changes)" : "", (unsigned long long)u->removed,
             (unsigned long long)u->restored, (unsigned long long)u->reactivated, (unsigned long long)u->recreated,
             (unsigned long long)u->marks, (unsigned long long)u->assoc);
}

static void undo_reply(undoer *u, const char *id, int json, const char *summary, strbuf *body)
{
    if (json) {
        sb_puts(body, "{\"job_id\":");
        sb_json_str(body, id, strlen(id));
        sb_printf(body, ",\"removed\":%llu,\"restored\":%llu,\"reactivated\":%llu,\"recreated\":%llu,\"marks\":%llu,"
                        "\"associations\":%llu,\"forced_over\":%zu,\"not_restored\":%zu}\n",
                  (unsigned long long)u->removed, (unsigned long long)u->restored, (unsigned long long)u->reactivated,
                  (unsigned long long)u->recreated, (unsigned long long)u->marks, (unsigned long long)u->assoc,
                  u->force ? u->nconflicts : 0, u->nfailures);
        return;
    }
    sb_printf(body, "job %s: %s\n", id, summary);
    if (u->nfailures > 0) {
        more_line(&u->failures, u->nfailures);
        sb_printf(body, "Not put back (another patron holds the District ID or barcode now):\n%s", sb_str(&u->failures));
    }
}

void jobctl_undo(scheduler *s, const char *user, const Patronsync__ControlRequest *rq, Patronsync__ControlReply *rep,
                 strbuf *body)
{
    if (rq->n_args != 1) {
        reply_fail(rep, body, PS_EXIT_USAGE, "job undo: expected the job id");
        return;
    }
    const char *id = rq->args[0];
    char err[ERRLEN];
    undoer u;
    memset(&u, 0, sizeof(u));
    u.job = id;
    u.force = reply_flag(rq, "force");
    sb_init(&u.conflicts);
    sb_init(&u.failures);
    patron_rec_init(&u.rec);
    patron_rec_init(&u.img);
    u.st = store_open(s->cfg->store_path, 64, 0, err, sizeof(err));
    if (u.st == NULL) {
        reply_fail(rep, body, PS_EXIT_FAILED, "%s", err);
        goto out;
    }
    if (undo_allowed(&u, id, rep, body) < 0 || undo_passes(&u, id, rep, body) < 0)
        goto out;
    int64_t now = now_ms();
    char summary[512];
    undo_summary(&u, user, now, summary, sizeof(summary));
    if (store_marker_put(u.st, id, "undo", (const uint8_t *)summary, strlen(summary), err, sizeof(err)) < 0 ||
        store_commit(u.st, err, sizeof(err)) < 0) {
        reply_fail(rep, body, PS_EXIT_FAILED, "%s", err);
        goto out;
    }
    u.in_txn = 0;
    status_job_set(s->redis, id, SK_JOB, "undone_by %s undone_ms %lld", user, (long long)now);
    status_job_note(s->redis, id, summary);
    status_event(s->redis, "job %s undone by %s", id, user);
    log_info("job %s: %s", id, summary);
    if (u.force && u.nconflicts > 0)
        controldb_audit(s->db, &(controldb_audit_row){.user = user, .verb = "job.undo.force", .detail = id});
    undo_reply(&u, id, rq->json, summary, body);
out:
    if (u.in_txn)
        store_rollback(u.st);
    store_close(&u.st);
    free(u.seen.v);
    sb_free(&u.conflicts);
    sb_free(&u.failures);
    patron_rec_free(&u.rec);
    patron_rec_free(&u.img);
}

void jobctl_approve(scheduler *s, const char *user, const Patronsync__ControlRequest *rq, Patronsync__ControlReply *rep,
                    strbuf *body)
{
    verb_decide(s, user, rq, "approve", rep, body);
}

void jobctl_discard(scheduler *s, const char *user, const Patronsync__ControlRequest *rq, Patronsync__ControlReply *rep,
                    strbuf *body)
{
    verb_decide(s, user, rq, "discard", rep, body);
}
