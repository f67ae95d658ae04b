/*
 * The kernel's list of TCP sockets in given states, through sock_diag as `ss` asks for it: no
 * privilege needed, every socket of the host (of this network namespace), with its inode,
 * cookie, ports and owner's uid. The library's sweep and the daemon both start here.
 */
#include "core.h"

#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/rtnetlink.h>
#include <linux/tcp.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>

static void to_socket(const struct nlmsghdr *h, struct ac_diag_socket *s)
{
    const struct inet_diag_msg *d = NLMSG_DATA(h);
    s->ino = d->idiag_inode;
    s->cookie = (uint64_t)d->id.idiag_cookie[0] | (uint64_t)d->id.idiag_cookie[1] << 32;
    s->state = d->idiag_state;
    s->family = d->idiag_family;
    s->local_port = ntohs(d->id.idiag_sport);
    s->peer_port = ntohs(d->id.idiag_dport);
    s->uid = d->idiag_uid;
    memcpy(s->local_addr, d->id.idiag_src, sizeof s->local_addr);
    memcpy(s->peer_addr, d->id.idiag_dst, sizeof s->peer_addr);
    s->has_info = false;
    /* INET_DIAG_INFO, when asked for: the kernel's struct tcp_info, as TCP_INFO reads it. */
    int len = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof *d));
    for (const struct rtattr *a = (const struct rtattr *)(d + 1); RTA_OK(a, len);
         a = RTA_NEXT(a, len)) {
        if (a->rta_type != INET_DIAG_INFO)
            continue;
        struct tcp_info info;
        memset(&info, 0, sizeof info);
        size_t n = RTA_PAYLOAD(a) < sizeof info ? RTA_PAYLOAD(a) : sizeof info;
        memcpy(&info, RTA_DATA(a), n);
        if (n >= offsetof(struct tcp_info, tcpi_last_ack_recv) + sizeof info.tcpi_last_ack_recv) {
            s->has_info = true;
            s->last_ack_recv_ms = info.tcpi_last_ack_recv;
        }
    }
}

/* Sends one dump request and hands every socket it returns to `visit`. */
static bool dump(const void *request, size_t len, const struct ac_diag_query *q, int *fatal)
{
    int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (nl < 0) {
        /* Out of descriptors or memory passes; anything else (no such family, not permitted)
         * will not. */
        if (errno != EMFILE && errno != ENFILE && errno != ENOMEM && errno != ENOBUFS)
            *fatal = errno;
        return false;
    }
    bool ok = send(nl, request, len, 0) == (ssize_t)len;
    /* On the stack, whose pages every sweep touches anyway: a static buffer's pages would become
     * resident only at the first FIN, and count as memory per connection. The kernel sizes a
     * dump's messages to the reader's buffer, never below NLMSG_GOODSIZE (at most 8 KiB), so
     * this size only means more calls than 32 KiB would; MSG_TRUNC makes sure nothing is cut. */
    char buf[8192] __attribute__((aligned(8)));
    bool done = false;
    while (ok && !done) {
        ssize_t n = ac_core_recv(nl, buf, sizeof buf, MSG_TRUNC);
        if (n <= 0 || (size_t)n > sizeof buf) {
            ok = false;
            break;
        }
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
             h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_type == NLMSG_DONE) {
                done = true;
                break;
            }
            if (h->nlmsg_type == NLMSG_ERROR) {
                ok = false;
                break;
            }
            struct ac_diag_socket s;
            to_socket(h, &s);
            if (s.ino != 0 && !q->visit(&s, q->ctx))
                ok = false;
        }
    }
    ac_core_close(nl);
    return ok;
}

/* The old TCPDIAG_GETSOCK request covers both families in one walk of the kernel's tables (a
 * walk costs in proportion to every TCP socket of the host); SOCK_DIAG_BY_FAMILY, once per
 * family, is the fallback. */
bool ac_diag_tcp(const struct ac_diag_query *q, int *fatal_errno)
{
    *fatal_errno = 0;
    uint8_t ext = q->want_info ? 1u << (INET_DIAG_INFO - 1) : 0;
    struct {
        struct nlmsghdr nlh;
        struct inet_diag_req req;
    } both = {
        .nlh = {.nlmsg_len = sizeof both,
                .nlmsg_type = TCPDIAG_GETSOCK,
                .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP},
        .req = {.idiag_states = q->states, .idiag_ext = ext},
    };
    if (dump(&both, sizeof both, q, fatal_errno))
        return true;
    if (*fatal_errno)
        return false;
    if (q->restart)
        q->restart(q->ctx); /* what the failed dump handed over is to be forgotten */
    bool any = false;
    static const int families[] = {AF_INET, AF_INET6};
    for (size_t i = 0; i < 2; i++) {
        struct {
            struct nlmsghdr nlh;
            struct inet_diag_req_v2 req;
        } one = {
            .nlh = {.nlmsg_len = sizeof one,
                    .nlmsg_type = SOCK_DIAG_BY_FAMILY,
                    .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP},
            .req = {.sdiag_family = (uint8_t)families[i],
                    .sdiag_protocol = IPPROTO_TCP,
                    .idiag_states = q->states,
                    .idiag_ext = ext},
        };
        any |= dump(&one, sizeof one, q, fatal_errno);
    }
    return any;
}
