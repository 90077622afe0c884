/* converter_int: what the converter's files share (converter.c,
 * converter_analyse.c, converter_write.c). Internal to lib/converter*. */
#ifndef CONVERTER_INT_H
#define CONVERTER_INT_H

#include "converter.h"
#include "profile_text.h"

/* p[0..len) without surrounding blanks. */
static inline slice conv_trim(const char *p, size_t len)
{
    return txt_trim(txt_slice(p, len));
}

/* converter_analyse.c: the header row decided (header -1: from the rows)
 * and every column described. 0 / -1 with err. */
int conv_analyse(converter *c, int header, char *err, size_t errlen);
/* The map column col's field needs (sites, gender codes, the grade's
 * patron type), proposed from its values; notes added. 0 / -1. */
int conv_propose_map(converter *c, int col);

/* The current year (UTC). */
int conv_year_now(void);
/* Whether v may be written into the file (what for the message). 0 / -1 with err. */
int conv_writable(const char *v, const char *what, char *err, size_t errlen);
/* Free a map's pairs and default (the map left empty). */
void conv_free_map(conv_map *m);

/* converter_propose.c: the field a header cell names (a usual SIS column
 * name, after case, blanks and punctuation are dropped), its score
 * (0-100) and why in words; -1 when none. score and why may be NULL. */
int conv_header_field(const char *header, int *score, char *why, size_t whylen);

/* converter.c */
conv_map *conv_map_for(converter *c, int field, int column); /* found or added; NULL: no memory */
void conv_drop_map(converter *c, int field);
int conv_pair_set(conv_map *m, const char *from, const char *to, const char *why);
void conv_clear_maps(converter *c);
void conv_clear_rules(converter *c, int which);

#endif
