/* prepare: everything decided once per job before sharding — the file
 * (input.h: under the import root, still, archived), converted to UTF-8,
 * its record boundaries (winscan.h), duplicate keys (dups.h: the later
 * line wins), the row-range shards (shards.h), and for a schedule's job
 * the incremental step (incremental.h). It knows no job table and no
 * socket: what it decides comes back in a `prepared`. */
#ifndef BROKER_PREPARE_H
#define BROKER_PREPARE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "jobnotes.h"
#include "keepalive.h"
#include "patronsync.pb-c.h"
#include "shards.h"
#include "status.h"

/* What one preparation reads. */
typedef struct {
    const ps_config *cfg;
    const Patronsync__JobRequest *req;
    const char *job_id;
    const char *workdir;   /* DATA/work/<job> (made when missing) */
    const char *utf8_path; /* the UTF-8 work file to write in it */
    status *redis;         /* the archive copy's path is published (HSET ps:job:<id> input_copy) */
    keepalive ka;          /* ticked through every long step */
} prepare_args;

/* What it decides (every field owned; the caller takes them all, after a
 * failure too: the notes said so far still go into the summary). */
typedef struct {
    int fd;                                /* the UTF-8 work file (-1: none) */
    shard_list shards;                     /* none after a failure */
    Patronsync__RecordNote **record_notes; /* duplicates, unreadable lines: sorted by line */
    size_t nrecord_notes;
    uint64_t records;                      /* records read (after the rows to skip); 0 after a failure */
    jobnotes summary_notes;                /* job-level notes for the summary (BOM, ...) */
} prepared;

/* Resolve the file under the import root, wait for it to be still,
 * convert it to UTF-8, find record boundaries, decide duplicates, cut
 * shards, and run the incremental step. out starts zeroed with fd -1.
 * 0, or -1 with err (the job fails with it). */
int prepare_job(const prepare_args *a, prepared *out, char *err, size_t errlen);
/* Free n record notes and the array (NULL-safe). */
void prepare_notes_free(Patronsync__RecordNote **notes, size_t n);

#endif
