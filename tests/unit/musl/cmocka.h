/*
 * The part of cmocka's API the unit tests use, for their musl build (build/musl/unit/): Debian's
 * libcmocka is built against glibc and cannot be linked into a musl program. Same names, same
 * meaning: each test runs after its setup, a failed assertion prints what it compared and ends
 * the test (longjmp back to the runner), and the group returns the number of tests that failed.
 * Nothing else of cmocka (mocks, expectations, its allocator checks) is here.
 */
#ifndef AC_MUSL_CMOCKA_H
#define AC_MUSL_CMOCKA_H

#include <inttypes.h>
#include <stdarg.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef void (*CMUnitTestFunction)(void **state);
typedef int (*CMFixtureFunction)(void **state);

struct CMUnitTest {
    const char *name;
    CMUnitTestFunction test_func;
    CMFixtureFunction setup_func;
    CMFixtureFunction teardown_func;
    void *initial_state;
};

#define cmocka_unit_test(f)                                                                        \
    {                                                                                              \
#f, f, NULL, NULL, NULL                                                                    \
    }
#define cmocka_unit_test_setup_teardown(f, setup, teardown)                                        \
    {                                                                                              \
#f, f, setup, teardown, NULL                                                               \
    }

static jmp_buf cm_failed_jump;

static inline __attribute__((format(printf, 3, 4), noreturn)) void
cm_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[  ERROR   ] --- ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n[   LINE   ] --- %s:%d: error: Failure!\n", file, line);
    longjmp(cm_failed_jump, 1);
}

#define fail_msg(...) cm_fail(__FILE__, __LINE__, __VA_ARGS__)
#define fail()        cm_fail(__FILE__, __LINE__, "failed")

#define assert_true(c)                                                                             \
    do {                                                                                           \
        if (!(c))                                                                                  \
            cm_fail(__FILE__, __LINE__, "%s", #c);                                                 \
    } while (0)
#define assert_false(c)                                                                            \
    do {                                                                                           \
        if ((c))                                                                                   \
            cm_fail(__FILE__, __LINE__, "%s", #c);                                                 \
    } while (0)
#define assert_non_null(p) assert_true((p) != NULL)
#define assert_null(p)     assert_true((p) == NULL)

/* Integers compare as cmocka's do: converted to the widest unsigned type. */
#define assert_int_equal(a, b)                                                                     \
    do {                                                                                           \
        uintmax_t cm_a_ = (uintmax_t)(a), cm_b_ = (uintmax_t)(b);                                  \
        if (cm_a_ != cm_b_)                                                                        \
            cm_fail(__FILE__, __LINE__,                                                            \
                    "%" PRIuMAX " (%#" PRIxMAX ") != %" PRIuMAX " (%#" PRIxMAX ")", cm_a_, cm_a_,  \
                    cm_b_, cm_b_);                                                                 \
    } while (0)
#define assert_int_not_equal(a, b)                                                                 \
    do {                                                                                           \
        uintmax_t cm_a_ = (uintmax_t)(a), cm_b_ = (uintmax_t)(b);                                  \
        if (cm_a_ == cm_b_)                                                                        \
            cm_fail(__FILE__, __LINE__, "%" PRIuMAX " == %" PRIuMAX, cm_a_, cm_b_);                \
    } while (0)
#define assert_in_range(v, lo, hi)                                                                 \
    do {                                                                                           \
        uintmax_t cm_v_ = (uintmax_t)(v), cm_lo_ = (uintmax_t)(lo), cm_hi_ = (uintmax_t)(hi);      \
        if (cm_v_ < cm_lo_ || cm_v_ > cm_hi_)                                                      \
            cm_fail(__FILE__, __LINE__,                                                            \
                    "%" PRIuMAX " is not within the range [%" PRIuMAX ", %" PRIuMAX "]", cm_v_,    \
                    cm_lo_, cm_hi_);                                                               \
    } while (0)
#define assert_ptr_equal(a, b)                                                                     \
    do {                                                                                           \
        const void *cm_a_ = (a), *cm_b_ = (b);                                                     \
        if (cm_a_ != cm_b_)                                                                        \
            cm_fail(__FILE__, __LINE__, "%p != %p", cm_a_, cm_b_);                                 \
    } while (0)
#define assert_ptr_not_equal(a, b)                                                                 \
    do {                                                                                           \
        const void *cm_a_ = (a), *cm_b_ = (b);                                                     \
        if (cm_a_ == cm_b_)                                                                        \
            cm_fail(__FILE__, __LINE__, "%p == %p", cm_a_, cm_b_);                                 \
    } while (0)
#define assert_string_equal(a, b)                                                                  \
    do {                                                                                           \
        const char *cm_a_ = (a), *cm_b_ = (b);                                                     \
        if (strcmp(cm_a_, cm_b_) != 0)                                                             \
            cm_fail(__FILE__, __LINE__, "\"%s\" != \"%s\"", cm_a_, cm_b_);                         \
    } while (0)
#define assert_memory_equal(a, b, n)                                                               \
    do {                                                                                           \
        if (memcmp((a), (b), (n)) != 0)                                                            \
            cm_fail(__FILE__, __LINE__, "%zu bytes of %s differ from %s", (size_t)(n), #a, #b);    \
    } while (0)

static inline int cm_run_group(const char *group, const struct CMUnitTest *tests, size_t count,
                               CMFixtureFunction group_setup, CMFixtureFunction group_teardown)
{
    void *group_state = NULL;
    volatile size_t failed = 0;
    printf("[==========] %s: Running %zu test(s).\n", group, count);
    if (group_setup != NULL && group_setup(&group_state) != 0) {
        printf("[  FAILED  ] %s: the group's setup failed\n", group);
        return (int)count;
    }
    for (size_t i = 0; i < count; i++) {
        void *state = tests[i].initial_state != NULL ? tests[i].initial_state : group_state;
        printf("[ RUN      ] %s\n", tests[i].name);
        fflush(stdout);
        if (setjmp(cm_failed_jump) == 0) {
            if (tests[i].setup_func != NULL && tests[i].setup_func(&state) != 0)
                cm_fail(__FILE__, __LINE__, "setup of %s failed", tests[i].name);
            tests[i].test_func(&state);
            if (tests[i].teardown_func != NULL && tests[i].teardown_func(&state) != 0)
                cm_fail(__FILE__, __LINE__, "teardown of %s failed", tests[i].name);
            printf("[       OK ] %s\n", tests[i].name);
        } else {
            failed++;
            printf("[  FAILED  ] %s\n", tests[i].name);
        }
    }
    if (group_teardown != NULL)
        group_teardown(&group_state);
    printf("[==========] %s: %zu test(s) run.\n", group, count);
    if (failed == 0)
        printf("[  PASSED  ] %zu test(s).\n", count);
    else
        printf("[  FAILED  ] %zu test(s).\n", failed);
    return (int)failed;
}
#define cmocka_run_group_tests_name(name, tests, setup, teardown)                                  \
    cm_run_group((name), (tests), sizeof(tests) / sizeof((tests)[0]), (setup), (teardown))
#define cmocka_run_group_tests(tests, setup, teardown)                                             \
    cmocka_run_group_tests_name(#tests, tests, setup, teardown)

#endif
