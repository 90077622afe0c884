/* profile_maps: the profile's maps (map_<name>_<csvValue>=...) — their
 * entries, and hash tables for the exact and the case-folded lookup.
 * Internal to lib/profile*. */
#ifndef PROFILE_MAPS_H
#define PROFILE_MAPS_H

#include <stddef.h>
#include <stdint.h>

#include "profile_text.h"

struct expr;

typedef struct {
    char *key; /* exact CSV value */
    size_t keylen;
    char *fkey; /* key in lower case */
    struct expr *val;
    int entry; /* line it came from (index into the parse entries) */
} map_ent;

typedef struct {
    char *name; /* as first written */
    map_ent *ents;
    size_t n, cap;
    uint32_t *tab, *ftab; /* open addressing: entry index + 1, 0 = free */
    size_t tabcap;
    struct expr *def;
    int def_entry;
    int state;   /* cycle check: 0 new, 1 on the path, 2 done */
    int max_col; /* highest column its values reach, maps included */
} pmap;

typedef struct {
    pmap *v;
    int n;
    size_t cap;
} map_list;

/* The map named name[0..n) (ASCII case ignored): its index, or -1. */
int maps_find(const map_list *ml, const char *name, size_t n);
/* A new empty map: its index, or -1 (no memory). */
int maps_add(map_list *ml, const char *name, size_t n);
/* Free every map and the list; the values (expressions) are the caller's
 * to free first. */
void maps_free(map_list *ml);

/* A new entry for CSV value key[0..keylen), from entry `from`: its index,
 * or -1 (no memory). Its value is set by the caller. */
int map_add_ent(pmap *m, const char *key, size_t keylen, int from);
/* Build the lookup tables once every entry is added (a folded key given
 * twice: the later line wins). 0 / -1 (no memory). */
int map_build(pmap *m);
/* The entry for CSV value k: exact first, then without regard to case
 * (values up to 256 bytes); NULL when neither. */
const map_ent *map_find(const pmap *m, slice k);

#endif
