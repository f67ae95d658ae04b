/*
 * The background timer: one thread, started the first time a connection becomes pending, that
 * acts on each connection when its grace runs out, even if the application never calls into
 * the library again (its threads blocked elsewhere, or gone).
 *
 * It sleeps on a condition variable until the earliest deadline, and with nothing pending it
 * sleeps without a timeout: an idle process is never woken by the shim. It runs with every
 * signal blocked, so the application's signals keep going to the application's threads.
 */
#include "autoclose.h"

#include <pthread.h>
#include <unistd.h>

#define BATCH 64 /* connections handled per hold of the lock: a storm must not starve closes */

static bool started;

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

static void *timer_main(void *unused)
{
    (void)unused;
    static struct outcome out[BATCH]; /* one timer thread per process */
    sigset_t saved;
    ac_tracker_lock(&saved);
    for (;;) {
        uint64_t next = 0;
        int n = act_on_due(out, &next);
        if (n == 0) {
            ac_tracker_wait(next);
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
    if (started) {
        ac_tracker_wake();
        return;
    }
    pthread_attr_t attr;
    pthread_t thread;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024); /* it only formats short lines */
    /* The caller holds the tracker lock, so every signal is blocked here and the new thread
     * inherits that mask. */
    started = pthread_create(&thread, &attr, timer_main, NULL) == 0;
    pthread_attr_destroy(&attr);
    if (started)
        pthread_setname_np(thread, "autoclose");
    else
        ac_log(AC_LOG_ERROR, "cannot start the timer thread; half-closed connections stay");
}

/* The child of a fork has no timer thread. If it inherited pending connections it gets one
 * now; otherwise the first pending connection of its own starts it. */
void ac_timer_atfork_child(void)
{
    started = false;
    if (ac_tracker_pending() > 0) {
        sigset_t saved;
        ac_tracker_lock(&saved);
        ac_timer_kick();
        ac_tracker_unlock(&saved);
    }
}
