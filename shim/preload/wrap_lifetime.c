/*
 * Descriptor lifetime. The program's own close (or dup2/dup3 over the number, close_range,
 * closefrom, fclose) clears what the shim knows of the number: a noted EOF with one
 * compare-and-swap, anything judged under the tracker lock, before the real call, so the timer
 * cannot act on the number in between (lifetime.c says how the close mark makes that sure).
 * accept, accept4 and connect stamp each new connection as born here and start the timer; dup,
 * F_DUPFD and SCM_RIGHTS mark a socket as held twice, so the shim never shuts it down; every close
 * clears the number's stamp, so the next file under it is not taken for a connection born here.
 * F_SETFL on a reclaimed number changes that number's O_NONBLOCK alone (reclaimed.c). listen and
 * connect tell the sweep which ports this process's connections use (ports.c).
 */
#include "autoclose.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* close is a cancellation point: the mark ends however the call ends (AC_CLOSE_MARK). */
AC_EXPORT int close(int fd)
{
    AC_CLOSE_MARK(fd);
    ac_fd_shared(fd); /* the stamp goes with the file */
    if (AC_UNLIKELY(ac_fd_state_for_close(fd) != AC_FD_NONE))
        ac_fd_closing(fd);
    return AC_REAL(close)(fd);
}

/* dup2 and dup3 close whatever `newfd` held; the caller has marked it. */
static inline void replacing(int oldfd, int newfd)
{
    if (AC_UNLIKELY(ac_fd_state_for_close(newfd) != AC_FD_NONE) && oldfd != newfd)
        ac_fd_closing(newfd);
    if (oldfd != newfd) {
        ac_fd_shared(oldfd);
        ac_fd_shared(newfd);
        ac_read_copy(oldfd, newfd);
    }
}

AC_EXPORT int dup2(int oldfd, int newfd)
{
    AC_CLOSE_MARK(newfd);
    replacing(oldfd, newfd);
    return AC_REAL(dup2)(oldfd, newfd);
}

AC_EXPORT int dup3(int oldfd, int newfd, int flags)
{
    AC_CLOSE_MARK(newfd);
    replacing(oldfd, newfd);
    return AC_REAL(dup3)(oldfd, newfd, flags);
}

AC_EXPORT int dup(int oldfd)
{
    int r = AC_REAL(dup)(oldfd);
    if (r >= 0) {
        ac_fd_shared(oldfd);
        ac_fd_shared(r); /* its last file may have been closed where no wrapper sees */
        ac_read_copy(oldfd, r);
    }
    return r;
}

static inline void after_fcntl(int fd, int cmd, int r)
{
    if ((cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) && r >= 0) {
        ac_fd_shared(fd);
        ac_fd_shared(r);
        ac_read_copy(fd, r);
    }
}

/* F_SETFL on a reclaimed number: its O_NONBLOCK, not the placeholder's that other numbers share
 * (reclaimed.c). True when that was done (the call succeeded). */
static inline bool setfl_reclaimed(int fd, int cmd, void *arg)
{
    return AC_UNLIKELY(cmd == F_SETFL) && AC_UNLIKELY(ac_fd_maybe_reclaimed(fd)) &&
           ac_reclaimed_set_nonblock(fd, ((int)(intptr_t)arg & O_NONBLOCK) != 0);
}

/* Every fcntl argument is one word (an int, a pointer): pass it on as it came. */
AC_EXPORT int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    if (setfl_reclaimed(fd, cmd, arg))
        return 0;
    int r = AC_REAL(fcntl)(fd, cmd, arg);
    after_fcntl(fd, cmd, r);
    return r;
}

AC_EXPORT_AS_LIBC int fcntl64(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    if (setfl_reclaimed(fd, cmd, arg))
        return 0;
    int r = AC_REAL(fcntl64)(fd, cmd, arg);
    after_fcntl(fd, cmd, r);
    return r;
}

AC_EXPORT_AS_LIBC int close_range(unsigned int first, unsigned int last, int flags)
{
    /* With CLOSE_RANGE_CLOEXEC nothing closes now; an exec replaces the whole process. */
    if (!(flags & CLOSE_RANGE_CLOEXEC))
        ac_fd_range_closing(first, last);
    return AC_REAL(close_range)(first, last, flags);
}

AC_EXPORT_AS_LIBC void closefrom(int lowfd)
{
    if (lowfd >= 0)
        ac_fd_range_closing((unsigned)lowfd, ~0u);
    AC_REAL(closefrom)(lowfd);
}

AC_EXPORT int fclose(FILE *stream)
{
    /* fileno sets errno (EBADF) for a stream with no descriptor (fmemopen, open_memstream),
     * which a successful fclose must not leave behind. */
    int saved = errno;
    int fd = stream != NULL ? fileno(stream) : -1;
    errno = saved;
    AC_CLOSE_MARK(fd);
    ac_fd_shared(ac_marked_fd_); /* the stamp goes with the file */
    if (AC_UNLIKELY(ac_fd_state_for_close(ac_marked_fd_) != AC_FD_NONE))
        ac_fd_closing(ac_marked_fd_);
    return AC_REAL(fclose)(stream);
}

/* Sockets that can never be TCP are marked so as they are made (no system call: the program
 * says what it asks for), so that accept and connect on them never start the timer: a program
 * with no TCP connection gets no thread and no placeholder. */
static inline bool may_be_tcp(int domain, int type)
{
    return (domain == AF_INET || domain == AF_INET6) && (type & 0xf) == SOCK_STREAM;
}

/* A new socket appeared under `fd`: whatever the number held before was closed where no wrapper
 * sees (the state is stale); forgets it. */
static inline void number_reused(int fd)
{
    if (AC_UNLIKELY(ac_fd_state_hint(fd) != AC_FD_NONE))
        ac_fd_closing(fd);
}

static inline void mark_not_tcp(int fd)
{
    if ((unsigned)fd < AC_FDTAB_SIZE)
        __atomic_store_n(&ac_fdtab[fd], AC_FD_NOT_TCP, __ATOMIC_RELEASE);
}

AC_EXPORT int socket(int domain, int type, int protocol)
{
    int s = AC_REAL(socket)(domain, type, protocol);
    if (s >= 0) {
        number_reused(s);
        if (!may_be_tcp(domain, type))
            mark_not_tcp(s);
    }
    return s;
}

/* A TCP connection (or one that may be: the judge asks the kernel later) appeared under `fd`. */
static inline void connection_appeared(int fd)
{
    number_reused(fd);
    ac_fd_born(fd);
    ac_read_forget(fd); /* a read of the number's last connection is not this one's */
    ac_timer_start_here();
    if (AC_UNLIKELY(ac_hygiene_wanted()))
        ac_hygiene_on_connection(fd);
}

/* Whether the connection accepted on `listener` as `s` may be TCP: the address the program asked
 * for says so; without one, the listener's mark, else (only until the timer runs) the kernel,
 * once per listener. */
static __attribute__((noinline, cold)) bool accepted_unknown(int listener, int s)
{
    if (ac_fd_state_hint(listener) == AC_FD_NOT_TCP)
        return false;
    if (__atomic_load_n(&ac_timer_running_hint, __ATOMIC_RELAXED) ||
        !__atomic_load_n(&ac_active, __ATOMIC_RELAXED) || ac_timer_locked_down())
        return true; /* no timer to start (or none may be): nothing to ask the kernel */
    int saved_errno = errno;
    bool tcp = ac_is_tcp_socket(s);
    uint8_t none = AC_FD_NONE;
    if (!tcp && (unsigned)listener < AC_FDTAB_SIZE)
        __atomic_compare_exchange_n(&ac_fdtab[listener], &none, AC_FD_NOT_TCP, false,
                                    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
    errno = saved_errno;
    return tcp;
}

/* `room`: the length of the address buffer the caller gave (the kernel writes back the whole
 * address's length, whatever fitted). */
static inline void accepted(int listener, int s, const struct sockaddr *addr, socklen_t room)
{
    if (s < 0)
        return;
    bool tcp = addr != NULL && room >= sizeof(sa_family_t)
                   ? addr->sa_family == AF_INET || addr->sa_family == AF_INET6
                   : accepted_unknown(listener, s);
    if (tcp) {
        connection_appeared(s);
    } else {
        number_reused(s);
        mark_not_tcp(s);
    }
}

AC_EXPORT int accept(int fd, AC_SOCKADDR_ARG addr, socklen_t *restrict addr_len)
{
    socklen_t room = addr_len != NULL ? *addr_len : 0;
    int s = AC_REAL(accept)(fd, AC_SOCKADDR(addr), addr_len);
    accepted(fd, s, AC_SOCKADDR(addr), room);
    return s;
}

AC_EXPORT int accept4(int fd, AC_SOCKADDR_ARG addr, socklen_t *restrict addr_len, int flags)
{
    socklen_t room = addr_len != NULL ? *addr_len : 0;
    int s = AC_REAL(accept4)(fd, AC_SOCKADDR(addr), addr_len, flags);
    accepted(fd, s, AC_SOCKADDR(addr), room);
    return s;
}

AC_EXPORT int bind(int fd, AC_CONST_SOCKADDR_ARG addr, socklen_t len)
{
    if (AC_UNLIKELY(ac_cfg.reuseaddr))
        ac_hygiene_before_bind(fd);
    return AC_REAL(bind)(fd, AC_SOCKADDR(addr), len);
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

AC_EXPORT int connect(int fd, AC_CONST_SOCKADDR_ARG addr, socklen_t len)
{
    int r = AC_REAL(connect)(fd, AC_SOCKADDR(addr), len);
    /* A UDP socket made through socket() is marked; one made elsewhere is judged later. */
    const struct sockaddr *to = AC_SOCKADDR(addr);
    /* Under way too when a signal cut the wait short (EINTR: the kernel goes on), or when a
     * repeated call finds it so (EALREADY, EISCONN). */
    if ((r == 0 || errno == EINPROGRESS || errno == EINTR || errno == EALREADY ||
         errno == EISCONN) &&
        to != NULL && len >= sizeof(sa_family_t) &&
        (to->sa_family == AF_INET || to->sa_family == AF_INET6) &&
        ac_fd_state_hint(fd) != AC_FD_NOT_TCP) {
        int saved_errno = errno;
        ac_ports_connecting(AC_SOCKADDR(addr), len);
        connection_appeared(fd);
        errno = saved_errno;
    }
    return r;
}

/* Descriptors passed to another process with SCM_RIGHTS are held there too. */
AC_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    if (AC_UNLIKELY(msg != NULL && msg->msg_controllen != 0))
        ac_rights_shared(msg);
    return AC_REAL(sendmsg)(fd, msg, flags);
}

/* The kernel sends at most UIO_MAXIOV messages of the vector: no more are looked at. */
AC_EXPORT int sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, ac_mmsg_flags flags)
{
    for (unsigned int i = 0; vec != NULL && i < vlen && i < UIO_MAXIOV; i++)
        if (AC_UNLIKELY(vec[i].msg_hdr.msg_controllen != 0))
            ac_rights_shared(&vec[i].msg_hdr);
    return AC_REAL(sendmmsg)(fd, vec, vlen, flags);
}
