/*
 * What the descriptor-lifetime wrappers share: the application closing, replacing or reusing a
 * number the tracker knows. The wrappers call these only after the one-byte hint says the
 * number is known; the lock is taken before the real close so the timer can never act between
 * the two.
 */
#include "autoclose.h"

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
