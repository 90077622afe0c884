/* incremental: the broker's part of a schedule's runs — a content hash per
 * record, and for an Incremental run the records unchanged since the
 * schedule's previous run left out before the shards go to workers.
 * docs/SCHEDULES.md, "Incremental runs". */
#ifndef BROKER_INCREMENTAL_H
#define BROKER_INCREMENTAL_H

#include <stddef.h>

#include "prepare.h"
#include "profile.h"

/* Called at the end of prepare_job, once the records, their notes and the
 * shards are known (map: the UTF-8 work file out->fd, maplen bytes). For a
 * job of a schedule that runs Incremental on some day (options.keep_hashes)
 * it hashes every record that has a match key and stages the hashes for
 * the apply step (stage_dir/<job>/incremental.pb). For an Incremental run
 * it also drops the records whose hash equals the one stored by the
 * schedule's previous run: the work file is rewritten without them (their
 * line ends kept, so every line number stays) and the shards are cut
 * again; out->records still counts them. A previous run that cannot be
 * read costs nothing but the saving: every record is processed. Other
 * jobs: nothing. 0, or -1 with err (out of memory, the work or stage file
 * cannot be written). */
int incremental_prepare(const prepare_args *a, prepared *out, const profile *prof, const char *map, size_t maplen,
                        char *err, size_t errlen);

#endif
