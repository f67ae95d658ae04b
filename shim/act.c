/*
 * The action on one connection whose grace has run out. Called by the timer with the tracker
 * lock held, so between the identity check and the action no wrapped close or dup2 can slip in.
 *
 * shutdown mode: shutdown(SHUT_RDWR) sends our FIN; the peer, which closed first, goes to
 *   TIME_WAIT and our socket leaves CLOSE_WAIT. The descriptor stays the application's.
 * close mode: the socket itself is released, and the number is refilled, in one dup3, with a
 *   placeholder: an AF_UNIX socket whose partner is gone, so reads see EOF and writes fail, like
 *   any closed connection. The number stays reserved until the application closes it, so that
 *   close can never land on a recycled number.
 *
 * Two rules come first. A connection is not idle while it is still sending after the FIN (a
 * half-close reply: its grace starts again from the last send) or, for up to ten graces, while
 * the peer's data sits unread. A socket another process may share (a fork since it was
 * accepted) is released, never shut down, whatever the mode.
 *
 * On a timer with a descriptor table of its own (reach.c) every question and the shutdown go to
 * its own reference to the socket's file, and a release, which needs the application's table,
 * waits for the timer that shares it (timer.c starts one at the first fork).
 */
#include "autoclose.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

/* "local=1.2.3.4:10540 peer=5.6.7.8:51234" while the socket still has its addresses. */
static void describe_addresses(struct ac_text *t, int fd)
{
    struct sockaddr_storage local, peer;
    socklen_t llen = sizeof local, plen = sizeof peer;
    ac_text_str(t, " local=");
    if (getsockname(fd, (struct sockaddr *)&local, &llen) == 0)
        ac_text_sockaddr(t, (struct sockaddr *)&local);
    else
        ac_text_str(t, "?");
    ac_text_str(t, " peer=");
    if (getpeername(fd, (struct sockaddr *)&peer, &plen) == 0)
        ac_text_sockaddr(t, (struct sockaddr *)&peer);
    else
        ac_text_str(t, "?");
}

static const char *found_by_name(enum ac_found_by how)
{
    switch (how) {
    case AC_FOUND_READ:
        return "read";
    case AC_FOUND_READY:
        return "ready";
    case AC_FOUND_SWEEP:
        return "sweep";
    }
    return "?";
}

/* Replaces the socket at `fd` with a placeholder; on success *release_fd holds a private
 * duplicate of the socket for the caller to close outside the lock (the last close of a socket
 * with SO_LINGER set can block). Returns false, changing nothing, when it cannot. */
static bool release_socket(int fd, int *release_fd)
{
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
        return false;
    int fd_flags = fcntl(fd, F_GETFD);
    int fl_flags = fcntl(fd, F_GETFL);
    if (fl_flags >= 0 && (fl_flags & O_NONBLOCK))
        fcntl(pair[0], F_SETFL, O_NONBLOCK);
    int keep = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    int ok = AC_REAL(dup3)(pair[0], fd, fd_flags >= 0 && (fd_flags & FD_CLOEXEC) ? O_CLOEXEC : 0);
    AC_REAL(close)(pair[0]);
    AC_REAL(close)(pair[1]);
    if (ok < 0) {
        if (keep >= 0)
            AC_REAL(close)(keep);
        return false;
    }
    *release_fd = keep;
    return true;
}

/* How much longer to wait before the connection counts as idle: the grace runs from its last
 * activity after the FIN, not from the FIN alone, so a reply still being written to a peer that
 * half-closed (a legal TCP conversation) is never cut. TCP_INFO sees sends by every process that
 * shares the socket. And while the peer's last request still sits unread (found by the sweep or
 * by poll before the application got to it), the application may yet answer it: cutting then
 * would lose it, so that holds the connection for up to ten graces. Returns 0 when idle. */
static uint64_t still_busy_for(int fd, const struct ac_tcp_snapshot *s, const struct ac_due *due,
                               uint64_t now_ms)
{
    uint64_t grace = ac_cfg.grace_ms;
    int unread = 0;
    /* The real ioctl: the wrapper would judge a zero answer and take the lock held here. */
    if (AC_REAL(ioctl)(fd, FIONREAD, &unread) != 0)
        unread = 0;
    if (s->unacked > 0 || s->notsent_bytes > 0)
        return grace > 0 ? grace : 1; /* data in flight: look again later */
    uint64_t since_fin = now_ms - due->fin_ms;
    if (unread > 0) {
        /* The peer's last words wait for ten graces; a server that has not read them by then
         * never will. Until then, look again at doubling intervals. */
        uint64_t hold = AC_UNREAD_GRACES * grace;
        if (since_fin < hold) {
            uint64_t next = since_fin > grace ? since_fin : grace;
            return next < hold - since_fin ? (next > 0 ? next : 1) : hold - since_fin;
        }
        return 0;
    }
    uint64_t since_sent = s->last_data_sent_ms;
    if (since_sent < since_fin && since_sent < grace)
        return grace - since_sent; /* sent after the FIN was seen, and recently */
    return 0;
}

static void left_alone(struct ac_text *t, int fd, const char *why)
{
    ac_tracker_settle(fd, AC_FD_NONE, NULL);
    ac_text_str(t, "left alone fd=");
    ac_text_int(t, fd);
    ac_text_str(t, ": ");
    ac_text_str(t, why);
}

static void waiting(struct ac_text *t, int fd, const char *why)
{
    ac_text_str(t, "waiting fd=");
    ac_text_int(t, fd);
    ac_text_str(t, ": ");
    ac_text_str(t, why);
}

enum ac_log_level ac_act(const struct ac_due *due, uint64_t now_ms, char *report, size_t report_len,
                         int *release_fd)
{
    int fd = due->fd;
    struct ac_text t;
    ac_text_init(&t, report, report_len);
    *release_fd = -1;
    uint64_t a_grace = ac_cfg.grace_ms ? ac_cfg.grace_ms : 1;

    /* `sock` is what every question below goes to: the number, or the timer's own reference,
     * which the caller closes after unlocking (its last close may be the socket's). */
    int sock = ac_reach_open(fd);
    if (sock < 0 && errno != EBADF) {
        int why = errno;
        ac_tracker_reschedule(fd, now_ms + a_grace);
        ac_stat_add_on_timer(AC_STAT_ERRORS);
        ac_text_str(&t, "cannot reach fd=");
        ac_text_int(&t, fd);
        ac_text_str(&t, " from the timer: ");
        ac_text_str(&t, strerror(why));
        return AC_LOG_ERROR;
    }
    if (ac_reach_own_table_here())
        *release_fd = sock;

    struct ac_identity now_id;
    if (sock < 0 || !ac_identity_of(sock, &now_id) || now_id.ino != due->id.ino ||
        now_id.cookie != due->id.cookie) {
        left_alone(&t, fd, "the number now names another file");
        ac_sweep_forget(); /* whatever holds the number now deserves a fresh look */
        return AC_LOG_DEBUG;
    }
    struct ac_tcp_snapshot snap;
    if (!ac_tcp_snapshot(sock, &snap) || snap.state != AC_TCP_CLOSE_WAIT) {
        left_alone(&t, fd, "no longer half-closed (the application finished it)");
        return AC_LOG_DEBUG;
    }
    uint64_t wait = still_busy_for(sock, &snap, due, now_ms);
    if (wait > 0) {
        ac_tracker_reschedule(fd, now_ms + wait);
        waiting(&t, fd, "still sending, or the peer's data is unread");
        return AC_LOG_DEBUG;
    }

    /* A socket another process may share is never shut down (that would cut the other
     * process's use of it too): this process lets go of its own copy instead. */
    bool shared = ac_fd_possibly_shared(fd);
    bool release = ac_cfg.mode == AC_MODE_CLOSE || shared;
    if (release && !ac_cfg.dry_run && ac_reach_own_table_here()) {
        /* A fork since this timer started: the one that shares the table takes over. */
        ac_tracker_reschedule(fd, now_ms + a_grace);
        waiting(&t, fd, "a release needs the application's descriptor table");
        return AC_LOG_DEBUG;
    }

    /* The addresses go first: after the action the socket no longer has them. */
    char addresses[128];
    struct ac_text addr;
    ac_text_init(&addr, addresses, sizeof addresses);
    describe_addresses(&addr, sock);

    bool done = true, fell_back = false;
    int err = 0;
    enum ac_fd_state settled = AC_FD_OBSERVED;
    if (!ac_cfg.dry_run) {
        if (release && !release_socket(fd, release_fd)) {
            err = errno;
            if (shared) {
                done = false; /* never shut down a shared socket; try again after a grace */
                ac_tracker_reschedule(fd, now_ms + a_grace);
            } else {
                fell_back = true; /* no descriptor to spare for the placeholder */
                release = false;
            }
        }
        if (done && !release && shutdown(sock, SHUT_RDWR) != 0) {
            done = false;
            err = errno;
        }
        settled = done ? AC_FD_RECLAIMED : AC_FD_PENDING;
    }
    /* After a release the number holds the placeholder: remember that identity, so the write
     * wrappers can still tell the number is the one the shim reclaimed. */
    struct ac_identity placeholder;
    bool replaced = done && release && !ac_cfg.dry_run && ac_identity_of(fd, &placeholder);
    if (settled == AC_FD_PENDING && !shared)
        settled = AC_FD_NONE; /* shutdown failed: nothing more the shim can do */
    ac_tracker_settle(fd, settled, replaced ? &placeholder : NULL);

    ac_stats_touch_on_timer(); /* the pending count went down */
    if (ac_cfg.dry_run)
        ac_stat_add_on_timer(AC_STAT_DRY_RUN_OBSERVED);
    else if (done)
        ac_stat_reclaimed_on_timer(release, due->how);
    else
        ac_stat_add_on_timer(AC_STAT_ERRORS);

    if (ac_cfg.dry_run)
        ac_text_str(&t, "dry-run: would ");
    else if (!done)
        ac_text_str(&t, "failed to ");
    ac_text_str(&t, release ? "close" : "shutdown");
    ac_text_str(&t, " fd=");
    ac_text_int(&t, fd);
    ac_text_str(&t, addresses);
    ac_text_str(&t, " since_fin_ms=");
    ac_text_uint(&t, now_ms - due->fin_ms);
    ac_text_str(&t, " found=");
    ac_text_str(&t, found_by_name(due->how));
    if (shared)
        ac_text_str(&t, " shared=yes");
    if (fell_back)
        ac_text_str(&t,
                    " (close mode fell back to shutdown: no descriptor free for a placeholder)");
    if (!done) {
        ac_text_str(&t, " error=");
        ac_text_str(&t, strerror(err));
        return AC_LOG_ERROR;
    }
    return AC_LOG_INFO;
}
