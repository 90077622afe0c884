/* profile_maps: the profile's maps and their lookup (see profile_maps.h and
 * docs/PROFILE.md §4). */
#include "profile_maps.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

#define FOLD_MAX 256 /* longest value looked up in a map without regard to case */

int maps_find(const map_list *ml, const char *name, size_t n)
{
    for (int i = 0; i < ml->n; i++)
        if (txt_ci_eq(name, n, ml->v[i].name))
            return i;
    return -1;
}

int maps_add(map_list *ml, const char *name, size_t n)
{
    if (array_grow(&ml->v, &ml->cap, (size_t)ml->n + 1, sizeof(*ml->v), 8) != 0)
        return -1;
    pmap *m = &ml->v[ml->n];
    memset(m, 0, sizeof(*m));
    m->name = txt_dup(name, n);
    if (m->name == NULL)
        return -1;
    m->def_entry = -1;
    return ml->n++;
}

void maps_free(map_list *ml)
{
    for (int i = 0; i < ml->n; i++) {
        pmap *m = &ml->v[i];
        free(m->name);
        for (size_t k = 0; k < m->n; k++) {
            free(m->ents[k].key);
            free(m->ents[k].fkey);
        }
        free(m->ents);
        free(m->tab);
        free(m->ftab);
    }
    free(ml->v);
    ml->v = NULL;
    ml->n = ml->cap = 0;
}

int map_add_ent(pmap *m, const char *key, size_t keylen, int from)
{
    if (array_grow(&m->ents, &m->cap, m->n + 1, sizeof(*m->ents), 16) != 0)
        return -1;
    map_ent *me = &m->ents[m->n];
    memset(me, 0, sizeof(*me));
    me->key = txt_dup(key, keylen);
    me->fkey = txt_dup(key, keylen);
    if (me->key == NULL || me->fkey == NULL) {
        free(me->key);
        free(me->fkey);
        return -1;
    }
    txt_case_map(me->fkey, keylen, me->fkey, 0);
    me->keylen = keylen;
    me->entry = from;
    return (int)m->n++;
}

static size_t slot_of(const char *k, size_t n, size_t mask)
{
    return (size_t)hash64(k, n, HASH64_SEED) & mask;
}

int map_build(pmap *m)
{
    size_t cap = 8;
    while (cap < m->n * 2)
        cap *= 2;
    m->tab = calloc(cap, sizeof(uint32_t));
    m->ftab = calloc(cap, sizeof(uint32_t));
    if (m->tab == NULL || m->ftab == NULL)
        return -1;
    m->tabcap = cap;
    for (size_t i = 0; i < m->n; i++) {
        const map_ent *e = &m->ents[i];
        size_t h = slot_of(e->key, e->keylen, cap - 1);
        while (m->tab[h] != 0)
            h = (h + 1) & (cap - 1);
        m->tab[h] = (uint32_t)(i + 1);
        h = slot_of(e->fkey, e->keylen, cap - 1);
        for (;;) {
            uint32_t s = m->ftab[h];
            if (s == 0)
                break;
            const map_ent *o = &m->ents[s - 1];
            if (o->keylen == e->keylen && memcmp(o->fkey, e->fkey, e->keylen) == 0) {
                if (o->entry > e->entry)
                    goto next;
                break;
            }
            h = (h + 1) & (cap - 1);
        }
        m->ftab[h] = (uint32_t)(i + 1);
    next:;
    }
    return 0;
}

const map_ent *map_find(const pmap *m, slice k)
{
    if (m->n == 0)
        return NULL;
    size_t mask = m->tabcap - 1;
    size_t h = slot_of(k.p, k.len, mask);
    while (m->tab[h] != 0) {
        const map_ent *e = &m->ents[m->tab[h] - 1];
        if (e->keylen == k.len && memcmp(e->key, k.p, k.len) == 0)
            return e;
        h = (h + 1) & mask;
    }
    if (k.len > FOLD_MAX)
        return NULL;
    char buf[FOLD_MAX];
    txt_case_map(k.p, k.len, buf, 0);
    h = slot_of(buf, k.len, mask);
    while (m->ftab[h] != 0) {
        const map_ent *e = &m->ents[m->ftab[h] - 1];
        if (e->keylen == k.len && memcmp(e->fkey, buf, k.len) == 0)
            return e;
        h = (h + 1) & mask;
    }
    return NULL;
}

