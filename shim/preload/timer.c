/*
 * The background timer: one thread that judges each noted EOF and acts on each connection when
 * its grace runs out, even if the program never calls into the library again (its threads
 * blocked elsewhere, or gone), and runs the sweep every AUTOCLOSE_SWEEP_MS.
 *
 * It starts when the process first accepts or connects a TCP socket, or waits for readiness
 * after a fork, or starts with a TCP connection it inherited: points where the program is not
 * inside a signal handler or the allocator (a thread cannot safely be made there). A process
 * with no TCP connection never has one. It sleeps on a condition variable until its earliest
 * deadline (a note's, a pending connection's, the next sweep, the stats file, the count of log
 * lines the rate limit dropped), and is woken only
 * when a new deadline comes before that. It runs with every signal blocked, so the program's
 * signals keep going to the program's threads, and shares the program's descriptor table.
 */
#include "autoclose.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <unistd.h>

#define BATCH 64 /* connections handled per hold of the lock: a storm must not starve closes */

static bool started;
bool ac_timer_running_hint; /* `started`, readable without the lock */
/* The program is installing a seccomp filter (lockdown.c): no thread may be started from now on
 * (its system calls would meet the filter), and with stop_requested the running one ends. */
static bool no_more_threads, stop_requested;
static int timer_gone;                     /* set by the thread as it ends on stop_requested */
static uint64_t sleeps_until = UINT64_MAX; /* when the timer will look again, unless woken */
static bool sweep_off;                     /* the sweep cannot work here (said once) */
static uint64_t next_sweep_ms;
/* Epoll's FIN reports: a sweep is due at epoll_sweep_at unless as many EOFs were noted. */
static uint64_t epoll_sweep_at = UINT64_MAX;
static unsigned long epoll_fins, notes_at_epoll_fin;

/* Fork waits for the timer's current piece of work (act.c holds a descriptor of its own for a
 * moment, ownfd.c moves a new one up), and the work waits for a fork. A program closing one of
 * the library's own descriptors waits for it too (lifetime.c). */
static pthread_mutex_t work = PTHREAD_MUTEX_INITIALIZER;
void ac_timer_work_lock(void)
{
    pthread_mutex_lock(&work);
}
void ac_timer_work_unlock(void)
{
    pthread_mutex_unlock(&work);
}
/* From a program thread: its signals blocked while it waits and holds the lock, so that a
 * signal handler that closes a descriptor can never re-enter it. */
void ac_timer_work_lock_signals(sigset_t *saved_mask)
{
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, saved_mask);
    pthread_mutex_lock(&work);
}
void ac_timer_work_unlock_signals(const sigset_t *saved_mask)
{
    pthread_mutex_unlock(&work);
    pthread_sigmask(SIG_SETMASK, saved_mask, NULL);
}
void ac_timer_work_atfork_child(bool held)
{
    if (held)
        pthread_mutex_unlock(&work);
    else
        work = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
}

struct outcome {
    enum ac_log_level level;
    int fd, release_fd;
    bool released;
    struct ac_site_note site;
    char report[640];
};

/* Acts on up to BATCH due connections; returns how many, and lowers *next to the next deadline. */
static int act_on_due(struct outcome *out, uint64_t now, uint64_t *next)
{
    static unsigned batch;
    batch++;
    int n = 0;
    struct ac_due due;
    uint64_t pending_next = UINT64_MAX;
    while (n < BATCH && ac_tracker_take_due(now, &due, &pending_next)) {
        out[n].fd = due.fd;
        out[n].level = ac_act(&due, now, batch, out[n].report, sizeof out[n].report,
                              &out[n].release_fd, &out[n].released, &out[n].site);
        n++;
    }
    if (pending_next < *next)
        *next = pending_next;
    return n;
}

/* Whether a sweep is due now; otherwise lowers *next to when one will be. */
static bool sweep_due(uint64_t now, uint64_t *next)
{
    if (sweep_off)
        return false;
    uint64_t at = ac_cfg.sweep_ms > 0 ? next_sweep_ms : UINT64_MAX;
    if (epoll_sweep_at != UINT64_MAX && now >= epoll_sweep_at) {
        /* Decided only when it is due, so that a server that reads and closes its connections
         * costs one look a half grace, however many FINs epoll reported meanwhile. */
        unsigned long noted = __atomic_load_n(&ac_notes_taken, __ATOMIC_RELAXED);
        unsigned long fins = __atomic_load_n(&epoll_fins, __ATOMIC_RELAXED);
        if (noted - notes_at_epoll_fin >= fins) {
            /* The program read as many EOFs as epoll reported FINs: nothing for a sweep. */
            epoll_sweep_at = UINT64_MAX;
            __atomic_store_n(&epoll_fins, 0, __ATOMIC_RELAXED);
        } else {
            at = epoll_sweep_at;
        }
    } else if (epoll_sweep_at < at) {
        at = epoll_sweep_at;
    }
    if (now >= at)
        return true;
    if (at < *next)
        *next = at;
    return false;
}

/* After the program's lockdown nothing wakes the timer: it looks this often (half a grace, at
 * least every 10 ms, at most as seldom as the sweep's interval or a second). */
static uint64_t locked_down_look(void)
{
    uint64_t look = ac_cfg.grace_ms / 2;
    if (ac_cfg.sweep_ms > 0 && ac_cfg.sweep_ms < look)
        look = ac_cfg.sweep_ms;
    return look < 10 ? 10 : look > 1000 ? 1000 : look;
}

/* Set by the new thread once it runs its own code and has its descriptors: its start-up is
 * complete. */
static int timer_up;
static pthread_t timer_thread;
static bool timer_thread_set; /* timer_thread names this process's timer */

bool ac_timer_is_self(void)
{
    return __atomic_load_n(&timer_thread_set, __ATOMIC_ACQUIRE) &&
           pthread_equal(pthread_self(), timer_thread);
}

static void *timer_main(void *unused)
{
    (void)unused;
    timer_thread = pthread_self();
    __atomic_store_n(&timer_thread_set, true, __ATOMIC_RELEASE);
    ac_timer_work_lock();
    /* While the thread that started this one waits (inside accept, connect, the constructor or
     * fork's return): the new descriptors take the lowest free numbers for a moment, and the
     * program's own code cannot be between a close and an open there. */
    ac_own_prepare();
    __atomic_store_n(&timer_up, 1, __ATOMIC_RELEASE);
    static struct outcome out[BATCH]; /* one timer per process */
    /* Named from inside: pthread_setname_np would open a file in the program's fd table. */
    prctl(PR_SET_NAME, "autoclose");
    sigset_t saved;
    ac_tracker_lock(&saved);
    next_sweep_ms = ac_now_ms() + ac_cfg.sweep_ms;
    unsigned long notes_at_last_look = 0;
    for (;;) {
        if (stop_requested) {
            ac_tracker_unlock(&saved);
            ac_timer_work_unlock();
            __atomic_store_n(&timer_gone, 1, __ATOMIC_RELEASE);
            return NULL;
        }
        uint64_t now = ac_now_ms();
        unsigned long notes_before = __atomic_load_n(&ac_notes_taken, __ATOMIC_SEQ_CST);
        uint64_t next = ac_notes_judge_due(now);
        if (notes_before != notes_at_last_look) {
            /* EOFs were noted since the last look, most of them closed again by now (a server's
             * churn): look again a grace from now rather than sleep for good, so that the notes
             * taken meanwhile, all due after that, need not wake the timer one by one. */
            notes_at_last_look = notes_before;
            if (now + ac_cfg.grace_ms < next)
                next = now + ac_cfg.grace_ms;
        }
        int n = act_on_due(out, now, &next);
        if (n > 0) {
            /* Closing and logging happen without the lock: neither may hold up the program. */
            ac_tracker_unlock(&saved);
            for (int i = 0; i < n; i++)
                if (out[i].release_fd >= 0)
                    AC_REAL(close)(out[i].release_fd);
            /* The call sites are put into words holding no lock at all: the loader's list lock
             * they take may be held by a program thread (a dl_iterate_phdr callback, a dlopen
             * adding an object) waiting for one of ours. */
            ac_timer_work_unlock();
            for (int i = 0; i < n; i++)
                ac_site_complete(&out[i].site, out[i].report, sizeof out[i].report);
            ac_timer_work_lock();
            for (int i = 0; i < n; i++) {
                ac_log(out[i].level, out[i].report);
                if (out[i].released)
                    ac_headroom_check(out[i].fd);
            }
            ac_timer_work_unlock();
            ac_timer_work_lock();
            ac_tracker_lock(&saved);
            continue;
        }
        if (sweep_due(now, &next)) {
            epoll_sweep_at = UINT64_MAX;
            __atomic_store_n(&epoll_fins, 0, __ATOMIC_RELAXED);
            next_sweep_ms = now + ac_cfg.sweep_ms;
            ac_tracker_unlock(&saved);
            if (!ac_sweep_run())
                sweep_off = true;
            ac_timer_work_unlock();
            ac_timer_work_lock();
            ac_tracker_lock(&saved);
            continue;
        }
        uint64_t stats_next;
        if (ac_stats_due(now, &stats_next)) {
            size_t pending = ac_tracker_pending();
            ac_tracker_unlock(&saved);
            ac_stats_write(pending);
            ac_tracker_lock(&saved);
            continue;
        }
        if (stats_next < next)
            next = stats_next;
        /* Lines the log's rate limit dropped are counted aloud when their window closes. */
        uint64_t note_at = ac_log_note_due();
        if (note_at <= now) {
            ac_tracker_unlock(&saved);
            ac_log_say_dropped(now);
            ac_tracker_lock(&saved);
            continue;
        }
        if (note_at < next)
            next = note_at;
        if (no_more_threads && next > now + locked_down_look())
            next = now + locked_down_look();
        /* A note taken since the scan either sees this (and wakes the timer) or is seen here:
         * the two sides store, then load, with full barriers (notes.c). A window of dropped log
         * lines opened meanwhile the same way (log.c). */
        __atomic_store_n(&sleeps_until, next, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&ac_notes_taken, __ATOMIC_SEQ_CST) != notes_before ||
            ac_log_note_due() < next) {
            __atomic_store_n(&sleeps_until, 0, __ATOMIC_RELAXED);
            continue;
        }
        ac_timer_work_unlock(); /* a fork may go ahead while the timer sleeps */
        ac_tracker_wait(next);
        __atomic_store_n(&sleeps_until, 0, __ATOMIC_RELAXED); /* awake: no one need wake it */
        /* The work lock comes before the tracker lock: let go, and take both in order. */
        ac_tracker_unlock(&saved);
        ac_timer_work_lock();
        ac_tracker_lock(&saved);
    }
    return NULL;
}

/* Under the tracker lock. Returns true when it made the thread. */
static bool start(void)
{
    if (started || no_more_threads)
        return false;
    started = true;
    /* Made now, while the program has descriptors to spare, so that one at its limit can still
     * have its leaks released. */
    ac_placeholder_prepare();
    ac_own_make_room();
    __atomic_store_n(&ac_timer_running_hint, true, __ATOMIC_RELAXED);
    pthread_attr_t attr;
    pthread_t thread;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024); /* it only formats short lines */
    /* The caller holds the tracker lock, so every signal is blocked here and the new thread
     * inherits that mask. */
    __atomic_store_n(&timer_up, 0, __ATOMIC_RELAXED);
    bool made = pthread_create(&thread, &attr, timer_main, NULL) == 0;
    if (!made)
        ac_log(AC_LOG_ERROR, "cannot start the timer thread; half-closed connections stay");
    pthread_attr_destroy(&attr);
    return made;
}

void ac_timer_start_slow(void)
{
    /* Locked down: no thread may be started, and no system call made to find that out. */
    if (!__atomic_load_n(&ac_active, __ATOMIC_ACQUIRE) || ac_timer_locked_down())
        return;
    int saved_errno = errno;
    if (!ac_in_other_process()) {
        sigset_t saved;
        ac_tracker_lock(&saved);
        bool made = start();
        ac_tracker_unlock(&saved);
        /* Wait (a second at most) for the thread's start-up to finish before the program goes
         * on: a fork taken meanwhile would copy the locks of whatever the new thread's start-up
         * holds (a sanitizer's allocator does not guard against that), and a thread the child
         * makes could then wait for them forever. The new thread also makes the library's
         * descriptors meanwhile (it needs the tracker lock for that). */
        for (int i = 0; made && i < 100000 && !__atomic_load_n(&timer_up, __ATOMIC_ACQUIRE); i++)
            sched_yield();
    }
    errno = saved_errno;
}

bool ac_timer_ran_here(void)
{
    return __atomic_load_n(&ac_timer_running_hint, __ATOMIC_RELAXED);
}

bool ac_timer_locked_down(void)
{
    return __atomic_load_n(&no_more_threads, __ATOMIC_RELAXED);
}

bool ac_timer_lockdown(bool start_now, bool stop)
{
    int saved_errno = errno;
    sigset_t saved;
    ac_tracker_lock(&saved);
    bool made = start_now && start();
    bool was_running = started;
    no_more_threads = true;
    if (stop && started) {
        stop_requested = true;
        ac_tracker_wake();
    }
    ac_tracker_unlock(&saved);
    /* A thread started here finishes its start-up first, as in ac_timer_start_slow. One asked to
     * stop must be gone before the filter is installed: it finishes the piece of work it is in,
     * then sees the request. */
    for (int i = 0; made && i < 100000 && !__atomic_load_n(&timer_up, __ATOMIC_ACQUIRE); i++)
        sched_yield();
    for (int i = 0;
         stop && was_running && i < 100000 && !__atomic_load_n(&timer_gone, __ATOMIC_ACQUIRE); i++)
        sched_yield();
    errno = saved_errno;
    return was_running;
}

void ac_timer_lockdown_undone(void)
{
    sigset_t saved;
    ac_tracker_lock(&saved);
    no_more_threads = false;
    if (stop_requested && __atomic_load_n(&timer_gone, __ATOMIC_ACQUIRE)) {
        /* The thread ended for a filter that never came: a new one starts below. */
        stop_requested = false;
        timer_gone = 0;
        started = false;
        __atomic_store_n(&ac_timer_running_hint, false, __ATOMIC_RELAXED);
        ac_tracker_unlock(&saved);
        ac_timer_start_slow();
        return;
    }
    ac_tracker_unlock(&saved);
}

void ac_timer_deadline(uint64_t deadline_ms, bool locked)
{
    if (deadline_ms >= __atomic_load_n(&sleeps_until, __ATOMIC_SEQ_CST))
        return; /* it looks again by then anyway (or is awake: 0 is below every deadline) */
    /* Locked down: the program's threads make no system call for the library, not even to wake
     * it; it looks every half grace instead (locked_down_look). */
    if (!locked && ac_timer_locked_down())
        return;
    sigset_t saved;
    if (!locked)
        ac_tracker_lock(&saved);
    ac_tracker_wake();
    if (!locked)
        ac_tracker_unlock(&saved);
}

void ac_timer_epoll_fins(unsigned fins)
{
    if (__atomic_fetch_add(&epoll_fins, fins, __ATOMIC_RELAXED) != 0)
        return; /* a sweep is already planned */
    if (ac_timer_locked_down())
        return; /* no lock on the program's thread: the periodic sweep finds them */
    sigset_t saved;
    ac_tracker_lock(&saved);
    if (epoll_sweep_at == UINT64_MAX) {
        notes_at_epoll_fin = __atomic_load_n(&ac_notes_taken, __ATOMIC_RELAXED);
        /* Half a grace: enough for a program that reads its EOFs to have read them. */
        epoll_sweep_at = ac_now_ms() + ac_cfg.grace_ms / 2;
        if (epoll_sweep_at < __atomic_load_n(&sleeps_until, __ATOMIC_RELAXED))
            ac_tracker_wake();
    }
    ac_tracker_unlock(&saved);
}

void ac_timer_wake(void)
{
    ac_tracker_wake();
}

/* True when the first fork in the process is this library's: no other library wraps fork
 * around ours (a sanitizer runtime preloaded first does, and holds its own locks until its
 * wrapper returns), so the child may start a thread as ours returns. */
static bool fork_is_outermost(void)
{
    static int outermost = -1;
    if (outermost < 0) {
        Dl_info first, here;
        void *fork_first = dlsym(RTLD_DEFAULT, "fork");
        outermost = fork_first != NULL && dladdr(fork_first, &first) &&
                    dladdr((void *)fork_is_outermost, &here) && first.dli_fbase == here.dli_fbase;
    }
    return outermost;
}

/* In the child, from the fork handler: the parent's timer does not exist here. */
void ac_timer_atfork_child(void)
{
    started = false;
    timer_thread_set = false;
    sleeps_until = UINT64_MAX;
    epoll_sweep_at = UINT64_MAX;
    epoll_fins = 0;
    __atomic_store_n(&ac_timer_running_hint, false, __ATOMIC_RELAXED);
}

/* In the child, as fork returns: every fork handler has run. A child that inherited notes or
 * pending connections may never call the library again, so its timer starts now, unless
 * another library's fork wrapper is still to return (ThreadSanitizer's): then at its first
 * accept or connect. */
void ac_timer_after_fork(void)
{
    /* Only in a child that holds a TCP connection: one its parent accepted or connected (a
     * fork-per-connection worker, which may meet its FIN and keep it, never calling accept or
     * connect itself), or a half-closed one noted or waiting out its grace. Any other child (a
     * worker that sandboxes itself with unshare, which needs a single-threaded process; a fork
     * that execs or exits at once; the children of a server that only holds its listener)
     * starts none here, only at its own first TCP accept or connect. */
    bool inherited =
        ac_tracker_pending() > 0 || ac_notes_outstanding() || ac_born_connection_held();
    if (inherited && fork_is_outermost())
        ac_timer_start_slow();
}
