/*
 * The read family: where a server meets the peer's FIN as a zero-length read.
 *
 * Each wrapper calls the real function and looks at its result; only a zero from a request of
 * more than zero bytes goes on to ac_on_eof. Everything else returns at once: no lock, no
 * allocation, no system call of ours, errno untouched. recvmsg and recvmmsg also mark the
 * descriptors an SCM_RIGHTS message brought as shared: the sender may still hold them, whatever
 * their numbers held before.
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

AC_EXPORT ssize_t read(int fd, void *buf, size_t count)
{
    ssize_t n = AC_REAL(read)(fd, buf, count);
    if (AC_UNLIKELY(n == 0) && count > 0)
        ac_on_eof(fd, AC_FOUND_READ);
    return n;
}

#if AC_HAVE_CHK
AC_EXPORT ssize_t __read_chk(int fd, void *buf, size_t nbytes, size_t buflen)
{
    ssize_t n = AC_REAL(read_chk)(fd, buf, nbytes, buflen);
    if (AC_UNLIKELY(n == 0) && nbytes > 0)
        ac_on_eof(fd, AC_FOUND_READ);
    return n;
}
#endif

AC_EXPORT ssize_t readv(int fd, const struct iovec *iov, int iovcnt)
{
    ssize_t n = AC_REAL(readv)(fd, iov, iovcnt);
    if (AC_UNLIKELY(n == 0) && iovcnt > 0 && iov_bytes(iov, (size_t)iovcnt) > 0)
        ac_on_eof(fd, AC_FOUND_READ);
    return n;
}

AC_EXPORT ssize_t recv(int fd, void *buf, size_t len, int flags)
{
    ssize_t n = AC_REAL(recv)(fd, buf, len, flags);
    if (AC_UNLIKELY(n == 0) && len > 0)
        ac_on_eof(fd, AC_FOUND_READ);
    return n;
}

#if AC_HAVE_CHK
AC_EXPORT ssize_t __recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags)
{
    ssize_t n = AC_REAL(recv_chk)(fd, buf, len, buflen, flags);
    if (AC_UNLIKELY(n == 0) && len > 0)
        ac_on_eof(fd, AC_FOUND_READ);
    return n;
}
#endif

AC_EXPORT ssize_t recvfrom(int fd, void *restrict buf, size_t len, int flags, AC_SOCKADDR_ARG addr,
                           socklen_t *restrict addr_len)
{
    ssize_t n = AC_REAL(recvfrom)(fd, buf, len, flags, AC_SOCKADDR(addr), addr_len);
    if (AC_UNLIKELY(n == 0) && len > 0)
        ac_on_eof(fd, AC_FOUND_READ);
    return n;
}

#if AC_HAVE_CHK
AC_EXPORT ssize_t __recvfrom_chk(int fd, void *restrict buf, size_t len, size_t buflen, int flags,
                                 AC_SOCKADDR_ARG addr, socklen_t *restrict addr_len)
{
    ssize_t n = AC_REAL(recvfrom_chk)(fd, buf, len, buflen, flags, AC_SOCKADDR(addr), addr_len);
    if (AC_UNLIKELY(n == 0) && len > 0)
        ac_on_eof(fd, AC_FOUND_READ);
    return n;
}
#endif

/* Descriptors handed over with SCM_RIGHTS: the sweep must learn their ports (ports.c). Looked
 * at only when the kernel returned control data at all (it wrote msg_controllen, so `msg` is
 * the program's valid header): one load otherwise. */
AC_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
    ssize_t n = AC_REAL(recvmsg)(fd, msg, flags);
    if (n < 0)
        return n;
    if (AC_UNLIKELY(msg->msg_controllen != 0))
        ac_ports_received(msg);
    if (AC_UNLIKELY(n == 0) && iov_bytes(msg->msg_iov, msg->msg_iovlen) > 0)
        ac_on_eof(fd, AC_FOUND_READ);
    /* The kernel sets msg_controllen to what it received: 0 unless there was control data. */
    if (n >= 0 && AC_UNLIKELY(msg->msg_controllen != 0))
        ac_rights_shared(msg);
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
    if (n > 0 && AC_UNLIKELY(vec[n - 1].msg_len == 0) &&
        iov_bytes(vec[n - 1].msg_hdr.msg_iov, vec[n - 1].msg_hdr.msg_iovlen) > 0)
        ac_on_eof(fd, AC_FOUND_READ);
    for (int i = 0; i < n; i++)
        if (AC_UNLIKELY(vec[i].msg_hdr.msg_controllen != 0))
            ac_rights_shared(&vec[i].msg_hdr);
    return n;
}
