/* Helpers shared by the benchmark programs; see bench.h. */
#include "bench.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

void bench_die(int with_errno, const char *fmt, ...)
{
    int saved = errno;
    va_list ap;
    fprintf(stderr, "%s: ", program_invocation_short_name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (with_errno)
        fprintf(stderr, ": %s", strerror(saved));
    fputc('\n', stderr);
    exit(1);
}

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void bench_sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

long bench_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    return (long)rl.rlim_cur;
}

int bench_listen(int *port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sin;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    /* The kernel caps the backlog at net.core.somaxconn; asking for more takes whatever it is. */
    if (bind(fd, (struct sockaddr *)&sin, sizeof sin) != 0 || listen(fd, 65535) != 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &len) != 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(sin.sin_port);
    return fd;
}

int bench_connect(const char *src, int port)
{
    struct sockaddr_in from = {.sin_family = AF_INET}, to = {.sin_family = AF_INET};
    int one = 1;
    if (inet_pton(AF_INET, src, &from.sin_addr) != 1)
        return -1;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons((uint16_t)port);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    /* Without IP_BIND_ADDRESS_NO_PORT, bind would reserve a port for every destination and the
     * range would run out at ~28,000 connections per source address however many servers. */
    if (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&from, sizeof from) != 0 ||
        connect(fd, (struct sockaddr *)&to, sizeof to) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

long bench_count_tcp(int port, uint32_t state_mask)
{
    int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (nl < 0)
        return -1;
    struct {
        struct nlmsghdr nlh;
        struct inet_diag_req_v2 req;
    } msg = {
        .nlh = {.nlmsg_len = sizeof msg,
                .nlmsg_type = SOCK_DIAG_BY_FAMILY,
                .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP},
        .req = {.sdiag_family = AF_INET, .sdiag_protocol = IPPROTO_TCP, .idiag_states = state_mask},
    };
    long count = 0;
    if (send(nl, &msg, sizeof msg, 0) != (ssize_t)sizeof msg) {
        close(nl);
        return -1;
    }
    static char buf[65536] __attribute__((aligned(8)));
    uint16_t want = htons((uint16_t)port);
    for (;;) {
        ssize_t n = recv(nl, buf, sizeof buf, 0);
        if (n <= 0) {
            count = -1;
            break;
        }
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
             h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_type == NLMSG_DONE) {
                close(nl);
                return count;
            }
            if (h->nlmsg_type == NLMSG_ERROR) {
                close(nl);
                return -1;
            }
            const struct inet_diag_msg *d = NLMSG_DATA(h);
            count += d->id.idiag_sport == want;
        }
    }
    close(nl);
    return count;
}

/* The value after `key` in a "Key:   123 kB" style file, or -1. */
static long field_of(const char *path, const char *key)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return -1;
    char line[256];
    size_t klen = strlen(key);
    long v = -1;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, key, klen) == 0) {
            v = strtol(line + klen, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

long bench_anon_kb(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/smaps_rollup", (int)pid);
    long kb = field_of(path, "Anonymous:");
    if (kb >= 0)
        return kb;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    return field_of(path, "RssAnon:");
}

/* CPU time of one thread: schedstat's first field (nanoseconds on the CPU), else utime + stime
 * from stat (clock ticks, a hundredth of a second: too coarse for short windows). */
static uint64_t task_cpu_ns(pid_t pid, int tid)
{
    char path[96];
    snprintf(path, sizeof path, "/proc/%d/task/%d/schedstat", (int)pid, tid);
    FILE *f = fopen(path, "re");
    unsigned long long ns;
    if (f != NULL) {
        int ok = fscanf(f, "%llu", &ns) == 1;
        fclose(f);
        if (ok)
            return ns;
    }
    snprintf(path, sizeof path, "/proc/%d/task/%d/stat", (int)pid, tid);
    f = fopen(path, "re");
    if (f == NULL)
        return 0;
    char line[1024];
    uint64_t total = 0;
    if (fgets(line, sizeof line, f) != NULL) {
        char *p = strrchr(line, ')'); /* the command name may hold spaces */
        unsigned long long ut, st;
        if (p != NULL &&
            sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) == 2)
            total = (ut + st) * (1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK));
    }
    fclose(f);
    return total;
}

int bench_proc_sample(pid_t pid, struct bench_proc_sample *out)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (d == NULL)
        return -1;
    memset(out, 0, sizeof *out);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int tid = atoi(e->d_name);
        if (tid <= 0)
            continue;
        char status[96];
        snprintf(status, sizeof status, "/proc/%d/task/%d/status", (int)pid, tid);
        long vol = field_of(status, "voluntary_ctxt_switches:");
        long invol = field_of(status, "nonvoluntary_ctxt_switches:");
        out->cpu_ns += task_cpu_ns(pid, tid);
        out->vol_switches += vol > 0 ? (uint64_t)vol : 0;
        out->invol_switches += invol > 0 ? (uint64_t)invol : 0;
        out->tasks++;
    }
    closedir(d);
    return 0;
}
