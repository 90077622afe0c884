/* args: a patronctl command as given — the shape of the command table
 * (verbs.c) and its options, the one table-driven parser every command's
 * words go through, and what handlers ask of the result (option values,
 * request options, file operands). Exit statuses: lib/exitcodes.h. */
#ifndef ARGS_H
#define ARGS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "exitcodes.h"
#include "patronsync.pb-c.h"
#include "util.h"

enum cli_opt_kind {
    CLI_FLAG,   /* --dry-run */
    CLI_VALUE,  /* --profile FILE (or --profile=FILE) */
    CLI_YESNO,  /* --disabled [yes|no]: the value may be left out (yes) */
    CLI_NUMBER, /* --workers N: a whole number from lo to hi */
};

/* One option of a command. */
typedef struct {
    const char *name;  /* "--profile" */
    int kind;          /* enum cli_opt_kind */
    const char *arg;   /* its value in the help ("FILE.properties"); NULL for a flag */
    const char *key;   /* the request option it is sent as (cli_put_keyed); NULL: the handler reads it */
    const char *value; /* what a flag sends under key (NULL: "1") */
    const char *help;  /* one line */
    int64_t lo, hi;    /* CLI_NUMBER: its bounds */
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

/* argv (the words after the command's own) into c by c->verb's option
 * table: operands, options with their values (a number checked against
 * its bounds), the operand count. 0, or -1 with the message printed. */
int cli_parse(cli_ctx *c, int argc, char **argv);

/* The value of option name as given last, or NULL (a flag: its value). */
const char *cli_value(const cli_ctx *c, const char *name);
/* Every value of an option given more than once, joined with commas, into
 * out ("" when not given). 0, or -1 when they do not fit. */
int cli_values(const cli_ctx *c, const char *name, char *out, size_t outlen);
/* The value of a CLI_NUMBER option (cli_parse checked its bounds), or dflt. */
int64_t cli_number(const cli_ctx *c, const char *name, int64_t dflt);
/* WHEN as ms since 1970: YYYY-MM-DD[THH:MM[:SS]] (UTC), Nh or Nd ago, or
 * ms. -1 when it is none of them (audit --since, jobs --since/--until). */
int64_t cli_when_ms(const char *when);
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

#endif
