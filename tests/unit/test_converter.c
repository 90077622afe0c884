/* test_converter: the Patron Import Converter's library (lib/converter.h):
 * column typing, header detection, field proposals from the header names
 * of PowerSchool, Infinite Campus, Skyward and OneRoster exports and from
 * the values (dates and their pattern, gender codes, school numbers of the
 * sites given), the refusals of bad samples, and the text written read back
 * by the project's own profile parser. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "converter.h"
#include "patron.h"
#include "profile.h"
#include "t.h"
#include "util.h"

static char err[ERRLEN];

static converter *sample(const char *text, int header)
{
    err[0] = '\0';
    converter *c = conv_new(text, strlen(text), "UTF-8", "t.csv", header, err, sizeof(err));
    if (c == NULL)
        printf("  (conv_new: %s)\n", err);
    return c;
}

static converter *proposed(const char *text, int header)
{
    converter *c = sample(text, header);
    if (c != NULL && conv_propose(c) < 0)
        conv_destroy(&c);
    return c;
}

static int field_of(const converter *c, int col)
{
    return c->cols[col - 1].field;
}

static const char *refused(const char *text)
{
    err[0] = '\0';
    converter *c = conv_new(text, strlen(text), "UTF-8", "t.csv", -1, err, sizeof(err));
    if (c != NULL) {
        conv_destroy(&c);
        return "(accepted)";
    }
    return err;
}

/* A small district export, PowerSchool's header names (digits in some). */
static const char *const powerschool =
    "Student_Number,Last_Name,First_Name,Grade_Level,SchoolID,Gender,DOB,Email,Home_Phone,Address2\n"
    "100234,Anderson,Benjamin,05,111,M,02/11/2016,banderson@s.example.org,(505) 555-9452,Apt 4\n"
    "100235,Baker,Chloe,K,112,F,12/10/2019,cbaker@s.example.org,(505) 555-8296,\n"
    "100236,Chavez,Diego,03,111,X,04/30/2017,dchavez@s.example.org,(505) 555-3836,Unit 2B\n"
    "100237,Dawson,Emma,05,113,F,04/18/2016,edawson@s.example.org,(505) 555-7431,\n"
    "100238,Estrada,Felipe,K,112,M,09/01/2019,festrada@s.example.org,(505) 555-1020,\n"
    "100239,Fischer,Grace,03,111,F,01/22/2017,gfischer@s.example.org,(505) 555-0093,\n";

static void typing(void)
{
    converter *c = sample(powerschool, -1);
    CHECK(c != NULL);
    if (c == NULL)
        return;
    CHECK(c->ncols == 10);
    CHECK(c->cols[0].kind == CK_NUMBER && c->cols[0].unique);
    CHECK(c->cols[1].kind == CK_NAME);
    CHECK(c->cols[3].kind == CK_CODE && c->cols[3].ndistinct == 3);
    CHECK(c->cols[5].kind == CK_CODE);
    CHECK(c->cols[6].kind == CK_DATE);
    CHECK_STR(c->cols[6].date_format, "MM/dd/yyyy");
    CHECK(c->cols[7].kind == CK_EMAIL);
    CHECK(c->cols[8].kind == CK_PHONE);
    char d[128];
    conv_describe_column(&c->cols[6], d, sizeof(d));
    CHECK_STR(d, "date MM/dd/yyyy");
    conv_destroy(&c);
    CHECK(c == NULL);

    c = sample("id,born,expires,stamp\n1,2016-02-11,20310630,15.06.2012\n2,2019-12-01,20300630,01.02.2013\n"
               "3,2017-04-30,20290630,30.12.2011\n",
               -1);
    CHECK(c != NULL);
    if (c != NULL) {
        CHECK_STR(c->cols[1].date_format, "yyyy-MM-dd");
        CHECK_STR(c->cols[2].date_format, "yyyyMMdd");
        CHECK_STR(c->cols[3].date_format, "dd.MM.yyyy");
        conv_destroy(&c);
    }
    /* a day past 12 in the first place: day first */
    c = sample("a,b\nx,25/12/2016\ny,03/01/2017\n", 1);
    CHECK(c != NULL && strcmp(c->cols[1].date_format, "dd/MM/yyyy") == 0);
    conv_destroy(&c);
}

static void header_detection(void)
{
    converter *c = sample(powerschool, -1);
    CHECK(c != NULL && c->header == 1);
    CHECK(c != NULL && strcmp(c->cols[9].header, "Address2") == 0);
    conv_destroy(&c);
    /* the same rows without the header row */
    c = sample(strchr(powerschool, '\n') + 1, -1);
    CHECK(c != NULL && c->header == 0);
    CHECK(c != NULL && c->cols[0].header == NULL && c->cols[0].rows == 6);
    conv_destroy(&c);
    /* names with digits over text columns, nothing a known name */
    c = sample("Addr_Line2,Grade_Lvl9,Col3\n12 Main St,09,x1\n4 Elm Rd,10,x2\n9 Oak Ave,09,x3\n", -1);
    CHECK(c != NULL && c->header == 1);
    conv_destroy(&c);
    /* a first row that is a record of words over words */
    c = sample("Smith,John,05\nJones,Mary,03\nBrown,Ann,05\nLee,Tom,03\n", -1);
    CHECK(c != NULL && c->header == 0);
    conv_destroy(&c);
    /* forced either way */
    c = sample(powerschool, 0);
    CHECK(c != NULL && c->header == 0 && c->cols[0].rows == 7);
    conv_destroy(&c);
}

static void names_powerschool(void)
{
    converter *c = proposed(powerschool, -1);
    CHECK(c != NULL);
    if (c == NULL)
        return;
    CHECK(field_of(c, 1) == PF_DISTRICT_ID);
    CHECK(field_of(c, 2) == PF_LAST_NAME);
    CHECK(field_of(c, 3) == PF_FIRST_NAME);
    CHECK(field_of(c, 4) == PF_GRADE_LEVEL);
    CHECK(field_of(c, 5) == PF_SITE_SHORT_NAME);
    CHECK(field_of(c, 6) == PF_GENDER);
    CHECK(field_of(c, 7) == PF_BIRTHDATE);
    CHECK(field_of(c, 8) == PF_EMAIL_PRIMARY);
    CHECK(field_of(c, 9) == PF_ADDR1_PHONE1);
    CHECK(field_of(c, 10) == PF_ADDR1_LINE2);
    CHECK(strstr(c->cols[0].reason, "Student_Number") != NULL);
    CHECK(strstr(c->cols[0].reason, "PowerSchool") != NULL);
    CHECK(c->match_district_id == 1);
    CHECK(c->nrules[PR_SKIP] == 1 && c->rules[PR_SKIP][0].field == PF_DISTRICT_ID);
    /* no sites known: the site values are taken as given, and said so */
    CHECK(conv_map_of(c, PF_SITE_SHORT_NAME) == NULL);
    CHECK(strstr(sb_str(&c->notes), "site maps could not be checked") != NULL);
    conv_destroy(&c);
}

static void names_other_systems(void)
{
    /* Infinite Campus */
    converter *c = proposed("studentNumber,lastName,firstName,grade,schoolNumber,birthDate,gender,homeroomTeacher\n"
                            "5001,Ortiz,Ana,09,30,2009-03-04,F,Smith\n5002,Park,Ben,10,30,2008-05-06,M,Jones\n"
                            "5003,Quinn,Cal,09,31,2009-07-08,M,Smith\n",
                            -1);
    CHECK(c != NULL);
    if (c != NULL) {
        CHECK(field_of(c, 1) == PF_DISTRICT_ID && strstr(c->cols[0].reason, "Infinite Campus"));
        CHECK(field_of(c, 2) == PF_LAST_NAME && field_of(c, 3) == PF_FIRST_NAME);
        CHECK(field_of(c, 4) == PF_GRADE_LEVEL && field_of(c, 5) == PF_SITE_SHORT_NAME);
        CHECK(field_of(c, 6) == PF_BIRTHDATE && field_of(c, 7) == PF_GENDER && field_of(c, 8) == PF_HOMEROOM);
        conv_destroy(&c);
    }
    /* Skyward */
    c = proposed("Student ID,Last Name,First Name,Middle Name,Grade,Entity ID,Birthdate,Student Email\n"
                 "77001,Reyes,Dora,Mae,06,201,06/07/2013,dreyes@x.org\n"
                 "77002,Soto,Eli,,07,201,08/09/2012,esoto@x.org\n",
                 -1);
    CHECK(c != NULL);
    if (c != NULL) {
        CHECK(field_of(c, 1) == PF_DISTRICT_ID && field_of(c, 2) == PF_LAST_NAME && field_of(c, 3) == PF_FIRST_NAME);
        CHECK(field_of(c, 4) == PF_MIDDLE_NAME && field_of(c, 5) == PF_GRADE_LEVEL);
        CHECK(field_of(c, 6) == PF_SITE_SHORT_NAME && strstr(c->cols[5].reason, "Skyward"));
        CHECK(field_of(c, 7) == PF_BIRTHDATE && field_of(c, 8) == PF_EMAIL_PRIMARY);
        conv_destroy(&c);
    }
    /* OneRoster users.csv: identifier is the SIS number; sourcedId is left out */
    c = proposed("sourcedId,orgSourcedIds,role,username,givenName,familyName,identifier,email,grades\n"
                 "a1b2-c3,org-1,student,ana.o,Ana,Ortiz,5001,ana@x.org,09\n"
                 "d4e5-f6,org-1,teacher,ben.p,Ben,Park,5002,ben@x.org,\n"
                 "g7h8-i9,org-2,student,cal.q,Cal,Quinn,5003,cal@x.org,10\n",
                 -1);
    CHECK(c != NULL);
    if (c != NULL) {
        CHECK(field_of(c, 7) == PF_DISTRICT_ID && strstr(c->cols[6].reason, "OneRoster"));
        CHECK(field_of(c, 1) == -1);
        CHECK(field_of(c, 2) == PF_SITE_SHORT_NAME && field_of(c, 3) == PF_PATRON_TYPE);
        CHECK(field_of(c, 4) == PF_USERNAME && field_of(c, 5) == PF_FIRST_NAME && field_of(c, 6) == PF_LAST_NAME);
        CHECK(field_of(c, 8) == PF_EMAIL_PRIMARY && field_of(c, 9) == PF_GRADE_LEVEL);
        conv_destroy(&c);
    }
}

static void values_proposals(void)
{
    /* no header: every field from the values */
    converter *c = sample(strchr(powerschool, '\n') + 1, -1);
    CHECK(c != NULL);
    if (c == NULL)
        return;
    CHECK(conv_add_site(c, "ALAMEDA", "111", "Alameda Elementary", 1) == 0);
    CHECK(conv_add_site(c, "BOSQUEV", "", "", 1) == 0);
    CHECK(conv_add_site(c, "BOSQUEV", "112", "Bosque Verde", 1) == 0); /* the number filled in */
    CHECK(conv_add_site(c, "CANYONW", "0113", "", 1) == 0);
    CHECK(c->nsites == 3);
    CHECK(conv_propose(c) == 0);
    CHECK(field_of(c, 1) == PF_DISTRICT_ID);
    CHECK(field_of(c, 2) == PF_LAST_NAME && field_of(c, 3) == PF_FIRST_NAME);
    CHECK(field_of(c, 4) == PF_GRADE_LEVEL);
    CHECK(field_of(c, 5) == PF_SITE_SHORT_NAME);
    CHECK(strstr(c->cols[4].reason, "school numbers of the store's sites") != NULL);
    CHECK(field_of(c, 6) == PF_GENDER);
    CHECK(field_of(c, 7) == PF_BIRTHDATE && strstr(c->cols[6].reason, "MM/dd/yyyy") != NULL);
    CHECK(field_of(c, 8) == PF_EMAIL_PRIMARY);
    const conv_map *m = conv_map_of(c, PF_SITE_SHORT_NAME);
    CHECK(m != NULL && m->n == 3);
    if (m != NULL && m->n == 3) {
        CHECK_STR(m->v[0].from, "111");
        CHECK_STR(m->v[0].to, "ALAMEDA");
        CHECK_STR(m->v[2].from, "113");
        CHECK_STR(m->v[2].to, "CANYONW"); /* leading zeros aside */
    }
    const conv_map *g = conv_map_of(c, PF_GENDER);
    CHECK(g != NULL && g->def != NULL && strcmp(g->def, "U") == 0);
    int x = 0;
    for (size_t i = 0; g != NULL && i < g->n; i++)
        x += strcmp(g->v[i].from, "X") == 0 && strcmp(g->v[i].to, "U") == 0;
    CHECK(x == 1);
    conv_destroy(&c);

    /* site short names as the values: no map needed */
    c = sample("id,site\n1,ALAMEDA\n2,BOSQUEV\n3,ALAMEDA\n4,BOSQUEV\n", 1);
    CHECK(c != NULL);
    if (c != NULL) {
        conv_add_site(c, "ALAMEDA", "", "", 1);
        conv_add_site(c, "BOSQUEV", "", "", 1);
        CHECK(conv_propose(c) == 0);
        CHECK(field_of(c, 2) == PF_SITE_SHORT_NAME && conv_map_of(c, PF_SITE_SHORT_NAME) == NULL);
        conv_destroy(&c);
    }
}

static void sites_csv(void)
{
    converter *c = sample(powerschool, -1);
    CHECK(c != NULL);
    if (c == NULL)
        return;
    const char *sites = "short_name,name,media,school_number\nALAMEDA,Alameda,true,111\nBOSQUEV,Bosque,true,112\n";
    CHECK(conv_sites_from_csv(c, sites, strlen(sites), "sites.csv", err, sizeof(err)) == 2);
    CHECK(conv_sites_from_csv(c, "a,b\n1,2\n", 8, "bad.csv", err, sizeof(err)) == -1);
    CHECK(strstr(err, "bad.csv:1") != NULL);
    CHECK(conv_propose(c) == 0);
    const conv_map *m = conv_map_of(c, PF_SITE_SHORT_NAME);
    CHECK(m != NULL && m->n == 2);
    CHECK(strstr(sb_str(&c->notes), "113") != NULL); /* no site has it */
    CHECK(strstr(sb_str(&c->notes), "could not be checked against a store") != NULL);
    conv_destroy(&c);
}

static void choices(void)
{
    converter *c = proposed(powerschool, -1);
    CHECK(c != NULL);
    if (c == NULL)
        return;
    CHECK(conv_set_field(c, 11, PF_LAST_NAME, NULL, err, sizeof(err)) == -1);
    CHECK(strstr(err, "column 11 is out of range") != NULL);
    CHECK(conv_set_field(c, 0, PF_LAST_NAME, NULL, err, sizeof(err)) == -1);
    /* moving a field leaves its old column without one */
    CHECK(conv_set_field(c, 3, PF_LAST_NAME, NULL, err, sizeof(err)) == 0);
    CHECK(field_of(c, 3) == PF_LAST_NAME && field_of(c, 2) == -1);
    CHECK(conv_field_column(c, PF_LAST_NAME) == 3);
    CHECK(conv_field_by_name("lastname") == PF_LAST_NAME);
    CHECK(conv_field_by_name("field_siteShortName") == PF_SITE_SHORT_NAME);
    CHECK(conv_field_by_name("site") == PF_SITE_SHORT_NAME);
    CHECK(conv_field_by_name("nosuch") == -1);
    CHECK(conv_map_value(c, PF_ACCESS_LEVEL, "a", "b", err, sizeof(err)) == -1);
    CHECK(conv_map_value(c, PF_SITE_SHORT_NAME, "111", "AL{1}", err, sizeof(err)) == -1);
    CHECK(conv_add_rule(c, PR_DELETE, "nosuch,1", err, sizeof(err)) == -1);
    CHECK(conv_add_rule(c, PR_DELETE, "{12},x", err, sizeof(err)) == -1);
    CHECK(conv_add_rule(c, PR_DELETE, "noComma", err, sizeof(err)) == -1);
    CHECK(conv_set_default(c, PF_ACCESS_LEVEL, "A,B", err, sizeof(err)) == -1);
    CHECK(conv_set_site_default(c, "WAYTOOLONGNAME", err, sizeof(err)) == -1);
    conv_destroy(&c);
}

static void bad_samples(void)
{
    CHECK(strstr(refused(""), "t.csv is empty") != NULL);
    CHECK(strstr(refused(" \r\n\n"), "is empty") != NULL);
    CHECK(strstr(refused("just,one\nrow"), "one column") == NULL); /* two columns, then one: ragged */
    CHECK(strstr(refused("a\nb\nc\n"), "one column only") != NULL);
    CHECK(strstr(refused("a,b,c\n1,2,3\n1,2\n"), "t.csv:3: 2 fields, but line 1 has 3") != NULL);
    CHECK(strstr(refused("a,b\n1,\"2\n"), "t.csv:2: unterminated quoted field") != NULL);
    CHECK(strstr(refused("Last_Name,First_Name\n"), "no record") != NULL);
    static const char bin[] = "PK\x03\x04\x00\x00\x01,\x02\n\x00\x00";
    converter *c = conv_new(bin, sizeof(bin) - 1, "windows-1252", "t.zip", -1, err, sizeof(err));
    CHECK(c == NULL && strstr(err, "t.zip is not a text file") != NULL);
    c = conv_new("a,b\n", 4, "no-such-enc", "t.csv", -1, err, sizeof(err));
    CHECK(c == NULL && strstr(err, "no-such-enc") != NULL);
}

static void encoding_guess(void)
{
    char why[160];
    CHECK_STR(conv_guess_encoding("\xEF\xBB\xBFid,x\n", 8, why, sizeof(why)), "UTF-8");
    CHECK_STR(conv_guess_encoding("id,Jos\xC3\xA9\n", 9, why, sizeof(why)), "UTF-8");
    CHECK_STR(conv_guess_encoding("id,Jos\xE9\n", 8, why, sizeof(why)), "windows-1252");
    CHECK_STR(conv_guess_encoding("\xFF\xFEi\0d\0", 6, why, sizeof(why)), "UTF-16LE");
    CHECK_STR(conv_guess_encoding("i\0d\0,\0x\0", 8, why, sizeof(why)), "UTF-16LE");
    /* a windows-1252 sample read without --encoding */
    const char *w = "id,last,first\n1,Jos\xE9,A\n2,Mu\xF1oz,B\n";
    converter *c = conv_new(w, strlen(w), NULL, "w.csv", -1, err, sizeof(err));
    CHECK(c != NULL && strcmp(c->encoding, "windows-1252") == 0);
    CHECK(c != NULL && strcmp(c->cells[1][1], "Jos\xC3\xA9") == 0);
    conv_destroy(&c);
}

/* The text written: parsed by the profile parser, and a record mapped
 * through it as the choices say. */
static void written_parses(void)
{
    converter *c = sample(powerschool, -1);
    CHECK(c != NULL);
    if (c == NULL)
        return;
    conv_add_site(c, "ALAMEDA", "111", "", 1);
    conv_add_site(c, "BOSQUEV", "112", "", 1);
    conv_add_site(c, "CANYONW", "113", "", 1);
    CHECK(conv_propose(c) == 0);
    CHECK(conv_map_value(c, PF_SITE_SHORT_NAME, "default", "ALAMEDA", err, sizeof(err)) == 0);
    CHECK(conv_set_default(c, PF_PATRON_TYPE, "Student", err, sizeof(err)) == 0);
    CHECK(conv_set_default(c, PF_ADDR1_LINE2, "none", err, sizeof(err)) == 0);
    CHECK(conv_add_rule(c, PR_DELETE, "{4},W", err, sizeof(err)) == 0);
    CHECK(conv_map_value(c, PF_GENDER, "we=ird:key", "F", err, sizeof(err)) == 0);
    size_t len;
    char *text = conv_write(c, "2026-01-01 00:00 UTC", &len, err, sizeof(err));
    CHECK(text != NULL && strlen(text) == len);
    if (text == NULL) {
        conv_destroy(&c);
        return;
    }
    CHECK(strstr(text, "# machine generated by patronctl profile new on 2026-01-01 00:00 UTC\n") != NULL);
    CHECK(strstr(text, "#COMMENTS_BEGIN\n") != NULL && strstr(text, "#COMMENTS_END\n") != NULL);
    CHECK(strstr(text, "\nInputRowsToSkip=1\n") != NULL);
    CHECK(strstr(text, "\nfield_siteShortName={5,map_site,omit}\n") != NULL);
    CHECK(strstr(text, "\nmap_site_111=ALAMEDA\n") != NULL);
    CHECK(strstr(text, "\nfield_type_7=date,MM/dd/yyyy\n") != NULL);
    CHECK(strstr(text, "\nfield_patronType=Student\n") != NULL);
    CHECK(strstr(text, "\nfield_addressPrimaryLine2=ISEMPTY({10},none)\n") != NULL);
    CHECK(strstr(text, "\nDeleteWhen_1={4},W\n") != NULL);
    profile *p = profile_parse(text, len, "conv.properties", err, sizeof(err));
    CHECK(p != NULL);
    if (p == NULL)
        printf("  (parse: %s)\n%s", err, text);
    if (p != NULL) {
        CHECK(profile_rows_to_skip(p) == 1 && profile_match_district_id(p) == 1);
        CHECK(profile_column_total(p) == 10);
        CHECK(profile_rule_count(p, PR_SKIP) == 1 && profile_rule_count(p, PR_DELETE) == 1);
        const char *cols[] = {"100236", "Chavez", "Diego", "03", "113", "X", "04/30/2017", "d@x.org", "", ""};
        size_t lens[10];
        for (int i = 0; i < 10; i++)
            lens[i] = strlen(cols[i]);
        patron_rec rec;
        patron_rec_init(&rec);
        CHECK(profile_map(p, cols, lens, 10, &rec, err, sizeof(err)) == 0);
        CHECK_STR(patron_rec_get(&rec, PF_DISTRICT_ID), "100236");
        CHECK_STR(patron_rec_get(&rec, PF_SITE_SHORT_NAME), "CANYONW");
        CHECK_STR(patron_rec_get(&rec, PF_GENDER), "U");
        CHECK_STR(patron_rec_get(&rec, PF_BIRTHDATE), "2017-04-30");
        CHECK_STR(patron_rec_get(&rec, PF_PATRON_TYPE), "Student");
        CHECK_STR(patron_rec_get(&rec, PF_ADDR1_LINE2), "none");
        CHECK(rec.state[PF_ADDR1_PHONE1] == PV_OMIT);
        cols[5] = "we=ird:key";
        lens[5] = strlen(cols[5]);
        cols[4] = "999";
        lens[4] = 3;
        CHECK(profile_map(p, cols, lens, 10, &rec, err, sizeof(err)) == 0);
        CHECK_STR(patron_rec_get(&rec, PF_GENDER), "F");
        CHECK_STR(patron_rec_get(&rec, PF_SITE_SHORT_NAME), "ALAMEDA");
        /* and in words */
        strbuf sb;
        sb_init(&sb);
        CHECK(profile_explain_field(p, PF_LAST_NAME, &sb) == 1);
        CHECK_STR(sb_str(&sb), "column 2, trimmed, left unchanged when empty");
        sb_reset(&sb);
        CHECK(profile_explain_field(p, PF_PATRON_TYPE, &sb) == 1);
        CHECK_STR(sb_str(&sb), "always \"Student\", trimmed");
        sb_reset(&sb);
        CHECK(profile_explain_field(p, PF_BIRTHDATE, &sb) == 1);
        CHECK(strstr(sb_str(&sb), "read as a date MM/dd/yyyy") != NULL);
        sb_reset(&sb);
        CHECK(profile_explain_field(p, PF_NICKNAME, &sb) == 0);
        sb_free(&sb);
        patron_rec_free(&rec);
        profile_destroy(&p);
    }
    free(text);
    conv_destroy(&c);
}

/* ---------------------------------------------------------------- whole files */

static const char *sample_dir(void)
{
    const char *d = getenv("SAMPLE_DIR");
    return d && *d ? d : "../../sample";
}

static char *slurp(const char *name, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", sample_dir(), name);
    char *b = file_read_all(path, 64u << 20, len, err, sizeof(err));
    if (b == NULL)
        printf("  (%s)\n", err);
    return b;
}

/* A field as a stored patron would see it: an omitted blank is a blank. */
static const char *seen(const patron_rec *r, int f)
{
    return r->state[f] == PV_OMIT || r->state[f] == PV_UNSET ? "" : patron_rec_get(r, f);
}

/* The repository's sample export (sample/day1.csv, windows-1252, read
 * without --encoding) with its sites file: the profile written maps every
 * one of its 3,000 records as the hand-written sample/students.properties
 * does, field by field. */
static void whole_sample_as_hand_written(void)
{
    size_t n, sn, hn;
    char *csv = slurp("day1.csv", &n), *sites = slurp("sites.csv", &sn), *hand = slurp("students.properties", &hn);
    converter *c = csv ? conv_new(csv, n, NULL, "day1.csv", -1, err, sizeof(err)) : NULL;
    CHECK(c != NULL && sites != NULL && hand != NULL);
    if (c == NULL || sites == NULL || hand == NULL)
        goto out;
    CHECK(c->header == 1 && c->nrows == 3001 && c->ncols == 22);
    CHECK_STR(c->encoding, "windows-1252");
    CHECK(conv_sites_from_csv(c, sites, sn, "sites.csv", err, sizeof(err)) == 50);
    CHECK(conv_propose(c) == 0);
    size_t len;
    char *text = conv_write(c, NULL, &len, err, sizeof(err));
    profile *mine = text ? profile_parse(text, len, "conv.properties", err, sizeof(err)) : NULL;
    profile *theirs = profile_parse(hand, hn, "students.properties", err, sizeof(err));
    CHECK(mine != NULL && theirs != NULL);
    if (mine != NULL && theirs != NULL) {
        patron_rec a, b;
        patron_rec_init(&a);
        patron_rec_init(&b);
        int differ = 0;
        for (size_t r = 1; r < c->nrows && differ < 5; r++) {
            const char *const *cols = (const char *const *)c->cells[r];
            size_t lens[22];
            for (int k = 0; k < 22; k++)
                lens[k] = strlen(cols[k]);
            CHECK(profile_map(mine, cols, lens, 22, &a, err, sizeof(err)) == 0);
            CHECK(profile_map(theirs, cols, lens, 22, &b, err, sizeof(err)) == 0);
            for (int f = 0; f < PF__COUNT; f++) {
                if (strcmp(seen(&a, f), seen(&b, f)) != 0 || (a.state[f] == PV_INVALID) != (b.state[f] == PV_INVALID)) {
                    printf("FAIL %s: row %zu %s: \"%s\" vs \"%s\"\n", t_case, r + 1, patron_fields[f].pic, seen(&a, f),
                           seen(&b, f));
                    t_case_failed = 1;
                    differ++;
                }
            }
            CHECK(profile_rule_matches(mine, PR_SKIP, &a, cols, lens, 22) ==
                  profile_rule_matches(theirs, PR_SKIP, &b, cols, lens, 22));
        }
        patron_rec_free(&a);
        patron_rec_free(&b);
    }
    profile_destroy(&mine);
    profile_destroy(&theirs);
    free(text);
out:
    conv_destroy(&c);
    free(csv);
    free(sites);
    free(hand);
}

static unsigned rnd(unsigned *x)
{
    *x = *x * 1103515245u + 12345u;
    return *x >> 16;
}

/* Rows of 2 to 5 cells of odd characters (quoted ones holding commas,
 * quotes and line ends), or raw bytes: refused with a message naming the
 * file, or described, proposed for and written as text the profile parser
 * takes; never a crash (the sanitized build runs this too). */
static void hostile_bytes(void)
{
    static const char cellch[] = "aZ19 -./@:=#!\\{}_\t\xc3\xa9\xff";
    static const char rawch[] = "ab1,,\"\"\n\r \t@/.-\x00\xff\xc3\xa9";
    unsigned x = 12345;
    char buf[4096];
    int accepted = 0;
    for (int round = 0; round < 300; round++) {
        size_t n = 0;
        if (round % 4 == 3) {
            for (n = 0; n < (size_t)(round % 37) * 16; n++)
                buf[n] = rawch[rnd(&x) % (sizeof(rawch) - 1)];
        } else {
            int ncols = 2 + (int)(rnd(&x) % 4), nrows = 1 + (int)(rnd(&x) % 12);
            for (int r = 0; r < nrows; r++) {
                for (int k = 0; k < ncols; k++) {
                    int quoted = rnd(&x) % 5 == 0, len = (int)(rnd(&x) % 9);
                    if (k)
                        buf[n++] = ',';
                    if (quoted)
                        buf[n++] = '"';
                    for (int i = 0; i < len; i++)
                        buf[n++] = cellch[rnd(&x) % (sizeof(cellch) - 1)];
                    if (quoted) {
                        memcpy(buf + n, ",\"\"\n\"", 5);
                        n += 5;
                    }
                }
                buf[n++] = '\n';
            }
        }
        converter *c = conv_new(buf, n, round % 2 ? "UTF-8" : NULL, "h.csv", round % 3 - 1, err, sizeof(err));
        if (c == NULL) {
            CHECK(strstr(err, "h.csv") != NULL);
            continue;
        }
        accepted++;
        CHECK(conv_propose(c) == 0);
        size_t len;
        char *text = conv_write(c, NULL, &len, err, sizeof(err));
        CHECK(text != NULL);
        profile *p = text ? profile_parse(text, len, "h.properties", err, sizeof(err)) : NULL;
        CHECK(p != NULL);
        if (p == NULL)
            printf("  (%s)\n%s", err, text);
        profile_destroy(&p);
        free(text);
        conv_destroy(&c);
    }
    CHECK(accepted >= 100);
}

int main(void)
{
    T_RUN(typing);
    T_RUN(header_detection);
    T_RUN(names_powerschool);
    T_RUN(names_other_systems);
    T_RUN(values_proposals);
    T_RUN(sites_csv);
    T_RUN(choices);
    T_RUN(bad_samples);
    T_RUN(encoding_guess);
    T_RUN(written_parses);
    T_RUN(whole_sample_as_hand_written);
    T_RUN(hostile_bytes);
    T_END();
}
