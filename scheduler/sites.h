/* sites: the control verbs on the patron store's sites and patrons —
 * "site.add", "site.import" (CSV: short_name,name[,media]) and
 * "patron.show". Rows of control.c's verb table (control_verb_fn). */
#ifndef SITES_H
#define SITES_H

#include "reply.h"
#include "scheduler.h"

CONTROL_VERB(sites_add);
CONTROL_VERB(sites_import);
CONTROL_VERB(sites_patron_show);

#endif
