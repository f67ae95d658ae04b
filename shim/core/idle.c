/*
 * When a half-closed connection counts as idle: the rule the library and the daemon share.
 *
 * The grace runs from the connection's last activity after the FIN, not from the FIN alone, so a
 * reply still being written to a peer that half-closed (a legal TCP conversation) is never cut;
 * TCP_INFO sees sends by every process that shares the socket. While the peer's last request
 * still sits unread (found before the program got to it) the program may yet answer it: cutting
 * then would lose it, so that holds the connection for up to ten graces.
 */
#include "core.h"

uint64_t ac_busy_for(const struct ac_tcp_snapshot *s, int unread, uint64_t since_fin_ms,
                     uint32_t grace_ms)
{
    uint64_t grace = grace_ms;
    if (s->unacked > 0 || s->notsent_bytes > 0)
        return grace > 0 ? grace : 1; /* data in flight: look again later */
    if (unread > 0) {
        /* The peer's last words wait for ten graces; a server that has not read them by then
         * never will. Until then, look again at doubling intervals. */
        uint64_t hold = AC_UNREAD_GRACES * grace;
        if (since_fin_ms < hold) {
            uint64_t next = since_fin_ms > grace ? since_fin_ms : grace;
            return next < hold - since_fin_ms ? (next > 0 ? next : 1) : hold - since_fin_ms;
        }
        return 0;
    }
    uint64_t since_sent = s->last_data_sent_ms;
    if (since_sent < since_fin_ms && since_sent < grace)
        return grace - since_sent; /* sent after the FIN was seen, and recently */
    return 0;
}
