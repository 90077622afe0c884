/* counts: the counts table (counts.h). */
#include "counts.h"

#define C(field) {#field, offsetof(Patronsync__Counts, field)}
const counts_field counts_fields[] = {
    C(read), C(added), C(added_with_warnings), C(updated), C(updated_with_warnings),
    C(unchanged), C(deleted), C(deleted_with_warnings), C(inactivated), C(transferred),
    C(skipped_by_rule), C(invalid_skipped), C(duplicates_superseded),
};
const size_t counts_nfields = sizeof(counts_fields) / sizeof(counts_fields[0]);

uint64_t *counts_ptr(Patronsync__Counts *c, size_t i)
{
    return (uint64_t *)((char *)c + counts_fields[i].off);
}

uint64_t counts_get(const Patronsync__Counts *c, size_t i)
{
    return *(const uint64_t *)((const char *)c + counts_fields[i].off);
}

void counts_add(Patronsync__Counts *dst, const Patronsync__Counts *src)
{
    for (size_t i = 0; i < counts_nfields; i++)
        *counts_ptr(dst, i) += counts_get(src, i);
}
