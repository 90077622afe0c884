/* profile_check: `patronctl profile check FILE.properties [--csv SAMPLE]`
 * (local: no cluster needed). */
#ifndef CLI_PROFILE_CHECK_H
#define CLI_PROFILE_CHECK_H

#include "args.h"

int profile_cmd(const cli_ctx *c);
/* The checks of `profile check FILE [--csv SAMPLE]` on files already
 * known to be readable: the settings, the warnings and, with a sample,
 * its first nrec records mapped. The exit status (messages printed). */
int profile_check_file(const ps_config *cfg, const char *file, const char *csv, const char *enc, int64_t nrec);
/* The sample at path converted from enc to UTF-8 into a new buffer (*len
 * bytes; the caller frees it), the conversion's notes printed. NULL with
 * err. */
char *profile_read_sample(const char *path, const char *enc, size_t *len, char *err, size_t errlen);

#endif
