/* exitcodes: what patronctl's exit status means, and the status code of
 * the scheduler's control replies (ControlReply.status), which patronctl
 * exits with: one table for both (docs/OPERATORS.md, "Exit status").
 * To add one: a new number at the end (scripts test these), the table in
 * docs/OPERATORS.md and the line of patronctl's help (cli/verbs.c). */
#ifndef EXITCODES_H
#define EXITCODES_H

#include <string.h>

enum ps_exit {
    PS_EXIT_OK = 0,          /* done; a job: ended complete */
    PS_EXIT_FAILED = 1,      /* it could not be done (a job: failed; the cluster is down or not there) */
    PS_EXIT_USAGE = 2,       /* refused as asked: an unknown word or option, a bad value, an operand refused */
    PS_EXIT_WITH_ERRORS = 3, /* done with errors (a job: complete_with_errors; site import: lines refused) */
    PS_EXIT_HELD = 4,        /* a job is held for approval: nothing was changed */
    PS_EXIT_NOT_FOUND = 5,   /* what was named does not exist (a job, patron, schedule, or an operand file) */
    PS_EXIT_REFUSED = 6,     /* refused: permission or token */
    PS_EXIT_MISMATCH = 7,    /* what Redis says of a finished job, the store contradicts (docs/SECURITY.md) */
};

/* The exit status of a job in a final state (docs/REDIS.md's states):
 * discarded, failed and stopped are PS_EXIT_FAILED. */
static inline int ps_exit_for_state(const char *state)
{
    if (strcmp(state, "complete") == 0)
        return PS_EXIT_OK;
    if (strcmp(state, "complete_with_errors") == 0)
        return PS_EXIT_WITH_ERRORS;
    if (strcmp(state, "held") == 0)
        return PS_EXIT_HELD;
    return PS_EXIT_FAILED;
}

#endif
