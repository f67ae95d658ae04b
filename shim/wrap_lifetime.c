/*
 * Descriptor lifetime: the application's own close (or dup2/dup3 over the number, close_range,
 * closefrom, fclose) withdraws any pending action before the real call, under the tracker lock,
 * so the timer cannot act on the number in between. accept and accept4 purge an entry left
 * behind when a number was closed by a path no wrapper sees and is now a new connection.
 */
#include "autoclose.h"

#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

AC_EXPORT int close(int fd)
{
    if (AC_UNLIKELY(ac_fd_state_hint(fd) != AC_FD_NONE))
        ac_fd_closing(fd);
    return AC_REAL(close)(fd);
}

AC_EXPORT int dup2(int oldfd, int newfd)
{
    if (AC_UNLIKELY(ac_fd_state_hint(newfd) != AC_FD_NONE) && oldfd != newfd)
        ac_fd_closing(newfd);
    return AC_REAL(dup2)(oldfd, newfd);
}

AC_EXPORT int dup3(int oldfd, int newfd, int flags)
{
    if (AC_UNLIKELY(ac_fd_state_hint(newfd) != AC_FD_NONE) && oldfd != newfd)
        ac_fd_closing(newfd);
    return AC_REAL(dup3)(oldfd, newfd, flags);
}

AC_EXPORT int close_range(unsigned int first, unsigned int last, int flags)
{
    /* With CLOSE_RANGE_CLOEXEC nothing closes now; an exec replaces the whole process. */
    if (!(flags & CLOSE_RANGE_CLOEXEC))
        ac_fd_range_closing(first, last);
    return AC_REAL(close_range)(first, last, flags);
}

AC_EXPORT void closefrom(int lowfd)
{
    if (lowfd >= 0)
        ac_fd_range_closing((unsigned)lowfd, ~0u);
    AC_REAL(closefrom)(lowfd);
}

AC_EXPORT int fclose(FILE *stream)
{
    if (stream != NULL && AC_UNLIKELY(ac_fd_state_hint(fileno(stream)) != AC_FD_NONE))
        ac_fd_closing(fileno(stream));
    return AC_REAL(fclose)(stream);
}

/* A connection appeared under `fd`. */
static inline void connection_appeared(int fd)
{
    if (fd < 0)
        return;
    if (AC_UNLIKELY(ac_fd_state_hint(fd) != AC_FD_NONE))
        ac_fd_closing(fd); /* a stale entry: the old socket was closed where no wrapper sees */
    ac_fd_born(fd);
    ac_sweep_wanted(fd);
    if (AC_UNLIKELY(ac_hygiene_wanted()))
        ac_hygiene_on_connection(fd);
}

AC_EXPORT int accept(int fd, __SOCKADDR_ARG addr, socklen_t *restrict addr_len)
{
    int s = AC_REAL(accept)(fd, addr.__sockaddr__, addr_len);
    connection_appeared(s);
    return s;
}

AC_EXPORT int accept4(int fd, __SOCKADDR_ARG addr, socklen_t *restrict addr_len, int flags)
{
    int s = AC_REAL(accept4)(fd, addr.__sockaddr__, addr_len, flags);
    connection_appeared(s);
    return s;
}

AC_EXPORT int bind(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len)
{
    if (AC_UNLIKELY(ac_cfg.reuseaddr))
        ac_hygiene_before_bind(fd);
    return AC_REAL(bind)(fd, addr.__sockaddr__, len);
}

AC_EXPORT int connect(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len)
{
    int r = AC_REAL(connect)(fd, addr.__sockaddr__, len);
    if (r == 0 || errno == EINPROGRESS) {
        int saved_errno = errno;
        connection_appeared(fd);
        errno = saved_errno;
    }
    return r;
}
