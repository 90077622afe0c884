/* patron: the patron fields of PIC.md (names, SQL columns, limits) and the
 * in-memory record a CSV row maps to. */
#ifndef PATRON_H
#define PATRON_H

#include <stddef.h>
#include <stdint.h>

/* Order is the order of the store's columns; append only (the store's
 * schema and staged files follow this numbering). */
enum patron_field {
    PF_SITE_SHORT_NAME,
    PF_BARCODE,
    PF_DISTRICT_ID,
    PF_LAST_NAME,
    PF_FIRST_NAME,
    PF_MIDDLE_NAME,
    PF_NICKNAME,
    PF_PATRON_TYPE,
    PF_ACCESS_LEVEL,
    PF_STATUS,
    PF_GENDER,
    PF_HOMEROOM,
    PF_GRADE_LEVEL,
    PF_CARD_EXPIRES,
    PF_GRADUATION_YEAR,
    PF_BIRTHDATE,
    PF_USER_DEFINED1,
    PF_USER_DEFINED2,
    PF_USER_DEFINED3,
    PF_USER_DEFINED4,
    PF_USER_DEFINED5,
    PF_USERNAME,
    PF_PASSWORD,
    PF_IS_TEACHER,
    PF_IS_AUP_ON_FILE,
    PF_EMAIL_PRIMARY,
    PF_EMAIL_SECONDARY,
    PF_ADDR1_LINE1,
    PF_ADDR1_LINE2,
    PF_ADDR1_CITY,
    PF_ADDR1_STATE,
    PF_ADDR1_ZIP,
    PF_ADDR1_PHONE1,
    PF_ADDR1_PHONE2,
    PF_ADDR2_LINE1,
    PF_ADDR2_LINE2,
    PF_ADDR2_CITY,
    PF_ADDR2_STATE,
    PF_ADDR2_ZIP,
    PF_ADDR2_PHONE1,
    PF_ADDR2_PHONE2,
    PF_RESOURCE_GROUP,
    PF__COUNT
};

enum patron_kind {
    PK_TEXT,  /* free text up to maxlen characters */
    PK_DATE,  /* canonical YYYY-MM-DD */
    PK_FLAG   /* T/F (input T/F/Y/N/True/False) */
};

typedef struct {
    const char *pic;    /* name in field_<pic>, e.g. "siteShortName" */
    const char *column; /* SQL column in the patrons table */
    const char *label;  /* name in summary messages, e.g. "Site Short Name" */
    int maxlen;         /* characters (not bytes); 0 for dates */
    enum patron_kind kind;
} patron_field_info;

extern const patron_field_info patron_fields[PF__COUNT];

/* Field number for a PIC name, matched without regard to case;
 * "assetGroup" is the older name of "resourceGroup". -1 if unknown. */
int patron_field_lookup(const char *pic, size_t len);

/* State of one field of a mapped record. */
enum patron_value_state {
    PV_UNSET = 0, /* the profile does not map this field: keep existing */
    PV_OMIT,      /* mapped with omit and came out empty: keep existing */
    PV_VALUE,     /* a value (possibly empty: clears the field) */
    PV_INVALID    /* mapped but unusable (a date that does not parse);
                     the raw text is kept as the value for messages */
};

/* A mapped record: one arena holds every value, NUL-terminated. */
typedef struct {
    unsigned char state[PF__COUNT];
    uint32_t off[PF__COUNT];
    uint32_t len[PF__COUNT];
    char *arena;
    size_t arena_len, arena_cap;
} patron_rec;

void patron_rec_init(patron_rec *r);
/* Forget all values; keeps the arena for reuse. */
void patron_rec_reset(patron_rec *r);
void patron_rec_free(patron_rec *r);
/* Set field f to a copy of s[0..len) with the given state. 0 / -1 (no memory). */
int patron_rec_set(patron_rec *r, int f, const char *s, size_t len, enum patron_value_state st);
/* The value of field f (NUL-terminated, owned by r), or "" when not PV_VALUE/PV_INVALID. */
const char *patron_rec_get(const patron_rec *r, int f);

/* The packed form of a record (staged plans, before-images): every field
 * in field order, each value (or "" when not PV_VALUE) NUL-terminated —
 * one string to copy instead of PF__COUNT. */
size_t patron_rec_packed_size(const patron_rec *r);
/* Write it to out (patron_rec_packed_size bytes). */
void patron_rec_pack(const patron_rec *r, char *out);
/* r = the packed record (every field PV_VALUE). 0 / -1 (malformed: not
 * exactly PF__COUNT NUL-terminated values; or no memory). */
int patron_rec_unpack(patron_rec *r, const void *data, size_t len);

/* Number of UTF-8 characters in s[0..len). */
size_t utf8_chars(const char *s, size_t len);
/* Byte length of the first `chars` characters of s[0..len). */
size_t utf8_prefix(const char *s, size_t len, size_t chars);

#endif
