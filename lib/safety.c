/* safety: finishing-step and threshold options — defaults, parsing,
 * validation, the threshold check — and calendar-day helpers. */
#include "safety.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "patron.h"

/* Destiny's wording (EXCEPTIONS.md, CONFIG). */
#define MSG_DAYS "Number of days before inactivating patrons must be between 0 and 999."
#define MSG_RECORDS "Patron records read must be between 0 and 999,999."
/* patronsync's own, in the same style. */
#define MSG_DELETE_DAYS "Number of days before deleting patrons must be between 0 and 999, or never."
#define MSG_HOMEROOM "An inactive homeroom can be set only when patrons missing from the file are inactivated."
#define MSG_DELETE_NEEDS "Deleting patrons missing from the file needs inactivating them turned on."

static const struct {
    const char *name;  /* option name (the JobOptions field) */
    const char *label; /* in messages */
    int index;         /* SAFETY_T_* */
} thresholds[] = {
    {"max_add_pct", "Patrons added", SAFETY_T_ADD},
    {"max_update_pct", "Patrons updated", SAFETY_T_UPDATE},
    {"max_inactivate_pct", "Patrons inactivated", SAFETY_T_INACTIVATE},
    {"max_delete_pct", "Patrons deleted", SAFETY_T_DELETE},
    {"max_remove_pct", "Patrons removed (inactivated or deleted)", SAFETY_T_REMOVE},
};
#define NTHRESHOLDS (sizeof(thresholds) / sizeof(thresholds[0]))

static const char *const other_options[] = {
    "inactivate_missing", "min_records",   "days_before_inactivate", "inactive_homeroom",
    "delete_after_days",  "scope_sites",   "scope_types",            "allow_delete_outstanding",
};

static double *threshold_field(Patronsync__JobOptions *o, int index)
{
    switch (index) {
    case SAFETY_T_ADD:
        return &o->max_add_pct;
    case SAFETY_T_UPDATE:
        return &o->max_update_pct;
    case SAFETY_T_INACTIVATE:
        return &o->max_inactivate_pct;
    case SAFETY_T_DELETE:
        return &o->max_delete_pct;
    default:
        return &o->max_remove_pct;
    }
}

static void default_thresholds(double pct[SAFETY_NT])
{
    pct[SAFETY_T_ADD] = -1;
    pct[SAFETY_T_UPDATE] = SAFETY_DEFAULT_UPDATE_PCT;
    pct[SAFETY_T_INACTIVATE] = -1;
    pct[SAFETY_T_DELETE] = -1;
    pct[SAFETY_T_REMOVE] = SAFETY_DEFAULT_REMOVE_PCT;
}

void safety_options_init(Patronsync__JobOptions *o)
{
    patronsync__job_options__init(o);
    o->delete_after_days = -1;
    double pct[SAFETY_NT];
    default_thresholds(pct);
    for (int i = 0; i < SAFETY_NT; i++)
        *threshold_field(o, i) = pct[i];
    o->thresholds_set = 0;
}

int safety_is_option(const char *name)
{
    for (size_t i = 0; i < NTHRESHOLDS; i++)
        if (strcmp(name, thresholds[i].name) == 0)
            return 1;
    for (size_t i = 0; i < sizeof(other_options) / sizeof(other_options[0]); i++)
        if (strcmp(name, other_options[i]) == 0)
            return 1;
    return 0;
}

static int parse_bool(const char *v, int *out)
{
    static const char *yes[] = {"", "1", "true", "yes", "on", "y", "t"};
    static const char *no[] = {"0", "false", "no", "off", "n", "f"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        if (strcasecmp(v, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        if (strcasecmp(v, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    return -1;
}

/* A percentage 0..100, or off/none/-1 (stored as -1). */
static int parse_pct(const char *v, double *out)
{
    if (strcasecmp(v, "off") == 0 || strcasecmp(v, "none") == 0 || strcmp(v, "-1") == 0) {
        *out = -1;
        return 0;
    }
    if (*v == '\0')
        return -1;
    char *end = NULL;
    errno = 0;
    double d = strtod(v, &end);
    if (errno != 0 || end == v || (*end != '\0' && strcmp(end, "%") != 0) || !isfinite(d) || d < 0 || d > 100)
        return -1;
    *out = d;
    return 0;
}

static void free_list(char ***v, size_t *n)
{
    for (size_t i = 0; i < *n; i++)
        free((*v)[i]);
    free(*v);
    *v = NULL;
    *n = 0;
}

/* A comma-separated list into a new array of trimmed, non-empty items. */
static int parse_list(const char *v, size_t maxlen, const char *what, char ***out, size_t *n, char *err,
                      size_t errlen)
{
    free_list(out, n);
    size_t cap = 1;
    for (const char *p = v; *p; p++)
        cap += *p == ',';
    if (cap > 10000) {
        err_set(err, errlen, "Too many %s listed (%zu); at most 10000.", what, cap);
        return -1;
    }
    char **list = calloc(cap, sizeof(char *));
    if (list == NULL) {
        err_set(err, errlen, "out of memory");
        return -1;
    }
    size_t k = 0;
    const char *p = v;
    for (;;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        while (len > 0 && (*p == ' ' || *p == '\t')) {
            p++;
            len--;
        }
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len > 0) {
            if (utf8_chars(p, len) > maxlen) {
                err_set(err, errlen, "%.*s: too long for one of the %s; at most %zu characters.", (int)len, p, what,
                        maxlen);
                free_list(&list, &k);
                return -1;
            }
            list[k] = strndup(p, len);
            if (list[k] == NULL) {
                free_list(&list, &k);
                err_set(err, errlen, "out of memory");
                return -1;
            }
            k++;
        }
        if (e == NULL)
            break;
        p = e + 1;
    }
    *out = list;
    *n = k;
    return 0;
}

int safety_option_set(Patronsync__JobOptions *o, const char *name, const char *value, char *err, size_t errlen)
{
    const char *v = value ? value : "";
    int64_t n;
    int b;
    for (size_t i = 0; i < NTHRESHOLDS; i++) {
        if (strcmp(name, thresholds[i].name) != 0)
            continue;
        double d;
        if (parse_pct(v, &d) < 0) {
            err_set(err, errlen, "%s threshold (%s) must be a percentage between 0 and 100, or off.",
                    thresholds[i].label, v);
            return -1;
        }
        if (!o->thresholds_set) {
            double pct[SAFETY_NT];
            default_thresholds(pct);
            for (int k = 0; k < SAFETY_NT; k++)
                *threshold_field(o, k) = pct[k];
            o->thresholds_set = 1;
        }
        *threshold_field(o, thresholds[i].index) = d;
        return 0;
    }
    if (strcmp(name, "inactivate_missing") == 0 || strcmp(name, "allow_delete_outstanding") == 0) {
        if (parse_bool(v, &b) < 0) {
            err_set(err, errlen, "%s: '%s' is not true or false.", name, v);
            return -1;
        }
        if (name[0] == 'i')
            o->inactivate_missing = b;
        else
            o->allow_delete_outstanding = b;
        return 0;
    }
    if (strcmp(name, "min_records") == 0) {
        if (parse_i64(v, 0, 999999, &n) < 0) {
            err_set(err, errlen, MSG_RECORDS);
            return -1;
        }
        o->min_records = (uint32_t)n;
        return 0;
    }
    if (strcmp(name, "days_before_inactivate") == 0) {
        if (parse_i64(v, 0, 999, &n) < 0) {
            err_set(err, errlen, MSG_DAYS);
            return -1;
        }
        o->days_before_inactivate = (uint32_t)n;
        return 0;
    }
    if (strcmp(name, "delete_after_days") == 0) {
        if (strcasecmp(v, "never") == 0 || strcasecmp(v, "off") == 0) {
            o->delete_after_days = -1;
            return 0;
        }
        if (parse_i64(v, -1, 999, &n) < 0) {
            err_set(err, errlen, MSG_DELETE_DAYS);
            return -1;
        }
        o->delete_after_days = (int32_t)n;
        return 0;
    }
    if (strcmp(name, "inactive_homeroom") == 0) {
        if (utf8_chars(v, strlen(v)) > (size_t)patron_fields[PF_HOMEROOM].maxlen) {
            err_set(err, errlen, "Inactive homeroom too long; at most %d characters.", patron_fields[PF_HOMEROOM].maxlen);
            return -1;
        }
        char *h = strdup(v);
        if (h == NULL) {
            err_set(err, errlen, "out of memory");
            return -1;
        }
        if (o->inactive_homeroom != NULL && o->inactive_homeroom != protobuf_c_empty_string)
            free(o->inactive_homeroom);
        o->inactive_homeroom = h;
        return 0;
    }
    if (strcmp(name, "scope_sites") == 0)
        return parse_list(v, (size_t)patron_fields[PF_SITE_SHORT_NAME].maxlen, "sites", &o->scope_sites,
                          &o->n_scope_sites, err, errlen);
    if (strcmp(name, "scope_types") == 0)
        return parse_list(v, (size_t)patron_fields[PF_PATRON_TYPE].maxlen, "patron types", &o->scope_types,
                          &o->n_scope_types, err, errlen);
    err_set(err, errlen, "unknown safety option '%s'", name);
    return -1;
}

void safety_option_lists_free(Patronsync__JobOptions *o)
{
    if (o == NULL)
        return;
    free_list(&o->scope_sites, &o->n_scope_sites);
    free_list(&o->scope_types, &o->n_scope_types);
    if (o->inactive_homeroom != NULL && o->inactive_homeroom != protobuf_c_empty_string)
        free(o->inactive_homeroom);
    o->inactive_homeroom = (char *)protobuf_c_empty_string;
}

int safety_validate(const Patronsync__JobOptions *o, char *err, size_t errlen)
{
    if (o == NULL)
        return 0;
    if (o->days_before_inactivate > 999) {
        err_set(err, errlen, MSG_DAYS);
        return -1;
    }
    if (o->min_records > 999999) {
        err_set(err, errlen, MSG_RECORDS);
        return -1;
    }
    if (o->delete_after_days < -1 || o->delete_after_days > 999) {
        err_set(err, errlen, MSG_DELETE_DAYS);
        return -1;
    }
    const char *h = o->inactive_homeroom ? o->inactive_homeroom : "";
    if (*h && !o->inactivate_missing) {
        err_set(err, errlen, MSG_HOMEROOM);
        return -1;
    }
    if (utf8_chars(h, strlen(h)) > (size_t)patron_fields[PF_HOMEROOM].maxlen) {
        err_set(err, errlen, "Inactive homeroom too long; at most %d characters.", patron_fields[PF_HOMEROOM].maxlen);
        return -1;
    }
    if (o->delete_after_days >= 0 && !o->inactivate_missing) {
        err_set(err, errlen, MSG_DELETE_NEEDS);
        return -1;
    }
    for (size_t i = 0; i < o->n_scope_sites; i++)
        if (o->scope_sites[i][0] == '\0' ||
            utf8_chars(o->scope_sites[i], strlen(o->scope_sites[i])) > (size_t)patron_fields[PF_SITE_SHORT_NAME].maxlen) {
            err_set(err, errlen, "Site short name '%s' in the scope is not valid.", o->scope_sites[i]);
            return -1;
        }
    for (size_t i = 0; i < o->n_scope_types; i++)
        if (o->scope_types[i][0] == '\0' ||
            utf8_chars(o->scope_types[i], strlen(o->scope_types[i])) > (size_t)patron_fields[PF_PATRON_TYPE].maxlen) {
            err_set(err, errlen, "Patron type '%s' in the scope is not valid.", o->scope_types[i]);
            return -1;
        }
    if (o->thresholds_set) {
        for (size_t i = 0; i < NTHRESHOLDS; i++) {
            double d = *threshold_field((Patronsync__JobOptions *)o, thresholds[i].index);
            if (!isfinite(d) || d > 100) {
                err_set(err, errlen, "%s threshold must be a percentage between 0 and 100, or off.", thresholds[i].label);
                return -1;
            }
        }
    }
    return 0;
}

void safety_thresholds(const Patronsync__JobOptions *o, double pct[SAFETY_NT])
{
    default_thresholds(pct);
    if (o == NULL || !o->thresholds_set)
        return;
    for (int i = 0; i < SAFETY_NT; i++) {
        double d = *threshold_field((Patronsync__JobOptions *)o, i);
        pct[i] = isfinite(d) && d >= 0 ? d : -1;
    }
}

int safety_check(const Patronsync__JobOptions *o, uint64_t scope, const Patronsync__Counts *c, char *reason,
                 size_t reasonlen)
{
    if (reasonlen)
        reason[0] = '\0';
    if (scope == 0)
        return 0;
    double pct[SAFETY_NT];
    safety_thresholds(o, pct);
    uint64_t n[SAFETY_NT];
    n[SAFETY_T_ADD] = c->added;
    n[SAFETY_T_UPDATE] = c->updated;
    n[SAFETY_T_INACTIVATE] = c->inactivated;
    n[SAFETY_T_DELETE] = c->deleted;
    n[SAFETY_T_REMOVE] = c->inactivated + c->deleted;
    /* Removal first: it is the one that does harm. */
    static const int order[] = {SAFETY_T_REMOVE, SAFETY_T_INACTIVATE, SAFETY_T_DELETE, SAFETY_T_UPDATE, SAFETY_T_ADD};
    strbuf sb;
    sb_init(&sb);
    int crossed = 0;
    for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
        int i = order[k];
        if (pct[i] < 0)
            continue;
        double share = 100.0 * (double)n[i] / (double)scope;
        if (share <= pct[i])
            continue;
        const char *label = "";
        for (size_t t = 0; t < NTHRESHOLDS; t++)
            if (thresholds[t].index == i)
                label = thresholds[t].label;
        sb_printf(&sb, "%s%s would be %llu of the %llu patrons in scope (%.1f%%), more than the limit of %g%%", crossed ? "; " : "",
                  label, (unsigned long long)n[i], (unsigned long long)scope, share, pct[i]);
        crossed = 1;
    }
    if (crossed) {
        sb_puts(&sb, ".");
        str_copy(reason, reasonlen, sb_str(&sb));
    }
    sb_free(&sb);
    return crossed;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

int safety_day_number(const char *ymd, int64_t *day)
{
    if (ymd == NULL || strlen(ymd) != 10 || ymd[4] != '-' || ymd[7] != '-')
        return -1;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (ymd[i] < '0' || ymd[i] > '9'))
            return -1;
    int64_t y = (ymd[0] - '0') * 1000 + (ymd[1] - '0') * 100 + (ymd[2] - '0') * 10 + (ymd[3] - '0');
    unsigned m = (unsigned)((ymd[5] - '0') * 10 + (ymd[6] - '0'));
    unsigned d = (unsigned)((ymd[8] - '0') * 10 + (ymd[9] - '0'));
    static const unsigned mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
        return -1;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (m == 2 && d == 29 && !leap)
        return -1;
    *day = days_from_civil(y, m, d);
    return 0;
}

void safety_date_of(int64_t epoch_sec, char *out, size_t outlen)
{
    time_t t = (time_t)epoch_sec;
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(out, outlen, "%Y-%m-%d", &tm) == 0)
        str_copy(out, outlen, "1970-01-01");
}

static void put_list(strbuf *out, const char *name, char **v, size_t n, const char *none)
{
    sb_printf(out, "%s: ", name);
    if (n == 0)
        sb_puts(out, none);
    for (size_t i = 0; i < n; i++)
        sb_printf(out, "%s%s", i ? "," : "", v[i]);
    sb_puts(out, "\n");
}

void safety_describe(const Patronsync__JobOptions *o, strbuf *out)
{
    Patronsync__JobOptions none;
    if (o == NULL) {
        safety_options_init(&none);
        o = &none;
    }
    sb_printf(out, "inactivate_missing: %s\n", o->inactivate_missing ? "yes" : "no");
    sb_printf(out, "min_records: %u\n", o->min_records);
    sb_printf(out, "days_before_inactivate: %u\n", o->days_before_inactivate);
    sb_printf(out, "inactive_homeroom: %s\n", o->inactive_homeroom ? o->inactive_homeroom : "");
    if (o->delete_after_days < 0)
        sb_puts(out, "delete_after_days: never\n");
    else
        sb_printf(out, "delete_after_days: %d\n", o->delete_after_days);
    sb_printf(out, "allow_delete_outstanding: %s\n", o->allow_delete_outstanding ? "yes" : "no");
    put_list(out, "scope_sites", o->scope_sites, o->n_scope_sites, "(the sites in the file)");
    put_list(out, "scope_types", o->scope_types, o->n_scope_types, "(every patron type)");
    double pct[SAFETY_NT];
    safety_thresholds(o, pct);
    for (size_t i = 0; i < NTHRESHOLDS; i++) {
        double d = pct[thresholds[i].index];
        if (d < 0)
            sb_printf(out, "%s: off\n", thresholds[i].name);
        else
            sb_printf(out, "%s: %g%s\n", thresholds[i].name, d, o->thresholds_set ? "" : " (default)");
    }
}
