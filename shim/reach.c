/*
 * The timer's own descriptor table, and how it reaches the application's descriptors from it.
 *
 * While a second thread shares the application's descriptor table, the kernel takes a
 * reference on the file in every system call the application makes on a descriptor, where a
 * table with one user lets it borrow the file for free (fdget's two paths): a few percent on a
 * one-byte round trip. So the timer gives itself an empty table of its own when nothing needs it
 * to change the application's (shutdown mode, in a process that has not forked: see timer.c),
 * and reaches an application descriptor by taking a reference to its file with pidfd_getfd. The
 * reference is to the file itself, so what the timer checks and shuts down is surely what the
 * number named when the reference was taken, even if the application closes the number then.
 *
 * Everything that takes a descriptor number on the timer thread goes through ac_reach_open:
 * with a shared table it is the number itself, with its own table a private reference.
 */
#include "autoclose.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <linux/close_range.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif
#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif

static int pidfd = -1;  /* this process, in the timer's own table */
static pthread_t owner; /* the thread with a table of its own, while own_table */
static bool own_table;
static bool shared_only; /* a runtime here keeps one model of the descriptor table */
static bool lost;        /* the main thread has exited: its table cannot be reached this way */

void ac_reach_note_runtime(void)
{
    /* ThreadSanitizer follows descriptors by number, one table per process: a number the
     * timer uses in its own table would look like the application's, and every use of both
     * like a race. Under it the timer shares the table. */
    shared_only = dlsym(RTLD_DEFAULT, "__tsan_init") != NULL;
}

bool ac_reach_may_leave_shared_table(void)
{
    return !shared_only;
}

static int pidfd_open_self(void)
{
    return (int)syscall(SYS_pidfd_open, getpid(), 0);
}

/* The kernel finds a process's descriptors through the thread a pidfd names, the main thread
 * unless told otherwise, and the main thread may exit (pthread_exit) while the others go on with
 * the same table. Then the pidfd is pointed at one of them (PIDFD_THREAD, Linux 6.9), and again
 * when that one exits. True when it now names a live thread. */
static bool through_another_thread(void)
{
    int tasks = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (tasks < 0)
        return false;
    pid_t me = (pid_t)syscall(SYS_gettid);
    char ents[2048] __attribute__((aligned(8)));
    bool found = false;
    long n;
    while (!found && (n = syscall(SYS_getdents64, tasks, ents, sizeof ents)) > 0) {
        for (long off = 0; off < n && !found;) {
            struct dirent64 *e = (struct dirent64 *)(ents + off);
            off += e->d_reclen;
            long tid = strtol(e->d_name, NULL, 10);
            if (tid <= 0 || tid == getpid() || tid == me)
                continue;
            int thread_pidfd = (int)syscall(SYS_pidfd_open, tid, PIDFD_THREAD);
            if (thread_pidfd < 0)
                continue;
            if (AC_REAL(dup3)(thread_pidfd, pidfd, O_CLOEXEC) == pidfd)
                found = true;
            AC_REAL(close)(thread_pidfd);
        }
    }
    AC_REAL(close)(tasks);
    return found;
}

bool ac_reach_leave_shared_table(void)
{
    /* After the unshare there is no way back, so pidfd_getfd is tried first, where a failure
     * (a kernel before 5.6, a seccomp filter) costs nothing: the timer then simply shares. */
    int probe_pidfd = pidfd_open_self();
    if (probe_pidfd < 0)
        return false;
    int probe = (int)syscall(SYS_pidfd_getfd, probe_pidfd, probe_pidfd, 0);
    if (probe >= 0)
        AC_REAL(close)(probe);
    AC_REAL(close)(probe_pidfd);
    if (probe < 0)
        return false;
    /* An empty table: copying none of the application's descriptors, this thread never holds
     * one of its files open, not even for a moment. */
    if (syscall(SYS_close_range, 0u, ~0u, CLOSE_RANGE_UNSHARE) != 0)
        return false;
    pidfd = pidfd_open_self(); /* cannot run out of descriptors in an empty table */
    owner = pthread_self();
    __atomic_store_n(&own_table, true, __ATOMIC_RELEASE);
    if (pidfd < 0)
        return true; /* every reach fails (ESRCH), and the timer acts on nothing */
    /* 0, 1 and 2 are filled with the pidfd, on which every read and write fails: whatever on
     * this thread writes to "stderr" (a libc diagnostic) cannot land in a descriptor of ours. */
    for (int n = 0; n <= 2; n++) {
        if (n != pidfd)
            AC_REAL(dup3)(pidfd, n, O_CLOEXEC);
    }
    if (pidfd <= 2) {
        int high = fcntl(pidfd, F_DUPFD_CLOEXEC, 3);
        if (high >= 0)
            pidfd = high;
    }
    return true;
}

bool ac_reach_own_table_here(void)
{
    return __atomic_load_n(&own_table, __ATOMIC_ACQUIRE) && pthread_equal(pthread_self(), owner);
}

int ac_reach_open(int app_fd)
{
    if (!ac_reach_own_table_here())
        return app_fd;
    if (app_fd < 0 || pidfd < 0) {
        errno = app_fd < 0 ? EBADF : ESRCH;
        return -1;
    }
    int reached = (int)syscall(SYS_pidfd_getfd, pidfd, app_fd, 0);
    if (reached < 0 && errno == ESRCH && through_another_thread())
        reached = (int)syscall(SYS_pidfd_getfd, pidfd, app_fd, 0);
    if (reached < 0 && errno == ESRCH && !__atomic_exchange_n(&lost, true, __ATOMIC_RELAXED)) {
        /* No thread of the application can be named (a kernel before 6.9). Only a timer sharing
         * their table can reach it now, and only one of the application's threads can start
         * it: its next accept or connect, or FIN, does (timer.c), the running hint being
         * cleared for that. */
        __atomic_store_n(&ac_timer_running_hint, false, __ATOMIC_RELAXED);
        errno = ESRCH;
    }
    return reached;
}

bool ac_reach_lost(void)
{
    return __atomic_load_n(&lost, __ATOMIC_RELAXED);
}

void ac_reach_close(int reached)
{
    if (reached >= 0 && ac_reach_own_table_here())
        AC_REAL(close)(reached);
}

void ac_reach_forget(void)
{
    /* Called by the thread with the table as it retires. Its table goes with it. */
    __atomic_store_n(&own_table, false, __ATOMIC_RELEASE);
    pidfd = -1;
}

void ac_reach_atfork_child(void)
{
    /* No thread here has a table of its own, and this process's main thread is alive. */
    ac_reach_forget();
    __atomic_store_n(&lost, false, __ATOMIC_RELAXED);
}
