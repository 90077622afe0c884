/* patron: the field table and the mapped-record arena. */
#include "patron.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

const patron_field_info patron_fields[PF__COUNT] = {
    [PF_SITE_SHORT_NAME] = {"siteShortName", "site_short_name", "Site Short Name", 10, PK_TEXT},
    [PF_BARCODE] = {"barcode", "barcode", "Barcode", 14, PK_TEXT},
    [PF_DISTRICT_ID] = {"districtID", "district_id", "District ID", 40, PK_TEXT},
    [PF_LAST_NAME] = {"lastName", "last_name", "Last Name", 42, PK_TEXT},
    [PF_FIRST_NAME] = {"firstName", "first_name", "First Name", 42, PK_TEXT},
    [PF_MIDDLE_NAME] = {"middleName", "middle_name", "Middle Name", 42, PK_TEXT},
    [PF_NICKNAME] = {"nickname", "nickname", "Nickname", 30, PK_TEXT},
    [PF_PATRON_TYPE] = {"patronType", "patron_type", "Patron Type", 30, PK_TEXT},
    [PF_ACCESS_LEVEL] = {"accessLevel", "access_level", "Access Level", 30, PK_TEXT},
    [PF_STATUS] = {"status", "status", "Status", 1, PK_TEXT},
    [PF_GENDER] = {"gender", "gender", "Gender", 1, PK_TEXT},
    [PF_HOMEROOM] = {"homeroom", "homeroom", "Homeroom", 90, PK_TEXT},
    [PF_GRADE_LEVEL] = {"gradeLevel", "grade_level", "Grade Level", 30, PK_TEXT},
    [PF_CARD_EXPIRES] = {"cardExpires", "card_expires", "Card Expiration", 0, PK_DATE},
    [PF_GRADUATION_YEAR] = {"graduationYear", "graduation_year", "Graduation Year", 4, PK_TEXT},
    [PF_BIRTHDATE] = {"birthdate", "birthdate", "Birth Date", 0, PK_DATE},
    [PF_USER_DEFINED1] = {"userDefined1", "user_defined1", "User Defined 1", 30, PK_TEXT},
    [PF_USER_DEFINED2] = {"userDefined2", "user_defined2", "User Defined 2", 30, PK_TEXT},
    [PF_USER_DEFINED3] = {"userDefined3", "user_defined3", "User Defined 3", 30, PK_TEXT},
    [PF_USER_DEFINED4] = {"userDefined4", "user_defined4", "User Defined 4", 30, PK_TEXT},
    [PF_USER_DEFINED5] = {"userDefined5", "user_defined5", "User Defined 5", 30, PK_TEXT},
    [PF_USERNAME] = {"username", "username", "User Name", 50, PK_TEXT},
    [PF_PASSWORD] = {"password", "password_hash", "Password", 50, PK_TEXT},
    [PF_IS_TEACHER] = {"isTeacher", "is_teacher", "Teaching Status", 1, PK_FLAG},
    [PF_IS_AUP_ON_FILE] = {"isAcceptableUsePolicyOnFile", "is_aup_on_file", "Acceptable Use Policy", 1, PK_FLAG},
    [PF_EMAIL_PRIMARY] = {"emailPrimary", "email_primary", "Primary Email", 200, PK_TEXT},
    [PF_EMAIL_SECONDARY] = {"emailSecondary", "email_secondary", "Secondary Email", 200, PK_TEXT},
    [PF_ADDR1_LINE1] = {"addressPrimaryLine1", "address_primary_line1", "Primary Address Line 1", 90, PK_TEXT},
    [PF_ADDR1_LINE2] = {"addressPrimaryLine2", "address_primary_line2", "Primary Address Line 2", 90, PK_TEXT},
    [PF_ADDR1_CITY] = {"addressPrimaryCity", "address_primary_city", "Primary City", 90, PK_TEXT},
    [PF_ADDR1_STATE] = {"addressPrimaryState", "address_primary_state", "Primary State", 90, PK_TEXT},
    [PF_ADDR1_ZIP] = {"addressPrimaryZipCode", "address_primary_zip_code", "Primary Zip Code", 20, PK_TEXT},
    [PF_ADDR1_PHONE1] = {"addressPrimaryPhoneNumberPrimary", "address_primary_phone_primary", "Primary Phone 1", 30, PK_TEXT},
    [PF_ADDR1_PHONE2] = {"addressPrimaryPhoneNumberSecondary", "address_primary_phone_secondary", "Primary Phone 2", 30, PK_TEXT},
    [PF_ADDR2_LINE1] = {"addressSecondaryLine1", "address_secondary_line1", "Secondary Address Line 1", 90, PK_TEXT},
    [PF_ADDR2_LINE2] = {"addressSecondaryLine2", "address_secondary_line2", "Secondary Address Line 2", 90, PK_TEXT},
    [PF_ADDR2_CITY] = {"addressSecondaryCity", "address_secondary_city", "Secondary City", 90, PK_TEXT},
    [PF_ADDR2_STATE] = {"addressSecondaryState", "address_secondary_state", "Secondary State", 90, PK_TEXT},
    [PF_ADDR2_ZIP] = {"addressSecondaryZipCode", "address_secondary_zip_code", "Secondary Zip Code", 20, PK_TEXT},
    [PF_ADDR2_PHONE1] = {"addressSecondaryPhoneNumberPrimary", "address_secondary_phone_primary", "Secondary Phone 1", 30, PK_TEXT},
    [PF_ADDR2_PHONE2] = {"addressSecondaryPhoneNumberSecondary", "address_secondary_phone_secondary", "Secondary Phone 2", 30, PK_TEXT},
    [PF_RESOURCE_GROUP] = {"resourceGroup", "resource_group", "Resource Group", 30, PK_TEXT},
};

int patron_field_lookup(const char *pic, size_t len)
{
    if (len == 10 && strncasecmp(pic, "assetGroup", 10) == 0)
        return PF_RESOURCE_GROUP;
    for (int f = 0; f < PF__COUNT; f++) {
        const char *n = patron_fields[f].pic;
        if (strlen(n) == len && strncasecmp(n, pic, len) == 0)
            return f;
    }
    return -1;
}

void patron_rec_init(patron_rec *r)
{
    memset(r, 0, sizeof(*r));
}

void patron_rec_reset(patron_rec *r)
{
    memset(r->state, 0, sizeof(r->state));
    r->arena_len = 0;
}

void patron_rec_free(patron_rec *r)
{
    if (r == NULL)
        return;
    free(r->arena);
    patron_rec_init(r);
}

int patron_rec_set(patron_rec *r, int f, const char *s, size_t len, enum patron_value_state st)
{
    if (f < 0 || f >= PF__COUNT || len > UINT32_MAX / 2)
        return -1;
    size_t need = r->arena_len + len + 1;
    if (buf_reserve(&r->arena, &r->arena_cap, need, 1024) < 0)
        return -1;
    if (len > 0)
        memcpy(r->arena + r->arena_len, s, len);
    r->arena[r->arena_len + len] = '\0';
    r->off[f] = (uint32_t)r->arena_len;
    r->len[f] = (uint32_t)len;
    r->state[f] = (unsigned char)st;
    r->arena_len = need;
    return 0;
}

size_t patron_rec_packed_size(const patron_rec *r)
{
    size_t n = PF__COUNT;
    for (int f = 0; f < PF__COUNT; f++)
        if (r->state[f] == PV_VALUE)
            n += r->len[f];
    return n;
}

void patron_rec_pack(const patron_rec *r, char *out)
{
    for (int f = 0; f < PF__COUNT; f++) {
        size_t len = r->state[f] == PV_VALUE ? r->len[f] : 0;
        if (len > 0)
            memcpy(out, r->arena + r->off[f], len);
        out[len] = '\0';
        out += len + 1;
    }
}

int patron_rec_unpack(patron_rec *r, const void *data, size_t len)
{
    patron_rec_reset(r);
    if (len > UINT32_MAX / 2)
        return -1;
    if (buf_reserve(&r->arena, &r->arena_cap, len, 1024) < 0)
        return -1;
    if (len > 0)
        memcpy(r->arena, data, len);
    size_t off = 0;
    for (int f = 0; f < PF__COUNT; f++) {
        const char *end = off < len ? memchr(r->arena + off, '\0', len - off) : NULL;
        if (end == NULL) {
            patron_rec_reset(r);
            return -1;
        }
        r->off[f] = (uint32_t)off;
        r->len[f] = (uint32_t)(end - (r->arena + off));
        r->state[f] = PV_VALUE;
        off += r->len[f] + 1;
    }
    if (off != len) {
        patron_rec_reset(r);
        return -1;
    }
    r->arena_len = len;
    return 0;
}

const char *patron_rec_get(const patron_rec *r, int f)
{
    if (f < 0 || f >= PF__COUNT)
        return "";
    if (r->state[f] != PV_VALUE && r->state[f] != PV_INVALID)
        return "";
    return r->arena + r->off[f];
}

size_t utf8_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            n++;
    return n;
}

size_t utf8_prefix(const char *s, size_t len, size_t chars)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            if (n == chars)
                return i;
            n++;
        }
    }
    return len;
}
