/* proc: shared daemon start-up. */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

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

int proc_lock(const ps_config *cfg, const char *name, char *err, size_t errlen)
{
    char dir[CONFIG_STR + 16], path[CONFIG_STR + 80];
    snprintf(dir, sizeof(dir), "%s/run", cfg->data_dir);
    if (mkdir_p(dir, 0750, err, errlen) < 0)
        return -1;
    snprintf(path, sizeof(path), "%s/%s.lock", dir, name);
    /* Kept open (and locked) until the process ends; not inherited by exec. */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        err_set(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        char held[32] = "";
        ssize_t n = pread(fd, held, sizeof(held) - 1, 0);
        held[n > 0 ? n : 0] = '\0';
        char *nl = strchr(held, '\n');
        if (nl)
            *nl = '\0';
        if (e == EWOULDBLOCK)
            err_set(err, errlen, "another %s (pid %s) already runs on the data folder %s (%s is locked); stop it first",
                    name, held[0] ? held : "unknown", cfg->data_dir, path);
        else
            err_set(err, errlen, "cannot lock %s: %s", path, strerror(e));
        close(fd);
        return -1;
    }
    char line[32];
    int len = snprintf(line, sizeof(line), "%d\n", (int)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, line, (size_t)len, 0) != len) {
        err_set(err, errlen, "cannot write %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return 0; /* fd stays open: the lock lives as long as the process */
}
