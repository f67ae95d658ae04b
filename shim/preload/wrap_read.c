/*
 * The read family: where a server meets the peer's FIN as a zero-length read.
 *
 * Each wrapper calls the real function and looks at its result; only a zero from a request of
 * more than zero bytes goes on to ac_on_eof, with the place the program called it from. Data
 * records that place as the descriptor's last read (sites.c: a load and a compare). Everything
 * else returns at once: no lock, no allocation, no system call of ours, errno untouched. recvmsg
 * and recvmmsg also mark the descriptors an SCM_RIGHTS message brought as shared: the sender may
 * still hold them, whatever their numbers held before.
 */
#include "autoclose.h"

#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#if AC_HAVE_CHK
/* Declared by glibc's headers only in fortified builds; the shim is built without. */
ssize_t __read_chk(int fd, void *buf, size_t nbytes, size_t buflen);
ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags);
ssize_t __recvfrom_chk(int fd, void *restrict buf, size_t n, size_t buflen, int flags,
                       AC_SOCKADDR_ARG addr, socklen_t *restrict addr_len);
#endif

static size_t iov_bytes(const struct iovec *iov, size_t count)
{
    size_t total = 0;
    for (size_t i = 0; i < count; i++)
        total += iov[i].iov_len;
    return total;
}

/* After the real call of a wrapper that asked for `asked` bytes: data records where the program
 * read from; a zero from a request of more than zero bytes is the peer's EOF. The wrapper's own
 * arguments are read here from copies it keeps in its frame (AC_KEEP). */
#define AFTER_READ(n, fd, asked)                                                                   \
    do {                                                                                           \
        if (AC_LIKELY((n) > 0))                                                                    \
            ac_read_at((fd), AC_CALLER());                                                         \
        else if (AC_UNLIKELY((n) == 0) && (asked) > 0)                                             \
            ac_on_eof((fd), AC_FOUND_READ, AC_CALLER());                                           \
    } while (0)

AC_EXPORT ssize_t read(int fd, void *buf, size_t count)
{
    AC_KEEP(int, kept_fd, fd);
    AC_KEEP(size_t, kept_count, count);
    ssize_t n = AC_REAL(read)(fd, buf, count);
    AFTER_READ(n, kept_fd, kept_count);
    return n;
}

#if AC_HAVE_CHK
AC_EXPORT ssize_t __read_chk(int fd, void *buf, size_t nbytes, size_t buflen)
{
    AC_KEEP(int, kept_fd, fd);
    AC_KEEP(size_t, kept_count, nbytes);
    ssize_t n = AC_REAL(read_chk)(fd, buf, nbytes, buflen);
    AFTER_READ(n, kept_fd, kept_count);
    return n;
}
#endif

AC_EXPORT ssize_t readv(int fd, const struct iovec *iov, int iovcnt)
{
    AC_KEEP(int, kept_fd, fd);
    AC_KEEP(const struct iovec *, kept_iov, iov);
    AC_KEEP(int, kept_iovcnt, iovcnt);
    ssize_t n = AC_REAL(readv)(fd, iov, iovcnt);
    AFTER_READ(n, kept_fd, kept_iovcnt > 0 ? iov_bytes(kept_iov, (size_t)kept_iovcnt) : 0);
    return n;
}

AC_EXPORT ssize_t recv(int fd, void *buf, size_t len, int flags)
{
    AC_KEEP(int, kept_fd, fd);
    AC_KEEP(size_t, kept_len, len);
    ssize_t n = AC_REAL(recv)(fd, buf, len, flags);
    AFTER_READ(n, kept_fd, kept_len);
    return n;
}

#if AC_HAVE_CHK
AC_EXPORT ssize_t __recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags)
{
    AC_KEEP(int, kept_fd, fd);
    AC_KEEP(size_t, kept_len, len);
    ssize_t n = AC_REAL(recv_chk)(fd, buf, len, buflen, flags);
    AFTER_READ(n, kept_fd, kept_len);
    return n;
}
#endif

AC_EXPORT ssize_t recvfrom(int fd, void *restrict buf, size_t len, int flags, AC_SOCKADDR_ARG addr,
                           socklen_t *restrict addr_len)
{
    AC_KEEP(int, kept_fd, fd);
    AC_KEEP(size_t, kept_len, len);
    ssize_t n = AC_REAL(recvfrom)(fd, buf, len, flags, AC_SOCKADDR(addr), addr_len);
    AFTER_READ(n, kept_fd, kept_len);
    return n;
}

#if AC_HAVE_CHK
AC_EXPORT ssize_t __recvfrom_chk(int fd, void *restrict buf, size_t len, size_t buflen, int flags,
                                 AC_SOCKADDR_ARG addr, socklen_t *restrict addr_len)
{
    AC_KEEP(int, kept_fd, fd);
    AC_KEEP(size_t, kept_len, len);
    ssize_t n = AC_REAL(recvfrom_chk)(fd, buf, len, buflen, flags, AC_SOCKADDR(addr), addr_len);
    AFTER_READ(n, kept_fd, kept_len);
    return n;
}
#endif

/* Descriptors handed over with SCM_RIGHTS: the sweep must learn their ports (ports.c). Looked
 * at only when the kernel returned control data at all (it wrote msg_controllen, so `msg` is
 * the program's valid header): one load otherwise. */
static __attribute__((noinline, cold)) void received(int fd, struct msghdr *msg, ssize_t n,
                                                     uintptr_t site)
{
    /* The kernel sets msg_controllen to what it received: 0 unless there was control data. */
    bool control = msg->msg_controllen != 0;
    if (control)
        ac_ports_received(msg);
    if (n > 0)
        ac_read_at(fd, site);
    else if (iov_bytes(msg->msg_iov, msg->msg_iovlen) > 0)
        ac_on_eof(fd, AC_FOUND_READ, site);
    if (control)
        ac_rights_shared(msg);
}

AC_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
    AC_KEEP(int, kept_fd, fd);
    AC_KEEP(struct msghdr *, kept_msg, msg);
    ssize_t n = AC_REAL(recvmsg)(fd, msg, flags);
    if (AC_LIKELY(n > 0) && AC_LIKELY(kept_msg->msg_controllen == 0))
        ac_read_at(kept_fd, AC_CALLER());
    else if (n >= 0)
        received(kept_fd, kept_msg, n, AC_CALLER());
    return n;
}

/* On a stream socket every receive after the FIN yields a message of length 0, so at EOF the
 * last message of the vector is empty: that is the one to look at. */
AC_EXPORT int recvmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, ac_mmsg_flags flags,
                       struct timespec *timeout)
{
    int n = AC_REAL(recvmmsg)(fd, vec, vlen, flags, timeout);
    for (int i = 0; i < n; i++)
        if (AC_UNLIKELY(vec[i].msg_hdr.msg_controllen != 0))
            ac_ports_received(&vec[i].msg_hdr);
    if (n > 0 && vec[0].msg_len > 0)
        ac_read_at(fd, AC_CALLER());
    if (n > 0 && AC_UNLIKELY(vec[n - 1].msg_len == 0) &&
        iov_bytes(vec[n - 1].msg_hdr.msg_iov, vec[n - 1].msg_hdr.msg_iovlen) > 0)
        ac_on_eof(fd, AC_FOUND_READ, AC_CALLER());
    for (int i = 0; i < n; i++)
        if (AC_UNLIKELY(vec[i].msg_hdr.msg_controllen != 0))
            ac_rights_shared(&vec[i].msg_hdr);
    return n;
}
