/* hashes: the store side of a schedule's incremental runs — the content
 * hash of each record of the schedule's last applied run, kept in the
 * store (record_hashes) and replaced in the apply step's transaction, so
 * the next Incremental run leaves out exactly the records that were
 * applied then and have not changed since. docs/SCHEDULES.md. */
#ifndef HASHES_H
#define HASHES_H

#include <stddef.h>
#include <stdint.h>

#include "rules.h"
#include "task.h"

/* Inside the apply transaction, after every shard's changes and before
 * the finishing step. For a job of a schedule: the records the broker left
 * out as unchanged are added to counts (read and unchanged), and the
 * schedule's stored hashes become this job's, minus the records that did
 * not reach the store (a SKIP line in a shard's plan or in exc, a failed
 * shard). Without a staged incremental.pb, or for a job fired before the
 * one whose hashes are stored (a held job approved late), the schedule's
 * hashes are dropped, so its next Incremental run processes every record.
 * Nothing for
 * other jobs. Rolled back with the transaction (held job, dry run). 0, or
 * -1 with err. */
int hashes_apply(worker_ctx *w, const Patronsync__ApplyTask *t, Patronsync__Counts *counts, const exc_list *exc,
                 char *err, size_t errlen);

/* For the missing-patron step: the stored patrons whose records an
 * Incremental run left out (they are in the file, though no shard saw
 * them): their ids, sorted and distinct, and the sites they are at. *ids
 * and *sites (each string too) are the caller's to free; both empty for a
 * job without left-out records. 0 / -1 with err. */
int hashes_unsent_patrons(worker_ctx *w, const char *job, int64_t **ids, size_t *nids, char ***sites,
                          size_t *nsites, char *err, size_t errlen);

#endif
