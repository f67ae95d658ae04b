/*
 * poll and ppoll (and their fortified forms): a server that waits for input and then asks
 * FIONREAD, sees nothing and drops the descriptor never reads the EOF, so the FIN must be
 * noticed here. The kernel is asked for POLLRDHUP on every entry waiting for input, and the
 * answer is hidden again before the application sees its array: the events it asked for and
 * the revents it gets are exactly what they would have been.
 *
 * A FIN always makes the socket readable too, so hiding POLLRDHUP never turns a ready entry
 * into an empty one, and poll's count stays right. An application that asks for POLLRDHUP
 * anywhere in its array is watching for FINs itself; its array is left untouched.
 */
#include "autoclose.h"

#include <poll.h>
#include <signal.h>
#include <time.h>

int __poll_chk(struct pollfd *fds, nfds_t nfds, int timeout, size_t fdslen);
int __ppoll_chk(struct pollfd *fds, nfds_t nfds, const struct timespec *timeout, const sigset_t *ss,
                size_t fdslen);

/* Returns true when it added POLLRDHUP somewhere (and so disarm must run). Branch-free per
 * entry: an OR to see what the application asked for, then one more pass to add the flag. */
static inline bool arm(struct pollfd *fds, nfds_t nfds)
{
    unsigned asked = 0;
    for (nfds_t i = 0; i < nfds; i++)
        asked |= (unsigned short)fds[i].events;
    if (!(asked & POLLIN) || AC_UNLIKELY(asked & POLLRDHUP) ||
        AC_UNLIKELY(!__atomic_load_n(&ac_active, __ATOMIC_RELAXED)))
        return false;
    for (nfds_t i = 0; i < nfds; i++) {
        unsigned e = (unsigned short)fds[i].events;
        fds[i].events = (short)(e | (e & POLLIN) * POLLRDHUP);
    }
    return true;
}

/* Judges the entries that reported a FIN; out of line, since it is rare. */
static __attribute__((noinline, cold)) void found(struct pollfd *fds, nfds_t nfds)
{
    for (nfds_t i = 0; i < nfds; i++) {
        if (fds[i].revents & POLLRDHUP) {
            fds[i].revents &= (short)~POLLRDHUP;
            if (ac_fd_unjudged(fds[i].fd))
                ac_on_eof(fds[i].fd, AC_FOUND_READY);
        }
    }
}

static inline void disarm(struct pollfd *fds, nfds_t nfds, int ready)
{
    unsigned got = 0;
    for (nfds_t i = 0; i < nfds; i++) {
        fds[i].events &= (short)~POLLRDHUP;
        got |= (unsigned short)fds[i].revents;
    }
    if (ready > 0 && AC_UNLIKELY(got & POLLRDHUP))
        found(fds, nfds);
}

/* glibc declares poll's array write-only (__attr_access), although its `events` are what the
 * caller asks for; GCC then takes our reading them for a read of uninitialized memory. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

/* The common single-descriptor wait, without the loops: the array is one entry. Kept out of
 * line, like poll_many, so that poll itself is a branch and a jump. */
static __attribute__((noinline)) int poll_one(struct pollfd *p, int timeout)
{
    short asked = p->events;
    if ((asked & (POLLIN | POLLRDHUP)) != POLLIN ||
        AC_UNLIKELY(!__atomic_load_n(&ac_active, __ATOMIC_RELAXED)))
        return AC_REAL(poll)(p, 1, timeout);
    p->events = (short)(asked | POLLRDHUP);
    int r = AC_REAL(poll)(p, 1, timeout);
    p->events = asked;
    if (r > 0 && AC_UNLIKELY(p->revents & POLLRDHUP))
        found(p, 1);
    return r;
}

static __attribute__((noinline)) int poll_many(struct pollfd *fds, nfds_t nfds, int timeout)
{
    bool armed = arm(fds, nfds);
    int r = AC_REAL(poll)(fds, nfds, timeout);
    if (armed)
        disarm(fds, nfds, r);
    return r;
}

AC_EXPORT int poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
    return nfds == 1 ? poll_one(fds, timeout) : poll_many(fds, nfds, timeout);
}
#pragma GCC diagnostic pop

AC_EXPORT int __poll_chk(struct pollfd *fds, nfds_t nfds, int timeout, size_t fdslen)
{
    bool armed = nfds <= fdslen / sizeof *fds && arm(fds, nfds); /* else the real one aborts */
    int r = AC_REAL(poll_chk)(fds, nfds, timeout, fdslen);
    if (armed)
        disarm(fds, nfds, r);
    return r;
}

AC_EXPORT int ppoll(struct pollfd *fds, nfds_t nfds, const struct timespec *timeout,
                    const sigset_t *sigmask)
{
    bool armed = arm(fds, nfds);
    int r = AC_REAL(ppoll)(fds, nfds, timeout, sigmask);
    if (armed)
        disarm(fds, nfds, r);
    return r;
}

AC_EXPORT int __ppoll_chk(struct pollfd *fds, nfds_t nfds, const struct timespec *timeout,
                          const sigset_t *sigmask, size_t fdslen)
{
    bool armed = nfds <= fdslen / sizeof *fds && arm(fds, nfds);
    int r = AC_REAL(ppoll_chk)(fds, nfds, timeout, sigmask, fdslen);
    if (armed)
        disarm(fds, nfds, r);
    return r;
}
