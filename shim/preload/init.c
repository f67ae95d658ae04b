/*
 * Library start: read the configuration once, bind the real functions, register the fork
 * handlers. Runs from the constructor, and also from the first slow path that gets there first
 * (another library's constructor can call a wrapped function before ours has run).
 */
#include "autoclose.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <unistd.h>

bool ac_active;

enum { INIT_NONE, INIT_RUNNING, INIT_DONE };
static int init_state = INIT_NONE;

static const char *env(const char *name)
{
    return getenv(name);
}

/* Fork waits for the timer's current piece of work and holds the tracker, so the child gets both
 * in a consistent state and no descriptor the timer holds for a moment. Signals are blocked from
 * the first lock on (a handler that closes one of the library's descriptors takes the work lock
 * too), and the forking thread's mask comes back in both processes. Only while the library has
 * something a child could inherit half-done (its thread has run, or it tracks a connection): a
 * program without a TCP connection pays no system call for its forks. Per thread: two threads may
 * fork at once. */
static __thread bool fork_holds_locks;
static __thread sigset_t fork_mask;
static void atfork_prepare(void)
{
    ac_process_spawning();
    fork_holds_locks = ac_timer_ran_here() || ac_tracker_entries_hint() > 0;
    if (!fork_holds_locks)
        return;
    sigset_t saved;
    ac_timer_work_lock_signals(&saved);
    fork_mask = saved;
    ac_tracker_atfork_prepare();
}
static void atfork_parent(void)
{
    if (!fork_holds_locks)
        return;
    sigset_t mask = fork_mask;
    ac_tracker_atfork_parent();
    ac_timer_work_unlock_signals(&mask);
}

/* The child's reset: async-signal-safe, and no thread is started here (see ac_timer_after_fork).
 * Without the locks held (_Fork, or nothing to hold) they are made anew: another thread may have
 * held one as the process forked. The pid is asked for only where it is used: a child that may
 * share its memory (vfork) is told apart by it. */
void ac_after_fork_child(bool locks_held)
{
    pid_t pid = __atomic_load_n(&ac_vm_shared_child_seen, __ATOMIC_RELAXED)
                    ? (pid_t)syscall(SYS_getpid)
                    : 0; /* asked for by the first vfork or clone(CLONE_VM), if any */
    __atomic_store_n(&ac_pid, pid, __ATOMIC_RELAXED);
    ac_tracker_atfork_child(locks_held);
    ac_timer_work_atfork_child(locks_held);
    ac_log_atfork_child();
    ac_stats_atfork_child();
    ac_sweep_atfork_child();
    ac_own_atfork_child();
    ac_timer_atfork_child();
}
static void atfork_child(void)
{
    if (!fork_holds_locks) {
        ac_after_fork_child(false);
        return;
    }
    sigset_t mask = fork_mask;
    ac_after_fork_child(true);
    pthread_sigmask(SIG_SETMASK, &mask, NULL);
}

/* At debug, one line at start-up says which build is loaded and with what settings: the first
 * thing to look at when a server under the shim behaves unexpectedly. Never at the default level:
 * every process the library is preloaded into would print it. */
static void log_start_line(void)
{
    if (ac_cfg.log_level < AC_LOG_DEBUG)
        return;
    char line[160];
    struct ac_text t;
    ac_text_init(&t, line, sizeof line);
    ac_text_str(&t, "libautoclose " AC_VERSION " active: grace_ms=");
    ac_text_uint(&t, ac_cfg.grace_ms);
    ac_text_str(&t, ac_cfg.mode == AC_MODE_CLOSE ? " mode=close" : " mode=shutdown");
    ac_text_str(&t, " sweep_ms=");
    ac_text_uint(&t, ac_cfg.sweep_ms);
    if (ac_cfg.dry_run)
        ac_text_str(&t, " dry_run=yes");
    ac_log(AC_LOG_DEBUG, line);
}

void ac_init(void)
{
    int expected = INIT_NONE;
    /* Whoever loses the race returns at once and sees the library as inactive until the
     * winner is done: the worst outcome is one FIN noticed late, never a deadlock. */
    if (!__atomic_compare_exchange_n(&init_state, &expected, INIT_RUNNING, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        return;
    __atomic_store_n(&ac_pid, (pid_t)syscall(SYS_getpid), __ATOMIC_RELAXED);
    ac_real_resolve();
#if !AC_GLIBC
    ac_close_marks_init();
#endif
    ac_log_capture_stderr();
    ac_config_load_for(&ac_cfg, env, ac_log_config_complaint, getauxval(AT_SECURE) != 0);
    /* One walk of the environment already in memory: a mistyped name gets its line too. */
    ac_config_report_unknown(environ, ac_log_config_complaint);
    ac_log_start();
    ac_stats_start();
    if (!ac_cfg.disabled)
        ac_nofile_apply();
    if (!ac_cfg.disabled)
        pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
    __atomic_store_n(&ac_active, !ac_cfg.disabled, __ATOMIC_RELEASE);
    __atomic_store_n(&init_state, INIT_DONE, __ATOMIC_RELEASE);
    /* A disabled library writes nothing, not even this. */
    if (ac_active)
        log_start_line();
    /* inetd passes a connection on fds 0-2, systemd's Accept=yes on fd 3: a program that never
     * accepts or connects still gets its timer. */
    if (ac_active && ac_sweep_inherited_tcp())
        ac_timer_start_slow();
}

/* errno is the program's: C wants it 0 when main starts, and a dlopen of the library must not
 * change it; ac_init's probes of inherited descriptors set it (ENOTSOCK, ENOSYS). */
__attribute__((constructor)) static void autoclose_constructor(void)
{
    int saved = errno;
    ac_init();
    errno = saved;
}

/* exit() (not _exit) writes the stats file one last time. */
__attribute__((destructor)) static void autoclose_destructor(void)
{
    if (__atomic_load_n(&ac_active, __ATOMIC_ACQUIRE))
        ac_stats_at_exit();
}
