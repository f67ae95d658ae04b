/*
 * select and pselect. An fd_set has no way to ask for the peer's FIN, and testing each ready
 * descriptor afterwards would cost a system call on every wake-up. So the wait itself is made
 * with ppoll, which can ask for POLLRDHUP, and the answer is translated back into fd_sets
 * exactly as the kernel's own select does it (fs/select.c):
 *
 *   readable   POLLIN, POLLHUP or POLLERR on a descriptor in readfds
 *   writable   POLLOUT or POLLERR on a descriptor in writefds
 *   exception  POLLPRI on a descriptor in exceptfds
 *   a closed descriptor in any set: -1 with EBADF, sets untouched
 *   select (not pselect) writes the time left back into its timeout, as Linux does
 *
 * A call with no descriptor (a sleep), an out-of-range nfds or an invalid timeout goes to the
 * real function untouched, so its errors are the real ones.
 */
#include "autoclose.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>

#define IN_SET  (POLLIN | POLLRDNORM | POLLRDBAND | POLLHUP | POLLERR)
#define OUT_SET (POLLOUT | POLLWRNORM | POLLWRBAND | POLLERR)
#define EX_SET  (POLLPRI)

struct wait {
    struct pollfd fds[FD_SETSIZE];
    nfds_t count;
};

static bool in(const fd_set *set, int fd)
{
    return set != NULL && FD_ISSET(fd, set);
}

#define BITS_PER_WORD (8 * (int)sizeof(__fd_mask))

static __fd_mask word(const fd_set *set, int i)
{
    return set ? __FDS_BITS(set)[i] : 0;
}

/* Fills `w` from the sets; false when no descriptor is set. Whole empty words are skipped, as
 * the kernel does. */
static bool gather(struct wait *w, int nfds, const fd_set *r, const fd_set *wr, const fd_set *e)
{
    w->count = 0;
    for (int fd = 0; fd < nfds; fd++) {
        if (fd % BITS_PER_WORD == 0 && (word(r, fd / BITS_PER_WORD) | word(wr, fd / BITS_PER_WORD) |
                                        word(e, fd / BITS_PER_WORD)) == 0) {
            fd += BITS_PER_WORD - 1;
            continue;
        }
        short events = 0;
        if (in(r, fd))
            events |= POLLIN | POLLRDHUP;
        if (in(wr, fd))
            events |= POLLOUT;
        if (in(e, fd))
            events |= POLLPRI;
        if (events)
            w->fds[w->count++] = (struct pollfd){.fd = fd, .events = events};
    }
    return w->count > 0;
}

/* Writes the outcome into the sets; returns select's count, or -1 (EBADF). */
static int scatter(struct wait *w, fd_set *r, fd_set *wr, fd_set *e)
{
    for (nfds_t i = 0; i < w->count; i++) {
        if (w->fds[i].revents & POLLNVAL) {
            errno = EBADF;
            return -1;
        }
    }
    int ready = 0;
    for (nfds_t i = 0; i < w->count; i++) {
        const struct pollfd *p = &w->fds[i];
        bool want_r = p->events & POLLIN, want_w = p->events & POLLOUT;
        bool want_e = p->events & POLLPRI;
        if (p->revents & POLLRDHUP && ac_fd_unjudged(p->fd))
            ac_on_eof(p->fd, AC_FOUND_READY);
        if (want_r && !(p->revents & IN_SET))
            FD_CLR(p->fd, r);
        if (want_w && !(p->revents & OUT_SET))
            FD_CLR(p->fd, wr);
        if (want_e && !(p->revents & EX_SET))
            FD_CLR(p->fd, e);
        ready += (want_r && (p->revents & IN_SET)) + (want_w && (p->revents & OUT_SET)) +
                 (want_e && (p->revents & EX_SET));
    }
    return ready;
}

static bool valid_timeval(const struct timeval *tv)
{
    return tv == NULL || (tv->tv_sec >= 0 && tv->tv_usec >= 0);
}

static bool valid_timespec(const struct timespec *ts)
{
    return ts == NULL || (ts->tv_sec >= 0 && ts->tv_nsec >= 0 && ts->tv_nsec < 1000000000L);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The fd_set-sized array of pollfds lives on the caller's stack: 8 KiB, no allocation. */
AC_EXPORT int select(int nfds, fd_set *readfds, fd_set *writefds, fd_set *exceptfds,
                     struct timeval *timeout)
{
    struct wait w;
    if (!__atomic_load_n(&ac_active, __ATOMIC_RELAXED) || nfds <= 0 || nfds > FD_SETSIZE ||
        !valid_timeval(timeout) || !gather(&w, nfds, readfds, writefds, exceptfds))
        return AC_REAL(select)(nfds, readfds, writefds, exceptfds, timeout);

    struct timespec ts, *tsp = NULL;
    int64_t budget = 0, start = 0;
    if (timeout != NULL) {
        /* Linux folds whole seconds out of tv_usec rather than refusing it. */
        budget = (int64_t)timeout->tv_sec * 1000000000 + (int64_t)timeout->tv_usec * 1000;
        ts.tv_sec = (time_t)(budget / 1000000000);
        ts.tv_nsec = (long)(budget % 1000000000);
        tsp = &ts;
        start = now_ns();
    }
    int r = AC_REAL(ppoll)(w.fds, w.count, tsp, NULL);
    int saved_errno = errno;
    if (timeout != NULL) {
        int64_t left = budget - (now_ns() - start);
        if (left < 0)
            left = 0;
        timeout->tv_sec = (time_t)(left / 1000000000);
        timeout->tv_usec = (suseconds_t)(left % 1000000000 / 1000);
    }
    errno = saved_errno;
    return r < 0 ? r : scatter(&w, readfds, writefds, exceptfds);
}

AC_EXPORT int pselect(int nfds, fd_set *readfds, fd_set *writefds, fd_set *exceptfds,
                      const struct timespec *timeout, const sigset_t *sigmask)
{
    struct wait w;
    if (!__atomic_load_n(&ac_active, __ATOMIC_RELAXED) || nfds <= 0 || nfds > FD_SETSIZE ||
        !valid_timespec(timeout) || !gather(&w, nfds, readfds, writefds, exceptfds))
        return AC_REAL(pselect)(nfds, readfds, writefds, exceptfds, timeout, sigmask);
    int r = AC_REAL(ppoll)(w.fds, w.count, timeout, sigmask);
    return r < 0 ? r : scatter(&w, readfds, writefds, exceptfds);
}
