/* test_profile: the PIC profile parser and the record mapping: every key,
 * expression form, date family and refusal. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "patron.h"
#include "profile.h"
#include "t.h"
#include "util.h"

static char errbuf[ERRLEN];

static profile *parse(const char *text)
{
    errbuf[0] = '\0';
    return profile_parse(text, strlen(text), "t.properties", errbuf, sizeof(errbuf));
}

/* The message of a profile that must be refused ("(accepted)" when it was not). */
static const char *refusal(const char *text)
{
    profile *p = parse(text);
    if (p != NULL) {
        profile_destroy(&p);
        return "(accepted)";
    }
    return errbuf;
}

static int contains(const char *hay, const char *needle)
{
    return hay != NULL && strstr(hay, needle) != NULL;
}

#define REFUSED(text, needle)                                                                 \
    do {                                                                                      \
        const char *t_msg = refusal(text);                                                    \
        if (!contains(t_msg, needle)) {                                                       \
            printf("FAIL %s: %s:%d: refusal \"%s\" lacks \"%s\"\n", t_case, __FILE__, __LINE__, \
                   t_msg, needle);                                                            \
            t_case_failed = 1;                                                                \
        }                                                                                     \
    } while (0)

/* Map one record given as strings. */
static int map_row(const profile *p, patron_rec *rec, size_t n, const char *const *cols)
{
    size_t lens[64];
    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(cols[i]);
    return profile_map(p, cols, lens, n, rec, errbuf, sizeof(errbuf));
}

#define ROW(...) (const char *const[]){__VA_ARGS__}
#define NCOLS(...) (sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))
#define MAP(p, rec, ...) map_row((p), (rec), NCOLS(__VA_ARGS__), ROW(__VA_ARGS__))

/* The value of field f for a one-field profile "field_lastName=<expr>" plus extra lines. */
static const char *eval1(const char *extra, const char *expr, size_t n, const char *const *cols, int *state)
{
    static char out[4096];
    static char text[16384];
    snprintf(text, sizeof(text), "%s\nfield_lastName=%s\n", extra, expr);
    profile *p = parse(text);
    if (p == NULL) {
        snprintf(out, sizeof(out), "(refused: %s)", errbuf);
        return out;
    }
    patron_rec rec;
    patron_rec_init(&rec);
    size_t lens[64];
    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(cols[i]);
    if (profile_map(p, cols, lens, n, &rec, errbuf, sizeof(errbuf)) != 0) {
        snprintf(out, sizeof(out), "(map failed: %s)", errbuf);
    } else {
        snprintf(out, sizeof(out), "%s", patron_rec_get(&rec, PF_LAST_NAME));
        if (state)
            *state = rec.state[PF_LAST_NAME];
    }
    patron_rec_free(&rec);
    profile_destroy(&p);
    return out;
}

#define EVAL(extra, expr, ...) eval1((extra), (expr), NCOLS(__VA_ARGS__), ROW(__VA_ARGS__), NULL)

/* A date field (birthdate) from column 1 with an optional type line. */
static const char *date1(const char *type_line, const char *value, int *state)
{
    static char out[ERRLEN + 64];
    char text[512];
    snprintf(text, sizeof(text), "%s\nfield_birthdate={1}\n", type_line);
    profile *p = parse(text);
    if (p == NULL) {
        snprintf(out, sizeof(out), "(refused: %s)", errbuf);
        return out;
    }
    patron_rec rec;
    patron_rec_init(&rec);
    const char *cols[1] = {value};
    size_t lens[1] = {strlen(value)};
    if (profile_map(p, cols, lens, 1, &rec, errbuf, sizeof(errbuf)) != 0) {
        snprintf(out, sizeof(out), "(map failed)");
    } else {
        snprintf(out, sizeof(out), "%s", patron_rec_get(&rec, PF_BIRTHDATE));
        *state = rec.state[PF_BIRTHDATE];
    }
    patron_rec_free(&rec);
    profile_destroy(&p);
    return out;
}

#define DATE_OK(type_line, value, expect)                                         \
    do {                                                                          \
        int t_st = -1;                                                            \
        CHECK_STR(date1((type_line), (value), &t_st), (expect));                  \
        CHECK(t_st == PV_VALUE);                                                  \
    } while (0)
#define DATE_BAD(type_line, value)                                                \
    do {                                                                          \
        int t_st = -1;                                                            \
        CHECK_STR(date1((type_line), (value), &t_st), (value));                   \
        CHECK(t_st == PV_INVALID);                                                \
    } while (0)

/* ---------------------------------------------------------------- lines */

static void test_lines(void)
{
    const char *text = "\xEF\xBB\xBF# comment\r\n"
                       "! also a comment\r\n"
                       "\r\n"
                       "   \t\r\n"
                       "#SiteShortNameDefault=NOPE\r\n"
                       "#COMMENTS_BEGIN\r\n"
                       "free text without a hash = not a key\r\n"
                       "UnknownKey=whatever\r\n"
                       "#COMMENTS_END\r\n"
                       "SiteShortNameDefault=MAIN   \r\n"
                       "  InputRowsToSkip = 2\t\r\n"
                       "field_lastName={1}\r\n";
    profile *p = parse(text);
    CHECK(p != NULL);
    if (p == NULL) {
        printf("  %s\n", errbuf);
        return;
    }
    CHECK_STR(profile_site_default(p), "MAIN");
    CHECK(profile_rows_to_skip(p) == 2);
    CHECK(profile_maps_field(p, PF_LAST_NAME));
    profile_destroy(&p);
    CHECK(p == NULL);
    profile_destroy(&p); /* NULL-safe */
    profile_destroy(NULL);

    /* later duplicate wins, even over an earlier malformed line */
    p = parse("InputRowsToSkip=abc\nInputRowsToSkip=3\nfield_lastName={1\nfield_lastName={2}\n");
    CHECK(p != NULL);
    if (p) {
        CHECK(profile_rows_to_skip(p) == 3);
        patron_rec rec;
        patron_rec_init(&rec);
        CHECK(MAP(p, &rec, "a", "b") == 0);
        CHECK_STR(patron_rec_get(&rec, PF_LAST_NAME), "b");
        patron_rec_free(&rec);
        profile_destroy(&p);
    }

    /* continuation lines and Java escapes; unknown escapes are kept for regexes */
    CHECK_STR(EVAL("", "{1}\\\n    -\\\n   x", "a"), "a-x");
    CHECK_STR(EVAL("", "caf\\u00e9 {1}", "au lait"), "caf\xc3\xa9 au lait");
    CHECK_STR(EVAL("", "a\\tb", "x"), "a\tb");
    CHECK_STR(EVAL("", "{1,regex(\"\\.\",\"_\")}", "a.b.c"), "a_b_c");
    CHECK_STR(EVAL("", "{1,regex(\"\\\\.\",\"_\")}", "a.b.c"), "a_b_c");
    /* an escaped '=' and blank inside a map key */
    CHECK_STR(EVAL("map_g_Grade\\ 9\\=A=G9", "{1,map_g}", "Grade 9=A"), "G9");
    /* unescaped blanks inside a key are kept; ':' separates when there is no '=' */
    CHECK_STR(EVAL("map_g_Grade 9=G9", "{1,map_g}", "Grade 9"), "G9");
    p = parse("InputRowsToSkip: 4\n");
    CHECK(p != NULL && profile_rows_to_skip(p) == 4);
    profile_destroy(&p);
    /* an escaped blank at the end of a value is content */
    CHECK_STR(EVAL("", "{1}\\ ", "x"), "x"); /* final results are trimmed */

    REFUSED("#COMMENTS_BEGIN\nfoo=bar\n", "t.properties:1: #COMMENTS_BEGIN: no #COMMENTS_END");
    REFUSED("field_lastName={1}\njust some words\n", "t.properties:2: just some words: expected key=value");
    REFUSED("=value\n", "t.properties:1: =value: empty key");
    REFUSED("field_lastName=\\u00zz\n", "malformed \\uXXXX");
    char nul[] = "a=b\nc\0d=e\n";
    profile *q = profile_parse(nul, sizeof(nul) - 1, "t.properties", errbuf, sizeof(errbuf));
    CHECK(q == NULL && contains(errbuf, "NUL byte"));

    /* an empty profile is valid and maps nothing */
    p = profile_parse(NULL, 0, "empty", errbuf, sizeof(errbuf));
    CHECK(p != NULL);
    if (p) {
        CHECK(profile_max_column(p) == 0);
        for (int f = 0; f < PF__COUNT; f++)
            CHECK(!profile_maps_field(p, f));
        profile_destroy(&p);
    }
}

/* ---------------------------------------------------------------- settings */

static void test_settings(void)
{
    profile *p = parse("");
    CHECK(p != NULL);
    if (p) {
        CHECK_STR(profile_encoding(p), "windows-1252");
        CHECK(profile_match_district_id(p) == 1);
        CHECK(profile_rows_to_skip(p) == 0);
        CHECK_STR(profile_site_default(p), "");
        CHECK(profile_update_before_delete(p) == 0);
        CHECK(profile_column_total(p) == 0);
        CHECK(profile_max_column(p) == 0);
        CHECK(profile_rule_count(p, PR_SKIP) == 0);
        CHECK(profile_rule_mode_and(p, PR_SKIP) == 0);
        profile_destroy(&p);
    }

    p = parse("CsvTextEncoding=UTF-8\n"
              "MatchUsingDistrictID=FALSE\n"
              "InputRowsToSkip=1\n"
              "SiteShortNameDefault=LHS\n"
              "UpdateBeforeDelete=True\n"
              "SkipMode=AND\nDeleteMode=or\nAssociationMode=And\n"
              "SkipMax=5\nDeleteMax=5\nAssociationMax=5\n"
              "field_type_total=12\n");
    CHECK(p != NULL);
    if (p) {
        CHECK_STR(profile_encoding(p), "UTF-8");
        CHECK(profile_match_district_id(p) == 0);
        CHECK(profile_rows_to_skip(p) == 1);
        CHECK_STR(profile_site_default(p), "LHS");
        CHECK(profile_update_before_delete(p) == 1);
        CHECK(profile_rule_mode_and(p, PR_SKIP) == 1);
        CHECK(profile_rule_mode_and(p, PR_DELETE) == 0);
        CHECK(profile_rule_mode_and(p, PR_ASSOCIATION) == 1);
        CHECK(profile_column_total(p) == 12);
        profile_destroy(&p);
    }

    /* keys without regard to case; empty values keep the defaults */
    p = parse("csvtextencoding=MacRoman\nMATCHUSINGDISTRICTID=true\n"
              "CsvTextEncoding=\nMatchUsingDistrictID=\nInputRowsToSkip=\nSkipMode=\nSkipMax=\n"
              "UpdateBeforeDelete=\nfield_type_total=\nSiteShortNameDefault=\n");
    CHECK(p != NULL);
    if (p) {
        CHECK_STR(profile_encoding(p), "windows-1252");
        CHECK(profile_match_district_id(p) == 1);
        CHECK(profile_rows_to_skip(p) == 0);
        CHECK_STR(profile_site_default(p), "");
        profile_destroy(&p);
    }

    REFUSED("\nMatchUsingDistrictID=yes\n", "t.properties:2: MatchUsingDistrictID=yes: must be true or false");
    REFUSED("UpdateBeforeDelete=1\n", "must be true or false");
    REFUSED("InputRowsToSkip=-1\n", "t.properties:1: InputRowsToSkip=-1: must be a whole number");
    REFUSED("InputRowsToSkip=one\n", "must be a whole number");
    REFUSED("InputRowsToSkip=99999999999999999999\n", "must be a whole number");
    REFUSED("SkipMode=xor\n", "mode must be 'and' or 'or'");
    REFUSED("SkipMax=-3\n", "must be a whole number");
    REFUSED("field_type_total=x\n", "must be a whole number");
    REFUSED("\n\nSomethingElse=1\n", "t.properties:3: SomethingElse=1: unknown key");
    REFUSED("field_favoriteColor={1}\n", "unknown patron field 'favoriteColor'");
    REFUSED("map_=x\n", "a map key is map_<name>_<value>");
    REFUSED("map_site=x\n", "a map key is map_<name>_<value>");
    REFUSED("SkipWhen_0={1},\n", "rule number must be");
    REFUSED("SkipWhen_x={1},\n", "rule number must be");
    REFUSED("field_type_0=string\n", "column number in field_type_<n>");
}

/* ---------------------------------------------------------------- fields */

static void test_field_names(void)
{
    patron_rec rec;
    patron_rec_init(&rec);
    /* every patron field by its PIC name, any case */
    for (int f = 0; f < PF__COUNT; f++) {
        char text[256], upper[128];
        const char *n = patron_fields[f].pic;
        size_t i;
        for (i = 0; n[i] && i + 1 < sizeof(upper); i++)
            upper[i] = (char)((n[i] >= 'a' && n[i] <= 'z') ? n[i] - 32 : n[i]);
        upper[i] = '\0';
        snprintf(text, sizeof(text), "field_%s=%s\n", (f % 2) ? n : upper,
                 patron_fields[f].kind == PK_DATE ? "2024-01-31" : "V");
        profile *p = parse(text);
        CHECK(p != NULL);
        if (p == NULL)
            continue;
        CHECK(profile_maps_field(p, f));
        CHECK(MAP(p, &rec, "x") == 0);
        CHECK_STR(patron_rec_get(&rec, f), patron_fields[f].kind == PK_DATE ? "2024-01-31" : "V");
        for (int g = 0; g < PF__COUNT; g++)
            if (g != f)
                CHECK(rec.state[g] == PV_UNSET);
        profile_destroy(&p);
    }

    /* assetGroup is resourceGroup; the two spellings of one field are one key */
    profile *p = parse("field_assetGroup={1}\nfield_cardexpires={2}\nfield_cardExpires={3}\n");
    CHECK(p != NULL);
    if (p) {
        CHECK(profile_maps_field(p, PF_RESOURCE_GROUP));
        CHECK(MAP(p, &rec, "Fiction", "2020-01-01", "2030-06-30") == 0);
        CHECK_STR(patron_rec_get(&rec, PF_RESOURCE_GROUP), "Fiction");
        CHECK_STR(patron_rec_get(&rec, PF_CARD_EXPIRES), "2030-06-30");
        profile_destroy(&p);
    }
    p = parse("field_resourceGroup={1}\nfield_assetgroup={2}\n");
    CHECK(p != NULL);
    if (p) {
        CHECK(MAP(p, &rec, "one", "two") == 0);
        CHECK_STR(patron_rec_get(&rec, PF_RESOURCE_GROUP), "two");
        profile_destroy(&p);
    }

    /* field_x= (empty) leaves the field unmapped, also over an earlier line */
    p = parse("field_nickname={1}\nfield_nickname=\nfield_middleName=\n");
    CHECK(p != NULL);
    if (p) {
        CHECK(!profile_maps_field(p, PF_NICKNAME));
        CHECK(!profile_maps_field(p, PF_MIDDLE_NAME));
        CHECK(MAP(p, &rec, "Bo") == 0);
        CHECK(rec.state[PF_NICKNAME] == PV_UNSET);
        profile_destroy(&p);
    }
    patron_rec_free(&rec);
}

/* ---------------------------------------------------------------- expressions */

static void test_expr_forms(void)
{
    int st = -1;
    /* {n}, literal text around, constants */
    CHECK_STR(EVAL("", "{1}", "Smith"), "Smith");
    CHECK_STR(EVAL("", "{2}@mail.example.org", "x", "jdoe"), "jdoe@mail.example.org");
    CHECK_STR(EVAL("", "F {1}", "Smith"), "F Smith");
    CHECK_STR(EVAL("", "{2}, {1} ({3})", "Ann", "Lee", "9"), "Lee, Ann (9)");
    CHECK_STR(EVAL("", "Student", "ignored"), "Student");
    CHECK_STR(EVAL("", "{ 2 }", "a", "b"), "b");
    /* a reference past the record reads as empty; values are trimmed */
    CHECK_STR(EVAL("", "<{5}>", "a"), "<>");
    CHECK_STR(EVAL("", "<{1}>", "  padded  "), "<padded>");
    CHECK_STR(eval1("", "{5}", 1, ROW("a"), &st), "");
    CHECK(st == PV_VALUE);

    /* omit: empty result -> PV_OMIT; without omit an empty value clears */
    CHECK_STR(eval1("", "{1,omit}", 1, ROW(""), &st), "");
    CHECK(st == PV_OMIT);
    CHECK_STR(eval1("", "{1,omit}", 1, ROW("   "), &st), "");
    CHECK(st == PV_OMIT);
    CHECK_STR(eval1("", "{1}", 1, ROW(""), &st), "");
    CHECK(st == PV_VALUE);
    CHECK_STR(eval1("", "{1,omit}", 1, ROW("x"), &st), "x");
    CHECK(st == PV_VALUE);
    /* omit looks at the whole field's result */
    CHECK_STR(eval1("", "{1,omit}@x.org", 1, ROW(""), &st), "@x.org");
    CHECK(st == PV_VALUE);
    CHECK_STR(eval1("", "ISEMPTY({1,omit},{2})", 2, ROW("", ""), &st), "");
    CHECK(st == PV_OMIT);
    CHECK_STR(eval1("", "ISEMPTY({1,omit},{2})", 2, ROW("", "b"), &st), "b");
    CHECK(st == PV_VALUE);

    /* maps: mapped, default, unchanged without a default */
    const char *maps = "map_site_09=LHS\nmap_site_10=LHS\nmap_site_default=LES\nmap_type_09=Student/HS\n";
    CHECK_STR(EVAL(maps, "{1,map_site}", "09"), "LHS");
    CHECK_STR(EVAL(maps, "{1,map_site}", "07"), "LES");
    CHECK_STR(EVAL(maps, "{1,map_site}", ""), "LES");
    CHECK_STR(EVAL(maps, "{1,map_type}", "09"), "Student/HS");
    CHECK_STR(EVAL(maps, "{1,map_type}", "11"), "11");
    CHECK_STR(EVAL(maps, "{1,MAP_SITE}", " 10 "), "LHS");

    /* substring: 1-based, on characters */
    CHECK_STR(EVAL("", "{1,substring(1,3)}", "abcdef"), "abc");
    CHECK_STR(EVAL("", "{1,substring(3)}", "abcdef"), "cdef");
    CHECK_STR(EVAL("", "{1,substring( 2 , 2 )}", "abcdef"), "bc");
    CHECK_STR(EVAL("", "{1,substring(5,10)}", "abcdef"), "ef");
    CHECK_STR(EVAL("", "{1,substring(9)}", "abc"), "");
    CHECK_STR(EVAL("", "{1,substring(2,0)}", "abc"), "");
    CHECK_STR(EVAL("", "{1,substring(2,2)}", "J\xc3\xb6rg"), "\xc3\xb6r");
    CHECK_STR(EVAL("", "{1,substring(1,1)}{2}", "Zo\xc3\xab", "Smith"), "ZSmith");

    /* regex: PCRE2 (Java-style), every match replaced, {$n} groups */
    CHECK_STR(EVAL("", "{1,regex(\"^0+\",\"\")}", "000123"), "123");
    CHECK_STR(EVAL("", "{1,regex(\"([a-z]+)@(.*)\",\"{$2}/{$1}\")}", "jdoe@old.org"), "old.org/jdoe");
    CHECK_STR(EVAL("", "{1,regex(\"-\",\"\")}", "555-12-34"), "5551234");
    CHECK_STR(EVAL("", "{1,regex(\"x\",\"y\")}", "abc"), "abc");
    CHECK_STR(EVAL("", "{1,regex(\"a{2}\",\"<{$0}>\")}", "baaab"), "b<aa>ab");
    CHECK_STR(EVAL("", "{1,regex(\"^\",\"P\")}", "123"), "P123");
    CHECK_STR(EVAL("", "{1,regex(\"$\",\"!\")}", "hi"), "hi!");
    CHECK_STR(EVAL("", "{1,regex(\"b*\",\"-\")}", "abc"), "-a--c-");
    CHECK_STR(EVAL("", "{1,regex(\"\\\"\",\"'\")}", "say \"hi\""), "say 'hi'");
    CHECK_STR(EVAL("", "{1,regex(\"(a)|(b)\",\"[{$2}]\")}", "ab"), "[][b]");
    CHECK_STR(EVAL("", "{1,regex(\"[, ]+\",\"_\")}", "a, b,c"), "a_b_c");

    /* upper / lower: ASCII, Latin-1, Latin Extended-A */
    CHECK_STR(EVAL("", "{1,upper}", "smith jr."), "SMITH JR.");
    CHECK_STR(EVAL("", "{1,lower}", "SMITH"), "smith");
    CHECK_STR(EVAL("", "{1,upper}", "m\xc3\xbcller \xc3\xa9lo\xc3\xafse \xc3\xbf"), "M\xc3\x9cLLER \xc3\x89LO\xc3\x8fSE \xc5\xb8");
    CHECK_STR(EVAL("", "{1,lower}", "\xc3\x85S\xc3\x85 \xc5\x81UKASZ \xc5\xb8"), "\xc3\xa5s\xc3\xa5 \xc5\x82ukasz \xc3\xbf");
    CHECK_STR(EVAL("", "{1,UPPERCASE}", "dvo\xc5\x99\xc3\xa1k"), "DVO\xc5\x98\xc3\x81K");
    CHECK_STR(EVAL("", "{1,upper}", "stra\xc3\x9f" "e \xc3\xb7 \xe2\x82\xac"), "STRA\xc3\x9f" "E \xc3\xb7 \xe2\x82\xac");

    /* options apply in the order written */
    const char *m2 = "map_g_A=upper-a\nmap_g_a=lower-a\n";
    CHECK_STR(EVAL(m2, "{1,upper,map_g}", "a"), "upper-a");
    CHECK_STR(EVAL(m2, "{1,map_g,upper}", "a"), "LOWER-A");
    CHECK_STR(EVAL("", "{1,substring(2),regex(\"^0+\",\"\"),upper}", "x007bond"), "7BOND");
    CHECK_STR(EVAL("", "{1,regex(\"^0+\",\"\"),substring(2)}", "x007bond"), "007bond");

    /* ISEMPTY: the first non-empty argument */
    CHECK_STR(EVAL("", "ISEMPTY({1},{2})", "", "b"), "b");
    CHECK_STR(EVAL("", "ISEMPTY({1},{2})", "a", "b"), "a");
    CHECK_STR(EVAL("", "ISEMPTY({1},{2},{3})", " ", "", "c"), "c");
    CHECK_STR(EVAL("", "ISEMPTY({7},{6},{7})", "", "", "", "", "", "nick", ""), "nick");
    CHECK_STR(EVAL("", "ISEMPTY({7},{6},{7})", "", "", "", "", "", "nick", "given"), "given");
    CHECK_STR(EVAL("", "isempty( {1} , {2,upper} , Unknown )", "", ""), "Unknown");
    CHECK_STR(EVAL("", "ISEMPTY({1},{2,upper})", "", "b"), "B");
    CHECK_STR(EVAL("", "ISEMPTY({1},{2}) jr", "x", "y"), "x jr");
    CHECK_STR(EVAL("", "ISEMPTY({1},ISEMPTY({2},{3}))", "", "", "c"), "c");
    CHECK_STR(EVAL("", "ISEMPTY({1},{2}@x.org)", "", "me"), "me@x.org");
    CHECK_STR(EVAL("", "ISEMPTY({1},{2})", "", ""), "");
    CHECK_STR(EVAL("", "Isempty is text", "x"), "Isempty is text");

    /* a mapped value may itself be an expression, evaluated on the same row */
    const char *bm = "map_barcode_9=P {1}\nmap_barcode_default={1}-{3,upper}\nmap_barcode_7=ISEMPTY({3},none)\n";
    CHECK_STR(EVAL(bm, "{2,map_barcode}", "1234", "9", "x"), "P 1234");
    CHECK_STR(EVAL(bm, "{2,map_barcode}", "1234", "8", "x"), "1234-X");
    CHECK_STR(EVAL(bm, "{2,map_barcode}", "1234", "7", ""), "none");
    /* map values that use other maps (no cycle) */
    const char *chain = "map_a_1={2,map_b}\nmap_b_x=BX\nmap_b_default=B?\n";
    CHECK_STR(EVAL(chain, "{1,map_a}", "1", "x"), "BX");
    CHECK_STR(EVAL(chain, "{1,map_a}", "1", "q"), "B?");
    CHECK_STR(EVAL(chain, "{1,map_a}", "2", "q"), "2");

    /* a large value takes the heap path of the scratch space */
    static char big[30000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    const char *r = EVAL("", "{1,upper}-{1,regex(\"a\",\"bb\")}", big);
    /* eval1 keeps only the first 4 KiB of the value */
    CHECK(r[0] == 'A' && r[4094] == 'A');
    profile *p = parse("field_lastName={1,upper}-{1,regex(\"a\",\"bb\")}\n");
    CHECK(p != NULL);
    if (p) {
        patron_rec rec;
        patron_rec_init(&rec);
        CHECK(MAP(p, &rec, big) == 0);
        const char *v = patron_rec_get(&rec, PF_LAST_NAME);
        CHECK(strlen(v) == (sizeof(big) - 1) * 3 + 1);
        CHECK(v[sizeof(big) - 2] == 'A' && v[sizeof(big) - 1] == '-' && v[sizeof(big)] == 'b');
        patron_rec_free(&rec);
        profile_destroy(&p);
    }
}

/* regex(): PCRE2 (Perl's and Java's syntax) with bounded cost. */
static void test_regex_bounded(void)
{
    /* Java's classes and groups that POSIX lacks */
    CHECK_STR(EVAL("", "{1,regex(\"\\d+\",\"#\")}", "ab12cd345"), "ab#cd#");
    CHECK_STR(EVAL("", "{1,regex(\"(?i)smith\",\"X\")}", "SMITH-smith"), "X-X");
    CHECK_STR(EVAL("", "{1,regex(\"(\\w)\\1\",\"{$1}\")}", "aabbc"), "abc");
    CHECK_STR(EVAL("", "{1,regex(\"^a\",\"b\")}", "aaa"), "baa"); /* ^ is the value's start only */
    /* the catastrophic backreference pattern on a 30,000-character value:
     * an error on this record naming the field, in bounded time */
    static char big[30001];
    memset(big, 'a', sizeof(big) - 2);
    big[sizeof(big) - 2] = 'b';
    big[sizeof(big) - 1] = '\0';
    profile *p = parse("field_lastName={1,regex(\"^(a+)+\\1$\",\"x\")}\n");
    CHECK(p != NULL);
    if (p) {
        patron_rec rec;
        patron_rec_init(&rec);
        int64_t t0 = mono_ms();
        CHECK(MAP(p, &rec, big) == -1);
        int64_t spent = mono_ms() - t0;
        CHECK(contains(errbuf, "field_lastName: regular expression gave up on a value of 30000 bytes"));
        CHECK(contains(errbuf, "limit"));
        /* not a timing assertion of speed: a bound far above any machine's
         * cost of a million steps, far below the hours the pattern takes */
        CHECK(spent < 30000);
        /* the same profile maps a normal value */
        CHECK(MAP(p, &rec, "aab") == 0);
        CHECK_STR(patron_rec_get(&rec, PF_LAST_NAME), "aab");
        patron_rec_free(&rec);
        profile_destroy(&p);
    }
    REFUSED("field_lastName={1,regex(\"(?<n\",\"x\")}\n", "bad regular expression");
}

static void count_risk(void *ctx, const char *where, const char *pattern, const char *why)
{
    char *seen = ctx;
    size_t n = strlen(seen);
    snprintf(seen + n, 512 - n, "%s %s %s|", where, pattern, why);
}

/* profile check's warning: which patterns can blow up. */
static void test_regex_risks(void)
{
    static const struct {
        const char *pat;
        int risky;
    } cases[] = {
        {"^(a+)+\\\\1$", 1}, {"(a+)+", 1}, {"(x*)*y", 1}, {"((ab)*c)+", 1}, {"(\\\\w)\\\\1", 1}, {"(?<x>a|b)\\\\k<x>", 1},
        {"^0+", 0}, {"([a-z]+)@(.*)", 0}, {"(ab)+", 0}, {"[(a+)]+", 0}, {"(a++)+", 0}, {"(a{2,5})+", 0},
        {"\\\\d{3}-\\\\d{4}", 0}, {"(a+)?", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[256], seen[512] = "";
        snprintf(text, sizeof(text), "field_lastName={1,regex(\"%s\",\"x\")}\n", cases[i].pat);
        profile *p = parse(text);
        CHECK(p != NULL);
        if (p == NULL) {
            printf("  refused %s: %s\n", cases[i].pat, errbuf);
            continue;
        }
        int n = profile_regex_risks(p, count_risk, seen);
        if (n != cases[i].risky) {
            printf("FAIL %s: pattern %s: %d warnings (%s), expected %d\n", t_case, cases[i].pat, n, seen,
                   cases[i].risky);
            t_case_failed = 1;
        }
        if (n > 0)
            CHECK(contains(seen, "field_lastName ") && contains(seen, "power of"));
        profile_destroy(&p);
    }
    /* in a map value too, named by its map */
    profile *p = parse("map_site_1={1,regex(\"(a+)+$\",\"x\")}\nfield_siteShortName={2,map_site}\n");
    char seen[512] = "";
    CHECK(p != NULL);
    if (p) {
        CHECK(profile_regex_risks(p, count_risk, seen) == 1);
        CHECK(contains(seen, "map_site (a+)+$"));
        profile_destroy(&p);
    }
}

static void test_expr_errors(void)
{
    REFUSED("x=\n", "unknown key");
    REFUSED("field_lastName={1\n", "t.properties:1: field_lastName={1: missing '}'");
    REFUSED("field_lastName={}\n", "'{' must be followed by a column number");
    REFUSED("field_lastName={x}\n", "'{' must be followed by a column number");
    REFUSED("field_lastName={0}\n", "'{' must be followed by a column number");
    REFUSED("field_lastName={1 2}\n", "unexpected '2'");
    REFUSED("field_lastName={1}}\n", "'}' without '{'");
    REFUSED("field_lastName={1,bogus}\n", "unknown option 'bogus'");
    REFUSED("field_lastName={1,}\n", "empty option");
    REFUSED("\nfield_siteShortName={9,map_site}\n", "t.properties:2: field_siteShortName={9,map_site}: map 'site' is not defined");
    REFUSED("field_lastName={1,regex(\"(\",\"x\")}\n", "bad regular expression");
    REFUSED("field_lastName={1,regex(\"a\",\"{$1}\")}\n", "refers to group {$1}");
    REFUSED("field_lastName={1,regex(\"a\")}\n", "expected ','");
    REFUSED("field_lastName={1,regex(a,b)}\n", "expected a \"quoted\" string");
    REFUSED("field_lastName={1,regex(\"a,\"b\")}\n", "expected ','");
    REFUSED("field_lastName={1,regex(\"abc)}\n", "unterminated");
    REFUSED("field_lastName={1,substring(0)}\n", "substring start must be a number from 1");
    REFUSED("field_lastName={1,substring(1,x)}\n", "substring length");
    REFUSED("field_lastName={1,substring 1}\n", "expected '('");
    REFUSED("field_lastName={1,substring(1}\n", "expected ')'");
    REFUSED("field_type_total=3\nfield_lastName={4}\n", "t.properties:2: field_lastName={4}: column {4} is beyond field_type_total=3");
    REFUSED("map_b_9=P {1,omit}\nfield_barcode={1,map_b}\n", "omit has no meaning in a map value");
    REFUSED("map_a_1={1,map_a}\n", "map 'a' refers back to itself");
    REFUSED("map_a_1={1,map_b}\nmap_b_default={1,map_a}\n", "refers back to itself");
    REFUSED("map_a_1=x\nmap_a_default=ISEMPTY({2,map_a})\n", "refers back to itself");
    REFUSED("field_lastName=ISEMPTY({1},,{2})\n", "empty argument in ISEMPTY");
    REFUSED("field_lastName=ISEMPTY({1},{2}\n", "missing ')'");
    REFUSED("field_lastName=ISEMPTY {1}\n", "(accepted)"); /* no '(': literal text */
    REFUSED("field_lastName={1,map_nope}\nmap_nope2_x=1\n", "map 'nope' is not defined");
}

/* ---------------------------------------------------------------- maps */

static void test_maps(void)
{
    /* names without regard to case; a map defined and never used */
    const char *maps = "map_patronType_09=Student\nmap_patrontype_default=Other\nmap_unused_1=x\n";
    CHECK_STR(EVAL(maps, "{1,map_PATRONTYPE}", "09"), "Student");
    CHECK_STR(EVAL(maps, "{1,map_patronType}", "10"), "Other");
    /* negative numbers and any text as keys; underscores belong to the value */
    const char *neg = "map_type_-1=Withdrawn\nmap_type_0=Zero\nmap_type_A_B=ab\nmap_type_=Blank\n";
    CHECK_STR(EVAL(neg, "{1,map_type}", "-1"), "Withdrawn");
    CHECK_STR(EVAL(neg, "{1,map_type}", "0"), "Zero");
    CHECK_STR(EVAL(neg, "{1,map_type}", "A_B"), "ab");
    CHECK_STR(EVAL(neg, "{1,map_type}", ""), "Blank");
    CHECK_STR(EVAL(neg, "{1,map_type}", "-2"), "-2");
    /* exact first, then without regard to case */
    const char *g = "map_gender_M=M\nmap_gender_F=F\nmap_gender_f=female\nmap_gender_X=U\nmap_gender_default=U\n";
    CHECK_STR(EVAL(g, "{1,map_gender}", "M"), "M");
    CHECK_STR(EVAL(g, "{1,map_gender}", "m"), "M");
    CHECK_STR(EVAL(g, "{1,map_gender}", "F"), "F");
    CHECK_STR(EVAL(g, "{1,map_gender}", "f"), "female");
    CHECK_STR(EVAL(g, "{1,map_gender}", "x"), "U");
    CHECK_STR(EVAL(g, "{1,map_gender}", "Q"), "U");
    CHECK_STR(EVAL("map_s_\xc3\x89" "cole=E\n", "{1,map_s}", "\xc3\xa9" "COLE"), "E");
    /* a key given twice: the later value; "default" in any case */
    CHECK_STR(EVAL("map_t_1=a\nmap_t_1=b\nmap_T_DEFAULT=d1\nmap_t_Default=d2\n", "{1,map_t}", "1"), "b");
    CHECK_STR(EVAL("map_t_1=a\nmap_t_1=b\nmap_T_DEFAULT=d1\nmap_t_Default=d2\n", "{1,map_t}", "2"), "d2");
    /* an empty mapped value */
    CHECK_STR(EVAL("map_t_1=\n", "<{1,map_t}>", "1"), "<>");
    /* many entries (hash table growth) */
    char text[8192];
    size_t o = 0;
    for (int i = 0; i < 300; i++)
        o += (size_t)snprintf(text + o, sizeof(text) - o, "map_h_%d=v%d\n", i * 7, i);
    CHECK(o < sizeof(text));
    CHECK_STR(EVAL(text, "{1,map_h}", "2093"), "v299");
    CHECK_STR(EVAL(text, "{1,map_h}", "0"), "v0");
    CHECK_STR(EVAL(text, "{1,map_h}", "1"), "1");
}

/* ---------------------------------------------------------------- dates */

static void test_dates(void)
{
    int st = -1;
    /* untyped: ISO, MM/DD/YYYY, M/D/YYYY, YYYYMMDD */
    DATE_OK("", "2024-02-29", "2024-02-29");
    DATE_OK("", "2024-2-9", "2024-02-09");
    DATE_OK("", "06/15/2025", "2025-06-15");
    DATE_OK("", "6/5/2025", "2025-06-05");
    DATE_OK("", "20250615", "2025-06-15");
    DATE_OK("", "2025-06-15 00:00:00", "2025-06-15");
    DATE_OK("", "2025-06-15T08:30:00Z", "2025-06-15");
    DATE_BAD("", "2023-02-29");
    DATE_BAD("", "15/06/2025");
    DATE_BAD("", "6/5/25");
    DATE_BAD("", "June 5 2025");
    DATE_BAD("", "2025061");
    DATE_BAD("", "202506150");
    DATE_BAD("", "0999-01-01");
    DATE_BAD("", "2025-00-10");
    DATE_BAD("", "2025-04-31");
    DATE_BAD("", "not a date");
    /* an empty date clears; with omit it is left out */
    CHECK_STR(date1("", "", &st), "");
    CHECK(st == PV_VALUE);
    CHECK_STR(date1("", "   ", &st), "");
    CHECK(st == PV_VALUE);
    CHECK_STR(eval1("", "x", 0, ROW(NULL), &st), "x"); /* sanity: eval1 with no columns */
    {
        profile *p = parse("field_cardExpires={1,omit}\nfield_type_1=date,MM/dd/yyyy\n");
        CHECK(p != NULL);
        if (p) {
            patron_rec rec;
            patron_rec_init(&rec);
            CHECK(MAP(p, &rec, "") == 0);
            CHECK(rec.state[PF_CARD_EXPIRES] == PV_OMIT);
            CHECK(MAP(p, &rec, "12/31/2030") == 0);
            CHECK(rec.state[PF_CARD_EXPIRES] == PV_VALUE);
            CHECK_STR(patron_rec_get(&rec, PF_CARD_EXPIRES), "2030-12-31");
            CHECK(MAP(p, &rec, "31/12/2030") == 0);
            CHECK(rec.state[PF_CARD_EXPIRES] == PV_INVALID);
            CHECK_STR(patron_rec_get(&rec, PF_CARD_EXPIRES), "31/12/2030");
            patron_rec_free(&rec);
            profile_destroy(&p);
        }
    }

    /* typed columns: Java pattern letters */
    const char *mdy = "field_type_1=date,MM/dd/yyyy";
    DATE_OK(mdy, "06/15/2025", "2025-06-15");
    DATE_OK(mdy, "6/5/2025", "2025-06-05");
    DATE_OK(mdy, "06/15/2025 00:00:00", "2025-06-15");
    DATE_OK(mdy, "2025-06-15", "2025-06-15"); /* the canonical form is always understood */
    DATE_BAD(mdy, "15/06/2025");
    DATE_BAD(mdy, "02/30/2024");
    DATE_BAD(mdy, "06/15/25");
    DATE_BAD(mdy, "06-15-2025");
    DATE_OK("field_type_1=date,dd/MM/yyyy", "15/06/2025", "2025-06-15");
    DATE_BAD("field_type_1=date,dd/MM/yyyy", "06/15/2025");
    DATE_OK("field_type_1=date,dd.MM.yyyy", "01.02.2003", "2003-02-01");
    DATE_OK("field_type_1=date,yyyyMMdd", "20240229", "2024-02-29");
    DATE_BAD("field_type_1=date,yyyyMMdd", "20230229");
    DATE_BAD("field_type_1=date,yyyyMMdd", "2024229");
    DATE_OK("field_type_1=date,ddMMyyyy", "01022003", "2003-02-01");
    DATE_OK("field_type_1=date,yyMMdd", "450101", "2045-01-01");
    DATE_OK("field_type_1=date,yyMMdd", "460101", "1946-01-01");
    DATE_OK("field_type_1=date,yyyy-MM-dd", "2025-06-15", "2025-06-15");
    DATE_OK("field_type_1=date,yyyy/M/d", "2025/6/5", "2025-06-05");
    /* yy: 00..45 -> 20yy, 46..99 -> 19yy; four digits are taken as written */
    const char *yy = "field_type_1=date,M/d/yy";
    DATE_OK(yy, "6/5/09", "2009-06-05");
    DATE_OK(yy, "6/5/45", "2045-06-05");
    DATE_OK(yy, "6/5/46", "1946-06-05");
    DATE_OK(yy, "12/31/99", "1999-12-31");
    DATE_OK(yy, "1/1/00", "2000-01-01");
    DATE_OK(yy, "2/29/00", "2000-02-29");
    DATE_OK(yy, "6/5/2009", "2009-06-05");
    DATE_BAD(yy, "6/5/9");
    DATE_BAD(yy, "2/29/01");
    /* month and day names, quoted text, times */
    DATE_OK("field_type_1=date,MMM d, yyyy", "Jun 5, 2025", "2025-06-05");
    DATE_OK("field_type_1=date,MMM d, yyyy", "june 5, 2025", "2025-06-05");
    DATE_OK("field_type_1=date,MMMM d, yyyy", "September 30, 2025", "2025-09-30");
    DATE_OK("field_type_1=date,MMMM d, yyyy", "Sept 30, 2025", "2025-09-30");
    DATE_OK("field_type_1=date,d-MMM-yy", "5-JAN-10", "2010-01-05");
    DATE_BAD("field_type_1=date,d-MMM-yy", "5-Jnu-10");
    DATE_OK("field_type_1=date,EEE, d MMM yyyy", "Thu, 5 Jun 2025", "2025-06-05");
    DATE_OK("field_type_1=date,EEEE MM/dd/yyyy", "Thursday 06/05/2025", "2025-06-05");
    DATE_OK("field_type_1=date,yyyy-MM-dd'T'HH:mm:ss", "2025-06-05T13:45:00", "2025-06-05");
    DATE_OK("field_type_1=date,'Date: 'yyyy-MM-dd", "Date: 2025-06-05", "2025-06-05");
    DATE_OK("field_type_1=date,''yy''MM''dd", "'25'06'05", "2025-06-05");
    DATE_OK("field_type_1=date,MM/dd/yyyy hh:mm a", "06/05/2025 01:30 PM", "2025-06-05");
    DATE_OK("field_type_1=date,MM/dd/yyyy HH:mm:ss.SSS", "06/05/2025 13:30:00.250", "2025-06-05");
    DATE_OK("field_type_1=date,MM/yyyy", "06/2025", "2025-06-01");
    DATE_OK("field_type_1=Date, MM/dd/yyyy ", "06/05/2025", "2025-06-05");
    /* "date" without a pattern, and "string": the untyped forms */
    DATE_OK("field_type_1=date", "06/05/2025", "2025-06-05");
    DATE_OK("field_type_1=string", "20250605", "2025-06-05");

    /* the first column referenced decides the pattern; ISEMPTY and maps */
    {
        profile *p = parse("field_type_1=date,dd/MM/yyyy\nfield_type_2=date,yyyyMMdd\n"
                           "field_birthdate=ISEMPTY({1},{2})\n"
                           "field_cardExpires={3,map_exp}\nfield_type_3=date,MM/dd/yyyy\n"
                           "map_exp_S=2026-06-30\nmap_exp_default={3}\n"
                           "field_userDefined1={1}\n");
        CHECK(p != NULL);
        if (p) {
            patron_rec rec;
            patron_rec_init(&rec);
            CHECK(MAP(p, &rec, "05/06/2007", "20991231", "S") == 0);
            CHECK_STR(patron_rec_get(&rec, PF_BIRTHDATE), "2007-06-05");
            CHECK_STR(patron_rec_get(&rec, PF_CARD_EXPIRES), "2026-06-30");
            CHECK_STR(patron_rec_get(&rec, PF_USER_DEFINED1), "05/06/2007"); /* not a date field: as is */
            CHECK(MAP(p, &rec, "", "20991231", "12/31/2027") == 0);
            CHECK(rec.state[PF_BIRTHDATE] == PV_INVALID); /* column 2's value read with column 1's pattern */
            CHECK_STR(patron_rec_get(&rec, PF_CARD_EXPIRES), "2027-12-31");
            patron_rec_free(&rec);
            profile_destroy(&p);
        }
    }
    /* a constant date */
    {
        profile *p = parse("field_cardExpires=06/30/2026\n");
        CHECK(p != NULL);
        if (p) {
            patron_rec rec;
            patron_rec_init(&rec);
            CHECK(MAP(p, &rec, "x") == 0);
            CHECK_STR(patron_rec_get(&rec, PF_CARD_EXPIRES), "2026-06-30");
            patron_rec_free(&rec);
            profile_destroy(&p);
        }
    }

    /* pattern errors */
    REFUSED("field_type_1=date,yyyy-MM-dd Q\n", "unsupported letter in date pattern");
    REFUSED("field_type_1=date,yyyy-MM-dd 'x\n", "unterminated quote");
    REFUSED("field_type_1=date,yyyy-yy\n", "twice");
    REFUSED("field_type_1=number\n", "a column type is 'string' or 'date,<pattern>'");
    REFUSED("field_type_1=date;MM/dd/yyyy\n", "a column type is");
    REFUSED("field_type_1=date,MM/dd\nfield_birthdate={1}\n", "t.properties:1: field_type_1=date,MM/dd: the date pattern of column 1 (used by field_birthdate) has no year or month");
    /* the same pattern on a column no date field uses is fine */
    REFUSED("field_type_1=date,MM/dd\nfield_lastName={1}\n", "(accepted)");
}

/* ---------------------------------------------------------------- column types */

static void test_types(void)
{
    profile *p = parse("field_type_total=22\nfield_type_1=string\nfield_type_22=String\nfield_type_3=\n"
                       "field_lastName={3}\nfield_firstName={2,map_x}\nmap_x_default={9}\n"
                       "map_unused_a={21}\nSkipWhen_1={12},\n");
    CHECK(p != NULL);
    if (p) {
        CHECK(profile_column_total(p) == 22);
        CHECK(profile_max_column(p) == 12);
        profile_destroy(&p);
    }
    p = parse("field_lastName={3}\nfield_firstName=ISEMPTY({4},{2,map_y})\nmap_y_1={5,map_z}\nmap_z_2=ISEMPTY({1},{17})\n");
    CHECK(p != NULL);
    if (p) {
        CHECK(profile_max_column(p) == 17);
        CHECK(profile_column_total(p) == 0);
        profile_destroy(&p);
    }
    REFUSED("field_type_total=5\nfield_type_6=string\n", "t.properties:2: field_type_6=string: column 6 is beyond field_type_total=5");
    REFUSED("field_type_6=string\nfield_type_total=5\n", "column 6 is beyond field_type_total=5");
    REFUSED("field_type_total=5\nSkipWhen_1={6},\n", "column {6} is beyond field_type_total=5");
    REFUSED("field_type_total=5\nmap_m_1={6}\n", "column {6} is beyond field_type_total=5");
    REFUSED("field_lastName={70000}\n", "column number 1..");
}

/* ---------------------------------------------------------------- rules */

static int rule_on(const profile *p, enum profile_rule which, patron_rec *rec, size_t n, const char *const *cols)
{
    size_t lens[64];
    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(cols[i]);
    if (profile_map(p, cols, lens, n, rec, errbuf, sizeof(errbuf)) != 0)
        return -1;
    return profile_rule_matches(p, which, rec, cols, lens, n);
}

#define MATCH(p, rec, which, ...) rule_on((p), (which), (rec), NCOLS(__VA_ARGS__), ROW(__VA_ARGS__))

static void test_rules(void)
{
    profile *p = parse("SkipMode=or\nSkipWhen_1=field_districtID,\nSkipWhen_2={1},Unassigned\nSkipMax=100\n"
                       "DeleteMode=or\nDeleteWhen_1=field_status,Inactive\nDeleteMax=10\n"
                       "AssociationMode=and\nAssociationWhen_1=field_patronType,Faculty\n"
                       "AssociationWhen_3={4}, f \nAssociationMax=3\n"
                       "field_districtID={2,omit}\nfield_status={3}\nfield_patronType={4,map_pt}\n"
                       "map_pt_F=Faculty\nmap_pt_S=Student\n");
    CHECK(p != NULL);
    if (p == NULL) {
        printf("  %s\n", errbuf);
        return;
    }
    CHECK(profile_rule_count(p, PR_SKIP) == 2);
    CHECK(profile_rule_count(p, PR_DELETE) == 1);
    CHECK(profile_rule_count(p, PR_ASSOCIATION) == 2);
    /* columns only: every rule of the kind reads {n} (none: trivially) */
    CHECK(profile_rule_columns_only(p, PR_SKIP) == 0);
    CHECK(profile_rule_columns_only(p, PR_DELETE) == 0);
    CHECK(profile_rule_columns_only(p, PR_ASSOCIATION) == 0);
    patron_rec rec;
    patron_rec_init(&rec);
    /* skip: blank district ID (mapped value) or column 1 "Unassigned" */
    CHECK(MATCH(p, &rec, PR_SKIP, "x", "", "A", "S") == 1);
    CHECK(MATCH(p, &rec, PR_SKIP, "x", "   ", "A", "S") == 1);
    CHECK(MATCH(p, &rec, PR_SKIP, "x", "123", "A", "S") == 0);
    CHECK(MATCH(p, &rec, PR_SKIP, " unassigned ", "123", "A", "S") == 1);
    CHECK(MATCH(p, &rec, PR_SKIP, "UNASSIGNED", "123", "A", "S") == 1);
    CHECK(MATCH(p, &rec, PR_SKIP, "Unassigned!", "123", "A", "S") == 0);
    /* delete: the mapped status */
    CHECK(MATCH(p, &rec, PR_DELETE, "x", "1", "inactive", "S") == 1);
    CHECK(MATCH(p, &rec, PR_DELETE, "x", "1", "Active", "S") == 0);
    /* association, and: mapped type Faculty and raw column 4 "f" */
    CHECK(MATCH(p, &rec, PR_ASSOCIATION, "x", "1", "A", "F") == 1);
    CHECK(MATCH(p, &rec, PR_ASSOCIATION, "x", "1", "A", "S") == 0);
    /* no rules of a kind: never matches; a column past the record is blank */
    profile *q = parse("SkipWhen_1={9},\n");
    CHECK(q != NULL);
    if (q) {
        CHECK(MATCH(q, &rec, PR_SKIP, "a") == 1);
        CHECK(MATCH(q, &rec, PR_DELETE, "a") == 0);
        CHECK(profile_rule_matches(q, PR_SKIP, NULL, NULL, NULL, 0) == 1);
        CHECK(profile_rule_columns_only(q, PR_SKIP) == 1);
        CHECK(profile_rule_columns_only(q, PR_DELETE) == 1);
        profile_destroy(&q);
    }
    /* and-mode with a column rule on a value holding a comma; Latin-1 case */
    q = parse("DeleteMode=and\nDeleteWhen_1={1},Smith, Jr.\nDeleteWhen_2={2},\xc3\xa9t\xc3\xa9\n");
    CHECK(q != NULL);
    if (q) {
        CHECK(MATCH(q, &rec, PR_DELETE, "smith, jr.", "\xc3\x89T\xc3\x89") == 1);
        CHECK(MATCH(q, &rec, PR_DELETE, "smith, jr.", "ete") == 0);
        CHECK(MATCH(q, &rec, PR_DELETE, "smith", "\xc3\xa9t\xc3\xa9") == 0);
        CHECK(profile_rule_mode_and(q, PR_DELETE) == 1);
        profile_destroy(&q);
    }
    /* a rule's field without field_, an unmapped field reads blank; an empty rule is none */
    q = parse("SkipWhen_1=homeroom,\nSkipWhen_2=\nSkipWhen_07={1},x\nSkipWhen_7={1},y\n");
    CHECK(q != NULL);
    if (q) {
        CHECK(profile_rule_count(q, PR_SKIP) == 2);
        CHECK(MATCH(q, &rec, PR_SKIP, "z") == 1);
        profile_destroy(&q);
    }
    q = parse("SkipMode=and\nSkipWhen_1={1},y\nSkipWhen_2={2},\nSkipWhen_07={1},x\nSkipWhen_7={1},y\n");
    CHECK(q != NULL);
    if (q) {
        CHECK(profile_rule_count(q, PR_SKIP) == 3);
        CHECK(MATCH(q, &rec, PR_SKIP, "y", "") == 1);
        CHECK(MATCH(q, &rec, PR_SKIP, "x", "") == 0);
        profile_destroy(&q);
    }
    patron_rec_free(&rec);
    profile_destroy(&p);

    REFUSED("SkipMax=2\nSkipWhen_3={1},\n", "t.properties:2: SkipWhen_3={1},: rule number 3 is above SkipMax=2");
    REFUSED("SkipWhen_3={1},\nSkipMax=2\n", "rule number 3 is above SkipMax=2");
    REFUSED("DeleteMax=0\nDeleteWhen_1=field_status,I\n", "above DeleteMax=0");
    REFUSED("AssociationMax=1\nAssociationWhen_2=field_patronType,Faculty\n", "above AssociationMax=1");
    REFUSED("SkipWhen_1={1}\n", "a rule is <field>,<value>");
    REFUSED("SkipWhen_1=field_nope,x\n", "a rule's field is field_<patron field> or {n}");
    REFUSED("SkipWhen_1={a},x\n", "a rule's column is {n}");
    REFUSED("SkipWhen_1={1,map_x},x\nmap_x_1=2\n", "a rule's column is {n}");
    REFUSED("SkipWhen_1=,x\n", "a rule's field is");
    /* an empty rule above the bound is no rule, not an error */
    REFUSED("SkipMax=1\nSkipWhen_5=\n", "(accepted)");
}

/* ---------------------------------------------------------------- map_field */

static void test_map_field(void)
{
    profile *p = parse("field_districtID={1}\nfield_barcode={2,omit}\nfield_birthdate={3}\n");
    CHECK(p != NULL);
    if (p == NULL)
        return;
    patron_rec rec;
    patron_rec_init(&rec);
    const char *cols[] = {"D1", "", "13/45/2000"};
    size_t lens[] = {2, 0, 10};
    CHECK(profile_map_field(p, PF_DISTRICT_ID, cols, lens, 3, &rec, errbuf, sizeof(errbuf)) == 0);
    CHECK(profile_map_field(p, PF_BARCODE, cols, lens, 3, &rec, errbuf, sizeof(errbuf)) == 0);
    CHECK(profile_map_field(p, PF_BIRTHDATE, cols, lens, 3, &rec, errbuf, sizeof(errbuf)) == 0);
    CHECK(profile_map_field(p, PF_LAST_NAME, cols, lens, 3, &rec, errbuf, sizeof(errbuf)) == 0);
    CHECK_STR(patron_rec_get(&rec, PF_DISTRICT_ID), "D1"); /* not reset by the later calls */
    CHECK(rec.state[PF_DISTRICT_ID] == PV_VALUE);
    CHECK(rec.state[PF_BARCODE] == PV_OMIT);
    CHECK(rec.state[PF_BIRTHDATE] == PV_INVALID);
    CHECK_STR(patron_rec_get(&rec, PF_BIRTHDATE), "13/45/2000");
    CHECK(rec.state[PF_LAST_NAME] == PV_UNSET);
    CHECK(profile_map_field(p, PF__COUNT, cols, lens, 3, &rec, errbuf, sizeof(errbuf)) == -1);
    /* profile_map resets the record first */
    CHECK(profile_map(p, cols, lens, 1, &rec, errbuf, sizeof(errbuf)) == 0);
    CHECK_STR(patron_rec_get(&rec, PF_DISTRICT_ID), "D1");
    CHECK(rec.state[PF_BARCODE] == PV_OMIT);
    CHECK(rec.state[PF_BIRTHDATE] == PV_VALUE);
    CHECK(rec.state[PF_LAST_NAME] == PV_UNSET);
    patron_rec_free(&rec);
    profile_destroy(&p);
}

/* ---------------------------------------------------------------- whole files */

/* The repository's sample district (sample/, made by tools/gen_patrons.py):
 * SAMPLE_DIR, or sample/ from tests/unit, where tests/run runs this. */
static const char *sample_dir(void)
{
    const char *d = getenv("SAMPLE_DIR");
    return d && *d ? d : "../../sample";
}

static void test_sample_file(void)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/students.properties", sample_dir());
    profile *p = profile_load(path, errbuf, sizeof(errbuf));
    CHECK(p != NULL);
    if (p == NULL) {
        printf("  %s\n", errbuf);
        return;
    }
    CHECK_STR(profile_encoding(p), "windows-1252");
    CHECK(profile_match_district_id(p) == 1);
    CHECK(profile_rows_to_skip(p) == 1);
    CHECK_STR(profile_site_default(p), "");
    CHECK(profile_update_before_delete(p) == 0);
    CHECK(profile_column_total(p) == 22);
    CHECK(profile_max_column(p) == 22);
    CHECK(profile_rule_count(p, PR_SKIP) == 1);
    CHECK(profile_rule_count(p, PR_DELETE) == 0);
    CHECK(profile_rule_count(p, PR_ASSOCIATION) == 0);
    CHECK(profile_rule_mode_and(p, PR_ASSOCIATION) == 1);
    CHECK(profile_maps_field(p, PF_USER_DEFINED1));
    CHECK(!profile_maps_field(p, PF_PASSWORD));
    patron_rec rec;
    patron_rec_init(&rec);
    CHECK(MAP(p, &rec, "100234", "P100234", "Garc\xc3\xad" "a", "Ana", "", "", "Student", "", "133", "", "09",
              "x", "03/07/2010", "2028", "2029-06-30", "ana@example.org", "555-0100", "1 Main St", "Maple Creek",
              "TX", "75001", "bus 4") == 0);
    CHECK_STR(patron_rec_get(&rec, PF_SITE_SHORT_NAME), "VISTASOL"); /* map_site_133 */
    CHECK_STR(patron_rec_get(&rec, PF_GENDER), "U");
    CHECK_STR(patron_rec_get(&rec, PF_LAST_NAME), "Garc\xc3\xad" "a");
    CHECK_STR(patron_rec_get(&rec, PF_BIRTHDATE), "2010-03-07");
    CHECK_STR(patron_rec_get(&rec, PF_CARD_EXPIRES), "2029-06-30");
    CHECK(rec.state[PF_MIDDLE_NAME] == PV_OMIT);
    CHECK(rec.state[PF_ACCESS_LEVEL] == PV_OMIT);
    CHECK(rec.state[PF_PASSWORD] == PV_UNSET);
    CHECK_STR(patron_rec_get(&rec, PF_USER_DEFINED1), "bus 4");
    const char *cols[] = {"", "P1"};
    size_t lens[] = {0, 2};
    CHECK(profile_rule_matches(p, PR_SKIP, &rec, cols, lens, 2) == 1);
    CHECK(MAP(p, &rec, "1", "", "Lee", "", "", "", "Student", "", "999", "", "", "F", "1/2/2011", "", "12/31/2030") == 0);
    CHECK_STR(patron_rec_get(&rec, PF_SITE_SHORT_NAME), "999"); /* unmapped, no default */
    CHECK_STR(patron_rec_get(&rec, PF_GENDER), "F");
    CHECK_STR(patron_rec_get(&rec, PF_BIRTHDATE), "2011-01-02");
    CHECK(rec.state[PF_CARD_EXPIRES] == PV_INVALID); /* column 15 is yyyy-MM-dd */
    CHECK(rec.state[PF_BARCODE] == PV_OMIT);
    patron_rec_free(&rec);
    profile_destroy(&p);

    p = profile_load("/nonexistent/x.properties", errbuf, sizeof(errbuf));
    CHECK(p == NULL && contains(errbuf, "/nonexistent/x.properties"));
}

static void test_pic_example(void)
{
    profile *p = parse("CsvTextEncoding=windows-1252\nMatchUsingDistrictID=true\nInputRowsToSkip=1\n"
                       "SkipMode=or\nSkipWhen_1={1},\nSkipMax=100\nfield_districtID={1,omit}\n"
                       "field_siteShortName={3,map_site}\nfield_barcode={2,omit}\nfield_lastName={4}\n"
                       "field_firstName={5,omit}\nfield_patronType={3,map_type}\nfield_accessLevel=Student\n"
                       "field_gradeLevel={6}\nfield_birthdate={7,omit}\n"
                       "field_emailPrimary={1}@students.example.org\nfield_type_total=7\n"
                       "field_type_7=date,MM/dd/yyyy\nmap_site_09=LHS\nmap_site_10=LHS\nmap_site_default=LES\n"
                       "map_type_09=Student/HS\nmap_type_default=Student\n");
    CHECK(p != NULL);
    if (p == NULL) {
        printf("  %s\n", errbuf);
        return;
    }
    patron_rec rec;
    patron_rec_init(&rec);
    CHECK(MAP(p, &rec, "S1001", "B1001", "09", "Nguyen", "Minh", "9", "09/01/2009") == 0);
    CHECK_STR(patron_rec_get(&rec, PF_DISTRICT_ID), "S1001");
    CHECK_STR(patron_rec_get(&rec, PF_SITE_SHORT_NAME), "LHS");
    CHECK_STR(patron_rec_get(&rec, PF_PATRON_TYPE), "Student/HS");
    CHECK_STR(patron_rec_get(&rec, PF_ACCESS_LEVEL), "Student");
    CHECK_STR(patron_rec_get(&rec, PF_BIRTHDATE), "2009-09-01");
    CHECK_STR(patron_rec_get(&rec, PF_EMAIL_PRIMARY), "S1001@students.example.org");
    CHECK(MAP(p, &rec, "S1002", "", "03", "Ortiz", "", "3", "") == 0);
    CHECK_STR(patron_rec_get(&rec, PF_SITE_SHORT_NAME), "LES");
    CHECK_STR(patron_rec_get(&rec, PF_PATRON_TYPE), "Student");
    CHECK(rec.state[PF_BARCODE] == PV_OMIT);
    CHECK(rec.state[PF_FIRST_NAME] == PV_OMIT);
    CHECK(rec.state[PF_BIRTHDATE] == PV_OMIT);
    CHECK(profile_max_column(p) == 7);
    patron_rec_free(&rec);
    profile_destroy(&p);
}

/* What Destiny's PIC writes: comment blocks, empty values, repeated keys, map_type_-1. */
static void test_destiny_quirks(void)
{
    const char *text = "#------------------------------------------------------------\r\n"
                       "# PatronImportConverter configuration file (machine generated)\r\n"
                       "#------------------------------------------------------------\r\n"
                       "#COMMENTS_BEGIN\r\n"
                       "# Free text; may hold anything = even this\r\n"
                       "Notes: not a key\r\n"
                       "#COMMENTS_END\r\n"
                       "SiteShortNameDefault=   \r\n"
                       "#SiteShortNameDefault=OLD\r\n"
                       "CsvTextEncoding=windows-1252\r\n"
                       "CsvTextEncoding=UTF-8\r\n"
                       "MatchUsingDistrictID=true   \r\n"
                       "InputRowsToSkip=0\r\n"
                       "InputRowsToSkip=1\r\n"
                       "SkipMode=or\r\n"
                       "SkipWhen_1=field_districtID,\r\n"
                       "SkipMax=100\r\n"
                       "UpdateBeforeDelete=\r\n"
                       "DeleteMode=or\r\n"
                       "DeleteWhen_1=field_patronType,Withdrawn\r\n"
                       "DeleteMax=100\r\n"
                       "AssociationMode=and\r\n"
                       "AssociationMax=100\r\n"
                       "field_districtID={1}\r\n"
                       "field_patronType={2,map_type}\r\n"
                       "field_patrontype={2,map_type}\r\n"
                       "field_cardexpires={3,omit}\r\n"
                       "map_type_-1=Withdrawn\r\n"
                       "map_type_0=Student\r\n"
                       "map_patrontype_default=Student\r\n"
                       "map_PatronType_1=Faculty\r\n"
                       "map_type_default=Student\r\n"
                       "field_type_total=3\r\n"
                       "field_type_1=string\r\n"
                       "field_type_2=string\r\n"
                       "field_type_3=string\r\n";
    profile *p = parse(text);
    CHECK(p != NULL);
    if (p == NULL) {
        printf("  %s\n", errbuf);
        return;
    }
    CHECK_STR(profile_site_default(p), "");
    CHECK_STR(profile_encoding(p), "UTF-8");
    CHECK(profile_rows_to_skip(p) == 1);
    CHECK(profile_update_before_delete(p) == 0);
    patron_rec rec;
    patron_rec_init(&rec);
    CHECK(MATCH(p, &rec, PR_DELETE, "7", "-1", "") == 1);
    CHECK_STR(patron_rec_get(&rec, PF_PATRON_TYPE), "Withdrawn");
    CHECK(rec.state[PF_CARD_EXPIRES] == PV_OMIT);
    CHECK(MATCH(p, &rec, PR_DELETE, "7", "5", "2030-01-01") == 0);
    CHECK_STR(patron_rec_get(&rec, PF_PATRON_TYPE), "Student");
    CHECK_STR(patron_rec_get(&rec, PF_CARD_EXPIRES), "2030-01-01");
    patron_rec_free(&rec);
    profile_destroy(&p);
}

/* The mapping keeps no state between records: the same row maps the same
 * way however many rows came before, and scratch space is reused. */
static void test_many_rows(void)
{
    profile *p = parse("field_districtID={1}\nfield_lastName={2,upper}\nfield_firstName=ISEMPTY({3},{2})\n"
                       "field_siteShortName={4,map_s}\nmap_s_1=A\nmap_s_default=Z\n"
                       "field_emailPrimary={1,regex(\"^0+\",\"\")}@x.org\nfield_birthdate={5}\n"
                       "field_type_5=date,M/d/yyyy\n");
    CHECK(p != NULL);
    if (p == NULL)
        return;
    patron_rec rec;
    patron_rec_init(&rec);
    int bad = 0;
    for (int i = 0; i < 20000; i++) {
        char id[16], d[16];
        snprintf(id, sizeof(id), "%06d", i);
        snprintf(d, sizeof(d), "%d/%d/2010", i % 12 + 1, i % 28 + 1);
        const char *cols[] = {id, "doe", (i & 1) ? "" : "Jo", (i % 3) ? "1" : "2", d};
        size_t lens[5];
        for (int k = 0; k < 5; k++)
            lens[k] = strlen(cols[k]);
        if (profile_map(p, cols, lens, 5, &rec, errbuf, sizeof(errbuf)) != 0)
            bad++;
        char email[32], bd[16];
        snprintf(email, sizeof(email), "%d@x.org", i);
        snprintf(bd, sizeof(bd), "2010-%02d-%02d", i % 12 + 1, i % 28 + 1);
        if (i == 0)
            snprintf(email, sizeof(email), "@x.org");
        if (strcmp(patron_rec_get(&rec, PF_EMAIL_PRIMARY), email) != 0 ||
            strcmp(patron_rec_get(&rec, PF_LAST_NAME), "DOE") != 0 ||
            strcmp(patron_rec_get(&rec, PF_FIRST_NAME), (i & 1) ? "doe" : "Jo") != 0 ||
            strcmp(patron_rec_get(&rec, PF_SITE_SHORT_NAME), (i % 3) ? "A" : "Z") != 0 ||
            strcmp(patron_rec_get(&rec, PF_BIRTHDATE), bd) != 0)
            bad++;
    }
    CHECK(bad == 0);
    patron_rec_free(&rec);
    profile_destroy(&p);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        setenv("SAMPLE_DIR", argv[1], 1);
    T_RUN(test_lines);
    T_RUN(test_settings);
    T_RUN(test_field_names);
    T_RUN(test_expr_forms);
    T_RUN(test_regex_bounded);
    T_RUN(test_regex_risks);
    T_RUN(test_expr_errors);
    T_RUN(test_maps);
    T_RUN(test_dates);
    T_RUN(test_types);
    T_RUN(test_rules);
    T_RUN(test_map_field);
    T_RUN(test_sample_file);
    T_RUN(test_pic_example);
    T_RUN(test_destiny_quirks);
    T_RUN(test_many_rows);
    T_END();
}
