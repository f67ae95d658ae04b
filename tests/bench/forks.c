/*
 * What a fork costs a process that has had a TCP connection (so the library's thread runs in
 * it): fork, _exit in the child at once, waitpid; the child holds no connection, so the library
 * starts nothing in it.
 *
 *   forks --count N [--idle-thread]   prints "fork_us=MEAN" over N forks; --idle-thread first
 *                                     starts a thread of the program's own that only sleeps (the
 *                                     control: what any second thread costs a fork)
 */
#include "bench.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void *sleeper(void *unused)
{
    for (;;)
        pause();
    return unused;
}

int main(int argc, char **argv)
{
    if (argc < 3 || strcmp(argv[1], "--count") != 0 ||
        (argc == 4 && strcmp(argv[3], "--idle-thread") != 0) || argc > 4)
        bench_die(0, "usage: forks --count N [--idle-thread]");
    long n = atol(argv[2]);
    pthread_t t;
    if (argc == 4 && pthread_create(&t, NULL, sleeper, NULL) != 0)
        bench_die(0, "forks: cannot start the idle thread");
    int port, l = bench_listen(&port);
    int c = bench_connect("127.0.0.1", port);
    int s = -1;
    for (int i = 0; i < 1000 && s < 0; i++) {
        s = accept(l, NULL, NULL);
        if (s < 0)
            bench_sleep_ms(1);
    }
    if (l < 0 || c < 0 || s < 0)
        bench_die(1, "forks: no TCP connection");
    close(s);
    close(c);
    close(l);
    uint64_t start = bench_now_ns();
    for (long i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(0);
        int status;
        if (pid < 0 || waitpid(pid, &status, 0) != pid)
            bench_die(1, "forks: fork or waitpid");
    }
    printf("fork_us=%.1f\n", (double)(bench_now_ns() - start) / 1e3 / (double)n);
    return 0;
}
