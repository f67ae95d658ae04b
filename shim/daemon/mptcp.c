/*
 * MPTCP connections, which the daemon sees but does not reclaim. A connection that is MPTCP on
 * both ends (Go 1.24 listens with MPTCP by default) is an MPTCP socket to the process; when the
 * peer closes, that socket goes to CLOSE_WAIT while its TCP subflows stay established, so the
 * TCP dump never lists it, and neither TCP_INFO (the first subflow's) nor the library's idle rule
 * describes it. One sock_diag dump per interval (mptcp_diag) looks for such sockets on the
 * watched ports until it finds some, then says once what to do: turn MPTCP off in the server.
 */
#include "autoclosed.h"

#include <errno.h>
#include <netinet/in.h>

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif

/* After a failed dump (no mptcp_diag in this kernel: each request would make it look for the
 * module again), the next try waits this long. */
#define RETRY_MS (5 * 60 * 1000)

static bool count(const struct ac_diag_socket *s, void *ctx)
{
    if (ac_portset_has(&ad_opt.ports, s->local_port) || ac_portset_has(&ad_opt.ports, s->peer_port))
        ++*(size_t *)ctx;
    return true;
}

static void restart(void *ctx)
{
    *(size_t *)ctx = 0;
}

void ad_mptcp_look(void)
{
    static bool said;
    static uint64_t retry_at;
    if (said || ac_now_ms() < retry_at)
        return;
    size_t n = 0;
    int fatal, error = 0;
    struct ac_diag_query q = {.states = 1u << AC_TCP_CLOSE_WAIT,
                              .visit = count,
                              .restart = restart,
                              .ctx = &n,
                              .protocol = IPPROTO_MPTCP,
                              .error = &error};
    if (!ac_diag_tcp(&q, &fatal)) {
        retry_at = ac_now_ms() + RETRY_MS;
        return;
    }
    if (n == 0)
        return;
    said = true;
    ad_log(AC_LOG_ERROR,
           "%zu MPTCP connection%s in CLOSE_WAIT%s (of any process) %s not reclaimed: autoclosed "
           "reclaims TCP "
           "only; run the server with MPTCP off, e.g. GODEBUG=multipathtcp=0 for Go (said once)",
           n, n == 1 ? "" : "s", ad_opt.ports.all ? "" : " on the watched ports",
           n == 1 ? "is" : "are");
}
