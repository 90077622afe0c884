/* schedule_db: schedules, slots and runs in control.db. */
#include "schedule_db.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

int sched_from_row(sqlite3_stmt *st, sched *sc)
{
    memset(sc, 0, sizeof(*sc));
    sc->id = sqlite3_column_int64(st, CDB_SCHED_ID);
    str_copy(sc->uid, sizeof(sc->uid), controldb_text(st, CDB_SCHED_UID));
    static const int cols[5] = {CDB_SCHED_NAME, CDB_SCHED_FILE, CDB_SCHED_ENCODING, CDB_SCHED_PROFILE_NAME,
                                CDB_SCHED_PROFILE_TEXT};
    char **dst[5] = {&sc->name, &sc->file, &sc->encoding, &sc->profile_name, &sc->profile_text};
    for (int i = 0; i < 5; i++) {
        const char *v = controldb_text(st, cols[i]);
        if (sched_set_str(dst[i], v, strlen(v)) < 0)
            return -1;
    }
    str_copy(sc->days, sizeof(sc->days), controldb_text(st, CDB_SCHED_DAYS));
    sc->minute = sqlite3_column_int(st, CDB_SCHED_MINUTE);
    sc->disabled = sqlite3_column_int(st, CDB_SCHED_DISABLED);
    if (sched_opts_from_blob(&sc->o, sqlite3_column_blob(st, CDB_SCHED_OPTIONS),
                             (size_t)sqlite3_column_bytes(st, CDB_SCHED_OPTIONS)) < 0)
        return -1;
    str_copy(sc->created_by, sizeof(sc->created_by), controldb_text(st, CDB_SCHED_CREATED_BY));
    sc->created_ms = sqlite3_column_int64(st, CDB_SCHED_CREATED_MS);
    str_copy(sc->updated_by, sizeof(sc->updated_by), controldb_text(st, CDB_SCHED_UPDATED_BY));
    sc->updated_ms = sqlite3_column_int64(st, CDB_SCHED_UPDATED_MS);
    sc->baseline = sqlite3_column_int64(st, CDB_SCHED_BASELINE);
    return 0;
}

int sched_get(controldb *db, const char *name, int64_t id, sched *sc)
{
    sqlite3_stmt *st = controldb_stmt(db, id < 0 ? CDB_SCHED_BY_NAME : CDB_SCHED_BY_ID, NULL, 0);
    if (st == NULL)
        return -1;
    if (id < 0)
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    int found = 0;
    if (rc == SQLITE_ROW)
        found = sched_from_row(st, sc) == 0 ? 1 : -1;
    else if (rc != SQLITE_DONE)
        found = -1;
    controldb_done(st);
    return found;
}

int sched_write(controldb *db, const sched *sc, int insert)
{
    size_t olen;
    uint8_t *ob = sched_opts_to_blob(&sc->o, &olen);
    if (ob == NULL)
        return -1;
    sqlite3_stmt *st = controldb_stmt(db, insert ? CDB_SCHED_INSERT : CDB_SCHED_UPDATE, NULL, 0);
    int rc = -1;
    if (st != NULL) {
        sqlite3_bind_text(st, 1, sc->uid, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, sc->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, sc->file, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, sc->encoding, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, sc->profile_name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, sc->profile_text, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 7, sc->days, 7, SQLITE_STATIC);
        sqlite3_bind_int(st, 8, sc->minute);
        sqlite3_bind_int(st, 9, sc->disabled);
        sqlite3_bind_blob(st, 10, ob, (int)olen, SQLITE_STATIC);
        sqlite3_bind_text(st, 11, sc->created_by, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 12, sc->created_ms);
        sqlite3_bind_text(st, 13, sc->updated_by, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 14, sc->updated_ms);
        sqlite3_bind_int64(st, 15, sc->baseline);
        if (!insert)
            sqlite3_bind_int64(st, 16, sc->id);
        rc = controldb_run(db, st, NULL, 0);
    }
    free(ob);
    return rc;
}

int sched_delete(controldb *db, int64_t id)
{
    /* Its slots and runs go with it; a job already queued or running keeps
     * going (the request in the outbox carries everything it needs). */
    static const enum controldb_sql steps[3] = {CDB_SLOT_DELETE, CDB_RUN_DELETE, CDB_SCHED_DELETE};
    int ok = controldb_begin(db, NULL, 0) == 0;
    for (int i = 0; ok && i < 3; i++) {
        sqlite3_stmt *st = controldb_stmt(db, steps[i], NULL, 0);
        ok = st != NULL;
        if (ok) {
            sqlite3_bind_int64(st, 1, id);
            ok = controldb_run(db, st, NULL, 0) == 0;
        }
    }
    if (!ok || controldb_commit(db, NULL, 0) < 0)
        return -1;
    return 0;
}

int64_t sched_last_claimed_at(controldb *db, int64_t sched_id)
{
    int64_t at = INT64_MIN;
    sqlite3_stmt *st = controldb_stmt(db, CDB_SLOT_LAST_AT, NULL, 0);
    if (st == NULL)
        return at;
    sqlite3_bind_int64(st, 1, sched_id);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        at = sqlite3_column_int64(st, 0);
    controldb_done(st);
    return at;
}

int sched_date_claimed(controldb *db, int64_t sched_id, const char *local_date)
{
    sqlite3_stmt *st = controldb_stmt(db, CDB_SLOT_CLAIMED, NULL, 0);
    if (st == NULL)
        return 0;
    sqlite3_bind_int64(st, 1, sched_id);
    sqlite3_bind_text(st, 2, local_date, -1, SQLITE_STATIC);
    int found = sqlite3_step(st) == SQLITE_ROW;
    controldb_done(st);
    return found;
}

int sched_run_put(controldb *db, const char *job_id, int64_t sched_id, const char *local_date, int64_t at, int mode,
                  const char *requested_by, int dry_run)
{
    sqlite3_stmt *st = controldb_stmt(db, CDB_RUN_PUT, NULL, 0);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, sched_id);
    sqlite3_bind_text(st, 3, local_date, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, at);
    sqlite3_bind_int(st, 5, mode);
    sqlite3_bind_text(st, 6, requested_by, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 7, dry_run);
    return controldb_run(db, st, NULL, 0);
}
