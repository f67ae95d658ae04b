/*
 * Drives the leaking epoll server (leak_server) at scale and measures it from outside.
 *
 *   scale reclaim --conns N --grace-ms G [--preload LIB] [--env NAME=VALUE]... [--log FILE]
 *                 [--mem-at-ms M] [--observe-ms O] -- SERVER [ARGS...]
 *   scale idle    --conns N --secs S [--preload LIB] [--env NAME=VALUE]... [--log FILE]
 *                 -- SERVER [ARGS...]
 *   either with   --daemon AUTOCLOSED: the server runs without the shim and the daemon is started
 *                 on its processes (--pid, the default interval, --grace-ms G); then memory and
 *                 CPU are the daemon's, and reclaim also reports its memory with the connections
 *                 healthy and with them half-closed.
 *
 * reclaim: opens N connections, closes them all at once, and times, through sock_diag, how long
 *   the server's side takes to leave CLOSE_WAIT. The server's anonymous memory is read with the
 *   N connections healthy and again M ms after the FINs (every connection found and waiting out
 *   its grace: G must exceed M). Without the shim nothing leaves CLOSE_WAIT: the run stops O ms
 *   after the grace would have ended and reports how many are left.
 * idle: opens N connections and leaves them alone; reads the server's CPU time and context
 *   switches over S seconds.
 *
 * The server may be one process or several (leak_server --workers K: a pre-forked server, each
 * worker holding its share): its "workers K PID..." line says which processes to read, and
 * memory, CPU time and context switches are summed over them.
 *
 * Results go to stdout as one line of name=value pairs. The client side runs in worker processes
 * (fork), each below the descriptor limit, each from its own 127.0.0.x source address, so
 * neither RLIMIT_NOFILE nor the ephemeral port range limits one process. Only the server gets
 * LD_PRELOAD: the measuring side must not be measured.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_ENV     16
#define MAX_WORKERS 64
#define FD_SPARE    64   /* descriptors a worker or the server needs besides its connections */
#define CLOSERS     4    /* worker processes that share the closing, at most */
#define CLOSE_SHARE 2000 /* fewer connections than this per worker are not worth another */

struct opts {
    const char *mode;
    long conns, grace_ms, mem_at_ms, observe_ms, secs;
    const char *preload, *log, *daemon;
    const char *env[MAX_ENV];
    int n_env;
    char **server_argv;
};

struct server {
    pid_t pid;
    pid_t procs[MAX_WORKERS]; /* the processes that hold the connections */
    int n_procs;
    int out;        /* its stdout */
    char buf[4096]; /* lines read but not yet consumed */
    size_t len;
};

struct worker {
    pid_t pid;
    int ctl; /* to the worker: one byte means "close now"; EOF means "exit" */
    int rep; /* from the worker */
};

static struct server srv = {.pid = -1, .out = -1};
static pid_t daemon_pid = -1;
static struct worker workers[MAX_WORKERS];
static int n_workers;

static void cleanup(void)
{
    if (daemon_pid > 0) {
        kill(daemon_pid, SIGKILL);
        waitpid(daemon_pid, NULL, 0);
        daemon_pid = -1;
    }
    if (srv.pid > 0) {
        kill(-srv.pid, SIGKILL); /* its own process group: anything it started goes too */
        waitpid(srv.pid, NULL, 0);
        srv.pid = -1;
    }
    for (int i = 0; i < n_workers; i++) {
        close(workers[i].ctl);
        kill(workers[i].pid, SIGKILL);
        waitpid(workers[i].pid, NULL, 0);
    }
    n_workers = 0;
}

static void fail(const char *what)
{
    printf("error=%s\n", what);
    fflush(stdout);
    cleanup();
    exit(1);
}

static void start_server(const struct opts *o)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        fail("pipe");
    pid_t pid = fork();
    if (pid < 0)
        fail("fork");
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlives the driver */
        dup2(p[1], STDOUT_FILENO);
        if (o->log != NULL && freopen(o->log, "a", stderr) == NULL)
            _exit(127);
        if (o->preload != NULL)
            setenv("LD_PRELOAD", o->preload, 1);
        else
            unsetenv("LD_PRELOAD");
        for (int i = 0; i < o->n_env; i++)
            putenv((char *)o->env[i]);
        execv(o->server_argv[0], o->server_argv);
        _exit(127);
    }
    close(p[1]);
    srv.pid = pid;
    srv.out = p[0];
    srv.len = 0;
}

/* Waits up to timeout_ms for a line from the server that starts with `prefix`; copies it. */
static int server_line(const char *prefix, long timeout_ms, char *line, size_t cap)
{
    uint64_t end = bench_now_ns() + (uint64_t)timeout_ms * 1000000u;
    size_t plen = strlen(prefix);
    for (;;) {
        char *nl;
        while ((nl = memchr(srv.buf, '\n', srv.len)) != NULL) {
            size_t n = (size_t)(nl - srv.buf);
            int match = n >= plen && memcmp(srv.buf, prefix, plen) == 0;
            if (match) {
                size_t c = n < cap - 1 ? n : cap - 1;
                memcpy(line, srv.buf, c);
                line[c] = '\0';
            }
            memmove(srv.buf, nl + 1, srv.len - n - 1);
            srv.len -= n + 1;
            if (match)
                return 1;
        }
        uint64_t now = bench_now_ns();
        if (now >= end || srv.len == sizeof srv.buf)
            return 0;
        struct pollfd pfd = {.fd = srv.out, .events = POLLIN};
        int r = poll(&pfd, 1, (int)((end - now) / 1000000u) + 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return 0;
        ssize_t got = read(srv.out, srv.buf + srv.len, sizeof srv.buf - srv.len);
        if (got <= 0)
            return 0;
        srv.len += (size_t)got;
    }
}

static void worker_main(int w, long count, int port, int ctl, int rep)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    bench_raise_nofile();
    int *fds = malloc((size_t)count * sizeof *fds);
    char src[32];
    snprintf(src, sizeof src, "127.0.0.%d", 2 + w);
    for (long i = 0; i < count; i++) {
        fds[i] = bench_connect(src, port);
        if (fds[i] < 0) {
            fprintf(stderr, "scale: connect %ld from %s: %s\n", i, src, strerror(errno));
            if (write(rep, "E", 1) != 1)
                _exit(1);
            _exit(1);
        }
    }
    char c;
    if (write(rep, "R", 1) != 1 || read(ctl, &c, 1) != 1)
        _exit(0);
    uint64_t t[2];
    t[0] = bench_now_ns();
    for (long i = 0; i < count; i++)
        close(fds[i]);
    t[1] = bench_now_ns();
    if (write(rep, t, sizeof t) != (ssize_t)sizeof t)
        _exit(1);
    while (read(ctl, &c, 1) > 0) /* until the driver says exit */
        ;
    _exit(0);
}

static void start_workers(long conns, int port)
{
    long per = bench_raise_nofile() - FD_SPARE;
    if (per < 1)
        fail("no-descriptors");
    /* Several workers close their share at the same time: one process closing 10,000 sockets
     * one after the other spreads "at once" over a few hundred milliseconds. */
    long want = (conns + CLOSE_SHARE - 1) / CLOSE_SHARE;
    want = want > CLOSERS ? CLOSERS : want;
    if (per > (conns + want - 1) / want)
        per = (conns + want - 1) / want;
    n_workers = 0;
    for (long done = 0; done < conns; n_workers++) {
        if (n_workers == MAX_WORKERS)
            fail("too-many-workers");
        long count = conns - done < per ? conns - done : per;
        int ctl[2], rep[2];
        if (pipe2(ctl, O_CLOEXEC) != 0 || pipe2(rep, O_CLOEXEC) != 0)
            fail("pipe");
        pid_t pid = fork();
        if (pid < 0)
            fail("fork");
        if (pid == 0) {
            close(ctl[1]);
            close(rep[0]);
            worker_main(n_workers, count, port, ctl[0], rep[1]);
        }
        close(ctl[0]);
        close(rep[1]);
        workers[n_workers] = (struct worker){.pid = pid, .ctl = ctl[1], .rep = rep[0]};
        done += count;
    }
    for (int i = 0; i < n_workers; i++) {
        char c;
        if (read(workers[i].rep, &c, 1) != 1 || c != 'R')
            fail("connect");
    }
}

/* Reads "port P" and "workers K PID...": the port, and the processes to measure. */
static long server_port(void)
{
    char line[sizeof srv.buf];
    if (!server_line("port ", 5000, line, sizeof line))
        fail("server-did-not-start");
    long port = strtol(line + 5, NULL, 10);
    if (!server_line("workers ", 5000, line, sizeof line))
        fail("server-did-not-start-workers");
    char *p = line + 8, *end;
    long k = strtol(p, &end, 10);
    if (k < 1 || k > MAX_WORKERS)
        fail("server-workers");
    for (srv.n_procs = 0; srv.n_procs < k; srv.n_procs++) {
        p = end;
        long pid = strtol(p, &end, 10);
        if (end == p || pid <= 0)
            fail("server-workers");
        srv.procs[srv.n_procs] = (pid_t)pid;
    }
    return port;
}

/* autoclosed on the server's processes. */
static void start_daemon(const struct opts *o)
{
    char pids[MAX_WORKERS * 12] = "", grace[24];
    for (int i = 0; i < srv.n_procs; i++)
        snprintf(pids + strlen(pids), sizeof pids - strlen(pids), "%s%d", i ? "," : "",
                 (int)srv.procs[i]);
    snprintf(grace, sizeof grace, "%ld", o->grace_ms);
    pid_t pid = fork();
    if (pid < 0)
        fail("fork");
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (o->log != NULL && freopen(o->log, "a", stderr) == NULL)
            _exit(127);
        unsetenv("LD_PRELOAD");
        execl(o->daemon, o->daemon, "--pid", pids, "--grace-ms", grace, "--log",
              getenv("BENCH_DAEMON_LOG") ? getenv("BENCH_DAEMON_LOG") : "error", (char *)NULL);
        _exit(127);
    }
    daemon_pid = pid;
    bench_sleep_ms(100);
    if (waitpid(pid, NULL, WNOHANG) != 0)
        fail("daemon-did-not-start");
}

/* Anonymous memory of the whole server, in KiB. */
static long server_anon_kb(void)
{
    if (daemon_pid > 0)
        return bench_anon_kb(daemon_pid);
    long sum = 0;
    for (int i = 0; i < srv.n_procs; i++) {
        long kb = bench_anon_kb(srv.procs[i]);
        if (kb < 0)
            fail("proc");
        sum += kb;
    }
    return sum;
}

static void server_sample(struct bench_proc_sample *out)
{
    *out = (struct bench_proc_sample){0};
    if (daemon_pid > 0) {
        if (bench_proc_sample(daemon_pid, out) != 0)
            fail("proc");
        return;
    }
    for (int i = 0; i < srv.n_procs; i++) {
        struct bench_proc_sample s;
        if (bench_proc_sample(srv.procs[i], &s) != 0)
            fail("proc");
        out->cpu_ns += s.cpu_ns;
        out->vol_switches += s.vol_switches;
        out->invol_switches += s.invol_switches;
        out->tasks += s.tasks;
    }
}

/* Waits for one milestone line from every server process; returns the latest time in it. */
static uint64_t all_reached(const char *prefix, long timeout_ms)
{
    char line[128];
    uint64_t latest = 0, end = bench_now_ns() + (uint64_t)timeout_ms * 1000000u;
    for (int i = 0; i < srv.n_procs; i++) {
        uint64_t now = bench_now_ns();
        if (now >= end ||
            !server_line(prefix, (long)((end - now) / 1000000u) + 1, line, sizeof line))
            return 0;
        const char *t = strchr(line + strlen(prefix), ' ');
        uint64_t at = t ? strtoull(t + 1, NULL, 10) : 0;
        latest = at > latest ? at : latest;
    }
    return latest;
}

static double ms_between(uint64_t a, uint64_t b)
{
    return ((double)b - (double)a) / 1e6;
}

static void run_reclaim(const struct opts *o)
{
    int port = (int)server_port();
    if (o->daemon)
        start_daemon(o);
    start_workers(o->conns, port);
    if (all_reached("accepted ", 60000) == 0)
        fail("not-all-accepted");
    bench_sleep_ms(300); /* the last accepts settle; the timer thread starts (with the shim) */
    long anon_idle = server_anon_kb();
    long cw_before = bench_count_tcp(port, 1u << BENCH_TCP_CLOSE_WAIT);

    /* All at once: every worker is told before any is waited for. */
    for (int i = 0; i < n_workers; i++)
        if (write(workers[i].ctl, "G", 1) != 1)
            fail("go");
    uint64_t fin_first = UINT64_MAX, fin_last = 0;
    for (int i = 0; i < n_workers; i++) {
        uint64_t t[2];
        if (read(workers[i].rep, t, sizeof t) != (ssize_t)sizeof t)
            fail("close");
        fin_first = t[0] < fin_first ? t[0] : fin_first;
        fin_last = t[1] > fin_last ? t[1] : fin_last;
    }
    uint64_t eof_at = all_reached("eof ", 60000);
    if (eof_at == 0)
        fail("not-all-eof");

    /* Memory with every connection tracked: after the shim's sweep has run at least once on
     * them, and before the grace ends. */
    uint64_t mem_at = fin_first + (uint64_t)o->mem_at_ms * 1000000u;
    uint64_t now = bench_now_ns();
    if (now < mem_at)
        bench_sleep_ms((long)((mem_at - now) / 1000000u));
    long anon_pending = server_anon_kb();
    long cw_at_sample = bench_count_tcp(port, 1u << BENCH_TCP_CLOSE_WAIT);

    /* From shortly before the first deadline, count CLOSE_WAIT every few milliseconds. */
    uint64_t grace_end = fin_first + (uint64_t)o->grace_ms * 1000000u;
    uint64_t give_up = grace_end + (uint64_t)o->observe_ms * 1000000u;
    now = bench_now_ns();
    if (now + 100000000u < grace_end)
        bench_sleep_ms((long)((grace_end - now) / 1000000u) - 100);
    uint64_t first_drop = 0, zero_at = 0;
    long left = -1;
    for (;;) {
        left = bench_count_tcp(port, 1u << BENCH_TCP_CLOSE_WAIT);
        now = bench_now_ns();
        if (left < 0)
            fail("sock_diag");
        if (first_drop == 0 && left < o->conns)
            first_drop = now;
        if (left == 0) {
            zero_at = now;
            break;
        }
        if (now > give_up)
            break;
        bench_sleep_ms(5);
    }
    printf("conns=%ld workers=%d server_procs=%d close_wait_before=%ld fin_spread_ms=%.1f "
           "detect_ms=%.1f anon_idle_kb=%ld anon_pending_kb=%ld close_wait_at_sample=%ld "
           "bytes_per_conn=%.1f left=%ld",
           o->conns, n_workers, srv.n_procs, cw_before, ms_between(fin_first, fin_last),
           ms_between(fin_first, eof_at), anon_idle, anon_pending, cw_at_sample,
           (double)(anon_pending - anon_idle) * 1024.0 / (double)o->conns, left);
    if (first_drop)
        printf(" first_drop_ms=%.1f", ms_between(fin_first, first_drop) - (double)o->grace_ms);
    if (zero_at)
        printf(" zero_ms=%.1f reclaim_ms=%.1f", ms_between(fin_first, zero_at),
               ms_between(fin_first, zero_at) - (double)o->grace_ms);
    printf("\n");
}

static void run_idle(const struct opts *o)
{
    int port = (int)server_port();
    if (o->daemon)
        start_daemon(o);
    if (o->conns > 0) {
        start_workers(o->conns, port);
        if (all_reached("accepted ", 60000) == 0)
            fail("not-all-accepted");
    }
    bench_sleep_ms(1500); /* past start-up, the timer's start and its first sweep */
    struct bench_proc_sample a, b;
    server_sample(&a);
    uint64_t t0 = bench_now_ns();
    bench_sleep_ms(o->secs * 1000);
    server_sample(&b);
    double secs = ms_between(t0, bench_now_ns()) / 1000.0;
    double cpu_ms = ((double)b.cpu_ns - (double)a.cpu_ns) / 1e6;
    printf("conns=%ld secs=%.2f tasks=%u cpu_ms=%.2f cpu_pct=%.3f vol_switches=%llu "
           "invol_switches=%llu anon_kb=%ld\n",
           o->conns, secs, b.tasks, cpu_ms, cpu_ms / (secs * 10.0),
           (unsigned long long)(b.vol_switches - a.vol_switches),
           (unsigned long long)(b.invol_switches - a.invol_switches), server_anon_kb());
}

static long num(const char *name, const char *v)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (*v == '\0' || *end != '\0' || n < 0)
        bench_die(0, "%s: not a number: %s", name, v);
    return n;
}

int main(int argc, char **argv)
{
    struct opts o = {.grace_ms = 2000, .mem_at_ms = 1500, .observe_ms = 1000, .secs = 5};
    if (argc < 2)
        bench_die(0, "usage: scale reclaim|idle OPTIONS -- SERVER [ARGS...]");
    o.mode = argv[1];
    int i = 2;
    for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL)
            bench_die(0, "%s needs a value", a);
        if (strcmp(a, "--conns") == 0)
            o.conns = num(a, v);
        else if (strcmp(a, "--grace-ms") == 0)
            o.grace_ms = num(a, v);
        else if (strcmp(a, "--mem-at-ms") == 0)
            o.mem_at_ms = num(a, v);
        else if (strcmp(a, "--observe-ms") == 0)
            o.observe_ms = num(a, v);
        else if (strcmp(a, "--secs") == 0)
            o.secs = num(a, v);
        else if (strcmp(a, "--preload") == 0)
            o.preload = v;
        else if (strcmp(a, "--log") == 0)
            o.log = v;
        else if (strcmp(a, "--daemon") == 0)
            o.daemon = v;
        else if (strcmp(a, "--env") == 0 && o.n_env < MAX_ENV && strchr(v, '=') != NULL)
            o.env[o.n_env++] = v;
        else
            bench_die(0, "unknown option %s", a);
        i++;
    }
    if (i + 1 >= argc)
        bench_die(0, "no server command after --");
    o.server_argv = argv + i + 1;
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    start_server(&o);
    if (strcmp(o.mode, "reclaim") == 0) {
        if (o.conns < 1)
            bench_die(0, "reclaim needs --conns of at least 1");
        run_reclaim(&o);
    } else if (strcmp(o.mode, "idle") == 0) {
        run_idle(&o);
    } else {
        bench_die(0, "mode must be reclaim or idle");
    }
    cleanup();
    return 0;
}
