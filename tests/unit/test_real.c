/*
 * The table of real functions: libc's once resolved; the library's own system calls for the
 * cancellable ones only while the application has no thread of its own and the library is
 * about to start one; libc's again, for good, once the application starts a thread; and again
 * the system calls in a forked child, which has one thread. The stand-ins must behave like
 * libc's (results, errno, the fortified length check).
 *
 * "libc's" is the next definition after this program, as the library sees it: under a
 * sanitizer that is the sanitizer's interceptor, which the stand-ins must never replace.
 *
 * The steps depend on each other (the state is the process's), so they run in this order.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <errno.h>
#include <gnu/lib-names.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "autoclose.h"

static void *libc_own(const char *symbol)
{
    void *libc = dlopen(LIBC_SO, RTLD_LAZY | RTLD_NOLOAD);
    assert_non_null(libc);
    void *p = dlsym(libc, symbol);
    dlclose(libc);
    assert_non_null(p);
    return p;
}

static void *next(const char *symbol)
{
    void *p = dlsym(RTLD_NEXT, symbol);
    assert_non_null(p);
    return p;
}

/* Checks that each cancellable entry is the next definition, or, when `stand_ins` and the next
 * definition is libc's own (a sanitizer intercepts some calls and not others), a stand-in. */
static void assert_cancellable(bool stand_ins)
{
    const struct {
        const char *symbol;
        void *entry;
    } checked[] = {
        {"read", (void *)ac_real.read},
        {"poll", (void *)ac_real.poll},
        {"__recv_chk", (void *)ac_real.recv_chk},
        {"epoll_wait", (void *)ac_real.epoll_wait},
    };
    for (size_t i = 0; i < sizeof checked / sizeof checked[0]; i++) {
        void *n = next(checked[i].symbol);
        bool replaceable = n == libc_own(checked[i].symbol);
        if (stand_ins && replaceable)
            assert_ptr_not_equal(checked[i].entry, n);
        else
            assert_ptr_equal(checked[i].entry, n);
    }
}

/* The calls glibc has no multi-threaded path for are always the next definitions. */
static void assert_others_are_next(void)
{
    assert_ptr_equal((void *)ac_real.dup3, next("dup3"));
    assert_ptr_equal((void *)ac_real.ioctl, next("ioctl"));
    assert_ptr_equal((void *)ac_real.epoll_ctl, next("epoll_ctl"));
}

static void resolved_to_libc(void **state)
{
    (void)state;
    ac_real_resolve();
    assert_cancellable(false);
    assert_others_are_next();
}

static void system_calls_before_the_first_own_thread(void **state)
{
    (void)state;
    ac_real_before_own_thread();
    assert_cancellable(true);
    assert_others_are_next();
}

/* Results and errno as libc gives them. */
static void stand_ins_behave_like_libc(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(AC_REAL(write)(p[1], "abc", 3), 3);
    char buf[8];
    assert_int_equal(AC_REAL(read_chk)(p[0], buf, 2, sizeof buf), 2);
    assert_memory_equal(buf, "ab", 2);
    assert_int_equal(AC_REAL(read)(p[0], buf, sizeof buf), 1);
    assert_int_equal(buf[0], 'c');
    struct pollfd none = {.fd = p[0], .events = POLLIN};
    assert_int_equal(AC_REAL(poll)(&none, 1, 0), 0);
    assert_int_equal(AC_REAL(close)(p[1]), 0);
    assert_int_equal(AC_REAL(read)(p[0], buf, sizeof buf), 0); /* EOF */
    assert_int_equal(AC_REAL(close)(p[0]), 0);
    errno = 0;
    assert_int_equal(AC_REAL(read)(p[0], buf, sizeof buf), -1);
    assert_int_equal(errno, EBADF);
    errno = 0;
    assert_int_equal(AC_REAL(close)(-1), -1);
    assert_int_equal(errno, EBADF);
}

/* A length beyond the buffer ends the program, as glibc's __read_chk does. */
static void stand_in_chk_keeps_its_promise(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char buf[4];
        int devnull[2];
        if (pipe(devnull) == 0)
            dup2(devnull[1], 2); /* glibc's message is not the test's output */
        /* The default action, set past any sanitizer's interception: its abort handler would
         * report this expected abort as an error. */
        struct {
            void *handler;
            unsigned long flags;
            void *restorer;
            unsigned long mask;
        } dfl = {0};
        syscall(SYS_rt_sigaction, SIGABRT, &dfl, NULL, sizeof dfl.mask);
        AC_REAL(read_chk)(0, buf, 8, sizeof buf);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

static void libc_again_once_the_application_starts_a_thread(void **state)
{
    (void)state;
    ac_real_app_thread_starting();
    assert_cancellable(false);
    ac_real_before_own_thread(); /* the library's next thread changes nothing now */
    assert_cancellable(false);
    assert_others_are_next();
}

static void a_forked_child_has_one_thread(void **state)
{
    (void)state;
    ac_real_atfork_child();
    assert_cancellable(false); /* until the library starts its thread */
    ac_real_before_own_thread();
    assert_cancellable(true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(resolved_to_libc),
        cmocka_unit_test(system_calls_before_the_first_own_thread),
        cmocka_unit_test(stand_ins_behave_like_libc),
        cmocka_unit_test(stand_in_chk_keeps_its_promise),
        cmocka_unit_test(libc_again_once_the_application_starts_a_thread),
        cmocka_unit_test(a_forked_child_has_one_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
