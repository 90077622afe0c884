/* rules: validations and outcomes of EXCEPTIONS.md for one record. */
#include "rules.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "util.h"

void exc_list_init(exc_list *l)
{
    memset(l, 0, sizeof(*l));
}

static void exc_free_one(Patronsync__Exception *e)
{
    if (e == NULL)
        return;
    free(e->district_id);
    free(e->name);
    free(e->outcome);
    free(e->message);
    free(e);
}

void exc_list_free(exc_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        exc_free_one(l->v[i]);
    free(l->v);
    exc_list_init(l);
}

int exc_add(exc_list *l, uint64_t line, const char *district_id, const char *name, const char *outcome,
            const char *fmt, ...)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        Patronsync__Exception **v = realloc(l->v, cap * sizeof(*v));
        if (v == NULL)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    Patronsync__Exception *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return -1;
    patronsync__exception__init(e);
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    e->line = line;
    e->district_id = strdup(district_id ? district_id : "");
    e->name = strdup(name ? name : "");
    e->outcome = strdup(outcome);
    e->message = strdup(msg);
    if (!e->district_id || !e->name || !e->outcome || !e->message) {
        exc_free_one(e);
        return -1;
    }
    l->v[l->n++] = e;
    return 0;
}

void exc_truncate(exc_list *l, size_t mark)
{
    while (l->n > mark)
        exc_free_one(l->v[--l->n]);
}

static int site_cmp(const void *a, const void *b)
{
    return strcmp(((const store_site *)a)->short_name, ((const store_site *)b)->short_name);
}

const store_site *rules_site(const rules_ctx *ctx, const char *short_name)
{
    if (short_name == NULL || *short_name == '\0' || ctx->nsites == 0)
        return NULL;
    store_site k;
    if (strlen(short_name) >= sizeof(k.short_name))
        return NULL;
    str_copy(k.short_name, sizeof(k.short_name), short_name);
    const store_site *s = bsearch(&k, ctx->sites, ctx->nsites, sizeof(store_site), site_cmp);
    if (s != NULL)
        return s;
    for (size_t i = 0; i < ctx->nsites; i++)
        if (strcasecmp(ctx->sites[i].short_name, short_name) == 0)
            return &ctx->sites[i];
    return NULL;
}

/* A name of a reference list, exact first, else without regard to ASCII case. */
static const char *ref_lookup(char *const *names, size_t n, const char *v)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(names[mid], v);
        if (c == 0)
            return names[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(names[i], v) == 0)
            return names[i];
    return NULL;
}

/* Append len bytes of s at *at, keeping room for the NUL (cut as snprintf
 * would cut). */
static void put_cut(char *out, size_t outlen, size_t *at, const char *s, size_t len)
{
    size_t room = outlen - 1 - *at;
    if (len > room)
        len = room;
    memcpy(out + *at, s, len);
    *at += len;
}

void rules_display_name(const patron_rec *rec, char *out, size_t outlen)
{
    /* Made for every record that gets a line: plain copies, not snprintf. */
    if (outlen == 0)
        return;
    size_t at = 0;
    const char *last = patron_rec_get(rec, PF_LAST_NAME);
    const char *first = patron_rec_get(rec, PF_FIRST_NAME);
    size_t nlast = strlen(last), nfirst = strlen(first);
    put_cut(out, outlen, &at, last, nlast);
    if (nlast && nfirst)
        put_cut(out, outlen, &at, ", ", 2);
    put_cut(out, outlen, &at, first, nfirst);
    out[at] = '\0';
}

const char *rules_record_site(const rules_ctx *ctx, const patron_rec *mapped)
{
    const char *v = "";
    if (mapped->state[PF_SITE_SHORT_NAME] == PV_VALUE)
        v = patron_rec_get(mapped, PF_SITE_SHORT_NAME);
    if (*v == '\0' && ctx->site_default != NULL)
        v = ctx->site_default;
    const store_site *s = rules_site(ctx, v);
    return s ? s->short_name : v;
}

int rules_match_key(const rules_ctx *ctx, uint64_t line, const patron_rec *mapped, const char **key,
                    exc_list *exc)
{
    char name[200]; /* made for a line only (NAME) */
#define NAME (rules_display_name(mapped, name, sizeof(name)), name)
    const char *id = patron_rec_get(mapped, PF_DISTRICT_ID);
    if (ctx->match_district_id) {
        if (*id == '\0') {
            exc_add(exc, line, "", NAME, "SKIP", "District ID is required.");
            return 0;
        }
        if (utf8_chars(id, strlen(id)) > (size_t)patron_fields[PF_DISTRICT_ID].maxlen) {
            exc_add(exc, line, id, NAME, "SKIP",
                    "Unable to match using District ID; District ID '%s' exceeds maximum length of 40 characters.",
                    id);
            return 0;
        }
        *key = id;
        return 1;
    }
    const char *bc = patron_rec_get(mapped, PF_BARCODE);
    const char *site = rules_record_site(ctx, mapped);
    if (*bc == '\0' && *site == '\0') {
        exc_add(exc, line, id, NAME, "SKIP", "No match criteria specified.");
        return 0;
    }
    if (*bc == '\0') {
        exc_add(exc, line, id, NAME, "SKIP", "No barcode match criteria specified.");
        return 0;
    }
    if (*site == '\0') {
        exc_add(exc, line, id, NAME, "SKIP", "No site short name match criteria specified.");
        return 0;
    }
    if (utf8_chars(bc, strlen(bc)) > (size_t)patron_fields[PF_BARCODE].maxlen) {
        /* Cut, it would match another patron (or none, every run). */
        exc_add(exc, line, id, NAME, "SKIP",
                "Unable to match using barcode; barcode '%s' exceeds maximum length of 14 characters.", bc);
        return 0;
    }
    *key = bc;
    return 1;
#undef NAME
}

/* How a field of the mapped record stands, for the fields with defaults. */
enum given {
    G_VALUE,     /* the file gave a value (maybe blank): check it */
    G_BLANK_ADD, /* omitted and blank, for a new patron: a blank the file gave */
    G_UNMAPPED,  /* not mapped, for a new patron: the default, without a message */
    G_KEEP       /* not mapped or omitted, for an existing patron: left as stored */
};

static enum given given(const patron_rec *mapped, const patron_rec *existing, int f)
{
    switch (mapped->state[f]) {
    case PV_VALUE:
    case PV_INVALID:
        return G_VALUE;
    case PV_OMIT:
        return existing ? G_KEEP : G_BLANK_ADD;
    default:
        return existing ? G_KEEP : G_UNMAPPED;
    }
}

/* One decision in progress: what the messages name and where they go. */
typedef struct {
    uint64_t line;
    const char *id;
    char name[200];
    exc_list *exc;
    int *warned;
    int oom;
} decision;

static void warn(decision *d, const char *outcome, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void warn(decision *d, const char *outcome, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (exc_add(d->exc, d->line, d->id, d->name, outcome, "%s", msg) < 0)
        d->oom = 1;
    if (strcmp(outcome, "SKIP") != 0 && strcmp(outcome, "INFO") != 0)
        *d->warned = 1;
}

static void set(decision *d, patron_rec *out, int f, const char *v)
{
    /* v may point into out's own arena, which set may move: copy first. */
    char buf[1024];
    size_t len = strlen(v);
    if (len >= sizeof(buf)) {
        char *copy = strdup(v);
        if (copy == NULL || patron_rec_set(out, f, copy, len, PV_VALUE) < 0)
            d->oom = 1;
        free(copy);
        return;
    }
    memcpy(buf, v, len + 1);
    if (patron_rec_set(out, f, buf, len, PV_VALUE) < 0)
        d->oom = 1;
}

static const char *stored(const patron_rec *existing, int f)
{
    return existing ? patron_rec_get(existing, f) : "";
}

/* A value that must be one of a few codes: the code for v (any case, the
 * code itself or one of its words), or NULL. */
static const char *code_of(const char *v, const char *const *table)
{
    for (size_t i = 0; table[i] != NULL; i += 2)
        if (strcasecmp(v, table[i]) == 0)
            return table[i + 1];
    return NULL;
}

static const char *const gender_codes[] = {"M", "M", "F", "F", "U", "U", "Male", "M", "Female", "F",
                                           "Unspecified", "U", "Unknown", "U", NULL};
static const char *const status_codes[] = {"A", "A", "I", "I", "R", "R", "Active", "A", "Inactive", "I",
                                           "Restricted", "R", NULL};
static const char *const flag_codes[] = {"T", "T", "F", "F", "Y", "T", "N", "F", "True", "T", "False", "F",
                                         "Yes", "T", "No", "F", "1", "T", "0", "F", NULL};

/* A field with a fixed set of codes and a default (gender, status). */
static void coded(decision *d, const patron_rec *mapped, const patron_rec *existing, patron_rec *out, int f,
                  const char *const *table, const char *dflt, const char *msg)
{
    enum given g = given(mapped, existing, f);
    if (g == G_KEEP)
        return;
    if (g == G_UNMAPPED) {
        set(d, out, f, dflt);
        return;
    }
    const char *c = g == G_VALUE ? code_of(patron_rec_get(mapped, f), table) : NULL;
    if (c != NULL) {
        set(d, out, f, c);
        return;
    }
    set(d, out, f, dflt);
    warn(d, "DEFAULT", "%s", msg);
}

/* A yes/no field: T/F; an unreadable value keeps the stored one. */
static void flag(decision *d, const patron_rec *mapped, const patron_rec *existing, patron_rec *out, int f,
                 const char *msg)
{
    if (given(mapped, existing, f) != G_VALUE)
        return;
    const char *v = patron_rec_get(mapped, f);
    if (*v == '\0')
        return; /* a blank flag is stored blank: not recorded */
    const char *c = code_of(v, flag_codes);
    if (c != NULL) {
        set(d, out, f, c);
        return;
    }
    set(d, out, f, stored(existing, f));
    warn(d, "KEEP", "%s", msg);
}

static int year_ok(const char *v)
{
    if (strlen(v) != 4)
        return 0;
    for (int i = 0; i < 4; i++)
        if (v[i] < '0' || v[i] > '9')
            return 0;
    int64_t y;
    return parse_i64(v, 1900, 2100, &y) == 0;
}

/* A field checked against a reference list with a default (patron type,
 * access level, resource group): a known value takes the list's spelling.
 * check: whether an unknown value is replaced by the default (an unknown
 * patron type is kept: it is created when applied). Returns what was done;
 * the value the file gave is copied into gave for the message. */
enum ref_outcome { REF_KEPT, REF_BLANK, REF_UNKNOWN };

static enum ref_outcome referenced(decision *d, const patron_rec *mapped, const patron_rec *existing,
                                   patron_rec *out, int f, char *const *names, size_t nnames, int check,
                                   const char *dflt, char *gave, size_t gavelen, const char **used)
{
    enum given g = given(mapped, existing, f);
    str_copy(gave, gavelen, "");
    if (g == G_KEEP)
        return REF_KEPT;
    const char *v = g == G_VALUE ? patron_rec_get(mapped, f) : "";
    str_copy(gave, gavelen, v);
    const char *canon_default = ref_lookup(names, nnames, dflt);
    if (canon_default == NULL)
        canon_default = dflt;
    *used = canon_default;
    if (*v == '\0') {
        set(d, out, f, canon_default);
        return g == G_UNMAPPED ? REF_KEPT : REF_BLANK;
    }
    const char *known = ref_lookup(names, nnames, v);
    if (known != NULL) {
        set(d, out, f, known);
        return REF_KEPT;
    }
    if (!check)
        return REF_KEPT;
    set(d, out, f, canon_default);
    return REF_UNKNOWN;
}

/* Cut a value over its field's length, with the TRUNC warning. */
static void truncate_field(decision *d, patron_rec *out, int f)
{
    int maxlen = patron_fields[f].maxlen;
    if (maxlen <= 0 || out->state[f] != PV_VALUE)
        return;
    const char *v = patron_rec_get(out, f);
    size_t len = out->len[f];
    if (len <= (size_t)maxlen || utf8_chars(v, len) <= (size_t)maxlen)
        return; /* (never more characters than bytes) */
    size_t cut = utf8_prefix(v, len, (size_t)maxlen);
    out->len[f] = (uint32_t)cut;
    out->arena[out->off[f] + cut] = '\0';
    warn(d, "TRUNC", "%s too long; shortened to fit.", patron_fields[f].label);
}

int rules_password_hash(const char *pw, const char *stored_hash, char *out, size_t outlen)
{
    if (outlen < crypto_pwhash_STRBYTES || sodium_init() < 0)
        return -1;
    size_t len = strlen(pw);
    if (stored_hash != NULL && strncmp(stored_hash, crypto_pwhash_STRPREFIX, strlen(crypto_pwhash_STRPREFIX)) == 0 &&
        strlen(stored_hash) < outlen && crypto_pwhash_str_verify(stored_hash, pw, len) == 0 &&
        crypto_pwhash_str_needs_rehash(stored_hash, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                       crypto_pwhash_MEMLIMIT_INTERACTIVE) == 0) {
        str_copy(out, outlen, stored_hash);
        return 0;
    }
    if (crypto_pwhash_str(out, pw, len, crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
        return -1;
    return 0;
}

/* One record's decision, step by step (rules_decide): the inputs, the
 * record being built and the decision's report. */
typedef struct {
    const rules_ctx *ctx;
    const patron_rec *mapped, *existing;
    patron_rec *out;
    decision d;
    const store_site *site;
} decide_run;

/* Overlay: mapped values win; unset/omitted/invalid fields keep what is stored. 0 / -1. */
static int decide_overlay(decide_run *r)
{
    for (int f = 0; f < PF__COUNT; f++) {
        const patron_rec *src = NULL;
        if (r->mapped->state[f] == PV_VALUE)
            src = r->mapped;
        else if (r->existing != NULL)
            src = r->existing;
        const char *v = src ? patron_rec_get(src, f) : "";
        size_t len = src ? src->len[f] : 0;
        if (patron_rec_set(r->out, f, v, len, PV_VALUE) < 0)
            return -1;
    }
    r->d.id = patron_rec_get(r->mapped, PF_DISTRICT_ID);
    if (*r->d.id == '\0')
        r->d.id = stored(r->existing, PF_DISTRICT_ID);
    rules_display_name(r->out, r->d.name, sizeof(r->d.name));
    return 0;
}

/* Site: the mapped one, else the default, else (omitted or not mapped)
 * what is stored. 1 found, 0 the record is skipped. */
static int decide_site(decide_run *r)
{
    const patron_rec *mapped = r->mapped, *existing = r->existing;
    const char *site = "";
    if (mapped->state[PF_SITE_SHORT_NAME] == PV_VALUE)
        site = patron_rec_get(mapped, PF_SITE_SHORT_NAME);
    if (*site == '\0' && r->ctx->site_default != NULL)
        site = r->ctx->site_default;
    if (*site == '\0' && existing != NULL && mapped->state[PF_SITE_SHORT_NAME] != PV_VALUE)
        site = stored(existing, PF_SITE_SHORT_NAME);
    if (*site == '\0') {
        warn(&r->d, "SKIP", "Site short name is required.");
        return 0;
    }
    r->site = rules_site(r->ctx, site);
    if (r->site == NULL) {
        warn(&r->d, "SKIP", "Site short name '%s' does not exist.", site);
        return 0;
    }
    set(&r->d, r->out, PF_SITE_SHORT_NAME, r->site->short_name);
    return 1;
}

/* A required field: a new patron without it is skipped; an existing one
 * keeps what is stored (with the KEEP line). 1 kept, 0 skipped. */
static int decide_required(decide_run *r, int f, const char *skip_msg, const char *keep_msg)
{
    if (r->existing == NULL) {
        if (*patron_rec_get(r->out, f) == '\0') {
            warn(&r->d, "SKIP", "%s", skip_msg);
            return 0;
        }
    } else if (r->mapped->state[f] == PV_VALUE && r->mapped->len[f] == 0) {
        set(&r->d, r->out, f, stored(r->existing, f));
        rules_display_name(r->out, r->d.name, sizeof(r->d.name));
        warn(&r->d, "KEEP", "%s", keep_msg);
    }
    return 1;
}

/* Reasons to skip the record come first. 1 saved, 0 skipped. */
static int decide_skips(decide_run *r)
{
    if (!decide_site(r) ||
        !decide_required(r, PF_LAST_NAME, "Last name is required for all patrons; Last name was blank; ignored.",
                         "Last name is required for all patrons; Last name was missing.") ||
        !decide_required(r, PF_BARCODE, "Barcode is required for all patrons; Barcode was blank; ignored.",
                         "Barcode is required for all patrons; Barcode was blank."))
        return 0;
    /* A transfer between a media and a non-media site is refused. */
    if (r->existing != NULL && strcmp(r->site->short_name, stored(r->existing, PF_SITE_SHORT_NAME)) != 0) {
        const store_site *from = rules_site(r->ctx, stored(r->existing, PF_SITE_SHORT_NAME));
        if (from != NULL && (from->media != 0) != (r->site->media != 0)) {
            warn(&r->d, "SKIP", "Unable to transfer patron between media sites / non-media sites.");
            return 0;
        }
    }
    return 1;
}

/* Warnings on fields of their own: the record is saved. */
static void decide_fields(decide_run *r)
{
    decision *d = &r->d;
    const patron_rec *mapped = r->mapped, *existing = r->existing;
    patron_rec *out = r->out;
    for (int f = 0; f < PF__COUNT; f++) {
        if (mapped->state[f] != PV_INVALID)
            continue;
        set(d, out, f, stored(existing, f));
        warn(d, "KEEP", "%s invalid; field left untouched.", patron_fields[f].label);
    }
    coded(d, mapped, existing, out, PF_GENDER, gender_codes, "U", "Gender was blank or invalid; set to Unspecified.");
    coded(d, mapped, existing, out, PF_STATUS, status_codes, "A", "Status was blank or unknown; set to Active.");
    if (given(mapped, existing, PF_GRADUATION_YEAR) == G_VALUE) {
        const char *y = patron_rec_get(mapped, PF_GRADUATION_YEAR);
        if (*y != '\0' && !year_ok(y)) {
            set(d, out, PF_GRADUATION_YEAR, "");
            warn(d, "BLANK", "Graduation Year invalid; field left blank.");
        }
    }
    flag(d, mapped, existing, out, PF_IS_TEACHER,
         "Invalid Teaching Status. Expecting \"True\" or \"False\". Teaching status was not changed.");
    flag(d, mapped, existing, out, PF_IS_AUP_ON_FILE,
         "Invalid Acceptable Use Policy status. Expecting \"True\" or \"False\". Acceptable Use Policy status was "
         "not changed.");
}

/* A reference field checked against the district's list: a blank or
 * unknown value takes the default, with the line Destiny writes. */
static void decide_reference(decide_run *r, int f, char *const *known, size_t nknown, int check,
                             const char *dflt, const char *label)
{
    char gave[256];
    const char *used = "";
    switch (referenced(&r->d, r->mapped, r->existing, r->out, f, known, nknown, check, dflt, gave, sizeof(gave),
                       &used)) {
    case REF_BLANK:
        warn(&r->d, "DEFAULT", "%s was not specified; using the default.", label);
        break;
    case REF_UNKNOWN:
        warn(&r->d, "DEFAULT", "%s (%s) was unknown; using the default.", label, gave);
        break;
    default:
        break;
    }
}

/* Patron type, access level and resource group. */
static void decide_references(decide_run *r)
{
    const rules_ctx *ctx = r->ctx;
    const char *dtype = ctx->default_patron_type && *ctx->default_patron_type ? ctx->default_patron_type
                                                                              : RULES_FALLBACK_PATRON_TYPE;
    char gave[256];
    const char *used = "";
    if (referenced(&r->d, r->mapped, r->existing, r->out, PF_PATRON_TYPE, ctx->patron_types, ctx->npatron_types, 0,
                   dtype, gave, sizeof(gave), &used) == REF_BLANK)
        warn(&r->d, "DEFAULT", "Patron Type was blank; used the default (%s).", used);
    decide_reference(r, PF_ACCESS_LEVEL, ctx->access_levels, ctx->naccess_levels, ctx->naccess_levels > 0,
                     r->site->default_access_level, "Access level");
    /* Resource groups are checked once the district has listed any. */
    if (ctx->nresource_groups > 0)
        decide_reference(r, PF_RESOURCE_GROUP, ctx->resource_groups, ctx->nresource_groups, 1,
                         ctx->default_resource_group ? ctx->default_resource_group : "", "Resource Group");
}

/* Lengths cut to the store's, and a given password hashed. 0 / -1. */
static int decide_values(decide_run *r)
{
    patron_rec *out = r->out;
    for (int f = 0; f < PF__COUNT; f++) {
        if (f == PF_PASSWORD && r->mapped->state[f] != PV_VALUE)
            continue; /* the stored hash, never cut */
        truncate_field(&r->d, out, f);
    }
    if (r->mapped->state[PF_PASSWORD] == PV_VALUE && out->len[PF_PASSWORD] > 0) {
        char hash[crypto_pwhash_STRBYTES];
        char pw[256];
        str_copy(pw, sizeof(pw), patron_rec_get(out, PF_PASSWORD));
        int rc = rules_password_hash(pw, stored(r->existing, PF_PASSWORD), hash, sizeof(hash));
        sodium_memzero(pw, sizeof(pw));
        if (rc < 0)
            return -1;
        set(&r->d, out, PF_PASSWORD, hash);
    }
    return 0;
}

/* Only the reason is reported for a record that is not saved. */
static int decide_skipped(decide_run *r, size_t mark)
{
    exc_list *exc = r->d.exc;
    if (r->d.oom)
        return -1;
    Patronsync__Exception *why = exc->v[exc->n - 1];
    exc->v[exc->n - 1] = NULL;
    exc->n--;
    exc_truncate(exc, mark);
    exc->v[exc->n++] = why;
    *r->d.warned = 0;
    return 0;
}

int rules_decide(const rules_ctx *ctx, uint64_t line, const patron_rec *mapped, const patron_rec *existing,
                 patron_rec *out, exc_list *exc, int *warned)
{
    *warned = 0;
    patron_rec_reset(out);
    size_t mark = exc->n;
    decide_run r = {.ctx = ctx, .mapped = mapped, .existing = existing, .out = out,
                    .d = {.line = line, .exc = exc, .warned = warned}};
    if (decide_overlay(&r) < 0)
        return -1;
    if (!decide_skips(&r))
        return decide_skipped(&r, mark);
    decide_fields(&r);
    decide_references(&r);
    if (decide_values(&r) < 0)
        return -1;
    return r.d.oom ? -1 : 1;
}

int rules_username_changed(const patron_rec *out, const patron_rec *existing)
{
    const char *u = patron_rec_get(out, PF_USERNAME);
    return *u != '\0' && strcmp(u, stored(existing, PF_USERNAME)) != 0;
}

int rules_keep_username(uint64_t line, patron_rec *out, const patron_rec *existing, exc_list *exc, int *warned)
{
    decision d = {.line = line, .exc = exc, .warned = warned};
    d.id = patron_rec_get(out, PF_DISTRICT_ID);
    rules_display_name(out, d.name, sizeof(d.name));
    char u[256];
    str_copy(u, sizeof(u), patron_rec_get(out, PF_USERNAME));
    set(&d, out, PF_USERNAME, stored(existing, PF_USERNAME));
    warn(&d, "KEEP", RULES_MSG_USERNAME, u);
    return d.oom ? -1 : 0;
}

int rules_ref_load(rules_ref *ref, store *st, char *err, size_t errlen)
{
    memset(ref, 0, sizeof(*ref));
    if (store_sites(st, &ref->sites, &ref->nsites, err, errlen) < 0 ||
        store_ref_names(st, STORE_REF_PATRON_TYPE, &ref->patron_types, &ref->npatron_types, err, errlen) < 0 ||
        store_ref_names(st, STORE_REF_ACCESS_LEVEL, &ref->access_levels, &ref->naccess_levels, err, errlen) < 0 ||
        store_ref_names(st, STORE_REF_RESOURCE_GROUP, &ref->resource_groups, &ref->nresource_groups, err, errlen) <
            0 ||
        store_ref_default(st, STORE_REF_PATRON_TYPE, ref->default_patron_type, sizeof(ref->default_patron_type), err,
                          errlen) < 0 ||
        store_ref_default(st, STORE_REF_RESOURCE_GROUP, ref->default_resource_group,
                          sizeof(ref->default_resource_group), err, errlen) < 0) {
        rules_ref_free(ref);
        return -1;
    }
    return 0;
}

void rules_ref_free(rules_ref *ref)
{
    if (ref == NULL)
        return;
    free(ref->sites);
    store_names_free(ref->patron_types, ref->npatron_types);
    store_names_free(ref->access_levels, ref->naccess_levels);
    store_names_free(ref->resource_groups, ref->nresource_groups);
    memset(ref, 0, sizeof(*ref));
}

void rules_ctx_init(rules_ctx *ctx, const rules_ref *ref, int match_district_id, const char *site_default)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->sites = ref->sites;
    ctx->nsites = ref->nsites;
    ctx->match_district_id = match_district_id;
    ctx->site_default = site_default ? site_default : "";
    ctx->patron_types = ref->patron_types;
    ctx->npatron_types = ref->npatron_types;
    ctx->access_levels = ref->access_levels;
    ctx->naccess_levels = ref->naccess_levels;
    ctx->resource_groups = ref->resource_groups;
    ctx->nresource_groups = ref->nresource_groups;
    ctx->default_patron_type = ref->default_patron_type;
    ctx->default_resource_group = ref->default_resource_group;
}
