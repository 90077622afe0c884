/* input: a job's input file — resolved strictly under the import root,
 * waited for until it is still, opened safely, and kept as a copy in the
 * archive (docs/INPUT.md, docs/OPERATORS.md). */
#ifndef BROKER_INPUT_H
#define BROKER_INPUT_H

#include <stddef.h>
#include <sys/stat.h>

#include "config.h"
#include "keepalive.h"
#include "patronsync.pb-c.h"

/* The input file, opened once it has been still long enough. */
typedef struct {
    int fd;
    struct stat sb; /* as it was when it was found still */
} input_file;

/* Resolve a file name strictly under root into out. 0 / -1 with err. */
int input_resolve(const char *root, const char *name, char *out, size_t outlen, char *err, size_t errlen);
/* Judge the file before it costs anything (issue 20): its size against
 * max_file_bytes, and whether it is a sparse file (far fewer bytes on disk
 * than its length: holes read as NUL bytes, never an SIS export) or starts
 * with a run of NUL bytes only; checked before the archive copy and the
 * conversion. 0, or -1 with err naming the file. */
int input_judge(const ps_config *c, const input_file *in, const char *name, char *err, size_t errlen);
/* Whether the job reads a run-now's file: patronctl run's own copy of the
 * operator's file in import/adhoc/, written for this job alone (a
 * scheduled file is its exporter's). */
int input_is_run_now(const Patronsync__JobRequest *req);
/* Resolve name under c->import_root, wait until the file is still (the
 * keepalive ticks meanwhile; settle_seconds, settle_timeout_seconds) and
 * open it into *in (in->fd owned by the caller; -1 on failure). 0 / -1
 * with err. */
int input_open(const ps_config *c, const char *name, const keepalive *ka, input_file *in, char *err, size_t errlen);
/* Keep a copy of the input in archive_dir/<schedule or adhoc>/ named
 * <fire time>_<job id>_<file name>, prune to archive_keep copies; its path
 * in path_out. Returns an fd on the copy (read from its start; the caller
 * closes it), or -1 with err. */
int input_archive(const ps_config *c, const Patronsync__JobRequest *req, const char *job_id, const input_file *in,
                  const keepalive *ka, char *path_out, size_t path_outlen, char *err, size_t errlen);

#endif
