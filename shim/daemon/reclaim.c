/*
 * The action on one due socket of another process, in two halves.
 *
 * In the taker (a child of the daemon, taker.c): a reference to the socket is taken with
 * pidfd_getfd (Linux 5.6; no ptrace stop: the process runs on), and everything after that is done
 * on the reference, which is checked first to be the very socket the kernel listed, by its cookie
 * (SO_COOKIE, Linux 4.12, never reused): a number the process closed and reused meanwhile is left
 * alone. getsockopt is the only call made on a reference not yet checked: on a file that is not
 * a socket it fails at once, whatever file it is, where fstat or close of a file from a FUSE mount
 * that does not answer would never return.
 *
 * shutdown(SHUT_RDWR) on it sends our FIN (the peer, which closed first, goes to TIME_WAIT) and
 * ends the connection for every holder: the process's next read sees EOF, its next write fails.
 * Its descriptor stays open and its own, so a close it makes later never lands on a reused number.
 *
 * In the daemon: the verdict the taker wrote is turned into counters, a log line and the
 * socket's next state.
 */
#include "autoclosed.h"

#include <errno.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438 /* the same number on every architecture */
#endif
#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

/* ---- in the taker -------------------------------------------------------------------------- */

static void describe(char *out, size_t cap, int ref)
{
    struct ac_text t;
    ac_text_init(&t, out, cap);
    struct sockaddr_storage local, peer;
    socklen_t llen = sizeof local, plen = sizeof peer;
    ac_text_str(&t, "local=");
    if (getsockname(ref, (struct sockaddr *)&local, &llen) == 0)
        ac_text_sockaddr(&t, (struct sockaddr *)&local);
    else
        ac_text_str(&t, "?");
    ac_text_str(&t, " peer=");
    if (getpeername(ref, (struct sockaddr *)&peer, &plen) == 0)
        ac_text_sockaddr(&t, (struct sockaddr *)&peer);
    else
        ac_text_str(&t, "?");
}

/* The kernel counts last_ack_recv in jiffies: it may exceed the time really passed by one, 10 ms
 * at the lowest HZ. */
#define JIFFY_MS 10

/* When the peer's FIN came, at the latest: the last segment a peer that closed sends is its FIN,
 * and a later one (a keepalive's answer) only makes the date later, never earlier. A date before
 * the look that did not list the socket cannot be the FIN's: then, as when the kernel gives none,
 * the grace runs from the look that first listed it. `now_ms` is read before TCP_INFO, so the
 * kernel's own reading of the time is no earlier. */
static uint64_t fin_date(const struct ad_job *j, const struct ac_tcp_snapshot *snap,
                         uint64_t now_ms)
{
    if (snap->last_ack_recv_ms > now_ms)
        return j->fin_ms;
    uint64_t ago = snap->last_ack_recv_ms > JIFFY_MS ? snap->last_ack_recv_ms - JIFFY_MS : 0;
    uint64_t at = now_ms - ago;
    if (j->not_before_ms != 0 && at + JIFFY_MS < j->not_before_ms)
        return j->fin_ms;
    return at < j->fin_ms ? at : j->fin_ms; /* never later than the first look that listed it */
}

static uint16_t port_of(const struct sockaddr_storage *a)
{
    if (a->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)a)->sin_port);
    if (a->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)a)->sin6_port);
    return 0;
}

/* A socket listed from another namespace's /proc table, which gives no cookie: the reference is a
 * socket (getsockopt answered), so fstat cannot wait; its inode and ports must be the listed
 * ones. Its cookie, read then, is the daemon's check at every later take. */
static bool same_socket(int ref, const struct ad_job *j)
{
    struct stat st;
    struct sockaddr_storage local, peer;
    socklen_t llen = sizeof local, plen = sizeof peer;
    return fstat(ref, &st) == 0 && st.st_ino == j->ino &&
           getsockname(ref, (struct sockaddr *)&local, &llen) == 0 &&
           getpeername(ref, (struct sockaddr *)&peer, &plen) == 0 &&
           port_of(&local) == j->local_port && port_of(&peer) == j->peer_port;
}

bool ad_reclaim_job(const struct ad_job *j, int pidfd, uint64_t now_ms, struct ad_verdict *v)
{
    v->kind = AD_V_GONE;
    v->read_ms = j->read_ms;
    v->taken = j->taken;
    v->taken_known = j->taken_known;
    int ref = (int)syscall(SYS_pidfd_getfd, pidfd, j->fd, 0);
    if (ref < 0) {
        int err = errno;
        v->err = err;
        v->step = AD_STEP_PIDFD_GETFD;
        if (err == EBADF || err == ESRCH)
            v->kind = AD_V_GONE; /* the number was closed, or the process ended */
        else if (err == ENOSYS)
            v->kind = AD_V_NOSYS;
        else if (err == EMFILE || err == ENFILE || err == ENOMEM)
            v->kind = AD_V_SHORT; /* ours to pass, not the process's */
        else
            v->kind = AD_V_REFUSED;
        return true;
    }
    uint64_t cookie = 0;
    socklen_t len = sizeof cookie;
    if (getsockopt(ref, SOL_SOCKET, SO_COOKIE, &cookie, &len) != 0 ||
        (j->cookie != 0 ? cookie != j->cookie : !same_socket(ref, j))) {
        /* Another file: kept, never closed here (see above); the taker stops. */
        v->kind = AD_V_FOREIGN;
        return false;
    }
    v->cookie = cookie;
    struct ac_tcp_snapshot snap;
    int unread = 0;
    uint64_t read_at = ac_now_ms(); /* the batch's now_ms is older: the FIN is dated from this */
    if (!ac_tcp_snapshot(ref, &snap) || snap.state != AC_TCP_CLOSE_WAIT) {
        v->kind = AD_V_FINISHED; /* the process finished it meanwhile */
        close(ref);
        return true;
    }
    uint64_t fin_ms = j->fin_ms;
    if (!j->fin_known) {
        fin_ms = fin_date(j, &snap, read_at);
        v->fin_ms = fin_ms;
        v->fin_dated = true;
        if (v->read_ms == j->fin_ms)
            v->read_ms = fin_ms; /* no read seen since: the hold on unread data runs from the FIN */
    }
    if (ioctl(ref, FIONREAD, &unread) != 0)
        unread = 0;
    if (ac_took_data(&snap, unread, &v->taken, &v->taken_known))
        v->read_ms = now_ms; /* still reading: the hold on unread data starts again */
    v->wait_ms = ac_busy_for(&snap, unread, now_ms - fin_ms, now_ms - v->read_ms, ad_opt.grace_ms);
    if (now_ms < fin_ms + ad_opt.grace_ms && v->wait_ms < fin_ms + ad_opt.grace_ms - now_ms)
        v->wait_ms = fin_ms + ad_opt.grace_ms - now_ms; /* dated just now: its grace is still on */
    if (v->wait_ms > 0) {
        v->kind = AD_V_BUSY;
        close(ref);
        return true;
    }
    /* The addresses before the shutdown, after which the socket no longer has a peer. */
    describe(v->where, sizeof v->where, ref);
    v->kind = AD_V_RECLAIMED;
    if (!ad_opt.dry_run) {
        if (shutdown(ref, SHUT_RDWR) != 0) {
            v->kind = AD_V_FAILED;
            v->err = errno;
        } else if (unread > 0) {
            ac_drain_unread(ref);
        }
    }
    close(ref);
    return true;
}

/* ---- in the daemon ------------------------------------------------------------------------- */

static bool no_pidfd; /* the kernel has no pidfd_getfd: said once */

bool ad_reclaim_possible(void)
{
    return !no_pidfd;
}

static const char *const step_text[] = {
    [AD_STEP_PIDFD_OPEN] = "opening a pidfd to it (pidfd_open)",
    [AD_STEP_PIDFD_GETFD] = "taking its descriptors (pidfd_getfd)",
};

enum ad_outcome ad_verdict_apply(struct ad_sock *s, struct ad_process *p,
                                 const struct ad_verdict *v, uint64_t now_ms, uint64_t *wait_ms)
{
    *wait_ms = 0;
    if (v->fin_dated) {
        s->fin_ms = v->fin_ms;
        s->fin_known = true;
    }
    if (s->diag.cookie == 0 && v->cookie != 0)
        s->diag.cookie = v->cookie; /* listed without one: every later take checks it */
    char where[128];                /* " netns=N container=..." */
    struct ac_text t;
    ac_text_init(&t, where, sizeof where);
    ad_netns_fields(&t, s->netns, p);
    if (no_pidfd)
        return AD_FAILED;
    const char *step =
        step_text[v->step == AD_STEP_PIDFD_OPEN ? AD_STEP_PIDFD_OPEN : AD_STEP_PIDFD_GETFD];
    if (v->kind != AD_V_REFUSED && v->kind != AD_V_SHORT)
        p->backoff_ms = 0; /* reached: a later refusal starts the back-off anew */
    switch ((enum ad_verdict_kind)v->kind) {
    case AD_V_RECLAIMED:
        if (ad_opt.dry_run)
            ad_dry_run_total++;
        else
            ad_reclaimed_total++;
        /* root's lines only for a process root's both ways: a container user's whose user
         * namespace root made (user 0, uid 100000 and up) is another user's */
        ad_log_of(p->uid != 0 ? p->uid : p->user, AC_LOG_INFO,
                  "%sshutdown pid=%d fd=%d %s since_fin_ms=%llu comm=%s%s",
                  ad_opt.dry_run ? "dry-run: would " : "", (int)s->holder.pid, s->holder.fd,
                  v->where, (unsigned long long)(now_ms - s->fin_ms), p->comm_field, where);
        return AD_RECLAIMED;
    case AD_V_BUSY:
        s->taken = v->taken;
        s->taken_known = v->taken_known;
        s->read_ms = v->read_ms;
        if (now_ms - s->fin_ms < ad_opt.grace_ms)
            ad_log(AC_LOG_DEBUG, "waiting pid=%d fd=%d: the peer's FIN came %llu ms ago",
                   (int)s->holder.pid, s->holder.fd, (unsigned long long)(now_ms - s->fin_ms));
        else
            ad_log(AC_LOG_DEBUG,
                   "waiting pid=%d fd=%d: still sending or reading, or the peer's data is unread",
                   (int)s->holder.pid, s->holder.fd);
        *wait_ms = v->wait_ms;
        return AD_BUSY;
    case AD_V_FINISHED:
        return AD_LEAVE;
    case AD_V_FOREIGN:
        ad_log(AC_LOG_DEBUG, "left alone pid=%d fd=%d: the number now names another file",
               (int)s->holder.pid, s->holder.fd);
        return AD_RETRY_OWNER;
    case AD_V_FAILED:
        ad_errors_total++;
        ad_log(AC_LOG_ERROR, "failed to shutdown pid=%d fd=%d %s comm=%s%s error=%s",
               (int)s->holder.pid, s->holder.fd, v->where, p->comm_field, where, strerror(v->err));
        return AD_FAILED;
    case AD_V_REFUSED:
        ad_process_unreachable(p, v->err, step);
        if (ad_opt.once)
            return AD_FAILED;
        *wait_ms = p->retry_ms > now_ms ? p->retry_ms - now_ms : ad_opt.interval_ms;
        return AD_BUSY;
    case AD_V_SHORT:
        (void)ad_short_of(v->err, v->step == AD_STEP_PIDFD_OPEN ? "opening a pidfd"
                                                                : "taking a socket (pidfd_getfd)");
        *wait_ms = ad_opt.interval_ms;
        return AD_BUSY;
    case AD_V_NOSYS:
        no_pidfd = true;
        ad_log(AC_LOG_ERROR, "this kernel has no pidfd_getfd (Linux 5.6 or later is needed): "
                             "nothing can be reclaimed; the gauge still counts");
        return AD_FAILED;
    case AD_V_GONE:
    case AD_V_END:
        break;
    }
    return AD_RETRY_OWNER; /* a child of an ended process may hold the socket too */
}
