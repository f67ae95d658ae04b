/*
 * Another process's pile-up: one process, never preloaded, holding N connections in CLOSE_WAIT,
 * as a leaking server does that nobody fixed. It connects to itself N times (from several
 * 127.0.0.x source addresses), accepts each connection and closes the connecting end: the
 * accepted ends stay in CLOSE_WAIT for as long as it runs.
 *
 *   pileup --conns N
 * Prints "ready N PORT" once all N are in CLOSE_WAIT, then waits until its stdin ends (or it is
 * killed) and exits, which lets them all go.
 */
#include "bench.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PER_SOURCE 20000 /* connections per source address: within one ephemeral range */

int main(int argc, char **argv)
{
    long n = argc == 3 && strcmp(argv[1], "--conns") == 0 ? strtol(argv[2], NULL, 10) : -1;
    if (n < 1)
        bench_die(0, "usage: pileup --conns N");
    if (bench_raise_nofile() < n + 64)
        bench_die(0, "RLIMIT_NOFILE's hard limit is below %ld", n + 64);
    int port;
    int l = bench_listen(&port);
    if (l < 0)
        bench_die(1, "listen");
    for (long i = 0; i < n; i++) {
        char src[32];
        snprintf(src, sizeof src, "127.0.0.%ld", 2 + i / PER_SOURCE);
        int c = bench_connect(src, port);
        if (c < 0)
            bench_die(1, "connect %ld", i);
        int s;
        while ((s = accept(l, NULL, NULL)) < 0) {
            if (errno != EAGAIN && errno != EINTR)
                bench_die(1, "accept %ld", i);
            struct pollfd p = {.fd = l, .events = POLLIN};
            poll(&p, 1, 1000);
        }
        close(c); /* the peer's FIN: `s` is in CLOSE_WAIT, and stays */
    }
    long cw;
    for (int tries = 0; (cw = bench_count_tcp(port, 1u << BENCH_TCP_CLOSE_WAIT)) < n; tries++) {
        if (tries == 100)
            bench_die(0, "only %ld of %ld in CLOSE_WAIT", cw, n);
        bench_sleep_ms(50);
    }
    printf("ready %ld %d\n", n, port);
    fflush(stdout);
    char buf[64];
    while (read(0, buf, sizeof buf) > 0)
        ;
    return 0;
}
