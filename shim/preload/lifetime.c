/*
 * What the descriptor-lifetime wrappers share: the program closing, replacing or reusing a
 * number the shim knows, whether another process may hold a socket, and whether the caller is
 * this process at all (a vfork child runs in its memory).
 */
#include "autoclose.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

uint8_t ac_closing[AC_FDTAB_SIZE];
uint32_t ac_closing_high;

bool ac_closing_now(int fd)
{
    /* The other half of ac_closing_begin's increment: a sequentially consistent read-modify-write
     * of the same count. The state the timer acts on was stored (seq_cst) before this, so a closer
     * that read the old state has its mark seen here. */
    if ((unsigned)fd < AC_FDTAB_SIZE)
        return __atomic_fetch_add(&ac_closing[fd], 0, __ATOMIC_SEQ_CST) != 0;
    return fd >= 0 && __atomic_fetch_add(&ac_closing_high, 0, __ATOMIC_SEQ_CST) != 0;
}

pid_t ac_pid;
bool ac_vm_shared_child_seen;

/* A child that shares this process's memory but not its descriptor table (vfork, clone with
 * CLONE_VM) must not change what the shim knows of the parent's descriptors. getpid is asked
 * only once such a child has ever been started. */
bool ac_in_other_process(void)
{
    return AC_UNLIKELY(__atomic_load_n(&ac_vm_shared_child_seen, __ATOMIC_RELAXED)) &&
           (pid_t)syscall(SYS_getpid) != __atomic_load_n(&ac_pid, __ATOMIC_RELAXED);
}

void ac_fd_closing(int fd)
{
    if (ac_in_other_process())
        return;
    bool own = false;
    if ((unsigned)fd < AC_FDTAB_SIZE) {
        uint8_t state = __atomic_load_n(&ac_fdtab[fd], __ATOMIC_ACQUIRE);
        /* A note or a "not TCP" is the program's to clear: one compare-and-swap, no lock. A
         * failed one means the timer has just taken the note: then the lock, below. */
        if ((ac_fd_noted((enum ac_fd_state)state) || state == AC_FD_NOT_TCP) &&
            __atomic_compare_exchange_n(&ac_fdtab[fd], &state, AC_FD_NONE, false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_RELAXED))
            return;
        own = state == AC_FD_LIBRARY;
    }
    int saved_errno = errno;
    /* One of the library's own descriptors: the timer may be using it; its work ends first. */
    sigset_t saved_work, saved;
    if (own)
        ac_timer_work_lock_signals(&saved_work);
    ac_tracker_lock(&saved);
    ac_tracker_forget(fd);
    ac_placeholder_lost(fd);
    if (own)
        ac_own_forgotten(fd);
    if ((unsigned)fd < AC_FDTAB_SIZE && ac_tracker_state(fd) == AC_FD_NONE)
        __atomic_store_n(&ac_fdtab[fd], AC_FD_NONE, __ATOMIC_RELEASE);
    ac_tracker_unlock(&saved);
    if (own)
        ac_timer_work_unlock_signals(&saved_work);
    errno = saved_errno;
}

void ac_fd_range_closing(unsigned lo, unsigned hi)
{
    if (lo > hi || ac_in_other_process())
        return;
    int saved_errno = errno;
    /* The range may hold the library's own descriptors: the timer's use of them ends first. */
    sigset_t saved_work, saved;
    ac_timer_work_lock_signals(&saved_work);
    ac_tracker_lock(&saved);
    ac_tracker_forget_range(lo, hi);
    /* Notes, "not TCP" marks, the placeholder and the library's own have no tracker entry.
     * Stamps are cleared where there are any: a page never stamped stays untouched (a forked
     * child's, shared). */
    unsigned top = hi < AC_FDTAB_SIZE - 1 ? hi : AC_FDTAB_SIZE - 1;
    for (unsigned fd = lo; fd <= top && lo < AC_FDTAB_SIZE; fd++) {
        if (__atomic_load_n(&ac_fdtab[fd], __ATOMIC_RELAXED) != AC_FD_NONE) {
            ac_placeholder_lost((int)fd);
            ac_own_forgotten((int)fd);
            if (ac_tracker_state((int)fd) == AC_FD_NONE)
                __atomic_store_n(&ac_fdtab[fd], AC_FD_NONE, __ATOMIC_RELEASE);
        }
        if (__atomic_load_n(&ac_fd_epoch[fd], __ATOMIC_RELAXED) != 0)
            ac_fd_shared((int)fd);
    }
    ac_tracker_unlock(&saved);
    ac_timer_work_unlock_signals(&saved_work);
    errno = saved_errno;
}

uint32_t ac_spawn_epoch = 1;
uint32_t ac_fd_epoch[AC_FDTAB_SIZE];
int ac_highest_born = -1;

bool ac_born_connection_held(void)
{
    int high = __atomic_load_n(&ac_highest_born, __ATOMIC_RELAXED);
    for (int fd = 0; fd <= high; fd++)
        if (__atomic_load_n(&ac_fd_epoch[fd], __ATOMIC_RELAXED) != 0)
            return true;
    return false;
}

bool ac_fd_possibly_shared(int fd)
{
    if ((unsigned)fd >= AC_FDTAB_SIZE)
        return true; /* no stamp to tell: the safe answer */
    return __atomic_load_n(&ac_fd_epoch[fd], __ATOMIC_RELAXED) !=
           __atomic_load_n(&ac_spawn_epoch, __ATOMIC_RELAXED);
}

/* Another process is being started: it may inherit every socket open now. */
void ac_process_spawning(void)
{
    __atomic_add_fetch(&ac_spawn_epoch, 1, __ATOMIC_RELAXED);
}

/* The control data is the caller's (sending: the kernel has not checked it yet) or the kernel's
 * (received); nothing is read past msg_controllen, whatever a header's length claims. */
void ac_rights_shared(const struct msghdr *msg)
{
    const unsigned char *end = (const unsigned char *)msg->msg_control + msg->msg_controllen;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c != NULL;
         c = CMSG_NXTHDR((struct msghdr *)msg, c)) {
        if (c->cmsg_len < CMSG_LEN(0))
            break; /* malformed: the kernel refuses it */
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        const unsigned char *data = CMSG_DATA(c);
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        if (data > end)
            break;
        if (n > (size_t)(end - data) / sizeof(int))
            n = (size_t)(end - data) / sizeof(int);
        for (size_t i = 0; i < n; i++) {
            int fd;
            __builtin_memcpy(&fd, data + i * sizeof fd, sizeof fd);
            ac_fd_shared(fd);
        }
    }
}
