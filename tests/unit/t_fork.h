/* t_fork.h: T_FORK(case) runs a case of t.h in a child process of its
 * own, so a crash (a signal) fails that case alone and the others still
 * run and report. */
#ifndef T_FORK_H
#define T_FORK_H

#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "t.h"

static void t_fork_run(const char *name, void (*fn)(void))
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        t_case = name;
        t_case_failed = 0;
        fn();
        fflush(stdout);
        _exit(t_case_failed ? 1 : 0);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid) {
        printf("FAIL %s: cannot run it in a process of its own\n", name);
        t_failed++;
        return;
    }
    if (WIFSIGNALED(st))
        printf("FAIL %s: crashed (signal %d)\n", name, WTERMSIG(st));
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        t_passed++;
    else
        t_failed++;
}

#define T_FORK(fn) t_fork_run(#fn, fn)

#endif
