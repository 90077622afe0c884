/* schedule: a schedule in memory and its stored options. */
#include "schedule.h"

#include <stdlib.h>
#include <string.h>

#include "profile.h"
#include "safety.h"

void sched_free(sched *sc)
{
    sched_opts_free(&sc->o);
    free(sc->name);
    free(sc->file);
    free(sc->encoding);
    free(sc->profile_name);
    free(sc->profile_text);
    memset(sc, 0, sizeof(*sc));
}

int sched_set_str(char **dst, const char *src, size_t len)
{
    char *v = malloc(len + 1);
    if (v == NULL)
        return -1;
    memcpy(v, src, len);
    v[len] = '\0';
    free(*dst);
    *dst = v;
    return 0;
}

void sched_opts_defaults(sched_opts *o)
{
    o->errors_only = 0;
    o->keep_jobs = 0;
    safety_options_init(&o->safe);
}

void sched_opts_free(sched_opts *o)
{
    safety_option_lists_free(&o->safe);
}

static char **list_copy(char *const *v, size_t n)
{
    char **out = calloc(n ? n : 1, sizeof(char *));
    for (size_t i = 0; out && i < n; i++) {
        out[i] = strdup(v[i]);
        if (out[i] == NULL) {
            while (i > 0)
                free(out[--i]);
            free(out);
            return NULL;
        }
    }
    return out;
}

int sched_opts_from_blob(sched_opts *o, const void *blob, size_t len)
{
    sched_opts_defaults(o);
    Patronsync__JobOptions *jo = patronsync__job_options__unpack(NULL, len, blob);
    if (jo == NULL)
        return -1;
    int rc = 0;
    Patronsync__JobOptions *f = &o->safe;
    o->errors_only = jo->errors_only;
    o->keep_jobs = (int)jo->keep_jobs;
    f->allow_delete_outstanding = jo->allow_delete_outstanding;
    f->inactivate_missing = jo->inactivate_missing;
    f->min_records = jo->min_records;
    f->days_before_inactivate = jo->days_before_inactivate;
    f->delete_after_days = jo->delete_after_days;
    f->max_add_pct = jo->max_add_pct;
    f->max_update_pct = jo->max_update_pct;
    f->max_inactivate_pct = jo->max_inactivate_pct;
    f->max_delete_pct = jo->max_delete_pct;
    f->max_remove_pct = jo->max_remove_pct;
    f->thresholds_set = jo->thresholds_set;
    if (jo->inactive_homeroom[0] && safety_option_set(f, "inactive_homeroom", jo->inactive_homeroom, NULL, 0) < 0)
        rc = -1;
    f->scope_sites = list_copy(jo->scope_sites, jo->n_scope_sites);
    f->n_scope_sites = f->scope_sites ? jo->n_scope_sites : 0;
    f->scope_types = list_copy(jo->scope_types, jo->n_scope_types);
    f->n_scope_types = f->scope_types ? jo->n_scope_types : 0;
    if (f->scope_sites == NULL || f->scope_types == NULL)
        rc = -1;
    patronsync__job_options__free_unpacked(jo, NULL);
    return rc;
}

void sched_opts_to_job(const sched_opts *o, Patronsync__JobOptions *jo)
{
    *jo = o->safe;
    jo->errors_only = o->errors_only;
    jo->keep_jobs = (uint32_t)o->keep_jobs;
}

uint8_t *sched_opts_to_blob(const sched_opts *o, size_t *len)
{
    Patronsync__JobOptions jo;
    sched_opts_to_job(o, &jo);
    *len = patronsync__job_options__get_packed_size(&jo);
    uint8_t *buf = malloc(*len ? *len : 1);
    if (buf != NULL)
        patronsync__job_options__pack(&jo, buf);
    return buf;
}

int sched_profile_check(const sched *sc, char *err, size_t errlen)
{
    profile *p = profile_parse(sc->profile_text, strlen(sc->profile_text), sc->profile_name, err, errlen);
    if (p == NULL)
        return -1;
    profile_destroy(&p);
    return 0;
}

slot_pattern sched_pattern(const sched *sc)
{
    slot_pattern p;
    for (int i = 0; i < 7; i++)
        p.day[i] = sc->days[i] == 'F' ? SLOT_FULL : sc->days[i] == 'I' ? SLOT_INCREMENTAL : SLOT_NONE;
    p.minute = sc->minute;
    return p;
}

const char *sched_mode_name(int mode)
{
    return mode == SLOT_INCREMENTAL ? "Incremental" : mode == SLOT_FULL ? "Full" : "None";
}
