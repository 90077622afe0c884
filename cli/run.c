/* run: `patronctl run FILE --profile FILE.properties` — a job now, on a
 * file under the import root (or a copy of it, --copy-in). */
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "call.h"
#include "jobs.h"

/* Copy the operator's file into the import root (adhoc/), as Destiny's
 * upload does; the job runs on the copy. The exit status. */
static int copy_in(const cli_ctx *c, const char *src, char *rel, size_t rellen)
{
    const ps_config *cfg = c->cfg;
    int in;
    int rc = cli_open_operand(c, src, &in);
    if (rc != 0)
        return rc;
    close(in);
    char err[ERRLEN];
    char base[256];
    char tmp[PATH_MAX];
    str_copy(tmp, sizeof(tmp), src);
    str_copy(base, sizeof(base), basename(tmp));
    for (char *p = base; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' ||
              *p == '-' || *p == '_'))
            *p = '_';
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    char ts[32];
    strftime(ts, sizeof(ts), "%Y%m%dT%H%M%SZ", &tm);
    snprintf(rel, rellen, "adhoc/%s-%d-%s", ts, (int)getpid(), base);
    char dir[CONFIG_STR + 16], dst[CONFIG_STR + PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/adhoc", cfg->import_root);
    snprintf(dst, sizeof(dst), "%s/%s", cfg->import_root, rel);
    if (mkdir_p(dir, 0750, err, sizeof(err)) < 0 ||
        file_copy_atomic(src, dst, (size_t)cfg->max_file_bytes, err, sizeof(err)) < 0) {
        fprintf(stderr, "patronctl run: --copy-in: %s\n", err);
        return PS_EXIT_FAILED;
    }
    /* The copy keeps the original's time, so a file that has been
     * still costs no settle wait at the broker. */
    struct stat sb;
    if (stat(src, &sb) == 0) {
        struct timespec times[2] = {sb.st_atim, sb.st_mtim};
        utimensat(AT_FDCWD, dst, times, 0);
    }
    return PS_EXIT_OK;
}

/* The name the job reads FILE by, relative to the import root: FILE
 * itself when it is under the root (resolved: no symlink leads out), a
 * copy in adhoc/ with --copy-in, else refused. The exit status. */
static int run_input(const cli_ctx *c, const char *file, char *rel, size_t rellen)
{
    struct stat sb;
    if (stat(file, &sb) < 0)
        return cli_unreadable(c, file, strerror(errno));
    if (!S_ISREG(sb.st_mode)) {
        int fd;
        return cli_open_operand(c, file, &fd); /* says what it is instead; PS_EXIT_USAGE */
    }
    char real[PATH_MAX], root[PATH_MAX];
    if (realpath(file, real) == NULL)
        return cli_unreadable(c, file, strerror(errno));
    if (realpath(c->cfg->import_root, root) == NULL)
        str_copy(root, sizeof(root), c->cfg->import_root); /* none yet: nothing is under it */
    size_t rl = strlen(root);
    if (rl > 1 && strncmp(real, root, rl) == 0 && real[rl] == '/') {
        str_copy(rel, rellen, real + rl + 1);
        return PS_EXIT_OK;
    }
    if (cli_flag(c, "--copy-in"))
        return copy_in(c, file, rel, rellen);
    char also[PATH_MAX + 32] = "";
    if (strcmp(real, file) != 0)
        snprintf(also, sizeof(also), " (%s)", real);
    fprintf(stderr,
            "patronctl run: %s%s is outside the import root %s: put it under %s to run it in place, or pass "
            "--copy-in to copy it into %s/adhoc/ and run the copy\n",
            file, also, root, root, root);
    return PS_EXIT_USAGE;
}

/* The run request of FILE (rel, under the import root) with the profile
 * sent along; the job id into *id (the caller frees it). The exit status. */
static int send_run(const cli_ctx *c, char *rel, char *ptext, size_t plen, const char *profile, char **id)
{
    char pname[256], tmp[PATH_MAX];
    str_copy(tmp, sizeof(tmp), profile);
    str_copy(pname, sizeof(pname), basename(tmp));
    Patronsync__ControlRequest rq = PATRONSYNC__CONTROL_REQUEST__INIT;
    Patronsync__ControlRequest__OptsEntry ents[CLI_MAX_OPTS + 8], *ptrs[CLI_MAX_OPTS + 8];
    size_t cap = sizeof(ents) / sizeof(ents[0]);
    rq.opts = ptrs;
    rq.verb = "run";
    char *argv1[] = {rel};
    rq.args = argv1;
    rq.n_args = 1;
    rq.payload.data = (uint8_t *)ptext;
    rq.payload.len = plen;
    cli_put_opt(&rq, ents, "profile_name", pname);
    /* --no-thresholds first: a --max-*-pct given with it still counts. */
    if (cli_flag(c, "--no-thresholds")) {
        static const char *const thresholds[] = {"max_add_pct", "max_update_pct", "max_inactivate_pct",
                                                 "max_delete_pct", "max_remove_pct"};
        for (size_t k = 0; k < sizeof(thresholds) / sizeof(thresholds[0]); k++)
            cli_put_opt(&rq, ents, thresholds[k], "off");
    }
    if (cli_put_keyed(c, &rq, ents, cap) < 0)
        return PS_EXIT_USAGE;
    return cli_call(c, &rq, 30000, id);
}

int cmd_run(const cli_ctx *c)
{
    const char *profile = cli_value(c, "--profile");
    if (profile == NULL) {
        fprintf(stderr, "patronctl run: --profile FILE.properties is required (usage: patronctl run FILE "
                        "--profile FILE.properties [OPTIONS])\n");
        return PS_EXIT_USAGE;
    }
    size_t plen;
    int rc;
    char *ptext = cli_read_operand(c, profile, 1 << 22, &plen, &rc);
    if (ptext == NULL)
        return rc;
    char rel[PATH_MAX];
    rc = run_input(c, c->pos[0], rel, sizeof(rel));
    if (rc != PS_EXIT_OK) {
        free(ptext);
        return rc;
    }
    char *id = NULL;
    rc = send_run(c, rel, ptext, plen, profile, &id);
    free(ptext);
    if (rc != PS_EXIT_OK || id == NULL) {
        free(id);
        return rc != PS_EXIT_OK ? rc : PS_EXIT_FAILED;
    }
    char *nl = strchr(id, '\n');
    if (nl)
        *nl = '\0';
    int json = cli_flag(c, "--json");
    if (cli_flag(c, "--wait"))
        rc = show_job(c->cfg, id, json, 1);
    else if (json)
        printf("{\"job_id\":\"%s\"}\n", id);
    else
        printf("%s\n", id);
    free(id);
    return rc;
}
