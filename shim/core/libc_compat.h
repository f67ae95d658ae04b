/*
 * What differs between the two C libraries the library is built for: glibc (build/) and musl
 * (build/musl/, musl-gcc). Every difference the sources see is here, so that the files that use
 * one read the same for both.
 */
#ifndef AUTOCLOSE_LIBC_COMPAT_H
#define AUTOCLOSE_LIBC_COMPAT_H

#include <pthread.h>
#include <signal.h>
#include <string.h>

/* glibc names itself in <features.h>; musl deliberately defines no macro of its own. */
#ifdef __GLIBC__
#define AC_GLIBC 1
#else
#define AC_GLIBC 0
#endif

#if AC_GLIBC

/* glibc's fortified entry points (__read_chk, __poll_chk...): a program built with
 * _FORTIFY_SOURCE calls them instead of read, poll... musl has none. */
#define AC_HAVE_CHK 1
/* closefrom, close_range, fcntl64 and epoll_pwait2 are exported as libc has them. */
#define AC_EXPORT_AS_LIBC AC_EXPORT
/* The socket address parameters as glibc declares them under _GNU_SOURCE: transparent unions. */
#define AC_SOCKADDR_ARG       __SOCKADDR_ARG
#define AC_CONST_SOCKADDR_ARG __CONST_SOCKADDR_ARG
#define AC_SOCKADDR(arg)      ((arg).__sockaddr__)
/* ioctl's request, and the flags of sendmmsg and recvmmsg, as each libc declares them. */
typedef unsigned long ac_ioctl_request;
typedef int ac_mmsg_flags;
/* pthread_cancel unwinds the stack (the library is built with -fexceptions), running every
 * cleanup attribute on the way: nothing more to do. */
#define AC_ON_CANCEL(fn, arg) ((void)0)

#else /* musl */

#define AC_HAVE_CHK           0
#define AC_SOCKADDR_ARG       struct sockaddr *restrict
#define AC_CONST_SOCKADDR_ARG const struct sockaddr *
#define AC_SOCKADDR(arg)      (arg)
typedef int ac_ioctl_request;
typedef unsigned ac_mmsg_flags;

/* This musl (1.2.3) has none of these: the wrappers are built but not exported, so that a program
 * that looks for one at run time (a weak symbol, dlsym) finds none, as without the library, and
 * uses its own fallback (a closefrom that did nothing left descriptors open for its children).
 * musl declares none, so they are declared here. */
#define AC_EXPORT_AS_LIBC
struct epoll_event;
struct timespec;
int fcntl64(int fd, int cmd, ...);
int close_range(unsigned first, unsigned last, int flags);
void closefrom(int lowfd);
int epoll_pwait2(int epfd, struct epoll_event *events, int maxevents,
                 const struct timespec *timeout, const sigset_t *sigmask);

/* The description of an errno value, never translated and never allocated: musl's strerror is
 * a table lookup (glibc's may load a catalogue, hence strerrordesc_np there). */
static inline const char *strerrordesc_np(int err)
{
    return strerror(err);
}

/* musl's pthread_cancel does not unwind: the thread runs the handlers pushed with
 * pthread_cleanup_push and exits, and no cleanup attribute runs. So a wrapper's cleanup is also
 * pushed there for the rest of the block, and popped (not run) when the block is left normally,
 * where the cleanup attribute does the work: a call into musl each way, a few stores into the
 * thread's own list (23 instructions in all, make bench). */
struct ac_cancel_guard {
    struct __ptcb cb;
};
static inline void ac_cancel_guard_pop(struct ac_cancel_guard *g)
{
    _pthread_cleanup_pop(&g->cb, 0);
}
#define AC_ON_CANCEL(fn, arg)                                                                      \
    struct ac_cancel_guard ac_guard_##fn __attribute__((cleanup(ac_cancel_guard_pop)));            \
    _pthread_cleanup_push(&ac_guard_##fn.cb, (fn), (arg))

#endif

#endif
