/* schedule_db: schedules, their slots and runs as rows of control.db
 * (statements in controldb.c): read, write, delete a schedule; what the
 * timing step and the display ask of its slots and runs. */
#ifndef SCHEDULE_DB_H
#define SCHEDULE_DB_H

#include <stdint.h>

#include "controldb.h"
#include "schedule.h"

/* A schedule row (CDB_SCHED_COLS) into sc (cleared first). 0 / -1 (no
 * memory, options that do not decode); sched_free it either way. */
int sched_from_row(sqlite3_stmt *st, sched *sc);
/* By name (id < 0) or by id. 1 found, 0 not, -1 error (controldb_errmsg). */
int sched_get(controldb *db, const char *name, int64_t id, sched *sc);
/* Insert sc (insert: its id is then controldb_last_rowid) or update the
 * row of sc->id. 0 / -1 (controldb_errmsg, controldb_errcode say why). */
int sched_write(controldb *db, const sched *sc, int insert);
/* Delete a schedule with its slots and runs, in one transaction. 0 / -1. */
int sched_delete(controldb *db, int64_t id);

/* The instant of the last slot claimed (INT64_MIN: none). */
int64_t sched_last_claimed_at(controldb *db, int64_t sched_id);
/* Whether the slot of local_date is claimed (fired, missed or refused). */
int sched_date_claimed(controldb *db, int64_t sched_id, const char *local_date);
/* Record a job of a schedule (INSERT OR IGNORE). 0 / -1. */
int sched_run_put(controldb *db, const char *job_id, int64_t sched_id, const char *local_date, int64_t at, int mode,
                  const char *requested_by, int dry_run);

#endif
