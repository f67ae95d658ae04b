/*
 * The library's own long-lived descriptors: the sweep's sock_diag netlink socket and the timer
 * thread's /proc/thread-self/fd directory. Each is made once, on the timer thread, and kept
 * above the program's numbers (just below the soft RLIMIT_NOFILE or 1024, whichever is lower),
 * so that a program that closes a number and expects open() to give it back ("close(0); open()
 * gets 0") never finds one of the library's there, as it did while the sweep made both anew at
 * every sweep.
 *
 * Each is marked AC_FD_LIBRARY in the state table, so that the program's close, dup2, dup3,
 * close_range or closefrom of its number takes the slow path: it waits for the timer's current
 * use (the work lock, timer.c), and the library forgets the number without closing it (it is the
 * program's close); a new one is made when next needed. A close where no wrapper sees (a raw
 * system call) is found before the next use: the number's file must still be the one made
 * (st_dev, st_ino), or it is the program's now and is forgotten, never closed. A forked child
 * shares these files with its parent (one netlink socket, one directory offset): its own timer
 * replaces them before it uses either.
 *
 * Everything here runs on the timer thread with the work lock held, or (ac_own_forgotten) on a
 * program thread holding the work lock and the tracker lock.
 */
#include "autoclose.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* fstat64: in a 32-bit program plain fstat fails on an inode number above 32 bits (log.c). */
struct own {
    int fd; /* -1: none */
    dev_t dev;
    ino64_t ino;
    bool inherited; /* the parent's, copied by fork: to be replaced before any use */
};
static struct own own[AC_OWN_COUNT] = {{.fd = -1}, {.fd = -1}};

static bool same_file(int fd, dev_t dev, ino64_t ino)
{
    struct stat64 st;
    return fstat64(fd, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

/* A number the library holds, marked so that the program's closes of it take the slow path. A
 * stale entry the number still had (its file was closed where no wrapper sees) goes. */
static void claim(int fd)
{
    sigset_t saved;
    ac_tracker_lock(&saved);
    ac_tracker_forget(fd);
    ac_placeholder_lost(fd);
    for (int i = 0; i < AC_OWN_COUNT; i++)
        if (own[i].fd == fd)
            __atomic_store_n(&own[i].fd, -1, __ATOMIC_RELAXED);
    __atomic_store_n(&ac_fdtab[fd], AC_FD_LIBRARY, __ATOMIC_SEQ_CST);
    ac_tracker_unlock(&saved);
}

static void unclaim(int fd)
{
    sigset_t saved;
    ac_tracker_lock(&saved);
    if (__atomic_load_n(&ac_fdtab[fd], __ATOMIC_RELAXED) == AC_FD_LIBRARY &&
        ac_tracker_state(fd) == AC_FD_NONE)
        __atomic_store_n(&ac_fdtab[fd], AC_FD_NONE, __ATOMIC_RELEASE);
    ac_tracker_unlock(&saved);
}

/* Where the numbers go: high, but below 1024, so that the kernel never grows the table to a
 * huge limit for them, and a program's fd_set could hold them. */
static int high_target(void)
{
    struct rlimit lim;
    rlim_t top = 1024;
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < top)
        top = lim.rlim_cur;
    return top > 2 * AC_OWN_COUNT ? (int)top - AC_OWN_COUNT : 0;
}

void ac_own_make_room(void)
{
    /* The kernel grows a descriptor table shared by several threads only after an RCU grace
     * period (10-30 ms here): grown now, before the timer thread exists, the moves up cost
     * nothing. A duplicate of any open descriptor will do: the placeholders' (100 and up, made
     * just before) first, else the program's standard ones. */
    int top = high_target() + AC_OWN_COUNT - 1;
    for (int i = 0; top > 0 && i < 128; i++) {
        int fd = (i + 100) % 128;
        int probe = AC_REAL(fcntl)(fd, F_DUPFD_CLOEXEC, top);
        if (probe >= 0) {
            AC_REAL(close)(probe);
            return;
        }
    }
}

/* The new file's number is the lowest free one, for a moment: moved up at once. Returns the
 * number it is kept at. */
static int move_high(int fd, dev_t dev, ino64_t ino)
{
    int target = high_target();
    int high = target > fd ? AC_REAL(fcntl)(fd, F_DUPFD_CLOEXEC, target) : -1;
    if (high < 0 && target / 2 > fd)
        high = AC_REAL(fcntl)(fd, F_DUPFD_CLOEXEC, target / 2);
    if (high < 0)
        return fd; /* no room above: it stays where it is */
    if ((unsigned)high >= AC_FDTAB_SIZE || !same_file(high, dev, ino)) {
        AC_REAL(close)(high); /* made by the call above, a moment ago */
        return fd;
    }
    claim(high);
    /* Marked, so a wrapped close of it waits for this thread; only a raw one could have reused
     * the number meanwhile, and then its file is not ours to close. */
    if (same_file(fd, dev, ino))
        AC_REAL(close)(fd);
    unclaim(fd);
    return high;
}

/* Whether `fd` is the file made for `which`: its identity, and its kind (a sock_diag netlink
 * socket, or the timer thread's own descriptor directory). */
static bool is_kind(enum ac_own which, int fd, dev_t dev, ino64_t ino)
{
    if (!same_file(fd, dev, ino))
        return false;
    if (which == AC_OWN_DIAG) {
        int domain = 0, protocol = 0;
        socklen_t len = sizeof domain;
        return AC_REAL(getsockopt)(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 &&
               domain == AF_NETLINK &&
               AC_REAL(getsockopt)(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &len) == 0 &&
               protocol == NETLINK_SOCK_DIAG;
    }
    struct stat64 st;
    return stat64("/proc/thread-self/fd", &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

static int make(enum ac_own which, int *fatal_errno)
{
    int fd = which == AC_OWN_DIAG
                 ? AC_REAL(socket)(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG)
                 /* The timer thread's own list: it stays readable after the main thread has
                  * exited, where /proc/self/fd does not. */
                 : open("/proc/thread-self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        /* Out of descriptors or memory passes; anything else (no such family, not permitted)
         * will not. */
        if (errno != EMFILE && errno != ENFILE && errno != ENOMEM && errno != ENOBUFS)
            *fatal_errno = errno;
        return -1;
    }
    if ((unsigned)fd >= AC_FDTAB_SIZE) {
        AC_REAL(close)(fd);
        return -1;
    }
    claim(fd);
    struct stat64 st;
    if (fstat64(fd, &st) != 0) {
        unclaim(fd);
        return -1;
    }
    fd = move_high(fd, st.st_dev, st.st_ino);
    /* A close where no wrapper sees (a raw close_range, say) may have taken the number between
     * the call that made the file and here, and the program may hold another file under it now:
     * kept only if it is still a file of the kind made. */
    if (!is_kind(which, fd, st.st_dev, st.st_ino)) {
        unclaim(fd); /* the program's: never closed here */
        return -1;
    }
    own[which].dev = st.st_dev;
    own[which].ino = st.st_ino;
    own[which].inherited = false;
    __atomic_store_n(&own[which].fd, fd, __ATOMIC_RELAXED);
    return fd;
}

/* Lets go of a descriptor: closed if it is still the library's file, forgotten either way. */
static void let_go(struct own *o)
{
    int fd = o->fd;
    if (fd < 0)
        return;
    if (same_file(fd, o->dev, o->ino))
        AC_REAL(close)(fd);
    __atomic_store_n(&o->fd, -1, __ATOMIC_RELAXED);
    unclaim(fd);
}

int ac_own_fd(enum ac_own which, int *fatal_errno)
{
    *fatal_errno = 0;
    struct own *o = &own[which];
    if (o->fd >= 0 && o->inherited) {
        let_go(o); /* the parent's copy: the parent may be using it right now */
    } else if (o->fd >= 0 && !same_file(o->fd, o->dev, o->ino)) {
        int fd = o->fd; /* closed where no wrapper saw: the number is the program's now */
        __atomic_store_n(&o->fd, -1, __ATOMIC_RELAXED);
        unclaim(fd);
    }
    return o->fd >= 0 ? o->fd : make(which, fatal_errno);
}

void ac_own_discard(enum ac_own which)
{
    let_go(&own[which]);
}

void ac_own_prepare(void)
{
    /* With the periodic sweep off, a netlink socket only once an epoll report asks for a sweep. */
    if (ac_cfg.sweep_ms == 0)
        return;
    int fatal;
    for (int i = 0; i < AC_OWN_COUNT; i++)
        (void)ac_own_fd((enum ac_own)i, &fatal); /* a failure is said when the sweep needs it */
}

void ac_own_forgotten(int fd)
{
    for (int i = 0; i < AC_OWN_COUNT; i++)
        if (own[i].fd == fd)
            __atomic_store_n(&own[i].fd, -1, __ATOMIC_RELAXED);
}

void ac_own_atfork_child(void)
{
    for (int i = 0; i < AC_OWN_COUNT; i++)
        own[i].inherited = true;
}

/* The listing: the directory, rewound, read a block at a time. */
static bool list_dir(int dir, bool (*visit)(int fd, void *ctx), void *ctx)
{
    if (lseek(dir, 0, SEEK_SET) != 0)
        return false;
    int mine[AC_OWN_COUNT]; /* looked up once, not at every entry */
    for (int i = 0; i < AC_OWN_COUNT; i++)
        mine[i] = __atomic_load_n(&own[i].fd, __ATOMIC_RELAXED);
    char ents[4096] __attribute__((aligned(8))); /* on the stack, like the dump's buffer */
    bool more = true;
    while (more) {
        long n = syscall(SYS_getdents64, dir, ents, sizeof ents);
        if (n < 0)
            return false;
        if (n == 0)
            break;
        for (long off = 0; off < n && more;) {
            struct dirent64 *e = (struct dirent64 *)(ents + off);
            off += e->d_reclen;
            if (e->d_name[0] < '0' || e->d_name[0] > '9')
                continue;
            int fd = atoi(e->d_name);
            bool skip = fd == dir;
            for (int i = 0; i < AC_OWN_COUNT; i++)
                skip |= fd == mine[i];
            if (!skip)
                more = visit(fd, ctx);
        }
    }
    return true;
}

bool ac_fd_list(bool (*visit)(int fd, void *ctx), void *ctx)
{
    if (ac_timer_is_self()) {
        int fatal;
        int dir = ac_own_fd(AC_OWN_FDDIR, &fatal);
        return dir >= 0 && list_dir(dir, visit, ctx);
    }
    /* At start-up (the constructor) or exit: a directory for this call, on this thread. */
    int dir = open("/proc/thread-self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return false;
    bool ok = list_dir(dir, visit, ctx);
    AC_REAL(close)(dir);
    return ok;
}
