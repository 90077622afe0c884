/* refdata: the control verbs for the reference data the patron rules use
 * (docs/RULES.md): "ref.add" and "ref.list". Rows of control.c's verb
 * table (control_verb_fn, reply.h). */
#ifndef REFDATA_H
#define REFDATA_H

#include "reply.h"
#include "scheduler.h"

/* ref.add KIND NAME... (opt default=1: NAME is also the default) */
CONTROL_VERB(refdata_add);
/* ref.list: every list, the defaults, each site's default access level */
CONTROL_VERB(refdata_list);

#endif
