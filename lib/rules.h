/* rules: what happens to one mapped record — the validations and outcomes
 * of EXCEPTIONS.md — decided against the stored patron (if any) and the
 * reference data. Pure decisions: no store writes here. */
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

/* Reference data a decision needs (read once per shard). */
typedef struct {
    const store_site *sites; /* sorted by short_name */
    size_t nsites;
    int match_district_id;
    const char *site_default;
} rules_ctx;

const store_site *rules_site(const rules_ctx *ctx, const char *short_name);

/* "Last, First" for summary lines (into out). */
void rules_display_name(const patron_rec *rec, char *out, size_t outlen);

/* Step 1: the match key of a mapped record. Returns 1 with the key in
 * *key (owned by mapped), or 0 when the record is skipped (its exception
 * appended). */
int rules_match_key(const rules_ctx *ctx, uint64_t line, const patron_rec *mapped, const char **key,
                    exc_list *exc);

/* Step 2: the record as it will be stored: existing (NULL for a new
 * patron) overlaid with the mapped values, validated. Returns 1 to save
 * (out filled; *warned when a warning was appended), 0 when skipped. */
int rules_decide(const rules_ctx *ctx, uint64_t line, const patron_rec *mapped, const patron_rec *existing,
                 patron_rec *out, exc_list *exc, int *warned);

#endif
