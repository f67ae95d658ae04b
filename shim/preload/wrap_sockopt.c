/*
 * getsockopt, setsockopt, getsockname, getpeername: what a program asks of its connection. A
 * reclaimed number holds the placeholder, a dead AF_UNIX socket, which would answer for itself;
 * reclaimed.c answers instead as the TCP connection would now that it has ended. Any other number
 * costs one load and compare of its state byte.
 */
#include "autoclose.h"

#include <sys/socket.h>

AC_EXPORT int getsockopt(int fd, int level, int name, void *restrict val, socklen_t *restrict len)
{
    if (AC_UNLIKELY(ac_fd_maybe_reclaimed(fd)))
        return ac_reclaimed_getsockopt(fd, level, name, val, len);
    return AC_REAL(getsockopt)(fd, level, name, val, len);
}

AC_EXPORT int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
    if (AC_UNLIKELY(ac_fd_maybe_reclaimed(fd)))
        return ac_reclaimed_setsockopt(fd, level, name, val, len);
    return AC_REAL(setsockopt)(fd, level, name, val, len);
}

AC_EXPORT int getsockname(int fd, AC_SOCKADDR_ARG addr, socklen_t *restrict len)
{
    if (AC_UNLIKELY(ac_fd_maybe_reclaimed(fd)))
        return ac_reclaimed_getsockname(fd, AC_SOCKADDR(addr), len);
    return AC_REAL(getsockname)(fd, AC_SOCKADDR(addr), len);
}

AC_EXPORT int getpeername(int fd, AC_SOCKADDR_ARG addr, socklen_t *restrict len)
{
    if (AC_UNLIKELY(ac_fd_maybe_reclaimed(fd)))
        return ac_reclaimed_getpeername(fd, AC_SOCKADDR(addr), len);
    return AC_REAL(getpeername)(fd, AC_SOCKADDR(addr), len);
}
