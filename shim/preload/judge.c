/*
 * The judgement: is this zero-length read the peer's FIN on a TCP connection we should handle?
 *
 * Runs on the timer when a noted EOF outlived the grace, or when the sweep finds a connection in
 * CLOSE_WAIT, so its system calls never touch the hot path. Zero is not proof of EOF (a UDP
 * datagram can be empty; a pipe or an AF_UNIX socket has no FIN to answer), so the kernel has the
 * last word: TCP_INFO must say CLOSE_WAIT.
 */
#include "autoclose.h"

#include <errno.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

bool ac_identity_of(int fd, struct ac_identity *id)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode))
        return false;
    id->ino = (uint32_t)st.st_ino; /* get_next_ino(): never more than 32 bits */
    uint64_t cookie = 0;
    socklen_t len = sizeof cookie;
    if (AC_REAL(getsockopt)(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len) != 0)
        cookie = 0; /* kernels before 4.14: the inode alone has to do */
    id->cookie = cookie;
    return true;
}

static unsigned port_of(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)ss)->sin_port);
    if (ss->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
    return 0;
}

static bool wanted_by_port_filter(int fd)
{
    if (ac_cfg.ports.all)
        return true;
    struct sockaddr_storage local, peer;
    socklen_t llen = sizeof local, plen = sizeof peer;
    if (AC_REAL(getsockname)(fd, (struct sockaddr *)&local, &llen) == 0 &&
        ac_portset_has(&ac_cfg.ports, port_of(&local)))
        return true;
    return AC_REAL(getpeername)(fd, (struct sockaddr *)&peer, &plen) == 0 &&
           ac_portset_has(&ac_cfg.ports, port_of(&peer));
}

static void log_pending(int fd, uint64_t deadline_ms)
{
    if (ac_cfg.log_level < AC_LOG_DEBUG)
        return;
    char line[160];
    struct ac_text t;
    ac_text_init(&t, line, sizeof line);
    ac_text_str(&t, "pending fd=");
    ac_text_int(&t, fd);
    ac_text_str(&t, ": peer closed its side; acting in ");
    uint64_t now = ac_now_ms();
    ac_text_uint(&t, deadline_ms > now ? deadline_ms - now : 0);
    ac_text_str(&t, " ms unless the application closes it");
    ac_log(AC_LOG_DEBUG, line);
}

/* A half-closed connection outside AUTOCLOSE_PORTS, once per connection (the tracker remembers
 * it): at debug, so that an operator can see why it was never reclaimed. */
static void log_skipped(int fd)
{
    if (ac_cfg.log_level < AC_LOG_DEBUG)
        return;
    struct sockaddr_storage local = {0}, peer = {0};
    socklen_t llen = sizeof local, plen = sizeof peer;
    char line[200];
    struct ac_text t;
    ac_text_init(&t, line, sizeof line);
    ac_text_str(&t, "left alone fd=");
    ac_text_int(&t, fd);
    if (AC_REAL(getsockname)(fd, (struct sockaddr *)&local, &llen) == 0) {
        ac_text_str(&t, " local=");
        ac_text_sockaddr(&t, (const struct sockaddr *)&local);
    }
    if (AC_REAL(getpeername)(fd, (struct sockaddr *)&peer, &plen) == 0) {
        ac_text_str(&t, " peer=");
        ac_text_sockaddr(&t, (const struct sockaddr *)&peer);
    }
    ac_text_str(&t, ": neither port is in AUTOCLOSE_PORTS");
    ac_log(AC_LOG_DEBUG, line);
}

enum ac_verdict ac_judge(int fd, struct ac_identity *id, bool stable)
{
    /* One system call turns away the common case: a file or pipe at its end, a live connection
     * (readiness callers meet many), or no TCP socket at all. */
    int state = ac_tcp_state(fd);
    if (state < 0)
        return errno == EBADF ? AC_VERDICT_GONE : AC_VERDICT_NOT_TCP;
    if (state != AC_TCP_CLOSE_WAIT)
        return AC_VERDICT_GONE;
    if (!ac_identity_of(fd, id))
        return AC_VERDICT_GONE;
    /* Unless the number is known to stay put, the identity is read on both sides of a second
     * look at the state, so the state surely belongs to that socket even if another thread
     * closes the number and a new connection takes it meanwhile (cookies are never reused). */
    struct ac_identity again;
    if (!stable && (ac_tcp_state(fd) != AC_TCP_CLOSE_WAIT || !ac_identity_of(fd, &again) ||
                    again.ino != id->ino || again.cookie != id->cookie))
        return AC_VERDICT_GONE;
    return wanted_by_port_filter(fd) ? AC_VERDICT_PENDING : AC_VERDICT_IGNORED;
}

/* Sets the state byte of a number the tracker has no entry for. */
static void set_untracked(int fd, enum ac_fd_state state)
{
    if ((unsigned)fd < AC_FDTAB_SIZE)
        __atomic_store_n(&ac_fdtab[fd], (uint8_t)state, __ATOMIC_RELEASE);
}

bool ac_judge_and_track(int fd, enum ac_found_by how, uint64_t fin_ms, bool locked)
{
    /* Under the lock, with a state the program's close must wait for and no close of the
     * number under way, the number names one file throughout. */
    struct ac_identity id;
    bool stable = locked && !ac_closing_now(fd);
    enum ac_verdict verdict = ac_judge(fd, &id, stable);
    sigset_t saved;
    if (!locked)
        ac_tracker_lock(&saved);
    enum ac_add_result added = AC_ADD_KNOWN;
    bool ignored_fresh = false;
    uint64_t deadline = fin_ms + ac_cfg.grace_ms;
    switch (verdict) {
    case AC_VERDICT_GONE:
        if (ac_tracker_state(fd) == AC_FD_NONE)
            set_untracked(fd, AC_FD_NONE);
        break;
    case AC_VERDICT_NOT_TCP:
        if (ac_tracker_state(fd) == AC_FD_NONE)
            set_untracked(fd, AC_FD_NOT_TCP); /* not asked again until the number is closed */
        break;
    case AC_VERDICT_IGNORED:
        /* Remembered, so that it is counted once however often it is read or swept. */
        ignored_fresh = ac_tracker_ignore(fd, &id);
        break;
    case AC_VERDICT_PENDING:
        added = ac_tracker_add(fd, &id, how, fin_ms, deadline);
        if (added == AC_ADD_NEW_EARLIEST)
            ac_timer_deadline(deadline, true);
        else if (added == AC_ADD_NO_MEMORY && ac_tracker_state(fd) == AC_FD_NONE)
            set_untracked(fd, AC_FD_NONE);
        break;
    }
    if (!locked)
        ac_tracker_unlock(&saved);

    bool fresh = added == AC_ADD_NEW || added == AC_ADD_NEW_EARLIEST;
    if (fresh) {
        if (locked)
            ac_stats_touch_on_timer();
        else
            ac_stats_touch();
        log_pending(fd, deadline);
    } else if (ignored_fresh) {
        if (locked)
            ac_stat_add_on_timer(AC_STAT_PORT_FILTER_SKIPPED);
        else
            ac_stat_add(AC_STAT_PORT_FILTER_SKIPPED);
        log_skipped(fd);
    } else if (added == AC_ADD_NO_MEMORY) {
        if (locked)
            ac_stat_add_on_timer(AC_STAT_ERRORS);
        else
            ac_stat_add(AC_STAT_ERRORS);
        ac_log(AC_LOG_ERROR, "out of memory: a half-closed connection is left as it is");
    }
    return fresh;
}
