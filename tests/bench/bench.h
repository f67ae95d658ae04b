/* Helpers shared by the benchmark programs (make bench): clocks, limits, sockets, kernel counts. */
#ifndef BENCH_H
#define BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Prints "name: message" (and errno's text when `with_errno`) on stderr and exits with 1. */
void bench_die(int with_errno, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

/* CLOCK_MONOTONIC in nanoseconds: the same clock in every process, so times compare across the
 * driver, its clients and the server. */
uint64_t bench_now_ns(void);
void bench_sleep_ms(long ms);

/* Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit. */
long bench_raise_nofile(void);

/* A listening TCP socket on 127.0.0.1 with a port the kernel picks, non-blocking, with the
 * largest backlog the kernel allows (a storm of connects must not overflow it). */
int bench_listen(int *port);

/* Connects to 127.0.0.1:port from `src` (dotted quad): several source addresses give several
 * ephemeral port ranges. Blocking; TCP_NODELAY set. Returns the descriptor or -1. */
int bench_connect(const char *src, int port);

/* How many IPv4 TCP sockets with local port `port` are in one of the states of `state_mask`
 * (1 << TCP_CLOSE_WAIT, ...), asked of the kernel through sock_diag (the same dump ss uses,
 * but without formatting tens of thousands of lines). -1 when sock_diag is unavailable. */
long bench_count_tcp(int port, uint32_t state_mask);

#define BENCH_TCP_ESTABLISHED 1
#define BENCH_TCP_CLOSE_WAIT  8

/* Anonymous memory of a process in KiB (smaps_rollup, else status' RssAnon); -1 on error. */
long bench_anon_kb(pid_t pid);

/* CPU time of every thread of a process in nanoseconds (schedstat, else utime + stime), and
 * its voluntary and involuntary context switches summed over its threads. */
struct bench_proc_sample {
    uint64_t cpu_ns;
    uint64_t vol_switches, invol_switches;
    unsigned tasks;
};
int bench_proc_sample(pid_t pid, struct bench_proc_sample *out);

#endif
