/*
 * The table of real functions: before the library's constructor has resolved it, a call through
 * any entry still reaches the real function (the entry resolves the table first); afterwards
 * every entry is the next definition (libc's, or a sanitizer's interceptor), and the shim never
 * stands in for libc: a timeout passed by pointer stays the caller's, a cancellation point stays
 * one. The steps depend on each other (the state is the process's), so they run in this order.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include "autoclose.h"

static void *next(const char *symbol)
{
    void *p = dlsym(RTLD_NEXT, symbol);
    assert_non_null(p);
    return p;
}

/* Nothing has resolved the table yet: the first call through it does, and works. */
static void first_call_resolves(void **state)
{
    (void)state;
    assert_ptr_not_equal((void *)ac_real.read, next("read"));
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(write(p[1], "abc", 3), 3);
    char buf[8];
    assert_int_equal(AC_REAL(read)(p[0], buf, sizeof buf), 3);
    assert_ptr_equal((void *)ac_real.read, next("read"));
    close(p[0]);
    close(p[1]);
}

static void every_entry_is_the_next_definition(void **state)
{
    (void)state;
    ac_real_resolve();
    const struct {
        const char *symbol;
        void *entry;
    } checked[] = {
        {"read", (void *)ac_real.read},
        {"poll", (void *)ac_real.poll},
        {"ppoll", (void *)ac_real.ppoll},
#if AC_HAVE_CHK
        {"__recv_chk", (void *)ac_real.recv_chk},
#endif
        {"epoll_wait", (void *)ac_real.epoll_wait},
        {"close", (void *)ac_real.close},
        {"accept", (void *)ac_real.accept},
        {"dup3", (void *)ac_real.dup3},
        {"fcntl", (void *)ac_real.fcntl},
        {"ioctl", (void *)ac_real.ioctl},
        {"getsockopt", (void *)ac_real.getsockopt},
        {"getpeername", (void *)ac_real.getpeername},
        {"fork", (void *)ac_real.fork},
        {"vfork", (void *)ac_real.vfork},
        {"posix_spawn", (void *)ac_real.posix_spawn},
        {"sendmmsg", (void *)ac_real.sendmmsg},
    };
    for (size_t i = 0; i < sizeof checked / sizeof checked[0]; i++)
        assert_ptr_equal(checked[i].entry, next(checked[i].symbol));
}

/* ppoll through the table keeps the caller's timeout: the kernel writes the time left into the
 * timeout it is given, and libc gives it a copy. */
static void ppoll_keeps_the_timeout(void **state)
{
    (void)state;
    const struct timespec timeout = {.tv_sec = 0, .tv_nsec = 20 * 1000000L};
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (int i = 0; i < 3; i++)
        assert_int_equal(AC_REAL(ppoll)(NULL, 0, &timeout, NULL), 0);
    clock_gettime(CLOCK_MONOTONIC, &end);
    assert_int_equal(timeout.tv_sec, 0);
    assert_int_equal(timeout.tv_nsec, 20 * 1000000L);
    long ms = (end.tv_sec - start.tv_sec) * 1000 + (end.tv_nsec - start.tv_nsec) / 1000000;
    assert_true(ms >= 58);
}

static int ready[2];
static void *blocked_reader(void *arg)
{
    (void)arg;
    char c;
    AC_REAL(read)(ready[0], &c, 1); /* a cancellation point: never returns */
    return NULL;
}

/* A thread blocked in read through the table can be cancelled. */
static void read_stays_a_cancellation_point(void **state)
{
    (void)state;
    assert_int_equal(pipe(ready), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, blocked_reader, NULL), 0);
    struct timespec pause = {.tv_nsec = 50 * 1000000L};
    nanosleep(&pause, NULL);
    assert_int_equal(pthread_cancel(t), 0);
    struct timespec limit;
    clock_gettime(CLOCK_REALTIME, &limit);
    limit.tv_sec += 3;
    void *result = NULL;
    assert_int_equal(pthread_timedjoin_np(t, &result, &limit), 0);
    assert_ptr_equal(result, PTHREAD_CANCELED);
    close(ready[0]);
    close(ready[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(first_call_resolves),
        cmocka_unit_test(every_entry_is_the_next_definition),
        cmocka_unit_test(ppoll_keeps_the_timeout),
        cmocka_unit_test(read_stays_a_cancellation_point),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
