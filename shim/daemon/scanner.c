/*
 * The scanner: a short-lived child process that does, for one look, all the reading of other
 * processes' /proc entries (owners.c says which, and what it keeps of them), and leaves what it
 * found in memory shared with the daemon. The daemon's own process reads none of those entries.
 *
 * Why a process: some of them wait while their process is inside execve, and a user can make an
 * exec last for ever (a close-on-exec file from a FUSE mount whose server never answers the FLUSH
 * its close sends: the kernel holds the process's exec locks meanwhile). Seen on Linux 6.18: the
 * links in /proc/PID/fd and /proc/PID/ns, and stat, wchan, io, environ, maps and exe wait (they
 * check the reader's ptrace access, which waits for an exec in progress), killably; status, comm,
 * cmdline, statm, limits, schedstat, the listing of /proc/PID/fd and stat(2) of /proc/PID itself
 * do not. Anything the daemon does read of another process is among the latter.
 *
 * The daemon waits for the scanner's end while taking its stop signals, and judges it by the time
 * it has spent blocked: neither running nor waiting for a CPU (from the scanner's schedstat; it
 * is the daemon's own child and never execs). A scan runs on CPU time, however large or loaded
 * the host, and reading /proc does not sleep; one blocked for BLOCKED_MS in one process's entries
 * (counted from when the daemon sees it move to that process, whose number it writes into the
 * shared memory before each) is stuck. It is killed (those waits are killable); that process is
 * left out of scans for a back-off (1 min, doubling up to 10 min), and one line names it; the
 * caller may start another at once for the rest of its look. What the scanner found before stays
 * valid: each record it leaves is written whole before it is counted. A scanner that SIGKILL does
 * not end within END_WAIT_MS (an uninterruptible wait) is left behind like a stuck taker, and
 * counted; while SCANNERS_MAX are alive no other is started.
 *
 * One fork per look that has sockets to look for and a scan its budget allows; none on a quiet
 * look.
 */
#include "autoclosed.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_close_range
#define SYS_close_range 436
#endif

#define BLOCKED_MS   250 /* in one process's entries */
#define POLL_MS      50  /* how often a running scanner's blocked time is read */
#define END_WAIT_MS  200
#define SCANNERS_MAX 8
#define STUCK_MAX    1024

/* The start of the shared memory: which process the scanner reads. */
struct watch {
    pid_t pid;
    uid_t owner;  /* of /proc/PID: its effective uid, root's when it is not dumpable */
    uint32_t seq; /* one more for each process: its blocked time is counted from the change */
};
#define HEADER 64 /* the caller's area starts here, aligned */

static struct watch *watching; /* in the scanner */

static pid_t scanners[SCANNERS_MAX];
static size_t nscanners;

/* Processes whose /proc entries did not answer: left out until retry_ms. */
static struct stuck {
    pid_t pid;
    uid_t owner;
    uint32_t backoff_ms;
    uint64_t retry_ms;
} stuck[STUCK_MAX];
static size_t nstuck;

void ad_scanners_reap(void)
{
    for (size_t i = 0; i < nscanners;) {
        pid_t r = waitpid(scanners[i], NULL, WNOHANG);
        if (r == scanners[i] || (r < 0 && errno == ECHILD))
            scanners[i] = scanners[--nscanners];
        else
            i++;
    }
}

/* ---- in the scanner ------------------------------------------------------------------------ */

void ad_scan_at(pid_t pid, uid_t owner)
{
    __atomic_store_n(&watching->owner, owner, __ATOMIC_RELAXED);
    __atomic_store_n(&watching->pid, pid, __ATOMIC_RELAXED);
    __atomic_store_n(&watching->seq, watching->seq + 1, __ATOMIC_RELEASE);
}

bool ad_scan_left_out(pid_t pid, uid_t owner)
{
    uint64_t now = ac_now_ms();
    for (size_t i = 0; i < nstuck; i++)
        if (stuck[i].pid == pid && stuck[i].owner == owner)
            return now < stuck[i].retry_ms;
    return false;
}

bool ad_scan_suspect(uid_t owner)
{
    uint64_t now = ac_now_ms();
    for (size_t i = 0; i < nstuck; i++)
        if (stuck[i].owner == owner && now < stuck[i].retry_ms + AD_BACKOFF_MAX_MS)
            return true;
    return false;
}

/* A fork of the daemon, single-threaded but for --metrics-listen's server thread, whose locks the
 * child never takes (glibc's fork keeps malloc and stdio usable): malloc and stdio are safe here;
 * nothing is logged. */
__attribute__((noreturn)) static void run(int out, pid_t daemon, void (*body)(void *, void *),
                                          void *area, void *arg)
{
    /* A stop signal is the daemon's, which kills the scanner if it must. */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGUSR1, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != daemon)
        _exit(1);                          /* the daemon ended before that */
    prctl(PR_SET_NAME, "autoclosed-scan"); /* for ps, should one hang */
    /* Nothing of the daemon's stays open here: only the pipe that says it is done. */
    if (out > 3)
        syscall(SYS_close_range, 3u, (unsigned)out - 1, 0u);
    syscall(SYS_close_range, (unsigned)out + 1, ~0u, 0u);
    body(area, arg);
    char done = 1;
    while (write(out, &done, 1) < 0 && errno == EINTR)
        ;
    _exit(0);
}

/* ---- in the daemon ------------------------------------------------------------------------- */

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The time the scanner `pid` has spent since `started` neither on a CPU nor waiting for one. Its
 * schedstat gives both (CONFIG_SCHED_INFO); without it, only its CPU time is known, and the
 * waits for a CPU count as blocked. */
static uint64_t blocked_ns(pid_t pid, uint64_t started)
{
    uint64_t wall = mono_ns() - started, busy = 0;
    char path[48], buf[96];
    snprintf(path, sizeof path, "/proc/%d/schedstat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        close(fd);
    uint64_t cpu, delay;
    if (n > 0 && (buf[n] = '\0', sscanf(buf, "%" SCNu64 " %" SCNu64, &cpu, &delay) == 2)) {
        busy = cpu + delay;
    } else {
        clockid_t c;
        struct timespec ts;
        if (clock_getcpuclockid(pid, &c) == 0 && clock_gettime(c, &ts) == 0)
            busy = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    }
    return wall > busy ? wall - busy : 0;
}

/* A small /proc file of the stuck process, among those that do not wait (see above). */
static void read_safe(pid_t pid, const char *name, char *buf, size_t cap)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, name);
    buf[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
}

/* The scanner was killed reading `pid`: left out of scans for a back-off, said in one line. */
static void left_out(pid_t pid, uid_t owner)
{
    if (pid <= 0)
        return;
    uint64_t now = ac_now_ms();
    struct stuck *s = NULL;
    for (size_t i = 0; i < nstuck && !s; i++)
        if (stuck[i].pid == pid && stuck[i].owner == owner)
            s = &stuck[i];
    for (size_t i = 0; i < nstuck && !s;) /* forgotten once a whole longest back-off is over */
        if (stuck[i].retry_ms + AD_BACKOFF_MAX_MS < now)
            stuck[i] = stuck[--nstuck];
        else
            i++;
    if (!s && nstuck < STUCK_MAX) {
        s = &stuck[nstuck++];
    } else if (!s) {
        s = &stuck[0]; /* full: the one due soonest makes room */
        for (size_t i = 1; i < nstuck; i++)
            if (stuck[i].retry_ms < s->retry_ms)
                s = &stuck[i];
        s->backoff_ms = 0;
    }
    if (s->pid != pid || s->owner != owner)
        *s = (struct stuck){.pid = pid, .owner = owner};
    s->backoff_ms = ad_backoff_next(s->backoff_ms);
    s->retry_ms = now + s->backoff_ms;
    ad_errors_total++;
    if (!ad_log_take(AC_LOG_ERROR))
        return;
    char status[1024], comm[32], field[72];
    read_safe(pid, "status", status, sizeof status);
    read_safe(pid, "comm", comm, sizeof comm);
    const char *uid = strstr(status, "\nUid:");
    comm[strcspn(comm, "\n")] = '\0';
    struct ac_text t;
    ac_text_init(&t, field, sizeof field);
    ac_text_field(&t, comm[0] ? comm : "?");
    ad_log_taken("cannot read pid=%d uid=%ld comm=%s: its /proc entries do not answer (it is "
                 "probably inside an execve that waits for a file system): left out of scans "
                 "for %u s",
                 (int)pid, uid ? strtol(uid + 5, NULL, 10) : (long)owner, field,
                 s->backoff_ms / 1000);
}

/* After SIGKILL: the scanner's end closes the pipe's other end. False if it has not come. */
static bool ended(int in)
{
    uint64_t deadline = ac_now_ms() + END_WAIT_MS;
    for (;;) {
        uint64_t now = ac_now_ms();
        if (now >= deadline)
            return false;
        struct pollfd p = {.fd = in, .events = POLLIN};
        if (poll(&p, 1, (int)(deadline - now)) == 1) {
            char c;
            ssize_t got = read(in, &c, 1);
            if (got == 0)
                return true;
            if (got < 0 && errno != EINTR && errno != EAGAIN)
                return true;
        }
    }
}

static void stop(pid_t pid, int in)
{
    kill(pid, SIGKILL); /* our own child, not yet collected: its pid is its own */
    if (ended(in)) {
        ad_scanners_reap();
        return;
    }
    ad_errors_total++;
    ad_log(AC_LOG_ERROR,
           "autoclosed's scanner (pid %d) did not end on SIGKILL: left behind (%zu of %d alive)",
           (int)pid, nscanners, SCANNERS_MAX);
}

static enum ad_scan_end wait_for(pid_t pid, int in, uint64_t started, struct watch *w)
{
    /* Blocked time is charged to the process being read, from when the daemon saw the scanner
     * move to it: a user who lets his own stuck process go just short of the limit must not get
     * the next process (anyone's) blamed for his time. */
    uint32_t seq = 0;
    uint64_t base = 0;
    for (;;) {
        struct pollfd p = {.fd = in, .events = POLLIN};
        int r = ad_poll(&p, 1, POLL_MS);
        if (r < 0 && ad_stopping()) {
            stop(pid, in);
            return AD_SCAN_STOPPED;
        }
        if (r > 0) {
            char c;
            ssize_t got = read(in, &c, 1);
            if (got == 1) {
                ad_scanners_reap();
                return AD_SCAN_DONE;
            }
            if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
                ad_scanners_reap();
                return AD_SCAN_LOST; /* it ended without its mark */
            }
        }
        uint32_t now_seq = __atomic_load_n(&w->seq, __ATOMIC_ACQUIRE);
        uint64_t blocked = blocked_ns(pid, started);
        if (now_seq != seq) {
            seq = now_seq;
            base = blocked;
        } else if (blocked > base && blocked - base > (uint64_t)BLOCKED_MS * 1000000u) {
            pid_t at = __atomic_load_n(&w->pid, __ATOMIC_RELAXED);
            uid_t owner = __atomic_load_n(&w->owner, __ATOMIC_RELAXED);
            stop(pid, in);
            left_out(at, owner);
            return AD_SCAN_STUCK;
        }
    }
}

enum ad_scan_end ad_scan(size_t size, void (*body)(void *area, void *arg), void *arg, void **area)
{
    static bool said_full;
    *area = NULL;
    ad_scanners_reap();
    if (nscanners == SCANNERS_MAX) {
        if (!said_full)
            ad_log(AC_LOG_ERROR,
                   "%d scanners of autoclosed are still alive, stuck in processes' /proc "
                   "entries: nothing is looked for until one ends",
                   SCANNERS_MAX);
        said_full = true;
        return AD_SCAN_LOST;
    }
    said_full = false;
    void *shared =
        mmap(NULL, HEADER + size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED) {
        (void)ad_short_of(errno, "making a scanner's memory");
        return AD_SCAN_LOST;
    }
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        if (!ad_short_of(errno, "making a pipe to a scanner"))
            ad_log(AC_LOG_ERROR, "cannot make a pipe to a scanner: %s", strerror(errno));
        munmap(shared, HEADER + size);
        return AD_SCAN_LOST;
    }
    struct watch *w = shared;
    pid_t daemon = getpid();
    uint64_t started = mono_ns();
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        watching = w;
        run(fds[1], daemon, body, (char *)shared + HEADER, arg);
    }
    int err = errno;
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        munmap(shared, HEADER + size);
        if (!ad_short_of(err, "starting a scanner (fork)"))
            ad_log(AC_LOG_ERROR, "cannot start a scanner (fork): %s", strerror(err));
        return AD_SCAN_LOST;
    }
    scanners[nscanners++] = pid;
    enum ad_scan_end end = wait_for(pid, fds[0], started, w);
    close(fds[0]);
    *area = (char *)shared + HEADER;
    return end;
}

void ad_scan_free(void *area, size_t size)
{
    if (area)
        munmap((char *)area - HEADER, HEADER + size);
}
