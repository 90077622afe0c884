/* before: the before-images of a job's changes (before.h). */
#include "before.h"

#include <stdlib.h>

#include "safety.h"
#include "util.h"
#include "wire.h"

int before_save(const Patronsync__JobOptions *o, store *st, const char *job, int64_t seq, int64_t id, int op,
                const patron_rec *before, char *err, size_t errlen)
{
    if (o != NULL && o->dry_run)
        return 0;
    Patronsync__Change c = PATRONSYNC__CHANGE__INIT;
    store_patron_extra x;
    char *packed = NULL;
    char **assoc = NULL;
    size_t nassoc = 0;
    uint8_t *blob = NULL;
    size_t len = 0;
    int rc = -1;
    c.op = (uint32_t)op;
    c.patron_id = id;
    if (op != SAFETY_OP_ADD) {
        int found = store_extra_get(st, id, &x, err, errlen);
        if (found < 0)
            return -1;
        if (found) {
            c.missing_since = x.missing_since;
            c.created_job = x.created_job;
            c.updated_job = x.updated_job;
            c.checkouts = x.checkouts;
            c.fines_cents = x.fines_cents;
        }
        /* Site associations: a deleted patron loses them, a moved one
         * can lose one (docs/RULES.md); undo puts the set back. */
        if (before != NULL && store_assoc_list(st, id, &assoc, &nassoc, err, errlen) < 0)
            return -1;
        c.assoc_sites = assoc;
        c.n_assoc_sites = nassoc;
        if (before != NULL) {
            size_t plen = patron_rec_packed_size(before);
            if ((packed = malloc(plen)) == NULL) {
                err_set(err, errlen, "out of memory");
                goto out;
            }
            patron_rec_pack(before, packed);
            c.record.data = (uint8_t *)packed;
            c.record.len = plen;
        }
        blob = wire_pack(&c.base, &len, err, errlen);
        if (blob == NULL)
            goto out;
    }
    rc = store_change_put(st, job, seq, id, op, blob, len, err, errlen);
out:
    free(blob);
    free(packed);
    if (assoc)
        store_names_free(assoc, nassoc);
    return rc;
}


int before_save_add_range(store *st, const char *job, int64_t seq, int64_t first, int64_t last, char *err,
                          size_t errlen)
{
    Patronsync__Change c = PATRONSYNC__CHANGE__INIT;
    c.op = SAFETY_OP_ADD_RANGE;
    c.patron_id = last;
    uint8_t buf[64];
    size_t len = patronsync__change__pack(&c, buf);
    return store_change_put(st, job, seq, first, SAFETY_OP_ADD_RANGE, buf, len, err, errlen);
}

int before_save_assoc(store *st, const char *job, int64_t seq, int64_t id, const char *site, char *err,
                      size_t errlen)
{
    Patronsync__Change img = PATRONSYNC__CHANGE__INIT;
    img.op = SAFETY_OP_ASSOC;
    img.patron_id = id;
    img.assoc_site = (char *)site;
    size_t len = 0;
    uint8_t *blob = wire_pack(&img.base, &len, err, errlen);
    if (blob == NULL)
        return -1;
    int rc = store_change_put(st, job, seq, id, SAFETY_OP_ASSOC, blob, len, err, errlen);
    free(blob);
    return rc;
}
