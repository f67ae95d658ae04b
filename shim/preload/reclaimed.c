/*
 * What a reclaimed number answers. It holds a placeholder (act.c), a dead AF_UNIX socket, which
 * would answer for itself: AF_UNIX addresses, SOCK_SEQPACKET, the library's own process as the
 * peer. Here the calls a program makes about its connection answer instead as a TCP connection
 * does once it has ended (the peer's FIN, our shutdown, the last ACK), as measured on loopback
 * (t_reclaimed_answers): no peer, its family's socket type and protocol, TCP_INFO in TCP_CLOSE,
 * options that can be set. The README lists what still differs.
 *
 * The wrappers come here only for a number whose state byte says RECLAIMED (or, above the table,
 * while any high number is reclaimed); the tracker has the last word, under its lock.
 */
#include "autoclose.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif
#define TCP_STATE_CLOSE 7 /* tcpi_state once the connection has ended */

/* The family of the connection `fd` held, if it is a number the library reclaimed that still
 * holds what the library put there (a close no wrapper saw may have given the number to another
 * file); else 0, and the real call answers. */
static int family_of(int fd)
{
    int saved_errno = errno;
    sigset_t saved;
    ac_tracker_lock(&saved);
    int family = ac_placeholder_held(fd) ? ac_tracker_family(fd) : 0;
    ac_tracker_unlock(&saved);
    errno = saved_errno;
    return family;
}

static int fail(int err)
{
    errno = err;
    return -1;
}

/* The kernel's checks of the caller's length, before any option's own. */
static int length_error(const void *val, const unsigned *len)
{
    if (len == NULL)
        return EFAULT;
    if ((int)*len < 0)
        return EINVAL;
    return *len > 0 && val == NULL ? EFAULT : 0;
}

/* Copies out as much of the answer as the caller has room for, as the kernel does, and says how
 * much that was. */
static int answer(void *val, unsigned *len, const void *data, unsigned size)
{
    int err = length_error(val, len);
    if (err)
        return fail(err);
    if (*len > size)
        *len = size;
    memcpy(val, data, *len);
    return 0;
}

static int answer_int(void *val, unsigned *len, int v)
{
    return answer(val, len, &v, sizeof v);
}

/* An option the closed socket has no answer for: `err`, once the length has passed. */
static int refuse(const unsigned *len, int err)
{
    if (len == NULL)
        return fail(EFAULT);
    return fail((int)*len < 0 ? EINVAL : err);
}

static int socket_option(int fd, int family, int name, void *val, unsigned *len)
{
    switch (name) {
    case SO_TYPE:
        return answer_int(val, len, SOCK_STREAM);
    case SO_DOMAIN:
        return answer_int(val, len, family);
    case SO_PROTOCOL:
        return answer_int(val, len, IPPROTO_TCP);
    case SO_PEERCRED: {
        /* A TCP socket has no peer credentials: the kernel's "nobody". */
        const struct ucred none = {.pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1};
        return answer(val, len, &none, sizeof none);
    }
    case SO_PEERGROUPS:
    case SO_PEERPIDFD:
        return refuse(len, ENODATA);
    case SO_PEERSEC:
        return refuse(len, ENOPROTOOPT);
    }
    /* The rest (SO_ERROR, SO_ACCEPTCONN, SO_KEEPALIVE, SO_LINGER, timeouts...) are a socket's
     * defaults, the placeholder's as much as a closed connection's. */
    return AC_REAL(getsockopt)(fd, SOL_SOCKET, name, val, len);
}

int ac_reclaimed_getsockopt(int fd, int level, int name, void *val, unsigned *len)
{
    int family = family_of(fd);
    if (family == 0)
        return AC_REAL(getsockopt)(fd, level, name, val, len);
    switch (level) {
    case SOL_SOCKET:
        return socket_option(fd, family, name, val, len);
    case IPPROTO_TCP:
        if (name == TCP_INFO) {
            struct tcp_info info;
            memset(&info, 0, sizeof info);
            info.tcpi_state = TCP_STATE_CLOSE;
            return answer(val, len, &info, sizeof info);
        }
        return answer_int(val, len, 0);
    case IPPROTO_IPV6:
        if (family != AF_INET6)
            return fail(EOPNOTSUPP);
        return answer_int(val, len, 0);
    case IPPROTO_IP:
        return answer_int(val, len, 0);
    }
    return fail(family == AF_INET6 ? ENOPROTOOPT : EOPNOTSUPP);
}

int ac_reclaimed_setsockopt(int fd, int level, int name, const void *val, unsigned len)
{
    int family = family_of(fd);
    if (family == 0)
        return AC_REAL(setsockopt)(fd, level, name, val, len);
    /* Accepted, and nothing to apply it to: the connection has ended (and the placeholder, which
     * other numbers share, must not change). */
    if (level == SOL_SOCKET || level == IPPROTO_TCP || level == IPPROTO_IP ||
        (level == IPPROTO_IPV6 && family == AF_INET6))
        return 0;
    return fail(ENOPROTOOPT);
}

int ac_reclaimed_getsockname(int fd, struct sockaddr *addr, unsigned *len)
{
    int family = family_of(fd);
    if (family == 0)
        return AC_REAL(getsockname)(fd, addr, len);
    /* The family's unspecified address and port 0: the connection's own are not kept. */
    struct sockaddr_storage any;
    memset(&any, 0, sizeof any);
    any.ss_family = (sa_family_t)family;
    unsigned size = family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (answer(addr, len, &any, size) != 0)
        return -1;
    *len = size; /* the address's whole length, however much of it fitted */
    return 0;
}

int ac_reclaimed_getpeername(int fd, struct sockaddr *addr, unsigned *len)
{
    if (family_of(fd) == 0)
        return AC_REAL(getpeername)(fd, addr, len);
    return fail(ENOTCONN);
}

bool ac_reclaimed_set_nonblock(int fd, bool nonblock)
{
    int saved_errno = errno;
    sigset_t saved;
    ac_tracker_lock(&saved);
    bool held = ac_placeholder_held(fd);
    if (held)
        ac_placeholder_switch(fd, nonblock);
    ac_tracker_unlock(&saved);
    errno = saved_errno;
    return held;
}

/* The socket's registrations went with its last reference when the number was released. A DEL
 * of one answers as the socket would have; an ADD, or a MOD of one (which the socket, still
 * registered, would have answered with its events), registers a dead socket of the number's own,
 * never a shared placeholder: a registration lasts as long as the description it names, and the
 * placeholder's outlives the program's close of the number. Once the number has its own, every
 * answer is the kernel's. */
int ac_reclaimed_epoll_ctl(int epfd, int op, int fd, struct epoll_event *passed,
                           struct epoll_event *event)
{
    if (op != EPOLL_CTL_ADD) {
        int r = AC_REAL(epoll_ctl)(epfd, op, fd, passed);
        if (r == 0 || errno != ENOENT)
            return r;
    }
    enum { REAL, DELETED, ADD, NO_MEMORY } outcome = REAL;
    int err = errno; /* the real MOD's or DEL's ENOENT */
    sigset_t saved;
    ac_tracker_lock(&saved);
    if (!ac_placeholder_held(fd) || (op != EPOLL_CTL_ADD && ac_tracker_own(fd)))
        outcome = REAL;
    else if (op == EPOLL_CTL_DEL)
        outcome = DELETED;
    else
        outcome = ac_placeholder_own(fd) ? ADD : NO_MEMORY;
    ac_tracker_unlock(&saved);
    switch (outcome) {
    case DELETED:
        errno = err;
        return 0;
    case ADD:
        /* As the program asked: the dead socket reports what a closed one would, no FIN. */
        return AC_REAL(epoll_ctl)(epfd, EPOLL_CTL_ADD, fd, event);
    case NO_MEMORY:
        return fail(ENOMEM);
    case REAL:
        break;
    }
    if (op == EPOLL_CTL_ADD)
        return AC_REAL(epoll_ctl)(epfd, op, fd, passed);
    return fail(err);
}
