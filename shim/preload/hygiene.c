/*
 * TCP hygiene the field notes ask for, applied to connections the program accepts or connects,
 * without touching the program:
 *   AUTOCLOSE_KEEPALIVE       SO_KEEPALIVE + TCP_KEEPIDLE/KEEPINTVL/KEEPCNT: a peer that
 *                             vanished (power cut, cable) is detected instead of the connection
 *                             sitting ESTABLISHED forever
 *   AUTOCLOSE_USER_TIMEOUT_MS TCP_USER_TIMEOUT: bounds how long sent data may go unacknowledged
 *                             (a zero-window or dead peer)
 *   AUTOCLOSE_FIN_WAIT2_S     TCP_LINGER2: bounds how long a connection the program closed may
 *                             wait in FIN_WAIT_2 for a peer that never sends its FIN. Set when
 *                             the connection appears, so it is in place before any close.
 *   AUTOCLOSE_REUSEADDR       SO_REUSEADDR before bind: a restarted server binds at once while
 *                             its old connections sit in TIME_WAIT
 * Whatever flags the socket was created with (SOCK_NONBLOCK, SOCK_CLOEXEC), IPv4 and IPv6: the
 * kernel is asked what the socket is, not the program's creation call.
 */
#include "autoclose.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

bool ac_is_tcp_socket(int fd)
{
    int domain = 0, protocol = 0;
    socklen_t len = sizeof domain;
    if (AC_REAL(getsockopt)(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0 ||
        (domain != AF_INET && domain != AF_INET6))
        return false;
    len = sizeof protocol;
    return AC_REAL(getsockopt)(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &len) == 0 &&
           protocol == IPPROTO_TCP;
}

static bool set_int(int fd, int level, int name, int value)
{
    return AC_REAL(setsockopt)(fd, level, name, &value, sizeof value) == 0;
}

static void report_failure(int fd, const char *what)
{
    char line[120];
    struct ac_text t;
    ac_text_init(&t, line, sizeof line);
    ac_text_str(&t, "cannot set ");
    ac_text_str(&t, what);
    ac_text_str(&t, " on fd=");
    ac_text_int(&t, fd);
    ac_stat_add(AC_STAT_ERRORS);
    ac_log(AC_LOG_ERROR, line);
}

void ac_hygiene_on_connection(int fd)
{
    int saved_errno = errno;
    if (!ac_is_tcp_socket(fd))
        goto out;
    const struct ac_keepalive *k = &ac_cfg.keepalive;
    if (k->on) {
        if (set_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1) &&
            set_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, k->idle_s) &&
            set_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, k->interval_s) &&
            set_int(fd, IPPROTO_TCP, TCP_KEEPCNT, k->count))
            ac_stat_add(AC_STAT_KEEPALIVE_CONFIGURED);
        else
            report_failure(fd, "keepalive");
    }
    if (ac_cfg.user_timeout_ms &&
        !set_int(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, (int)ac_cfg.user_timeout_ms))
        report_failure(fd, "TCP_USER_TIMEOUT");
    if (ac_cfg.fin_wait2_s && !set_int(fd, IPPROTO_TCP, TCP_LINGER2, ac_cfg.fin_wait2_s))
        report_failure(fd, "TCP_LINGER2");
out:
    errno = saved_errno;
}

void ac_hygiene_before_bind(int fd)
{
    int saved_errno = errno;
    if (ac_is_tcp_socket(fd) && !set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1))
        report_failure(fd, "SO_REUSEADDR");
    errno = saved_errno;
}
