/*
 * The action on one due socket of another process. A reference to it is taken with
 * pidfd_open + pidfd_getfd (Linux 5.6; no ptrace stop: the process runs on), and everything after
 * that is done on the reference, which is checked first to be the very socket the kernel listed
 * (its cookie; its inode on a kernel without SO_COOKIE): a number the process closed and reused
 * meanwhile is left alone. The reference is our own, so no race with the process's close can move
 * it to another file.
 *
 * shutdown(SHUT_RDWR) on it sends our FIN (the peer, which closed first, goes to TIME_WAIT) and
 * ends the connection for every holder: the process's next read sees EOF, its next write fails.
 * Its descriptor stays open and its own, so a close it makes later never lands on a reused number.
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

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434 /* the same number on every architecture */
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif
#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

static bool no_pidfd; /* the kernel has no pidfd_getfd: said once */

static void say_no_pidfd(void)
{
    if (no_pidfd)
        return;
    no_pidfd = true;
    ad_log(AC_LOG_ERROR, "this kernel has no pidfd_getfd (Linux 5.6 or later is needed): nothing "
                         "can be reclaimed; the gauge still counts");
}

/* A pidfd for the process, opened once and kept; checked against the pid's start time, since the
 * pid may have been reused between the lookup and now. */
static int pidfd_of(struct ad_process *p)
{
    /* A selected process: the pidfd opened at start, its identity; never one opened now, which
     * could be its number's next owner's. */
    int kept = ad_selected_pidfd(p->pid);
    if (kept >= 0 || ad_opt.npids > 0)
        return kept;
    if (p->pidfd >= 0)
        return p->pidfd;
    int pfd = (int)syscall(SYS_pidfd_open, p->pid, 0);
    if (pfd < 0)
        return -1;
    unsigned long long start = 0;
    (void)ad_start_time(p->pid, &start);
    if (start != p->start_time) {
        close(pfd);
        errno = ESRCH;
        return -1;
    }
    p->pidfd = pfd;
    return pfd;
}

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

/* The cookie alone tells sockets apart (never reused while the system runs); a kernel without
 * SO_COOKIE (before Linux 4.12) gets the inode compared instead, which sockfs does not reuse
 * while the socket exists, and ours is held by the reference. */
static bool is_the_socket(int ref, const struct ad_sock *s)
{
    uint64_t cookie = 0;
    socklen_t len = sizeof cookie;
    if (getsockopt(ref, SOL_SOCKET, SO_COOKIE, &cookie, &len) == 0)
        return cookie == s->diag.cookie;
    struct stat st;
    return fstat(ref, &st) == 0 && S_ISSOCK(st.st_mode) && (uint32_t)st.st_ino == s->ino;
}

enum ad_outcome ad_reclaim(struct ad_sock *s, uint64_t now_ms, uint64_t *wait_ms)
{
    *wait_ms = 0;
    struct ad_process *p = ad_process(s->holder.pid);
    if (p == NULL)
        return AD_RETRY_OWNER; /* exited: a child of it may hold the socket too */
    if (p->preloaded)
        return AD_LEAVE;
    if (p->unreachable || no_pidfd)
        return AD_FAILED;
    int pfd = pidfd_of(p);
    if (pfd < 0) {
        if (errno == ESRCH)
            return AD_RETRY_OWNER;
        if (errno == ENOSYS) {
            say_no_pidfd();
            return AD_FAILED;
        }
        ad_process_unreachable(p, errno, "opening a pidfd to it");
        return AD_FAILED;
    }
    int ref = (int)syscall(SYS_pidfd_getfd, pfd, s->holder.fd, 0);
    if (ref < 0) {
        int err = errno;
        if (err == EBADF || err == ESRCH)
            return AD_RETRY_OWNER; /* the number was closed, or the process ended */
        if (err == ENOSYS) {
            say_no_pidfd();
            return AD_FAILED;
        }
        if (err == EMFILE || err == ENFILE || err == ENOMEM) {
            *wait_ms = ad_opt.interval_ms;
            return AD_BUSY; /* ours to pass, not the process's */
        }
        ad_process_unreachable(p, err, "taking its descriptors (pidfd_getfd)");
        return AD_FAILED;
    }
    enum ad_outcome out;
    struct ac_tcp_snapshot snap;
    int unread = 0;
    if (!is_the_socket(ref, s)) {
        ad_log(AC_LOG_DEBUG, "left alone pid=%d fd=%d: the number now names another file",
               (int)s->holder.pid, s->holder.fd);
        out = AD_RETRY_OWNER;
    } else if (!ac_tcp_snapshot(ref, &snap) || snap.state != AC_TCP_CLOSE_WAIT) {
        out = AD_LEAVE; /* the process finished it meanwhile */
    } else {
        if (ioctl(ref, FIONREAD, &unread) != 0)
            unread = 0;
        if (ac_took_data(&snap, unread, &s->taken, &s->taken_known))
            s->read_ms = now_ms; /* still reading: the hold on unread data starts again */
        *wait_ms =
            ac_busy_for(&snap, unread, now_ms - s->fin_ms, now_ms - s->read_ms, ad_opt.grace_ms);
        out = *wait_ms > 0 ? AD_BUSY : AD_RECLAIMED;
    }
    if (out == AD_BUSY && *wait_ms > 0)
        ad_log(AC_LOG_DEBUG,
               "waiting pid=%d fd=%d: still sending or reading, or the peer's data is "
               "unread",
               (int)s->holder.pid, s->holder.fd);
    if (out != AD_RECLAIMED) {
        close(ref);
        return out;
    }

    /* The addresses only for a line that will be written (a storm of 10,000 reclaims logs 200),
     * and before the shutdown, after which the socket no longer has a peer. */
    char where[160] = "";
    bool say = ad_log_take(AC_LOG_INFO);
    if (say)
        describe(where, sizeof where, ref);
    unsigned long long since = (unsigned long long)(now_ms - s->fin_ms);
    if (ad_opt.dry_run) {
        ad_dry_run_total++;
    } else if (shutdown(ref, SHUT_RDWR) != 0) {
        int err = errno;
        ad_errors_total++;
        if (!say)
            describe(where, sizeof where, ref);
        ad_log(AC_LOG_ERROR, "failed to shutdown pid=%d fd=%d %s comm=%s error=%s",
               (int)s->holder.pid, s->holder.fd, where, p->comm, strerror(err));
        say = false;
        out = AD_FAILED;
    } else {
        if (unread > 0)
            ac_drain_unread(ref);
        ad_reclaimed_total++;
    }
    if (say)
        ad_log_taken("%sshutdown pid=%d fd=%d %s since_fin_ms=%llu comm=%s",
                     ad_opt.dry_run ? "dry-run: would " : "", (int)s->holder.pid, s->holder.fd,
                     where, since, p->comm);
    close(ref);
    return out;
}
