/*
 * The write family, for one reason: after the shim has reclaimed a connection, a late write by
 * the application must fail with EPIPE, not raise SIGPIPE, whose default action would kill a
 * program that, without the shim, would have lived (its write would have gone into a socket
 * still in CLOSE_WAIT). Such writes are sent with MSG_NOSIGNAL.
 *
 * Every other write goes straight through after one byte load. The rest lives in cold,
 * out-of-line functions so the compiler keeps the fast path free of register saves.
 */
#include "autoclose.h"

#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define AC_COLD __attribute__((noinline, cold))

static AC_COLD bool reclaimed(int fd)
{
    return ac_fd_maybe_reclaimed(fd) && ac_fd_reclaimed(fd);
}

static AC_COLD ssize_t write_slow(int fd, const void *buf, size_t count)
{
    if (reclaimed(fd))
        return AC_REAL(send)(fd, buf, count, MSG_NOSIGNAL);
    return AC_REAL(write)(fd, buf, count);
}

AC_EXPORT ssize_t write(int fd, const void *buf, size_t count)
{
    if (AC_UNLIKELY(ac_fd_state_hint(fd) != AC_FD_NONE))
        return write_slow(fd, buf, count);
    return AC_REAL(write)(fd, buf, count);
}

static AC_COLD ssize_t writev_slow(int fd, const struct iovec *iov, int iovcnt)
{
    if (reclaimed(fd)) {
        struct msghdr msg = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
        return AC_REAL(sendmsg)(fd, &msg, MSG_NOSIGNAL);
    }
    return AC_REAL(writev)(fd, iov, iovcnt);
}

AC_EXPORT ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
    if (AC_UNLIKELY(ac_fd_state_hint(fd) != AC_FD_NONE))
        return writev_slow(fd, iov, iovcnt);
    return AC_REAL(writev)(fd, iov, iovcnt);
}

/* The flags the send family should use: MSG_NOSIGNAL added on a reclaimed connection. */
static inline int send_flags(int fd, int flags)
{
    if (AC_UNLIKELY(ac_fd_state_hint(fd) != AC_FD_NONE) && reclaimed(fd))
        flags |= MSG_NOSIGNAL;
    return flags;
}

AC_EXPORT ssize_t send(int fd, const void *buf, size_t len, int flags)
{
    return AC_REAL(send)(fd, buf, len, send_flags(fd, flags));
}

AC_EXPORT ssize_t sendto(int fd, const void *buf, size_t len, int flags, __CONST_SOCKADDR_ARG addr,
                         socklen_t addr_len)
{
    return AC_REAL(sendto)(fd, buf, len, send_flags(fd, flags), addr.__sockaddr__, addr_len);
}

AC_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    return AC_REAL(sendmsg)(fd, msg, send_flags(fd, flags));
}
