/*
 * The sweep: finds this process's connections in CLOSE_WAIT that it never reads or polls
 * (a handler that stalled, a pre-forking parent that forgot its copy, an inherited descriptor)
 * and hands them to the same judgement as a zero-length read.
 *
 * Its cost follows the number of half-closed sockets, not of healthy ones. The kernel is asked
 * (sock_diag, as `ss` does, no privilege needed) for TCP sockets in CLOSE_WAIT only. Only when
 * that list holds a socket the previous sweep did not see is /proc/self/fd read to find which
 * descriptors hold them; a quiet server with 10,000 idle connections costs one netlink dump.
 *
 * Runs on the timer thread, without the tracker lock; nothing here is on a signal path.
 */
#include "autoclose.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

struct inode_list {
    uint64_t *v;
    size_t len, cap;
};

/* Inodes in CLOSE_WAIT at the previous sweep, sorted. Timer thread only. */
static struct inode_list seen;

static bool push(struct inode_list *l, uint64_t ino)
{
    if (l->len == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        uint64_t *v = realloc(l->v, cap * sizeof *v);
        if (v == NULL)
            return false;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->len++] = ino;
    return true;
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Appends the inode of every TCP socket of `family` in CLOSE_WAIT. */
static bool dump_close_wait(int family, struct inode_list *out)
{
    int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (nl < 0)
        return false;
    struct {
        struct nlmsghdr nlh;
        struct inet_diag_req_v2 req;
    } msg = {
        .nlh = {.nlmsg_len = sizeof msg,
                .nlmsg_type = SOCK_DIAG_BY_FAMILY,
                .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP},
        .req = {.sdiag_family = (uint8_t)family,
                .sdiag_protocol = IPPROTO_TCP,
                .idiag_states = 1u << AC_TCP_CLOSE_WAIT},
    };
    bool ok = send(nl, &msg, sizeof msg, 0) == (ssize_t)sizeof msg;
    static char buf[32768] __attribute__((aligned(8))); /* timer thread only */
    bool done = false;
    while (ok && !done) {
        ssize_t n = recv(nl, buf, sizeof buf, 0);
        if (n <= 0) {
            ok = false;
            break;
        }
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
             h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_type == NLMSG_DONE) {
                done = true;
                break;
            }
            if (h->nlmsg_type == NLMSG_ERROR) {
                ok = false;
                break;
            }
            const struct inet_diag_msg *d = NLMSG_DATA(h);
            if (d->idiag_inode != 0 && !push(out, d->idiag_inode))
                ok = false;
        }
    }
    AC_REAL(close)(nl);
    return ok;
}

static bool contains(const struct inode_list *l, uint64_t ino)
{
    return bsearch(&ino, l->v, l->len, sizeof ino, compare_u64) != NULL;
}

/* Parses "socket:[12345]". */
static bool socket_inode(const char *link, uint64_t *ino)
{
    if (strncmp(link, "socket:[", 8) != 0)
        return false;
    uint64_t v = 0;
    const char *p = link + 8;
    if (*p < '0' || *p > '9')
        return false;
    while (*p >= '0' && *p <= '9')
        v = v * 10 + (uint64_t)(*p++ - '0');
    *ino = v;
    return *p == ']';
}

/* Judges every descriptor of this process that holds one of the `wanted` sockets. */
static void judge_holders(const struct inode_list *wanted)
{
    int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return;
    static char ents[32768] __attribute__((aligned(8))); /* timer thread only */
    for (;;) {
        long n = syscall(SYS_getdents64, dir, ents, sizeof ents);
        if (n <= 0)
            break;
        for (long off = 0; off < n;) {
            struct dirent64 *e = (struct dirent64 *)(ents + off);
            off += e->d_reclen;
            char link[64];
            ssize_t len = readlinkat(dir, e->d_name, link, sizeof link - 1);
            if (len <= 0)
                continue;
            link[len] = '\0';
            uint64_t ino;
            if (socket_inode(link, &ino) && contains(wanted, ino))
                ac_on_eof(atoi(e->d_name), AC_FOUND_SWEEP);
        }
    }
    AC_REAL(close)(dir);
}

void ac_sweep_run(void)
{
    struct inode_list now = {0};
    bool v4 = dump_close_wait(AF_INET, &now);
    bool v6 = dump_close_wait(AF_INET6, &now);
    if (!v4 && !v6) {
        free(now.v);
        return; /* no sock_diag here; the read and readiness paths still work */
    }
    qsort(now.v, now.len, sizeof *now.v, compare_u64);
    bool anything_new = false;
    for (size_t i = 0; i < now.len && !anything_new; i++)
        anything_new = !contains(&seen, now.v[i]);
    free(seen.v);
    seen = now;
    if (anything_new)
        judge_holders(&seen);
}

/* A forked child has its own descriptors to look at: everything counts as new to it. */
void ac_sweep_atfork_child(void)
{
    seen.len = 0;
}
