/*
 * The action on one connection whose grace has run out. Called by the timer with the tracker
 * lock held, after it has made sure no close of the number is under way (lifetime.c): every
 * wrapped close of it now waits for the lock, so the number names the same socket from the
 * identity check to the end of the action.
 *
 * The socket is shut down (our FIN goes out; the peer, which closed first, goes to TIME_WAIT)
 * and its number released: refilled, in one dup3, with a placeholder, a duplicate of one of two
 * dead AF_UNIX SOCK_SEQPACKET sockets made once per process (one blocking, one not). Reads on it
 * see EOF, writes fail with EPIPE and never raise SIGPIPE (a sequenced-packet socket does not),
 * whatever call the program writes with; the number stays the program's until it closes it, so
 * that close can never land on a recycled number, and no kernel socket is held for it (until the
 * program registers it with epoll again: then it gets a dead socket of its own). What else the
 * number answers is a closed TCP connection's (reclaimed.c). AUTOCLOSE_MODE=close skips the
 * shutdown: the release alone drops this process's reference, and the last one ends the socket.
 *
 * Two rules come first. A connection is not idle while it is still sending after the FIN (a
 * half-close reply: its grace starts again from the last send), while the program is still
 * reading the peer's data, or, for up to ten graces after it last read any, while they sit
 * unread. A socket another process may hold (lifetime.c) is released,
 * never shut down, whatever the mode: the other holder keeps it.
 */
#include "autoclose.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

/* "local=1.2.3.4:10540 peer=5.6.7.8:51234" while the socket still has its addresses. Returns the
 * local address's family (0: unknown), which the number keeps once reclaimed (reclaimed.c). */
static int describe_addresses(struct ac_text *t, int fd)
{
    struct sockaddr_storage local, peer;
    socklen_t llen = sizeof local, plen = sizeof peer;
    int family = 0;
    ac_text_str(t, " local=");
    if (AC_REAL(getsockname)(fd, (struct sockaddr *)&local, &llen) == 0) {
        ac_text_sockaddr(t, (struct sockaddr *)&local);
        family = local.ss_family;
    } else {
        ac_text_str(t, "?");
    }
    ac_text_str(t, " peer=");
    if (AC_REAL(getpeername)(fd, (struct sockaddr *)&peer, &plen) == 0)
        ac_text_sockaddr(t, (struct sockaddr *)&peer);
    else
        ac_text_str(t, "?");
    return family;
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

/* The placeholders: numbers of the library's own, in the program's table, marked in the state
 * table so that a close of one by the program takes the slow path (and tells us). Two, because
 * O_NONBLOCK belongs to the open file description every duplicate shares: a reclaimed number gets
 * the one whose flag is the socket's, and a later F_SETFL or FIONBIO on it moves it to the other
 * (reclaimed.c), so that no number's flag changes another's. */
static struct placeholder {
    int fd;
    struct ac_identity id;
} placeholders[2] = {{.fd = -1}, {.fd = -1}}; /* blocking, non-blocking */

/* A dead socket: one end of an AF_UNIX SOCK_SEQPACKET pair whose other end is closed, out of the
 * way of the low numbers a daemon expects to get back from open() or accept(). Every descriptor
 * the library refills a number with is made here. Returns -1 when it cannot be made. */
static int new_dead_socket(bool nonblock, struct ac_identity *id)
{
    int pair[2];
    int type = SOCK_SEQPACKET | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0);
    if (socketpair(AF_UNIX, type, 0, pair) != 0)
        return -1;
    AC_REAL(close)(pair[1]);
    int high = AC_REAL(fcntl)(pair[0], F_DUPFD_CLOEXEC, 100);
    if (high >= 0) {
        AC_REAL(close)(pair[0]);
        pair[0] = high;
    }
    if (!ac_identity_of(pair[0], id)) {
        AC_REAL(close)(pair[0]);
        return -1;
    }
    return pair[0];
}

static void placeholder_make(struct placeholder *p, bool nonblock)
{
    if (p->fd >= 0)
        return;
    p->fd = new_dead_socket(nonblock, &p->id); /* said when a release needs it */
    if ((unsigned)p->fd < AC_FDTAB_SIZE)
        __atomic_store_n(&ac_fdtab[p->fd], AC_FD_PLACEHOLDER, __ATOMIC_RELEASE);
}

void ac_placeholder_prepare(void)
{
    placeholder_make(&placeholders[0], false);
    placeholder_make(&placeholders[1], true);
}

void ac_placeholder_lost(int fd)
{
    for (int i = 0; i < 2; i++) {
        if (fd < 0 || fd != placeholders[i].fd)
            continue;
        if ((unsigned)fd < AC_FDTAB_SIZE)
            __atomic_store_n(&ac_fdtab[fd], AC_FD_NONE, __ATOMIC_RELEASE);
        placeholders[i].fd = -1; /* the program's now: a new one is made at the next release */
    }
}

static bool same_id(const struct ac_identity *a, const struct ac_identity *b)
{
    return a->ino == b->ino && a->cookie == b->cookie;
}

/* Forgets a placeholder the program has closed where no wrapper sees (its number may name
 * another file by now). While the lock is held a wrapped close of it waits. */
static void placeholder_check(const struct placeholder *p)
{
    struct ac_identity now;
    if (p->fd >= 0 &&
        (ac_closing_now(p->fd) || !ac_identity_of(p->fd, &now) || !same_id(&now, &p->id)))
        ac_placeholder_lost(p->fd);
}

/* The timer checks the placeholders once per hold of the tracker lock (its batch). */
static unsigned checked_in_batch; /* the batch the placeholders were last checked in */

static const struct placeholder *usable_placeholder(unsigned batch, bool nonblock)
{
    for (int i = 0; i < 2 && checked_in_batch != batch; i++)
        placeholder_check(&placeholders[i]);
    ac_placeholder_prepare();
    checked_in_batch = batch;
    /* Out of descriptors with only one: that one, rather than no release. */
    const struct placeholder *p = &placeholders[nonblock];
    if (p->fd < 0)
        p = &placeholders[!nonblock];
    return p->fd >= 0 ? p : NULL;
}

bool ac_placeholder_held(int fd)
{
    struct ac_identity now, kept;
    return !ac_in_other_process() && ac_tracker_state(fd) == AC_FD_RECLAIMED &&
           !ac_closing_now(fd) && ac_tracker_identity(fd, &kept) && ac_identity_of(fd, &now) &&
           same_id(&now, &kept);
}

/* Puts `src` at `fd`, keeping the number's close-on-exec flag. */
static bool refill(int src, int fd)
{
    int fd_flags = AC_REAL(fcntl)(fd, F_GETFD);
    return AC_REAL(dup3)(src, fd, fd_flags >= 0 && (fd_flags & FD_CLOEXEC) ? O_CLOEXEC : 0) >= 0;
}

void ac_placeholder_switch(int fd, bool nonblock)
{
    int fl = AC_REAL(fcntl)(fd, F_GETFL);
    if (fl < 0 || ((fl & O_NONBLOCK) != 0) == nonblock)
        return;
    if (ac_tracker_own(fd)) { /* a description of its own: the flag itself */
        AC_REAL(fcntl)(fd, F_SETFL, nonblock ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
        return;
    }
    /* Failing, the flag stays as it was: nothing a dead socket does depends on it. */
    struct placeholder *p = &placeholders[nonblock];
    placeholder_check(p);
    placeholder_make(p, nonblock);
    if (p->fd >= 0 && refill(p->fd, fd))
        ac_tracker_settle(fd, AC_FD_RECLAIMED, &p->id);
}

bool ac_placeholder_own(int fd)
{
    if (ac_tracker_own(fd))
        return true;
    int fl = AC_REAL(fcntl)(fd, F_GETFL);
    struct ac_identity id;
    int dead = new_dead_socket(fl >= 0 && (fl & O_NONBLOCK), &id);
    if (dead < 0)
        return false;
    bool done = refill(dead, fd);
    AC_REAL(close)(dead);
    if (done) {
        ac_tracker_settle(fd, AC_FD_RECLAIMED, &id);
        ac_tracker_set_own(fd, true);
    }
    return done;
}

/* Refills `fd` with the placeholder, keeping its close-on-exec flag. A socket with SO_LINGER set
 * can block in its last close, so then a reference is kept in *release_fd for the caller to close
 * outside the lock. Returns false, changing nothing, when it cannot. */
static bool release_number(int fd, int *release_fd, unsigned batch,
                           const struct ac_identity **now_id)
{
    int fl = AC_REAL(fcntl)(fd, F_GETFL);
    const struct placeholder *ph = usable_placeholder(batch, fl >= 0 && (fl & O_NONBLOCK));
    if (ph == NULL) {
        errno = EMFILE;
        return false;
    }
    *now_id = &ph->id;
    struct linger lg = {0};
    socklen_t len = sizeof lg;
    if (AC_REAL(getsockopt)(fd, SOL_SOCKET, SO_LINGER, &lg, &len) == 0 && lg.l_onoff &&
        lg.l_linger > 0) {
        *release_fd = AC_REAL(fcntl)(fd, F_DUPFD_CLOEXEC, 3);
        if (*release_fd < 0)
            return false;
    }
    if (!refill(ph->fd, fd)) {
        int err = errno;
        if (*release_fd >= 0)
            AC_REAL(close)(*release_fd);
        *release_fd = -1;
        errno = err;
        return false;
    }
    return true;
}

/* How much longer to wait before the connection counts as idle (core/idle.c); 0 when idle.
 * What the program has taken of the peer's data is kept for the next look. */
static uint64_t still_busy_for(int fd, const struct ac_tcp_snapshot *s, const struct ac_due *due,
                               uint64_t now_ms, int *unread_out)
{
    int unread = 0;
    /* The real ioctl: the wrapper would note a zero answer. */
    if (AC_REAL(ioctl)(fd, FIONREAD, &unread) != 0)
        unread = 0;
    *unread_out = unread;
    uint32_t taken = due->taken;
    bool known = due->taken_known;
    uint64_t read_ms = ac_took_data(s, unread, &taken, &known) ? now_ms : due->read_ms;
    ac_tracker_reading(fd, taken, read_ms);
    return ac_busy_for(s, unread, now_ms - due->fin_ms, now_ms - read_ms, ac_cfg.grace_ms);
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

/* Where the program met the FIN (the wrapped call's site, kept with the note), or, for one the
 * sweep found, where it last read the connection. Numbers above the table keep none. A site met
 * before an unload since is not kept either: its address may now be another object's. */
static struct ac_site_note site_of(const struct ac_due *due)
{
    struct ac_site_note note = {.site = AC_SITE_UNKNOWN, .last_read = due->how == AC_FOUND_SWEEP};
    if ((unsigned)due->fd >= AC_FDTAB_SIZE)
        return note;
    if (due->how != AC_FOUND_SWEEP) {
        note.gen = __atomic_load_n(&ac_eof_gen[due->fd], __ATOMIC_RELAXED);
        note.site = __atomic_load_n(&ac_eof_site[due->fd], __ATOMIC_RELAXED);
    } else {
        /* The count first: ac_read_at publishes it after the site. */
        note.gen = __atomic_load_n(&ac_last_read_gen[due->fd], __ATOMIC_ACQUIRE);
        uintptr_t last = __atomic_load_n(&ac_last_read[due->fd], __ATOMIC_RELAXED);
        note.site = last != AC_SITE_UNKNOWN ? last : AC_SITE_NEVER;
    }
    if (note.site > AC_SITE_NEVER && note.gen != ac_unload_gen_now())
        note.site = AC_SITE_UNKNOWN;
    return note;
}

enum ac_log_level ac_act(const struct ac_due *due, uint64_t now_ms, unsigned batch, char *report,
                         size_t report_len, int *release_fd, bool *released,
                         struct ac_site_note *site)
{
    *released = false;
    *site = site_of(due);
    int fd = due->fd;
    struct ac_text t;
    ac_text_init(&t, report, report_len);
    *release_fd = -1;
    uint64_t a_grace = ac_cfg.grace_ms ? ac_cfg.grace_ms : 1;

    if (ac_closing_now(fd)) {
        /* The program is closing it right now: look again in a moment, when it has. */
        ac_tracker_reschedule(fd, now_ms + 1);
        waiting(&t, fd, "the program is closing it");
        return AC_LOG_DEBUG;
    }
    struct ac_identity now_id;
    if (!ac_identity_of(fd, &now_id) || now_id.ino != due->id.ino ||
        now_id.cookie != due->id.cookie) {
        left_alone(&t, fd, "the number now names another file");
        ac_sweep_forget(); /* whatever holds the number now deserves a fresh look */
        return AC_LOG_DEBUG;
    }
    struct ac_tcp_snapshot snap;
    if (!ac_tcp_snapshot(fd, &snap) || snap.state != AC_TCP_CLOSE_WAIT) {
        left_alone(&t, fd, "no longer half-closed (the application finished it)");
        return AC_LOG_DEBUG;
    }
    int unread = 0;
    uint64_t wait = still_busy_for(fd, &snap, due, now_ms, &unread);
    if (wait > 0) {
        ac_tracker_reschedule(fd, now_ms + wait);
        waiting(&t, fd, "still sending or reading, or the peer's data is unread");
        return AC_LOG_DEBUG;
    }

    /* A socket another process may hold is never shut down (that would cut the other holder's
     * use of it too): this process lets go of its own copy instead. */
    bool shared = ac_fd_possibly_shared(fd);
    bool shut = ac_cfg.mode == AC_MODE_SHUTDOWN && !shared;

    /* The addresses go first: after the action the socket no longer has them. */
    char addresses[128];
    struct ac_text addr;
    ac_text_init(&addr, addresses, sizeof addresses);
    int family = describe_addresses(&addr, fd);

    bool done = true;
    const struct ac_identity *refilled_with = NULL;
    int err = 0;
    const char *failed_step = "";
    if (!ac_cfg.dry_run) {
        if (shut && shutdown(fd, SHUT_RDWR) != 0) {
            done = false;
            err = errno;
            failed_step = "shutdown";
        }
        /* Only from a socket this process alone holds: the queue is every holder's, and another
         * may yet read it. */
        if (done && unread > 0 && !shared)
            ac_drain_unread(fd);
        if (done && !release_number(fd, release_fd, batch, &refilled_with)) {
            done = false;
            err = errno;
            failed_step = "release";
        }
    }
    if (ac_cfg.dry_run) {
        ac_tracker_settle(fd, AC_FD_OBSERVED, NULL);
    } else if (done) {
        ac_tracker_settle(fd, AC_FD_RECLAIMED, refilled_with);
        ac_tracker_set_family(fd, family);
        ac_tracker_set_own(fd, false);
        *released = true;
    } else if (shut && failed_step[0] == 'r') {
        /* Shut down but still holding its number: the FIN is out; try the release again. */
        ac_tracker_reschedule(fd, now_ms + a_grace);
    } else {
        ac_tracker_settle(fd, AC_FD_NONE, NULL); /* nothing more the shim can do */
    }

    ac_stats_touch_on_timer(); /* the pending count went down */
    if (ac_cfg.dry_run)
        ac_stat_add_on_timer(AC_STAT_DRY_RUN_OBSERVED);
    else if (done)
        ac_stat_reclaimed_on_timer(!shut, due->how, site->site, site->gen);
    else
        ac_stat_add_on_timer(AC_STAT_ERRORS);

    if (ac_cfg.dry_run)
        ac_text_str(&t, "dry-run: would ");
    else if (!done)
        ac_text_str(&t, "failed to ");
    ac_text_str(&t, shut ? "shutdown" : "close");
    ac_text_str(&t, " fd=");
    ac_text_int(&t, fd);
    ac_text_str(&t, addresses);
    ac_text_str(&t, " since_fin_ms=");
    ac_text_uint(&t, now_ms - due->fin_ms);
    ac_text_str(&t, " found=");
    ac_text_str(&t, found_by_name(due->how));
    site->at = t.len; /* the site's tokens go here, once the timer holds no lock */
    if (shared)
        ac_text_str(&t, " shared=yes");
    if (!done) {
        ac_text_str(&t, " step=");
        ac_text_str(&t, failed_step);
        ac_text_str(&t, " error=");
        ac_text_str(&t, strerrordesc_np(err) ? strerrordesc_np(err) : "unknown");
        return AC_LOG_ERROR;
    }
    return AC_LOG_INFO;
}
