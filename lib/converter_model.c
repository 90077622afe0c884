/* converter_model: what the converter's steps share of its model — a
 * column's examples, the field a column has, the maps and their pairs —
 * so that reading the sample, proposing and writing each call down here
 * and never across (converter_int.h). */
#include "converter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "converter_int.h"
#include "csvscan.h"
#include "encoding.h"

int conv_field_by_name(const char *s)
{
    static const struct {
        const char *alias;
        int field;
    } aliases[] = {{"site", PF_SITE_SHORT_NAME}, {"type", PF_PATRON_TYPE}, {"grade", PF_GRADE_LEVEL},
                   {"email", PF_EMAIL_PRIMARY},  {"phone", PF_ADDR1_PHONE1}, {"dob", PF_BIRTHDATE}};
    if (s == NULL)
        return -1;
    if (strncasecmp(s, "field_", 6) == 0)
        s += 6;
    for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
        if (strcasecmp(s, aliases[i].alias) == 0)
            return aliases[i].field;
    return patron_field_lookup(s, strlen(s));
}

/* Whether a value can stand in a properties file as a map key or value
 * (no line end or control character; no brace, which an expression would
 * read). */
int conv_writable(const char *v, const char *what, char *err, size_t errlen)
{
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p < 0x20 || *p == 0x7F || *p == '{' || *p == '}') {
            err_set(err, errlen, "%s \"%s\" holds a %s: a properties file cannot hold it", what, v,
                    *p == '{' || *p == '}' ? "brace" : "control character");
            return -1;
        }
    }
    return 0;
}

void conv_free_map(conv_map *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->v[i].from);
        free(m->v[i].to);
    }
    free(m->v);
    free(m->def);
    memset(m, 0, sizeof(*m));
}

void conv_clear_maps(converter *c)
{
    for (size_t i = 0; i < c->nmaps; i++)
        conv_free_map(&c->maps[i]);
    c->nmaps = 0;
}

int conv_field_column(const converter *c, int field)
{
    for (int k = 0; k < c->ncols; k++)
        if (c->cols[k].field == field)
            return k + 1;
    return 0;
}

conv_map *conv_map_for(converter *c, int field, int column)
{
    conv_map *m = (conv_map *)conv_map_of(c, field);
    if (m != NULL)
        return m;
    if (array_grow(&c->maps, &c->mapcap, c->nmaps + 1, sizeof(*c->maps), 4) < 0)
        return NULL;
    m = &c->maps[c->nmaps++];
    memset(m, 0, sizeof(*m));
    m->field = field;
    m->column = column;
    static const struct {
        int field;
        const char *name;
    } names[] = {{PF_SITE_SHORT_NAME, "site"}, {PF_GENDER, "gender"}, {PF_PATRON_TYPE, "patronType"}};
    str_copy(m->name, sizeof(m->name), patron_fields[field].pic);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (names[i].field == field)
            str_copy(m->name, sizeof(m->name), names[i].name);
    return m;
}

int conv_pair_set(conv_map *m, const char *from, const char *to, const char *why)
{
    if (strcasecmp(from, "default") == 0) {
        char *d = strdup(to);
        if (d == NULL)
            return -1;
        free(m->def);
        m->def = d;
        return 0;
    }
    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->v[i].from, from) == 0) {
            char *t = strdup(to);
            if (t == NULL)
                return -1;
            free(m->v[i].to);
            m->v[i].to = t;
            str_copy(m->v[i].why, sizeof(m->v[i].why), why);
            return 0;
        }
    }
    if (array_grow(&m->v, &m->cap, m->n + 1, sizeof(*m->v), 16) < 0)
        return -1;
    conv_pair *p = &m->v[m->n];
    p->from = strdup(from);
    p->to = strdup(to);
    if (p->from == NULL || p->to == NULL) {
        free(p->from);
        free(p->to);
        return -1;
    }
    str_copy(p->why, sizeof(p->why), why);
    m->n++;
    return 0;
}

void conv_examples(const conv_column *col, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < col->kept && i < n && o + 1 < outlen; i++) {
        /* a long value cut at a character's start: examples, not contents */
        const char *v = col->distinct[i].value;
        int len = (int)strlen(v), cut = len > 32;
        if (cut) {
            len = 29;
            while (len > 0 && ((unsigned char)v[len] & 0xC0) == 0x80)
                len--;
        }
        const char *q = strchr(v, ',') ? "\"" : ""; /* "Anderson, Emma" is one example */
        int w = snprintf(out + o, outlen - o, "%s%s%.*s%s%s", i ? ", " : "", q, len, v, cut ? "..." : "", q);
        if (w < 0)
            break;
        o += (size_t)w;
    }
    if (o >= outlen)
        o = outlen - 1;
    if (col->ndistinct > n && o + 6 < outlen)
        snprintf(out + o, outlen - o, ", ...");
}

int conv_year_now(void)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    return tm.tm_year + 1900;
}

const conv_map *conv_map_of(const converter *c, int field)
{
    for (size_t i = 0; i < c->nmaps; i++)
        if (c->maps[i].field == field)
            return &c->maps[i];
    return NULL;
}

void conv_set_match(converter *c, int district_id)
{
    c->match_district_id = district_id != 0;
    conv_clear_rules(c, PR_SKIP);
    conv_add_rule(c, PR_SKIP, district_id ? "field_districtID," : "field_barcode,", NULL, 0);
}

void conv_clear_rules(converter *c, int which)
{
    for (size_t i = 0; i < c->nrules[which]; i++)
        free(c->rules[which][i].value);
    c->nrules[which] = 0;
}

int conv_add_rule(converter *c, enum profile_rule which, const char *text, char *err, size_t errlen)
{
    if (which != PR_SKIP && which != PR_DELETE) {
        err_set(err, errlen, "only skip and delete rules are written");
        return -1;
    }
    if (*text == '\0') {
        conv_clear_rules(c, which);
        return 0;
    }
    const char *comma = strchr(text, ',');
    conv_rule r = {-1, 0, NULL};
    if (comma == NULL) {
        err_set(err, errlen, "rule '%s': expected FIELD,VALUE (field_gradeLevel,12 or {4},W; an empty VALUE: when blank)",
                text);
        return -1;
    }
    char lhs[64];
    size_t ll = (size_t)(comma - text);
    str_copy(lhs, ll + 1 < sizeof(lhs) ? ll + 1 : sizeof(lhs), text);
    if (lhs[0] == '{') {
        char *end;
        long n = strtol(lhs + 1, &end, 10);
        if (end == lhs + 1 || strcmp(end, "}") != 0 || n < 1 || n > c->ncols) {
            err_set(err, errlen, "rule '%s': {N} must name a column 1 to %d", text, c->ncols);
            return -1;
        }
        r.col = (int)n;
    } else {
        r.field = conv_field_by_name(lhs);
        if (r.field < 0) {
            err_set(err, errlen, "rule '%s': '%s' is not a patron field", text, lhs);
            return -1;
        }
    }
    if (conv_writable(comma + 1, "rule value", err, errlen) < 0)
        return -1;
    r.value = strdup(comma + 1);
    if (r.value == NULL ||
        array_grow(&c->rules[which], &c->rulecap[which], c->nrules[which] + 1, sizeof(conv_rule), 4) < 0) {
        free(r.value);
        err_set(err, errlen, "out of memory");
        return -1;
    }
    c->rules[which][c->nrules[which]++] = r;
    return 0;
}
