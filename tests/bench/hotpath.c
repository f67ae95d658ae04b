/*
 * The hot path: one-byte round trips between two ends of a connection, in one thread, through
 * the calls the shim wraps. The data is always there when the reading call is made, so every
 * wrapped call is one the shim has nothing to do with, and the run is deterministic enough for
 * callgrind to count instructions exactly.
 *
 *   hotpath wall  KIND TRANSPORT ITERS [idle-thread|private-thread|bare-thread]
 *                                             nanoseconds per round trip (after a warm-up; the
 *                                             fastest of five bursts of ITERS/5), optionally
 *                                             with a second thread that only sleeps, as the
 *                                             shim's timer does: the cost of any second thread,
 *                                             and of each of its two parts:
 *     idle-thread     a pthread: glibc takes its multi-threaded path in every cancellable call,
 *                     and the kernel sees a descriptor table shared by two threads
 *     private-thread  a pthread that gives itself a descriptor table of its own
 *                     (close_range CLOSE_RANGE_UNSHARE): glibc's part alone
 *     bare-thread     a thread glibc never hears of (raw clone, no TLS of its own, nothing but
 *                     system calls), sharing the descriptor table: the kernel's part alone
 *   hotpath count TRANSPORT ITERS1 ITERS2     every KIND, measured_loop twice each, for
 *                                             callgrind --dump-after=measured_loop
 *
 * KIND: read (write/read), recv (send/recv), readv (write/readv), recvmsg (send/recvmsg),
 *       poll (write/poll/read), epoll (write/epoll_wait/read)
 * TRANSPORT: unix (socketpair) or tcp (loopback, TCP_NODELAY)
 *
 * A round trip is a→b then b→a. Wrapped calls per round trip: 4 for the read kinds, 6 for poll
 * and epoll (the write, the wait and the read on each side).
 */
#include "bench.h"

#include <linux/close_range.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#define BURSTS 5 /* timed bursts per wall-clock run */

enum kind { K_READ, K_RECV, K_READV, K_RECVMSG, K_POLL, K_EPOLL, K_COUNT };
static const char *const kind_names[K_COUNT] = {"read",    "recv", "readv",
                                                "recvmsg", "poll", "epoll"};

struct rig {
    enum kind kind;
    int a, b;     /* the two ends */
    int epa, epb; /* epoll instances watching a and b (epoll kind only) */
};

static void fail(const char *what)
{
    bench_die(1, "%s", what);
}

/* One direction of a round trip: send a byte from `from`, receive it at `to`. */
static inline void hop(const struct rig *r, int from, int to, int ep)
{
    char c = 'x';
    switch (r->kind) {
    case K_READ:
        if (write(from, &c, 1) != 1 || read(to, &c, 1) != 1)
            fail("write/read");
        break;
    case K_RECV:
        if (send(from, &c, 1, 0) != 1 || recv(to, &c, 1, 0) != 1)
            fail("send/recv");
        break;
    case K_READV: {
        struct iovec iov = {.iov_base = &c, .iov_len = 1};
        if (write(from, &c, 1) != 1 || readv(to, &iov, 1) != 1)
            fail("write/readv");
        break;
    }
    case K_RECVMSG: {
        struct iovec iov = {.iov_base = &c, .iov_len = 1};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
        if (send(from, &c, 1, 0) != 1 || recvmsg(to, &msg, 0) != 1)
            fail("send/recvmsg");
        break;
    }
    case K_POLL: {
        struct pollfd p = {.fd = to, .events = POLLIN};
        if (write(from, &c, 1) != 1 || poll(&p, 1, -1) != 1 || read(to, &c, 1) != 1)
            fail("write/poll/read");
        break;
    }
    case K_EPOLL: {
        struct epoll_event ev;
        if (write(from, &c, 1) != 1 || epoll_wait(ep, &ev, 1, -1) != 1 || read(to, &c, 1) != 1)
            fail("write/epoll_wait/read");
        break;
    }
    case K_COUNT:
        break;
    }
}

static void run_loop(const struct rig *r, long iters)
{
    for (long i = 0; i < iters; i++) {
        hop(r, r->a, r->b, r->epb);
        hop(r, r->b, r->a, r->epa);
    }
}

/* callgrind counts what runs inside this function (--toggle-collect) and writes one profile
 * each time it returns (--dump-after): kept out of line, and distinct from the warm-up, which
 * calls run_loop directly so that lazy binding of each libc symbol happens before it. */
__attribute__((noinline)) void measured_loop(const struct rig *r, long iters);
__attribute__((noinline)) void measured_loop(const struct rig *r, long iters)
{
    run_loop(r, iters);
    __asm__ volatile("" ::: "memory"); /* not a tail call: the dump must follow the loop */
}

static int second_ready; /* set by the second thread once it is what it should be */

static void *sleep_forever(void *unused)
{
    __atomic_store_n(&second_ready, 1, __ATOMIC_RELEASE);
    for (;;)
        pause();
    return unused;
}

static void *sleep_forever_private(void *unused)
{
    if (syscall(SYS_close_range, 0u, ~0u, CLOSE_RANGE_UNSHARE) != 0)
        bench_die(1, "close_range(CLOSE_RANGE_UNSHARE)");
    return sleep_forever(unused);
}

/* Runs on a stack of its own with the main thread's TLS pointer: it may make system calls
 * (glibc's syscall() touches errno only on failure) and nothing else. */
static int bare_sleep_forever(void *unused)
{
    (void)unused;
    __atomic_store_n(&second_ready, 1, __ATOMIC_RELEASE);
    for (;;)
        syscall(SYS_pause);
    return 0;
}

static void start_second_thread(const char *what)
{
    pthread_t t;
    if (strcmp(what, "idle-thread") == 0) {
        if (pthread_create(&t, NULL, sleep_forever, NULL) != 0)
            fail("pthread_create");
    } else if (strcmp(what, "private-thread") == 0) {
        if (pthread_create(&t, NULL, sleep_forever_private, NULL) != 0)
            fail("pthread_create");
    } else if (strcmp(what, "bare-thread") == 0) {
        size_t size = 64 * 1024;
        char *stack = mmap(NULL, size, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        sigset_t all, saved;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &saved); /* it inherits a mask that lets nothing in */
        int flags =
            CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
        if (stack == MAP_FAILED || clone(bare_sleep_forever, stack + size, flags, NULL) < 0)
            fail("clone");
        pthread_sigmask(SIG_SETMASK, &saved, NULL);
    } else {
        bench_die(0, "not a kind of second thread: %s", what);
    }
    while (!__atomic_load_n(&second_ready, __ATOMIC_ACQUIRE))
        sched_yield();
}

static void tcp_pair(int sv[2])
{
    int port, one = 1;
    int l = bench_listen(&port);
    if (l < 0)
        fail("listen");
    sv[0] = bench_connect("127.0.0.1", port);
    if (sv[0] < 0)
        fail("connect");
    for (;;) {
        sv[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
        if (sv[1] >= 0)
            break;
        bench_sleep_ms(1);
    }
    /* Blocking, like the other end, and no Nagle delay on one-byte writes. */
    setsockopt(sv[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    close(l);
}

static int watch(int fd)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
        fail("epoll");
    return ep;
}

static void rig_open(struct rig *r, enum kind kind, const char *transport)
{
    int sv[2];
    memset(r, 0, sizeof *r);
    r->kind = kind;
    if (strcmp(transport, "unix") == 0) {
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
            fail("socketpair");
    } else if (strcmp(transport, "tcp") == 0) {
        tcp_pair(sv);
    } else {
        bench_die(0, "transport must be unix or tcp, not %s", transport);
    }
    r->a = sv[0];
    r->b = sv[1];
    r->epa = r->epb = -1;
    if (kind == K_EPOLL) {
        r->epa = watch(r->a);
        r->epb = watch(r->b);
    }
}

static void rig_close(struct rig *r)
{
    close(r->a);
    close(r->b);
    if (r->epa >= 0) {
        close(r->epa);
        close(r->epb);
    }
}

static enum kind kind_of(const char *name)
{
    for (int k = 0; k < K_COUNT; k++)
        if (strcmp(name, kind_names[k]) == 0)
            return (enum kind)k;
    bench_die(0, "unknown kind %s", name);
}

static long count_arg(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v <= 0)
        bench_die(0, "not a positive count: %s", s);
    return v;
}

int main(int argc, char **argv)
{
    struct rig r;
    if ((argc == 5 || argc == 6) && strcmp(argv[1], "wall") == 0) {
        long iters = count_arg(argv[4]);
        if (argc == 6)
            start_second_thread(argv[5]);
        rig_open(&r, kind_of(argv[2]), argv[3]);
        run_loop(&r, iters / 10 + 100); /* warm caches, branch predictors, lazy binding */
        /* The fastest of a few bursts: on a shared machine a burst that another process
         * interrupted is slower, never faster, so the minimum is the least disturbed figure. */
        long burst = iters / BURSTS > 0 ? iters / BURSTS : 1;
        uint64_t best = UINT64_MAX;
        for (int b = 0; b < BURSTS; b++) {
            uint64_t t0 = bench_now_ns();
            measured_loop(&r, burst);
            uint64_t t = bench_now_ns() - t0;
            best = t < best ? t : best;
        }
        rig_close(&r);
        printf("%.1f\n", (double)best / (double)burst);
        return 0;
    }
    if (argc == 5 && strcmp(argv[1], "count") == 0) {
        long n1 = count_arg(argv[3]), n2 = count_arg(argv[4]);
        for (int k = 0; k < K_COUNT; k++) {
            rig_open(&r, (enum kind)k, argv[2]);
            run_loop(&r, 20);
            measured_loop(&r, n1);
            measured_loop(&r, n2);
            rig_close(&r);
        }
        return 0;
    }
    fprintf(stderr, "usage: hotpath wall KIND TRANSPORT ITERS "
                    "[idle-thread|private-thread|bare-thread]\n"
                    "       hotpath count TRANSPORT ITERS1 ITERS2\n");
    return 2;
}
