/*
 * The background timer: one thread that acts on each connection when its grace runs out, even
 * if the application never calls into the library again (its threads blocked elsewhere, or
 * gone), and runs the sweep every AUTOCLOSE_SWEEP_MS.
 *
 * It starts the first time a connection becomes pending, or, with the sweep on, when the
 * process first accepts or connects a TCP socket (or starts with one on fds 0-2). A process
 * with no TCP connection never has one. It sleeps on a condition variable until the earliest
 * deadline or sweep; with nothing pending and the sweep off it sleeps without a timeout. It runs
 * with every signal blocked, so the application's signals keep going to the application's
 * threads.
 *
 * In shutdown mode, in a process that has not forked, it gives itself a descriptor table of its
 * own (reach.c), so the application's system calls never pay for a shared one. A release (close
 * mode, or a socket shared since a fork) must change the application's table, so a forked
 * process's timer shares it: at the first fork the parent's timer with a table of its own
 * retires and one that shares takes over, after it has finished whatever it was doing.
 */
#include "autoclose.h"

#include <pthread.h>
#include <sys/prctl.h>
#include <unistd.h>

#define BATCH 64 /* connections handled per hold of the lock: a storm must not starve closes */

static bool started;
bool ac_timer_running_hint; /* `started`, readable without the lock */
static unsigned generation; /* of the current timer: an older one retires */
static unsigned timers_alive;
static bool current_owns_table; /* the current timer was started to have a table of its own */
static bool sweep_asked;
static uint64_t next_sweep_ms;

struct outcome {
    enum ac_log_level level;
    int release_fd;
    char report[240];
};

/* Acts on up to BATCH due connections; returns how many, and the next deadline in *next. */
static int act_on_due(struct outcome *out, uint64_t *next)
{
    int n = 0;
    uint64_t now = ac_now_ms();
    struct ac_due due;
    while (n < BATCH && ac_tracker_take_due(now, &due, next)) {
        out[n].level = ac_act(&due, now, out[n].report, sizeof out[n].report, &out[n].release_fd);
        n++;
    }
    return n;
}

static void *timer_main(void *start)
{
    unsigned mine = (unsigned)((uintptr_t)start >> 1);
    bool own_table = (uintptr_t)start & 1;
    static struct outcome out[BATCH]; /* one timer at work per process */
    /* Named from inside: pthread_setname_np would open a file in the program's fd table. */
    prctl(PR_SET_NAME, "autoclose");
    if (own_table && !ac_reach_leave_shared_table())
        ac_log(AC_LOG_DEBUG, "the timer shares the descriptor table (no pidfd_getfd here)");
    sigset_t saved;
    ac_tracker_lock(&saved);
    timers_alive++;
    while (timers_alive > 1 && generation == mine)
        ac_tracker_wait(UINT64_MAX); /* the one this replaces is finishing a sweep */
    for (;;) {
        if (generation != mine) {
            if (ac_reach_own_table_here())
                ac_reach_forget();
            timers_alive--;
            ac_tracker_wake();
            ac_tracker_unlock(&saved);
            return NULL; /* its own table, if it had one, goes with it */
        }
        uint64_t next = 0;
        int n = act_on_due(out, &next);
        if (n == 0 && (sweep_asked || ac_cfg.sweep_ms > 0)) {
            uint64_t now = ac_now_ms();
            if (sweep_asked || now >= next_sweep_ms) {
                sweep_asked = false;
                next_sweep_ms = ac_cfg.sweep_ms > 0 ? now + ac_cfg.sweep_ms : UINT64_MAX;
                ac_tracker_unlock(&saved);
                ac_sweep_run();
                ac_tracker_lock(&saved);
                continue;
            }
            if (next_sweep_ms < next)
                next = next_sweep_ms;
        }
        if (n == 0) {
            uint64_t stats_next;
            if (ac_stats_due(ac_now_ms(), &stats_next)) {
                size_t pending = ac_tracker_pending();
                ac_tracker_unlock(&saved);
                ac_stats_write(pending);
                ac_tracker_lock(&saved);
                continue;
            }
            ac_tracker_wait(stats_next < next ? stats_next : next);
            continue;
        }
        /* Closing and logging happen without the lock: neither may hold up the application. */
        ac_tracker_unlock(&saved);
        for (int i = 0; i < n; i++) {
            if (out[i].release_fd >= 0)
                AC_REAL(close)(out[i].release_fd);
            ac_log(out[i].level, out[i].report);
        }
        ac_tracker_lock(&saved);
    }
    return NULL;
}

void ac_timer_kick(void)
{
    if (started && current_owns_table && ac_reach_lost()) {
        started = false; /* it cannot reach the descriptors any more (reach.c): replace it */
        ac_tracker_wake();
        ac_log(AC_LOG_INFO, "the main thread has exited: the timer now shares the descriptor "
                            "table of the threads that remain");
    }
    if (started) {
        ac_tracker_wake();
        return;
    }
    pthread_attr_t attr;
    pthread_t thread;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024); /* it only formats short lines */
    bool own_table = ac_cfg.mode == AC_MODE_SHUTDOWN && ac_reach_may_leave_shared_table() &&
                     !ac_reach_lost() && __atomic_load_n(&ac_fork_epoch, __ATOMIC_RELAXED) == 0;
    generation++;
    uintptr_t start = (uintptr_t)generation << 1 | own_table;
    /* The caller holds the tracker lock, so every signal is blocked here and the new thread
     * inherits that mask. */
    ac_real_before_own_thread();
    started = ac_own_pthread_create(&thread, &attr, timer_main, (void *)start) == 0;
    current_owns_table = started && own_table;
    pthread_attr_destroy(&attr);
    /* After a failure too: the wrappers should not try again on every accept. */
    __atomic_store_n(&ac_timer_running_hint, true, __ATOMIC_RELAXED);
    if (!started)
        ac_log(AC_LOG_ERROR, "cannot start the timer thread; half-closed connections stay");
}

void ac_timer_ensure_running(void)
{
    if (__atomic_load_n(&ac_timer_running_hint, __ATOMIC_RELAXED))
        return;
    sigset_t saved;
    ac_tracker_lock(&saved);
    if (!started || (current_owns_table && ac_reach_lost()))
        ac_timer_kick();
    ac_tracker_unlock(&saved);
}

void ac_timer_sweep_soon(void)
{
    sweep_asked = true;
    ac_timer_kick();
}

/* The child of a fork has no timer thread. It gets one now if it inherited pending connections,
 * or connections for the sweep to watch (the parent's timer was running); otherwise its own
 * first connection starts one. */
void ac_timer_atfork_parent(void)
{
    sigset_t saved;
    ac_tracker_lock(&saved);
    if (started && current_owns_table) {
        started = false;
        ac_tracker_wake(); /* the one with its own table sees a newer generation and retires */
        ac_timer_kick();
    }
    ac_tracker_unlock(&saved);
}

void ac_timer_atfork_child(void)
{
    bool parent_had_one = started;
    started = false;
    timers_alive = 0;
    current_owns_table = false;
    ac_reach_atfork_child();
    __atomic_store_n(&ac_timer_running_hint, false, __ATOMIC_RELAXED);
    ac_sweep_atfork_child();
    if (ac_tracker_pending() > 0 || (parent_had_one && ac_cfg.sweep_ms > 0)) {
        sigset_t saved;
        ac_tracker_lock(&saved);
        ac_timer_kick();
        ac_tracker_unlock(&saved);
    }
}
