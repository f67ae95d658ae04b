/*
 * autoclosed: reclaims other processes' half-closed TCP connections, without a restart and
 * without the library: static binaries, Go programs, setuid programs, a server already running.
 * One thread, one loop: ask the kernel every interval, act when a grace runs out, sleep.
 */
#include "autoclosed.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

/* The core's system calls (core.h): the daemon wraps nothing. */
int ac_core_close(int fd)
{
    return close(fd);
}

ssize_t ac_core_recv(int fd, void *buf, size_t len, int flags)
{
    return recv(fd, buf, len, flags);
}

int ac_core_getsockopt(int fd, int level, int name, void *val, unsigned *len)
{
    return getsockopt(fd, level, name, val, len);
}

bool ac_core_wait_readable(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, timeout_ms) == 1;
}

static volatile sig_atomic_t stop_signal, reopen_log, status_wanted;

static void on_stop(int sig)
{
    stop_signal = sig;
}

static void on_hup(int sig)
{
    (void)sig;
    reopen_log = 1;
}

static void on_usr1(int sig)
{
    (void)sig;
    status_wanted = 1;
}

/* The signals the loop acts on are blocked everywhere but in its wait (ppoll, and ad_poll's while
 * a scanner runs), which takes them and returns at once: one that comes while an interval's work
 * runs is taken at the next wait, so none can slip in between the check of the flags and the sleep
 * and wait out the interval. */
static sigset_t waiting_mask;

static void signals_start(void)
{
    static const int acted_on[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1};
    sigset_t acted;
    sigemptyset(&acted);
    for (size_t i = 0; i < sizeof acted_on / sizeof *acted_on; i++)
        sigaddset(&acted, acted_on[i]);
    sigprocmask(SIG_BLOCK, &acted, &waiting_mask);
    for (size_t i = 0; i < sizeof acted_on / sizeof *acted_on; i++)
        sigdelset(&waiting_mask, acted_on[i]); /* even if the parent had them blocked */
    void (*const fns[])(int) = {on_stop, on_stop, on_hup, on_usr1};
    for (size_t i = 0; i < sizeof acted_on / sizeof *acted_on; i++) {
        struct sigaction sa = {.sa_handler = fns[i]};
        sigemptyset(&sa.sa_mask);
        sigaction(acted_on[i], &sa, NULL);
    }
    signal(SIGUSR2, SIG_IGN); /* reserved: a stray one must not end the daemon */
    signal(SIGPIPE, SIG_IGN); /* a log file on a closed pipe must not end the daemon */
}

bool ad_stopping(void)
{
    return stop_signal != 0;
}

/* A wait inside an interval's work (for a scanner) takes the signals as the loop's own wait does:
 * a stop is not held up by it. */
int ad_poll(struct pollfd *p, nfds_t n, int timeout_ms)
{
    if (stop_signal) {
        errno = EINTR;
        return -1;
    }
    struct timespec wait = {.tv_sec = timeout_ms / 1000,
                            .tv_nsec = (long)(timeout_ms % 1000) * 1000000};
    int r = ppoll(p, n, &wait, &waiting_mask);
    if (r > 0 && stop_signal) {
        errno = EINTR;
        return -1;
    }
    return r;
}

/* SIGUSR1: one line of what the daemon holds and has done. Asked for by root: written at every
 * --log level but off, and never summed up by the rate limit. */
static void log_status(void)
{
    size_t sockets, waiting, processes;
    ad_table_counts(&sockets, &waiting, &processes);
    ad_log_notice("status: sockets=%zu waiting=%zu processes=%zu reclaimed_total=%llu "
                  "errors_total=%llu dry_run_observed_total=%llu sock_diag=%s",
                  sockets, waiting, processes, (unsigned long long)ad_reclaimed_total,
                  (unsigned long long)ad_errors_total, (unsigned long long)ad_dry_run_total,
                  ad_diag_error ? strerror(ad_diag_error) : "ok");
}

/* The selection whole, for the start-up line: "pid=12,34 unit=mos.service exe=/opt/mos/bin/mos
 * ports=10540,10541" ("pid=any" with --ports alone; " children=no" with --no-children). */
static void describe_selection(char *out, size_t cap)
{
    struct ac_text t;
    ac_text_init(&t, out, cap);
    if (ad_selectors() == 0)
        ac_text_str(&t, "pid=any");
    for (size_t i = 0; i < ad_opt.npids; i++) {
        ac_text_str(&t, i ? "," : "pid=");
        ac_text_int(&t, ad_opt.pids[i]);
    }
    for (size_t i = 0; i < ad_opt.nunits; i++) {
        ac_text_str(&t, i ? "," : t.len ? " unit=" : "unit=");
        ac_text_str(&t, ad_opt.units[i]);
    }
    for (size_t i = 0; i < ad_opt.nexes; i++) {
        if (i == 0)
            ac_text_str(&t, t.len ? " exe=" : "exe=");
        else
            ac_text_str(&t, ",");
        /* A path may hold anything: quoted when it holds more than a path's usual characters. */
        const char *e = ad_opt.exes[i];
        if (e[strspn(e, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/._+-")])
            ac_text_field(&t, e);
        else
            ac_text_str(&t, e);
    }
    if (ad_opt.no_children)
        ac_text_str(&t, " children=no");
    ac_text_str(&t, " ports=");
    if (ad_opt.ports.all)
        ac_text_str(&t, "any");
    else if (ad_opt.ports_text[strspn(ad_opt.ports_text, "0123456789,-")] == '\0')
        ac_text_str(&t, ad_opt.ports_text);
    else
        ac_text_field(&t, ad_opt.ports_text);
}

int main(int argc, char **argv)
{
    ad_log_start_stderr();
    int rc = ad_parse_options(argc, argv, &ad_opt);
    if (rc >= 0)
        return rc;
    signals_start();
    if (!ad_log_open())
        return 2;
    if ((rc = ad_metrics_start()) >= 0)
        return rc; /* after signals_start: its thread never takes the signals the loop acts on */

    char selection[2400];
    describe_selection(selection, sizeof selection);
    ad_log(AC_LOG_INFO, "autoclosed %s: watching %s grace_ms=%u interval_ms=%u%s%s%s%s", AC_VERSION,
           selection, ad_opt.grace_ms, ad_opt.interval_ms, ad_opt.dry_run ? " dry-run" : "",
           ad_opt.once ? " once" : "", ad_opt.metrics_listen ? " metrics_listen=" : "",
           ad_opt.metrics_listen ? ad_opt.metrics_listen : "");
    ad_selection_say();
    ad_cgroup_mounts_read(); /* the scanners, its children, stat containers' groups there */

    uint64_t next_look = ac_now_ms();
    int status = 0;
    while (!stop_signal) {
        uint64_t now = ac_now_ms();
        bool looking = now >= next_look;
        if (looking)
            next_look = now + ad_opt.interval_ms;
        if (!ad_cycle(now, looking)) {
            status = 1; /* the kernel's list cannot be read: nothing can be found (said) */
            break;
        }
        if (looking) {
            ad_mptcp_look();
            ad_stats_write();
        }
        if (ad_opt.npids > 0 && ad_selection_running() == 0 && !ad_selection_lasts()) {
            ad_log(AC_LOG_INFO, "every selected process has exited: stopping");
            break; /* status 0: nothing is left to do */
        }
        if (ad_opt.once) {
            bool failed = false;
            if (ad_start_sockets_waiting(&failed) == 0) {
                status = failed ? 1 : 0;
                break;
            }
        }
        if (reopen_log) {
            reopen_log = 0;
            ad_log_reopen();
        }
        if (status_wanted) {
            status_wanted = 0;
            log_status();
        }
        if (stop_signal)
            break; /* taken while a scanner ran (ad_poll) */
        now = ac_now_ms();
        ad_log_say_dropped(now);
        uint64_t wake = ad_next_due();
        if (wake > next_look)
            wake = next_look;
        if (wake > ad_log_next_note())
            wake = ad_log_next_note();
        uint64_t ms = wake > now ? wake - now : 0;
        if (ms > 86400000)
            ms = 86400000;
        struct timespec wait = {.tv_sec = (time_t)(ms / 1000),
                                .tv_nsec = (long)(ms % 1000) * 1000000};
        ppoll(NULL, 0, &wait, &waiting_mask); /* with ad_poll, where the signals above arrive */
    }
    ad_stats_write();
    if (stop_signal)
        ad_log(AC_LOG_INFO, "stopping on signal %d (%s)", (int)stop_signal, strsignal(stop_signal));
    ad_log_say_dropped(UINT64_MAX); /* the last count, whatever its window */
    ad_metrics_stop();
    return status;
}
