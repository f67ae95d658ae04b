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

static volatile sig_atomic_t stop_signal, reopen_log;

static void on_stop(int sig)
{
    stop_signal = sig;
}

static void on_hup(int sig)
{
    (void)sig;
    reopen_log = 1;
}

static void handle(int sig, void (*fn)(int))
{
    struct sigaction sa = {.sa_handler = fn}; /* no SA_RESTART: the sleep ends at once */
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

static void describe_selection(char *out, size_t cap)
{
    struct ac_text t;
    ac_text_init(&t, out, cap);
    ac_text_str(&t, "pid=");
    if (ad_opt.npids == 0)
        ac_text_str(&t, "any");
    for (size_t i = 0; i < ad_opt.npids; i++) {
        if (i)
            ac_text_str(&t, ",");
        ac_text_int(&t, ad_opt.pids[i]);
    }
    ac_text_str(&t, ad_opt.ports.all ? " ports=any" : " ports=listed");
}

int main(int argc, char **argv)
{
    int rc = ad_parse_options(argc, argv, &ad_opt);
    if (rc >= 0)
        return rc;
    if (!ad_log_open())
        return 2;
    handle(SIGTERM, on_stop);
    handle(SIGINT, on_stop);
    handle(SIGHUP, on_hup);
    signal(SIGPIPE, SIG_IGN); /* a log file on a closed pipe must not end the daemon */

    char selection[400];
    describe_selection(selection, sizeof selection);
    ad_log(AC_LOG_INFO, "autoclosed %s: watching %s grace_ms=%u interval_ms=%u%s%s", AC_VERSION,
           selection, ad_opt.grace_ms, ad_opt.interval_ms, ad_opt.dry_run ? " dry-run" : "",
           ad_opt.once ? " once" : "");
    ad_selection_say();

    uint64_t next_look = ac_now_ms();
    int status = 0;
    while (!stop_signal) {
        uint64_t now = ac_now_ms();
        bool looking = now >= next_look;
        if (looking)
            next_look = now + ad_opt.interval_ms;
        if (!ad_cycle(now, looking)) {
            status = 1; /* sock_diag cannot be reached: nothing can ever be found */
            break;
        }
        if (looking)
            ad_stats_write();
        if (ad_opt.npids > 0 && ad_selection_running() == 0) {
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
        uint64_t wake = ad_next_due();
        if (wake > next_look)
            wake = next_look;
        now = ac_now_ms();
        if (wake > now)
            poll(NULL, 0, (int)(wake - now > 86400000 ? 86400000 : wake - now));
    }
    ad_stats_write();
    if (stop_signal)
        ad_log(AC_LOG_INFO, "stopping on signal %d (%s)", (int)stop_signal, strsignal(stop_signal));
    return status;
}
