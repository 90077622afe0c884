/* schedule_verbs: the "schedule.*" control verbs (rows of control.c's
 * verb table; the shape of each: control_verb_fn, reply.h). */
#ifndef SCHEDULE_VERBS_H
#define SCHEDULE_VERBS_H

#include "reply.h"
#include "scheduler.h"

CONTROL_VERB(schedule_verb_add);
CONTROL_VERB(schedule_verb_edit);
/* show and list run the timing step first: what they show is never
 * behind the clock. */
CONTROL_VERB(schedule_verb_show);
CONTROL_VERB(schedule_verb_list);
CONTROL_VERB(schedule_verb_delete);
CONTROL_VERB(schedule_verb_run);
CONTROL_VERB(schedule_verb_enable);
CONTROL_VERB(schedule_verb_disable);

#endif
