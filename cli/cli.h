/* patronctl internals: the table of commands (verbs.c) that drives the
 * dispatch, the help and the messages; starting and stopping a
 * single-host cluster (cluster.c); talking to the scheduler's control
 * endpoint and Redis (main.c). Exit statuses: lib/exitcodes.h. */
#ifndef CLI_H
#define CLI_H

#include "config.h"
#include "exitcodes.h"
#include "patronsync.pb-c.h"
#include "util.h"

/* ---- the command table (verbs.c) ---- */

enum cli_opt_kind {
    CLI_FLAG,  /* --dry-run */
    CLI_VALUE, /* --profile FILE (or --profile=FILE) */
    CLI_YESNO, /* --disabled [yes|no]: the value may be left out (yes) */
};

/* One option of a command. */
typedef struct {
    const char *name;  /* "--profile" */
    int kind;          /* enum cli_opt_kind */
    const char *arg;   /* its value in the help ("FILE.properties"); NULL for a flag */
    const char *key;   /* the request option it is sent as (cli_put_keyed); NULL: the handler reads it */
    const char *value; /* what a flag sends under key (NULL: "1") */
    const char *help;  /* one line */
} cli_opt;

/* Options under one heading of a command's --help. */
typedef struct {
    const char *title;   /* NULL: "options" */
    const cli_opt *opts; /* ends with an entry whose name is NULL */
} cli_optgroup;

/* What a command needs of the cluster under DIR, checked before it runs
 * (cluster_check): a command that needs a part that is down fails at once. */
enum cli_need {
    CLI_LOCAL = 0,       /* nothing (profile check, help, up) */
    CLI_SCHEDULER = 1,   /* the scheduler's control endpoint */
    CLI_REDIS = 2,       /* Redis (job summaries, worker states) */
    CLI_CLUSTER_DIR = 4, /* a cluster started under DIR, running or not (down) */
};

typedef struct cli_ctx cli_ctx;

/* One command: `patronctl NAME [SUB] ARGS [OPTIONS]`. */
typedef struct {
    const char *name;   /* "job" */
    const char *sub;    /* "approve"; NULL: a command of one word */
    const char *args;   /* its operands (and required options) in the usage line: "ID" */
    const char *help;   /* one line: what it does */
    int min_args, max_args;
    int needs;                  /* enum cli_need, or-ed */
    const cli_optgroup *groups; /* ends with an entry whose opts is NULL; NULL: no options */
    const char *notes;          /* more for its --help, or NULL */
    int (*run)(const cli_ctx *c);
} cli_verb;

extern const cli_verb cli_verbs[];
extern const size_t cli_nverbs;

#define CLI_MAX_ARGS 64
#define CLI_MAX_OPTS 64

/* A command as given: its table entry, operands, options in order. */
struct cli_ctx {
    ps_config *cfg;
    const cli_verb *verb;
    char *pos[CLI_MAX_ARGS];
    int npos;
    const cli_opt *opt[CLI_MAX_OPTS];
    const char *val[CLI_MAX_OPTS];
    int nopt;
};

/* patronctl's command line after config_from_args took --data, --set and
 * --config: find the command, parse its options by the table, check what
 * it needs, run it. The exit status (messages printed). */
int cli_main(ps_config *cfg, int argc, char **argv);
/* The value of option name as given last, or NULL (a flag: its value). */
const char *cli_value(const cli_ctx *c, const char *name);
/* Whether option name was given. */
int cli_flag(const cli_ctx *c, const char *name);
/* "patronctl job approve" (the command's words) into out. */
void cli_verb_words(const cli_verb *v, char *out, size_t outlen);
/* The request options of every option given that has a key (the later
 * of two wins), appended to rq's opts (entries in store, cap of them in
 * all). 0 / -1 (printed). */
int cli_put_keyed(const cli_ctx *c, Patronsync__ControlRequest *rq, Patronsync__ControlRequest__OptsEntry *store,
                  size_t cap);
/* Append one request option (rq->opts has room: the caller's arrays). */
void cli_put_opt(Patronsync__ControlRequest *rq, Patronsync__ControlRequest__OptsEntry *store, const char *key,
                 const char *value);
/* The exit status of a file operand that cannot be opened for reading
 * (PS_EXIT_NOT_FOUND), its message printed: "patronctl VERB: cannot read
 * PATH: why". For every command alike (docs/OPERATORS.md). */
int cli_unreadable(const cli_ctx *c, const char *path, const char *why);
/* Open a file operand for reading (*fd, the caller closes it). 0, or the
 * exit status with its message printed: PS_EXIT_NOT_FOUND when it cannot
 * be opened (missing, no permission), PS_EXIT_USAGE when it is not a
 * regular file (a folder, fifo, device: never read, never waited on). */
int cli_open_operand(const cli_ctx *c, const char *path, int *fd);
/* The whole of a file operand (at most max bytes; the caller frees it),
 * or NULL with *rc the exit status (printed), as cli_open_operand. */
char *cli_read_operand(const cli_ctx *c, const char *path, size_t max, size_t *len, int *rc);

/* ---- the handlers of the table ---- */

/* main.c */
int cmd_up(const cli_ctx *c);
int cmd_down(const cli_ctx *c);
int cmd_site_add(const cli_ctx *c);
int cmd_site_import(const cli_ctx *c);
int cmd_run(const cli_ctx *c);
int cmd_jobs(const cli_ctx *c);
int cmd_job_show(const cli_ctx *c);
int cmd_patron_show(const cli_ctx *c);
int cmd_status(const cli_ctx *c);
/* jobctl.c: job approve|discard|undo */
int jobctl_cmd(const cli_ctx *c);
/* profile_check.c: profile check (local: no cluster needed) */
int profile_cmd(const cli_ctx *c);
/* The checks of `profile check FILE [--csv SAMPLE]` on files already
 * known to be readable: the settings, the warnings and, with a sample,
 * its first nrec records mapped. The exit status (messages printed). */
int profile_check_file(const ps_config *cfg, const char *file, const char *csv, const char *enc, int64_t nrec);
/* The sample at path converted from enc to UTF-8 into a new buffer (*len
 * bytes; the caller frees it), the conversion's notes printed. NULL with
 * err. */
char *profile_read_sample(const char *path, const char *enc, size_t *len, char *err, size_t errlen);
/* profile_new.c: profile new, profile explain (local) */
int profile_new_cmd(const cli_ctx *c);
int profile_explain_cmd(const cli_ctx *c);
/* refdata.c: ref add|list */
int ref_cmd(const cli_ctx *c);
/* schedule.c: schedule add|edit|show|list|delete|run|enable|disable */
int schedule_cmd(const cli_ctx *c);

/* ---- the cluster (cluster.c) ---- */

#define CLUSTER_MAX_PROCS 300
#define CLUSTER_DEFAULT_WORKERS 3

/* A process a pid file under DATA/run/ names. */
typedef struct {
    char name[64]; /* scheduler, broker, redis, worker-N */
    int pid;
    int alive; /* running, and the program its name says */
} cluster_proc;

/* `patronctl up`: start redis (unless configured), broker, N workers
 * (<= 0: CLUSTER_DEFAULT_WORKERS) and the scheduler under cfg->data_dir;
 * return when all answer. 0 started; 1 a whole cluster already runs there
 * and answers (untouched; err says so); -1 with err: part of one runs (not
 * touched either), or starting failed (what this call started is stopped,
 * nothing else). */
int cluster_up(ps_config *cfg, int workers, int redis_configured, char *err, size_t errlen);
/* `patronctl down`: SIGTERM everything a pid file under DATA/run names,
 * wait, then SIGKILL what is left after the grace period; *stopped: how
 * many were running. 0 / -1. */
int cluster_down(ps_config *cfg, int *stopped, char *err, size_t errlen);
/* Pid of a process started by up (DATA/run/NAME.pid) if it is alive, else 0. */
int cluster_pid(const ps_config *cfg, const char *name);
/* The processes DATA/run/ *.pid name (at most cap), in the order redis,
 * broker, workers, scheduler. How many. */
int cluster_procs(const ps_config *cfg, cluster_proc *procs, int cap);
/* Whether the cluster under cfg->data_dir can serve a command that needs
 * `needs` (enum cli_need): 0, or -1 with the operator's message — no
 * cluster under DIR, or the part it needs is not running. Asks no socket:
 * it answers at once. */
int cluster_check(const ps_config *cfg, int needs, char *err, size_t errlen);

/* ---- the scheduler and Redis (main.c) ---- */

/* One request to the scheduler, waiting up to timeout_ms (connecting:
 * 5 s at most). The reply is the caller's to free with
 * patronsync__control_reply__free_unpacked. NULL and err when the
 * scheduler does not answer. */
Patronsync__ControlReply *control_call(const ps_config *cfg, Patronsync__ControlRequest *rq, long timeout_ms,
                                       char *err, size_t errlen);
/* The user token: PATRONSYNC_TOKEN, else DATA/admin.token. NULL when none
 * (owned by the caller), with why in err. */
char *control_token(const ps_config *cfg, char *err, size_t errlen);
/* Send rq with the user's token; print a refusal ("patronctl: ..."). The
 * exit status (the scheduler's, lib/exitcodes.h). The reply's body into
 * *body (the caller frees it) when body is not NULL, else printed. */
int cli_call(const cli_ctx *c, Patronsync__ControlRequest *rq, long timeout_ms, char **body);

/* Print a job's summary from Redis (waiting until it is final when wait
 * is set), and for a held job the commands that decide it, with the
 * --data the operator used; the exit status for it. */
int show_job(const ps_config *cfg, const char *id, int json, int wait);

#endif
