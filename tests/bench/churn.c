/*
 * Connection churn: short connections one after another, each ending with the client's FIN,
 * served in one of three common styles. A server that reads each EOF and closes at once should
 * pay next to nothing for the shim: the read only notes the EOF and the close clears the note
 * (notes.c), neither with a system call.
 *
 *   churn server --style blocking|epoll|thread --port-file F --count N [--cpu C]
 *   churn client --port P --count N [--src A.B.C.D] [--lockstep] [--cpu C]
 *
 * server: listens on 127.0.0.1 (a port the kernel picks, written to F once listening), serves N
 *   connections and exits, printing "conns=N cpu_ns=X", X the process's CPU time at exit
 *   (CLOCK_PROCESS_CPUTIME_ID: every thread, the shim's timer and the ended threads too).
 *     blocking  one thread: accept, read the request up to its "\n", write the reply, read until
 *               0 (the client's FIN), close
 *     epoll     a non-blocking listener and connections in one level-triggered epoll set, each
 *               registered for EPOLLIN only; the same protocol, closing on read() == 0
 *     thread    accept in the main thread, a detached thread per connection handling it as
 *               blocking does
 * client: N times: connect from A.B.C.D (default 127.0.0.1), write "ping\n", read "pong\n",
 *   close. Closing first puts TIME_WAIT on the client's side, where each source address has a
 *   port range of its own. Prints "conns=N wall_ns=T".
 *   --lockstep  shuts down its side instead and closes once the server has closed its own: no
 *               two connections overlap, so the server makes the same system calls on every
 *               run (an epoll server's waits otherwise depend on how its events bunch up)
 * --cpu C: the process runs on CPU C only (its threads too, the shim's timer among them).
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REQUEST  "ping\n"
#define REPLY    "pong\n"
#define EVENTS   64
#define MAX_FDS  65536
#define BUF_SIZE 64

static long target;          /* connections to serve */
static atomic_long finished; /* served and closed (the thread style's completions) */

static __attribute__((noreturn)) void usage(void)
{
    bench_die(0, "usage: churn server --style blocking|epoll|thread --port-file F --count N "
                 "[--cpu C]\n"
                 "       churn client --port P --count N [--src A.B.C.D] [--lockstep] [--cpu C]");
}

static void pin(const char *cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(atoi(cpu), &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0)
        bench_die(1, "CPU %s", cpu);
}

static __attribute__((noreturn)) void report_and_exit(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    printf("conns=%ld cpu_ns=%llu\n", target,
           (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec);
    fflush(stdout);
    exit(0);
}

static void write_all(int fd, const char *s, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, s, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            bench_die(1, "write");
        s += n;
        len -= (size_t)n;
    }
}

/* The blocking protocol on one connection, through to its close. */
static void serve_blocking(int fd)
{
    char buf[BUF_SIZE];
    bool asked = false;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            bench_die(1, "read");
        if (n == 0) {
            if (!asked)
                bench_die(0, "EOF before the request");
            break;
        }
        if (!asked && memchr(buf, '\n', (size_t)n) != NULL) {
            write_all(fd, REPLY, sizeof REPLY - 1);
            asked = true;
        }
    }
    close(fd);
}

static void set_blocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0)
        bench_die(1, "fcntl");
}

static int accept_one(int l, int flags)
{
    for (;;) {
        int fd = accept4(l, NULL, NULL, flags | SOCK_CLOEXEC);
        if (fd >= 0)
            return fd;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return -1;
        if (errno != EINTR && errno != ECONNABORTED)
            bench_die(1, "accept4");
    }
}

static void run_blocking(int l)
{
    set_blocking(l);
    for (long i = 0; i < target; i++)
        serve_blocking(accept_one(l, 0));
    report_and_exit();
}

static void *serve_thread(void *arg)
{
    serve_blocking((int)(intptr_t)arg);
    /* The last to finish ends the process, so the main thread needs no wake-up of its own. */
    if (atomic_fetch_add(&finished, 1) + 1 == target)
        report_and_exit();
    return NULL;
}

static void run_thread(int l)
{
    set_blocking(l);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (long i = 0; i < target; i++) {
        pthread_t t;
        int fd = accept_one(l, 0);
        int err = pthread_create(&t, &attr, serve_thread, (void *)(intptr_t)fd);
        if (err != 0) {
            errno = err;
            bench_die(1, "pthread_create");
        }
    }
    pthread_attr_destroy(&attr);
    for (;;)
        pause();
}

static bool replied[MAX_FDS];

static void add(int ep, int fd)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
        bench_die(1, "epoll_ctl");
}

/* One read per readiness report: level-triggered, the set reports again what is left. */
static void on_readable(int fd, long *closed)
{
    char buf[BUF_SIZE];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return;
        bench_die(1, "read");
    }
    if (n == 0) {
        if (!replied[fd])
            bench_die(0, "EOF before the request");
        close(fd); /* takes it out of the set too */
        ++*closed;
        return;
    }
    if (!replied[fd] && memchr(buf, '\n', (size_t)n) != NULL) {
        write_all(fd, REPLY, sizeof REPLY - 1);
        replied[fd] = true;
    }
}

static void run_epoll(int l)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        bench_die(1, "epoll_create1");
    add(ep, l);
    long closed = 0;
    struct epoll_event ev[EVENTS];
    while (closed < target) {
        int n = epoll_wait(ep, ev, EVENTS, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            bench_die(1, "epoll_wait");
        for (int i = 0; i < n; i++) {
            int fd = ev[i].data.fd;
            if (fd != l) {
                on_readable(fd, &closed);
                continue;
            }
            /* One accept per report, as with reads: the listener stays ready while more wait. */
            int c = accept_one(l, SOCK_NONBLOCK);
            if (c < 0)
                continue;
            if (c >= MAX_FDS)
                bench_die(0, "descriptor %d beyond the table", c);
            replied[c] = false;
            add(ep, c);
        }
    }
    report_and_exit();
}

/* Written whole, then renamed: the reader never sees half a number. */
static void write_port_file(const char *path, int port)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "we");
    if (f == NULL || fprintf(f, "%d\n", port) < 0 || fclose(f) != 0 || rename(tmp, path) != 0)
        bench_die(1, "%s", path);
}

static int server(int argc, char **argv)
{
    const char *style = NULL, *port_file = NULL;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--style") == 0)
            style = argv[i + 1];
        else if (strcmp(argv[i], "--port-file") == 0)
            port_file = argv[i + 1];
        else if (strcmp(argv[i], "--count") == 0)
            target = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--cpu") == 0)
            pin(argv[i + 1]);
        else
            usage();
    }
    if (style == NULL || port_file == NULL || target <= 0)
        usage();
    /* Never outlives the harness (or strace) if the client fails and nobody comes. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int port;
    int l = bench_listen(&port);
    if (l < 0)
        bench_die(1, "listen");
    write_port_file(port_file, port);
    if (strcmp(style, "blocking") == 0)
        run_blocking(l);
    else if (strcmp(style, "epoll") == 0)
        run_epoll(l);
    else if (strcmp(style, "thread") == 0)
        run_thread(l);
    usage();
}

static int client(int argc, char **argv)
{
    const char *src = "127.0.0.1";
    long count = 0;
    int port = 0;
    bool lockstep = false;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--lockstep") == 0)
            lockstep = true;
        else if (i + 1 == argc)
            usage();
        else if (strcmp(argv[i], "--port") == 0)
            port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--count") == 0)
            count = atol(argv[++i]);
        else if (strcmp(argv[i], "--src") == 0)
            src = argv[++i];
        else if (strcmp(argv[i], "--cpu") == 0)
            pin(argv[++i]);
        else
            usage();
    }
    if (port <= 0 || count <= 0)
        usage();
    uint64_t start = bench_now_ns();
    for (long i = 0; i < count; i++) {
        int fd = bench_connect(src, port);
        if (fd < 0)
            bench_die(1, "connect from %s (connection %ld)", src, i);
        write_all(fd, REQUEST, sizeof REQUEST - 1);
        char buf[BUF_SIZE];
        size_t got = 0;
        while (got < sizeof REPLY - 1) {
            ssize_t n = read(fd, buf + got, sizeof REPLY - 1 - got);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                bench_die(n < 0, "reply (connection %ld)", i);
            got += (size_t)n;
        }
        if (memcmp(buf, REPLY, sizeof REPLY - 1) != 0)
            bench_die(0, "unexpected reply");
        if (lockstep) {
            if (shutdown(fd, SHUT_WR) != 0)
                bench_die(1, "shutdown");
            ssize_t n;
            while ((n = read(fd, buf, sizeof buf)) != 0)
                if (n < 0 && errno != EINTR)
                    bench_die(1, "read (connection %ld)", i);
        }
        close(fd);
    }
    printf("conns=%ld wall_ns=%llu\n", count, (unsigned long long)(bench_now_ns() - start));
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "server") == 0)
        return server(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "client") == 0)
        return client(argc, argv);
    usage();
}
