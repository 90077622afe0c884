/* store_int: what the store's own files share (store.c, store_patrons.c,
 * store_refdata.c, store_undo.c, store_hashes.c) — the handle, its
 * statement table and the step helpers. Not for other modules: they ask
 * the store through store.h and store_hashes.h. */
#ifndef STORE_INT_H
#define STORE_INT_H

#include <sqlite3.h>

#include "store.h"
#include "util.h"

/* The store's statement table: every statement any store function runs,
 * prepared on first use (the eager ones when the store is opened) and
 * finalized with the handle. Statements on every patron field are built
 * from lib/patron.c's field table (store.c, stmt_build). */
enum store_stmt {
    ST_FIND_DISTRICT_ID, /* the patron by District ID / barcode / id (store_find, store_get) */
    ST_FIND_BARCODE,
    ST_FIND_ID,
    ST_TAKEN_DISTRICT_ID, /* another patron holds the value (store_value_taken) */
    ST_TAKEN_BARCODE,
    ST_MARKER_GET,
    ST_INSERT, /* first writing statement: read-only stores refuse it and those after */
    ST_UPDATE,
    ST_UPDATE_KEYS_SAME, /* an update that leaves the columns the indexes read (store_update) */
    ST_DELETE,
    ST_MARKER_PUT,
    ST_REF_FIND,                    /* + kind (3 statements) */
    ST_REF_ADD = ST_REF_FIND + 3,   /* + kind */
    ST_REF_NAMES = ST_REF_ADD + 3,  /* + kind */
    ST_REF_DEFAULT = ST_REF_NAMES + 3,
    ST_REF_SET_DEFAULT,
    ST_SITE_LEVEL,
    ST_SITES,
    ST_SITE_NUMBER,
    ST_SITE_UPSERT,
    ST_HOMEROOM_FIND,
    ST_HOMEROOM_ADD,
    ST_HOMEROOMS,
    ST_USERNAME_TAKEN,
    ST_ASSOC_HAS,
    ST_ASSOC_ADD,
    ST_ASSOC_DEL,
    ST_ASSOC_LIST,
    ST_MEMO_FIND,
    ST_MEMO_SCAN,
    ST_REF_GEN,
    ST_MEMO_SET,
    ST_PATRONS_ANY,
    ST_EXTRA_GET,
    ST_SET_MISSING,
    ST_RESTORE_UPDATE,
    ST_RESTORE_INSERT,
    ST_CHANGE_PUT,
    ST_CHANGE_DROP,
    ST_CHANGES_OF_JOB,
    ST_MISSING_IDS,
    ST_HASHES_CLEAR,
    ST_HASH_RUN_CLEAR,
    ST_HASH_PUT,
    ST_HASH_RUN_PUT,
    ST_HASH_RUN_FIRED,
    ST_HASH_RUN_JOB,
    ST_HASHES_OF,
    ST_HASH_TABLE,
    ST__COUNT
};

struct store {
    sqlite3 *db;
    int readonly;
    sqlite3_stmt *st[ST__COUNT];
    /* store_memo_find's walk of the patrons in id order (ST_MEMO_SCAN),
     * inside one read transaction only (nothing written in it): scan_on
     * 1, it stands on row scan_id, the first row whose id is scan_lo or
     * more; 2, there is no such row; 0, put down. */
    int scan_on;
    int64_t scan_lo, scan_id;
};

/* Statement `which` from the table, prepared on first use, reset and its
 * bindings cleared. NULL with err (a writing statement on a read-only
 * store, or SQLite refused it). */
sqlite3_stmt *store_stmt(store *s, enum store_stmt which, char *err, size_t errlen);
/* Step a statement that returns no row, then reset it: 0 / -1 with err
 * ("store: <what>: <SQLite's message>"). */
int store_step_done(store *s, sqlite3_stmt *st, const char *what, char *err, size_t errlen);
/* Step a statement that returns at most one row: 1 row (not reset: the
 * caller reads it, then resets), 0 none, -1 error (reset). */
int store_step_row(store *s, sqlite3_stmt *st, const char *what, char *err, size_t errlen);
/* Run statement which (it returns no row) with its parameters bound as
 * spec says — 't' a string (const char *; NULL binds NULL), 'i' an
 * int64_t, 'b' a blob (const void *, size_t; NULL binds NULL) — then reset
 * it. 0 / -1 with err ("store: <what>: ..."). */
int store_run(store *s, int which, const char *what, char *err, size_t errlen, const char *spec, ...);
/* The same for a question: whether statement which returns a row. 1 / 0 /
 * -1 with err. */
int store_ask(store *s, int which, const char *what, char *err, size_t errlen, const char *spec, ...);
/* Bind every patron field of rec to parameters 1 .. PF__COUNT. */
void store_bind_fields(sqlite3_stmt *st, const patron_rec *rec);
/* The text of column col ("" for NULL) into out. */
void store_col_copy(sqlite3_stmt *st, int col, char *out, size_t outlen);
/* Put store_memo_find's walk down (store_patrons.c; here because store.c
 * ends transactions too): it holds the
 * transaction's snapshot, which must end with every statement that may
 * end the transaction. */
void store_scan_stop(store *s);
/* Whether an index of patrons reads field f. */
int store_field_indexed(int f);
/* The patrons' key indexes (store.c: dropped and built again by a bulk load). */
extern const char *const store_patron_key_indexes;

#endif
