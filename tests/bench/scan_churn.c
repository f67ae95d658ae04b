/*
 * What autoclosed --pid costs beside a process with many descriptors while unrelated CLOSE_WAIT
 * sockets keep appearing elsewhere on the host: each new one is looked for in the selected
 * process's descriptor table (a readlinkat per descriptor), which its scan budget bounds.
 *
 *   scan_churn --daemon AUTOCLOSED --fds N --rate R --secs S --interval-ms I [--log FILE]
 *
 * A holder process (forked, never preloaded) holds N descriptors, sockets all (UNIX socket
 * pairs: a TCP connection would add to every sock_diag dump of the host, which is another cost,
 * measured in the daemon section); the daemon is started with --pid on it (interval I, a grace
 * of a minute, --log debug to FILE: its "scan" lines are counted). This process then makes R
 * connections a second to a listener of its own and closes their connecting ends, keeping the
 * accepted ends in CLOSE_WAIT (another process's, never selected) until it exits. After one
 * second of that, the daemon's CPU time is read over S seconds: its own and that of its children
 * it has collected (the scanners that read the tables, the takers), utime + stime + cutime +
 * cstime in /proc/PID/stat.
 *
 * One line on stdout: fds=N held (fewer when RLIMIT_NOFILE allows fewer), interval_ms, secs,
 * cpu_ms, cpu_pct (of one core), scans (the daemon's scan lines over the whole run; "-" when it
 * logs none), close_wait (the unrelated sockets made).
 */
#include "bench.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t holder = -1, daemon_pid = -1;

static void cleanup(void)
{
    if (daemon_pid > 0) {
        kill(daemon_pid, SIGTERM);
        waitpid(daemon_pid, NULL, 0);
    }
    if (holder > 0) {
        kill(holder, SIGKILL);
        waitpid(holder, NULL, 0);
    }
}

/* The holder: N descriptors, then a byte on `ready`, then waits to be killed. */
static pid_t start_holder(long n, long *held)
{
    int ready[2];
    if (pipe(ready) != 0)
        bench_die(1, "pipe");
    pid_t pid = fork();
    if (pid < 0)
        bench_die(1, "fork");
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(ready[0]);
        long have = 3;
        while (have + 2 <= n) {
            int sv[2];
            if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
                bench_die(1, "socketpair after %ld", have);
            have += 2;
        }
        if (write(ready[1], &have, sizeof have) != sizeof have)
            _exit(1);
        for (;;)
            pause();
    }
    close(ready[1]);
    if (read(ready[0], held, sizeof *held) != sizeof *held)
        bench_die(0, "the holder did not start");
    close(ready[0]);
    return pid;
}

static unsigned long long cpu_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (f == NULL || fgets(buf, sizeof buf, f) == NULL)
        bench_die(1, "%s", path);
    fclose(f);
    char *p = strrchr(buf, ')');
    unsigned long long utime = 0, stime = 0, cutime = 0, cstime = 0;
    /* After the command: state is field 3; utime, stime, cutime and cstime are fields 14-17. */
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %llu %llu", &utime,
               &stime, &cutime, &cstime) != 4)
        bench_die(0, "%s: unexpected format", path);
    return utime + stime + cutime + cstime;
}

static long count_scans(const char *log)
{
    FILE *f = fopen(log, "re");
    if (f == NULL)
        return -1;
    char line[512];
    long n = 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, ": scan pid=") != NULL;
    fclose(f);
    return n;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"daemon", 1, NULL, 'd'}, {"fds", 1, NULL, 'f'},         {"rate", 1, NULL, 'r'},
        {"secs", 1, NULL, 's'},   {"interval-ms", 1, NULL, 'i'}, {"log", 1, NULL, 'l'},
        {NULL, 0, NULL, 0}};
    const char *daemon = NULL, *log = "/dev/null";
    long fds = 20000, rate = 20, secs = 10, interval_ms = 1000;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            daemon = optarg;
            break;
        case 'f':
            fds = strtol(optarg, NULL, 10);
            break;
        case 'r':
            rate = strtol(optarg, NULL, 10);
            break;
        case 's':
            secs = strtol(optarg, NULL, 10);
            break;
        case 'i':
            interval_ms = strtol(optarg, NULL, 10);
            break;
        case 'l':
            log = optarg;
            break;
        default:
            bench_die(0, "usage: scan_churn --daemon AUTOCLOSED --fds N --rate R --secs S "
                         "--interval-ms I [--log FILE]");
        }
    }
    if (daemon == NULL || fds < 8 || rate < 1 || secs < 1 || interval_ms < 1)
        bench_die(0, "usage: scan_churn --daemon AUTOCLOSED --fds N --rate R --secs S "
                     "--interval-ms I [--log FILE]");
    long limit = bench_raise_nofile();
    long need = (secs + 2) * rate + 64; /* this process's own: the churn's sockets */
    if (limit < need + 8)
        bench_die(0, "RLIMIT_NOFILE's hard limit %ld is below %ld", limit, need + 8);
    if (fds > limit - 64)
        fds = limit - 64;
    atexit(cleanup);

    long held = 0;
    holder = start_holder(fds, &held);
    int port;
    int l = bench_listen(&port);
    if (l < 0)
        bench_die(1, "listen");

    char pid_arg[24], interval_arg[24];
    snprintf(pid_arg, sizeof pid_arg, "%d", (int)holder);
    snprintf(interval_arg, sizeof interval_arg, "%ld", interval_ms);
    daemon_pid = fork();
    if (daemon_pid < 0)
        bench_die(1, "fork");
    if (daemon_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        execl(daemon, daemon, "--pid", pid_arg, "--interval-ms", interval_arg, "--grace-ms",
              "60000", "--log", "debug", "--log-file", log, (char *)NULL);
        bench_die(1, "exec %s", daemon);
    }

    /* The churn: R half-closed sockets a second, on a steady clock. */
    uint64_t gap_ns = 1000000000u / (uint64_t)rate, start = bench_now_ns(), next = start;
    uint64_t measure_from = start + 1000000000u,
             measure_to = measure_from + (uint64_t)secs * 1000000000u;
    unsigned long long t0 = 0;
    int measuring = 0;
    long made = 0;
    for (;;) {
        uint64_t now = bench_now_ns();
        if (!measuring && now >= measure_from) {
            t0 = cpu_ticks(daemon_pid);
            measuring = 1;
        }
        if (now >= measure_to)
            break;
        if (now >= next) {
            int cfd = bench_connect("127.0.0.1", port), a;
            if (cfd < 0)
                bench_die(1, "connect");
            while ((a = accept(l, NULL, NULL)) < 0) {
                if (errno != EAGAIN && errno != EINTR)
                    bench_die(1, "accept");
            }
            close(cfd); /* the peer's FIN: `a` is in CLOSE_WAIT, and stays */
            made++;
            next += gap_ns;
            continue;
        }
        uint64_t until = next < measure_to ? next : measure_to;
        if (!measuring && measure_from < until)
            until = measure_from;
        bench_sleep_ms((long)((until - now) / 1000000u) + 1);
    }
    unsigned long long t1 = cpu_ticks(daemon_pid);
    double cpu_ms = (double)(t1 - t0) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
    long scans = count_scans(log);
    char scans_text[24];
    if (scans > 0)
        snprintf(scans_text, sizeof scans_text, "%ld", scans);
    else
        strcpy(scans_text, "-");
    printf("fds=%ld interval_ms=%ld secs=%ld cpu_ms=%.0f cpu_pct=%.2f scans=%s close_wait=%ld\n",
           held, interval_ms, secs, cpu_ms, cpu_ms / (10.0 * (double)secs), scans_text, made);
    return 0;
}
