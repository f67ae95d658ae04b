/*
 * What the kernel says about a TCP connection, read with TCP_INFO without consuming any data.
 * Uses the kernel's own struct (linux/tcp.h): glibc's copy stops before the fields that show a
 * reply still in flight. A kernel older than a field leaves it zero.
 */
#include "core.h"

#include <linux/tcp.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

bool ac_tcp_snapshot(int fd, struct ac_tcp_snapshot *out)
{
    struct tcp_info info;
    memset(&info, 0, sizeof info);
    socklen_t len = sizeof info;
    /* Fails with ENOTSOCK, EOPNOTSUPP or ENOPROTOOPT for anything that is not TCP. */
    if (ac_core_getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0 || len < 1)
        return false;
    out->state = info.tcpi_state;
    out->unacked = info.tcpi_unacked;
    out->notsent_bytes = info.tcpi_notsent_bytes;
    out->last_data_sent_ms = info.tcpi_last_data_sent;
    out->bytes_received = info.tcpi_bytes_received;
    out->last_ack_recv_ms = info.tcpi_last_ack_recv;
    return true;
}

int ac_tcp_state(int fd)
{
    struct ac_tcp_snapshot s;
    return ac_tcp_snapshot(fd, &s) ? s.state : -1;
}
