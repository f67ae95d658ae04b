/*
 * The judgement: is this zero-length read the peer's FIN on a TCP connection we should handle?
 *
 * Runs only after a read of more than zero bytes returned 0, so its system calls never touch
 * the hot path. Zero is not proof of EOF (a UDP datagram can be empty; a pipe or an AF_UNIX
 * socket has no FIN to answer), so the kernel has the last word: TCP_INFO must say CLOSE_WAIT.
 */
#include "autoclose.h"

#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

bool ac_identity_of(int fd, struct ac_identity *id)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode))
        return false;
    id->ino = (uint32_t)st.st_ino; /* get_next_ino(): never more than 32 bits */
    uint64_t cookie = 0;
    socklen_t len = sizeof cookie;
    if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len) != 0)
        cookie = 0; /* kernels before 4.14: the inode alone has to do */
    id->cookie = cookie;
    return true;
}

static unsigned port_of(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)ss)->sin_port);
    if (ss->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
    return 0;
}

static bool wanted_by_port_filter(int fd)
{
    if (ac_cfg.ports.all)
        return true;
    struct sockaddr_storage local, peer;
    socklen_t llen = sizeof local, plen = sizeof peer;
    if (getsockname(fd, (struct sockaddr *)&local, &llen) == 0 &&
        ac_portset_has(&ac_cfg.ports, port_of(&local)))
        return true;
    return getpeername(fd, (struct sockaddr *)&peer, &plen) == 0 &&
           ac_portset_has(&ac_cfg.ports, port_of(&peer));
}

static void log_pending(int fd)
{
    if (ac_cfg.log_level < AC_LOG_DEBUG)
        return;
    char line[160];
    struct ac_text t;
    ac_text_init(&t, line, sizeof line);
    ac_text_str(&t, "pending fd=");
    ac_text_int(&t, fd);
    ac_text_str(&t, ": peer closed its side; acting in ");
    ac_text_uint(&t, ac_cfg.grace_ms);
    ac_text_str(&t, " ms unless the application closes it");
    ac_log(AC_LOG_DEBUG, line);
}

void ac_on_eof(int fd, enum ac_found_by how)
{
    int saved_errno = errno;
    if (!__atomic_load_n(&ac_active, __ATOMIC_ACQUIRE)) {
        ac_init(); /* a wrapper can run before our constructor, from another library's */
        if (!__atomic_load_n(&ac_active, __ATOMIC_ACQUIRE))
            goto out;
    }
    ac_on_eof_of(fd, fd, how);
out:
    errno = saved_errno;
}

void ac_on_eof_of(int fd, int sock, enum ac_found_by how)
{
    /* One system call turns away the common case: a live connection (FIONREAD and readiness
     * callers meet many), or no TCP socket at all. */
    if (ac_tcp_state(sock) != AC_TCP_CLOSE_WAIT)
        return;
    /* The identity is read on both sides of a second look at the state, so the state surely
     * belongs to that socket even if another thread closes the number and a new connection
     * takes it meanwhile (cookies are never reused). */
    struct ac_identity id, again;
    if (!ac_identity_of(sock, &id) || ac_tcp_state(sock) != AC_TCP_CLOSE_WAIT)
        return;
    if (!ac_identity_of(sock, &again) || again.ino != id.ino || again.cookie != id.cookie)
        return;

    sigset_t saved;
    if (!wanted_by_port_filter(sock)) {
        /* Remembered, so that it is counted once however often it is read or swept. */
        ac_tracker_lock(&saved);
        bool fresh = ac_tracker_ignore(fd, &id);
        ac_tracker_unlock(&saved);
        if (fresh)
            ac_stat_add(AC_STAT_PORT_FILTER_SKIPPED);
        return;
    }

    uint64_t now = ac_now_ms();
    ac_tracker_lock(&saved);
    enum ac_add_result r = ac_tracker_add(fd, &id, how, now, now + ac_cfg.grace_ms);
    if (r == AC_ADD_NEW_EARLIEST)
        ac_timer_kick();
    ac_tracker_unlock(&saved);

    if (r == AC_ADD_NEW || r == AC_ADD_NEW_EARLIEST) {
        ac_stats_touch();
        log_pending(fd);
    } else if (r == AC_ADD_NO_MEMORY) {
        ac_stat_add(AC_STAT_ERRORS);
        ac_log(AC_LOG_ERROR, "out of memory: a half-closed connection is left as it is");
    }
}
