/* proc: shared daemon start-up. */
#include "proc.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

volatile int proc_stopping;

static void on_signal(int sig)
{
    (void)sig;
    proc_stopping = 1;
}

int proc_start(const char *prog, const char *process, int argc, char **argv, ps_config *cfg)
{
    char err[ERRLEN];
    int print = 0;
    if (config_from_args(cfg, &argc, argv, &print, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s: %s\n", prog, err);
        return 2;
    }
    if (print) {
        config_print(cfg, stdout);
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "%s: unknown argument '%s'\n", prog, argv[1]);
        return 2;
    }
    log_init(process ? process : cfg->worker_id, log_level_parse(cfg->log_level));
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return -1;
}
