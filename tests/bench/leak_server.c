/*
 * A leaking epoll server at scale: it accepts everything, reads whatever arrives, and when a
 * read returns 0 (the peer's FIN) it takes the descriptor out of its epoll set and forgets it,
 * without closing it. Without the shim every such socket stays in CLOSE_WAIT for good.
 *
 *   leak_server [--expect N]
 *
 * stdout, one line each, flushed: "port P" once listening; "accepted N T" when the N-th
 * connection is accepted and "eof N T" when the N-th EOF is read (T: CLOCK_MONOTONIC in ns, the
 * clock the driver uses). Only those milestones are printed, so the server's own output costs
 * nothing per connection. Anything unexpected goes to stderr.
 */
#include "bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define EVENTS 256

static long expect;
static long accepted, eofs;

static void milestone(const char *what, long n)
{
    printf("%s %ld %llu\n", what, n, (unsigned long long)bench_now_ns());
    fflush(stdout);
}

static void accept_all(int ep, int l)
{
    for (;;) {
        int fd = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN)
                fprintf(stderr, "leak_server: accept: %s\n", strerror(errno));
            return;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
            bench_die(1, "epoll_ctl add");
        if (++accepted == expect)
            milestone("accepted", accepted);
    }
}

static void on_readable(int ep, int fd)
{
    char buf[4096];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n > 0)
            continue;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        /* EOF or a reset: forget the connection, never close it. */
        epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
        if (n == 0 && ++eofs == expect)
            milestone("eof", eofs);
        return;
    }
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--expect") == 0)
        expect = strtol(argv[2], NULL, 10);
    else if (argc != 1)
        bench_die(0, "usage: leak_server [--expect N]");
    bench_raise_nofile();
    int port;
    int l = bench_listen(&port);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.fd = l};
    if (l < 0 || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, l, &lev) != 0)
        bench_die(1, "listen");
    printf("port %d\n", port);
    fflush(stdout);

    struct epoll_event ev[EVENTS];
    for (;;) {
        int n = epoll_wait(ep, ev, EVENTS, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            bench_die(1, "epoll_wait");
        for (int i = 0; i < n; i++) {
            if (ev[i].data.fd == l)
                accept_all(ep, l);
            else
                on_readable(ep, ev[i].data.fd);
        }
    }
}
