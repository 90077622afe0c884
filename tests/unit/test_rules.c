/* test_rules: the patron rules — every message of EXCEPTIONS.md with its
 * outcome, for new patrons and for updates — and the store functions the
 * rules use (reference data, user names, site associations). */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "patron.h"
#include "rules.h"
#include "store.h"
#include "t.h"
#include "t_sql.h"
#include "util.h"

/* ---- fixtures ---- */

static store_site sites[] = {
    /* sorted by short_name, as store_sites returns them */
    {"DO", "District Office", 0, "Staff", ""},
    {"LES", "Lincoln Elementary", 1, "", "101"},
    {"LHS", "Lincoln High", 1, "Secondary Student", "102"},
};
static char *types[] = {"Staff", "Student"};
static char *levels[] = {"Elementary Student", "Secondary Student", "Staff"};
static char *groups[] = {"Default Group", "High School"};

static rules_ctx ctx_plain(void)
{
    rules_ctx c;
    memset(&c, 0, sizeof(c));
    c.sites = sites;
    c.nsites = 3;
    c.match_district_id = 1;
    c.site_default = "";
    c.patron_types = types;
    c.npatron_types = 2;
    c.default_patron_type = "";
    c.default_resource_group = "";
    return c;
}

/* Same, with access levels and resource groups listed (so checked). */
static rules_ctx ctx_listed(void)
{
    rules_ctx c = ctx_plain();
    c.access_levels = levels;
    c.naccess_levels = 3;
    c.resource_groups = groups;
    c.nresource_groups = 2;
    c.default_resource_group = "Default Group";
    c.default_patron_type = "student";
    return c;
}

static void put(patron_rec *r, int f, const char *v)
{
    patron_rec_set(r, f, v, strlen(v), PV_VALUE);
}

static void put_state(patron_rec *r, int f, const char *v, enum patron_value_state st)
{
    patron_rec_set(r, f, v, strlen(v), st);
}

/* A mapped record with what a new patron needs. */
static void base_mapped(patron_rec *m)
{
    patron_rec_reset(m);
    put(m, PF_DISTRICT_ID, "1001");
    put(m, PF_BARCODE, "P1001");
    put(m, PF_LAST_NAME, "Adams");
    put(m, PF_FIRST_NAME, "Emma");
    put(m, PF_SITE_SHORT_NAME, "LHS");
}

/* A stored patron (every field PV_VALUE, as store_find gives it). */
static void base_existing(patron_rec *e)
{
    patron_rec_reset(e);
    for (int f = 0; f < PF__COUNT; f++)
        put(e, f, "");
    put(e, PF_DISTRICT_ID, "1001");
    put(e, PF_BARCODE, "P1001");
    put(e, PF_LAST_NAME, "Adams");
    put(e, PF_FIRST_NAME, "Emma");
    put(e, PF_SITE_SHORT_NAME, "LHS");
    put(e, PF_PATRON_TYPE, "Student");
    put(e, PF_ACCESS_LEVEL, "Secondary Student");
    put(e, PF_STATUS, "A");
    put(e, PF_GENDER, "F");
    put(e, PF_BIRTHDATE, "2009-10-04");
    put(e, PF_CARD_EXPIRES, "2027-06-30");
    put(e, PF_GRADUATION_YEAR, "2027");
    put(e, PF_IS_TEACHER, "T");
    put(e, PF_IS_AUP_ON_FILE, "F");
    put(e, PF_USERNAME, "eadams");
    put(e, PF_RESOURCE_GROUP, "High School");
}

/* One decision: the result, the record, and its lines. */
typedef struct {
    int rc, warned;
    patron_rec m, e, out;
    exc_list exc;
} dec;

static void dec_init(dec *d)
{
    memset(d, 0, sizeof(*d));
    patron_rec_init(&d->m);
    patron_rec_init(&d->e);
    patron_rec_init(&d->out);
    exc_list_init(&d->exc);
    base_mapped(&d->m);
    base_existing(&d->e);
}

static void dec_free(dec *d)
{
    patron_rec_free(&d->m);
    patron_rec_free(&d->e);
    patron_rec_free(&d->out);
    exc_list_free(&d->exc);
}

static int decide(dec *d, const rules_ctx *c, int update)
{
    exc_list_free(&d->exc);
    exc_list_init(&d->exc);
    d->rc = rules_decide(c, 7, &d->m, update ? &d->e : NULL, &d->out, &d->exc, &d->warned);
    return d->rc;
}

static const char *out(const dec *d, int f)
{
    return patron_rec_get(&d->out, f);
}

/* The only line of a decision as "OUTCOME message" ("(n lines)" otherwise). */
static const char *only_line(const dec *d)
{
    static char buf[1200];
    if (d->exc.n != 1) {
        snprintf(buf, sizeof(buf), "(%zu lines%s%s)", d->exc.n, d->exc.n ? ": " : "",
                 d->exc.n ? d->exc.v[0]->message : "");
        return buf;
    }
    snprintf(buf, sizeof(buf), "%s %s", d->exc.v[0]->outcome, d->exc.v[0]->message);
    return buf;
}

/* ---- a clean record ---- */

static void add_clean_record_fills_defaults_silently(void)
{
    rules_ctx c = ctx_plain();
    dec d;
    dec_init(&d);
    CHECK(decide(&d, &c, 0) == 1);
    CHECK(d.exc.n == 0);
    CHECK(d.warned == 0);
    CHECK_STR(out(&d, PF_STATUS), "A");           /* not mapped: Active */
    CHECK_STR(out(&d, PF_GENDER), "U");           /* not mapped: Unspecified */
    CHECK_STR(out(&d, PF_PATRON_TYPE), "Patron"); /* not mapped, no default set: the fallback */
    CHECK_STR(out(&d, PF_ACCESS_LEVEL), "Secondary Student"); /* the site's default */
    CHECK_STR(out(&d, PF_RESOURCE_GROUP), "");    /* resource groups not in use */
    CHECK_STR(out(&d, PF_LAST_NAME), "Adams");
    for (int f = 0; f < PF__COUNT; f++)
        CHECK(d.out.state[f] == PV_VALUE);
    dec_free(&d);
}

static void update_unmapped_fields_keep_stored(void)
{
    rules_ctx c = ctx_plain();
    dec d;
    dec_init(&d);
    patron_rec_reset(&d.m);
    put(&d.m, PF_DISTRICT_ID, "1001");
    put(&d.m, PF_NICKNAME, "Em");
    put_state(&d.m, PF_FIRST_NAME, "", PV_OMIT);
    CHECK(decide(&d, &c, 1) == 1);
    CHECK(d.exc.n == 0);
    CHECK_STR(out(&d, PF_NICKNAME), "Em");
    CHECK_STR(out(&d, PF_FIRST_NAME), "Emma");
    CHECK_STR(out(&d, PF_GENDER), "F");
    CHECK_STR(out(&d, PF_USERNAME), "eadams");
    CHECK_STR(out(&d, PF_SITE_SHORT_NAME), "LHS");
    CHECK_STR(out(&d, PF_RESOURCE_GROUP), "High School");
    dec_free(&d);
}

/* ---- TRUNC ---- */

static void every_text_field_is_cut_with_its_label(void)
{
    rules_ctx c = ctx_plain();
    for (int f = 0; f < PF__COUNT; f++) {
        const patron_field_info *fi = &patron_fields[f];
        if (fi->kind != PK_TEXT || fi->maxlen <= 1 || f == PF_SITE_SHORT_NAME || f == PF_GRADUATION_YEAR ||
            f == PF_PASSWORD)
            continue; /* checked on their own below */
        for (int update = 0; update < 2; update++) {
            dec d;
            dec_init(&d);
            char v[300];
            memset(v, 'x', (size_t)fi->maxlen + 1);
            v[fi->maxlen + 1] = '\0';
            put(&d.m, f, v);
            CHECK(decide(&d, &c, update) == 1);
            char want[200];
            snprintf(want, sizeof(want), "TRUNC %s too long; shortened to fit.", fi->label);
            if (strcmp(only_line(&d), want) != 0)
                printf("FAIL %s: field %s (%s): %s\n", t_case, fi->pic, update ? "update" : "add", only_line(&d));
            CHECK(strcmp(only_line(&d), want) == 0);
            CHECK(strlen(out(&d, f)) == (size_t)fi->maxlen);
            CHECK(d.warned == 1);
            CHECK(d.exc.v[0]->line == 7);
            if (f != PF_DISTRICT_ID)
                CHECK_STR(d.exc.v[0]->district_id, "1001");
            if (f != PF_LAST_NAME && f != PF_FIRST_NAME)
                CHECK_STR(d.exc.v[0]->name, "Adams, Emma");
            dec_free(&d);
        }
    }
}

static void truncation_counts_characters_not_bytes(void)
{
    rules_ctx c = ctx_plain();
    dec d;
    dec_init(&d);
    /* 30 characters of two bytes each fit a 30-character nickname. */
    char v[200] = "";
    for (int i = 0; i < 30; i++)
        strncat(v, "é", sizeof(v) - strlen(v) - 1);
    put(&d.m, PF_NICKNAME, v);
    CHECK(decide(&d, &c, 0) == 1);
    CHECK(d.exc.n == 0);
    strncat(v, "ñü", sizeof(v) - strlen(v) - 1);
    put(&d.m, PF_NICKNAME, v);
    CHECK(decide(&d, &c, 0) == 1);
    CHECK_STR(only_line(&d), "TRUNC Nickname too long; shortened to fit.");
    CHECK(strlen(out(&d, PF_NICKNAME)) == 60);
    CHECK(utf8_chars(out(&d, PF_NICKNAME), 60) == 30);
    dec_free(&d);
}

/* ---- site ---- */

static void site_required_and_must_exist(void)
{
    rules_ctx c = ctx_plain();
    dec d;
    dec_init(&d);
    put(&d.m, PF_SITE_SHORT_NAME, "");
    CHECK(decide(&d, &c, 0) == 0);
    CHECK_STR(only_line(&d), "SKIP Site short name is required.");
    CHECK(decide(&d, &c, 1) == 0); /* given blank: the update is refused too */
    CHECK_STR(only_line(&d), "SKIP Site short name is required.");
    put_state(&d.m, PF_SITE_SHORT_NAME, "", PV_OMIT);
    CHECK(decide(&d, &c, 0) == 0);
    CHECK_STR(only_line(&d), "SKIP Site short name is required.");
    CHECK(decide(&d, &c, 1) == 1); /* omitted: the stored site stays */
    CHECK_STR(out(&d, PF_SITE_SHORT_NAME), "LHS");
    CHECK(d.exc.n == 0);
    put(&d.m, PF_SITE_SHORT_NAME, "NOPE");
    CHECK(decide(&d, &c, 0) == 0);
    CHECK_STR(only_line(&d), "SKIP Site short name 'NOPE' does not exist.");
    CHECK(decide(&d, &c, 1) == 0);
    CHECK_STR(only_line(&d), "SKIP Site short name 'NOPE' does not exist.");
    put(&d.m, PF_SITE_SHORT_NAME, "les");
    CHECK(decide(&d, &c, 0) == 1);
    CHECK_STR(out(&d, PF_SITE_SHORT_NAME), "LES"); /* the stored spelling */
    /* SiteShortNameDefault fills a blank */
    c.site_default = "LES";
    put(&d.m, PF_SITE_SHORT_NAME, "");
    CHECK(decide(&d, &c, 0) == 1);
    CHECK_STR(out(&d, PF_SITE_SHORT_NAME), "LES");
    dec_free(&d);
}

static void transfer_between_media_and_non_media_refused(void)
{
    rules_ctx c = ctx_plain();
    dec d;
    dec_init(&d);
    put(&d.m, PF_SITE_SHORT_NAME, "DO");
    put(&d.m, PF_GENDER, "Q"); /* a warning before the refusal is not reported */
    CHECK(decide(&d, &c, 1) == 0);
    CHECK_STR(only_line(&d), "SKIP Unable to transfer patron between media sites / non-media sites.");
    CHECK(d.warned == 0);
    CHECK(decide(&d, &c, 0) == 1); /* a new patron can start at a non-media site */
    put(&d.m, PF_SITE_SHORT_NAME, "LES");
    put(&d.m, PF_GENDER, "F");
    CHECK(decide(&d, &c, 1) == 1); /* media to media: moved */
    CHECK_STR(out(&d, PF_SITE_SHORT_NAME), "LES");
    CHECK(d.exc.n == 0);
    dec_free(&d);
}

/* ---- last name, barcode ---- */

static void last_name_required(void)
{
    rules_ctx c = ctx_plain();
    dec d;
    dec_init(&d);
    put(&d.m, PF_LAST_NAME, "");
    CHECK(decide(&d, &c, 0) == 0);
    CHECK_STR(only_line(&d), "SKIP Last name is required for all patrons; Last name was blank; ignored.");
    CHECK_STR(d.exc.v[0]->name, "Emma");
    CHECK(decide(&d, &c, 1) == 1);
    CHECK_STR(only_line(&d), "KEEP Last name is required for all patrons; Last name was missing.");
    CHECK_STR(out(&d, PF_LAST_NAME), "Adams");
    CHECK_STR(d.exc.v[0]->name, "Adams, Emma");
    CHECK(d.warned == 1);
    put_state(&d.m, PF_LAST_NAME, "", PV_OMIT);
    CHECK(decide(&d, &c, 0) == 0);
    CHECK_STR(only_line(&d), "SKIP Last name is required for all patrons; Last name was blank; ignored.");
    CHECK(decide(&d, &c, 1) == 1); /* omitted on an update: kept, no line */
    CHECK(d.exc.n == 0);
    CHECK_STR(out(&d, PF_LAST_NAME), "Adams");
    dec_free(&d);
}

static void barcode_required(void)
{
    rules_ctx c = ctx_plain();
    dec d;
    dec_init(&d);
    put(&d.m, PF_BARCODE, "");
    CHECK(decide(&d, &c, 0) == 0);
    CHECK_STR(only_line(&d), "SKIP Barcode is required for all patrons; Barcode was blank; ignored.");
    CHECK(decide(&d, &c, 1) == 1);
    CHECK_STR(only_line(&d), "KEEP Barcode is required for all patrons; Barcode was blank.");
    CHECK_STR(out(&d, PF_BARCODE), "P1001");
    CHECK(d.warned == 1);
    put_state(&d.m, PF_BARCODE, "", PV_OMIT);
    CHECK(decide(&d, &c, 0) == 0);
    CHECK_STR(only_line(&d), "SKIP Barcode is required for all patrons; Barcode was blank; ignored.");
    CHECK(decide(&d, &c, 1) == 1);
    CHECK(d.exc.n == 0);
    CHECK_STR(out(&d, PF_BARCODE), "P1001");
    dec_free(&d);
}

/* ---- dates, gender, status, graduation year, flags ---- */

static void invalid_dates_left_untouched(void)
{
    rules_ctx c = ctx_plain();
    dec d;
    dec_init(&d);
    put_state(&d.m, PF_BIRTHDATE, "13/45/2009", PV_INVALID);
    CHECK(decide(&d, &c, 1) == 1);
    CHECK_STR(only_line(&d), "KEEP Birth Date invalid; field left untouched.");
    CHECK_STR(out(&d, PF_BIRTHDATE), "2009-10-04");
    CHECK(decide(&d, &c, 0) == 1);
    CHECK_STR(only_line(&d), "KEEP Birth Date invalid; field left untouched.");
    CHECK_STR(out(&d, PF_BIRTHDATE), "");
    patron_rec_set(&d.m, PF_BIRTHDATE, "2009-10-05", 10, PV_VALUE);
    put_state(&d.m, PF_CARD_EXPIRES, "someday", PV_INVALID);
    CHECK(decide(&d, &c, 1) == 1);
    CHECK_STR(only_line(&d), "KEEP Card Expiration invalid; field left untouched.");
    CHECK_STR(out(&d, PF_CARD_EXPIRES), "2027-06-30");
    CHECK_STR(out(&d, PF_BIRTHDATE), "2009-10-05");
    CHECK(decide(&d, &c, 0) == 1);
    CHECK_STR(only_line(&d), "KEEP Card Expiration invalid; field left untouched.");
    CHECK_STR(out(&d, PF_CARD_EXPIRES), "");
    dec_free(&d);
}

static void gender_blank_or_invalid_is_unspecified(void)
{
    rules_ctx c = ctx_plain();
    const char *bad[] = {"", "X", "Mx", "2"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        for (int update = 0; update < 2; update++) {
            dec d;
            dec_init(&d);
            put(&d.m, PF_GENDER, bad[i]);
            CHECK(decide(&d, &c, update) == 1);
            CHECK_STR(only_line(&d), "DEFAULT Gender was blank or invalid; set to Unspecified.");
            CHECK_STR(out(&d, PF_GENDER), "U");
            CHECK(d.warned == 1);
            dec_free(&d);
        }
    }
    const char *good[][2] = {{"M", "M"}, {"f", "F"}, {"Female", "F"}, {"male", "M"}, {"U", "U"}, {"Unspecified", "U"}};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        dec d;
        dec_init(&d);
        put(&d.m, PF_GENDER, good[i][0]);
        CHECK(decide(&d, &c, 0) == 1);
        CHECK(d.exc.n == 0);
        CHECK_STR(out(&d, PF_GENDER), good[i][1]);
        dec_free(&d);
    }
    dec d;
    dec_init(&d);
    put_state(&d.m, PF_GENDER, "", PV_OMIT);
    CHECK(decide(&d, &c, 0) == 1); /* omitted for a new patron: a blank the file gave */
    CHECK_STR(only_line(&d), "DEFAULT Gender was blank or invalid; set to Unspecified.");
    CHECK(decide(&d, &c, 1) == 1); /* omitted for an update: kept */
    CHECK(d.exc.n == 0);
    CHECK_STR(out(&d, PF_GENDER), "F");
    dec_free(&d);
}

static void status_blank_or_unknown_is_active(void)
{
    rules_ctx c = ctx_plain();
    const char *bad[] = {"", "Z", "Gone"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        for (int update = 0; update < 2; update++) {
            dec d;
            dec_init(&d);
            put(&d.m, PF_STATUS, bad[i]);
            put(&d.e, PF_STATUS, "I");
            CHECK(decide(&d, &c, update) == 1);
            CHECK_STR(only_line(&d), "DEFAULT Status was blank or unknown; set to Active.");
            CHECK_STR(out(&d, PF_STATUS), "A");
            dec_free(&d);
        }
    }
    const char *good[][2] = {{"A", "A"}, {"i", "I"}, {"R", "R"}, {"Inactive", "I"}, {"active", "A"},
                             {"Restricted", "R"}};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        dec d;
        dec_init(&d);
        put(&d.m, PF_STATUS, good[i][0]);
        CHECK(decide(&d, &c, 1) == 1);
        CHECK(d.exc.n == 0);
        CHECK_STR(out(&d, PF_STATUS), good[i][1]);
        dec_free(&d);
    }
}

static void graduation_year_invalid_left_blank(void)
{
    rules_ctx c = ctx_plain();
    const char *bad[] = {"20x7", "27", "12345", "1850", "2200"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        for (int update = 0; update < 2; update++) {
            dec d;
            dec_init(&d);
            put(&d.m, PF_GRADUATION_YEAR, bad[i]);
            CHECK(decide(&d, &c, update) == 1);
            CHECK_STR(only_line(&d), "BLANK Graduation Year invalid; field left blank.");
            CHECK_STR(out(&d, PF_GRADUATION_YEAR), "");
            CHECK(d.warned == 1);
            dec_free(&d);
        }
    }
    dec d;
    dec_init(&d);
    put(&d.m, PF_GRADUATION_YEAR, "2031");
    CHECK(decide(&d, &c, 1) == 1);
    CHECK(d.exc.n == 0);
    CHECK_STR(out(&d, PF_GRADUATION_YEAR), "2031");
    put(&d.m, PF_GRADUATION_YEAR, "");
    CHECK(decide(&d, &c, 1) == 1); /* blank clears, without a line */
    CHECK(d.exc.n == 0);
    CHECK_STR(out(&d, PF_GRADUATION_YEAR), "");
    dec_free(&d);
}

static void teaching_status_invalid_not_changed(void)
{
    rules_ctx c = ctx_plain();
    dec d;
    dec_init(&d);
    put(&d.m, PF_IS_TEACHER, "maybe");
    CHECK(decide(&d, &c, 1) == 1);
    CHECK_STR(only_line(&d),
              "KEEP Invalid Teaching Status. Expecting \"True\" or \"False\". Teaching status was not changed.");
    CHECK_STR(out(&d, PF_IS_TEACHER), "T");
    CHECK(d.warned == 1);
    CHECK(decide(&d, &c, 0) == 1);
    CHECK_STR(only_line(&d),
              "KEEP Invalid Teaching Status. Expecting \"True\" or \"False\". Teaching status was not changed.");
    CHECK_STR(out(&d, PF_IS_TEACHER), "");
    const char *vals[][2] = {{"True", "T"}, {"false", "F"}, {"Y", "T"}, {"n", "F"}, {"yes", "T"}, {"0", "F"}, {"", ""}};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        put(&d.m, PF_IS_TEACHER, vals[i][0]);
        CHECK(decide(&d, &c, 1) == 1);
        CHECK(d.exc.n == 0);
        CHECK_STR(out(&d, PF_IS_TEACHER), vals[i][1]);
    }
    put(&d.m, PF_IS_TEACHER, "T");
    put(&d.m, PF_IS_AUP_ON_FILE, "perhaps");
    CHECK(decide(&d, &c, 1) == 1);
    CHECK(d.exc.n == 1);
    CHECK_STR(d.exc.v[0]->outcome, "KEEP");
    CHECK_STR(out(&d, PF_IS_AUP_ON_FILE), "F");
    dec_free(&d);
}

/* ---- patron type, access level, resource group ---- */

static void patron_type_blank_uses_the_default(void)
{
    rules_ctx c = ctx_plain();
    dec d;
    dec_init(&d);
    put(&d.m, PF_PATRON_TYPE, "");
    CHECK(decide(&d, &c, 0) == 1);
    CHECK_STR(only_line(&d), "DEFAULT Patron Type was blank; used the default (Patron).");
    CHECK_STR(out(&d, PF_PATRON_TYPE), "Patron");
    CHECK(decide(&d, &c, 1) == 1);
    CHECK_STR(only_line(&d), "DEFAULT Patron Type was blank; used the default (Patron).");
    rules_ctx l = ctx_listed(); /* default "student": written as the list spells it */
    CHECK(decide(&d, &l, 0) == 1);
    CHECK_STR(only_line(&d), "DEFAULT Patron Type was blank; used the default (Student).");
    CHECK_STR(out(&d, PF_PATRON_TYPE), "Student");
    put_state(&d.m, PF_PATRON_TYPE, "", PV_OMIT);
    CHECK(decide(&d, &l, 0) == 1);
    CHECK_STR(only_line(&d), "DEFAULT Patron Type was blank; used the default (Student).");
    CHECK(decide(&d, &l, 1) == 1);
    CHECK(d.exc.n == 0);
    CHECK_STR(out(&d, PF_PATRON_TYPE), "Student");
    dec_free(&d);
}

static void patron_type_known_or_new(void)
{
    rules_ctx c = ctx_plain();
    dec d;
    dec_init(&d);
    put(&d.m, PF_PATRON_TYPE, "STAFF");
    CHECK(decide(&d, &c, 0) == 1);
    CHECK(d.exc.n == 0);
    CHECK_STR(out(&d, PF_PATRON_TYPE), "Staff");
    /* An unknown type is kept: it is created (with its line) when applied. */
    put(&d.m, PF_PATRON_TYPE, "Volunteer");
    CHECK(decide(&d, &c, 0) == 1);
    CHECK(d.exc.n == 0);
    CHECK_STR(out(&d, PF_PATRON_TYPE), "Volunteer");
    dec_free(&d);
}

static void access_level_defaults_per_site(void)
{
    rules_ctx c = ctx_plain();
    rules_ctx l = ctx_listed();
    dec d;
    dec_init(&d);
    /* given blank: the site's default, add and update */
    put(&d.m, PF_ACCESS_LEVEL, "");
    CHECK(decide(&d, &c, 0) == 1);
    CHECK_STR(only_line(&d), "DEFAULT Access level was not specified; using the default.");
    CHECK_STR(out(&d, PF_ACCESS_LEVEL), "Secondary Student");
    put(&d.e, PF_ACCESS_LEVEL, "Restricted");
    CHECK(decide(&d, &c, 1) == 1);
    CHECK_STR(only_line(&d), "DEFAULT Access level was not specified; using the default.");
    CHECK_STR(out(&d, PF_ACCESS_LEVEL), "Secondary Student");
    /* the default of the record's own site */
    put(&d.m, PF_SITE_SHORT_NAME, "DO");
    CHECK(decide(&d, &c, 0) == 1);
    CHECK_STR(out(&d, PF_ACCESS_LEVEL), "Staff");
    put(&d.m, PF_SITE_SHORT_NAME, "LES"); /* a site without a default: blank, still said */
    CHECK(decide(&d, &c, 0) == 1);
    CHECK_STR(only_line(&d), "DEFAULT Access level was not specified; using the default.");
    CHECK_STR(out(&d, PF_ACCESS_LEVEL), "");
    put(&d.m, PF_SITE_SHORT_NAME, "LHS");
    /* omitted: a new patron gets the default with the line; an update keeps */
    put_state(&d.m, PF_ACCESS_LEVEL, "", PV_OMIT);
    CHECK(decide(&d, &c, 0) == 1);
    CHECK_STR(only_line(&d), "DEFAULT Access level was not specified; using the default.");
    CHECK(decide(&d, &c, 1) == 1);
    CHECK(d.exc.n == 0);
    CHECK_STR(out(&d, PF_ACCESS_LEVEL), "Restricted");
    /* not listed: any value is taken as it is */
    put(&d.m, PF_ACCESS_LEVEL, "Anything Goes");
    CHECK(decide(&d, &c, 0) == 1);
    CHECK(d.exc.n == 0);
    CHECK_STR(out(&d, PF_ACCESS_LEVEL), "Anything Goes");
    /* listed: unknown is replaced by the default, known takes the list's spelling */
    CHECK(decide(&d, &l, 0) == 1);
    CHECK_STR(only_line(&d), "DEFAULT Access level (Anything Goes) was unknown; using the default.");
    CHECK_STR(out(&d, PF_ACCESS_LEVEL), "Secondary Student");
    CHECK(d.warned == 1);
    CHECK(decide(&d, &l, 1) == 1);
    CHECK_STR(only_line(&d), "DEFAULT Access level (Anything Goes) was unknown; using the default.");
    put(&d.m, PF_ACCESS_LEVEL, "elementary student");
    CHECK(decide(&d, &l, 0) == 1);
    CHECK(d.exc.n == 0);
    CHECK_STR(out(&d, PF_ACCESS_LEVEL), "Elementary Student");
    dec_free(&d);
}

static void resource_group_defaults(void)
{
    rules_ctx c = ctx_plain();
    rules_ctx l = ctx_listed();
    dec d;
    dec_init(&d);
    /* not in use: no lines, values as given */
    put(&d.m, PF_RESOURCE_GROUP, "");
    CHECK(decide(&d, &c, 0) == 1);
    CHECK(d.exc.n == 0);
    put(&d.m, PF_RESOURCE_GROUP, "Whatever");
    CHECK(decide(&d, &c, 0) == 1);
    CHECK(d.exc.n == 0);
    CHECK_STR(out(&d, PF_RESOURCE_GROUP), "Whatever");
    /* in use */
    CHECK(decide(&d, &l, 0) == 1);
    CHECK_STR(only_line(&d), "DEFAULT Resource Group (Whatever) was unknown; using the default.");
    CHECK_STR(out(&d, PF_RESOURCE_GROUP), "Default Group");
    CHECK(decide(&d, &l, 1) == 1);
    CHECK_STR(only_line(&d), "DEFAULT Resource Group (Whatever) was unknown; using the default.");
    put(&d.m, PF_RESOURCE_GROUP, "");
    CHECK(decide(&d, &l, 0) == 1);
    CHECK_STR(only_line(&d), "DEFAULT Resource Group was not specified; using the default.");
    CHECK_STR(out(&d, PF_RESOURCE_GROUP), "Default Group");
    CHECK(decide(&d, &l, 1) == 1);
    CHECK_STR(only_line(&d), "DEFAULT Resource Group was not specified; using the default.");
    put(&d.m, PF_RESOURCE_GROUP, "high school");
    CHECK(decide(&d, &l, 0) == 1);
    CHECK(d.exc.n == 0);
    CHECK_STR(out(&d, PF_RESOURCE_GROUP), "High School");
    /* not mapped: a new patron gets the default quietly, an update keeps */
    d.m.state[PF_RESOURCE_GROUP] = PV_UNSET;
    CHECK(decide(&d, &l, 0) == 1);
    CHECK(d.exc.n == 0);
    CHECK_STR(out(&d, PF_RESOURCE_GROUP), "Default Group");
    CHECK(decide(&d, &l, 1) == 1);
    CHECK_STR(out(&d, PF_RESOURCE_GROUP), "High School");
    dec_free(&d);
}

/* ---- matching ---- */

static const char *match(const rules_ctx *c, patron_rec *m, const char **key)
{
    static char buf[600];
    exc_list exc;
    exc_list_init(&exc);
    int r = rules_match_key(c, 3, m, key, &exc);
    if (r == 1)
        snprintf(buf, sizeof(buf), "key %s", *key);
    else if (exc.n == 1)
        snprintf(buf, sizeof(buf), "%s %s", exc.v[0]->outcome, exc.v[0]->message);
    else
        snprintf(buf, sizeof(buf), "(%zu lines)", exc.n);
    exc_list_free(&exc);
    return buf;
}

static void match_on_district_id(void)
{
    rules_ctx c = ctx_plain();
    patron_rec m;
    patron_rec_init(&m);
    base_mapped(&m);
    const char *key = NULL;
    CHECK_STR(match(&c, &m, &key), "key 1001");
    put(&m, PF_DISTRICT_ID, "");
    CHECK_STR(match(&c, &m, &key), "SKIP District ID is required.");
    put_state(&m, PF_DISTRICT_ID, "", PV_OMIT);
    CHECK_STR(match(&c, &m, &key), "SKIP District ID is required.");
    put(&m, PF_DISTRICT_ID, "12345678901234567890123456789012345678901");
    CHECK_STR(match(&c, &m, &key), "SKIP Unable to match using District ID; District ID "
                                   "'12345678901234567890123456789012345678901' exceeds maximum length of 40 characters.");
    put(&m, PF_DISTRICT_ID, "1234567890123456789012345678901234567890");
    CHECK_STR(match(&c, &m, &key), "key 1234567890123456789012345678901234567890");
    patron_rec_free(&m);
}

static void match_on_barcode_and_site(void)
{
    rules_ctx c = ctx_plain();
    c.match_district_id = 0;
    patron_rec m;
    patron_rec_init(&m);
    base_mapped(&m);
    const char *key = NULL;
    CHECK_STR(match(&c, &m, &key), "key P1001");
    CHECK_STR(rules_record_site(&c, &m), "LHS");
    put(&m, PF_DISTRICT_ID, ""); /* not needed here */
    CHECK_STR(match(&c, &m, &key), "key P1001");
    put(&m, PF_BARCODE, "");
    CHECK_STR(match(&c, &m, &key), "SKIP No barcode match criteria specified.");
    put(&m, PF_SITE_SHORT_NAME, "");
    CHECK_STR(match(&c, &m, &key), "SKIP No match criteria specified.");
    put(&m, PF_BARCODE, "P1001");
    CHECK_STR(match(&c, &m, &key), "SKIP No site short name match criteria specified.");
    c.site_default = "les";
    CHECK_STR(match(&c, &m, &key), "key P1001");
    CHECK_STR(rules_record_site(&c, &m), "LES");
    put(&m, PF_BARCODE, "123456789012345");
    CHECK_STR(match(&c, &m, &key), "SKIP Unable to match using barcode; barcode '123456789012345' exceeds maximum "
                                   "length of 14 characters.");
    put(&m, PF_BARCODE, "12345678901234");
    CHECK_STR(match(&c, &m, &key), "key 12345678901234");
    patron_rec_free(&m);
}

/* ---- user names, passwords ---- */

static void duplicate_user_name_keeps_the_stored_one(void)
{
    rules_ctx c = ctx_plain();
    dec d;
    dec_init(&d);
    put(&d.m, PF_USERNAME, "emma.a");
    CHECK(decide(&d, &c, 1) == 1);
    CHECK(rules_username_changed(&d.out, &d.e) == 1);
    int warned = 0;
    CHECK(rules_keep_username(7, &d.out, &d.e, &d.exc, &warned) == 0);
    CHECK_STR(only_line(&d), "KEEP Duplicates another patron's user name 'emma.a'.");
    CHECK_STR(out(&d, PF_USERNAME), "eadams");
    CHECK(warned == 1);
    CHECK(decide(&d, &c, 0) == 1);
    CHECK(rules_username_changed(&d.out, NULL) == 1);
    CHECK(rules_keep_username(7, &d.out, NULL, &d.exc, &warned) == 0);
    CHECK_STR(only_line(&d), "KEEP Duplicates another patron's user name 'emma.a'.");
    CHECK_STR(out(&d, PF_USERNAME), "");
    put(&d.m, PF_USERNAME, "eadams");
    CHECK(decide(&d, &c, 1) == 1);
    CHECK(rules_username_changed(&d.out, &d.e) == 0);
    put(&d.m, PF_USERNAME, "");
    CHECK(decide(&d, &c, 0) == 1);
    CHECK(rules_username_changed(&d.out, NULL) == 0);
    dec_free(&d);
}

static void passwords_are_hashed_and_kept_when_unchanged(void)
{
    rules_ctx c = ctx_plain();
    dec d;
    dec_init(&d);
    put(&d.m, PF_PASSWORD, "correct horse");
    CHECK(decide(&d, &c, 0) == 1);
    CHECK(d.exc.n == 0);
    const char *h = out(&d, PF_PASSWORD);
    CHECK(strncmp(h, "$argon2id$", 10) == 0);
    CHECK(strstr(h, "correct") == NULL);
    CHECK(crypto_pwhash_str_verify(h, "correct horse", 13) == 0);
    /* the stored hash verifies the same password: kept as it is (unchanged record) */
    put(&d.e, PF_PASSWORD, h);
    char first[crypto_pwhash_STRBYTES];
    str_copy(first, sizeof(first), h);
    CHECK(decide(&d, &c, 1) == 1);
    CHECK_STR(out(&d, PF_PASSWORD), first);
    CHECK(d.exc.n == 0);
    /* a new password: a new hash */
    put(&d.m, PF_PASSWORD, "battery staple");
    CHECK(decide(&d, &c, 1) == 1);
    CHECK(strcmp(out(&d, PF_PASSWORD), first) != 0);
    CHECK(crypto_pwhash_str_verify(out(&d, PF_PASSWORD), "battery staple", 14) == 0);
    /* not mapped: the stored hash stays, never cut to 50 */
    d.m.state[PF_PASSWORD] = PV_UNSET;
    CHECK(decide(&d, &c, 1) == 1);
    CHECK_STR(out(&d, PF_PASSWORD), first);
    CHECK(d.exc.n == 0);
    /* too long: cut to 50 characters, then hashed */
    char longpw[80];
    memset(longpw, 'p', 51);
    longpw[51] = '\0';
    put(&d.m, PF_PASSWORD, longpw);
    CHECK(decide(&d, &c, 1) == 1);
    CHECK_STR(only_line(&d), "TRUNC Password too long; shortened to fit.");
    CHECK(crypto_pwhash_str_verify(out(&d, PF_PASSWORD), longpw, 50) == 0);
    /* blank clears */
    put(&d.m, PF_PASSWORD, "");
    CHECK(decide(&d, &c, 1) == 1);
    CHECK_STR(out(&d, PF_PASSWORD), "");
    /* the helper on its own */
    char hh[crypto_pwhash_STRBYTES];
    CHECK(rules_password_hash("x", "not a hash", hh, sizeof(hh)) == 0);
    CHECK(crypto_pwhash_str_verify(hh, "x", 1) == 0);
    char small[10];
    CHECK(rules_password_hash("x", NULL, small, sizeof(small)) == -1);
    dec_free(&d);
}

static void several_warnings_on_one_record(void)
{
    rules_ctx c = ctx_listed();
    dec d;
    dec_init(&d);
    put(&d.m, PF_GENDER, "");
    put(&d.m, PF_STATUS, "?");
    put(&d.m, PF_GRADUATION_YEAR, "soon");
    put(&d.m, PF_ACCESS_LEVEL, "VIP");
    put_state(&d.m, PF_BIRTHDATE, "99/99/99", PV_INVALID);
    put(&d.m, PF_NICKNAME, "A nickname that is far too long to fit");
    CHECK(decide(&d, &c, 0) == 1);
    CHECK(d.exc.n == 6);
    const char *want[] = {"KEEP", "DEFAULT", "DEFAULT", "BLANK", "DEFAULT", "TRUNC"};
    for (size_t i = 0; i < d.exc.n && i < 6; i++)
        CHECK_STR(d.exc.v[i]->outcome, want[i]);
    CHECK(d.warned == 1);
    dec_free(&d);
}

static void exc_truncate_drops_lines(void)
{
    exc_list l;
    exc_list_init(&l);
    exc_add(&l, 1, "a", "n", "TRUNC", "one");
    exc_add(&l, 1, "a", "n", "KEEP", "two %d", 2);
    exc_add(&l, 2, "b", "n", "SKIP", "three");
    exc_truncate(&l, 1);
    CHECK(l.n == 1);
    CHECK_STR(l.v[0]->message, "one");
    exc_truncate(&l, 5);
    CHECK(l.n == 1);
    exc_list_free(&l);
}

/* ---- the store functions of the rules ---- */

static store *temp_store(char *path, size_t len)
{
    snprintf(path, len, "/tmp/test_rules.%d.db", (int)getpid());
    unlink(path);
    char err[ERRLEN];
    store *s = store_open(path, 8, 0, err, sizeof(err));
    if (s == NULL)
        printf("FAIL %s: store_open: %s\n", t_case, err);
    return s;
}

static void drop_store(store **s, const char *path)
{
    store_close(s);
    char p[300];
    unlink(path);
    snprintf(p, sizeof(p), "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", path);
    unlink(p);
}

/* A temporary store and r as base_existing (r initialised here). NULL,
 * r freed, the case failed, when the store cannot be made. */
static store *store_and_base(char *path, size_t len, patron_rec *r)
{
    patron_rec_init(r);
    base_existing(r);
    store *s = temp_store(path, len);
    CHECK(s != NULL);
    if (s == NULL)
        patron_rec_free(r);
    return s;
}

static void store_reference_data(void)
{
    char path[256], err[ERRLEN];
    store *s = temp_store(path, sizeof(path));
    CHECK(s != NULL);
    if (s == NULL)
        return;
    CHECK(store_ref_add(s, STORE_REF_PATRON_TYPE, "Student", "job1", err, sizeof(err)) == 1);
    CHECK(store_ref_add(s, STORE_REF_PATRON_TYPE, "STUDENT", "job2", err, sizeof(err)) == 0);
    CHECK(store_ref_add(s, STORE_REF_PATRON_TYPE, "Staff", NULL, err, sizeof(err)) == 1);
    char canon[64];
    CHECK(store_ref_canonical(s, STORE_REF_PATRON_TYPE, "student", canon, sizeof(canon), err, sizeof(err)) == 1);
    CHECK_STR(canon, "Student");
    CHECK(store_ref_canonical(s, STORE_REF_PATRON_TYPE, "Teacher", canon, sizeof(canon), err, sizeof(err)) == 0);
    CHECK(store_ref_add(s, STORE_REF_ACCESS_LEVEL, "Staff", "job1", err, sizeof(err)) == 1);
    CHECK(store_ref_add(s, STORE_REF_RESOURCE_GROUP, "Main", NULL, err, sizeof(err)) == 1);
    char **names = NULL;
    size_t n = 0;
    CHECK(store_ref_names(s, STORE_REF_PATRON_TYPE, &names, &n, err, sizeof(err)) == 0);
    CHECK(n == 2);
    if (n == 2) {
        CHECK_STR(names[0], "Staff");
        CHECK_STR(names[1], "Student");
    }
    store_names_free(names, n);
    char dflt[64];
    CHECK(store_ref_default(s, STORE_REF_PATRON_TYPE, dflt, sizeof(dflt), err, sizeof(err)) == 0);
    CHECK_STR(dflt, "");
    CHECK(store_ref_set_default(s, STORE_REF_PATRON_TYPE, "student", err, sizeof(err)) == 0);
    CHECK(store_ref_default(s, STORE_REF_PATRON_TYPE, dflt, sizeof(dflt), err, sizeof(err)) == 0);
    CHECK_STR(dflt, "Student");
    CHECK(store_ref_set_default(s, STORE_REF_RESOURCE_GROUP, "Library", err, sizeof(err)) == 0);
    CHECK(store_ref_canonical(s, STORE_REF_RESOURCE_GROUP, "library", canon, sizeof(canon), err, sizeof(err)) == 1);
    CHECK(store_ref_set_default(s, STORE_REF_ACCESS_LEVEL, "x", err, sizeof(err)) == -1);

    CHECK(store_site_upsert(s, "LHS", "Lincoln High", 1, err, sizeof(err)) == 0);
    CHECK(store_site_set_access_level(s, "LHS", "Secondary Student", err, sizeof(err)) == 0);
    CHECK(store_site_set_access_level(s, "NOPE", "x", err, sizeof(err)) == -1);
    CHECK(strstr(err, "NOPE") != NULL);
    CHECK(store_site_upsert(s, "LHS", "Lincoln High School", 1, err, sizeof(err)) == 0); /* keeps the level */

    rules_ref ref;
    CHECK(rules_ref_load(&ref, s, err, sizeof(err)) == 0);
    CHECK(ref.nsites == 1 && ref.npatron_types == 2 && ref.naccess_levels == 1 && ref.nresource_groups == 2);
    if (ref.nsites == 1)
        CHECK_STR(ref.sites[0].default_access_level, "Secondary Student");
    CHECK_STR(ref.default_patron_type, "Student");
    CHECK_STR(ref.default_resource_group, "Library");
    rules_ctx c;
    rules_ctx_init(&c, &ref, 1, NULL);
    CHECK(rules_site(&c, "lhs") != NULL);
    CHECK(rules_site(&c, "XHS") == NULL);
    rules_ref_free(&ref);

    CHECK(store_homeroom_add(s, "LHS", "Room 12", "job1", err, sizeof(err)) == 1);
    CHECK(store_homeroom_add(s, "LHS", "room 12", "job1", err, sizeof(err)) == 0);
    CHECK(store_homeroom_add(s, "LES", "Room 12", "job1", err, sizeof(err)) == 1);
    drop_store(&s, path);
}

static void store_user_names_and_associations(void)
{
    char path[256], err[ERRLEN];
    patron_rec r;
    store *s = store_and_base(path, sizeof(path), &r);
    if (s == NULL)
        return;
    int64_t id1 = 0, id2 = 0;
    CHECK(store_insert(s, &r, "job1", 0, &id1, err, sizeof(err)) == 0);
    put(&r, PF_DISTRICT_ID, "1002");
    put(&r, PF_BARCODE, "P1002");
    put(&r, PF_USERNAME, "");
    CHECK(store_insert(s, &r, "job1", 0, &id2, err, sizeof(err)) == 0);
    CHECK(store_username_taken(s, "eadams", id2, err, sizeof(err)) == 1);
    CHECK(store_username_taken(s, "EAdams", id2, err, sizeof(err)) == 1); /* case does not make a new name */
    CHECK(store_username_taken(s, "eadams", id1, err, sizeof(err)) == 0); /* one's own */
    CHECK(store_username_taken(s, "", id1, err, sizeof(err)) == 0);
    CHECK(store_username_taken(s, "nobody", 0, err, sizeof(err)) == 0);

    CHECK(store_assoc_has(s, id1, "LES", err, sizeof(err)) == 0);
    CHECK(store_assoc_add(s, id1, "LES", "job1", err, sizeof(err)) == 1);
    CHECK(store_assoc_add(s, id1, "LES", "job2", err, sizeof(err)) == 0);
    CHECK(store_assoc_add(s, id1, "DO", "job2", err, sizeof(err)) == 1);
    CHECK(store_assoc_has(s, id1, "LES", err, sizeof(err)) == 1);
    char **v = NULL;
    size_t n = 0;
    CHECK(store_assoc_list(s, id1, &v, &n, err, sizeof(err)) == 0);
    CHECK(n == 2);
    if (n == 2) {
        CHECK_STR(v[0], "DO");
        CHECK_STR(v[1], "LES");
    }
    store_names_free(v, n);
    CHECK(store_assoc_remove(s, id1, "DO", err, sizeof(err)) == 0);
    CHECK(store_assoc_has(s, id1, "DO", err, sizeof(err)) == 0);
    /* removed with the patron */
    CHECK(store_delete(s, id1, err, sizeof(err)) == 0);
    CHECK(t_sql_int(path, "SELECT count(*) FROM patron_sites") == 0);
    patron_rec_free(&r);
    drop_store(&s, path);
}

/* How often the store's statements whose SQL holds `has` (and not
 * `lacks`, when given) have run: which path a store function took. */
static int runs_of(store *s, const char *has, const char *lacks)
{
    return store_statement_runs(s, has, lacks);
}

/* store_memo_find with a place to look first: the same answer as without,
 * whether the first row from there holds the patron, another patron, a
 * patron without a District ID, or there is none (a deleted row skipped,
 * past the end); in a read transaction the index is used only when that
 * row is not the patron, and a walk following the rows seeks once; outside
 * a transaction the index answers. */
static void memo_find_near_gives_the_same_answer(void)
{
    char path[256], err[ERRLEN];
    patron_rec r;
    store *s = store_and_base(path, sizeof(path), &r);
    if (s == NULL)
        return;
    int64_t ids[5] = {0};
    const char *dids[5] = {"1001", "1002", "", "GONE", "1004"};
    for (int i = 0; i < 5; i++) {
        char bc[16];
        snprintf(bc, sizeof(bc), "P%d", i);
        put(&r, PF_DISTRICT_ID, dids[i]);
        put(&r, PF_BARCODE, bc);
        put(&r, PF_USERNAME, "");
        CHECK(store_insert(s, &r, "job1", 0, &ids[i], err, sizeof(err)) == 0);
    }
    CHECK(store_delete(s, ids[3], err, sizeof(err)) == 0);
    CHECK(store_exec(s, "UPDATE patrons SET src_hash=id*7", err, sizeof(err)) == 0);
    const char *keys[5] = {"1001", "1002", "1004", "9999", ""};
    int64_t nears[8] = {ids[0], ids[1], ids[2], ids[3], ids[4], ids[4] + 100, -5, 0};
    for (int txn = 0; txn < 2; txn++) {
        if (txn) {
            CHECK(store_begin(s, 0, err, sizeof(err)) == 0);
            CHECK(store_patrons_empty(s, err, sizeof(err)) == 0); /* the snapshot read */
        }
        for (int k = 0; k < 5; k++) {
            store_memo want;
            memset(&want, 0, sizeof(want));
            int rw = store_memo_find(s, keys[k], 0, &want, err, sizeof(err));
            CHECK(rw == (k < 3 ? 1 : 0));
            for (int n = 0; n < 8; n++) {
                store_memo got;
                memset(&got, 0, sizeof(got));
                int by_index = runs_of(s, "FROM patrons WHERE district_id=", NULL);
                int rg = store_memo_find(s, keys[k], nears[n], &got, err, sizeof(err));
                CHECK(rg == rw);
                /* the first row from near on (ids[3] is gone) holds the
                 * patron: in a transaction, the index is not used */
                int64_t first = 0;
                for (int i = 0; i < 5 && nears[n] > 0; i++)
                    if (i != 3 && ids[i] >= nears[n] && (first == 0 || ids[i] < first))
                        first = ids[i];
                int right = txn && rw == 1 && first == want.id;
                CHECK(runs_of(s, "FROM patrons WHERE district_id=", NULL) == by_index + (right ? 0 : 1));
                if (rg == 1 && rw == 1) {
                    CHECK(got.id == want.id && got.row_hash == want.row_hash && got.memo == want.memo);
                    CHECK(got.memo == (uint64_t)want.id * 7);
                    CHECK_STR(got.site, want.site);
                }
            }
        }
        if (txn) {
            /* a walk: each near the id after the patron found, one seek */
            int seeks = runs_of(s, "WHERE id>=", NULL), by_index = runs_of(s, "FROM patrons WHERE district_id=", NULL);
            store_memo a, b;
            CHECK(store_memo_find(s, "1001", 1, &a, err, sizeof(err)) == 1);
            CHECK(store_memo_find(s, "1002", a.id + 1, &b, err, sizeof(err)) == 1);
            CHECK(a.id == ids[0] && b.id == ids[1]);
            CHECK(runs_of(s, "WHERE id>=", NULL) == seeks + 1);
            CHECK(runs_of(s, "FROM patrons WHERE district_id=", NULL) == by_index);
            store_rollback(s);
        }
    }
    /* a transaction that writes: the walk is put down, the answer still right */
    CHECK(store_begin(s, 1, err, sizeof(err)) == 0);
    store_memo a, b;
    CHECK(store_memo_find(s, "1001", 1, &a, err, sizeof(err)) == 1);
    put(&r, PF_DISTRICT_ID, "1005");
    put(&r, PF_BARCODE, "P5");
    int64_t id5 = 0;
    CHECK(store_insert(s, &r, "job1", 0, &id5, err, sizeof(err)) == 0);
    CHECK(store_memo_find(s, "1005", ids[4] + 1, &b, err, sizeof(err)) == 1 && b.id == id5);
    CHECK(store_memo_find(s, "1002", a.id + 1, &b, err, sizeof(err)) == 1 && b.id == ids[1]);
    store_rollback(s);
    patron_rec_free(&r);
    drop_store(&s, path);
}

/* An update given the row it replaces: when no indexed field changes
 * (District ID, barcode, site, user name — a user name's case included),
 * the statement that sets no indexed column runs; every other field is
 * written and the keys still find the patron. A change to any of the four,
 * or no row given, sets every column, and a key moves. */
static void update_keeping_the_keys(void)
{
    char path[256], err[ERRLEN];
    patron_rec r, got, other;
    store *s = store_and_base(path, sizeof(path), &r);
    if (s == NULL)
        return;
    patron_rec_init(&got);
    patron_rec_init(&other);
    int64_t id = 0;
    CHECK(store_insert(s, &r, "job1", 0, &id, err, sizeof(err)) == 0);
    const char *narrow = ",updated_job=?", *keycol = "district_id=";
    const int keys[4] = {PF_DISTRICT_ID, PF_BARCODE, PF_SITE_SHORT_NAME, PF_USERNAME};
    const char *changed[4] = {"X1", "X1", "LES", "EAdams"};
    for (int k = 0; k < 4; k++) {
        base_existing(&other);
        put(&other, keys[k], changed[k]);
        int full = runs_of(s, narrow, NULL) - runs_of(s, narrow, keycol);
        CHECK(store_update(s, id, &other, &r, "job2", 0, err, sizeof(err)) == 0);
        CHECK(runs_of(s, narrow, NULL) - runs_of(s, narrow, keycol) == full + 1); /* every column set */
        store_patron_meta meta;
        CHECK(store_find(s, PF_BARCODE, patron_rec_get(&other, PF_BARCODE), &got, &meta, err, sizeof(err)) == 1);
        CHECK(meta.id == id);
        CHECK_STR(patron_rec_get(&got, keys[k]), changed[k]);
        CHECK(store_update(s, id, &r, NULL, "job2", 0, err, sizeof(err)) == 0); /* back, whole */
    }
    base_existing(&other);
    put(&other, PF_LAST_NAME, "Adams-Smith");
    put(&other, PF_HOMEROOM, "12");
    put(&other, PF_STATUS, "I");
    int kept = runs_of(s, narrow, keycol);
    CHECK(store_update(s, id, &other, &r, "job2", 0, err, sizeof(err)) == 0);
    CHECK(runs_of(s, narrow, keycol) == kept + 1); /* the indexed columns left alone */
    store_patron_meta meta;
    CHECK(store_find(s, PF_DISTRICT_ID, "1001", &got, &meta, err, sizeof(err)) == 1);
    CHECK(meta.id == id && meta.hash == patron_hash(&other));
    for (int f = 0; f < PF__COUNT; f++)
        CHECK_STR(patron_rec_get(&got, f), patron_rec_get(&other, f));
    CHECK(store_find(s, PF_BARCODE, "P1001", &got, &meta, err, sizeof(err)) == 1 && meta.id == id);
    CHECK(store_username_taken(s, "eadams", 0, err, sizeof(err)) == 1);
    /* no row given: every column set, the same result */
    kept = runs_of(s, narrow, keycol);
    CHECK(store_update(s, id, &other, NULL, "job3", 0, err, sizeof(err)) == 0);
    CHECK(runs_of(s, narrow, keycol) == kept);
    patron_rec_free(&r);
    patron_rec_free(&got);
    patron_rec_free(&other);
    drop_store(&s, path);
}

int main(void)
{
    T_RUN(add_clean_record_fills_defaults_silently);
    T_RUN(memo_find_near_gives_the_same_answer);
    T_RUN(update_keeping_the_keys);
    T_RUN(update_unmapped_fields_keep_stored);
    T_RUN(every_text_field_is_cut_with_its_label);
    T_RUN(truncation_counts_characters_not_bytes);
    T_RUN(site_required_and_must_exist);
    T_RUN(transfer_between_media_and_non_media_refused);
    T_RUN(last_name_required);
    T_RUN(barcode_required);
    T_RUN(invalid_dates_left_untouched);
    T_RUN(gender_blank_or_invalid_is_unspecified);
    T_RUN(status_blank_or_unknown_is_active);
    T_RUN(graduation_year_invalid_left_blank);
    T_RUN(teaching_status_invalid_not_changed);
    T_RUN(patron_type_blank_uses_the_default);
    T_RUN(patron_type_known_or_new);
    T_RUN(access_level_defaults_per_site);
    T_RUN(resource_group_defaults);
    T_RUN(match_on_district_id);
    T_RUN(match_on_barcode_and_site);
    T_RUN(duplicate_user_name_keeps_the_stored_one);
    T_RUN(passwords_are_hashed_and_kept_when_unchanged);
    T_RUN(several_warnings_on_one_record);
    T_RUN(exc_truncate_drops_lines);
    T_RUN(store_reference_data);
    T_RUN(store_user_names_and_associations);
    T_END();
}
