/*
 * A leaking epoll server at scale: it accepts everything, reads whatever arrives, and when a
 * read returns 0 (the peer's FIN) it takes the descriptor out of its epoll set and forgets it,
 * without closing it. Without the shim every such socket stays in CLOSE_WAIT for good.
 *
 *   leak_server [--expect N] [--workers K]
 *
 * With K > 1 it is a pre-forked server, as many legacy servers are: K worker processes share
 * the listening socket, each accepts exactly its share of the N connections (N/K, the first
 * N%K one more) and then stops listening. That is how a machine whose descriptor limit is below
 * N still holds N connections: no process holds more than its share.
 *
 * stdout, one line each, flushed: "port P" once listening; "workers K PID..." once the workers
 * run (K = 1: the server's own pid); then from each worker "accepted Q T" when it has accepted
 * its share Q and "eof Q T" when it has read all Q EOFs (T: CLOCK_MONOTONIC in ns, the clock
 * the driver uses). Only those milestones are printed, so the server's own output costs nothing
 * per connection. Anything unexpected goes to stderr.
 */
#include "bench.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define EVENTS      256
#define MAX_WORKERS 64

static long expect; /* this process's share; 0: no milestones, accept without end */
static long accepted, eofs;

static void milestone(const char *what, long n)
{
    printf("%s %ld %llu\n", what, n, (unsigned long long)bench_now_ns());
    fflush(stdout);
}

static void accept_all(int ep, int l)
{
    while (expect == 0 || accepted < expect) {
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
        if (++accepted == expect) {
            milestone("accepted", accepted);
            /* The share is full: the other workers take the rest. */
            if (epoll_ctl(ep, EPOLL_CTL_DEL, l, NULL) != 0)
                bench_die(1, "epoll_ctl del");
        }
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

static void usage(void)
{
    bench_die(0, "usage: leak_server [--expect N] [--workers K]");
}

static long number(const char *v)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (*v == '\0' || *end != '\0' || n < 0)
        usage();
    return n;
}

static void serve(int l) __attribute__((noreturn));
static void serve(int l)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    /* Exclusive: a connection wakes one worker, not all of them. */
    struct epoll_event lev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.fd = l};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, l, &lev) != 0)
        bench_die(1, "epoll");
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

/* The parent of a pre-forked server: starts the workers, then waits. When one worker ends, for
 * whatever reason, the others go too: the driver must never meet half a server. */
static int run_workers(int l, long total, long k)
{
    pid_t pids[MAX_WORKERS];
    for (long i = 0; i < k; i++) {
        pid_t pid = fork();
        if (pid < 0)
            bench_die(1, "fork");
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            expect = total / k + (i < total % k ? 1 : 0);
            serve(l);
        }
        pids[i] = pid;
    }
    close(l);
    printf("workers %ld", k);
    for (long i = 0; i < k; i++)
        printf(" %d", (int)pids[i]);
    printf("\n");
    fflush(stdout);
    int status = 0;
    while (wait(&status) < 0 && errno == EINTR)
        ;
    for (long i = 0; i < k; i++)
        kill(pids[i], SIGKILL);
    while (wait(NULL) > 0 || errno == EINTR)
        ;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int main(int argc, char **argv)
{
    long total = 0, k = 1;
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc)
            usage();
        if (strcmp(argv[i], "--expect") == 0)
            total = number(argv[i + 1]);
        else if (strcmp(argv[i], "--workers") == 0)
            k = number(argv[i + 1]);
        else
            usage();
    }
    if (k < 1 || k > MAX_WORKERS || (k > 1 && total < k))
        bench_die(0, "--workers must be 1 to %d, and no more than --expect", MAX_WORKERS);
    bench_raise_nofile();
    int port;
    int l = bench_listen(&port);
    if (l < 0)
        bench_die(1, "listen");
    printf("port %d\n", port);
    fflush(stdout);
    if (k > 1)
        return run_workers(l, total, k);
    printf("workers 1 %d\n", (int)getpid());
    fflush(stdout);
    expect = total;
    serve(l);
}
