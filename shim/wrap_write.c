/*
 * The write family, for one reason: after the shim has reclaimed a connection, a late write by
 * the application must fail with EPIPE, not raise SIGPIPE, whose default action would kill a
 * program that, without the shim, would have lived (its write would have gone into a socket
 * still in CLOSE_WAIT). Such writes are sent with MSG_NOSIGNAL; every other write goes straight
 * through after one byte load.
 */
#include "autoclose.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

AC_EXPORT ssize_t write(int fd, const void *buf, size_t count)
{
    if (ac_fd_maybe_reclaimed(fd) && ac_fd_reclaimed(fd))
        return AC_REAL(send)(fd, buf, count, MSG_NOSIGNAL);
    return AC_REAL(write)(fd, buf, count);
}

AC_EXPORT ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
    if (ac_fd_maybe_reclaimed(fd) && ac_fd_reclaimed(fd)) {
        struct msghdr msg = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
        return AC_REAL(sendmsg)(fd, &msg, MSG_NOSIGNAL);
    }
    return AC_REAL(writev)(fd, iov, iovcnt);
}

AC_EXPORT ssize_t send(int fd, const void *buf, size_t len, int flags)
{
    if (ac_fd_maybe_reclaimed(fd) && ac_fd_reclaimed(fd))
        flags |= MSG_NOSIGNAL;
    return AC_REAL(send)(fd, buf, len, flags);
}

AC_EXPORT ssize_t sendto(int fd, const void *buf, size_t len, int flags, __CONST_SOCKADDR_ARG addr,
                         socklen_t addr_len)
{
    if (ac_fd_maybe_reclaimed(fd) && ac_fd_reclaimed(fd))
        flags |= MSG_NOSIGNAL;
    return AC_REAL(sendto)(fd, buf, len, flags, addr.__sockaddr__, addr_len);
}

AC_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    if (ac_fd_maybe_reclaimed(fd) && ac_fd_reclaimed(fd))
        flags |= MSG_NOSIGNAL;
    return AC_REAL(sendmsg)(fd, msg, flags);
}
