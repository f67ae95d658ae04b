/*
 * The real libc functions behind the wrappers.
 *
 * The table starts filled with raw-syscall stand-ins, so that a wrapper called before this
 * library's constructor (from another library's constructor, say) still does the right thing
 * without a NULL check on the hot path. ac_real_resolve, run once from ac_init, swaps in the
 * next definitions in link order (dlsym RTLD_NEXT): libc's, or another preloaded shim's.
 *
 * The stand-ins come back for a second reason. Once any second thread exists, glibc's
 * cancellable calls (read, write, poll and the rest) take a multi-threaded path: about 30
 * instructions and two atomic operations around every system call, for a cancellation that
 * only another thread of the application could ask for. The library's timer is such a thread,
 * and the application did not ask for it. So while the application has no thread of its own,
 * the wrappers make those system calls themselves, exactly as glibc does for a single-threaded
 * program; the application's first pthread_create puts glibc's functions back before the new
 * thread exists. Only where the next definition is libc's own: another shim further down the
 * chain (a sanitizer's interceptors, say) is never skipped.
 */
#include "autoclose.h"

#include <dlfcn.h>
#include <errno.h>
#include <gnu/lib-names.h>
#include <signal.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/single_threaded.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

/* A system call made here, not through glibc's syscall(): the stand-ins replace libc's own
 * single-threaded path, and must cost no more than it does (syscall() shuffles six arguments
 * into place behind a call). The result is libc's: -1 and errno on failure. */
__attribute__((noinline, cold)) static long failed_with(long r)
{
    errno = (int)-r;
    return -1;
}
static inline long result_of(long r)
{
    return AC_UNLIKELY((unsigned long)r > -4096ul) ? failed_with(r) : r;
}
#if defined(__x86_64__)
static inline long raw6(long n, long a, long b, long c, long d, long e, long f)
{
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return result_of(ret);
}
#elif defined(__aarch64__)
static inline long raw6(long n, long a, long b, long c, long d, long e, long f)
{
    register long x8 __asm__("x8") = n;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    register long x4 __asm__("x4") = e;
    register long x5 __asm__("x5") = f;
    __asm__ volatile("svc 0"
                     : "+r"(x0)
                     : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
                     : "memory");
    return result_of(x0);
}
#else
static inline long raw6(long n, long a, long b, long c, long d, long e, long f)
{
    return syscall(n, a, b, c, d, e, f);
}
#endif
/* raw(SYS_x, up to six arguments): the missing ones are passed as 0. */
#define RAW7(n, a, b, c, d, e, f, ...)                                                             \
    raw6(n, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))
#define raw(...) RAW7(__VA_ARGS__, 0, 0, 0, 0, 0, 0)

static ssize_t sys_read(int fd, void *buf, size_t n)
{
    return raw(SYS_read, fd, buf, n);
}
static ssize_t sys_readv(int fd, const struct iovec *iov, int cnt)
{
    return raw(SYS_readv, fd, iov, cnt);
}
static ssize_t sys_recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *sa,
                            unsigned *len)
{
    return raw(SYS_recvfrom, fd, buf, n, flags, sa, len);
}
static ssize_t sys_recv(int fd, void *buf, size_t n, int flags)
{
    return sys_recvfrom(fd, buf, n, flags, NULL, NULL);
}
static ssize_t sys_recvmsg(int fd, struct msghdr *msg, int flags)
{
    return raw(SYS_recvmsg, fd, msg, flags);
}
static int sys_recvmmsg(int fd, struct mmsghdr *v, unsigned n, int flags, struct timespec *t)
{
    return (int)raw(SYS_recvmmsg, fd, v, n, flags, t);
}
/* The fortified forms keep their promise even here: a length beyond the buffer ends the
 * program with glibc's own message. */
extern void __chk_fail(void) __attribute__((noreturn));
static ssize_t sys_read_chk(int fd, void *buf, size_t n, size_t buflen)
{
    if (n > buflen)
        __chk_fail();
    return sys_read(fd, buf, n);
}
static ssize_t sys_recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
    if (n > buflen)
        __chk_fail();
    return sys_recv(fd, buf, n, flags);
}
static ssize_t sys_recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
                                struct sockaddr *sa, unsigned *len)
{
    if (n > buflen)
        __chk_fail();
    return sys_recvfrom(fd, buf, n, flags, sa, len);
}
static ssize_t sys_write(int fd, const void *buf, size_t n)
{
    return raw(SYS_write, fd, buf, n);
}
static ssize_t sys_writev(int fd, const struct iovec *iov, int cnt)
{
    return raw(SYS_writev, fd, iov, cnt);
}
static ssize_t sys_sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *sa,
                          unsigned len)
{
    return raw(SYS_sendto, fd, buf, n, flags, sa, len);
}
static ssize_t sys_send(int fd, const void *buf, size_t n, int flags)
{
    return sys_sendto(fd, buf, n, flags, NULL, 0);
}
static ssize_t sys_sendmsg(int fd, const struct msghdr *msg, int flags)
{
    return raw(SYS_sendmsg, fd, msg, flags);
}
static int sys_close(int fd)
{
    return (int)raw(SYS_close, fd);
}
static int sys_dup3(int oldfd, int newfd, int flags)
{
    return (int)raw(SYS_dup3, oldfd, newfd, flags);
}
static int sys_dup2(int oldfd, int newfd)
{
    if (oldfd == newfd) /* dup3 refuses this; dup2 returns newfd if it is open */
        return raw(SYS_fcntl, oldfd, F_GETFD) < 0 ? -1 : newfd;
    return sys_dup3(oldfd, newfd, 0);
}
static int sys_close_range(unsigned first, unsigned last, int flags)
{
    return (int)raw(SYS_close_range, first, last, flags);
}
static void sys_closefrom(int lowfd)
{
    sys_close_range((unsigned)lowfd, ~0u, 0);
}
static int sys_accept4(int fd, struct sockaddr *sa, unsigned *len, int flags)
{
    return (int)raw(SYS_accept4, fd, sa, len, flags);
}
static int sys_accept(int fd, struct sockaddr *sa, unsigned *len)
{
    return sys_accept4(fd, sa, len, 0);
}
static int sys_bind(int fd, const struct sockaddr *sa, unsigned len)
{
    return (int)raw(SYS_bind, fd, sa, len);
}
static int sys_connect(int fd, const struct sockaddr *sa, unsigned len)
{
    return (int)raw(SYS_connect, fd, sa, len);
}
static int sys_ppoll(struct pollfd *fds, unsigned long n, const struct timespec *ts,
                     const sigset_t *mask)
{
    return (int)raw(SYS_ppoll, fds, n, ts, mask, _NSIG / 8);
}
static int sys_poll(struct pollfd *fds, unsigned long n, int timeout)
{
#ifdef SYS_poll
    return (int)raw(SYS_poll, fds, n, timeout);
#else
    struct timespec ts = {.tv_sec = timeout / 1000, .tv_nsec = (long)(timeout % 1000) * 1000000};
    return sys_ppoll(fds, n, timeout < 0 ? NULL : &ts, NULL);
#endif
}
static int sys_poll_chk(struct pollfd *fds, unsigned long n, int timeout, size_t fdslen)
{
    if (fdslen / sizeof *fds < n)
        __chk_fail();
    return sys_poll(fds, n, timeout);
}
static int sys_ppoll_chk(struct pollfd *fds, unsigned long n, const struct timespec *ts,
                         const sigset_t *mask, size_t fdslen)
{
    if (fdslen / sizeof *fds < n)
        __chk_fail();
    return sys_ppoll(fds, n, ts, mask);
}
static int sys_pselect(int n, fd_set *r, fd_set *w, fd_set *e, const struct timespec *ts,
                       const sigset_t *mask)
{
    struct {
        const sigset_t *mask;
        size_t size;
    } sig = {mask, _NSIG / 8};
    /* The kernel may write the time left into its timeout; pselect promises not to. */
    struct timespec copy, *tsp = NULL;
    if (ts != NULL) {
        copy = *ts;
        tsp = &copy;
    }
    return (int)raw(SYS_pselect6, n, r, w, e, tsp, mask ? &sig : NULL);
}
static int sys_select(int n, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv)
{
    return (int)raw(SYS_select, n, r, w, e, tv);
}
static int sys_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    return (int)raw(SYS_epoll_ctl, epfd, op, fd, ev);
}
static int sys_epoll_pwait(int epfd, struct epoll_event *ev, int max, int timeout,
                           const sigset_t *mask)
{
    return (int)raw(SYS_epoll_pwait, epfd, ev, max, timeout, mask, _NSIG / 8);
}
static int sys_epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout)
{
#ifdef SYS_epoll_wait
    return (int)raw(SYS_epoll_wait, epfd, ev, max, timeout);
#else
    return sys_epoll_pwait(epfd, ev, max, timeout, NULL);
#endif
}
static int sys_epoll_pwait2(int epfd, struct epoll_event *ev, int max, const struct timespec *ts,
                            const sigset_t *mask)
{
    return (int)raw(SYS_epoll_pwait2, epfd, ev, max, ts, mask, _NSIG / 8);
}
static int sys_ioctl(int fd, unsigned long request, ...)
{
    va_list ap;
    va_start(ap, request);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return (int)raw(SYS_ioctl, fd, request, arg);
}

/* fclose has no system call: look it up on the spot if the constructor has not run yet. */
static int sys_fclose(FILE *fp)
{
    int (*real)(FILE *) = (int (*)(FILE *))dlsym(RTLD_NEXT, "fclose");
    if (real == NULL) {
        errno = ENOSYS;
        return EOF;
    }
    return real(fp);
}

/* The calls glibc makes cancellation points, and the rest (no multi-threaded path to skip). */
#define CANCELLABLE(X)                                                                             \
    X(read, "read")                                                                                \
    X(readv, "readv")                                                                              \
    X(recv, "recv")                                                                                \
    X(recvfrom, "recvfrom")                                                                        \
    X(recvmsg, "recvmsg")                                                                          \
    X(recvmmsg, "recvmmsg")                                                                        \
    X(read_chk, "__read_chk")                                                                      \
    X(recv_chk, "__recv_chk")                                                                      \
    X(recvfrom_chk, "__recvfrom_chk")                                                              \
    X(write, "write")                                                                              \
    X(writev, "writev")                                                                            \
    X(send, "send")                                                                                \
    X(sendto, "sendto")                                                                            \
    X(sendmsg, "sendmsg")                                                                          \
    X(close, "close")                                                                              \
    X(accept, "accept")                                                                            \
    X(accept4, "accept4")                                                                          \
    X(connect, "connect")                                                                          \
    X(poll, "poll")                                                                                \
    X(poll_chk, "__poll_chk")                                                                      \
    X(ppoll, "ppoll")                                                                              \
    X(ppoll_chk, "__ppoll_chk")                                                                    \
    X(select, "select")                                                                            \
    X(pselect, "pselect")                                                                          \
    X(epoll_wait, "epoll_wait")                                                                    \
    X(epoll_pwait, "epoll_pwait")                                                                  \
    X(epoll_pwait2, "epoll_pwait2")
#define NOT_CANCELLABLE(X)                                                                         \
    X(dup2, "dup2")                                                                                \
    X(dup3, "dup3")                                                                                \
    X(close_range, "close_range")                                                                  \
    X(closefrom, "closefrom")                                                                      \
    X(fclose, "fclose")                                                                            \
    X(bind, "bind")                                                                                \
    X(epoll_ctl, "epoll_ctl")                                                                      \
    X(ioctl, "ioctl")

#define STAND_IN(field, symbol) .field = sys_##field,
#define STAND_INS                                                                                  \
    {                                                                                              \
        CANCELLABLE(STAND_IN) NOT_CANCELLABLE(STAND_IN)                                            \
    }
static const struct ac_real_fns stand_ins = STAND_INS;
/* Written field by field, each pointer whole (see AC_REAL); starts as the stand-ins. */
struct ac_real_fns ac_real = STAND_INS;
#undef STAND_INS
#undef STAND_IN

static struct ac_real_fns next_fns;  /* what dlsym(RTLD_NEXT) found, stand-ins where nothing */
static struct ac_real_fns alone_fns; /* next_fns, with stand-ins where next_fns is libc's own */
static bool app_threaded;            /* the application has (or had) a thread of its own */
static bool direct;                  /* ac_real holds alone_fns */

static void install(const struct ac_real_fns *fns)
{
#define STORE(field, symbol) __atomic_store_n(&ac_real.field, fns->field, __ATOMIC_RELAXED);
    CANCELLABLE(STORE)
    NOT_CANCELLABLE(STORE)
#undef STORE
}

void ac_real_resolve(void)
{
    next_fns = stand_ins;
    /* closefrom and close_range are missing from glibc before 2.34: the stand-in stays. */
#define RESOLVE(field, symbol)                                                                     \
    do {                                                                                           \
        void *p_ = dlsym(RTLD_NEXT, symbol);                                                       \
        if (p_ != NULL)                                                                            \
            *(void **)&next_fns.field = p_;                                                        \
    } while (0);
    CANCELLABLE(RESOLVE)
    NOT_CANCELLABLE(RESOLVE)
#undef RESOLVE
    alone_fns = next_fns;
    void *libc = dlopen(LIBC_SO, RTLD_LAZY | RTLD_NOLOAD);
    if (libc != NULL) {
#define IF_LIBC_OWN(field, symbol)                                                                 \
    do {                                                                                           \
        void *own_ = dlsym(libc, symbol);                                                          \
        if (own_ != NULL && own_ == (void *)next_fns.field)                                        \
            alone_fns.field = stand_ins.field;                                                     \
    } while (0);
        CANCELLABLE(IF_LIBC_OWN)
#undef IF_LIBC_OWN
        dlclose(libc);
    }
    /* A thread started before this library's constructor (one made without pthread_create
     * counts too) keeps glibc's functions in place for good. */
    if (!__libc_single_threaded)
        __atomic_store_n(&app_threaded, true, __ATOMIC_RELAXED);
    install(&next_fns);
}

void ac_real_before_own_thread(void)
{
    if (__atomic_load_n(&app_threaded, __ATOMIC_RELAXED) ||
        __atomic_exchange_n(&direct, true, __ATOMIC_RELAXED))
        return;
    install(&alone_fns);
}

void ac_real_app_thread_starting(void)
{
    __atomic_store_n(&app_threaded, true, __ATOMIC_RELAXED);
    if (__atomic_exchange_n(&direct, false, __ATOMIC_RELAXED))
        install(&next_fns);
}

void ac_real_atfork_child(void)
{
    /* The child has one thread, the application's: it goes back to the system calls of its
     * own once its timer starts (ac_real_before_own_thread). */
    __atomic_store_n(&app_threaded, false, __ATOMIC_RELAXED);
}

typedef int (*pthread_create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

static int call_once_found(pthread_create_fn *slot, pthread_create_fn (*find)(void),
                           pthread_t *thread, const pthread_attr_t *attr, void *(*start)(void *),
                           void *arg)
{
    pthread_create_fn fn = __atomic_load_n(slot, __ATOMIC_RELAXED);
    if (fn == NULL) {
        fn = find();
        if (fn == NULL)
            return ENOSYS;
        __atomic_store_n(slot, fn, __ATOMIC_RELAXED);
    }
    return fn(thread, attr, start, arg);
}

static pthread_create_fn next_pthread_create(void)
{
    return (pthread_create_fn)dlsym(RTLD_NEXT, "pthread_create");
}

/* The first pthread_create in the process other than this library's wrapper. A sanitizer
 * runtime loaded ahead of this library must see the timer thread start (it sets up the
 * thread's state there); libc's comes after this library in any case. */
static pthread_create_fn first_pthread_create_but_ours(void)
{
    void *first = dlsym(RTLD_DEFAULT, "pthread_create");
    Dl_info where, here;
    if (first != NULL && dladdr(first, &where) &&
        dladdr((void *)first_pthread_create_but_ours, &here) && where.dli_fbase != here.dli_fbase)
        return (pthread_create_fn)first;
    return next_pthread_create();
}

int ac_real_pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*start)(void *),
                           void *arg)
{
    static pthread_create_fn next;
    return call_once_found(&next, next_pthread_create, thread, attr, start, arg);
}

int ac_own_pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*start)(void *),
                          void *arg)
{
    static pthread_create_fn first;
    return call_once_found(&first, first_pthread_create_but_ours, thread, attr, start, arg);
}
