/*
 * When a half-closed connection counts as idle: the rule the library and the daemon share.
 *
 * The grace runs from the connection's last activity after the FIN, not from the FIN alone, so a
 * reply still being written to a peer that half-closed (a legal TCP conversation) is never cut;
 * TCP_INFO sees sends by every process that shares the socket. Reading is activity too: while
 * the peer's request still sits unread, a program that keeps taking it, however slowly, is never
 * cut (that would lose the rest). Only one that has taken none of it for ten graces counts as
 * never going to. What it has taken (TCP_INFO's bytes received less FIONREAD's unread ones) is
 * compared from one look to the next.
 */
#include "core.h"

#include <sys/socket.h>

bool ac_took_data(const struct ac_tcp_snapshot *s, int unread, uint32_t *taken, bool *known)
{
    /* Nothing arrives after the FIN, so this changes only when the program reads (on a kernel
     * without tcpi_bytes_received it is minus the unread count, which changes alike). Two looks
     * differ by less than FIONREAD's int can hold: the low 32 bits tell them apart. */
    uint32_t now = (uint32_t)s->bytes_received - (uint32_t)(unread > 0 ? unread : 0);
    bool took = *known && now != *taken;
    *taken = now;
    *known = true;
    return took;
}

uint64_t ac_busy_for(const struct ac_tcp_snapshot *s, int unread, uint64_t since_fin_ms,
                     uint64_t since_read_ms, uint32_t grace_ms)
{
    uint64_t grace = grace_ms;
    if (s->unacked > 0 || s->notsent_bytes > 0)
        return grace > 0 ? grace : 1; /* data in flight: look again later */
    if (since_read_ms > since_fin_ms)
        since_read_ms = since_fin_ms;
    if (unread > 0) {
        /* The peer's words wait for ten graces after the program last took any; one that has
         * not read them by then never will. Until then, look again at doubling intervals (a
         * grace apart while it reads). */
        uint64_t hold = AC_UNREAD_GRACES * grace;
        if (since_read_ms < hold) {
            uint64_t next = since_read_ms > grace ? since_read_ms : grace;
            return next < hold - since_read_ms ? (next > 0 ? next : 1) : hold - since_read_ms;
        }
        return 0;
    }
    uint64_t since_sent = s->last_data_sent_ms;
    if (since_sent < since_fin_ms && since_sent < grace)
        return grace - since_sent; /* sent after the FIN was seen, and recently */
    if (since_read_ms < since_fin_ms && since_read_ms < grace)
        return grace - since_read_ms; /* took the last of the request lately: may yet answer */
    return 0;
}

/* Sized for the sanitizers' view of recv, which takes the whole length as written: with
 * MSG_TRUNC the kernel discards TCP data without copying any. */
static char sink[64 * 1024];

void ac_drain_unread(int fd)
{
    for (int i = 0; i < 128; i++)
        if (ac_core_recv(fd, sink, sizeof sink, MSG_DONTWAIT | MSG_TRUNC) <= 0)
            break;
}
