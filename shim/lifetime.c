/*
 * What the descriptor-lifetime wrappers share: the application closing, replacing or reusing a
 * number the tracker knows. The wrappers call these only after the one-byte hint says the
 * number is known; the lock is taken before the real close so the timer can never act between
 * the two.
 */
#include "autoclose.h"

#include <errno.h>

void ac_fd_closing(int fd)
{
    sigset_t saved;
    ac_tracker_lock(&saved);
    ac_tracker_forget(fd);
    ac_tracker_unlock(&saved);
}

void ac_fd_range_closing(unsigned lo, unsigned hi)
{
    if (ac_tracker_entries_hint() == 0)
        return;
    sigset_t saved;
    ac_tracker_lock(&saved);
    ac_tracker_forget_range(lo, hi);
    ac_tracker_unlock(&saved);
}

bool ac_fd_reclaimed(int fd)
{
    enum ac_fd_state hint = ac_fd_state_hint(fd);
    if (hint == AC_FD_NONE)
        return false;
    struct ac_identity seen, known;
    bool same_socket = ac_identity_of(fd, &seen);
    sigset_t saved;
    ac_tracker_lock(&saved);
    enum ac_fd_state state = ac_tracker_state(fd);
    if (state != AC_FD_NONE && ac_tracker_identity(fd, &known) &&
        (!same_socket || seen.ino != known.ino || seen.cookie != known.cookie)) {
        ac_tracker_forget(fd); /* stale: the number names a newer file now */
        state = AC_FD_NONE;
    }
    ac_tracker_unlock(&saved);
    return state == AC_FD_RECLAIMED;
}

uint32_t ac_fork_epoch;
uint32_t ac_fd_epoch[AC_FDTAB_SIZE];

/* A socket is shared with another process if a fork happened since it was accepted or
 * connected here; one that came from elsewhere (inherited through exec) is taken as shared as
 * soon as this process has forked. Sharing through SCM_RIGHTS goes unseen. */
bool ac_fd_possibly_shared(int fd)
{
    uint32_t now = __atomic_load_n(&ac_fork_epoch, __ATOMIC_RELAXED);
    if ((unsigned)fd >= AC_FDTAB_SIZE)
        return now != 0;
    return __atomic_load_n(&ac_fd_epoch[fd], __ATOMIC_RELAXED) != now;
}

void ac_fork_happened(void)
{
    __atomic_add_fetch(&ac_fork_epoch, 1, __ATOMIC_RELAXED);
}

/* The sweep needs the timer running once the process has a TCP connection. Checked with one
 * load; the socket's protocol is asked only until the timer runs, so AF_UNIX or UDP programs
 * never get a thread. */
void ac_sweep_wanted_slow(int fd)
{
    if (!__atomic_load_n(&ac_active, __ATOMIC_RELAXED) || ac_cfg.sweep_ms == 0)
        return;
    int saved_errno = errno;
    if (ac_tcp_state(fd) >= 0)
        ac_timer_ensure_running();
    errno = saved_errno;
}
