/* store: the SQLite patron store (patrons, sites, patron types, access
 * levels, homerooms, the per-job markers and before-images). The one owner
 * of store.db: its schema, migrations and every statement on it are in
 * lib/store*.c (store.c: schema, opening, the statement table;
 * store_patrons.c, store_refdata.c, store_undo.c; record hashes in
 * store_hashes.h); no other module sees a SQLite handle. How to change the
 * schema: docs/STORE.md. Functions that can fail return 0 / -1 (or 1 / 0
 * / -1 for a question) with one line in the caller's error buffer. */
#ifndef STORE_H
#define STORE_H

#include <stddef.h>
#include <stdint.h>

#include "patron.h"

typedef struct store store;

enum { STORE_READONLY = 1 };

/* Open (and create the schema when writable). cache_mb sizes the page
 * cache. NULL with err. */
store *store_open(const char *path, int cache_mb, int flags, char *err, size_t errlen);
void store_close(store **s);

/* Transactions. 0 / -1 with err. */
int store_begin(store *s, int immediate, char *err, size_t errlen);
/* Whether the patrons table is empty (in the caller's transaction). 1 / 0 /
 * -1 with err. */
int store_patrons_empty(store *s, char *err, size_t errlen);

/* A bulk load: when the patrons table is empty, drop its District ID and
 * barcode indexes (inside the caller's transaction) for store_bulk_end to
 * build again from the rows, which is far cheaper than keeping them up to
 * date row by row. Until then nothing may look patrons up by those: the
 * caller keeps the uniqueness of District IDs and barcodes itself.
 * 1 dropped, 0 the table holds patrons (nothing done), -1 error. */
int store_bulk_begin(store *s, char *err, size_t errlen);
/* Build the indexes again; fails if the rows break a unique index. 0 / -1. */
int store_bulk_end(store *s, char *err, size_t errlen);
int store_commit(store *s, char *err, size_t errlen);
void store_rollback(store *s);
int store_exec(store *s, const char *sql, char *err, size_t errlen);
/* Whether the last statement that failed was refused by a constraint (a
 * unique index: store_insert, store_update, store_restore). */
int store_refused(const store *s);
/* SQLite's message for the last failure, for the two functions that take
 * no error buffer yet (store_value_taken, store_marker_get: callers in the
 * broker and the scheduler). Owned by the store, valid until its next call. */
const char *store_errmsg(const store *s);
/* For tests: how often the store's statements whose SQL holds `has` (and
 * not `lacks`, when given) have run. */
int store_statement_runs(store *s, const char *has, const char *lacks);

/* A stored patron. */
typedef struct {
    int64_t id;
    int64_t checkouts;
    int64_t fines_cents;
    uint64_t hash; /* patron_hash of its fields */
} store_patron_meta;

/* Find a patron by District ID (by = PF_DISTRICT_ID) or barcode
 * (PF_BARCODE). Fills rec with every field as PV_VALUE. 1 found, 0 not
 * found, -1 error. */
int store_find(store *s, int by, const char *key, patron_rec *rec, store_patron_meta *meta, char *err,
               size_t errlen);
/* A patron by id (every field as PV_VALUE). 1 found, 0 not, -1 error. */
int store_get(store *s, int64_t id, patron_rec *rec, store_patron_meta *meta, char *err, size_t errlen);
/* Only whether a patron other than `self_id` holds this barcode or District
 * ID (field): 1 / 0 / -1 (store_errmsg). */
int store_value_taken(store *s, int field, const char *value, int64_t self_id);

/* Insert every field of rec (missing ones as ''), keeping
 * store_memo_of(memo, its row hash) (memo 0: none). Sets *id. 0 / -1. */
int store_insert(store *s, const patron_rec *rec, const char *job, uint64_t memo, int64_t *id, char *err,
                 size_t errlen);
/* Overwrite every field of patron id, and its memo (as store_insert).
 * before: the row as it is now (NULL: not known); when rec agrees with it
 * in every column an index reads (District ID, barcode, site, user name),
 * those columns are not set, and SQLite leaves the indexes alone. 0 / -1. */
int store_update(store *s, int64_t id, const patron_rec *rec, const patron_rec *before, const char *job,
                 uint64_t memo, char *err, size_t errlen);

/* The unchanged-record memo (docs/RULES.md): a patron written from a
 * record that the rules took without a line keeps store_memo_of(the
 * record's memo, its row hash). A later record with the same memo, for a
 * patron whose row is still the one written, would be planned unchanged
 * without a line again: the plan says so without reading the whole row. */
typedef struct {
    int64_t id;
    uint64_t row_hash, memo;
    char site[256];
} store_memo;
/* The patron holding a District ID, as much as the memo check needs.
 * near: where to look first (0: nowhere) — the id after the previous
 * record's patron: a file in the order it was loaded finds nearly every
 * patron on the first row from near on, without descending the District
 * ID index. Inside a read transaction (nothing written in it), that row is
 * read by a walk of the patrons in id order, each row once while near
 * follows them; outside one, near is not used. The same answer either way.
 * 1 / 0 / -1. */
int store_memo_find(store *s, const char *district_id, int64_t near, store_memo *m, char *err, size_t errlen);
/* Set patron id's memo, if its row hash is still row_hash. 0 / -1. */
int store_memo_set(store *s, int64_t id, uint64_t row_hash, uint64_t memo, char *err, size_t errlen);
/* The stored memo for a record memo and a row hash (0 when record_memo is 0). */
uint64_t store_memo_of(uint64_t record_memo, uint64_t row_hash);
/* The generation of the reference data the rules read (bumped by triggers
 * on every change but the names a job creates for its records). 0 / -1. */
int store_ref_gen(store *s, uint64_t *gen, char *err, size_t errlen);
int store_delete(store *s, int64_t id, char *err, size_t errlen);

/* Hash of a record's field values (the unchanged test and before-image checks). */
uint64_t patron_hash(const patron_rec *rec);

/* Sites. */
typedef struct {
    char short_name[16];
    char name[128];
    int media;
    char default_access_level[32];
    char school_number[32]; /* the SIS's code for the site ("" none) */
} store_site;
/* All sites, sorted by short name; *out is the caller's to free. 0 / -1. */
int store_sites(store *s, store_site **out, size_t *n, char *err, size_t errlen);
int store_site_upsert(store *s, const char *short_name, const char *name, int media, char *err, size_t errlen);
/* A site's school number (site import's school_number column). 0 / -1. */
int store_site_set_number(store *s, const char *short_name, const char *number, char *err, size_t errlen);

/* Per-job done-markers: the packed result of a finished step. */
/* 1 found (blob is the caller's to free), 0 not, -1 error (store_errmsg). */
int store_marker_get(store *s, const char *job, const char *step, uint8_t **blob, size_t *len);
int store_marker_put(store *s, const char *job, const char *step, const uint8_t *blob, size_t len,
                     char *err, size_t errlen);

/* ---- Reference data and site associations used by the patron rules
 * (docs/RULES.md). Names are compared without regard to ASCII case; the
 * spelling first stored is the canonical one. ---- */
enum store_ref { STORE_REF_PATRON_TYPE, STORE_REF_ACCESS_LEVEL, STORE_REF_RESOURCE_GROUP };

/* Every name of one kind, sorted by strcmp; *out (n strings) is the
 * caller's to free with store_names_free. 0 / -1 with err. */
int store_ref_names(store *s, enum store_ref kind, char ***out, size_t *n, char *err, size_t errlen);
void store_names_free(char **v, size_t n);
/* The stored spelling of name (compared without regard to ASCII case) into
 * canon: 1 found, 0 not, -1 with err. */
int store_ref_canonical(store *s, enum store_ref kind, const char *name, char *canon, size_t canonlen, char *err,
                        size_t errlen);
/* Add a name (job may be NULL). 1 added, 0 it existed (in any case), -1 error. */
int store_ref_add(store *s, enum store_ref kind, const char *name, const char *job, char *err, size_t errlen);
/* The district's default patron type or resource group into out ("" when
 * none is set). 0 / -1 with err. Access levels have a default per site. */
int store_ref_default(store *s, enum store_ref kind, char *out, size_t outlen, char *err, size_t errlen);
/* Set that default (the name is added to its list too). 0 / -1 with err. */
int store_ref_set_default(store *s, enum store_ref kind, const char *name, char *err, size_t errlen);
/* A site's default access level ("" clears it). 0, -1 with err (also when
 * the site does not exist). */
int store_site_set_access_level(store *s, const char *short_name, const char *level, char *err, size_t errlen);

/* A homeroom of a site: 1 created, 0 it existed (in any case), -1 error. */
int store_homeroom_add(store *s, const char *site, const char *name, const char *job, char *err, size_t errlen);
/* Create it, for a caller that knows it does not exist in any case. 0 / -1. */
int store_homeroom_insert(store *s, const char *site, const char *name, const char *job, char *err, size_t errlen);
/* Call fn for every homeroom (fn's -1 stops it: out of memory). 0 / -1. */
int store_homerooms_each(store *s, int (*fn)(void *arg, const char *site, const char *name), void *arg, char *err,
                         size_t errlen);

/* Whether a patron other than self_id holds this user name (ASCII case
 * ignored): 1 / 0 / -1 with err. */
int store_username_taken(store *s, const char *username, int64_t self_id, char *err, size_t errlen);

/* Secondary site associations of a patron (patron_sites; removed with the
 * patron). has: 1 / 0 / -1; add: 1 added, 0 existed, -1 error; remove: 0 / -1
 * (each with err). */
int store_assoc_has(store *s, int64_t patron_id, const char *site, char *err, size_t errlen);
int store_assoc_add(store *s, int64_t patron_id, const char *site, const char *job, char *err, size_t errlen);
int store_assoc_remove(store *s, int64_t patron_id, const char *site, char *err, size_t errlen);
/* The sites a patron is associated with, sorted; *out is the caller's to
 * free with store_names_free. 0 / -1 with err. */
int store_assoc_list(store *s, int64_t patron_id, char ***out, size_t *n, char *err, size_t errlen);

/* ---- The rest of a patron's row, for before-images and undo
 * (docs/SAFETY.md). Empty strings stand for NULL. ---- */
typedef struct {
    int64_t checkouts;
    int64_t fines_cents;
    char missing_since[16]; /* YYYY-MM-DD the patron was first missing from a file; "" when not */
    char created_job[128];
    char updated_job[128];
} store_patron_extra;

/* 1 found (x filled), 0 not, -1 error. */
int store_extra_get(store *s, int64_t id, store_patron_extra *x, char *err, size_t errlen);
/* Set (since "" clears) the day a patron went missing, and the job that
 * last changed it. 0 / -1. */
int store_set_missing(store *s, int64_t id, const char *since, const char *job, char *err, size_t errlen);
/* Put a before-image back: every field of rec, missing_since and
 * updated_job (checkouts and fines are circulation's and stay); insert
 * re-creates a deleted patron under its old id with every extra. 0 / -1
 * (a uniqueness clash: store_refused). */
int store_restore(store *s, int64_t id, const patron_rec *rec, const store_patron_extra *x, int insert, char *err,
                  size_t errlen);
/* One row of job_changes: what job changed (op, lib/safety.h) on a patron,
 * with its before-image (NULL for an add). 0 / -1. */
int store_change_put(store *s, const char *job, int64_t seq, int64_t patron_id, int op, const uint8_t *before,
                     size_t len, char *err, size_t errlen);
/* Forget row seq of job's changes (a change the store then refused). 0 / -1. */
int store_change_drop(store *s, const char *job, int64_t seq, char *err, size_t errlen);
/* Call fn for each of job's changes, newest first: the patron, the op and
 * the before-image as stored (before NULL: none). fn returns 0, or -1
 * with err to stop the walk. 0 / -1 with err. */
int store_changes_each(store *s, const char *job,
                       int (*fn)(void *arg, int64_t patron_id, int op, const uint8_t *before, size_t len, char *err,
                                 size_t errlen),
                       void *arg, char *err, size_t errlen);

/* ---- What the finishing step reads (worker/missing.c) ---- */

/* Call fn with the id of every patron marked missing (fn's -1 stops it:
 * out of memory). 0 / -1 with err. */
int store_missing_each(store *s, int (*fn)(void *arg, int64_t id), void *arg, char *err, size_t errlen);
/* A job's scope: patrons at one of the sites and, when types are given, of
 * one of those patron types (ASCII case ignored). */
typedef struct {
    char *const *sites;
    size_t nsites;
    char *const *types;
    size_t ntypes;
} store_scope;
/* The number of patrons in scope (0 when it names no site). 0 / -1 with err. */
int store_scope_count(store *s, const store_scope *sc, uint64_t *n, char *err, size_t errlen);
/* Call fn with the id of every patron in scope; *rows counts them. 0 / -1
 * with err. */
int store_scope_each(store *s, const store_scope *sc, int (*fn)(void *arg, int64_t id), void *arg, uint64_t *rows,
                     char *err, size_t errlen);

#endif
