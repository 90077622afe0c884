/* profile_new: `patronctl profile new --csv SAMPLE --out FILE` — the Patron
 * Import Converter on the command line (the logic: lib/converter.c) — and
 * `patronctl profile explain FILE`, a profile field by field in words.
 * On a terminal it asks column by column, then the maps, the default site,
 * the match mode and the rules; without one (or with --yes) it takes the
 * proposals and the options. docs/CONVERTER.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "converter.h"
#include "encoding.h"
#include "profile.h"
#include "profile_check.h"
#include "profile_new.h"
#include "store.h"

#define SAMPLE_MAX (256u << 20)

static const char *const CMD = "patronctl profile new";

/* ---------------------------------------------------------------- the store's sites */

/* The sites and patron types of the store under --data, when there is
 * one (read-only, as profile check reads it). 1 known, 0 no store. */
static int load_store(const ps_config *cfg, converter *c)
{
    struct stat sb;
    char err[ERRLEN];
    if (stat(cfg->store_path, &sb) != 0)
        return 0;
    store *st = store_open(cfg->store_path, 8, STORE_READONLY, err, sizeof(err));
    if (st == NULL) {
        printf("note: the store %s cannot be read (%s): site maps are not checked\n", cfg->store_path, err);
        return 0;
    }
    store_site *sites = NULL;
    size_t ns = 0;
    char **types = NULL;
    size_t nt = 0;
    char dflt[64] = "";
    if (store_sites(st, &sites, &ns, err, sizeof(err)) == 0) {
        for (size_t i = 0; i < ns; i++)
            conv_add_site(c, sites[i].short_name, sites[i].school_number, sites[i].name, 1);
        free(sites);
    }
    if (store_ref_names(st, STORE_REF_PATRON_TYPE, &types, &nt, err, sizeof(err)) == 0) {
        store_ref_default(st, STORE_REF_PATRON_TYPE, dflt, sizeof(dflt), err, sizeof(err));
        if (nt > 0)
            conv_set_patron_types(c, types, nt, dflt);
        store_names_free(types, nt);
    }
    store_close(&st);
    if (ns == 0)
        printf("note: the store %s holds no sites yet: site maps are not checked\n", cfg->store_path);
    return ns > 0;
}

/* ---------------------------------------------------------------- options */

static int opt_field(const char *name, const char *opt, const char *given, int *field)
{
    *field = conv_field_by_name(name);
    if (*field < 0) {
        fprintf(stderr, "%s: %s %s: '%s' is not a patron field (docs/PROFILE.md lists them: lastName, "
                        "siteShortName, ...)\n", CMD, opt, given, name);
        return -1;
    }
    return 0;
}

/* --map N=FIELD (FIELD "skip": not imported). */
static int opt_map(converter *c, const char *v)
{
    char *end;
    long n = strtol(v, &end, 10);
    char err[ERRLEN];
    if (end == v || *end != '=') {
        fprintf(stderr, "%s: --map %s: expected N=FIELD (3=lastName, 7=skip)\n", CMD, v);
        return -1;
    }
    int field = -1;
    if (strcasecmp(end + 1, "skip") != 0 && opt_field(end + 1, "--map", v, &field) < 0)
        return -1;
    if (n < 1 || n > c->ncols || conv_set_field(c, (int)n, field, "as --map says", err, sizeof(err)) < 0) {
        if (n < 1 || n > c->ncols)
            err_set(err, sizeof(err), "column %ld is out of range: %s has columns 1 to %d", n, c->name, c->ncols);
        fprintf(stderr, "%s: --map %s: %s\n", CMD, v, err);
        return -1;
    }
    return 0;
}

/* --map-value FIELD:VALUE=TARGET */
static int opt_map_value(converter *c, const char *v)
{
    const char *colon = strchr(v, ':');
    const char *eq = colon ? strchr(colon + 1, '=') : NULL;
    char name[64], from[256], err[ERRLEN];
    int field;
    if (colon == NULL || eq == NULL || colon == v || (size_t)(colon - v) >= sizeof(name) ||
        (size_t)(eq - colon) > sizeof(from)) {
        fprintf(stderr, "%s: --map-value %s: expected FIELD:VALUE=TARGET (site:111=ALAMEDA, gender:X=U)\n", CMD, v);
        return -1;
    }
    str_copy(name, (size_t)(colon - v) + 1, v);
    str_copy(from, (size_t)(eq - colon), colon + 1);
    if (opt_field(name, "--map-value", v, &field) < 0)
        return -1;
    if (conv_map_value(c, field, from, eq + 1, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s: --map-value %s: %s\n", CMD, v, err);
        return -1;
    }
    return 0;
}

/* --default FIELD=VALUE (siteShortName: SiteShortNameDefault). */
static int opt_default(converter *c, const char *v)
{
    const char *eq = strchr(v, '=');
    char name[64], err[ERRLEN];
    int field;
    if (eq == NULL || eq == v || (size_t)(eq - v) >= sizeof(name)) {
        fprintf(stderr, "%s: --default %s: expected FIELD=VALUE (accessLevel=Student)\n", CMD, v);
        return -1;
    }
    str_copy(name, (size_t)(eq - v) + 1, v);
    if (opt_field(name, "--default", v, &field) < 0)
        return -1;
    int rc = field == PF_SITE_SHORT_NAME && conv_field_column(c, field) == 0
                 ? conv_set_site_default(c, eq + 1, err, sizeof(err))
                 : conv_set_default(c, field, eq + 1, err, sizeof(err));
    if (rc < 0)
        fprintf(stderr, "%s: --default %s: %s\n", CMD, v, err);
    return rc;
}

/* The options in the order given: --map first, so the maps and defaults
 * after them apply to the columns chosen. 0 / -1 (printed). */
static int apply_options(const cli_ctx *cx, converter *c)
{
    static const char *const order[] = {"--map", "--match", "--map-value", "--default", "--default-site",
                                        "--skip-when", "--delete-when", NULL};
    int cleared[2] = {0, 0};
    char err[ERRLEN];
    for (int o = 0; order[o]; o++) {
        for (int i = 0; i < cx->nopt; i++) {
            const char *name = cx->opt[i]->name, *v = cx->val[i];
            if (strcmp(name, order[o]) != 0)
                continue;
            int rc = 0;
            if (o == 0)
                rc = opt_map(c, v);
            else if (o == 1) {
                if (strcasecmp(v, "districtid") != 0 && strcasecmp(v, "barcode") != 0) {
                    fprintf(stderr, "%s: --match %s: expected districtid or barcode\n", CMD, v);
                    return -1;
                }
                conv_set_match(c, strcasecmp(v, "districtid") == 0);
            } else if (o == 2)
                rc = opt_map_value(c, v);
            else if (o == 3)
                rc = opt_default(c, v);
            else if (o == 4) {
                rc = conv_set_site_default(c, v, err, sizeof(err));
                if (rc < 0)
                    fprintf(stderr, "%s: --default-site %s: %s\n", CMD, v, err);
            } else {
                int w = o == 5 ? PR_SKIP : PR_DELETE;
                if (!cleared[w]++)
                    conv_add_rule(c, (enum profile_rule)w, "", NULL, 0);
                rc = conv_add_rule(c, (enum profile_rule)w, v, err, sizeof(err));
                if (rc < 0)
                    fprintf(stderr, "%s: %s %s: %s\n", CMD, name, v, err);
            }
            if (rc < 0)
                return -1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- the report */

static void print_column(const conv_column *col)
{
    char looks[160], ex[200];
    conv_describe_column(col, looks, sizeof(looks));
    conv_examples(col, CONV_EXAMPLES, ex, sizeof(ex));
    printf("column %d", col->number);
    if (col->header)
        printf(" \"%s\"", col->header);
    printf(": %s%s%s\n", looks, ex[0] ? "; e.g. " : "", ex);
    if (col->field >= 0)
        printf("    -> %s (%s): %s\n", patron_fields[col->field].pic, patron_fields[col->field].label, col->reason);
    else
        printf("    -> not imported: %s\n", col->reason);
}

static void print_map(const conv_map *m)
{
    printf("map_%s (%s%s): %zu value%s%s%s\n", m->name, patron_fields[m->field].label,
           m->column ? ", read from the grade column" : "", m->n, m->n == 1 ? "" : "s",
           m->def ? ", any other: " : "", m->def ? m->def : "");
    for (size_t i = 0; i < m->n; i++)
        printf("    %s -> %s  (%s)\n", m->v[i].from, m->v[i].to, m->v[i].why);
}

static void print_choices(const converter *c)
{
    printf("%s: %d columns, %zu record%s read; %s (%s); encoding %s (%s)\n", c->name, c->ncols,
           c->nrows - (size_t)c->header, c->nrows - (size_t)c->header == 1 ? "" : "s",
           c->header ? "a header row" : "no header row", c->header_why, c->encoding, c->encoding_why);
    for (int k = 0; k < c->ncols; k++)
        print_column(&c->cols[k]);
    for (size_t i = 0; i < c->nmaps; i++)
        print_map(&c->maps[i]);
    printf("match: %s\n", c->match_district_id ? "on District ID" : "on barcode + site");
    printf("default site: %s\n", c->site_default[0] ? c->site_default : "(none)");
    static const char *const kinds[] = {"skip", "delete"};
    for (int w = 0; w < 2; w++) {
        for (size_t i = 0; i < c->nrules[w]; i++) {
            const conv_rule *r = &c->rules[w][i];
            if (r->field >= 0)
                printf("%s when: field_%s,%s\n", kinds[w], patron_fields[r->field].pic, r->value);
            else
                printf("%s when: {%d},%s\n", kinds[w], r->col, r->value);
        }
    }
    const char *notes = sb_str(&c->notes);
    for (const char *p = notes; *p;) {
        size_t l = strcspn(p, "\n");
        printf("note: %.*s\n", (int)l, p);
        p += l + (p[l] == '\n');
    }
}

/* ---------------------------------------------------------------- asking */

/* One answer from the terminal, its line end cut. -1 at the end of input. */
static int ask(const char *prompt, char *line, size_t n)
{
    fputs(prompt, stdout);
    fflush(stdout);
    if (fgets(line, (int)n, stdin) == NULL)
        return -1;
    line[strcspn(line, "\r\n")] = '\0';
    return 0;
}

/* Accept, change or skip one column. -1 at the end of input. */
static int ask_column(converter *c, int k)
{
    char line[256], err[ERRLEN];
    for (;;) {
        print_column(&c->cols[k]);
        if (ask("  [a]ccept, [c]hange, [s]kip? ", line, sizeof(line)) < 0)
            return -1;
        if (line[0] == '\0' || strcasecmp(line, "a") == 0)
            return 0;
        if (strcasecmp(line, "s") == 0)
            return conv_set_field(c, k + 1, -1, "skipped", err, sizeof(err)) < 0 ? -1 : 0;
        if (strcasecmp(line, "c") == 0 && ask("  field (a patron field such as lastName, or skip): ", line,
                                              sizeof(line)) < 0)
            return -1;
        if (strcasecmp(line, "skip") == 0)
            return conv_set_field(c, k + 1, -1, "skipped", err, sizeof(err)) < 0 ? -1 : 0;
        int f = conv_field_by_name(line);
        if (f >= 0)
            return conv_set_field(c, k + 1, f, "as chosen", err, sizeof(err)) < 0 ? -1 : 0;
        printf("  '%s' is not a patron field (docs/PROFILE.md lists them)\n", line);
    }
}

/* Ask prompt again and again, each answer to handle(c, arg, line), until
 * an empty answer (0) or the end of input (-1). */
static int ask_each(const char *prompt, converter *c, const void *arg,
                    int (*handle)(converter *c, const void *arg, char *line))
{
    char line[512];
    for (;;) {
        if (ask(prompt, line, sizeof(line)) < 0)
            return -1;
        if (line[0] == '\0')
            return 0;
        if (handle(c, arg, line) < 0)
            return -1;
    }
}

/* One VALUE=TARGET entry of the map feeding *(const int *)field. */
static int map_entry(converter *c, const void *field, char *line)
{
    char err[ERRLEN];
    char *eq = strchr(line, '=');
    if (eq == NULL || eq == line) {
        printf("  expected VALUE=TARGET\n");
        return 0;
    }
    *eq = '\0';
    if (conv_map_value(c, *(const int *)field, line, eq + 1, err, sizeof(err)) < 0)
        printf("  %s\n", err);
    return 0;
}

static const char *const entry_prompt =
    "  VALUE=TARGET to add or change one (default=TARGET for the rest), empty when done: ";

/* Another map: the field named, then its entries. */
static int another_map(converter *c, const void *arg, char *line)
{
    int f = conv_field_by_name(line);
    if (f < 0) {
        printf("  '%s' is not a patron field\n", line);
        return 0;
    }
    return ask_each(entry_prompt, c, &f, map_entry);
}

static int ask_maps(converter *c)
{
    for (size_t i = 0; i < c->nmaps; i++) {
        print_map(&c->maps[i]);
        int f = c->maps[i].field;
        if (ask_each(entry_prompt, c, &f, map_entry) < 0)
            return -1;
    }
    return ask_each("Another map: the field it feeds (siteShortName, gender, patronType, ...), empty for none: ", c,
                    NULL, another_map);
}

/* One rule of kind *(const enum profile_rule *)w; "-" drops them all. */
static int rule_entry(converter *c, const void *w, char *line)
{
    char err[ERRLEN];
    if (conv_add_rule(c, *(const enum profile_rule *)w, strcmp(line, "-") == 0 ? "" : line, err, sizeof(err)) < 0)
        printf("  %s\n", err);
    return 0;
}

static int ask_rules(converter *c, enum profile_rule w, const char *what)
{
    char prompt[160];
    snprintf(prompt, sizeof(prompt), "%s rule to add (FIELD,VALUE or {N},VALUE; '-' drops them all), empty when done: ",
             what);
    return ask_each(prompt, c, &w, rule_entry);
}

/* The whole conversation; -1 when the input ended early (the rest is
 * taken as proposed). */
static int converse(converter *c)
{
    char line[128], prompt[160], err[ERRLEN];
    printf("%s: %d columns; %s (%s)\n", c->name, c->ncols, c->header ? "a header row" : "no header row",
           c->header_why);
    for (int k = 0; k < c->ncols; k++)
        if (ask_column(c, k) < 0)
            return -1;
    if (ask_maps(c) < 0)
        return -1;
    snprintf(prompt, sizeof(prompt), "Default site (SiteShortNameDefault) [%s]: ",
             c->site_default[0] ? c->site_default : "none");
    while (ask(prompt, line, sizeof(line)) == 0 && line[0]) {
        if (conv_set_site_default(c, strcmp(line, "none") == 0 ? "" : line, err, sizeof(err)) == 0)
            break;
        printf("  %s\n", err);
    }
    snprintf(prompt, sizeof(prompt), "Match patrons on [d]istrict ID or [b]arcode + site? [%s]: ",
             c->match_district_id ? "d" : "b");
    if (ask(prompt, line, sizeof(line)) < 0)
        return -1;
    if (line[0] == 'd' || line[0] == 'b')
        conv_set_match(c, line[0] == 'd');
    if (ask_rules(c, PR_SKIP, "Skip") < 0 || ask_rules(c, PR_DELETE, "Delete") < 0)
        return -1;
    return 0;
}

/* ---------------------------------------------------------------- the command */

/* The options that say how to read the sample: header -1/0/1, encoding. */
static int read_options(const cli_ctx *cx, int *header, const char **enc)
{
    int h = cli_flag(cx, "--header"), nh = cli_flag(cx, "--no-header");
    if (h && nh) {
        fprintf(stderr, "%s: --header and --no-header contradict each other\n", CMD);
        return -1;
    }
    *header = h ? 1 : nh ? 0 : -1;
    *enc = cli_value(cx, "--encoding");
    if (*enc && **enc && !encoding_known(*enc)) {
        fprintf(stderr, "%s: --encoding %s: not an encoding this system knows\n", CMD, *enc);
        return -1;
    }
    if (cli_value(cx, "--csv") == NULL || cli_value(cx, "--out") == NULL) {
        fprintf(stderr, "%s: --csv SAMPLE.csv and --out FILE.properties are both needed\n", CMD);
        return -1;
    }
    return 0;
}

/* The sample read, described and proposed for, the sites known. NULL with
 * *rc the exit status (printed). */
static converter *open_sample(const cli_ctx *cx, int *rc)
{
    int header;
    const char *enc, *csv = cli_value(cx, "--csv"), *sites = cli_value(cx, "--sites");
    char err[ERRLEN];
    size_t len;
    *rc = PS_EXIT_USAGE;
    if (read_options(cx, &header, &enc) < 0)
        return NULL;
    char *bytes = cli_read_operand(cx, csv, SAMPLE_MAX, &len, rc);
    if (bytes == NULL)
        return NULL;
    converter *c = conv_new(bytes, len, enc, csv, header, err, sizeof(err));
    free(bytes);
    if (c == NULL) {
        fprintf(stderr, "%s: %s\n", CMD, err);
        *rc = PS_EXIT_FAILED;
        return NULL;
    }
    load_store(cx->cfg, c);
    if (sites) {
        char *text = cli_read_operand(cx, sites, 16u << 20, &len, rc);
        if (text == NULL || conv_sites_from_csv(c, text, len, sites, err, sizeof(err)) < 0) {
            if (text != NULL)
                fprintf(stderr, "%s: --sites %s\n", CMD, err);
            free(text);
            conv_destroy(&c);
            *rc = text ? PS_EXIT_FAILED : *rc;
            return NULL;
        }
        free(text);
    }
    if (conv_propose(c) < 0) {
        fprintf(stderr, "%s: out of memory\n", CMD);
        conv_destroy(&c);
        *rc = PS_EXIT_FAILED;
    }
    return c;
}

/* Write the profile (never over a file unless --force). The exit status. */
static int write_profile(const cli_ctx *cx, const converter *c, const char *out)
{
    char err[ERRLEN], stamp[64];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M UTC", &tm);
    size_t len;
    char *text = conv_write(c, stamp, &len, err, sizeof(err));
    if (text == NULL) {
        fprintf(stderr, "%s: %s\n", CMD, err);
        return PS_EXIT_FAILED;
    }
    int rc = cli_flag(cx, "--force") ? file_write_atomic(out, text, len, err, sizeof(err))
                                     : file_write_once(out, text, len, err, sizeof(err));
    free(text);
    if (rc == 1) {
        fprintf(stderr, "%s: %s exists: refusing to overwrite it (--force replaces it)\n", CMD, out);
        return PS_EXIT_USAGE;
    }
    if (rc < 0) {
        fprintf(stderr, "%s: cannot write %s: %s\n", CMD, out, err);
        return PS_EXIT_FAILED;
    }
    return PS_EXIT_OK;
}

int profile_new_cmd(const cli_ctx *cx)
{
    int rc;
    const char *out = cli_value(cx, "--out");
    struct stat sb;
    if (out && !cli_flag(cx, "--force") && lstat(out, &sb) == 0) {
        fprintf(stderr, "%s: %s exists: refusing to overwrite it (--force replaces it)\n", CMD, out);
        return PS_EXIT_USAGE;
    }
    converter *c = open_sample(cx, &rc);
    if (c == NULL)
        return rc;
    if (apply_options(cx, c) < 0) {
        conv_destroy(&c);
        return PS_EXIT_USAGE;
    }
    int interactive = !cli_flag(cx, "--yes") && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
    if (interactive && converse(c) < 0)
        printf("\n(input ended: the rest is taken as proposed)\n");
    printf(interactive ? "\nchosen:\n" : "proposed and taken (no terminal%s):\n",
           interactive ? "" : cli_flag(cx, "--yes") ? ", --yes" : "");
    print_choices(c);
    rc = write_profile(cx, c, out);
    if (rc == PS_EXIT_OK) {
        printf("\nwrote %s; checking it with the sample (as 'profile check %s --csv %s'):\n", out, out,
               cli_value(cx, "--csv"));
        fflush(stdout);
        rc = profile_check_file(cx->cfg, out, cli_value(cx, "--csv"), c->encoding, 3);
    }
    conv_destroy(&c);
    return rc;
}

/* ---------------------------------------------------------------- explain */

int profile_explain_cmd(const cli_ctx *cx)
{
    const char *file = cx->pos[0];
    int fd, rc = cli_open_operand(cx, file, &fd);
    if (rc != 0)
        return rc;
    close(fd);
    char err[ERRLEN];
    profile *p = profile_load(file, err, sizeof(err));
    if (p == NULL) {
        fprintf(stderr, "patronctl: profile refused: %s\n", err);
        return PS_EXIT_FAILED;
    }
    printf("%s: the file is read as %s; %d row%s skipped at the top; patrons are matched on %s; default site: %s\n",
           file, profile_encoding(p), profile_rows_to_skip(p), profile_rows_to_skip(p) == 1 ? "" : "s",
           profile_match_district_id(p) ? "District ID" : "barcode + site", *profile_site_default(p) ?
           profile_site_default(p) : "none");
    strbuf sb;
    sb_init(&sb);
    for (int f = 0; f < PF__COUNT; f++) {
        sb_reset(&sb);
        if (profile_explain_field(p, f, &sb) == 1)
            printf("%s: %s\n", patron_fields[f].label, sb_str(&sb));
    }
    for (int w = PR_SKIP; w <= PR_ASSOCIATION; w++) {
        sb_reset(&sb);
        if (profile_explain_rules(p, (enum profile_rule)w, &sb) > 0)
            fputs(sb_str(&sb), stdout);
    }
    printf("Every other field is not mapped: a stored patron keeps its value.\n");
    sb_free(&sb);
    profile_destroy(&p);
    return PS_EXIT_OK;
}
