/*
 * epoll. Registrations that wait for input get EPOLLRDHUP added (epoll_ctl), and epoll_wait
 * strips it again from what it returns. The event carries the application's data, not the
 * descriptor number, so the FIN is handed to the sweep (even with the periodic sweep off), which
 * finds the connections in CLOSE_WAIT by asking the kernel: half a grace later, and only if the
 * program has not read as many EOFs meanwhile (a server that reads and closes its connections
 * costs no sweep at all, timer.c).
 *
 * An application that registers EPOLLRDHUP itself is watching for FINs its own way: from then on
 * nothing is added or stripped. (A registration armed before it did so keeps delivering
 * EPOLLRDHUP, which such an application understands.)
 *
 * A reclaimed number lost its registrations with its socket: reclaimed.c answers epoll_ctl for it.
 */
#include "autoclose.h"

#include <signal.h>
#include <sys/epoll.h>

static bool app_uses_rdhup;
static bool strip_wanted; /* armed something, and the application does not use EPOLLRDHUP */

/* The real call, but for a reclaimed number: reclaimed.c answers for its registrations. */
static inline int ctl(int epfd, int op, int fd, struct epoll_event *passed,
                      struct epoll_event *event)
{
    if (AC_UNLIKELY(ac_fd_maybe_reclaimed(fd)))
        return ac_reclaimed_epoll_ctl(epfd, op, fd, passed, event);
    return AC_REAL(epoll_ctl)(epfd, op, fd, passed);
}

AC_EXPORT int epoll_ctl(int epfd, int op, int fd, struct epoll_event *event)
{
    if ((op == EPOLL_CTL_ADD || op == EPOLL_CTL_MOD) && event != NULL &&
        __atomic_load_n(&ac_active, __ATOMIC_RELAXED)) {
        if (event->events & EPOLLRDHUP) {
            __atomic_store_n(&app_uses_rdhup, true, __ATOMIC_RELAXED);
            __atomic_store_n(&strip_wanted, false, __ATOMIC_RELAXED);
        } else if ((event->events & (EPOLLIN | EPOLLEXCLUSIVE)) == EPOLLIN &&
                   !__atomic_load_n(&app_uses_rdhup, __ATOMIC_RELAXED)) {
            /* Not with EPOLLEXCLUSIVE: the kernel refuses EPOLLRDHUP beside it. */
            struct epoll_event armed = *event;
            armed.events |= EPOLLRDHUP;
            __atomic_store_n(&strip_wanted, true, __ATOMIC_RELAXED);
            return ctl(epfd, op, fd, &armed, event);
        }
    }
    return ctl(epfd, op, fd, event, event);
}

static __attribute__((noinline, cold)) void strip(struct epoll_event *events, int n)
{
    unsigned fins = 0;
    for (int i = 0; i < n; i++) {
        fins += (events[i].events & EPOLLRDHUP) != 0;
        events[i].events &= ~(uint32_t)EPOLLRDHUP;
    }
    ac_timer_epoll_fins(fins);
}

/* One OR over the returned events; the rare FIN goes out of line. */
static inline void look(struct epoll_event *events, int n)
{
    if (n <= 0 || !__atomic_load_n(&strip_wanted, __ATOMIC_RELAXED))
        return;
    uint32_t any = events[0].events; /* the common single event needs no loop */
    for (int i = 1; i < n; i++)
        any |= events[i].events;
    if (AC_UNLIKELY(any & EPOLLRDHUP))
        strip(events, n);
}

AC_EXPORT int epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout)
{
    int n = AC_REAL(epoll_wait)(epfd, events, maxevents, timeout);
    look(events, n);
    return n;
}

AC_EXPORT int epoll_pwait(int epfd, struct epoll_event *events, int maxevents, int timeout,
                          const sigset_t *sigmask)
{
    int n = AC_REAL(epoll_pwait)(epfd, events, maxevents, timeout, sigmask);
    look(events, n);
    return n;
}

AC_EXPORT_AS_LIBC int epoll_pwait2(int epfd, struct epoll_event *events, int maxevents,
                                   const struct timespec *timeout, const sigset_t *sigmask)
{
    int n = AC_REAL(epoll_pwait2)(epfd, events, maxevents, timeout, sigmask);
    look(events, n);
    return n;
}
