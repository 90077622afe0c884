/* verbs: patronctl's commands as one table — name, sub-command, operands,
 * options, what each needs of the cluster, its handler — and what the
 * table drives: the dispatch, `patronctl help`, `COMMAND --help`, and the
 * messages for an unknown word (with the nearest one); args.c parses a
 * command's words by its options.
 * A new command is a row here and a handler; docs/OPERATORS.md lists them. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "verbs.h"

#include "args.h"
#include "cluster.h"
#include "health.h"
#include "jobadmin.h"
#include "jobctl.h"
#include "jobs.h"
#include "keygen.h"
#include "nearest.h"
#include "profile_check.h"
#include "profile_new.h"
#include "refdata.h"
#include "run.h"
#include "schedule.h"
#include "sites.h"
#include "user.h"
#include "watch.h"

#define FLAG(n, h) {n, CLI_FLAG, NULL, NULL, NULL, h, 0, 0}
#define VALUE(n, a, h) {n, CLI_VALUE, a, NULL, NULL, h, 0, 0}
#define NUMBER(n, a, lo, hi, h) {n, CLI_NUMBER, a, NULL, NULL, h, lo, hi}
#define KFLAG(n, k, v, h) {n, CLI_FLAG, NULL, k, v, h, 0, 0}
#define KVALUE(n, a, k, h) {n, CLI_VALUE, a, k, NULL, h, 0, 0}
#define KYESNO(n, k, h) {n, CLI_YESNO, "yes|no", k, NULL, h, 0, 0}
#define END {NULL, 0, NULL, NULL, NULL, NULL, 0, 0}

/* ---- options ---- */

static const cli_opt o_json[] = {FLAG("--json", "print one JSON object"), END};
static const cli_optgroup g_json[] = {{NULL, o_json}, {NULL, NULL}};

static const cli_opt o_keygen[] = {
    VALUE("--role", "broker|scheduler|worker|client", "only this role's keypair; prints its allow-list line"),
    FLAG("--json", "print one JSON object"), END};
static const cli_optgroup g_keygen[] = {{NULL, o_keygen}, {NULL, NULL}};

static const cli_opt o_up[] = {NUMBER("--workers", "N", 1, 256, "how many workers to start (1-256, default 3)"), END};
static const cli_optgroup g_up[] = {{NULL, o_up}, {NULL, NULL}};

static const cli_opt o_site_add[] = {
    KFLAG("--media", "media", "1", "a media (library) site"),
    KVALUE("--access-level", "LEVEL", "access_level", "the site's default access level (docs/RULES.md)"),
    END};
static const cli_optgroup g_site_add[] = {{NULL, o_site_add}, {NULL, NULL}};

static const cli_opt o_run[] = {
    VALUE("--profile", "FILE.properties", "the PIC profile the file is read with (required)"),
    FLAG("--copy-in", "copy a FILE outside the import root into DATA/import/adhoc/ and run the copy"),
    KVALUE("--encoding", "ENC", "encoding", "the file's encoding (default: the profile's CsvTextEncoding)"),
    KFLAG("--dry-run", "dry_run", "1", "do everything but change the store: the summary says what a run would do"),
    KVALUE("--shard-size", "N", "shard_size", "records in a shard (default: setting shard_size)"),
    KFLAG("--allow-delete-outstanding", "allow_delete_outstanding", "1",
          "DeleteWhen rules may delete patrons with checkouts or fines"),
    FLAG("--wait", "wait for the job's end and print its summary (exit status: the job's state)"),
    FLAG("--json", "with --wait the summary, else the job id, as one JSON object"),
    END};
static const cli_opt o_run_safety[] = {
    KFLAG("--inactivate-missing", "inactivate_missing", "1", "inactivate patrons missing from the file"),
    KVALUE("--min-records", "N", "min_records", "patron records read before missing patrons are touched"),
    KVALUE("--days-before-inactivate", "N", "days_before_inactivate", "days a patron must be missing first"),
    KVALUE("--inactive-homeroom", "H", "inactive_homeroom", "homeroom set on inactivated patrons"),
    KVALUE("--delete-after-days", "N|never", "delete_after_days", "delete instead of inactivate after N more days"),
    KVALUE("--scope-sites", "A,B", "scope_sites", "sites missing patrons are looked for in (default: the file's)"),
    KVALUE("--scope-types", "T,U", "scope_types", "patron types likewise (default: all)"),
    KVALUE("--max-add-pct", "P", "max_add_pct", "hold the job if it adds more (P: 0-100 or off)"),
    KVALUE("--max-update-pct", "P", "max_update_pct", "hold the job if it updates more (default 75)"),
    KVALUE("--max-inactivate-pct", "P", "max_inactivate_pct", "hold the job if it inactivates more"),
    KVALUE("--max-delete-pct", "P", "max_delete_pct", "hold the job if it deletes more"),
    KVALUE("--max-remove-pct", "P", "max_remove_pct", "hold the job if it inactivates and deletes more (default 10)"),
    FLAG("--no-thresholds", "every --max-*-pct off"),
    END};
static const cli_optgroup g_run[] = {
    {NULL, o_run}, {"missing patrons and thresholds (percent of patrons in scope; docs/SAFETY.md)", o_run_safety}, {NULL, NULL}};

static const cli_opt o_job_show[] = {
    FLAG("--json", "print one JSON object"),
    FLAG("--wait", "wait until the job has ended (its progress on stderr meanwhile)"),
    FLAG("--errors-only", "list errors and warnings only (as --level warning)"),
    VALUE("--level", "info|warning|error", "list the summary lines of this level and above (default info: all)"),
    END};
static const cli_optgroup g_job_show[] = {{NULL, o_job_show}, {NULL, NULL}};
static const cli_opt o_jobs[] = {
    VALUE("--state", "STATUS", "only jobs of this status (pending, queued, running, complete, complete_with_errors, "
                               "failed, held, discarded, undone, dry_run; given again for more)"),
    VALUE("--schedule", "NAME", "only the runs of this schedule"),
    VALUE("--since", "WHEN", "started from YYYY-MM-DD[THH:MM[:SS]] (UTC), or Nh / Nd ago"),
    VALUE("--until", "WHEN", "started before WHEN"),
    NUMBER("--limit", "N", 1, 10000, "at most N jobs, newest first (default 50)"),
    FLAG("--json", "print one JSON array"), END};
static const cli_optgroup g_jobs[] = {{NULL, o_jobs}, {NULL, NULL}};
static const cli_opt o_jobs_delete[] = {
    VALUE("--before", "WHEN", "jobs started before YYYY-MM-DD[THH:MM[:SS]] (UTC), or Nh / Nd ago (required)"),
    VALUE("--state", "STATUS", "only jobs of this status (given again for more)"),
    FLAG("--json", "print one JSON object"), END};
static const cli_optgroup g_jobs_delete[] = {{NULL, o_jobs_delete}, {NULL, NULL}};
static const cli_opt o_export[] = {
    VALUE("--csv", "FILE", "write the summary lines as CSV (spreadsheet-safe)"),
    VALUE("--json", "FILE", "write the summary as one JSON object (as job show --json)"),
    FLAG("--errors-only", "errors and warnings only (as --level warning)"),
    VALUE("--level", "info|warning|error", "the lines of this level and above (default info: all)"),
    END};
static const cli_optgroup g_export[] = {{NULL, o_export}, {NULL, NULL}};
static const cli_opt o_watch[] = {FLAG("--once", "print one frame and exit (scripts)"), END};
static const cli_optgroup g_watch[] = {{NULL, o_watch}, {NULL, NULL}};
static const cli_opt o_status[] = {
    NUMBER("--lines", "N", 0, 1000, "the last N lines of each process's log (default 3)"),
    FLAG("--json", "print one JSON object"), END};
static const cli_optgroup g_status[] = {{NULL, o_status}, {NULL, NULL}};
static const char *const jobs_notes =
    "STATUS is the Job Manager's: Pending, Queued, Running, Complete, Complete with errors, Failed, Held,\n"
    "Discarded, Undone, Dry run ('complete_with_errors' or \"Complete with errors\" alike).\n"
    "'patronctl jobs delete --before WHEN' removes finished jobs from Redis (docs/OPERATORS.md).\n";
static const char *const delete_notes =
    "Only a finished job is deleted (never a pending, queued, running or held one): its keys leave Redis\n"
    "(summary, lines, notes, shards); the store keeps what it changed and its undo. Whoever can reach Redis\n"
    "may delete (docs/OPERATORS.md).\n";

static const cli_opt o_approve[] = {FLAG("--wait", "wait for the job's end and print its summary"),
                                    FLAG("--json", "print one JSON object"), END};
static const cli_optgroup g_approve[] = {{NULL, o_approve}, {NULL, NULL}};
static const cli_opt o_undo[] = {
    KFLAG("--force", "force", "1", "put the before-images back even where later jobs changed the same patrons"),
    FLAG("--json", "print one JSON object"), END};
static const cli_optgroup g_undo[] = {{NULL, o_undo}, {NULL, NULL}};

static const cli_opt o_profile[] = {
    VALUE("--csv", "SAMPLE.csv", "map the first records of a sample file field by field"),
    NUMBER("--records", "N", 1, 100000, "how many records of the sample (1-100000, default 5)"),
    VALUE("--encoding", "ENC", "the sample's encoding (default: the profile's CsvTextEncoding)"),
    END};
static const cli_optgroup g_profile[] = {{NULL, o_profile}, {NULL, NULL}};

static const cli_opt o_profile_new[] = {
    VALUE("--csv", "SAMPLE.csv", "a sample of the SIS export (required)"),
    VALUE("--out", "FILE.properties", "the profile to write (required; never over a file without --force)"),
    VALUE("--encoding", "ENC", "the sample's encoding (default: what a BOM or the bytes say, else windows-1252)"),
    FLAG("--header", "the first row is a header row (default: decided from the rows)"),
    FLAG("--no-header", "the first row is a record"),
    FLAG("--yes", "take the proposals and options without asking, even on a terminal"),
    FLAG("--force", "replace --out when it exists"),
    END};
static const cli_opt o_profile_new_choices[] = {
    VALUE("--map", "N=FIELD", "column N feeds patron field FIELD (lastName, siteShortName, ...; skip: not imported)"),
    VALUE("--map-value", "FIELD:VALUE=TARGET", "a map entry (site:111=ALAMEDA, gender:X=U; VALUE default: the rest)"),
    VALUE("--default", "FIELD=VALUE", "FIELD's value when its column is empty, or for every record without one"),
    VALUE("--default-site", "SHORT", "SiteShortNameDefault: the site of records that name none"),
    VALUE("--match", "districtid|barcode", "match patrons on District ID (default) or barcode + site"),
    VALUE("--skip-when", "FIELD,VALUE", "a SkipWhen rule (field_x or {N}; empty VALUE: when blank; replaces the proposed one)"),
    VALUE("--delete-when", "FIELD,VALUE", "a DeleteWhen rule"),
    VALUE("--sites", "SITES.csv", "school numbers of the sites: short_name,...,school_number (as for site import)"),
    END};
static const cli_optgroup g_profile_new[] = {
    {NULL, o_profile_new}, {"choices (each may be given again; docs/CONVERTER.md)", o_profile_new_choices}, {NULL, NULL}};

static const char *const profile_new_notes =
    "On a terminal it asks column by column (accept, change, skip), then the maps, the default site, the match\n"
    "mode and the skip and delete rules; without one, or with --yes, it takes the proposals and the options and\n"
    "says what it chose. The sites are the store's under --data (read-only); without a store they cannot be\n"
    "checked. After writing it runs 'profile check FILE --csv SAMPLE'. Exit status as profile check's.\n";

static const cli_opt o_ref_add[] = {
    KFLAG("--default", "default", "1", "NAME becomes the district's default patron type or resource group"), END};
static const cli_optgroup g_ref_add[] = {{NULL, o_ref_add}, {NULL, NULL}};

static const cli_opt o_sched_show[] = {FLAG("--json", "print one JSON object"),
                                       KFLAG("--properties", "properties", "1", "print its stored properties file"),
                                       END};
static const cli_optgroup g_sched_show[] = {{NULL, o_sched_show}, {NULL, NULL}};
static const cli_opt o_sched_run[] = {
    KFLAG("--incremental", "mode", "incremental", "an Incremental update (default: Full)"),
    KFLAG("--full", "mode", "full", "a Full update"),
    KFLAG("--dry-run", "dry_run", "1", "do everything but change the store"),
    FLAG("--wait", "wait for the job's end and print its summary (exit status: the job's state)"),
    FLAG("--json", "print one JSON object"),
    END};
static const cli_optgroup g_sched_run[] = {{NULL, o_sched_run}, {NULL, NULL}};
static const cli_opt o_sched_edit[] = {
    KVALUE("--name", "NEW", "name", "rename it"),
    KVALUE("--file", "FILE", "file", "the file to update from (relative to the import root)"),
    VALUE("--profile", "FILE.properties", "its properties file (stored with the schedule)"),
    KVALUE("--time", "HH:MM", "time", "the time of day (the district's local time, setting timezone)"),
    KVALUE("--full", "DAYS", "full", "days of a Full update"),
    KVALUE("--incremental", "DAYS", "incremental", "days of an Incremental update"),
    KVALUE("--none", "DAYS", "none", "days without an update"),
    KVALUE("--days", "DAYS", "days", "days of a Full update (as --full)"),
    KVALUE("--encoding", "ENC", "encoding", "the file's encoding (default: the properties file's CsvTextEncoding)"),
    KYESNO("--disabled", "disabled", "added disabled, or disable it"),
    KYESNO("--allow-delete-outstanding", "allow_delete_outstanding", "delete patrons with checkouts or fines"),
    KYESNO("--errors-only", "errors_only", "the job summary lists errors and warnings only"),
    KVALUE("--keep-jobs", "N|off", "keep_jobs", "delete previously run jobs, keeping N (1-99)"),
    FLAG("--json", "print one JSON object"),
    END};
static const cli_opt o_sched_safety[] = {
    KYESNO("--inactivate-missing", "inactivate_missing", "inactivate patrons missing from the file"),
    KVALUE("--min-records", "N", "min_records", "patron records read before missing patrons are touched (0-999,999)"),
    KVALUE("--days-before-inactivate", "N", "days_before_inactivate", "days a patron must be missing first (0-999)"),
    KVALUE("--inactive-homeroom", "TEXT", "inactive_homeroom", "homeroom set on inactivated patrons"),
    KVALUE("--delete-after-days", "N|never", "delete_after_days", "delete instead of inactivate after N more days"),
    KVALUE("--scope-sites", "A,B|file", "scope_sites", "sites missing patrons are looked for in (default: the file's)"),
    KVALUE("--scope-types", "X,Y|all", "scope_types", "patron types likewise (default: all)"),
    KVALUE("--max-add-pct", "P|off", "max_add_pct", "hold a job adding more (percent of patrons in scope)"),
    KVALUE("--max-update-pct", "P|off", "max_update_pct", "hold a job updating more (default 75)"),
    KVALUE("--max-inactivate-pct", "P|off", "max_inactivate_pct", "hold a job inactivating more"),
    KVALUE("--max-delete-pct", "P|off", "max_delete_pct", "hold a job deleting more"),
    KVALUE("--max-remove-pct", "P|off", "max_remove_pct", "hold a job inactivating and deleting more (default 10)"),
    END};
static const cli_optgroup g_sched_edit[] = {
    {NULL, o_sched_edit}, {"missing patrons and thresholds (docs/SAFETY.md)", o_sched_safety}, {NULL, NULL}};

static const char *const sched_notes =
    "DAYS: Sun..Sat, ranges (Mon-Fri), daily, weekdays, weekends, comma-separated; other days are None.\n"
    "Times are the district's local time (setting timezone). docs/SCHEDULES.md.\n";

static const cli_opt o_user_add[] = {
    VALUE("--permission", "PERM", "manage_patrons_district or view_jobs (given again for both)"),
    VALUE("--site", "SHORT", "a site-level user's site (given again for more; such a user may only view_jobs)"),
    FLAG("--json", "print one JSON object (with the token)"), END};
static const cli_optgroup g_user_add[] = {{NULL, o_user_add}, {NULL, NULL}};
static const cli_opt o_user_perm[] = {
    VALUE("--permission", "PERM", "manage_patrons_district or view_jobs (required)"),
    FLAG("--json", "print one JSON object"), END};
static const cli_optgroup g_user_perm[] = {{NULL, o_user_perm}, {NULL, NULL}};
static const cli_opt o_audit[] = {
    VALUE("--since", "WHEN", "from YYYY-MM-DD[THH:MM[:SS]] (UTC), or Nh / Nd ago"),
    NUMBER("--limit", "N", 1, 1000000, "at most N lines (default 1000)"),
    FLAG("--json", "print one JSON array"), END};
static const cli_optgroup g_audit[] = {{NULL, o_audit}, {NULL, NULL}};
static const char *const user_notes =
    "The token is printed once: give it to the user, who presents it with PATRONSYNC_TOKEN or\n"
    "--token-file FILE (mode 0600). Only district-level users may hold manage_patrons_district;\n"
    "a user with --site is site-level. docs/SECURITY.md.\n";

static const char *const run_notes =
    "A FILE under the import root (setting import_root, default DATA/import) runs in place. A FILE outside\n"
    "it is refused unless --copy-in is given; then it is copied into DATA/import/adhoc/, the job runs on the\n"
    "copy and the copy is removed when the job ends. Only a regular file is run (never a device, fifo or\n"
    "folder). A held job (exit 4) is decided with 'patronctl --data DIR job approve|discard ID'.\n";

/* ---- the table ---- */

static int cmd_help(const cli_ctx *c);

const cli_verb cli_verbs[] = {
    {"up", NULL, "", "start a single-host cluster under DIR (a running one is left as it is)", 0, 0, CLI_LOCAL, g_up,
     NULL, cmd_up},
    {"keygen", NULL, "", "make the CURVE keys and allow-lists that are missing (no cluster needed)", 0, 0, CLI_LOCAL,
     g_keygen, "Keys are made once and kept: running it again makes only what is missing. docs/SECURITY.md.\n",
     keygen_cmd},
    {"down", NULL, "", "stop the cluster under DIR", 0, 0, CLI_CLUSTER_DIR, NULL, NULL, cmd_down},
    {"status", NULL, "", "each process (pid, uptime, log), Redis, the store, workers (works without Redis)", 0, 0,
     CLI_LOCAL, g_status, NULL, cmd_status},
    {"health", NULL, "", "exit 0 only when scheduler, broker, a worker and Redis answer; a line per part", 0, 0,
     CLI_LOCAL, g_json, NULL, cmd_health},
    {"watch", NULL, "[ID]", "a live view: jobs with progress, workers, the next scheduled runs", 0, 1, CLI_REDIS,
     g_watch, "Refreshed each second on a terminal (q and Enter, or Ctrl-C, ends it); --once, or not on a terminal: one frame.\n",
     cmd_watch},
    {"site", "add", "SHORT \"Name\"", "add or change a site", 2, 2, CLI_SCHEDULER, g_site_add, NULL, cmd_site_add},
    {"site", "import", "FILE.csv", "sites from CSV: short_name,name,media", 1, 1, CLI_SCHEDULER, NULL, NULL,
     cmd_site_import},
    {"run", NULL, "FILE --profile FILE.properties", "update patrons from FILE now", 1, 1, CLI_SCHEDULER | CLI_REDIS,
     g_run, run_notes, cmd_run},
    {"jobs", NULL, "", "recent jobs: the Job Manager (name, submitted by, status, progress, counts)", 0, 0, CLI_REDIS,
     g_jobs, jobs_notes, cmd_jobs},
    {"jobs", "delete", "--before WHEN", "remove finished jobs started before WHEN from Redis", 0, 0, CLI_REDIS,
     g_jobs_delete, delete_notes, cmd_jobs_delete},
    {"job", "show", "ID", "a job's summary", 1, 1, CLI_REDIS, g_job_show, NULL, cmd_job_show},
    {"job", "export", "ID --csv FILE|--json FILE", "write a job's summary to a file (CSV safe for spreadsheets)", 1,
     1, CLI_REDIS, g_export, NULL, cmd_job_export},
    {"job", "delete", "ID", "remove a finished job from Redis", 1, 1, CLI_REDIS, g_json, delete_notes,
     cmd_job_delete},
    {"job", "approve", "ID", "apply a held job exactly as its preview shows", 1, 1, CLI_SCHEDULER | CLI_REDIS,
     g_approve, NULL, jobctl_cmd},
    {"job", "discard", "ID", "end a held job without any change", 1, 1, CLI_SCHEDULER, g_json, NULL, jobctl_cmd},
    {"job", "undo", "ID", "put back what a job changed (refused where later jobs changed the same patrons)", 1, 1,
     CLI_SCHEDULER, g_undo, NULL, jobctl_cmd},
    {"patron", "show", "DISTRICT_ID", "every stored field of a patron", 1, 1, CLI_SCHEDULER, g_json, NULL,
     cmd_patron_show},
    {"profile", "check", "FILE.properties", "check a profile; with a sample, how its first records map (no cluster needed)",
     1, 1, CLI_LOCAL, g_profile, "A bad profile is reported with its file, line and text (exit 1).\n", profile_cmd},
    {"profile", "new", "--csv SAMPLE.csv --out FILE.properties",
     "the Patron Import Converter: a profile from a sample of the export (no cluster needed)", 0, 0, CLI_LOCAL,
     g_profile_new, profile_new_notes, profile_new_cmd},
    {"profile", "explain", "FILE.properties", "a profile field by field in words (no cluster needed)", 1, 1,
     CLI_LOCAL, NULL, NULL, profile_explain_cmd},
    {"ref", "add", "patron-type|access-level|resource-group NAME...",
     "add reference data the patron rules check values against (docs/RULES.md)", 2, CLI_MAX_ARGS, CLI_SCHEDULER,
     g_ref_add, "A site's default access level: patronctl site add SHORT \"Name\" --access-level LEVEL\n", ref_cmd},
    {"ref", "list", "", "the reference data and the district's defaults", 0, 0, CLI_SCHEDULER, g_json, NULL, ref_cmd},
    {"schedule", "list", "", "every schedule: created by, last run, next run, missed slots", 0, 0, CLI_SCHEDULER,
     g_json, NULL, schedule_cmd},
    {"schedule", "show", "NAME", "one schedule", 1, 1, CLI_SCHEDULER, g_sched_show, NULL, schedule_cmd},
    {"schedule", "add", "NAME --file FILE --profile FILE.properties --time HH:MM --full DAYS|--incremental DAYS",
     "schedule updates of a file", 1, 1, CLI_SCHEDULER, g_sched_edit, sched_notes, schedule_cmd},
    {"schedule", "edit", "NAME", "change a schedule", 1, 1, CLI_SCHEDULER, g_sched_edit, sched_notes, schedule_cmd},
    {"schedule", "delete", "NAME", "delete a schedule (a job of it already running is not disturbed)", 1, 1,
     CLI_SCHEDULER, g_json, NULL, schedule_cmd},
    {"schedule", "run", "NAME", "run a schedule now (Full unless --incremental)", 1, 1, CLI_SCHEDULER | CLI_REDIS,
     g_sched_run, NULL, schedule_cmd},
    {"schedule", "enable", "NAME", "enable a schedule", 1, 1, CLI_SCHEDULER, g_json, NULL, schedule_cmd},
    {"schedule", "disable", "NAME", "disable a schedule (its slots are not run)", 1, 1, CLI_SCHEDULER, g_json, NULL,
     schedule_cmd},
    {"user", "add", "NAME --permission PERM", "add a user; its token is printed once", 1, 1, CLI_SCHEDULER,
     g_user_add, user_notes, user_cmd},
    {"user", "list", "", "every user: level, sites, permissions, enabled", 0, 0, CLI_SCHEDULER, g_json, NULL,
     user_cmd},
    {"user", "grant", "NAME --permission PERM", "give a user a permission", 1, 1, CLI_SCHEDULER, g_user_perm, NULL,
     user_cmd},
    {"user", "revoke", "NAME --permission PERM", "take a permission from a user", 1, 1, CLI_SCHEDULER, g_user_perm,
     NULL, user_cmd},
    {"user", "disable", "NAME", "a user's token stops working until enabled", 1, 1, CLI_SCHEDULER, g_json, NULL,
     user_cmd},
    {"user", "enable", "NAME", "enable a disabled user", 1, 1, CLI_SCHEDULER, g_json, NULL, user_cmd},
    {"user", "token", "NAME", "a new token for a user (printed once; the old one stops working)", 1, 1,
     CLI_SCHEDULER, g_json, NULL, user_cmd},
    {"audit", NULL, "", "the audit trail: who did what, from where, with what result", 0, 0, CLI_SCHEDULER, g_audit,
     NULL, audit_cmd},
    {"help", NULL, "[COMMAND [SUB]]", "this list, or one command's usage and options", 0, 2, CLI_LOCAL, NULL, NULL,
     cmd_help},
};
const size_t cli_nverbs = sizeof(cli_verbs) / sizeof(cli_verbs[0]);

static const char *const help_tail =
    "'patronctl COMMAND --help' shows a command's options; docs/OPERATORS.md describes them all.\n"
    "DIR defaults to $PATRONSYNC_DATA_DIR, else ./data.\n"
    "Exit status: 0 done (a job: complete), 1 failed, 2 usage, 3 complete with errors, 4 held,\n"
    "5 not found (a job, patron, schedule or a file named), 6 refused (permission or token),\n"
    "7 mismatch (jobs, job show: what Redis says of a finished job, the store contradicts).\n";

/* ---- help ---- */

static size_t nopts(const cli_verb *v)
{
    size_t n = 0;
    for (const cli_optgroup *g = v->groups; g && g->opts; g++)
        for (const cli_opt *o = g->opts; o->name; o++)
            n++;
    return n;
}

/* Whether the usage's operands already show option name. */
static int in_args(const cli_verb *v, const char *name)
{
    size_t len = strlen(name);
    for (const char *p = strstr(v->args, name); p; p = strstr(p + 1, name))
        if (p[len] == '\0' || p[len] == ' ' || p[len] == '|')
            return 1;
    return 0;
}

/* "job approve ID [--wait] [--json]": a few options inline, else [OPTIONS]. */
static void usage_line(const cli_verb *v, strbuf *sb)
{
    sb_printf(sb, "%s%s%s%s%s", v->name, v->sub ? " " : "", v->sub ? v->sub : "", v->args[0] ? " " : "", v->args);
    size_t n = nopts(v), shown = 0;
    for (const cli_optgroup *g = v->groups; g && g->opts; g++)
        for (const cli_opt *o = g->opts; o->name; o++)
            shown += in_args(v, o->name);
    if (n - shown > 3) {
        sb_puts(sb, " [OPTIONS]");
        return;
    }
    for (const cli_optgroup *g = v->groups; g && g->opts; g++)
        for (const cli_opt *o = g->opts; o->name; o++)
            if (!in_args(v, o->name))
                sb_printf(sb, " [%s%s%s]", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
}

static void print_overview(FILE *out)
{
    strbuf sb;
    sb_init(&sb);
    sb_puts(&sb, "usage: patronctl [--data DIR] COMMAND ...\n");
    for (size_t i = 0; i < cli_nverbs; i++) {
        sb_puts(&sb, "  ");
        usage_line(&cli_verbs[i], &sb);
        sb_printf(&sb, "\n      %s\n", cli_verbs[i].help);
    }
    sb_puts(&sb, help_tail);
    fputs(sb_str(&sb), out);
    sb_free(&sb);
}

static void print_verb_help(const cli_verb *v, FILE *out)
{
    strbuf sb;
    sb_init(&sb);
    sb_puts(&sb, "usage: patronctl [--data DIR] ");
    usage_line(v, &sb);
    sb_printf(&sb, "\n  %s\n", v->help);
    size_t width = 0;
    for (const cli_optgroup *g = v->groups; g && g->opts; g++)
        for (const cli_opt *o = g->opts; o->name; o++) {
            size_t w = strlen(o->name) + (o->arg ? strlen(o->arg) + 1 + (o->kind == CLI_YESNO ? 2 : 0) : 0);
            if (w > width)
                width = w;
        }
    if (width > 32)
        width = 32;
    for (const cli_optgroup *g = v->groups; g && g->opts; g++) {
        sb_printf(&sb, "%s:\n", g->title ? g->title : "options");
        for (const cli_opt *o = g->opts; o->name; o++) {
            char left[128];
            if (o->kind == CLI_YESNO)
                snprintf(left, sizeof(left), "%s [%s]", o->name, o->arg);
            else
                snprintf(left, sizeof(left), "%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
            if (strlen(left) > width)
                sb_printf(&sb, "  %s\n  %-*s  %s\n", left, (int)width, "", o->help);
            else
                sb_printf(&sb, "  %-*s  %s\n", (int)width, left, o->help);
        }
    }
    if (v->notes)
        sb_puts(&sb, v->notes);
    fputs(sb_str(&sb), out);
    sb_free(&sb);
}

/* Every command of name (its sub-commands). */
static void print_group(const char *name, FILE *out)
{
    strbuf sb;
    sb_init(&sb);
    sb_printf(&sb, "usage: patronctl [--data DIR] %s COMMAND ...\n", name);
    const char *notes = NULL;
    for (size_t i = 0; i < cli_nverbs; i++) {
        if (strcmp(cli_verbs[i].name, name) != 0)
            continue;
        sb_puts(&sb, "  ");
        usage_line(&cli_verbs[i], &sb);
        sb_printf(&sb, "\n      %s\n", cli_verbs[i].help);
        if (cli_verbs[i].notes && notes == NULL)
            notes = cli_verbs[i].notes;
    }
    sb_printf(&sb, "'patronctl %s COMMAND --help' shows a command's options.\n", name);
    if (notes)
        sb_puts(&sb, notes);
    fputs(sb_str(&sb), out);
    sb_free(&sb);
}

static int is_help(const char *s)
{
    return strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0;
}

/* ---- finding a command ---- */

static int has_subs(const char *name)
{
    for (size_t i = 0; i < cli_nverbs; i++)
        if (strcmp(cli_verbs[i].name, name) == 0)
            return cli_verbs[i].sub != NULL;
    return 0;
}

static int known_name(const char *name)
{
    for (size_t i = 0; i < cli_nverbs; i++)
        if (strcmp(cli_verbs[i].name, name) == 0)
            return 1;
    return 0;
}

static const cli_verb *find(const char *name, const char *sub)
{
    for (size_t i = 0; i < cli_nverbs; i++) {
        const cli_verb *v = &cli_verbs[i];
        if (strcmp(v->name, name) == 0 && (sub == NULL ? v->sub == NULL : v->sub && strcmp(v->sub, sub) == 0))
            return v;
    }
    return NULL;
}

static int unknown_command(const char *word)
{
    nearest n;
    nearest_init(&n, word);
    for (size_t i = 0; i < cli_nverbs; i++)
        nearest_try(&n, cli_verbs[i].name);
    char hint[160];
    nearest_hint(&n, hint, sizeof(hint));
    /* `patronctl approve`: the word is a sub-command of one. */
    if (n.best == NULL) {
        for (size_t i = 0; i < cli_nverbs && !hint[0]; i++)
            if (cli_verbs[i].sub && strcmp(cli_verbs[i].sub, word) == 0)
                snprintf(hint, sizeof(hint), "; did you mean '%s %s'?", cli_verbs[i].name, word);
    }
    fprintf(stderr, "patronctl: unknown command '%s'%s\n'patronctl help' lists the commands.\n", word, hint);
    return PS_EXIT_USAGE;
}

static int unknown_sub(const char *name, const char *word)
{
    nearest n;
    nearest_init(&n, word);
    for (size_t i = 0; i < cli_nverbs; i++)
        if (strcmp(cli_verbs[i].name, name) == 0)
            nearest_try(&n, cli_verbs[i].sub);
    char hint[160];
    nearest_hint(&n, hint, sizeof(hint));
    fprintf(stderr, "patronctl %s: unknown command '%s'%s\n'patronctl %s --help' lists its commands.\n", name, word,
            hint, name);
    return PS_EXIT_USAGE;
}

static int cmd_help(const cli_ctx *c)
{
    if (c->npos == 0) {
        print_overview(stdout);
        return PS_EXIT_OK;
    }
    const char *name = c->pos[0];
    if (!known_name(name))
        return unknown_command(name);
    if (c->npos == 1 && has_subs(name)) {
        print_group(name, stdout);
        return PS_EXIT_OK;
    }
    const cli_verb *v = find(name, c->npos > 1 ? c->pos[1] : NULL);
    if (v == NULL)
        return c->npos > 1 && has_subs(name) ? unknown_sub(name, c->pos[1]) : unknown_command(name);
    print_verb_help(v, stdout);
    return PS_EXIT_OK;
}

/* ---- dispatch ---- */

int cli_main(ps_config *cfg, int argc, char **argv)
{
    if (argc < 2) {
        print_overview(stderr);
        return PS_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (is_help(name))
        name = "help";
    if (!known_name(name))
        return unknown_command(name);
    int first = 2;
    const cli_verb *v;
    if (has_subs(name)) {
        if (argc < 3 || is_help(argv[2]) || strcmp(argv[2], "help") == 0) {
            print_group(name, argc < 3 ? stderr : stdout);
            return argc < 3 ? PS_EXIT_USAGE : PS_EXIT_OK;
        }
        v = find(name, argv[2]);
        if (v == NULL)
            return unknown_sub(name, argv[2]);
        first = 3;
    } else {
        /* a command that is also a group (jobs, jobs delete) */
        v = argc >= 3 ? find(name, argv[2]) : NULL;
        if (v != NULL)
            first = 3;
        else
            v = find(name, NULL);
    }
    /* --help anywhere after the command's words: its usage and options. */
    for (int i = first; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (is_help(argv[i])) {
            print_verb_help(v, stdout);
            return PS_EXIT_OK;
        }
    }
    cli_ctx *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        fprintf(stderr, "patronctl: out of memory\n");
        return PS_EXIT_FAILED;
    }
    c->cfg = cfg;
    c->verb = v;
    int rc = PS_EXIT_USAGE;
    if (cli_parse(c, argc - first, argv + first) == 0) {
        char err[ERRLEN];
        if (v->needs != CLI_LOCAL && cluster_check(cfg, v->needs, err, sizeof(err)) < 0) {
            char words[96];
            cli_verb_words(v, words, sizeof(words));
            fprintf(stderr, "%s: %s\n", words, err);
            rc = PS_EXIT_FAILED;
        } else {
            rc = v->run(c);
        }
    }
    free(c);
    return rc;
}
