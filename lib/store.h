/* store: the SQLite patron store (patrons, sites, patron types, access
 * levels, homerooms, the per-job markers and before-images). Schema in
 * store.c; how to change it in docs/STORE.md. */
#ifndef STORE_H
#define STORE_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "patron.h"

typedef struct store store;

enum { STORE_READONLY = 1 };

/* Open (and create the schema when writable). cache_mb sizes the page
 * cache. NULL with err. */
store *store_open(const char *path, int cache_mb, int flags, char *err, size_t errlen);
void store_close(store **s);
sqlite3 *store_db(store *s);

/* Transactions. 0 / -1 with err. */
int store_begin(store *s, int immediate, char *err, size_t errlen);
int store_commit(store *s, char *err, size_t errlen);
void store_rollback(store *s);
int store_exec(store *s, const char *sql, char *err, size_t errlen);

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
/* Only whether a patron other than `self_id` holds this barcode/username: 1/0/-1. */
int store_value_taken(store *s, int field, const char *value, int64_t self_id);

/* Insert every field of rec (missing ones as ''). Sets *id. 0 / -1. */
int store_insert(store *s, const patron_rec *rec, const char *job, int64_t *id, char *err, size_t errlen);
/* Overwrite every field of patron id. 0 / -1. */
int store_update(store *s, int64_t id, const patron_rec *rec, const char *job, char *err, size_t errlen);
int store_delete(store *s, int64_t id, char *err, size_t errlen);

/* Hash of a record's field values (the unchanged test and before-image checks). */
uint64_t patron_hash(const patron_rec *rec);

/* Sites. */
typedef struct {
    char short_name[16];
    char name[128];
    int media;
    char default_access_level[32];
} store_site;
/* All sites, sorted by short name; *out is the caller's to free. 0 / -1. */
int store_sites(store *s, store_site **out, size_t *n, char *err, size_t errlen);
int store_site_upsert(store *s, const char *short_name, const char *name, int media, char *err, size_t errlen);

/* Per-job done-markers: the packed result of a finished step. */
/* 1 found (blob is the caller's to free), 0 not, -1 error. */
int store_marker_get(store *s, const char *job, const char *step, uint8_t **blob, size_t *len);
int store_marker_put(store *s, const char *job, const char *step, const uint8_t *blob, size_t len,
                     char *err, size_t errlen);

#endif
