/*
 * The taker: a short-lived child process that does, for one batch of due sockets, everything that
 * touches another process's file (pidfd_open, pidfd_getfd, the cookie check, TCP_INFO, FIONREAD,
 * shutdown), and writes one fixed-size verdict per socket on a pipe. The daemon applies the
 * verdicts, logs and counts; it never holds a file of another process.
 *
 * Why a process: a process can put any file on the number the daemon recorded, one from a FUSE
 * mount whose server never answers among them. Dropping the reference pidfd_getfd made of it sends
 * that file system a FLUSH, which the kernel waits for without letting even SIGKILL end the wait;
 * no call drops a descriptor without it. So the reference lives in a process nobody needs to wait
 * for: at the first file that is not the expected socket the taker reports it and stops (so it
 * holds at most one), and ends; its exit may hang, and nothing waits on it.
 *
 * The daemon reads the verdicts for at most 2 s, then kills a taker that has not finished (its
 * remaining sockets are tried again at the next interval), and collects ended takers without
 * waiting (waitpid WNOHANG on its own child, whose pid cannot be reused before that). A taker still
 * alive after taking another file from a process of user U holds U: no process of U is acted on
 * until it ends, so a user who freezes takers freezes one at a time, and only for himself. At most
 * 16 takers are alive at once.
 *
 * One fork per batch (at most one per 100 ms or per interval, cycle.c), none while nothing is due.
 */
#include "autoclosed.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434 /* the same number on every architecture */
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

#define TAKERS_MAX    16
#define BATCH_WAIT_MS 2000
/* A taker still alive this long after its end record is stuck in a close. */
#define STUCK_MS 1000

struct taker {
    pid_t pid;
    bool foreign;     /* took a file that is not the expected socket... */
    uid_t user;       /* ...from a process of this user (ad_process.user), */
    pid_t holder;     /* ...this one */
    bool timed_out;   /* ...or did not finish with this process's socket in hand */
    uint64_t done_ms; /* when its end record came, or it was given up */
    bool said;
};
static struct taker takers[TAKERS_MAX];
static size_t ntakers;

void ad_takers_reap(void)
{
    for (size_t i = 0; i < ntakers;) {
        pid_t r = waitpid(takers[i].pid, NULL, WNOHANG);
        if (r == takers[i].pid || (r < 0 && errno == ECHILD))
            takers[i] = takers[--ntakers];
        else
            i++;
    }
}

/* ---- in the taker -------------------------------------------------------------------------- */

static void put(int out, const struct ad_verdict *v)
{
    /* Under PIPE_BUF: written whole or not at all. A daemon that stopped reading: done. */
    while (write(out, v, sizeof *v) < 0)
        if (errno != EINTR)
            _exit(1);
}

static enum ad_verdict_kind kind_of(int err)
{
    switch (err) {
    case ESRCH:
        return AD_V_GONE;
    case ENOSYS:
        return AD_V_NOSYS;
    case EMFILE:
    case ENFILE:
    case ENOMEM:
        return AD_V_SHORT;
    default:
        return AD_V_REFUSED;
    }
}

/* Nothing of the daemon's stays open here (the log, the netlink socket): a taker stuck in a close
 * holds only what it took, and the selected processes' pidfds (--pid), which never block. */
static void close_all_but(int out)
{
    int keep[AD_MAX_PIDS + 1];
    size_t n = 0;
    keep[n++] = out;
    for (size_t i = 0; i < ad_opt.npids; i++) {
        int fd = ad_selected_pidfd(ad_opt.pids[i]);
        if (fd < 0)
            continue;
        size_t k = n++;
        for (; k > 0 && keep[k - 1] > fd; k--) /* kept in order */
            keep[k] = keep[k - 1];
        keep[k] = fd;
    }
    unsigned from = 3;
    for (size_t k = 0; k < n; k++) {
        if ((unsigned)keep[k] < from)
            continue;
        if ((unsigned)keep[k] > from)
            syscall(SYS_close_range, from, (unsigned)keep[k] - 1, 0);
        from = (unsigned)keep[k] + 1;
    }
    syscall(SYS_close_range, from, ~0u, 0);
}

/* A fork of the daemon, single-threaded but for --metrics-listen's server thread, whose locks the
 * child never takes: any call made here is safe; none allocates all the same. */
__attribute__((noreturn)) static void run(const struct ad_job *jobs, size_t n, int out,
                                          uint64_t now_ms)
{
    /* A stop signal is the daemon's: the batch is short, and a record is never cut in two. */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_NAME, "autoclosed-take"); /* for ps, should one hang */
    close_all_but(out);

    pid_t pid = 0;
    bool held = false;
    int pidfd = -1, err = 0;
    for (size_t i = 0; i < n; i++) {
        const struct ad_job *j = &jobs[i];
        struct ad_verdict v = {.job = (uint32_t)i};
        if (j->pid != pid || j->held != held) { /* the jobs come by process: one pidfd each */
            if (pidfd >= 0 && !held)
                close(pidfd);
            pid = j->pid;
            held = j->held;
            /* --pid: the pidfd opened at start is the process's identity; one opened now could
             * be its number's next owner's. Any other process (a descendant, a unit's, an
             * executable's, or with --ports alone): one opened now, whose process must have the
             * start time the scan recorded. */
            pidfd = held ? ad_selected_pidfd(pid) : (int)syscall(SYS_pidfd_open, pid, 0);
            err = errno;
            unsigned long long start = 0;
            if (pidfd >= 0 && (!ad_start_time(pid, &start) || start != j->start_time)) {
                close(pidfd); /* the pid now names another process */
                pidfd = -1;
                err = ESRCH;
            }
        }
        if (pidfd < 0) {
            v.kind = (uint8_t)kind_of(err);
            v.step = AD_STEP_PIDFD_OPEN;
            v.err = err;
            put(out, &v);
            continue;
        }
        bool go_on = ad_reclaim_job(j, pidfd, now_ms, &v);
        put(out, &v);
        if (!go_on)
            break;
    }
    struct ad_verdict end = {.kind = AD_V_END};
    put(out, &end);
    _exit(0);
}

/* ---- in the daemon ------------------------------------------------------------------------- */

static struct taker *holding(uid_t user)
{
    for (size_t i = 0; i < ntakers; i++)
        if (takers[i].foreign && takers[i].user == user)
            return &takers[i];
    return NULL;
}

static void say_held(struct taker *t, const struct ad_process *p, uint64_t now_ms)
{
    if (t->said || now_ms < t->done_ms + STUCK_MS)
        return; /* a taker just ending is no news */
    t->said = true;
    ad_errors_total++;
    if (t->timed_out)
        ad_log(AC_LOG_ERROR,
               "waiting pid=%d uid=%u comm=%s: autoclosed's taker (pid %d) did not come back from "
               "a socket of pid=%d (its lock held, or the process stuck in exec), and no process "
               "of user %u is acted on until it ends",
               (int)p->pid, (unsigned)p->uid, p->comm_field, (int)t->pid, (int)t->holder,
               (unsigned)t->user);
    else
        ad_log(AC_LOG_ERROR,
               "waiting pid=%d uid=%u comm=%s: a file whose close blocks (probably from a FUSE "
               "mount that does not answer) was put where a socket of pid=%d was; autoclosed's "
               "taker (pid %d) is stuck closing it, and no process of user %u is acted on until it "
               "ends",
               (int)p->pid, (unsigned)p->uid, p->comm_field, (int)t->holder, (int)t->pid,
               (unsigned)t->user);
}

static int by_process(const void *a, const void *b)
{
    const struct ad_job *x = a, *y = b;
    if (x->pid != y->pid)
        return x->pid < y->pid ? -1 : 1;
    if (x->held != y->held)
        return x->held ? -1 : 1;
    return x->slot < y->slot ? -1 : x->slot > y->slot;
}

/* One verdict in the daemon. */
static void apply(struct taker *t, const struct ad_verdict *v, const struct ad_job *jobs, size_t m,
                  struct ad_sock **due, uint64_t now_ms, enum ad_outcome *out, uint64_t *wait_ms)
{
    if (v->job >= m)
        return;
    const struct ad_job *j = &jobs[v->job];
    struct ad_process *p = ad_process(j->pid);
    if (p == NULL)
        return; /* cannot be: made before the fork */
    out[j->slot] = ad_verdict_apply(due[j->slot], p, v, now_ms, &wait_ms[j->slot]);
    if (v->kind == AD_V_FOREIGN) {
        t->foreign = true;
        t->user = p->user;
        t->holder = p->pid;
    }
}

/* Reads the taker's verdicts until its end record, for at most BATCH_WAIT_MS. */
static void collect(struct taker *t, int in, const struct ad_job *jobs, size_t m,
                    struct ad_sock **due, uint64_t now_ms, enum ad_outcome *out, uint64_t *wait_ms)
{
    uint64_t deadline = ac_now_ms() + BATCH_WAIT_MS;
    char buf[16 * sizeof(struct ad_verdict)];
    size_t have = 0, next = 0; /* the verdicts come in the jobs' order: `next` is being done */
    bool ended = false;
    while (!ended) {
        uint64_t now = ac_now_ms();
        if (now >= deadline) {
            kill(t->pid, SIGKILL); /* our own child, not yet collected: its pid is its own */
            ad_errors_total++;
            /* What it waits on is the job in hand's (a socket whose lock its process holds, a
             * process stuck in exec): that user is held while the taker lives, as for a file
             * that blocks. */
            struct ad_process *p = next < m ? ad_process(jobs[next].pid) : NULL;
            unsigned alone_s = 0;
            if (p) {
                t->foreign = true;
                t->timed_out = true;
                t->user = p->user;
                t->holder = p->pid;
                /* And that process waits out a back-off: else, first in every batch (they go by
                 * pid), it would hold up all the others' sockets 2 s at each interval once the
                 * killed taker is gone. */
                p->backoff_ms = ad_backoff_next(p->backoff_ms);
                p->retry_ms = now + p->backoff_ms;
                alone_s = p->backoff_ms / 1000;
            }
            ad_log(AC_LOG_ERROR,
                   "autoclosed's taker (pid %d) did not finish its %zu sockets in %d ms (stuck "
                   "on pid=%d fd=%d): stopped; that process is left alone for %u s, the others "
                   "are tried again at the next interval",
                   (int)t->pid, m, BATCH_WAIT_MS, next < m ? (int)jobs[next].pid : 0,
                   next < m ? jobs[next].fd : -1, alone_s);
            break;
        }
        struct pollfd pfd = {.fd = in, .events = POLLIN};
        int r = poll(&pfd, 1, (int)(deadline - now));
        if (r < 0 && errno != EINTR)
            break;
        if (r <= 0)
            continue; /* a signal (the daemon's stop waits for the batch, which is short) */
        ssize_t got = read(in, buf + have, sizeof buf - have);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break; /* it ended without its end record: killed */
        have += (size_t)got;
        size_t at = 0;
        for (; have - at >= sizeof(struct ad_verdict) && !ended; at += sizeof(struct ad_verdict)) {
            struct ad_verdict v;
            memcpy(&v, buf + at, sizeof v);
            if (v.kind == AD_V_END) {
                ended = true;
            } else {
                apply(t, &v, jobs, m, due, now_ms, out, wait_ms);
                next = (size_t)v.job + 1;
            }
        }
        memmove(buf, buf + at, have - at);
        have -= at;
    }
    t->done_ms = ac_now_ms();
}

void ad_take(struct ad_sock **due, size_t n, uint64_t now_ms, enum ad_outcome *out,
             uint64_t *wait_ms)
{
    static bool said_takers_full;
    ad_takers_reap();
    struct ad_job *jobs = malloc(n * sizeof *jobs);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        struct ad_sock *s = due[i];
        out[i] = AD_BUSY; /* unless acted on now: tried again at the next interval */
        wait_ms[i] = ad_opt.interval_ms;
        if (!ad_reclaim_possible()) {
            out[i] = AD_FAILED;
            continue;
        }
        struct ad_process *p = ad_process(s->holder.pid);
        if (p == NULL) {
            /* No record (only a scanner makes them): exited, or never recorded; a child of it
             * may hold the socket too, so its owner is looked for again. */
            out[i] = AD_RETRY_OWNER;
            continue;
        }
        if (p->retry_ms > now_ms) { /* out of reach: waits out its back-off */
            if (ad_opt.once)
                out[i] = AD_FAILED;
            else
                wait_ms[i] = p->retry_ms - now_ms;
            continue;
        }
        struct taker *t = holding(p->user);
        if (t) {
            say_held(t, p, now_ms);
            if (ad_opt.once)
                out[i] = AD_FAILED; /* the taker may never end */
            continue;
        }
        if (jobs == NULL)
            continue;
        jobs[m++] = (struct ad_job){.ino = s->ino,
                                    .pid = s->holder.pid,
                                    .fd = s->holder.fd,
                                    .start_time = p->start_time,
                                    .held = s->holder.held,
                                    .cookie = s->diag.cookie,
                                    .local_port = s->diag.local_port,
                                    .peer_port = s->diag.peer_port,
                                    .fin_ms = s->fin_ms,
                                    .fin_known = s->fin_known,
                                    .not_before_ms = s->not_before_ms,
                                    .read_ms = s->read_ms,
                                    .taken = s->taken,
                                    .taken_known = s->taken_known,
                                    .slot = (uint32_t)i};
    }
    if (m == 0)
        goto out;
    if (ntakers == TAKERS_MAX) {
        if (!said_takers_full)
            ad_log(AC_LOG_ERROR,
                   "%d takers of autoclosed are still alive, stuck closing files that block: "
                   "nothing is acted on until one ends",
                   TAKERS_MAX);
        said_takers_full = true;
        goto out;
    }
    said_takers_full = false;
    qsort(jobs, m, sizeof *jobs, by_process);
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        if (!ad_short_of(errno, "making a pipe to a taker"))
            ad_log(AC_LOG_ERROR, "cannot make a pipe to a taker: %s", strerror(errno));
        goto out;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        run(jobs, m, fds[1], now_ms);
    }
    int err = errno;
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        if (!ad_short_of(err, "starting a taker (fork)"))
            ad_log(AC_LOG_ERROR, "cannot start a taker (fork): %s", strerror(err));
        goto out;
    }
    struct taker *t = &takers[ntakers++];
    *t = (struct taker){.pid = pid};
    collect(t, fds[0], jobs, m, due, now_ms, out, wait_ms);
    close(fds[0]);
    ad_takers_reap();
out:
    free(jobs);
}
