/* rules: what happens to one mapped record — the validations and outcomes
 * of EXCEPTIONS.md — decided against the stored patron (if any) and the
 * reference data. Decisions only: apart from loading the reference data
 * once (rules_ref_load), no store reads or writes here; the callers look
 * things up and pass what they found. docs/RULES.md. */
#ifndef RULES_H
#define RULES_H

#include <stddef.h>
#include <stdint.h>

#include "patron.h"
#include "patronsync.pb-c.h"
#include "store.h"

/* A growable list of exception lines (each owned by the list). */
typedef struct {
    Patronsync__Exception **v;
    size_t n, cap;
} exc_list;

void exc_list_init(exc_list *l);
void exc_list_free(exc_list *l);
/* Append a line; the outcome is one of TRUNC DEFAULT KEEP BLANK SKIP INFO. 0 / -1. */
int exc_add(exc_list *l, uint64_t line, const char *district_id, const char *name, const char *outcome,
            const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Drop the lines from index `mark` on (a record's warnings when it is
 * skipped after all: only the reason it was skipped is reported). */
void exc_truncate(exc_list *l, size_t mark);

/* The patron type used when none is configured (docs/RULES.md). */
#define RULES_FALLBACK_PATRON_TYPE "Patron"

/* Reference data a decision needs (read once per shard, from the store as
 * it was before the job). Every list is sorted by strcmp. */
typedef struct {
    const store_site *sites; /* sorted by short_name */
    size_t nsites;
    int match_district_id;
    const char *site_default;        /* SiteShortNameDefault, "" when none */
    char *const *patron_types;       /* known types: a known one is written in its stored spelling */
    size_t npatron_types;
    char *const *access_levels;      /* none: access levels are not checked */
    size_t naccess_levels;
    char *const *resource_groups;    /* none: resource groups are not in use */
    size_t nresource_groups;
    const char *default_patron_type; /* "" or NULL: RULES_FALLBACK_PATRON_TYPE */
    const char *default_resource_group;
} rules_ctx;

/* The reference data of a store, read once (owned; rules_ref_free). */
typedef struct {
    store_site *sites;
    size_t nsites;
    char **patron_types, **access_levels, **resource_groups;
    size_t npatron_types, naccess_levels, nresource_groups;
    char default_patron_type[256];
    char default_resource_group[256];
} rules_ref;

/* Read sites, patron types, access levels, resource groups and the
 * defaults. 0 / -1 with err (ref is then empty). */
int rules_ref_load(rules_ref *ref, store *st, char *err, size_t errlen);
void rules_ref_free(rules_ref *ref);
/* A context over ref (which must outlive it) and the profile's settings. */
void rules_ctx_init(rules_ctx *ctx, const rules_ref *ref, int match_district_id, const char *site_default);

/* A site by short name: exact, else without regard to ASCII case. NULL if none. */
const store_site *rules_site(const rules_ctx *ctx, const char *short_name);

/* "Last, First" for summary lines (into out). */
void rules_display_name(const patron_rec *rec, char *out, size_t outlen);

/* The site a record names: its mapped site, else SiteShortNameDefault, in
 * the stored spelling when the site exists; "" when it names none. */
const char *rules_record_site(const rules_ctx *ctx, const patron_rec *mapped);

/* Step 1: the match key of a mapped record: its District ID, or (with
 * MatchUsingDistrictID=false) its barcode, which must come with a site.
 * Returns 1 with the key in *key (owned by mapped), or 0 when the record
 * is skipped (its exception appended). */
int rules_match_key(const rules_ctx *ctx, uint64_t line, const patron_rec *mapped, const char **key,
                    exc_list *exc);

/* Step 2: the record as it will be stored: existing (NULL for a new
 * patron) overlaid with the mapped values, validated, defaults filled, a
 * mapped password replaced by its hash (or by the stored hash when that
 * verifies it). Returns 1 to save (out filled with every field as
 * PV_VALUE; *warned set when a warning was appended), 0 when skipped (the
 * reason appended, the record's other lines dropped), -1 out of memory or
 * the password could not be hashed. */
int rules_decide(const rules_ctx *ctx, uint64_t line, const patron_rec *mapped, const patron_rec *existing,
                 patron_rec *out, exc_list *exc, int *warned);

/* A user name another patron holds: out keeps the stored one (blank for a
 * new patron), with "Duplicates another patron's user name '<u>'." (KEEP).
 * 0 / -1 (no memory). */
int rules_keep_username(uint64_t line, patron_rec *out, const patron_rec *existing, exc_list *exc, int *warned);

/* Whether the user name of out is new for this patron (set, and not the
 * stored one up to ASCII case): only then is it checked for uniqueness. */
int rules_username_changed(const patron_rec *out, const patron_rec *existing);

/* The password hash for a plaintext password: the stored hash when it
 * verifies pw, else a new libsodium crypto_pwhash_str hash (interactive
 * limits). out must hold crypto_pwhash_STRBYTES. 0 / -1. */
int rules_password_hash(const char *pw, const char *stored_hash, char *out, size_t outlen);

/* Message texts used by more than one step (plan and apply). */
#define RULES_MSG_BARCODE_EXISTS "Barcode \"%s\" already exists at target site."
#define RULES_MSG_BARCODE_ASSIGNED "Patron's new barcode '%s' is already assigned to another patron."
#define RULES_MSG_USERNAME "Duplicates another patron's user name '%s'."
#define RULES_MSG_TYPE_CREATED "Patron Type was unknown; new patron type of %s created."
#define RULES_MSG_HOMEROOM "Created homeroom: %s"
#define RULES_MSG_MOVED "Patron was also moved from site '%s'"
#define RULES_MSG_ASSOCIATED "Patron was associated with site '%s'."
#define RULES_MSG_OUTSTANDING "Unable to delete patron (%s); patron has outstanding transactions."
#define RULES_MSG_NOT_FOUND "Unable to delete patron; patron not found."
#define RULES_MSG_DELETED_OUTSTANDING \
    "Patron (%s) deleted with outstanding transactions (%lld checkouts, fines %lld.%02lld); the schedule allows it."
#define RULES_MSG_DISTRICT_ID_TAKEN "District ID '%s' is already assigned to another patron."

#endif
