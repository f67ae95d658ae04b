/*
 * The kernel's list of TCP sockets in given states, through sock_diag as `ss` asks for it: no
 * privilege needed, every socket of the host (of this network namespace), with its inode,
 * cookie, ports and owner's uid. The library's sweep and the daemon both start here. The sweep
 * narrows it to its own process's ports with a filter the kernel runs on each socket, so that
 * another process's sockets are never copied out to it (the daemon asks for them all). The
 * daemon also asks for MPTCP sockets this way (a connection MPTCP on both ends is one to the
 * process; its TCP subflows stay established while it is half-closed).
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

/* A request: its header, the request proper (old or v2), and the filter as an attribute. */
#define REQUEST_MAX 2048
static size_t build(uint8_t *buf, uint16_t type, const void *req, size_t req_len,
                    const struct ac_diag_query *q, uint32_t seq)
{
    size_t at = NLMSG_ALIGN(NLMSG_LENGTH(req_len));
    if (at + NLA_HDRLEN + NLA_ALIGN(q->filter_len) + NLA_HDRLEN + 4 > REQUEST_MAX)
        return 0;
    memset(buf, 0, at);
    memcpy(NLMSG_DATA(buf), req, req_len);
    if (q->filter_len > 0) {
        struct nlattr a = {.nla_len = (uint16_t)(NLA_HDRLEN + q->filter_len),
                           .nla_type = INET_DIAG_REQ_BYTECODE};
        memcpy(buf + at, &a, sizeof a);
        memcpy(buf + at + NLA_HDRLEN, q->filter, q->filter_len);
        at += NLA_ALIGN(a.nla_len);
    }
    if (q->protocol > 255) {
        /* The request's own field has 8 bits: a larger protocol goes in an attribute. */
        uint32_t protocol = (uint32_t)q->protocol;
        struct nlattr a = {.nla_len = NLA_HDRLEN + sizeof protocol,
                           .nla_type = INET_DIAG_REQ_PROTOCOL};
        memcpy(buf + at, &a, sizeof a);
        memcpy(buf + at + NLA_HDRLEN, &protocol, sizeof protocol);
        at += NLA_ALIGN(a.nla_len);
    }
    struct nlmsghdr h = {.nlmsg_len = (uint32_t)at,
                         .nlmsg_type = type,
                         .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
                         .nlmsg_seq = seq};
    memcpy(buf, &h, sizeof h);
    return at;
}

static void failed_with(const struct ac_diag_query *q, int err)
{
    if (q->error)
        *q->error = err;
}

/* Sends one dump request and hands every socket it returns to `visit`. */
static bool dump(const uint8_t *request, size_t len, const struct ac_diag_query *q, int *fatal)
{
    int nl = q->via ? q->via->fd : socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (nl < 0) {
        failed_with(q, errno);
        /* Out of descriptors or memory passes; anything else (no such family, not permitted)
         * will not. */
        if (errno != EMFILE && errno != ENFILE && errno != ENOMEM && errno != ENOBUFS)
            *fatal = errno;
        return false;
    }
    uint32_t seq = ((const struct nlmsghdr *)(const void *)request)->nlmsg_seq;
    bool ok = send(nl, request, len, MSG_DONTWAIT) == (ssize_t)len;
    if (!ok)
        failed_with(q, errno);
    /* Until the kernel says the dump is over (DONE, or an error in its place), a socket kept for
     * the next dump holds the rest of this one. */
    bool ended = !ok;
    /* On the stack, whose pages every sweep touches anyway: a static buffer's pages would become
     * resident only at the first FIN, and count as memory per connection. The kernel sizes a
     * dump's messages to the reader's buffer, never below NLMSG_GOODSIZE (at most 8 KiB), so
     * this size only means more calls than 32 KiB would; MSG_TRUNC makes sure nothing is cut. */
    char buf[8192] __attribute__((aligned(8)));
    bool done = false;
    while (ok && !done) {
        /* Never blocked for long, whatever the number holds: the kernel answers a dump at once,
         * and a number the program took over (closed and reused where no wrapper saw) must not
         * hold the caller forever. */
        ssize_t n = ac_core_recv(nl, buf, sizeof buf, MSG_TRUNC | MSG_DONTWAIT);
        if (n < 0 && errno == EAGAIN && ac_core_wait_readable(nl, 2000))
            continue;
        if (n <= 0 || (size_t)n > sizeof buf) {
            failed_with(q, n < 0 ? (errno == EAGAIN ? ETIMEDOUT : errno) : n ? EMSGSIZE : EIO);
            ok = false;
            break;
        }
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
             h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_seq != seq)
                continue; /* not an answer to this request */
            if (h->nlmsg_type == NLMSG_DONE) {
                done = ended = true;
                break;
            }
            if (h->nlmsg_type == NLMSG_ERROR) {
                /* The kernel's refusal, or a failure of the dump itself. */
                const struct nlmsgerr *e = NLMSG_DATA(h);
                bool whole = h->nlmsg_len >= NLMSG_LENGTH(sizeof *e);
                failed_with(q, whole && e->error < 0 ? -e->error : EIO);
                ok = false;
                ended = true;
                break;
            }
            struct ac_diag_socket s;
            to_socket(h, &s);
            if (s.ino != 0 && !q->visit(&s, q->ctx))
                ok = false;
        }
    }
    if (q->via == NULL)
        ac_core_close(nl);
    else if (!ended)
        q->via->stale = true;
    return ok;
}

/* The old TCPDIAG_GETSOCK request covers both families in one walk of the kernel's tables (a
 * walk costs in proportion to every TCP socket of the host); SOCK_DIAG_BY_FAMILY, once per
 * family, is the fallback. Both carry the filter as an INET_DIAG_REQ_BYTECODE attribute. */
bool ac_diag_tcp(const struct ac_diag_query *q, int *fatal_errno)
{
    static uint32_t seq;
    *fatal_errno = 0;
    failed_with(q, 0);
    uint8_t ext = q->want_info ? 1u << (INET_DIAG_INFO - 1) : 0;
    uint8_t request[REQUEST_MAX] __attribute__((aligned(8)));
    size_t len;
    bool tcp = q->protocol == 0 || q->protocol == IPPROTO_TCP;
    if (tcp) {
        struct inet_diag_req both = {.idiag_states = q->states, .idiag_ext = ext};
        len = build(request, TCPDIAG_GETSOCK, &both, sizeof both, q,
                    __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED));
        if (len == 0)
            return false;
        if (dump(request, len, q, fatal_errno))
            return true;
        if (*fatal_errno || (q->via && q->via->stale))
            return false;
        if (q->restart)
            q->restart(q->ctx); /* what the failed dump handed over is to be forgotten */
    }
    bool any = false;
    static const int families[] = {AF_INET, AF_INET6};
    for (size_t i = 0; i < 2; i++) {
        struct inet_diag_req_v2 one = {.sdiag_family = (uint8_t)families[i],
                                       .sdiag_protocol = (uint8_t)(tcp ? IPPROTO_TCP : q->protocol),
                                       .idiag_states = q->states,
                                       .idiag_ext = ext};
        len = build(request, SOCK_DIAG_BY_FAMILY, &one, sizeof one, q,
                    __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED));
        if (len == 0)
            return false;
        any |= dump(request, len, q, fatal_errno);
        if (q->via && q->via->stale)
            return false;
    }
    if (any)
        failed_with(q, 0);
    return any;
}

/* One comparison of a port: the operation, then the port in the next operation's `no`. */
static size_t port_op(uint8_t *at, uint8_t code, uint16_t no, uint16_t port)
{
    struct inet_diag_bc_op op[2] = {{.code = code, .yes = sizeof op, .no = no},
                                    {.code = INET_DIAG_BC_NOP, .yes = 0, .no = port}};
    memcpy(at, op, sizeof op);
    return sizeof op;
}

/* Each range is three operations, `lo <= port`, `port <= hi`, then a jump to the end (accept),
 * which a failed comparison skips to reach the next range; a failed comparison in the last
 * range jumps past the end (reject). Every `yes` goes to the next operation, so the kernel's
 * check of the program (inet_diag_bc_audit, which walks the `yes` chain) accepts it. */
size_t ac_diag_port_filter(const struct ac_port_range *local, size_t n_local,
                           const struct ac_port_range *peer, size_t n_peer, uint8_t *out,
                           size_t cap)
{
    size_t n = n_local + n_peer, len = n * AC_DIAG_FILTER_RANGE_BYTES;
    if (n == 0 || len > cap || len > 0xfff0)
        return 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        bool is_local = i < n_local;
        const struct ac_port_range *r = is_local ? &local[i] : &peer[i - n_local];
        bool last = i + 1 == n;
        /* From each comparison: to the next range, or past the end. */
        uint16_t miss_ge = (uint16_t)(last ? len - at + 4 : AC_DIAG_FILTER_RANGE_BYTES);
        uint16_t miss_le = (uint16_t)(last ? len - at - 8 + 4 : AC_DIAG_FILTER_RANGE_BYTES - 8);
        at += port_op(out + at, is_local ? INET_DIAG_BC_S_GE : INET_DIAG_BC_D_GE, miss_ge, r->lo);
        at += port_op(out + at, is_local ? INET_DIAG_BC_S_LE : INET_DIAG_BC_D_LE, miss_le, r->hi);
        struct inet_diag_bc_op jump = {
            .code = INET_DIAG_BC_JMP, .yes = sizeof jump, .no = (uint16_t)(len - at)};
        memcpy(out + at, &jump, sizeof jump);
        at += sizeof jump;
    }
    return at;
}
