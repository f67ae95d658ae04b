/*
 * The ports of this process's connections, so that the sweep asks the kernel about those alone
 * (a filter in its sock_diag dump) and another process's pile-up of CLOSE_WAIT costs it nothing
 * but the kernel's walk.
 *
 * A connection is this process's through a listener (its local port is the listener's) or a
 * connect (its peer port is the one connect was given). So the local port of each listener, and
 * the peer port of each connect, is kept in a bit set:
 *   - listen: one getsockname after it succeeds;
 *   - connect: read from the address the program passes, no system call;
 *   - descriptors received with SCM_RIGHTS (a listener or a connection handed over by another
 *     process): the read wrapper queues their numbers, with no system call, and the timer
 *     learns their local ports before its next sweep (a full pass over the descriptors if the
 *     queue overflowed);
 *   - descriptors the process started with (inetd's fds 0-2, systemd's listeners from fd 3):
 *     the start-up scan (sweep.c).
 * Learning a port too many only widens the filter. The filter is a few ranges (neighbouring
 * ports merged when there are many), so the kernel's test of each socket stays short.
 */
#include "autoclose.h"

#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>

#define WORDS      (65536 / 32)
#define MAX_RANGES 8 /* per side: the kernel runs the filter on every CLOSE_WAIT socket */

static uint32_t local_ports[WORDS], peer_ports[WORDS];
static unsigned generation; /* bumped whenever a port is added */

static void add(uint32_t *set, unsigned port)
{
    if (port == 0 || port > 65535)
        return;
    uint32_t bit = 1u << (port % 32);
    if (__atomic_load_n(&set[port / 32], __ATOMIC_RELAXED) & bit)
        return; /* the common case: a known port, nothing written */
    __atomic_fetch_or(&set[port / 32], bit, __ATOMIC_RELAXED);
    __atomic_add_fetch(&generation, 1, __ATOMIC_RELEASE);
}

/* The port of an IPv4 or IPv6 address: the same place in both, right after the family (the
 * kernel takes an IPv6 address of 24 bytes, without the scope, so no more is asked for). */
static unsigned port_of(const struct sockaddr *sa, socklen_t len)
{
    _Static_assert(offsetof(struct sockaddr_in, sin_port) ==
                       offsetof(struct sockaddr_in6, sin6_port),
                   "the port is where the family ends, in both");
    if (sa == NULL || len < offsetof(struct sockaddr_in, sin_port) + sizeof(in_port_t))
        return 0;
    sa_family_t family;
    in_port_t port;
    memcpy(&family, sa, sizeof family);
    memcpy(&port, (const char *)sa + offsetof(struct sockaddr_in, sin_port), sizeof port);
    return family == AF_INET || family == AF_INET6 ? ntohs(port) : 0;
}

void ac_ports_learn(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
        add(local_ports, port_of((struct sockaddr *)&ss, len));
}

void ac_ports_listening(int fd)
{
    ac_ports_learn(fd);
}

void ac_ports_connecting(const struct sockaddr *addr, unsigned len)
{
    add(peer_ports, port_of(addr, len));
}

/* Received descriptors waiting for the timer: number + 1, 0 for a free slot. */
#define QUEUE 64
static int queued[QUEUE];
static unsigned queue_next;
static bool queue_any, queue_overflow;

static void queue(int fd)
{
    unsigned i = __atomic_fetch_add(&queue_next, 1, __ATOMIC_RELAXED) % QUEUE;
    int empty = 0;
    if (!__atomic_compare_exchange_n(&queued[i], &empty, fd + 1, false, __ATOMIC_RELEASE,
                                     __ATOMIC_RELAXED))
        __atomic_store_n(&queue_overflow, true, __ATOMIC_RELEASE);
    __atomic_store_n(&queue_any, true, __ATOMIC_RELEASE);
}

void ac_ports_received(const struct msghdr *msg)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c != NULL;
         c = CMSG_NXTHDR((struct msghdr *)msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const unsigned char *data = CMSG_DATA(c);
        for (size_t i = 0; i < n; i++) {
            int fd;
            __builtin_memcpy(&fd, data + i * sizeof fd, sizeof fd);
            if (fd >= 0)
                queue(fd);
        }
    }
}

static bool learn_visit(int fd, void *ctx)
{
    (void)ctx;
    ac_ports_learn(fd);
    return true;
}

/* Timer: the received descriptors' ports. A number closed and reused meanwhile only adds a port
 * too many. */
static void learn_queued(void)
{
    if (!__atomic_exchange_n(&queue_any, false, __ATOMIC_ACQUIRE))
        return;
    for (unsigned i = 0; i < QUEUE; i++) {
        int v = __atomic_exchange_n(&queued[i], 0, __ATOMIC_ACQUIRE);
        if (v > 0)
            ac_ports_learn(v - 1);
    }
    if (__atomic_exchange_n(&queue_overflow, false, __ATOMIC_ACQUIRE))
        ac_fd_list(learn_visit, NULL);
}

/* The set's ports as at most `max` ranges: runs of ports, merged across gaps up to `gap` wide
 * (doubling until they fit). */
static size_t ranges_with_gap(const uint32_t *set, unsigned gap, struct ac_port_range *out,
                              size_t max)
{
    size_t n = 0;
    long lo = -1, hi = -1;
    for (unsigned w = 0; w < WORDS; w++) {
        uint32_t v = __atomic_load_n(&set[w], __ATOMIC_RELAXED);
        while (v) {
            long port = (long)w * 32 + __builtin_ctz(v);
            v &= v - 1;
            if (lo >= 0 && port - hi - 1 <= (long)gap) {
                hi = port;
                continue;
            }
            if (lo >= 0) {
                if (n == max)
                    return SIZE_MAX;
                out[n++] = (struct ac_port_range){(uint16_t)lo, (uint16_t)hi};
            }
            lo = hi = port;
        }
    }
    if (lo >= 0) {
        if (n == max)
            return SIZE_MAX;
        out[n++] = (struct ac_port_range){(uint16_t)lo, (uint16_t)hi};
    }
    return n;
}

static size_t ranges_of(const uint32_t *set, struct ac_port_range *out)
{
    for (unsigned gap = 0;; gap = gap * 2 + 1) {
        size_t n = ranges_with_gap(set, gap, out, MAX_RANGES);
        if (n != SIZE_MAX)
            return n; /* at a gap of 65535 every port is one range */
    }
}

size_t ac_ports_filter(const uint8_t **filter)
{
    static uint8_t program[2 * MAX_RANGES * AC_DIAG_FILTER_RANGE_BYTES];
    static size_t program_len;
    static unsigned compiled = ~0u;
    learn_queued();
    unsigned now = __atomic_load_n(&generation, __ATOMIC_ACQUIRE);
    if (now != compiled) {
        struct ac_port_range local[MAX_RANGES], peer[MAX_RANGES];
        size_t n_local = ranges_of(local_ports, local), n_peer = ranges_of(peer_ports, peer);
        program_len = ac_diag_port_filter(local, n_local, peer, n_peer, program, sizeof program);
        compiled = now;
    }
    *filter = program;
    return program_len;
}
