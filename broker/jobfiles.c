/* jobfiles: a job's work folder, DATA/work/<job>/ — request.pb, what
 * prepare decided (prepared.pb), a held job's record (held), the done
 * marker — and what is cleared away once a job has ended (jobfiles.h). */
#include "jobfiles.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "input.h"
#include "log.h"
#include "util.h"
#include "wire.h"

int jobfiles_write_pb(const char *path, const ProtobufCMessage *msg, char *err, size_t errlen)
{
    size_t n;
    uint8_t *buf = wire_pack(msg, &n, err, errlen);
    if (buf == NULL)
        return -1;
    int rc = file_write_atomic(path, buf, n, err, errlen);
    free(buf);
    return rc;
}

/* What the workers staged for a job (plans, what shards saw, a held job's
 * finishing list): not needed once the job is finished for good. */
static void stage_remove(const ps_config *cfg, const char *id)
{
    char dir[CONFIG_STR + 160];
    snprintf(dir, sizeof(dir), "%s/%s", cfg->stage_dir, id);
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' && (e->d_name[1] == '\0' || (e->d_name[1] == '.' && e->d_name[2] == '\0')))
            continue;
        char path[CONFIG_STR + 420];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

/* Save what prepare decided, so a restarted broker uses the same shards. */
int jobfiles_save_prepared(job *j, char *err, size_t errlen)
{
    Patronsync__PreparedJob pj = PATRONSYNC__PREPARED_JOB__INIT;
    Patronsync__PreparedShard *ps = calloc(j->shards.n ? j->shards.n : 1, sizeof(*ps));
    Patronsync__PreparedShard **pp = calloc(j->shards.n ? j->shards.n : 1, sizeof(*pp));
    if (ps == NULL || pp == NULL) {
        free(ps);
        free(pp);
        err_set(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < j->shards.n; i++) {
        patronsync__prepared_shard__init(&ps[i]);
        ps[i].off = j->shards.v[i].off;
        ps[i].len = j->shards.v[i].len;
        ps[i].first_line = j->shards.v[i].first_line;
        ps[i].last_line = j->shards.v[i].last_line;
        ps[i].nrec = j->shards.v[i].nrec;
        pp[i] = &ps[i];
    }
    pj.n_shards = j->shards.n;
    pj.shards = pp;
    pj.n_notes = j->nrecord_notes;
    pj.notes = j->record_notes;
    pj.records = j->records;
    pj.n_job_notes = j->summary_notes.n;
    pj.job_notes = j->summary_notes.v;
    char path[CONFIG_STR + 200];
    snprintf(path, sizeof(path), "%s/prepared.pb", j->workdir);
    int rc = jobfiles_write_pb(path, &pj.base, err, errlen);
    free(ps);
    free(pp);
    return rc;
}

/* 1 when a saved preparation was loaded, 0 when there is none, -1 error. */
int jobfiles_load_prepared(job *j, char *err, size_t errlen)
{
    char path[CONFIG_STR + 200];
    snprintf(path, sizeof(path), "%s/prepared.pb", j->workdir);
    if (access(path, F_OK) != 0)
        return 0;
    size_t n;
    char *data = file_read_all(path, (size_t)1 << 32, &n, err, errlen);
    if (data == NULL)
        return -1;
    Patronsync__PreparedJob *pj = patronsync__prepared_job__unpack(NULL, n, (const uint8_t *)data);
    free(data);
    if (pj == NULL) {
        err_set(err, errlen, "%s does not decode", path);
        return -1;
    }
    j->fd = open(j->utf8_path, O_RDONLY | O_CLOEXEC);
    int rc = -1;
    if (j->fd < 0) {
        err_set(err, errlen, "cannot open %s: %s", j->utf8_path, strerror(errno));
        goto out;
    }
    j->record_notes = calloc(pj->n_notes ? pj->n_notes : 1, sizeof(*j->record_notes));
    if (j->record_notes == NULL) {
        err_set(err, errlen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < pj->n_shards; i++) {
        const Patronsync__PreparedShard *p = pj->shards[i];
        if (shard_list_add(&j->shards, p->off, p->off + p->len, p->first_line, p->last_line, p->nrec) < 0) {
            err_set(err, errlen, "out of memory");
            goto out;
        }
    }
    for (size_t i = 0; i < pj->n_notes; i++) {
        Patronsync__RecordNote *x = malloc(sizeof(*x));
        if (x == NULL)
            goto out;
        *x = *pj->notes[i];
        x->key = strdup(pj->notes[i]->key);
        x->message = strdup(pj->notes[i]->message);
        j->record_notes[j->nrecord_notes++] = x;
    }
    for (size_t i = 0; i < pj->n_job_notes; i++)
        if (jobnotes_add(&j->summary_notes, pj->job_notes[i]) < 0)
            goto out;
    j->records = pj->records;
    rc = 1;
out:
    patronsync__prepared_job__free_unpacked(pj, NULL);
    return rc;
}

void jobfiles_write_held(job *j)
{
    Patronsync__HeldJob h = PATRONSYNC__HELD_JOB__INIT;
    uint32_t *fs = calloc(j->shards.n ? j->shards.n : 1, sizeof(uint32_t));
    uint32_t *fa = calloc(j->shards.n ? j->shards.n : 1, sizeof(uint32_t));
    char **fe = calloc(j->shards.n ? j->shards.n : 1, sizeof(char *));
    char err[ERRLEN] = "out of memory";
    int rc = -1;
    if (fs && fa && fe) {
        size_t n = 0;
        for (size_t i = 0; i < j->shards.n; i++) {
            if (j->shards.v[i].state != SH_FAILED)
                continue;
            fs[n] = (uint32_t)i;
            fa[n] = j->shards.v[i].attempt;
            fe[n] = j->shards.v[i].error;
            n++;
        }
        h.reason = j->held_reason;
        h.held_ms = now_ms();
        h.n_failed_shards = h.n_failed_attempts = h.n_failed_errors = n;
        h.failed_shards = fs;
        h.failed_attempts = fa;
        h.failed_errors = fe;
        char path[CONFIG_STR + 200];
        snprintf(path, sizeof(path), "%s/held", j->workdir);
        rc = jobfiles_write_pb(path, &h.base, err, sizeof(err));
    }
    free(fs);
    free(fa);
    free(fe);
    if (rc < 0)
        log_error("job %s: keeping it held failed (%s); it will be planned again after a restart", j->id, err);
    else
        log_info("job %s held for approval: %s", j->id, j->held_reason);
}

/* What a job that ended (finished, or discarded while held) leaves
 * behind is removed, its done marker written already: its UTF-8 copy, its
 * staged plans and, for a run-now, its input — patronctl's copy in
 * import/adhoc/, made for this job alone, which has served (the archive
 * keeps the bytes under its own name, pruned by archive_keep); until the
 * end a restart reads it again. A scheduled file is the exporter's and
 * never removed. req: the job's request (NULL: not known). */
void jobfiles_leave(const ps_config *cfg, const char *id, const char *workdir, const Patronsync__JobRequest *req)
{
    char path[PATH_MAX], err[ERRLEN];
    snprintf(path, sizeof(path), "%s/" JOB_WORK_UTF8, workdir);
    unlink(path);
    stage_remove(cfg, id);
    if (req == NULL || !input_is_run_now(req))
        return;
    if (input_resolve(cfg->import_root, req->file, path, sizeof(path), err, sizeof(err)) < 0)
        return;
    if (unlink(path) < 0 && errno != ENOENT)
        log_warn("job %s: cannot remove its run-now copy %s: %s", id, path, strerror(errno));
}

void jobfiles_finish(const ps_config *cfg, job *j)
{
    char path[CONFIG_STR + 200];
    snprintf(path, sizeof(path), "%s/done", j->workdir);
    char err[ERRLEN];
    if (file_write_atomic(path, j->final_state, strlen(j->final_state), err, sizeof(err)) < 0)
        log_warn("job %s: %s", j->id, err);
    jobfiles_leave(cfg, j->id, j->workdir, j->req);
}

char *jobfiles_read(const char *dir, const char *name, size_t *len, char *err, size_t errlen)
{
    char path[CONFIG_STR + 400];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return file_read_all(path, (size_t)1 << 26, len, err, errlen);
}


Patronsync__JobRequest *jobfiles_read_request(const char *dir, char *err, size_t errlen)
{
    size_t n;
    char *data = jobfiles_read(dir, "request.pb", &n, err, errlen);
    if (data == NULL)
        return NULL;
    Patronsync__JobRequest *req = patronsync__job_request__unpack(NULL, n, (const uint8_t *)data);
    free(data);
    if (req == NULL)
        err_set(err, errlen, "%s/request.pb does not decode", dir);
    return req;
}
