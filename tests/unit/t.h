/* t.h: the unit tests' tiny harness. Each test file is a program whose
 * main calls T_RUN(case) for each case; it prints one line per failed check
 * and a final "N passed, N failed" line, and exits non-zero on failure. */
#ifndef T_H
#define T_H

#include <stdio.h>
#include <string.h>

static int t_passed, t_failed, t_case_failed;
static const char *t_case;

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            printf("FAIL %s: %s:%d: %s\n", t_case, __FILE__, __LINE__, #cond);         \
            t_case_failed = 1;                                                         \
        }                                                                              \
    } while (0)

#define CHECK_STR(a, b)                                                                \
    do {                                                                               \
        const char *t_a = (a), *t_b = (b);                                             \
        if (t_a == NULL || t_b == NULL || strcmp(t_a, t_b) != 0) {                     \
            printf("FAIL %s: %s:%d: %s == \"%s\", expected \"%s\"\n", t_case, __FILE__, \
                   __LINE__, #a, t_a ? t_a : "(null)", t_b ? t_b : "(null)");          \
            t_case_failed = 1;                                                         \
        }                                                                              \
    } while (0)

#define T_RUN(fn)                                                                      \
    do {                                                                               \
        t_case = #fn;                                                                  \
        t_case_failed = 0;                                                             \
        fn();                                                                          \
        if (t_case_failed)                                                             \
            t_failed++;                                                                \
        else                                                                           \
            t_passed++;                                                                \
    } while (0)

#define T_END()                                                                        \
    do {                                                                               \
        printf("%d passed, %d failed\n", t_passed, t_failed);                          \
        return t_failed ? 1 : 0;                                                       \
    } while (0)

#endif
