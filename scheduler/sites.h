/* sites: the control verbs on the patron store's sites and patrons —
 * "site.add", "site.import" (CSV: short_name,name[,media]) and
 * "patron.show". Rows of control.c's verb table (control_verb_fn). */
#ifndef SITES_H
#define SITES_H

#include "reply.h"
#include "scheduler.h"

void sites_add(scheduler *s, const char *user, const Patronsync__ControlRequest *rq, Patronsync__ControlReply *rep,
               strbuf *body);
void sites_import(scheduler *s, const char *user, const Patronsync__ControlRequest *rq, Patronsync__ControlReply *rep,
                  strbuf *body);
void sites_patron_show(scheduler *s, const char *user, const Patronsync__ControlRequest *rq,
                       Patronsync__ControlReply *rep, strbuf *body);

#endif
