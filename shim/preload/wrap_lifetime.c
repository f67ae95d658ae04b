/*
 * Descriptor lifetime. The program's own close (or dup2/dup3 over the number, close_range,
 * closefrom, fclose) clears what the shim knows of the number: a noted EOF with one
 * compare-and-swap, anything judged under the tracker lock, before the real call, so the timer
 * cannot act on the number in between (lifetime.c says how the close mark makes that sure).
 * accept, accept4 and connect stamp each new connection as born here and start the timer; dup,
 * F_DUPFD and SCM_RIGHTS mark a socket as held twice, so the shim never shuts it down. listen and
 * connect tell the sweep which ports this process's connections use (ports.c).
 */
#include "autoclose.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

AC_EXPORT int close(int fd)
{
    ac_closing_begin(fd);
    if (AC_UNLIKELY(ac_fd_state_for_close(fd) != AC_FD_NONE))
        ac_fd_closing(fd);
    int r = AC_REAL(close)(fd);
    ac_closing_end(fd);
    return r;
}

/* dup2 and dup3 close whatever `newfd` held. */
static inline void replacing(int oldfd, int newfd)
{
    ac_closing_begin(newfd);
    if (AC_UNLIKELY(ac_fd_state_for_close(newfd) != AC_FD_NONE) && oldfd != newfd)
        ac_fd_closing(newfd);
    if (oldfd != newfd)
        ac_fd_shared(oldfd);
}

AC_EXPORT int dup2(int oldfd, int newfd)
{
    replacing(oldfd, newfd);
    int r = AC_REAL(dup2)(oldfd, newfd);
    ac_closing_end(newfd);
    return r;
}

AC_EXPORT int dup3(int oldfd, int newfd, int flags)
{
    replacing(oldfd, newfd);
    int r = AC_REAL(dup3)(oldfd, newfd, flags);
    ac_closing_end(newfd);
    return r;
}

AC_EXPORT int dup(int oldfd)
{
    int r = AC_REAL(dup)(oldfd);
    if (r >= 0)
        ac_fd_shared(oldfd); /* the new number is unstamped: shared too */
    return r;
}

static inline void after_fcntl(int fd, int cmd, int r)
{
    if ((cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) && r >= 0)
        ac_fd_shared(fd);
}

/* Every fcntl argument is one word (an int, a pointer): pass it on as it came. */
AC_EXPORT int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    int r = AC_REAL(fcntl)(fd, cmd, arg);
    after_fcntl(fd, cmd, r);
    return r;
}

AC_EXPORT int fcntl64(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    int r = AC_REAL(fcntl64)(fd, cmd, arg);
    after_fcntl(fd, cmd, r);
    return r;
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
    int fd = stream != NULL ? fileno(stream) : -1;
    ac_closing_begin(fd);
    if (AC_UNLIKELY(ac_fd_state_for_close(fd) != AC_FD_NONE))
        ac_fd_closing(fd);
    int r = AC_REAL(fclose)(stream);
    ac_closing_end(fd);
    return r;
}

/* A connection appeared under `fd`. */
static inline void connection_appeared(int fd)
{
    if (fd < 0)
        return;
    if (AC_UNLIKELY(ac_fd_state_hint(fd) != AC_FD_NONE))
        ac_fd_closing(fd); /* a stale entry: the old socket was closed where no wrapper sees */
    ac_fd_born(fd);
    ac_timer_start_here();
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

/* The listener's port: its connections' local port, which the sweep asks the kernel about. */
AC_EXPORT int listen(int fd, int backlog)
{
    int r = AC_REAL(listen)(fd, backlog);
    if (r == 0 && __atomic_load_n(&ac_active, __ATOMIC_RELAXED)) {
        int saved_errno = errno;
        ac_ports_listening(fd);
        errno = saved_errno;
    }
    return r;
}

AC_EXPORT int connect(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len)
{
    int r = AC_REAL(connect)(fd, addr.__sockaddr__, len);
    if (r == 0 || errno == EINPROGRESS) {
        int saved_errno = errno;
        ac_ports_connecting(addr.__sockaddr__, len);
        connection_appeared(fd);
        errno = saved_errno;
    }
    return r;
}

/* Descriptors passed to another process with SCM_RIGHTS are held there too. */
static __attribute__((noinline, cold)) void passing(const struct msghdr *msg)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c != NULL;
         c = CMSG_NXTHDR((struct msghdr *)msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const unsigned char *data = CMSG_DATA(c);
        for (size_t i = 0; i < n; i++) {
            int fd;
            __builtin_memcpy(&fd, data + i * sizeof fd, sizeof fd);
            ac_fd_shared(fd);
        }
    }
}

AC_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    if (AC_UNLIKELY(msg != NULL && msg->msg_controllen != 0))
        passing(msg);
    return AC_REAL(sendmsg)(fd, msg, flags);
}
