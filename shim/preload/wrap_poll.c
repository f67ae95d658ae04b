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

#if AC_HAVE_CHK
int __poll_chk(struct pollfd *fds, nfds_t nfds, int timeout, size_t fdslen);
int __ppoll_chk(struct pollfd *fds, nfds_t nfds, const struct timespec *timeout, const sigset_t *ss,
                size_t fdslen);
#endif

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

/* Notes the entries that reported a FIN, with the place the program called poll from; out of
 * line, since it is rare. */
static __attribute__((noinline, cold)) void found(struct pollfd *fds, nfds_t nfds, uintptr_t site)
{
    for (nfds_t i = 0; i < nfds; i++) {
        if (fds[i].revents & POLLRDHUP) {
            fds[i].revents &= (short)~POLLRDHUP;
            if (ac_fd_unknown(fds[i].fd))
                ac_on_eof(fds[i].fd, AC_FOUND_READY, site);
        }
    }
}

static inline void disarm(struct pollfd *fds, nfds_t nfds, int ready, uintptr_t site)
{
    unsigned got = 0;
    for (nfds_t i = 0; i < nfds; i++) {
        fds[i].events &= (short)~POLLRDHUP;
        got |= (unsigned short)fds[i].revents;
    }
    if (ready > 0 && AC_UNLIKELY(got & POLLRDHUP))
        found(fds, nfds, site);
}

#define ASKED_OF_CLOSE_WAIT (POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM | POLLRDHUP)
#define HIDDEN_MARK         0x4000 /* in the events of an entry hidden here; no poll event */

/* Hides reclaimed entries that asked for nothing a half-closed socket reports; returns true when
 * any entry is reclaimed (and so unhide must run). */
static __attribute__((noinline, cold)) bool hide(struct pollfd *fds, nfds_t nfds)
{
    bool any = false;
    for (nfds_t i = 0; i < nfds; i++) {
        int fd = fds[i].fd;
        if ((unsigned)fd >= AC_FDTAB_SIZE ||
            __atomic_load_n(&ac_fdtab[fd], __ATOMIC_RELAXED) != AC_FD_RECLAIMED)
            continue;
        any = true;
        if (!(fds[i].events & ASKED_OF_CLOSE_WAIT)) {
            fds[i].fd = ~fd; /* negative: the kernel skips it and reports nothing */
            fds[i].events |= HIDDEN_MARK;
        }
    }
    return any;
}

static __attribute__((noinline, cold)) void unhide(struct pollfd *fds, nfds_t nfds)
{
    for (nfds_t i = 0; i < nfds; i++) {
        if (fds[i].fd < 0 && (fds[i].events & HIDDEN_MARK)) {
            fds[i].fd = ~fds[i].fd;
            fds[i].events &= (short)~HIDDEN_MARK;
            fds[i].revents = 0;
        } else if ((unsigned)fds[i].fd < AC_FDTAB_SIZE &&
                   __atomic_load_n(&ac_fdtab[fds[i].fd], __ATOMIC_RELAXED) == AC_FD_RECLAIMED) {
            fds[i].revents &= (short)~(POLLHUP | POLLERR);
        }
    }
}

#if AC_GLIBC
#define POLL_ON_CANCEL(fn, arg) AC_ON_CANCEL(fn, arg)
#else
/* musl keeps a cancellation handler in a list of the thread's, which a signal handler's siglongjmp
 * out of poll would leave pointing into a dead frame: the thread's later exit called it and
 * crashed. So an array of up to COPY_MAX entries is polled as a copy (poll_copied), where nothing
 * of the program's is borrowed and no handler is needed; only a larger one is borrowed so. */
#define COPY_MAX 64
static __thread bool poll_on_copy;
struct poll_guard {
    struct __ptcb cb;
    bool pushed;
};
static inline void poll_guard_pop(struct poll_guard *g)
{
    if (g->pushed)
        _pthread_cleanup_pop(&g->cb, 0);
}
#define POLL_ON_CANCEL(fn, arg)                                                                    \
    struct poll_guard poll_guard_##fn                                                              \
        __attribute__((cleanup(poll_guard_pop))) = {.pushed = !poll_on_copy};                      \
    if (poll_guard_##fn.pushed)                                                                    \
    _pthread_cleanup_push(&poll_guard_##fn.cb, (fn), (arg))
#endif

/* What a wrapper borrowed of the program's array (POLLRDHUP added, entries hidden), given back
 * however the call ends: poll and ppoll are cancellation points, and a cancelled call must not
 * leave the program's array changed. The normal path gives it back itself (disarm, unhide) and
 * clears the flags first, so this costs two tests there. */
struct poll_loan {
    struct pollfd *fds;
    nfds_t nfds;
    bool armed, hidden;
    uintptr_t site; /* where the program called poll from */
};
static inline void poll_loan_end(struct poll_loan *l)
{
    if (AC_UNLIKELY(l->armed))
        for (nfds_t i = 0; i < l->nfds; i++)
            l->fds[i].events &= (short)~POLLRDHUP;
    if (AC_UNLIKELY(l->hidden))
        unhide(l->fds, l->nfds);
}
static inline __attribute__((unused)) void poll_loan_cancelled(void *l)
{
    poll_loan_end(l);
}
#define POLL_LOAN(fds, nfds, site)                                                                 \
    struct poll_loan loan                                                                          \
        __attribute__((cleanup(poll_loan_end))) = {(fds), (nfds), false, false, (site)};           \
    POLL_ON_CANCEL(poll_loan_cancelled, &loan)

/* The normal way back: the flags hidden again, FINs noted, hidden entries shown again. */
static inline void poll_return(struct poll_loan *l, int r)
{
    if (l->armed) {
        l->armed = false;
        disarm(l->fds, l->nfds, r, l->site);
    }
    if (l->hidden) {
        l->hidden = false;
        unhide(l->fds, l->nfds);
    }
}

static inline bool reclaimed_held(void)
{
    return AC_UNLIKELY(__atomic_load_n(&ac_reclaimed_held, __ATOMIC_RELAXED) != 0);
}

/* glibc declares poll's array write-only (__attr_access), although its `events` are what the
 * caller asks for; GCC then takes our reading them for a read of uninitialized memory. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

static inline void give_back_one(struct pollfd **armed)
{
    if (AC_UNLIKELY(*armed != NULL))
        (*armed)->events &= (short)~POLLRDHUP;
}
static inline __attribute__((unused)) void give_back_one_cancelled(void *armed)
{
    give_back_one(armed);
}

/* The common single-descriptor wait, without the loops: the array is one entry. Kept out of
 * line, like poll_many, so that poll itself is a branch and a jump (the site comes second, so
 * that poll's timeout stays where it is). */
static __attribute__((noinline)) int poll_one(struct pollfd *p, uintptr_t site, int timeout)
{
    AC_KEEP(uintptr_t, kept_site, site);
    short asked = p->events;
    if ((asked & (POLLIN | POLLRDHUP)) != POLLIN ||
        AC_UNLIKELY(!__atomic_load_n(&ac_active, __ATOMIC_RELAXED)))
        return AC_REAL(poll)(p, 1, timeout);
    p->events = (short)(asked | POLLRDHUP);
    /* Given back however the call ends (a cancellation unwinds through here). */
    struct pollfd *armed __attribute__((cleanup(give_back_one))) = p;
    POLL_ON_CANCEL(give_back_one_cancelled, &armed);
    int r = AC_REAL(poll)(p, 1, timeout);
    armed = NULL;
    p->events = asked;
    if (r > 0 && AC_UNLIKELY(p->revents & POLLRDHUP))
        found(p, 1, kept_site);
    return r;
}

static __attribute__((noinline)) int poll_many(struct pollfd *fds, nfds_t nfds, int timeout,
                                               uintptr_t site)
{
    POLL_LOAN(fds, nfds, site);
    loan.armed = arm(fds, nfds);
    int r = AC_REAL(poll)(fds, nfds, timeout);
    poll_return(&loan, r);
    return r;
}

/* The whole wrapper, for a process that holds reclaimed numbers (and a forked child whose timer
 * has yet to start). The count poll returns stays right: a hidden entry reports nothing, and a
 * stripped one still reports what it asked for. */
static __attribute__((noinline, cold)) int poll_reclaimed(struct pollfd *fds, nfds_t nfds,
                                                          int timeout, uintptr_t site)
{
    POLL_LOAN(fds, nfds, site);
    loan.hidden = hide(fds, nfds);
    int r = poll_many(fds, nfds, timeout, site);
    poll_return(&loan, r);
    return r;
}

static inline int poll_body(struct pollfd *fds, nfds_t nfds, int timeout, uintptr_t site)
{
    if (reclaimed_held())
        return poll_reclaimed(fds, nfds, timeout, site);
    return nfds == 1 ? poll_one(fds, site, timeout) : poll_many(fds, nfds, timeout, site);
}

static int ppoll_body(struct pollfd *fds, nfds_t nfds, const struct timespec *timeout,
                      const sigset_t *sigmask, uintptr_t site);

#if !AC_GLIBC
/* The program's array polled as a copy, only the results written back (revents: what the kernel
 * writes); -1 for ppoll's timeout means poll's. */
static __attribute__((noinline)) int poll_copied(struct pollfd *fds, nfds_t nfds, int timeout,
                                                 const struct timespec *ts, const sigset_t *mask,
                                                 bool is_ppoll, uintptr_t site)
{
    struct pollfd copy[COPY_MAX];
    memcpy(copy, fds, nfds * sizeof *fds);
    poll_on_copy = true;
    int r =
        is_ppoll ? ppoll_body(copy, nfds, ts, mask, site) : poll_body(copy, nfds, timeout, site);
    poll_on_copy = false;
    for (nfds_t i = 0; i < nfds; i++)
        fds[i].revents = copy[i].revents;
    return r;
}
#endif

AC_EXPORT int poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
#if !AC_GLIBC
    if (nfds - 1 < COPY_MAX)
        return poll_copied(fds, nfds, timeout, NULL, NULL, false, AC_CALLER());
    poll_on_copy = false; /* a siglongjmp may have left it set */
#endif
    return poll_body(fds, nfds, timeout, AC_CALLER());
}
#pragma GCC diagnostic pop

#if AC_HAVE_CHK
AC_EXPORT int __poll_chk(struct pollfd *fds, nfds_t nfds, int timeout, size_t fdslen)
{
    bool fits = nfds <= fdslen / sizeof *fds; /* else the real one aborts */
    POLL_LOAN(fds, nfds, AC_CALLER());
    loan.hidden = fits && reclaimed_held() && hide(fds, nfds);
    loan.armed = fits && arm(fds, nfds);
    int r = AC_REAL(poll_chk)(fds, nfds, timeout, fdslen);
    poll_return(&loan, r);
    return r;
}
#endif

AC_EXPORT int ppoll(struct pollfd *fds, nfds_t nfds, const struct timespec *timeout,
                    const sigset_t *sigmask)
{
#if !AC_GLIBC
    if (nfds - 1 < COPY_MAX)
        return poll_copied(fds, nfds, 0, timeout, sigmask, true, AC_CALLER());
    poll_on_copy = false;
#endif
    return ppoll_body(fds, nfds, timeout, sigmask, AC_CALLER());
}

static int ppoll_body(struct pollfd *fds, nfds_t nfds, const struct timespec *timeout,
                      const sigset_t *sigmask, uintptr_t site)
{
    POLL_LOAN(fds, nfds, site);
    loan.hidden = reclaimed_held() && hide(fds, nfds);
    loan.armed = arm(fds, nfds);
    int r = AC_REAL(ppoll)(fds, nfds, timeout, sigmask);
    poll_return(&loan, r);
    return r;
}

#if AC_HAVE_CHK
AC_EXPORT int __ppoll_chk(struct pollfd *fds, nfds_t nfds, const struct timespec *timeout,
                          const sigset_t *sigmask, size_t fdslen)
{
    bool fits = nfds <= fdslen / sizeof *fds;
    POLL_LOAN(fds, nfds, AC_CALLER());
    loan.hidden = fits && reclaimed_held() && hide(fds, nfds);
    loan.armed = fits && arm(fds, nfds);
    int r = AC_REAL(ppoll_chk)(fds, nfds, timeout, sigmask, fdslen);
    poll_return(&loan, r);
    return r;
}
#endif
