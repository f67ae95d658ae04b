/*
 * The sweep: finds this process's connections in CLOSE_WAIT that it never reads or polls
 * (a handler that stalled, a pre-forking parent that forgot its copy, an inherited descriptor)
 * and hands them to the same judgement as a zero-length read.
 *
 * The kernel is asked (sock_diag, as `ss` does, no privilege needed) for TCP sockets in
 * CLOSE_WAIT only, IPv4 and IPv6 in one walk of its tables, and only for those on this process's
 * ports (a filter the kernel runs, ports.c): another process's pile-up never reaches us. Only
 * when that list holds a socket the previous sweep did not see does the sweep look through
 * /proc/thread-self/fd, and then only for those new sockets; a quiet server with 10,000 idle
 * connections costs one netlink dump, and a storm of FINs one pass over the descriptors per
 * sweep, not one per FIN. The netlink socket and the directory are made once (ownfd.c).
 *
 * Runs on the timer thread with the work lock held, without the tracker lock; nothing here is on
 * a signal path.
 */
#include "autoclose.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* The lists live in their own mappings, given back whole when a sweep ends: memory that
 * malloc would keep resident after a storm of FINs is part of what each connection costs. */
static void *map_pages(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* Socket inodes: sock_diag reports them in 32 bits. */
struct inode_list {
    uint32_t *v;
    size_t len, cap;
};

/* Inodes in CLOSE_WAIT at the previous sweep: they are not looked for again. Every process's on
 * our ports (a pre-forked sibling's, a client's of the same server), not only ours, so kept
 * compact (inodeset.c). Timer thread only. */
static struct ac_inode_set seen;
static bool forget_seen; /* set by ac_sweep_forget; read and cleared by the timer */

/* A new socket no descriptor of ours holds yet may still be ours: a connection half-closed in
 * the accept queue is accepted later. It is looked for at the next few sweeps before it counts
 * as another process's. */
#define LOOKS_FOR_A_NEWCOMER 3
struct newcomer {
    uint32_t ino;
    uint32_t looks;
};
static struct newcomer *newcomers; /* sorted by inode; in a mapping of newcomer_bytes */
static size_t newcomer_count, newcomer_bytes;

static int compare_newcomer(const void *key, const void *elem)
{
    uint32_t x = *(const uint32_t *)key, y = ((const struct newcomer *)elem)->ino;
    return x < y ? -1 : x > y;
}

static uint32_t *looks_at(uint32_t ino)
{
    struct newcomer *n = newcomer_count ? bsearch(&ino, newcomers, newcomer_count,
                                                  sizeof *newcomers, compare_newcomer)
                                        : NULL;
    return n ? &n->looks : NULL;
}

static bool push(struct inode_list *l, uint32_t ino)
{
    if (l->len == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 1024; /* one page */
        uint32_t *v = map_pages(cap * sizeof *v);
        if (v == NULL)
            return false;
        if (l->len)
            memcpy(v, l->v, l->len * sizeof *v);
        if (l->v)
            munmap(l->v, l->cap * sizeof *v);
        l->v = v;
        l->cap = cap;
    }
    l->v[l->len++] = ino;
    return true;
}

static void release(struct inode_list *l)
{
    if (l->v)
        munmap(l->v, l->cap * sizeof *l->v);
    *l = (struct inode_list){0};
}

static int compare_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static bool collect_inode(const struct ac_diag_socket *s, void *ctx)
{
    return push(ctx, s->ino);
}

static void restart_list(void *ctx)
{
    ((struct inode_list *)ctx)->len = 0;
}

/* Every TCP socket in CLOSE_WAIT on this process's ports. *no_netlink says why none could be
 * asked for, when that will not pass (the sweep is then off for good). */
static bool close_wait_inodes(struct inode_list *out, int *no_netlink)
{
    *no_netlink = 0;
    const uint8_t *filter;
    size_t filter_len = ac_ports_filter(&filter);
    if (filter_len == 0)
        return true; /* no port known: nothing in CLOSE_WAIT can be ours */
    int nl = ac_own_fd(AC_OWN_DIAG, no_netlink);
    if (nl < 0)
        return false;
    struct ac_diag_channel via = {.fd = nl};
    struct ac_diag_query q = {.states = 1u << AC_TCP_CLOSE_WAIT,
                              .visit = collect_inode,
                              .restart = restart_list,
                              .ctx = out,
                              .via = &via,
                              .filter = filter,
                              .filter_len = filter_len};
    bool ok = ac_diag_tcp(&q, no_netlink);
    if (via.stale)
        ac_own_discard(AC_OWN_DIAG); /* the kernel still has the rest of a dump for it */
    return ok;
}

/* Calls `visit` for each open descriptor of the application, until it returns false. */
static void for_each_fd(bool (*visit)(int fd, void *ctx), void *ctx)
{
    (void)ac_fd_list(visit, ctx);
}

struct holders {
    const struct inode_list *wanted;
    bool *held;
};

/* The socket inode behind one of the application's descriptors, or 0. */
static uint32_t socket_inode(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) ? (uint32_t)st.st_ino : 0;
}

static bool judge_if_wanted(int fd, void *ctx)
{
    const struct holders *h = ctx;
    uint32_t ino = socket_inode(fd);
    const uint32_t *at =
        ino ? bsearch(&ino, h->wanted->v, h->wanted->len, sizeof ino, compare_u32) : NULL;
    if (at != NULL) {
        h->held[at - h->wanted->v] = true;
        /* A noted EOF is judged at its own deadline; anything judged already stays as it is. */
        enum ac_fd_state known = ac_fd_state_hint(fd);
        if (known == AC_FD_NONE || known == AC_FD_NOT_TCP || known == AC_FD_ASK)
            ac_judge_and_track(fd, AC_FOUND_SWEEP, ac_now_ms(), false);
    }
    return true;
}

static bool note_tcp(int fd, void *ctx)
{
    if (!ac_is_tcp_socket(fd))
        return true;
    *(bool *)ctx = true;
    ac_ports_learn(fd); /* a listener's port, or the connection's own */
    return true;
}

/* A program started with a connection it never accepted (inetd passes it on fds 0-2, systemd's
 * Accept=yes on fd 3) may never call accept or connect: the timer must run from the start. Its
 * listeners (systemd's socket activation) and connections are on ports the sweep must ask
 * about. Runs once, from the constructor. */
bool ac_sweep_inherited_tcp(void)
{
    bool found = false;
    for_each_fd(note_tcp, &found);
    return found;
}

/* Drops from `list` the newcomers to look for again next time, counting their looks; keeps
 * the rest, which the next sweep will not look for. */
static void settle_newcomers(struct inode_list *list, const struct inode_list *fresh,
                             const bool *held)
{
    size_t kept = 0, still_count = 0;
    /* Built in the order of `fresh`, so sorted too. Without memory, all count as seen. */
    size_t still_bytes = fresh->len * sizeof(struct newcomer);
    struct newcomer *still = still_bytes ? map_pages(still_bytes) : NULL;
    for (size_t i = 0; i < fresh->len && still != NULL; i++) {
        uint32_t *looks = looks_at(fresh->v[i]);
        uint32_t n = looks ? *looks + 1 : 1;
        if (!held[i] && n < LOOKS_FOR_A_NEWCOMER)
            still[still_count++] = (struct newcomer){fresh->v[i], n};
    }
    if (newcomers)
        munmap(newcomers, newcomer_bytes);
    if (still != NULL && still_count == 0) {
        munmap(still, still_bytes); /* every one was found or given up: keep no mapping */
        still = NULL;
    }
    newcomers = still;
    newcomer_count = still_count;
    newcomer_bytes = still ? still_bytes : 0;
    for (size_t i = 0; i < list->len; i++) {
        if (looks_at(list->v[i]) == NULL)
            list->v[kept++] = list->v[i];
    }
    list->len = kept;
}

/* Said once, when the sweep finds it cannot work here (RestrictAddressFamilies without
 * AF_NETLINK, a seccomp filter, a kernel without sock_diag). */
static void say_sweep_off(int why)
{
    char line[240];
    struct ac_text t;
    ac_text_init(&t, line, sizeof line);
    ac_text_str(&t, "the sweep is off: no sock_diag netlink socket here (");
    ac_text_str(&t, strerrordesc_np(why) ? strerrordesc_np(why) : "unknown error");
    ac_text_str(&t, "); reads and readiness still reclaim");
    ac_log(AC_LOG_ERROR, line);
}

bool ac_sweep_run(void)
{
    /* Held in statics, never only on this thread's stack: a fork while a sweep runs must leave
     * them reachable in the child, which has no timer thread to free them. Only `seen` outlives
     * the sweep. */
    static struct inode_list now, fresh;
    static bool *held;
    int no_netlink;
    if (!close_wait_inodes(&now, &no_netlink)) {
        release(&now);
        if (no_netlink == 0)
            return true; /* a dump that failed this time; the next may not */
        say_sweep_off(no_netlink);
        return false;
    }
    if (__atomic_exchange_n(&forget_seen, false, __ATOMIC_RELAXED))
        ac_inode_set_clear(&seen);
    ac_sort_u32(now.v, now.len);
    bool ok = true;
    struct ac_inode_cursor old;
    ac_inode_cursor_start(&old, &seen);
    for (size_t i = 0; i < now.len && ok; i++)
        ok = ac_inode_cursor_has(&old, now.v[i]) || push(&fresh, now.v[i]);
    held = fresh.len ? map_pages(fresh.len * sizeof *held) : NULL; /* zero, fresh pages */
    size_t held_bytes = fresh.len * sizeof *held;
    if (!ok || (fresh.len && held == NULL)) {
        now.len = 0; /* out of memory: everything counts as new next time */
    } else if (fresh.len > 0) {
        for_each_fd(judge_if_wanted, &(struct holders){&fresh, held});
        settle_newcomers(&now, &fresh, held);
    }
    /* Without memory for it, the set is empty: everything counts as new next time. */
    ac_inode_set_assign(&seen, now.v, now.len);
    release(&now);
    release(&fresh);
    if (held)
        munmap(held, held_bytes);
    held = NULL;
    return true;
}

void ac_sweep_forget(void)
{
    __atomic_store_n(&forget_seen, true, __ATOMIC_RELAXED);
}

/* A forked child has its own descriptors to look at: everything counts as new to it. */
void ac_sweep_atfork_child(void)
{
    ac_inode_set_clear(&seen);
    newcomer_count = 0;
}
