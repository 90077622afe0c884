/* profile_check: `patronctl profile check FILE.properties [--csv SAMPLE.csv]`
 * — validates a PIC profile locally (no cluster needed) and, with a
 * sample CSV, shows how its first records map, field by field, and what
 * the patron rules would do with them against the local store's reference
 * data (read-only; nothing is written). docs/RULES.md. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "profile_check.h"
#include "csvscan.h"
#include "encoding.h"
#include "patron.h"
#include "profile.h"
#include "rules.h"
#include "store.h"

static const char *yes_no(int v)
{
    return v ? "true" : "false";
}

static void print_regex_risk(void *ctx, const char *where, const char *pattern, const char *why)
{
    (void)ctx;
    printf("warning: %s: regex \"%s\": %s; a value that reaches the match limit is an error on its "
           "record (docs/PROFILE.md, regex)\n", where, pattern, why);
}

/* What an operator should know before scheduling this profile. */
static int print_warnings(const profile *p)
{
    int n = 0;
    const char *w[8];
    int match_id = profile_match_district_id(p);
    if (match_id && !profile_maps_field(p, PF_DISTRICT_ID))
        w[n++] = "MatchUsingDistrictID=true but field_districtID is not mapped: every record will be skipped "
                 "(\"District ID is required.\")";
    if (!match_id && !profile_maps_field(p, PF_BARCODE))
        w[n++] = "MatchUsingDistrictID=false but field_barcode is not mapped: every record will be skipped "
                 "(\"No barcode match criteria specified.\")";
    if (!profile_maps_field(p, PF_BARCODE) && match_id)
        w[n++] = "field_barcode is not mapped: new patrons will be skipped (\"Barcode is required for all patrons\")";
    if (!profile_maps_field(p, PF_LAST_NAME))
        w[n++] = "field_lastName is not mapped: new patrons will be skipped (\"Last name is required\")";
    if (!profile_maps_field(p, PF_SITE_SHORT_NAME) && profile_site_default(p)[0] == '\0')
        w[n++] = "neither field_siteShortName nor SiteShortNameDefault is given: new patrons will be skipped "
                 "(\"Site short name is required.\")";
    if (!match_id && profile_rule_count(p, PR_ASSOCIATION) > 0)
        w[n++] = "AssociationWhen rules need MatchUsingDistrictID=true: they are ignored";
    if (profile_update_before_delete(p) && profile_rule_count(p, PR_DELETE) == 0)
        w[n++] = "UpdateBeforeDelete=true has no effect without DeleteWhen rules";
    for (int i = 0; i < n; i++)
        printf("warning: %s\n", w[i]);
    return n + profile_regex_risks(p, print_regex_risk, NULL);
}

static void print_settings(const char *path, const profile *p)
{
    static const char *kinds[] = {"SkipWhen", "DeleteWhen", "AssociationWhen"};
    printf("%s: the profile is valid\n", path);
    printf("  %-22s %s\n", "CsvTextEncoding", profile_encoding(p));
    printf("  %-22s %s (%s)\n", "MatchUsingDistrictID", yes_no(profile_match_district_id(p)),
           profile_match_district_id(p) ? "match on District ID" : "match on Barcode + Site Short Name");
    printf("  %-22s %d\n", "InputRowsToSkip", profile_rows_to_skip(p));
    printf("  %-22s %s\n", "SiteShortNameDefault", profile_site_default(p)[0] ? profile_site_default(p) : "(none)");
    for (int k = PR_SKIP; k <= PR_ASSOCIATION; k++) {
        int n = profile_rule_count(p, (enum profile_rule)k);
        if (n > 0)
            printf("  %-22s %d rule(s), combined with %s\n", kinds[k], n,
                   profile_rule_mode_and(p, (enum profile_rule)k) ? "and" : "or");
        else
            printf("  %-22s none\n", kinds[k]);
    }
    printf("  %-22s %s\n", "UpdateBeforeDelete", yes_no(profile_update_before_delete(p)));
    if (profile_column_total(p) > 0)
        printf("  %-22s %d (the records must have %d to %d columns)\n", "field_type_total", profile_column_total(p),
               profile_max_column(p), profile_column_total(p));
    else
        printf("  %-22s not given (the records must have at least %d columns)\n", "field_type_total",
               profile_max_column(p));
    printf("  %-22s", "fields mapped");
    int any = 0;
    for (int f = 0; f < PF__COUNT; f++) {
        if (profile_maps_field(p, f)) {
            printf(" %s", patron_fields[f].pic);
            any = 1;
        }
    }
    printf("%s\n", any ? "" : " (none)");
}

/* The sample converted to UTF-8 into a new buffer (*len bytes), what the
 * conversion noted printed. NULL with err. profile new reads its sample
 * the same way. */
char *profile_read_sample(const char *path, const char *enc, size_t *len, char *err, size_t errlen)
{
    int in = open(path, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        err_set(err, errlen, "cannot open %s", path);
        return NULL;
    }
    encoding_report rep;
    char *buf = encoding_convert_to_buf(enc, in, path, len, &rep, err, errlen);
    close(in);
    if (buf != NULL && rep.note[0])
        printf("note: %s\n", rep.note);
    if (buf != NULL && rep.bad_total > 0)
        printf("note: %llu place(s) in %s held bytes invalid in %s (shown as U+FFFD)\n",
               (unsigned long long)rep.bad_total, path, rep.detected[0] ? rep.detected : enc);
    encoding_report_free(&rep);
    return buf;
}

static void print_value(int f, const patron_rec *rec)
{
    const char *v = patron_rec_get(rec, f);
    switch (rec->state[f]) {
    case PV_OMIT:
        printf("    %-36s (blank, omit: the stored value is kept)\n", patron_fields[f].pic);
        break;
    case PV_INVALID:
        printf("    %-36s %s  (not a date: left untouched)\n", patron_fields[f].pic, v);
        break;
    case PV_VALUE:
        if (f == PF_PASSWORD)
            printf("    %-36s %s\n", patron_fields[f].pic, *v ? "(given; stored only as a hash)" : "(blank: cleared)");
        else
            printf("    %-36s %s\n", patron_fields[f].pic, *v ? v : "(blank: clears the field)");
        break;
    default:
        break;
    }
}

/* What the rules would do with one mapped record (reference data of the
 * local store; nothing is written). */
static void print_decision(const rules_ctx *ctx, store *st, uint64_t line, const patron_rec *mapped)
{
    exc_list exc;
    exc_list_init(&exc);
    patron_rec existing, out;
    patron_rec_init(&existing);
    patron_rec_init(&out);
    const char *key = NULL;
    if (!rules_match_key(ctx, line, mapped, &key, &exc)) {
        printf("  would skip: %s\n", exc.n ? exc.v[0]->message : "");
        goto done;
    }
    store_patron_meta meta;
    char err[ERRLEN];
    int found = store_find(st, ctx->match_district_id ? PF_DISTRICT_ID : PF_BARCODE, key, &existing, &meta, err,
                           sizeof(err));
    if (found < 0) {
        printf("  (store: %s)\n", err);
        goto done;
    }
    if (found && !ctx->match_district_id &&
        strcmp(rules_record_site(ctx, mapped), patron_rec_get(&existing, PF_SITE_SHORT_NAME)) != 0)
        found = 0;
    int warned = 0;
    int r = rules_decide(ctx, line, mapped, found ? &existing : NULL, &out, &exc, &warned);
    if (r < 0) {
        printf("  (out of memory)\n");
        goto done;
    }
    if (r == 0) {
        printf("  would skip: %s\n", exc.n ? exc.v[exc.n - 1]->message : "");
        goto done;
    }
    if (!found) {
        printf("  would add a patron%s\n", warned ? ", with warnings" : "");
    } else if (patron_hash(&out) == patron_hash(&existing)) {
        printf("  patron %s is stored: unchanged\n", key);
    } else {
        printf("  patron %s is stored: would update", key);
        for (int f = 0; f < PF__COUNT; f++)
            if (strcmp(patron_rec_get(&out, f), patron_rec_get(&existing, f)) != 0)
                printf(" %s", patron_fields[f].pic);
        printf("\n");
    }
    for (size_t i = 0; i < exc.n; i++)
        printf("  %-7s %s\n", exc.v[i]->outcome, exc.v[i]->message);
done:
    exc_list_free(&exc);
    patron_rec_free(&existing);
    patron_rec_free(&out);
}

/* The store's reference data for the rules, when there is a store here:
 * the store (NULL: none, said so) with ref loaded. */
static store *rules_store(const ps_config *cfg, rules_ref *ref)
{
    char err[ERRLEN];
    store *st = NULL;
    memset(ref, 0, sizeof(*ref));
    struct stat sb;
    if (stat(cfg->store_path, &sb) == 0) {
        st = store_open(cfg->store_path, 8, STORE_READONLY, err, sizeof(err));
        if (st != NULL && rules_ref_load(ref, st, err, sizeof(err)) < 0)
            store_close(&st);
    }
    if (st == NULL)
        printf("note: no store at %s: the records are mapped, the patron rules are not applied\n", cfg->store_path);
    return st;
}

/* One sample record: mapped field by field, then what the rules would do. */
static void show_record(const profile *p, csvrow *row, const char *buf, const csvscan_rec *r, patron_rec *rec,
                        const rules_ctx *ctx, store *st)
{
    char err[ERRLEN];
    int max_col = profile_max_column(p), total = profile_column_total(p);
    if (r->flags & CSVSCAN_UNTERMINATED) {
        printf("  would skip: a quoted field is not closed before the end of the file\n");
        return;
    }
    if (csvrow_parse(row, buf + r->off, r->len, err, sizeof(err)) < 0) {
        printf("  would skip: %s\n", err);
        return;
    }
    size_t ncols = csvrow_count(row);
    if ((int)ncols < max_col || (total > 0 && (int)ncols > total)) {
        printf("  would skip: %zu fields; the profile expects %s%d\n", ncols,
               (int)ncols < max_col ? "at least " : "at most ", (int)ncols < max_col ? max_col : total);
        return;
    }
    const char *const *cols = csvrow_fields(row);
    const size_t *lens = csvrow_lens(row);
    if (profile_map(p, cols, lens, ncols, rec, err, sizeof(err)) < 0) {
        printf("  would skip: %s\n", err);
        return;
    }
    for (int f = 0; f < PF__COUNT; f++)
        print_value(f, rec);
    if (profile_rule_count(p, PR_SKIP) > 0 && profile_rule_matches(p, PR_SKIP, rec, cols, lens, ncols) == 1) {
        printf("  SkipWhen matches: skipped by rule\n");
        return;
    }
    if (profile_rule_count(p, PR_DELETE) > 0 && profile_rule_matches(p, PR_DELETE, rec, cols, lens, ncols) == 1)
        printf("  DeleteWhen matches: the patron would be deleted%s\n",
               profile_update_before_delete(p) ? " (updated first)" : "");
    else if (profile_match_district_id(p) && profile_rule_count(p, PR_ASSOCIATION) > 0 &&
             profile_rule_matches(p, PR_ASSOCIATION, rec, cols, lens, ncols) == 1)
        printf("  AssociationWhen matches: a patron stored at another site would be associated with this one\n");
    else if (st != NULL)
        print_decision(ctx, st, r->line, rec);
}

static int show_sample(const ps_config *cfg, const profile *p, const char *csv, const char *enc, int64_t nrec)
{
    char err[ERRLEN];
    size_t len = 0;
    char *buf = profile_read_sample(csv, enc && *enc ? enc : profile_encoding(p), &len, err, sizeof(err));
    if (buf == NULL) {
        fprintf(stderr, "patronctl: %s\n", err);
        return PS_EXIT_FAILED;
    }
    rules_ref ref;
    store *st = rules_store(cfg, &ref);
    rules_ctx ctx;
    rules_ctx_init(&ctx, &ref, profile_match_district_id(p), profile_site_default(p));
    csvrow *row = csvrow_new((size_t)cfg->max_fields);
    patron_rec rec;
    patron_rec_init(&rec);
    csvscan sc;
    csvscan_init(&sc, buf, len, 1, (size_t)cfg->max_record_bytes);
    csvscan_rec r;
    int64_t skip = profile_rows_to_skip(p), shown = 0;
    while (row != NULL && shown < nrec && csvscan_next(&sc, &r)) {
        if (skip > 0) {
            skip--;
            continue;
        }
        shown++;
        printf("\n%s line %llu:\n", csv, (unsigned long long)r.line);
        show_record(p, row, buf, &r, &rec, &ctx, st);
    }
    if (shown == 0)
        printf("\n%s: no records after the %d row(s) to skip\n", csv, profile_rows_to_skip(p));
    patron_rec_free(&rec);
    csvrow_destroy(&row);
    rules_ref_free(&ref);
    store_close(&st);
    free(buf);
    return PS_EXIT_OK;
}

int profile_cmd(const cli_ctx *c)
{
    const ps_config *cfg = c->cfg;
    const char *file = c->pos[0], *csv = cli_value(c, "--csv"), *enc = cli_value(c, "--encoding");
    int64_t nrec = cli_number(c, "--records", 5);
    if (enc && *enc && !encoding_known(enc)) {
        fprintf(stderr, "patronctl profile check: encoding '%s' is not known\n", enc);
        return PS_EXIT_USAGE;
    }
    /* The files named: there, and regular files, before anything is read. */
    int fd;
    int rc = cli_open_operand(c, file, &fd);
    if (rc != 0)
        return rc;
    close(fd);
    if (csv) {
        rc = cli_open_operand(c, csv, &fd);
        if (rc != 0)
            return rc;
        close(fd);
    }
    return profile_check_file(cfg, file, csv, enc, nrec);
}

int profile_check_file(const ps_config *cfg, const char *file, const char *csv, const char *enc, int64_t nrec)
{
    char err[ERRLEN];
    int rc;
    profile *p = profile_load(file, err, sizeof(err));
    if (p == NULL) {
        fprintf(stderr, "patronctl: profile refused: %s\n", err);
        return PS_EXIT_FAILED;
    }
    if (!encoding_known(profile_encoding(p))) {
        fprintf(stderr, "patronctl: profile refused: %s: CsvTextEncoding=%s is not an encoding this system knows\n",
                file, profile_encoding(p));
        profile_destroy(&p);
        return PS_EXIT_FAILED;
    }
    print_settings(file, p);
    print_warnings(p);
    rc = csv ? show_sample(cfg, p, csv, enc, nrec) : PS_EXIT_OK;
    profile_destroy(&p);
    return rc;
}
