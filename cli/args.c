/* args: the one parser of patronctl's command words (by the command
 * table's options) and what handlers ask of a parsed command. */
#include "args.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "nearest.h"

void cli_verb_words(const cli_verb *v, char *out, size_t outlen)
{
    snprintf(out, outlen, "patronctl %s%s%s", v->name, v->sub ? " " : "", v->sub ? v->sub : "");
}

static const cli_opt *find_opt(const cli_verb *v, const char *name, size_t len)
{
    for (const cli_optgroup *g = v->groups; g && g->opts; g++)
        for (const cli_opt *o = g->opts; o->name; o++)
            if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
                return o;
    return NULL;
}

static int yes_no_word(const char *s)
{
    static const char *words[] = {"yes", "no", "y", "n", "true", "false", "on", "off", "1", "0"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strcasecmp(s, words[i]) == 0)
            return 1;
    return 0;
}

/* An option the command does not have: the message, with the nearest one. */
static int unknown_option(const cli_verb *v, const char *words, const char *s, size_t len)
{
    char name[128];
    snprintf(name, sizeof(name), "%.*s", (int)(len < 100 ? len : 100), s);
    nearest n;
    nearest_init(&n, name);
    for (const cli_optgroup *g = v->groups; g && g->opts; g++)
        for (const cli_opt *k = g->opts; k->name; k++)
            nearest_try(&n, k->name);
    char hint[160];
    nearest_hint(&n, hint, sizeof(hint));
    fprintf(stderr, "%s: unknown option '%s'%s\n'%s --help' lists its options.\n", words, name, hint, words);
    return -1;
}

/* The value of option o at argv[*i] (eq: after its '=', or NULL), *i
 * moved past what it took. NULL with the message printed. */
static const char *option_value(const cli_opt *o, const char *eq, int argc, char **argv, int *i, const char *words)
{
    const char *value = o->value ? o->value : "1";
    if (o->kind == CLI_FLAG && eq) {
        fprintf(stderr, "%s: %s takes no value\n", words, o->name);
        return NULL;
    }
    if (o->kind == CLI_VALUE || o->kind == CLI_NUMBER || (o->kind == CLI_YESNO && eq)) {
        if (eq) {
            value = eq + 1;
        } else if (*i + 1 < argc) {
            value = argv[++*i];
        } else {
            fprintf(stderr, "%s: %s needs a value (%s)\n", words, o->name, o->arg);
            return NULL;
        }
    } else if (o->kind == CLI_YESNO) {
        if (*i + 1 < argc && yes_no_word(argv[*i + 1]))
            value = argv[++*i];
        else
            value = "yes";
    }
    return value;
}

/* One operand. 0, or -1 printed (one too many). */
static int add_operand(cli_ctx *c, char *s, const char *words)
{
    const cli_verb *v = c->verb;
    if (c->npos == CLI_MAX_ARGS || c->npos >= v->max_args) {
        fprintf(stderr, "%s: unexpected argument '%s' (usage: patronctl %s%s%s%s%s; quote a name with spaces)\n", words,
                s, v->name, v->sub ? " " : "", v->sub ? v->sub : "", v->args[0] ? " " : "", v->args);
        return -1;
    }
    c->pos[c->npos++] = s;
    return 0;
}

/* The numbers given (the last of each option): within their bounds. 0 / -1 printed. */
static int check_numbers(const cli_ctx *c, const char *words)
{
    for (int i = 0; i < c->nopt; i++) {
        const cli_opt *o = c->opt[i];
        int64_t n;
        if (o->kind != CLI_NUMBER || cli_value(c, o->name) != c->val[i] || parse_i64(c->val[i], o->lo, o->hi, &n) == 0)
            continue;
        fprintf(stderr, "%s: %s '%s' is not a number from %lld to %lld\n", words, o->name, c->val[i], (long long)o->lo,
                (long long)o->hi);
        return -1;
    }
    return 0;
}

int cli_parse(cli_ctx *c, int argc, char **argv)
{
    const cli_verb *v = c->verb;
    char words[96];
    cli_verb_words(v, words, sizeof(words));
    int only_operands = 0;
    for (int i = 0; i < argc; i++) {
        char *s = argv[i];
        if (!only_operands && strcmp(s, "--") == 0) {
            only_operands = 1;
            continue;
        }
        if (only_operands || s[0] != '-' || s[1] != '-') {
            if (add_operand(c, s, words) < 0)
                return -1;
            continue;
        }
        const char *eq = strchr(s, '=');
        size_t len = eq ? (size_t)(eq - s) : strlen(s);
        const cli_opt *o = find_opt(v, s, len);
        if (o == NULL)
            return unknown_option(v, words, s, len);
        const char *value = option_value(o, eq, argc, argv, &i, words);
        if (value == NULL)
            return -1;
        if (c->nopt == CLI_MAX_OPTS) {
            fprintf(stderr, "%s: too many options (at most %d)\n", words, CLI_MAX_OPTS);
            return -1;
        }
        c->opt[c->nopt] = o;
        c->val[c->nopt] = value;
        c->nopt++;
    }
    if (c->npos < v->min_args) {
        fprintf(stderr, "%s: expected %s (usage: patronctl %s%s%s %s)\n", words, v->args, v->name, v->sub ? " " : "",
                v->sub ? v->sub : "", v->args);
        return -1;
    }
    return check_numbers(c, words);
}

const char *cli_value(const cli_ctx *c, const char *name)
{
    for (int i = c->nopt - 1; i >= 0; i--)
        if (strcmp(c->opt[i]->name, name) == 0)
            return c->val[i];
    return NULL;
}

int cli_values(const cli_ctx *c, const char *name, char *out, size_t outlen)
{
    out[0] = '\0';
    size_t used = 0;
    for (int i = 0; i < c->nopt; i++) {
        if (strcmp(c->opt[i]->name, name) != 0)
            continue;
        int n = snprintf(out + used, outlen - used, "%s%s", used ? "," : "", c->val[i]);
        if (n < 0 || (size_t)n >= outlen - used)
            return -1;
        used += (size_t)n;
    }
    return 0;
}

int64_t cli_number(const cli_ctx *c, const char *name, int64_t dflt)
{
    const char *v = cli_value(c, name);
    int64_t n;
    return v != NULL && parse_i64(v, INT64_MIN, INT64_MAX, &n) == 0 ? n : dflt;
}

int cli_flag(const cli_ctx *c, const char *name)
{
    return cli_value(c, name) != NULL;
}

void cli_put_opt(Patronsync__ControlRequest *rq, Patronsync__ControlRequest__OptsEntry *store, const char *key,
                 const char *value)
{
    for (size_t i = 0; i < rq->n_opts; i++) {
        if (strcmp(rq->opts[i]->key, key) == 0) {
            rq->opts[i]->value = (char *)value; /* given twice: the later wins */
            return;
        }
    }
    Patronsync__ControlRequest__OptsEntry *e = &store[rq->n_opts];
    patronsync__control_request__opts_entry__init(e);
    e->key = (char *)key;
    e->value = (char *)value;
    rq->opts[rq->n_opts++] = e;
}

int cli_put_keyed(const cli_ctx *c, Patronsync__ControlRequest *rq, Patronsync__ControlRequest__OptsEntry *store,
                  size_t cap)
{
    for (int i = 0; i < c->nopt; i++) {
        if (c->opt[i]->key == NULL)
            continue;
        if (rq->n_opts >= cap) {
            fprintf(stderr, "patronctl: too many options\n");
            return -1;
        }
        cli_put_opt(rq, store, c->opt[i]->key, c->val[i]);
    }
    return 0;
}

int cli_unreadable(const cli_ctx *c, const char *path, const char *why)
{
    char words[96];
    cli_verb_words(c->verb, words, sizeof(words));
    fprintf(stderr, "%s: cannot read %s: %s\n", words, path, why);
    return PS_EXIT_NOT_FOUND;
}

/* What kind of file a mode is, for a refusal. */
static const char *file_kind(mode_t m)
{
    if (S_ISDIR(m))
        return "a folder";
    if (S_ISFIFO(m))
        return "a fifo";
    if (S_ISCHR(m) || S_ISBLK(m))
        return "a device";
    if (S_ISSOCK(m))
        return "a socket";
    return "not a regular file";
}

int cli_open_operand(const cli_ctx *c, const char *path, int *fd)
{
    /* O_NONBLOCK: opening a fifo does not wait for a writer. */
    *fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (*fd < 0)
        return cli_unreadable(c, path, strerror(errno));
    struct stat sb;
    if (fstat(*fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        int e = errno;
        char words[96];
        cli_verb_words(c->verb, words, sizeof(words));
        if (S_ISREG(sb.st_mode))
            fprintf(stderr, "%s: cannot read %s: %s\n", words, path, strerror(e));
        else
            fprintf(stderr, "%s: %s is %s; only a regular file is read\n", words, path, file_kind(sb.st_mode));
        close(*fd);
        *fd = -1;
        return PS_EXIT_USAGE;
    }
    int fl = fcntl(*fd, F_GETFL);
    if (fl >= 0)
        fcntl(*fd, F_SETFL, fl & ~O_NONBLOCK);
    return 0;
}

char *cli_read_operand(const cli_ctx *c, const char *path, size_t max, size_t *len, int *rc)
{
    int fd;
    *rc = cli_open_operand(c, path, &fd);
    if (*rc != 0)
        return NULL;
    close(fd);
    char err[ERRLEN];
    char *data = file_read_all(path, max, len, err, sizeof(err));
    if (data == NULL) {
        *rc = cli_unreadable(c, path, err);
        return NULL;
    }
    return data;
}


int64_t cli_when_ms(const char *when)
{
    int64_t n;
    size_t len = strlen(when);
    if (len > 1 && (when[len - 1] == 'h' || when[len - 1] == 'd')) {
        char num[32];
        snprintf(num, sizeof(num), "%.*s", (int)(len - 1), when);
        if (parse_i64(num, 0, 100000, &n) < 0)
            return -1;
        return now_ms() - n * (when[len - 1] == 'h' ? 3600000 : 86400000);
    }
    if (len > 10 && parse_i64(when, 0, INT64_MAX, &n) == 0)
        return n;
    struct tm tm = {0};
    int got = sscanf(when, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                     &tm.tm_sec);
    if (got != 3 && got != 5 && got != 6)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    return t < 0 ? -1 : (int64_t)t * 1000;
}
