/* converter_propose: a patron field proposed for each column — from the
 * header names SIS exports commonly write (PowerSchool, Infinite Campus,
 * Skyward, OneRoster), then from what the values look like — and the maps
 * the chosen fields need (converter.h, docs/CONVERTER.md). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "converter_int.h"

/* ---------------------------------------------------------------- header names */

typedef struct {
    const char *name; /* lower case, letters and digits only */
    int field;
    int score;
    const char *who; /* whose exports write it */
} header_name;

static const header_name header_names[] = {
    {"studentnumber", PF_DISTRICT_ID, 90, "PowerSchool, Infinite Campus"},
    {"studentid", PF_DISTRICT_ID, 85, "Skyward and many SIS exports"},
    {"studentno", PF_DISTRICT_ID, 80, NULL},
    {"stunum", PF_DISTRICT_ID, 80, NULL},
    {"identifier", PF_DISTRICT_ID, 85, "OneRoster"},
    {"localid", PF_DISTRICT_ID, 70, NULL},
    {"sisid", PF_DISTRICT_ID, 75, NULL},
    {"permid", PF_DISTRICT_ID, 70, NULL},
    {"sourcedid", PF_DISTRICT_ID, 60, "OneRoster"},
    {"personid", PF_DISTRICT_ID, 60, "Infinite Campus"},
    {"employeeid", PF_DISTRICT_ID, 70, NULL},
    {"staffid", PF_DISTRICT_ID, 70, NULL},
    {"teachernumber", PF_DISTRICT_ID, 70, "PowerSchool"},
    {"otherid", PF_DISTRICT_ID, 50, "Skyward"},
    {"userid", PF_DISTRICT_ID, 55, NULL},
    {"id", PF_DISTRICT_ID, 50, NULL},
    {"librarybarcode", PF_BARCODE, 90, NULL},
    {"librarycard", PF_BARCODE, 85, NULL},
    {"librarycardnumber", PF_BARCODE, 90, NULL},
    {"cardnumber", PF_BARCODE, 70, NULL},
    {"lname", PF_LAST_NAME, 80, NULL},
    {"surname", PF_LAST_NAME, 85, NULL},
    {"familyname", PF_LAST_NAME, 90, "OneRoster"},
    {"last", PF_LAST_NAME, 60, NULL},
    {"fname", PF_FIRST_NAME, 80, NULL},
    {"givenname", PF_FIRST_NAME, 90, "OneRoster"},
    {"first", PF_FIRST_NAME, 60, NULL},
    {"mname", PF_MIDDLE_NAME, 80, NULL},
    {"middle", PF_MIDDLE_NAME, 60, NULL},
    {"middleinitial", PF_MIDDLE_NAME, 70, NULL},
    {"preferredname", PF_NICKNAME, 80, NULL},
    {"preferredfirstname", PF_NICKNAME, 80, NULL},
    {"role", PF_PATRON_TYPE, 70, "OneRoster"},
    {"usertype", PF_PATRON_TYPE, 75, NULL},
    {"persontype", PF_PATRON_TYPE, 70, NULL},
    {"schoolid", PF_SITE_SHORT_NAME, 90, "PowerSchool"},
    {"schoolnumber", PF_SITE_SHORT_NAME, 90, "Infinite Campus"},
    {"schoolcode", PF_SITE_SHORT_NAME, 85, NULL},
    {"school", PF_SITE_SHORT_NAME, 70, NULL},
    {"site", PF_SITE_SHORT_NAME, 80, NULL},
    {"sitecode", PF_SITE_SHORT_NAME, 80, NULL},
    {"building", PF_SITE_SHORT_NAME, 70, NULL},
    {"entityid", PF_SITE_SHORT_NAME, 80, "Skyward"},
    {"orgsourcedids", PF_SITE_SHORT_NAME, 75, "OneRoster"},
    {"homeroomteacher", PF_HOMEROOM, 80, "Infinite Campus"},
    {"advisory", PF_HOMEROOM, 60, NULL},
    {"grade", PF_GRADE_LEVEL, 90, "Infinite Campus, Skyward"},
    {"grades", PF_GRADE_LEVEL, 80, "OneRoster"},
    {"grd", PF_GRADE_LEVEL, 70, NULL},
    {"sex", PF_GENDER, 90, NULL},
    {"dob", PF_BIRTHDATE, 90, "PowerSchool"},
    {"dateofbirth", PF_BIRTHDATE, 90, NULL},
    {"birthday", PF_BIRTHDATE, 85, NULL},
    {"bdate", PF_BIRTHDATE, 75, NULL},
    {"gradyear", PF_GRADUATION_YEAR, 90, NULL},
    {"yog", PF_GRADUATION_YEAR, 80, NULL},
    {"yearofgraduation", PF_GRADUATION_YEAR, 85, NULL},
    {"schedyearofgraduation", PF_GRADUATION_YEAR, 90, "PowerSchool"},
    {"classof", PF_GRADUATION_YEAR, 75, NULL},
    {"cardexpiration", PF_CARD_EXPIRES, 90, NULL},
    {"expirationdate", PF_CARD_EXPIRES, 75, NULL},
    {"email", PF_EMAIL_PRIMARY, 90, "PowerSchool, OneRoster"},
    {"emailaddress", PF_EMAIL_PRIMARY, 90, NULL},
    {"studentemail", PF_EMAIL_PRIMARY, 85, "Skyward"},
    {"email1", PF_EMAIL_PRIMARY, 80, NULL},
    {"primaryemail", PF_EMAIL_PRIMARY, 90, NULL},
    {"schoolemail", PF_EMAIL_PRIMARY, 80, NULL},
    {"email2", PF_EMAIL_SECONDARY, 80, NULL},
    {"secondaryemail", PF_EMAIL_SECONDARY, 90, NULL},
    {"parentemail", PF_EMAIL_SECONDARY, 70, NULL},
    {"guardianemail", PF_EMAIL_SECONDARY, 70, NULL},
    {"login", PF_USERNAME, 70, NULL},
    {"loginid", PF_USERNAME, 80, NULL},
    {"networkid", PF_USERNAME, 75, NULL},
    {"studentwebid", PF_USERNAME, 70, "PowerSchool"},
    {"phone", PF_ADDR1_PHONE1, 80, NULL},
    {"homephone", PF_ADDR1_PHONE1, 85, "PowerSchool"},
    {"phonenumber", PF_ADDR1_PHONE1, 80, NULL},
    {"telephone", PF_ADDR1_PHONE1, 75, NULL},
    {"phone1", PF_ADDR1_PHONE1, 80, NULL},
    {"phone2", PF_ADDR1_PHONE2, 80, NULL},
    {"cellphone", PF_ADDR1_PHONE2, 60, NULL},
    {"address", PF_ADDR1_LINE1, 80, NULL},
    {"address1", PF_ADDR1_LINE1, 85, NULL},
    {"addressline1", PF_ADDR1_LINE1, 90, NULL},
    {"street", PF_ADDR1_LINE1, 80, NULL},
    {"streetaddress", PF_ADDR1_LINE1, 85, NULL},
    {"mailingstreet", PF_ADDR1_LINE1, 85, "PowerSchool"},
    {"homeaddress", PF_ADDR1_LINE1, 75, NULL},
    {"address2", PF_ADDR1_LINE2, 85, NULL},
    {"addressline2", PF_ADDR1_LINE2, 90, NULL},
    {"city", PF_ADDR1_CITY, 90, NULL},
    {"mailingcity", PF_ADDR1_CITY, 90, "PowerSchool"},
    {"state", PF_ADDR1_STATE, 85, NULL},
    {"mailingstate", PF_ADDR1_STATE, 90, "PowerSchool"},
    {"zip", PF_ADDR1_ZIP, 90, NULL},
    {"zipcode", PF_ADDR1_ZIP, 90, NULL},
    {"postalcode", PF_ADDR1_ZIP, 85, NULL},
    {"mailingzip", PF_ADDR1_ZIP, 90, "PowerSchool"},
    {"enrollstatus", PF_STATUS, 80, "PowerSchool"},
    {"enrollmentstatus", PF_STATUS, 75, NULL},
};

/* A header cell folded: lower case, letters and digits only. */
static void fold(const char *s, char *out, size_t outlen)
{
    size_t o = 0;
    for (; *s && o + 1 < outlen; s++)
        if (isalnum((unsigned char)*s))
            out[o++] = (char)tolower((unsigned char)*s);
    out[o] = '\0';
}

/* The field the folded name k names, its score and who writes it. */
static int lookup_folded(const char *k, int *score, const char **who)
{
    for (size_t i = 0; i < sizeof(header_names) / sizeof(header_names[0]); i++) {
        if (strcmp(header_names[i].name, k) == 0) {
            *score = header_names[i].score;
            *who = header_names[i].who;
            return header_names[i].field;
        }
    }
    char pic[64];
    for (int f = 0; f < PF__COUNT; f++) {
        fold(patron_fields[f].pic, pic, sizeof(pic));
        if (strcmp(pic, k) == 0) {
            *score = 95;
            *who = "Destiny";
            return f;
        }
    }
    return -1;
}

int conv_header_field(const char *header, int *score, char *why, size_t whylen)
{
    static const char *const prefixes[] = {"student", "stu", "mailing", "home", "primary", "legal", "staff", NULL};
    char k[128];
    int sc = 0;
    const char *who = NULL;
    fold(header, k, sizeof(k));
    int f = k[0] ? lookup_folded(k, &sc, &who) : -1;
    for (int i = 0; f < 0 && k[0] && prefixes[i]; i++) {
        size_t pl = strlen(prefixes[i]);
        if (strncmp(k, prefixes[i], pl) == 0 && k[pl] != '\0') {
            f = lookup_folded(k + pl, &sc, &who);
            sc -= 15;
        }
    }
    if (f < 0)
        return -1;
    if (score)
        *score = sc;
    if (why)
        snprintf(why, whylen, "header \"%s\" is a usual name for %s%s%s%s", header, patron_fields[f].label,
                 who ? " (" : "", who ? who : "", who ? ")" : "");
    return f;
}

/* ---------------------------------------------------------------- values */

/* A site the value names: by short name (*by_number 0) or by school
 * number, leading zeros aside (*by_number 1). NULL when none. */
static const conv_site *site_of(const converter *c, const char *v, int *by_number)
{
    for (size_t i = 0; i < c->nsites; i++) {
        if (strcasecmp(c->sites[i].short_name, v) == 0) {
            *by_number = 0;
            return &c->sites[i];
        }
    }
    const char *a = v;
    while (*a == '0' && a[1])
        a++;
    for (size_t i = 0; i < c->nsites; i++) {
        const char *b = c->sites[i].number;
        while (*b == '0' && b[1])
            b++;
        if (*b && strcmp(a, b) == 0) {
            *by_number = 1;
            return &c->sites[i];
        }
    }
    return NULL;
}

/* Whether every distinct value of col is in the list (any case). */
static int values_within(const conv_column *col, const char *const *list)
{
    if (col->kept == 0 || col->kept < col->ndistinct)
        return 0;
    for (size_t i = 0; i < col->kept; i++) {
        size_t j = 0;
        while (list[j] && strcasecmp(list[j], col->distinct[i].value) != 0)
            j++;
        if (list[j] == NULL)
            return 0;
    }
    return 1;
}

static const char *const gender_values[] = {"M", "F", "X", "U", "N", "O", "Male", "Female", "NB", "Nonbinary",
                                            "Unknown", NULL};
static const char *const grade_values[] = {"PK", "P", "PS", "TK", "K", "KG", "KN", "0", "1", "2", "3", "4",
                                           "5", "6", "7", "8", "9", "10", "11", "12", "13", "00", "01", "02",
                                           "03", "04", "05", "06", "07", "08", "09", "-1", "-2", NULL};
static const char *const type_values[] = {"Student", "Students", "Teacher", "Teachers", "Staff", "Faculty",
                                          "Administrator", "Admin", "Parent", "Guardian", "Substitute",
                                          "Aide", "Patron", "Employee", NULL};

typedef struct {
    int col, field, score;
    char why[256];
} candidate;

/* What col's values say it is (0: nothing). */
static int value_candidate(const converter *c, const conv_column *col, candidate *cd)
{
    char ex[128];
    conv_examples(col, 3, ex, sizeof(ex));
    cd->col = col->number;
    cd->field = -1;
    if (c->nsites > 0 && col->kept > 0 && col->kept == col->ndistinct) {
        size_t hit = 0, by_num = 0;
        for (size_t i = 0; i < col->kept; i++) {
            int bn = 0;
            if (site_of(c, col->distinct[i].value, &bn)) {
                hit++;
                by_num += (size_t)bn;
            }
        }
        if (hit > 0 && hit * 5 >= col->kept * 4) {
            cd->field = PF_SITE_SHORT_NAME;
            cd->score = 75;
            snprintf(cd->why, sizeof(cd->why), "%zu of its %zu values (%s) are %s of the %s", hit, col->kept, ex,
                     by_num ? "school numbers" : "short names", c->sites_checked ? "store's sites" : "sites given");
            return 1;
        }
    }
    struct {
        int ok, field, score;
        const char *what;
    } rules[] = {
        {col->kind == CK_CODE && values_within(col, gender_values), PF_GENDER, 60, "gender codes"},
        {col->kind == CK_CODE && col->kept >= 2 && values_within(col, grade_values), PF_GRADE_LEVEL, 55,
         "grade levels"},
        {col->kind == CK_CODE && values_within(col, type_values), PF_PATRON_TYPE, 55, "patron types"},
        {col->kind == CK_EMAIL, PF_EMAIL_PRIMARY, 50, "e-mail addresses"},
        {col->kind == CK_DATE && col->mean_year <= conv_year_now() - 2, PF_BIRTHDATE, 50, "dates in the past"},
        {col->kind == CK_DATE && col->mean_year > conv_year_now() - 2, PF_CARD_EXPIRES, 45, "dates to come"},
        {col->kind == CK_PHONE, PF_ADDR1_PHONE1, 45, "phone numbers"},
    };
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        if (!rules[i].ok)
            continue;
        cd->field = rules[i].field;
        cd->score = rules[i].score;
        if (cd->field == PF_BIRTHDATE || cd->field == PF_CARD_EXPIRES)
            snprintf(cd->why, sizeof(cd->why), "its values (%s) are %s, pattern %s", ex, rules[i].what,
                     col->date_format);
        else
            snprintf(cd->why, sizeof(cd->why), "its values (%s) are %s", ex, rules[i].what);
        return 1;
    }
    return 0;
}

/* ---------------------------------------------------------------- proposing */

static int cand_cmp(const void *a, const void *b)
{
    const candidate *x = a, *y = b;
    if (x->score != y->score)
        return y->score - x->score;
    return x->col - y->col;
}

static void assign(converter *c, int col, int field, int score, const char *why)
{
    conv_column *k = &c->cols[col - 1];
    k->field = field;
    k->score = score;
    str_copy(k->reason, sizeof(k->reason), why);
}

/* Columns no name or value placed: identifiers (every value different,
 * letters and digits with a digit: District ID, or a long number:
 * barcode), then words (last, first, middle name, as SIS exports order
 * them). */
static void assign_by_shape(converter *c)
{
    static const int name_fields[] = {PF_LAST_NAME, PF_FIRST_NAME, PF_MIDDLE_NAME};
    char why[256], ex[96];
    for (int k = 0; k < c->ncols; k++) {
        conv_column *col = &c->cols[k];
        if (col->field >= 0 || !col->unique || col->kind == CK_NAME || col->kind == CK_EMPTY ||
            strpbrk(col->distinct[0].value, " @/") != NULL)
            continue;
        conv_examples(col, 3, ex, sizeof(ex));
        int f = col->digits && col->maxlen >= 12 ? PF_BARCODE : PF_DISTRICT_ID;
        if (conv_field_column(c, f) == 0) {
            snprintf(why, sizeof(why), "every value is different (%s): %s", ex,
                     f == PF_BARCODE ? "long numbers, like library barcodes" : "an identifier");
            assign(c, k + 1, f, 40, why);
        }
    }
    for (int k = 0; k < c->ncols; k++) {
        conv_column *col = &c->cols[k];
        if (col->field >= 0 || col->kind != CK_NAME)
            continue;
        for (size_t i = 0; i < 3; i++) {
            if (conv_field_column(c, name_fields[i]) != 0)
                continue;
            conv_examples(col, 3, ex, sizeof(ex));
            snprintf(why, sizeof(why), "its values (%s) look like names; SIS exports put the last name, then the "
                     "first, then the middle name", ex);
            assign(c, k + 1, name_fields[i], 35, why);
            break;
        }
    }
}

int conv_propose(converter *c)
{
    candidate *cands = calloc((size_t)c->ncols * 2 + 1, sizeof(*cands));
    size_t n = 0;
    if (cands == NULL)
        return -1;
    conv_clear_maps(c);
    for (int k = 0; k < c->ncols; k++) {
        conv_column *col = &c->cols[k];
        col->field = -1;
        col->score = 0;
        str_copy(col->reason, sizeof(col->reason), col->kind == CK_EMPTY ? "empty: nothing to import"
                                                                          : "no field fits its name or values");
        if (col->header) {
            candidate *cd = &cands[n];
            cd->col = k + 1;
            cd->field = conv_header_field(col->header, &cd->score, cd->why, sizeof(cd->why));
            n += cd->field >= 0;
        }
        if (col->kind != CK_EMPTY && value_candidate(c, col, &cands[n]))
            n++;
    }
    qsort(cands, n, sizeof(*cands), cand_cmp);
    for (size_t i = 0; i < n; i++)
        if (c->cols[cands[i].col - 1].field < 0 && conv_field_column(c, cands[i].field) == 0)
            assign(c, cands[i].col, cands[i].field, cands[i].score, cands[i].why);
    /* a name and the values saying the same: both reasons */
    for (size_t i = 0; i < n; i++) {
        conv_column *col = &c->cols[cands[i].col - 1];
        size_t l = strlen(col->reason);
        if (col->field == cands[i].field && strcmp(col->reason, cands[i].why) != 0 && l + 8 < sizeof(col->reason))
            snprintf(col->reason + l, sizeof(col->reason) - l, "; and %s", cands[i].why);
    }
    free(cands);
    assign_by_shape(c);
    for (int k = 0; k < c->ncols; k++)
        if (c->cols[k].field >= 0 && conv_propose_map(c, k + 1) < 0)
            return -1;
    conv_set_match(c, conv_field_column(c, PF_DISTRICT_ID) > 0 || conv_field_column(c, PF_BARCODE) == 0);
    return 0;
}

/* ---------------------------------------------------------------- maps */

static int propose_site_map(converter *c, const conv_column *col)
{
    if (c->nsites == 0) {
        sb_printf(&c->notes, "site maps could not be checked: no sites are known (no store under --data, no "
                             "--sites FILE); column %d's values are taken as site short names as given\n",
                  col->number);
        return 0;
    }
    conv_map *m = NULL;
    size_t missing = 0;
    strbuf miss;
    sb_init(&miss);
    for (size_t i = 0; i < col->kept; i++) {
        int bn = 0;
        const char *v = col->distinct[i].value;
        const conv_site *s = site_of(c, v, &bn);
        if (s == NULL) {
            sb_printf(&miss, "%s%s", missing++ ? ", " : "", v);
            continue;
        }
        if (!bn && strcmp(s->short_name, v) == 0)
            continue; /* already the short name */
        char why[128];
        snprintf(why, sizeof(why), "%s of %s%s%.80s", bn ? "school number" : "short name", s->short_name,
                 s->name[0] ? ", " : "", s->name);
        if (m == NULL && (m = conv_map_for(c, PF_SITE_SHORT_NAME, 0)) == NULL)
            return sb_free(&miss), -1;
        if (conv_pair_set(m, v, s->short_name, why) < 0)
            return sb_free(&miss), -1;
    }
    if (missing)
        sb_printf(&c->notes, "column %d: %zu value%s match%s no known site (%s): left as given (--map-value "
                             "site:VALUE=SHORT to map %s)\n",
                  col->number, missing, missing == 1 ? "" : "s", missing == 1 ? "es" : "", sb_str(&miss),
                  missing == 1 ? "it" : "them");
    if (!c->sites_checked)
        sb_printf(&c->notes, "site maps could not be checked against a store (no store under --data): the "
                             "sites are those of the sites file\n");
    sb_free(&miss);
    return 0;
}

static const char *gender_of(const char *v)
{
    if (strcasecmp(v, "M") == 0 || strcasecmp(v, "Male") == 0)
        return "M";
    if (strcasecmp(v, "F") == 0 || strcasecmp(v, "Female") == 0)
        return "F";
    return "U";
}

static int propose_gender_map(converter *c, const conv_column *col)
{
    if (col->kept == col->ndistinct) {
        size_t i = 0;
        while (i < col->kept && (strcmp(col->distinct[i].value, "M") == 0 || strcmp(col->distinct[i].value, "F") == 0 ||
                                 strcmp(col->distinct[i].value, "U") == 0))
            i++;
        if (i == col->kept)
            return 0; /* Destiny's own codes */
    }
    conv_map *m = conv_map_for(c, PF_GENDER, 0);
    if (m == NULL)
        return -1;
    for (size_t i = 0; i < col->kept; i++) {
        const char *g = gender_of(col->distinct[i].value);
        char why[128];
        snprintf(why, sizeof(why), "Destiny's code for %s", g[0] == 'M' ? "male" : g[0] == 'F' ? "female" : "unknown");
        if (conv_pair_set(m, col->distinct[i].value, g, why) < 0)
            return -1;
    }
    return conv_pair_set(m, "default", "U", "Destiny's code for unknown");
}

int conv_propose_map(converter *c, int col)
{
    const conv_column *k = &c->cols[col - 1];
    switch (k->field) {
    case PF_SITE_SHORT_NAME:
        return propose_site_map(c, k);
    case PF_GENDER:
        return propose_gender_map(c, k);
    case PF_GRADE_LEVEL:
        if (conv_field_column(c, PF_PATRON_TYPE) == 0 && c->ntypes > 0) {
            conv_map *m = conv_map_for(c, PF_PATRON_TYPE, col);
            const char *t = c->default_type[0] ? c->default_type : c->patron_types[0];
            if (m == NULL || conv_pair_set(m, "default", t, "the district's default patron type") < 0)
                return -1;
            sb_printf(&c->notes, "no patron type column: patron types come from the grade (column %d) through "
                                 "map_patronType, every grade %s for now (--map-value patronType:GRADE=TYPE)\n",
                      col, t);
        }
        return 0;
    default:
        return 0;
    }
}
