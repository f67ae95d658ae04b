/*
 * The real functions behind the wrappers: libc's, or the next preloaded library's, found once
 * with dlsym(RTLD_NEXT) and always called. The shim never makes a wrapped call's system call
 * itself, so cancellation points, timeouts passed by pointer, errno and the system calls a
 * seccomp filter sees are exactly libc's.
 *
 * Until ac_real_resolve has run (the constructor runs it; another library's constructor may call
 * a wrapper first), each entry is a stub that resolves the table and then calls the real entry.
 * If resolving calls back into a wrapper (an allocator that reads a file while dlsym allocates),
 * that inner call has no real function to go to yet: it fails with ENOSYS rather than recurse.
 */
#include "autoclose.h"

#include <dlfcn.h>
#include <poll.h>
#include <errno.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>

static __thread bool resolving;

/* Resolves the table, unless this thread is doing so already; false when the entry cannot be
 * called (it is NULL, or this is a call from inside the resolution). */
#define READY(field) (ac_real_resolve(), !resolving && ac_real.field != first_##field)

#define STUB(field, ret, fail, params, args)                                                       \
    static ret first_##field params;                                                               \
    static ret first_##field params                                                                \
    {                                                                                              \
        if (!READY(field)) {                                                                       \
            errno = ENOSYS;                                                                        \
            return fail;                                                                           \
        }                                                                                          \
        return ac_real.field args;                                                                 \
    }

STUB(read, ssize_t, -1, (int a, void *b, size_t c), (a, b, c))
STUB(readv, ssize_t, -1, (int a, const struct iovec *b, int c), (a, b, c))
STUB(recv, ssize_t, -1, (int a, void *b, size_t c, int d), (a, b, c, d))
STUB(recvfrom, ssize_t, -1, (int a, void *b, size_t c, int d, struct sockaddr *e, unsigned *f),
     (a, b, c, d, e, f))
STUB(recvmsg, ssize_t, -1, (int a, struct msghdr *b, int c), (a, b, c))
STUB(recvmmsg, int, -1, (int a, struct mmsghdr *b, unsigned c, ac_mmsg_flags d, struct timespec *e),
     (a, b, c, d, e))
STUB(read_chk, ssize_t, -1, (int a, void *b, size_t c, size_t d), (a, b, c, d))
STUB(recv_chk, ssize_t, -1, (int a, void *b, size_t c, size_t d, int e), (a, b, c, d, e))
STUB(recvfrom_chk, ssize_t, -1,
     (int a, void *b, size_t c, size_t d, int e, struct sockaddr *f, unsigned *g),
     (a, b, c, d, e, f, g))
STUB(sendmsg, ssize_t, -1, (int a, const struct msghdr *b, int c), (a, b, c))
STUB(sendmmsg, int, -1, (int a, struct mmsghdr *b, unsigned c, ac_mmsg_flags d), (a, b, c, d))
STUB(close, int, -1, (int a), (a))
STUB(dup, int, -1, (int a), (a))
STUB(dup2, int, -1, (int a, int b), (a, b))
STUB(dup3, int, -1, (int a, int b, int c), (a, b, c))
STUB(close_range, int, -1, (unsigned a, unsigned b, int c), (a, b, c))
STUB(fclose, int, EOF, (FILE * a), (a))
STUB(accept, int, -1, (int a, struct sockaddr *b, unsigned *c), (a, b, c))
STUB(accept4, int, -1, (int a, struct sockaddr *b, unsigned *c, int d), (a, b, c, d))
STUB(connect, int, -1, (int a, const struct sockaddr *b, unsigned c), (a, b, c))
STUB(bind, int, -1, (int a, const struct sockaddr *b, unsigned c), (a, b, c))
STUB(listen, int, -1, (int a, int b), (a, b))
STUB(poll, int, -1, (struct pollfd * a, unsigned long b, int c), (a, b, c))
STUB(poll_chk, int, -1, (struct pollfd * a, unsigned long b, int c, size_t d), (a, b, c, d))
STUB(ppoll, int, -1,
     (struct pollfd * a, unsigned long b, const struct timespec *c, const sigset_t *d),
     (a, b, c, d))
STUB(ppoll_chk, int, -1,
     (struct pollfd * a, unsigned long b, const struct timespec *c, const sigset_t *d, size_t e),
     (a, b, c, d, e))
STUB(epoll_ctl, int, -1, (int a, int b, int c, struct epoll_event *d), (a, b, c, d))
STUB(epoll_wait, int, -1, (int a, struct epoll_event *b, int c, int d), (a, b, c, d))
STUB(epoll_pwait, int, -1, (int a, struct epoll_event *b, int c, int d, const sigset_t *e),
     (a, b, c, d, e))
STUB(epoll_pwait2, int, -1,
     (int a, struct epoll_event *b, int c, const struct timespec *d, const sigset_t *e),
     (a, b, c, d, e))
STUB(getsockopt, int, -1, (int a, int b, int c, void *d, unsigned *e), (a, b, c, d, e))
STUB(setsockopt, int, -1, (int a, int b, int c, const void *d, unsigned e), (a, b, c, d, e))
STUB(getsockname, int, -1, (int a, struct sockaddr *b, unsigned *c), (a, b, c))
STUB(getpeername, int, -1, (int a, struct sockaddr *b, unsigned *c), (a, b, c))
STUB(fork, pid_t, -1, (void), ())
STUB(Fork, pid_t, -1, (void), ())
STUB(posix_spawn, int, ENOSYS,
     (pid_t * a, const char *b, const void *c, const void *d, char *const e[], char *const f[]),
     (a, b, c, d, e, f))
STUB(posix_spawnp, int, ENOSYS,
     (pid_t * a, const char *b, const void *c, const void *d, char *const e[], char *const f[]),
     (a, b, c, d, e, f))
STUB(system, int, -1, (const char *a), (a))
STUB(popen, FILE *, NULL, (const char *a, const char *b), (a, b))

STUB(socket, int, -1, (int a, int b, int c), (a, b, c))
STUB(dlclose, int, -1, (void *a), (a))

static void first_closefrom(int a)
{
    if (READY(closefrom))
        ac_real.closefrom(a);
}

/* The variadic ones pass their one optional argument on as a word, as the wrappers do. */
static int first_fcntl(int a, int b, ...)
{
    va_list ap;
    va_start(ap, b);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    if (!READY(fcntl)) {
        errno = ENOSYS;
        return -1;
    }
    return ac_real.fcntl(a, b, arg);
}
static int first_fcntl64(int a, int b, ...)
{
    va_list ap;
    va_start(ap, b);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    if (!READY(fcntl64)) {
        errno = ENOSYS;
        return -1;
    }
    return ac_real.fcntl64(a, b, arg);
}
static int first_ioctl(int a, ac_ioctl_request b, ...)
{
    va_list ap;
    va_start(ap, b);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    if (!READY(ioctl)) {
        errno = ENOSYS;
        return -1;
    }
    return ac_real.ioctl(a, b, arg);
}
static int first_prctl(int a, ...)
{
    va_list ap;
    va_start(ap, a);
    unsigned long b = va_arg(ap, unsigned long), c = va_arg(ap, unsigned long);
    unsigned long d = va_arg(ap, unsigned long), e = va_arg(ap, unsigned long);
    va_end(ap);
    if (!READY(prctl)) {
        errno = ENOSYS;
        return -1;
    }
    return ac_real.prctl(a, b, c, d, e);
}
static long first_syscall(long a, ...)
{
    va_list ap;
    va_start(ap, a);
    long b = va_arg(ap, long), c = va_arg(ap, long), d = va_arg(ap, long);
    long e = va_arg(ap, long), f = va_arg(ap, long), g = va_arg(ap, long);
    va_end(ap);
    if (!READY(syscall)) {
        errno = ENOSYS;
        return -1;
    }
    return ac_real.syscall(a, b, c, d, e, f, g);
}
/* clone and vfork are only reached through the table after resolution (wrap_process.c). */
#define first_clone NULL
#define first_vfork NULL

/* Every entry: the field and the symbol it is found under. */
#define ENTRIES(X)                                                                                 \
    X(read, "read")                                                                                \
    X(readv, "readv")                                                                              \
    X(recv, "recv")                                                                                \
    X(recvfrom, "recvfrom")                                                                        \
    X(recvmsg, "recvmsg")                                                                          \
    X(recvmmsg, "recvmmsg")                                                                        \
    X(read_chk, "__read_chk")                                                                      \
    X(recv_chk, "__recv_chk")                                                                      \
    X(recvfrom_chk, "__recvfrom_chk")                                                              \
    X(sendmsg, "sendmsg")                                                                          \
    X(sendmmsg, "sendmmsg")                                                                        \
    X(close, "close")                                                                              \
    X(dup, "dup")                                                                                  \
    X(dup2, "dup2")                                                                                \
    X(dup3, "dup3")                                                                                \
    X(fcntl, "fcntl")                                                                              \
    X(fcntl64, "fcntl64")                                                                          \
    X(close_range, "close_range")                                                                  \
    X(closefrom, "closefrom")                                                                      \
    X(fclose, "fclose")                                                                            \
    X(accept, "accept")                                                                            \
    X(accept4, "accept4")                                                                          \
    X(connect, "connect")                                                                          \
    X(bind, "bind")                                                                                \
    X(listen, "listen")                                                                            \
    X(poll, "poll")                                                                                \
    X(poll_chk, "__poll_chk")                                                                      \
    X(ppoll, "ppoll")                                                                              \
    X(ppoll_chk, "__ppoll_chk")                                                                    \
    X(epoll_ctl, "epoll_ctl")                                                                      \
    X(epoll_wait, "epoll_wait")                                                                    \
    X(epoll_pwait, "epoll_pwait")                                                                  \
    X(epoll_pwait2, "epoll_pwait2")                                                                \
    X(ioctl, "ioctl")                                                                              \
    X(getsockopt, "getsockopt")                                                                    \
    X(setsockopt, "setsockopt")                                                                    \
    X(getsockname, "getsockname")                                                                  \
    X(getpeername, "getpeername")                                                                  \
    X(fork, "fork")                                                                                \
    X(Fork, "_Fork")                                                                               \
    X(vfork, "vfork")                                                                              \
    X(clone, "clone")                                                                              \
    X(posix_spawn, "posix_spawn")                                                                  \
    X(posix_spawnp, "posix_spawnp")                                                                \
    X(system, "system")                                                                            \
    X(popen, "popen")                                                                              \
    X(prctl, "prctl")                                                                              \
    X(syscall, "syscall")                                                                          \
    X(socket, "socket")                                                                            \
    X(dlclose, "dlclose")

#define FIRST(field, symbol) .field = first_##field,
struct ac_real_fns ac_real = {ENTRIES(FIRST)};
#undef FIRST

void ac_real_resolve(void)
{
    static int state; /* 0: not yet, 1: under way, 2: done */
    if (__atomic_load_n(&state, __ATOMIC_ACQUIRE) == 2 || resolving)
        return;
    int expected = 0;
    if (!__atomic_compare_exchange_n(&state, &expected, 1, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE)) {
        while (__atomic_load_n(&state, __ATOMIC_ACQUIRE) != 2)
            ; /* another thread is a few dlsym calls from done */
        return;
    }
    resolving = true;
    /* A symbol libc lacks (closefrom before glibc 2.34, say) keeps its stub, which fails with
     * ENOSYS as the missing function would have made the program fail to link. */
#define RESOLVE(field, symbol)                                                                     \
    do {                                                                                           \
        void *p_ = dlsym(RTLD_NEXT, symbol);                                                       \
        if (p_ != NULL)                                                                            \
            __atomic_store_n((void **)&ac_real.field, p_, __ATOMIC_RELAXED);                       \
    } while (0);
    ENTRIES(RESOLVE)
#undef RESOLVE
    resolving = false;
    __atomic_store_n(&state, 2, __ATOMIC_RELEASE);
}

/* The core's system calls (core.h): libc's, never this library's own wrappers. */
int ac_core_close(int fd)
{
    return AC_REAL(close)(fd);
}

ssize_t ac_core_recv(int fd, void *buf, size_t len, int flags)
{
    return AC_REAL(recv)(fd, buf, len, flags);
}

int ac_core_getsockopt(int fd, int level, int name, void *val, unsigned *len)
{
    return AC_REAL(getsockopt)(fd, level, name, val, len);
}

bool ac_core_wait_readable(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return AC_REAL(poll)(&p, 1, timeout_ms) == 1;
}
