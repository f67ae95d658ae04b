/*
 * The real libc functions behind the wrappers.
 *
 * The table starts filled with raw-syscall stand-ins, so that a wrapper called before this
 * library's constructor (from another library's constructor, say) still does the right thing
 * without a NULL check on the hot path. ac_real_resolve, run once from ac_init, swaps in the
 * next definitions in link order (dlsym RTLD_NEXT): libc's, or another preloaded shim's.
 */
#include "autoclose.h"

#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

static ssize_t sys_read(int fd, void *buf, size_t n)
{
    return syscall(SYS_read, fd, buf, n);
}
static ssize_t sys_readv(int fd, const struct iovec *iov, int cnt)
{
    return syscall(SYS_readv, fd, iov, cnt);
}
static ssize_t sys_recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *sa,
                            unsigned *len)
{
    return syscall(SYS_recvfrom, fd, buf, n, flags, sa, len);
}
static ssize_t sys_recv(int fd, void *buf, size_t n, int flags)
{
    return sys_recvfrom(fd, buf, n, flags, NULL, NULL);
}
static ssize_t sys_recvmsg(int fd, struct msghdr *msg, int flags)
{
    return syscall(SYS_recvmsg, fd, msg, flags);
}
static int sys_recvmmsg(int fd, struct mmsghdr *v, unsigned n, int flags, struct timespec *t)
{
    return (int)syscall(SYS_recvmmsg, fd, v, n, flags, t);
}
/* The fortified forms keep their promise even here: a length beyond the buffer aborts. */
static ssize_t sys_read_chk(int fd, void *buf, size_t n, size_t buflen)
{
    if (n > buflen)
        abort();
    return sys_read(fd, buf, n);
}
static ssize_t sys_recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
    if (n > buflen)
        abort();
    return sys_recv(fd, buf, n, flags);
}
static ssize_t sys_recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
                                struct sockaddr *sa, unsigned *len)
{
    if (n > buflen)
        abort();
    return sys_recvfrom(fd, buf, n, flags, sa, len);
}
static ssize_t sys_write(int fd, const void *buf, size_t n)
{
    return syscall(SYS_write, fd, buf, n);
}
static ssize_t sys_writev(int fd, const struct iovec *iov, int cnt)
{
    return syscall(SYS_writev, fd, iov, cnt);
}
static ssize_t sys_sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *sa,
                          unsigned len)
{
    return syscall(SYS_sendto, fd, buf, n, flags, sa, len);
}
static ssize_t sys_send(int fd, const void *buf, size_t n, int flags)
{
    return sys_sendto(fd, buf, n, flags, NULL, 0);
}
static ssize_t sys_sendmsg(int fd, const struct msghdr *msg, int flags)
{
    return syscall(SYS_sendmsg, fd, msg, flags);
}
static int sys_close(int fd)
{
    return (int)syscall(SYS_close, fd);
}
static int sys_dup3(int oldfd, int newfd, int flags)
{
    return (int)syscall(SYS_dup3, oldfd, newfd, flags);
}
static int sys_dup2(int oldfd, int newfd)
{
    if (oldfd == newfd) /* dup3 refuses this; dup2 returns newfd if it is open */
        return syscall(SYS_fcntl, oldfd, F_GETFD) < 0 ? -1 : newfd;
    return sys_dup3(oldfd, newfd, 0);
}
static int sys_close_range(unsigned first, unsigned last, int flags)
{
    return (int)syscall(SYS_close_range, first, last, flags);
}
static void sys_closefrom(int lowfd)
{
    sys_close_range((unsigned)lowfd, ~0u, 0);
}
static int sys_accept4(int fd, struct sockaddr *sa, unsigned *len, int flags)
{
    return (int)syscall(SYS_accept4, fd, sa, len, flags);
}
static int sys_accept(int fd, struct sockaddr *sa, unsigned *len)
{
    return sys_accept4(fd, sa, len, 0);
}
static int sys_bind(int fd, const struct sockaddr *sa, unsigned len)
{
    return (int)syscall(SYS_bind, fd, sa, len);
}
static int sys_connect(int fd, const struct sockaddr *sa, unsigned len)
{
    return (int)syscall(SYS_connect, fd, sa, len);
}
static int sys_ppoll(struct pollfd *fds, unsigned long n, const struct timespec *ts,
                     const sigset_t *mask)
{
    return (int)syscall(SYS_ppoll, fds, n, ts, mask, _NSIG / 8);
}
static int sys_poll(struct pollfd *fds, unsigned long n, int timeout)
{
    struct timespec ts = {.tv_sec = timeout / 1000, .tv_nsec = (long)(timeout % 1000) * 1000000};
    return sys_ppoll(fds, n, timeout < 0 ? NULL : &ts, NULL);
}
static int sys_poll_chk(struct pollfd *fds, unsigned long n, int timeout, size_t fdslen)
{
    if (fdslen / sizeof *fds < n)
        abort();
    return sys_poll(fds, n, timeout);
}
static int sys_ppoll_chk(struct pollfd *fds, unsigned long n, const struct timespec *ts,
                         const sigset_t *mask, size_t fdslen)
{
    if (fdslen / sizeof *fds < n)
        abort();
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
    return (int)syscall(SYS_pselect6, n, r, w, e, tsp, mask ? &sig : NULL);
}
static int sys_select(int n, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv)
{
    return (int)syscall(SYS_select, n, r, w, e, tv);
}
static int sys_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    return (int)syscall(SYS_epoll_ctl, epfd, op, fd, ev);
}
static int sys_epoll_pwait(int epfd, struct epoll_event *ev, int max, int timeout,
                           const sigset_t *mask)
{
    return (int)syscall(SYS_epoll_pwait, epfd, ev, max, timeout, mask, _NSIG / 8);
}
static int sys_epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout)
{
    return sys_epoll_pwait(epfd, ev, max, timeout, NULL);
}
static int sys_epoll_pwait2(int epfd, struct epoll_event *ev, int max, const struct timespec *ts,
                            const sigset_t *mask)
{
    return (int)syscall(SYS_epoll_pwait2, epfd, ev, max, ts, mask, _NSIG / 8);
}
static int sys_ioctl(int fd, unsigned long request, ...)
{
    va_list ap;
    va_start(ap, request);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return (int)syscall(SYS_ioctl, fd, request, arg);
}

/* fclose has no system call: look it up on the spot if the constructor has not run yet. */
static int late_fclose(FILE *fp)
{
    int (*real)(FILE *) = (int (*)(FILE *))dlsym(RTLD_NEXT, "fclose");
    if (real == NULL) {
        errno = ENOSYS;
        return EOF;
    }
    return real(fp);
}

struct ac_real_fns ac_real = {
    .read = sys_read,
    .readv = sys_readv,
    .recv = sys_recv,
    .recvfrom = sys_recvfrom,
    .recvmsg = sys_recvmsg,
    .recvmmsg = sys_recvmmsg,
    .read_chk = sys_read_chk,
    .recv_chk = sys_recv_chk,
    .recvfrom_chk = sys_recvfrom_chk,
    .write = sys_write,
    .writev = sys_writev,
    .send = sys_send,
    .sendto = sys_sendto,
    .sendmsg = sys_sendmsg,
    .close = sys_close,
    .dup2 = sys_dup2,
    .dup3 = sys_dup3,
    .close_range = sys_close_range,
    .closefrom = sys_closefrom,
    .fclose = late_fclose,
    .accept = sys_accept,
    .accept4 = sys_accept4,
    .connect = sys_connect,
    .bind = sys_bind,
    .poll = sys_poll,
    .poll_chk = sys_poll_chk,
    .ppoll = sys_ppoll,
    .ppoll_chk = sys_ppoll_chk,
    .select = sys_select,
    .pselect = sys_pselect,
    .epoll_ctl = sys_epoll_ctl,
    .epoll_wait = sys_epoll_wait,
    .epoll_pwait = sys_epoll_pwait,
    .epoll_pwait2 = sys_epoll_pwait2,
    .ioctl = sys_ioctl,
};

/* Swaps one entry for the next definition, if there is one (closefrom and close_range are
 * missing from glibc before 2.34: the stand-in stays). */
#define RESOLVE(field, symbol)                                                                     \
    do {                                                                                           \
        void *p_ = dlsym(RTLD_NEXT, symbol);                                                       \
        if (p_ != NULL)                                                                            \
            __atomic_store_n((void **)&ac_real.field, p_, __ATOMIC_RELAXED);                       \
    } while (0)

void ac_real_resolve(void)
{
    RESOLVE(read, "read");
    RESOLVE(readv, "readv");
    RESOLVE(recv, "recv");
    RESOLVE(recvfrom, "recvfrom");
    RESOLVE(recvmsg, "recvmsg");
    RESOLVE(recvmmsg, "recvmmsg");
    RESOLVE(read_chk, "__read_chk");
    RESOLVE(recv_chk, "__recv_chk");
    RESOLVE(recvfrom_chk, "__recvfrom_chk");
    RESOLVE(write, "write");
    RESOLVE(writev, "writev");
    RESOLVE(send, "send");
    RESOLVE(sendto, "sendto");
    RESOLVE(sendmsg, "sendmsg");
    RESOLVE(close, "close");
    RESOLVE(dup2, "dup2");
    RESOLVE(dup3, "dup3");
    RESOLVE(close_range, "close_range");
    RESOLVE(closefrom, "closefrom");
    RESOLVE(fclose, "fclose");
    RESOLVE(accept, "accept");
    RESOLVE(accept4, "accept4");
    RESOLVE(connect, "connect");
    RESOLVE(bind, "bind");
    RESOLVE(poll, "poll");
    RESOLVE(poll_chk, "__poll_chk");
    RESOLVE(ppoll, "ppoll");
    RESOLVE(ppoll_chk, "__ppoll_chk");
    RESOLVE(select, "select");
    RESOLVE(pselect, "pselect");
    RESOLVE(epoll_ctl, "epoll_ctl");
    RESOLVE(epoll_wait, "epoll_wait");
    RESOLVE(epoll_pwait, "epoll_pwait");
    RESOLVE(epoll_pwait2, "epoll_pwait2");
    RESOLVE(ioctl, "ioctl");
}
