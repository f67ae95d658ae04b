/*
 * The other network namespaces: the half-closed sockets of processes in containers.
 *
 * sock_diag answers only for the namespace its netlink socket was made in, the daemon's. Another
 * namespace's TCP sockets are listed by its /proc/PID/net/tcp and tcp6 (PID: any process in it):
 * state, ports, addresses, the owner's uid and the inode, the kernel's record the dump gives but
 * for the cookie. Chosen over a sock_diag socket made inside each namespace because those files
 * need no capability at all, where entering a namespace (setns) needs CAP_SYS_ADMIN, the broadest
 * there is, and a unit without RestrictNamespaces=. What the cookie gave is kept otherwise: the
 * taker checks the socket it takes by its inode and ports (and CLOSE_WAIT, from TCP_INFO),
 * learns its cookie there, and the daemon checks every later take against it (reclaim.c); the FIN
 * is dated from TCP_INFO on the socket itself, as in the daemon's own namespace. Socket inodes
 * and cookies are global: a socket is the same in the table wherever it was listed.
 *
 * A namespace is known by the inode of its /proc/PID/net/tcp entry, one per namespace for as long
 * as it lives, which stat(2) gives without any privilege and without waiting on the process; its
 * name in lines and in the gauge is the inode of /proc/PID/ns/net, what lsns and
 * `readlink /proc/PID/ns/net` show, read with the ptrace access the daemon holds already
 * (CAP_SYS_PTRACE, for pidfd_getfd). Every read of another process's /proc entries is made in a
 * scanner (scanner.c): the ns link waits while its process is inside execve.
 *
 * Which namespaces: those of the selected processes (members.c: --pid, --unit, --exe and their
 * descendants), or with --ports alone of every process; found again every DISCOVER_MS (and at
 * once when a namespace's process has gone), and each read through one process found in it.
 *
 * Cost: a listing walks the kernel's whole table of connections (every namespace's share one),
 * milliseconds whatever the namespace holds. So a namespace is listed only when its TCP counters
 * (/proc/PID/net/snmp: segments in and out, resets, opens) moved since its last listing: a
 * socket can enter CLOSE_WAIT only on a segment's arrival. Every FORCE_LOOKS looks (an hour at
 * the default interval) it is listed all the same, for what no counter shows (sockets beyond a
 * listing's bound, a socket closed while its FIN waits to be sent). A quiet
 * namespace costs one small read per interval, in the one scanner of that look. A listing's CPU
 * time spaces the next by AD_SCAN_SHARE times it: per namespace for root's (containers), and for
 * all of one user's together for the namespaces a user made (unshare -rn: whose is the owner of
 * the outermost user namespace below the daemon's that owns it); root's together are held to
 * ROOT_SHARE, so that many busy containers cost 2% of a core at most, listed less often. At most
 * NETNS_MAX namespaces are looked into, USER_NETNS_MAX of one user's; the rest are said, once each.
 */
#include "autoclosed.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Whose a namespace is, for its budget and the per-user cap (netns_user): 0 for root's, a uid for
 * a user's, or USERNS_BIT with the inode of a user namespace root made (a container with a user
 * namespace: the users inside it are not root, whoever owns their namespace). */
typedef uint64_t principal;
#define USERNS_BIT     (1ull << 63)
#define NETNS_MAX      256
#define USER_NETNS_MAX 8
#define ROWS_MAX       8192 /* CLOSE_WAIT sockets on watched ports, per look, all namespaces */
#define ROWS_PER_NETNS 2048
#define FOUND_MAX      1024
#define UNSEEN_MAX     16
#define OVER_MAX       32 /* users with more namespaces than USER_NETNS_MAX, said per look */
#define DISCOVER_MS    5000
#define FORCE_LOOKS    3600
#define ROOT_SHARE     (AD_SCAN_SHARE / 4) /* root's namespaces' listings: 2% of a core in all */

size_t ad_unseen_netns;

static uint64_t clock_us(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- containers (the id's parsing: container.c) ------------------------------------------ */

bool ad_read_container(pid_t pid, char *out, size_t cap)
{
    char path[64], buf[4096];
    out[0] = '\0';
    snprintf(path, sizeof path, "/proc/%d/cgroup", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    ad_container_of(buf, out, cap);
    return true;
}

void ad_netns_fields(struct ac_text *t, uint64_t netns, const struct ad_process *p)
{
    if (netns != 0) {
        ac_text_str(t, " netns=");
        ac_text_uint(t, netns);
    }
    if (p && p->container[0]) {
        ac_text_str(t, " container=");
        ac_text_str(t, p->container);
    }
}

/* ---- what a scanner is asked, and leaves ---------------------------------------------------- */

enum job_state { J_UNREACHED, J_QUIET, J_LISTED, J_MOVED, J_UNREADABLE, J_DEFERRED };

struct job {
    uint64_t key; /* the namespace's /proc/PID/net/tcp inode */
    pid_t rep;
    uint64_t digest;
    bool may_list, force;
};
struct job_result {
    uint64_t digest, cpu_us;
    uint32_t first, nrows;
    int32_t err;
    uint32_t state, truncated, unused;
};
struct found {
    uint64_t key, ino, user;
    int32_t rep, unused;
};
struct over { /* a user's namespaces beyond USER_NETNS_MAX, met in the discovery */
    uint64_t user;
    int32_t pid;
    uint32_t n; /* processes met in them */
};
struct unseen {
    int32_t pid, err;
    uint32_t uid, unused;
    char comm[16];
};
struct head {
    uint32_t nrows, nfound, nunseen, discovered;
    uint32_t found_total, nover, overflow, unused;
    int32_t shortage;
    uint64_t cpu_us;
};

struct plan {
    const struct job *jobs;
    size_t n;
    bool discover;
    uint64_t own_key;
};

struct layout {
    struct head *h;
    struct job_result *res;     /* [n] */
    struct ac_diag_socket *row; /* [ROWS_MAX] */
    struct found *found;        /* [FOUND_MAX] */
    struct unseen *unseen;      /* [UNSEEN_MAX] */
    struct over *over;          /* [OVER_MAX] */
};

static size_t place(size_t *end, size_t bytes)
{
    size_t at = (*end + 7) & ~(size_t)7;
    *end = at + bytes;
    return at;
}

static size_t lay_out(uintptr_t base, size_t n, struct layout *L)
{
    size_t end = 0;
    L->h = (void *)(base + place(&end, sizeof *L->h));
    L->res = (void *)(base + place(&end, n * sizeof *L->res));
    L->row = (void *)(base + place(&end, (n ? ROWS_MAX : 0) * sizeof *L->row));
    L->found = (void *)(base + place(&end, FOUND_MAX * sizeof *L->found));
    L->unseen = (void *)(base + place(&end, UNSEEN_MAX * sizeof *L->unseen));
    L->over = (void *)(base + place(&end, OVER_MAX * sizeof *L->over));
    return end;
}

/* ---- in the scanner ------------------------------------------------------------------------- */

static uint64_t key_of(pid_t pid, int *err)
{
    char path[64];
    struct stat st;
    snprintf(path, sizeof path, "/proc/%d/net/tcp", (int)pid);
    if (stat(path, &st) != 0) {
        *err = errno;
        return 0;
    }
    return st.st_ino;
}

/* FNV-1a of the "Tcp:" values line of /proc/PID/net/snmp; 0 with *err when unreadable. */
static uint64_t counters_of(pid_t pid, int *err)
{
    char path[64], buf[8192];
    snprintf(path, sizeof path, "/proc/%d/net/snmp", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *err = errno;
        return 0;
    }
    size_t have = 0;
    ssize_t n;
    while (have < sizeof buf - 1 && (n = read(fd, buf + have, sizeof buf - 1 - have)) > 0)
        have += (size_t)n;
    close(fd);
    buf[have] = '\0';
    const char *line = strstr(buf, "\nTcp: ");
    line = line ? strstr(line + 1, "\nTcp: ") : NULL; /* the names, then the values */
    if (line == NULL) {
        *err = EIO;
        return 0;
    }
    uint64_t h = 1469598103934665603ull;
    for (const char *p = line + 1; *p && *p != '\n'; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return h ? h : 1;
}

/* An address as /proc/net/tcp prints it: each 32-bit word in hex, in the host's order. */
static bool parse_addr(const char **p, uint8_t *out, int words)
{
    memset(out, 0, 16);
    for (int w = 0; w < words; w++) {
        char word[9];
        if (strnlen(*p, 8) < 8)
            return false;
        memcpy(word, *p, 8);
        word[8] = '\0';
        char *end;
        uint32_t v = (uint32_t)strtoul(word, &end, 16);
        if (end != word + 8)
            return false;
        memcpy(out + 4 * w, &v, 4);
        *p += 8;
    }
    return true;
}

/* "  sl: LLLLLLLL:PPPP RRRRRRRR:PPPP ST TX:RX TR:WHEN RETR UID TIMEOUT INODE ..." */
static bool parse_row(const char *line, int family, struct ac_diag_socket *s)
{
    int words = family == AF_INET ? 1 : 4;
    const char *p = strchr(line, ':');
    if (p == NULL)
        return false;
    p++;
    while (*p == ' ')
        p++;
    memset(s, 0, sizeof *s);
    char *end;
    if (!parse_addr(&p, s->local_addr, words) || *p++ != ':')
        return false;
    s->local_port = (uint16_t)strtoul(p, &end, 16);
    p = end;
    while (*p == ' ')
        p++;
    if (!parse_addr(&p, s->peer_addr, words) || *p++ != ':')
        return false;
    s->peer_port = (uint16_t)strtoul(p, &end, 16);
    s->state = (uint8_t)strtoul(end, &end, 16);
    (void)strtoul(end, &end, 16); /* tx_queue */
    if (*end == ':')
        end++;
    (void)strtoul(end, &end, 16); /* rx_queue */
    (void)strtoul(end, &end, 16); /* tr */
    if (*end == ':')
        end++;
    (void)strtoul(end, &end, 16); /* tm->when */
    (void)strtoul(end, &end, 16); /* retrnsmt */
    s->uid = (uint32_t)strtoul(end, &end, 10);
    (void)strtoul(end, &end, 10); /* timeout */
    s->ino = (uint32_t)strtoul(end, &end, 10);
    s->family = (uint8_t)family;
    return true;
}

struct lister {
    struct layout *L;
    struct job_result *r;
    bool truncated;
};

static bool wanted(const struct ac_diag_socket *s)
{
    return s->state == AC_TCP_CLOSE_WAIT && s->ino != 0 &&
           (ac_portset_has(&ad_opt.ports, s->local_port) ||
            ac_portset_has(&ad_opt.ports, s->peer_port));
}

/* One of the namespace's tables, its CLOSE_WAIT rows on watched ports kept; false (errno) when
 * it cannot be opened. */
static bool list_table(struct lister *ls, pid_t pid, const char *name, int family)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/net/%s", (int)pid, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    static char buf[65536];
    size_t have = 0;
    bool header = true;
    for (;;) {
        ssize_t n = read(fd, buf + have, sizeof buf - 1 - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        have += (size_t)n;
        buf[have] = '\0';
        char *line = buf, *nl;
        while ((nl = strchr(line, '\n')) != NULL) {
            *nl = '\0';
            struct ac_diag_socket s;
            if (!header && parse_row(line, family, &s) && wanted(&s)) {
                struct head *h = ls->L->h;
                if (h->nrows >= ROWS_MAX || ls->r->nrows >= ROWS_PER_NETNS) {
                    ls->truncated = true;
                } else {
                    ls->L->row[h->nrows] = s;
                    ls->r->nrows++;
                    __atomic_store_n(&h->nrows, h->nrows + 1, __ATOMIC_RELEASE);
                }
            }
            header = false;
            line = nl + 1;
        }
        have -= (size_t)(line - buf);
        memmove(buf, line, have);
        if (have >= sizeof buf - 1)
            have = 0; /* no line is this long */
    }
    close(fd);
    return true;
}

static ino_t own_userns;

/* Whose a namespace is: the owner of the outermost user namespace below the daemon's on the way
 * up from the one that owns it (a user's: unshare -rn), or that user namespace itself when root
 * owns it (a container with a user namespace: its users, not root, make namespaces inside it);
 * root's when it is the daemon's own. When that cannot be told (no ptrace access to the process,
 * an ioctl refused), the process's owner, `uid`: never root's for another user's process. */
static principal netns_user(pid_t pid, uid_t uid)
{
    char path[64];
    struct stat st;
    if (own_userns == 0 && stat("/proc/self/ns/user", &st) == 0)
        own_userns = st.st_ino;
    snprintf(path, sizeof path, "/proc/%d/ns/net", (int)pid);
    int net = open(path, O_RDONLY | O_CLOEXEC);
    if (net < 0)
        return uid;
    int fd = ioctl(net, NS_GET_USERNS);
    close(net);
    principal user = uid;
    for (int depth = 0; fd >= 0 && depth < 33; depth++) {
        if (fstat(fd, &st) == 0 && st.st_ino == own_userns) {
            user = 0; /* the daemon's own: root's */
            break;
        }
        int parent = ioctl(fd, NS_GET_PARENT);
        if (parent < 0)
            break;
        struct stat pst;
        if (fstat(parent, &pst) == 0 && pst.st_ino == own_userns) {
            uid_t o;
            if (ioctl(fd, NS_GET_OWNER_UID, &o) == 0 && fstat(fd, &st) == 0)
                user = o != 0 ? o : USERNS_BIT | st.st_ino;
            close(parent);
            break;
        }
        close(fd);
        fd = parent;
    }
    if (fd >= 0)
        close(fd);
    return user;
}

/* Whether the namespace has TCP sockets of that family at all ("TCP: inuse N" in sockstat,
 * "TCP6: inuse N" in sockstat6): a table with none is not walked, which costs as much as walking
 * one that has some. True when it cannot be told. */
static bool has_sockets(pid_t pid, const char *file, const char *tag)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/net/%s", (int)pid, file);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno != ENOENT; /* sockstat6 without IPv6: none */
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    const char *at = strstr(buf, tag);
    return at == NULL || strtoul(at + strlen(tag), NULL, 10) != 0;
}

static void list_jobs(const struct plan *pl, struct layout *L)
{
    for (size_t i = 0; i < pl->n; i++) {
        const struct job *j = &pl->jobs[i];
        struct job_result *r = &L->res[i];
        char path[32];
        struct stat st;
        snprintf(path, sizeof path, "/proc/%d", (int)j->rep);
        if (stat(path, &st) != 0) {
            __atomic_store_n(&r->state, J_MOVED, __ATOMIC_RELEASE);
            continue;
        }
        ad_scan_at(j->rep, st.st_uid);
        int err = 0;
        if (key_of(j->rep, &err) != j->key) { /* gone, or in another namespace now */
            r->err = err;
            __atomic_store_n(&r->state, err == EACCES || err == EPERM ? J_UNREADABLE : J_MOVED,
                             __ATOMIC_RELEASE);
            continue;
        }
        uint64_t digest = counters_of(j->rep, &err); /* before the listing: a move after it
                                                         makes the next look list again */
        if (digest != 0 && digest == j->digest && !j->force) {
            __atomic_store_n(&r->state, J_QUIET, __ATOMIC_RELEASE);
            continue;
        }
        if (!j->may_list) {
            __atomic_store_n(&r->state, J_DEFERRED, __ATOMIC_RELEASE);
            continue;
        }
        uint64_t cpu0 = clock_us(CLOCK_THREAD_CPUTIME_ID);
        r->first = L->h->nrows;
        r->digest = digest;
        struct lister ls = {.L = L, .r = r};
        bool ok = true;
        if (has_sockets(j->rep, "sockstat", "TCP: inuse ")) {
            ok = list_table(&ls, j->rep, "tcp", AF_INET);
            err = errno;
        }
        if (ok && has_sockets(j->rep, "sockstat6", "TCP6: inuse ") &&
            !list_table(&ls, j->rep, "tcp6", AF_INET6) && errno != ENOENT) {
            ok = false; /* no IPv6 in this kernel: ENOENT, nothing to list */
            err = errno;
        }
        r->cpu_us = clock_us(CLOCK_THREAD_CPUTIME_ID) - cpu0;
        r->truncated = ls.truncated;
        r->err = ok ? 0 : err;
        __atomic_store_n(&r->state, ok ? J_LISTED : J_UNREADABLE, __ATOMIC_RELEASE);
    }
}

static void add_unseen(struct layout *L, pid_t pid, uid_t uid, int err)
{
    struct head *h = L->h;
    if (h->nunseen >= UNSEEN_MAX)
        return;
    struct unseen *u = &L->unseen[h->nunseen];
    *u = (struct unseen){.pid = pid, .err = err, .uid = uid};
    char path[64], comm[32] = "";
    snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, comm, sizeof comm - 1);
        close(fd);
        comm[n > 0 ? n : 0] = '\0';
        comm[strcspn(comm, "\n")] = '\0';
    }
    memcpy(u->comm, comm, strnlen(comm, sizeof u->comm - 1));
    __atomic_store_n(&h->nunseen, h->nunseen + 1, __ATOMIC_RELEASE);
}

static void count_over(struct layout *L, principal user, pid_t pid)
{
    struct head *h = L->h;
    for (uint32_t i = 0; i < h->nover; i++)
        if (L->over[i].user == user) {
            L->over[i].n++;
            return;
        }
    if (h->nover < OVER_MAX) {
        L->over[h->nover] = (struct over){.user = user, .pid = pid, .n = 1};
        __atomic_store_n(&h->nover, h->nover + 1, __ATOMIC_RELEASE);
    }
}

/* One process met in the discovery: its namespace noted when it is not the daemon's. A user's
 * namespaces beyond USER_NETNS_MAX are counted, not kept, so that no user can crowd others' out of
 * FOUND_MAX. The processes of a user with one stuck in execve are met in a second pass (`late`),
 * after everyone else's. */
static void consider(const struct plan *pl, struct layout *L, pid_t pid, bool late)
{
    char path[32];
    struct stat st;
    snprintf(path, sizeof path, "/proc/%d", (int)pid);
    if (pid == getpid() || pid == getppid() || stat(path, &st) != 0 ||
        ad_scan_suspect(st.st_uid) != late || ad_scan_left_out(pid, st.st_uid))
        return;
    ad_scan_at(pid, st.st_uid);
    int err = 0;
    uint64_t key = key_of(pid, &err);
    if (key == 0) {
        if (err == EACCES || err == EPERM)
            add_unseen(L, pid, st.st_uid, err);
        return; /* gone */
    }
    if (key == pl->own_key)
        return;
    struct head *h = L->h;
    for (uint32_t i = 0; i < h->nfound; i++)
        if (L->found[i].key == key)
            return;
    struct found f = {.key = key, .rep = pid, .user = netns_user(pid, st.st_uid)};
    if (f.user != 0) {
        uint32_t of_user = 0;
        for (uint32_t i = 0; i < h->nfound; i++)
            of_user += L->found[i].user == f.user;
        if (of_user >= USER_NETNS_MAX) {
            count_over(L, f.user, pid);
            return;
        }
    }
    h->found_total++;
    if (h->nfound >= FOUND_MAX) {
        h->overflow = 1; /* not whole: nothing known is dropped */
        return;
    }
    snprintf(path, sizeof path, "/proc/%d/ns/net", (int)pid);
    if (stat(path, &st) == 0) /* the name a person knows it by (waits while it execs) */
        f.ino = st.st_ino;
    L->found[h->nfound] = f;
    __atomic_store_n(&h->nfound, h->nfound + 1, __ATOMIC_RELEASE);
}

static void discover(const struct plan *pl, struct layout *L)
{
    uint64_t cpu0 = clock_us(CLOCK_THREAD_CPUTIME_ID);
    if (ad_selectors() > 0) {
        for (size_t k = 0; k < ad_selectors(); k++) {
            if (ad_selector_ended(k) || ad_selector_empty(k))
                continue;
            struct ad_members l = {0};
            bool ok = ad_selector_members(k, &l, false, NULL, NULL);
            for (int late = 0; late < 2; late++)
                for (size_t i = 0; ok && i < l.n; i++)
                    consider(pl, L, l.v[i].pid, late);
            free(l.v);
            if (!ok)
                return; /* not whole: what was found is not all there is */
        }
    } else {
        DIR *proc = opendir("/proc");
        if (proc == NULL) {
            L->h->shortage = errno;
            return;
        }
        struct dirent *de;
        for (int late = 0; late < 2; late++) {
            rewinddir(proc);
            while ((de = readdir(proc)) != NULL)
                if (de->d_name[0] >= '1' && de->d_name[0] <= '9')
                    consider(pl, L, (pid_t)atoi(de->d_name), late);
        }
        closedir(proc);
    }
    L->h->cpu_us = clock_us(CLOCK_THREAD_CPUTIME_ID) - cpu0;
    __atomic_store_n(&L->h->discovered, 1, __ATOMIC_RELEASE);
}

static void body(void *area, void *arg)
{
    const struct plan *pl = arg;
    struct layout L;
    (void)lay_out((uintptr_t)area, pl->n, &L);
    if (pl->discover)
        discover(pl, &L);
    else
        list_jobs(pl, &L);
}

/* ---- in the daemon -------------------------------------------------------------------------- */

struct ns {
    uint64_t key, ino;
    pid_t rep;
    principal user;
    uint64_t digest, next_us;
    uint32_t looks; /* since its last listing */
    bool listed, seen;
    struct ac_diag_socket *rows;
    size_t nrows;
};
static struct ns nss[NETNS_MAX];
static size_t nns;
static struct user_budget {
    principal user;
    uint64_t next_us;
} budgets[NETNS_MAX];
static size_t nbudgets;
static uint64_t own_key, discover_next_us, discover_min_us;
static uint64_t root_next_us;     /* root's namespaces together: their listings' budget */
static bool discover_asap = true; /* a namespace's process has gone: another is looked for... */

/* What was said already: a namespace left out, a process whose namespace cannot be seen. */
static struct said {
    uint64_t what;
    int err;
} said[64];
static size_t nsaid, said_at;

static bool say_once(uint64_t what, int err)
{
    for (size_t i = 0; i < nsaid; i++)
        if (said[i].what == what && said[i].err == err)
            return false;
    said[said_at] = (struct said){what, err};
    said_at = (said_at + 1) % (sizeof said / sizeof *said);
    if (nsaid < sizeof said / sizeof *said)
        nsaid++;
    return true;
}

static struct user_budget *budget_of(principal user, bool make)
{
    for (size_t i = 0; i < nbudgets; i++)
        if (budgets[i].user == user)
            return &budgets[i];
    if (!make || nbudgets == NETNS_MAX)
        return NULL;
    budgets[nbudgets] = (struct user_budget){.user = user};
    return &budgets[nbudgets++];
}

static size_t namespaces_of(principal user)
{
    size_t n = 0;
    for (size_t i = 0; i < nns; i++)
        n += nss[i].user == user;
    return n;
}

/* "user 1000", or "user namespace 4026532xxx" (root made it), for lines. */
static const char *whose(principal user, char *buf, size_t cap)
{
    if (user & USERNS_BIT)
        snprintf(buf, cap, "user namespace %llu", (unsigned long long)(user & ~USERNS_BIT));
    else
        snprintf(buf, cap, "user %llu", (unsigned long long)user);
    return buf;
}

/* The users said to have more namespaces than are looked into, and how many processes in them,
 * while they do: said again only when that changes (one line per user, not per namespace, in a
 * memory of its own that no user's namespaces can cycle). */
static struct over_said {
    principal user;
    uint32_t n;
    bool seen;
} over_said[OVER_MAX];
static size_t nover_said;
static uint32_t full_said; /* namespaces left out as the daemon looks into NETNS_MAX already */

static void say_over(principal user, uint32_t n, pid_t pid, bool whole)
{
    struct over_said *o = NULL;
    for (size_t i = 0; i < nover_said && !o; i++)
        if (over_said[i].user == user)
            o = &over_said[i];
    if (o == NULL && nover_said < OVER_MAX)
        o = &over_said[nover_said++], *o = (struct over_said){.user = user};
    if (o) {
        o->seen = true;
        if (o->n == n || (!whole && n < o->n))
            return; /* a look cut short counts fewer: no line for that */
        o->n = n;
    }
    char who[48];
    ad_unseen_netns++;
    ad_log(AC_LOG_ERROR,
           "%s has more network namespaces than the %d looked into: %u processes in the others "
           "are not looked into (pid=%d is one)",
           whose(user, who, sizeof who), USER_NETNS_MAX, (unsigned)n, (int)pid);
}

static void forget(size_t i)
{
    free(nss[i].rows);
    nss[i] = nss[--nns];
}

static void apply_discovery(const struct layout *L)
{
    const struct head *h = L->h;
    uint32_t nfound = h->nfound < FOUND_MAX ? h->nfound : FOUND_MAX;
    uint32_t nunseen = h->nunseen < UNSEEN_MAX ? h->nunseen : UNSEEN_MAX;
    for (uint32_t u = 0; u < nunseen; u++) {
        const struct unseen *x = &L->unseen[u];
        if (!say_once((uint64_t)(uint32_t)x->pid << 1 | 1, x->err))
            continue;
        ad_unseen_netns++;
        ad_errors_total++;
        char comm[17], field[72];
        memcpy(comm, x->comm, 16);
        comm[16] = '\0';
        struct ac_text t;
        ac_text_init(&t, field, sizeof field);
        ac_text_field(&t, comm[0] ? comm : "?");
        ad_log(AC_LOG_ERROR,
               "cannot see the network namespace of pid=%d uid=%u comm=%s: /proc/%d/net/tcp: %s: "
               "its sockets in another namespace are not found",
               (int)x->pid, (unsigned)x->uid, field, (int)x->pid, strerror(x->err));
    }
    /* Whole: every process met and every namespace kept; else nothing known is dropped. */
    bool whole = h->discovered && !h->overflow;
    if (!h->discovered)
        discover_asap = true; /* cut short: what was found is not all there is */
    if (whole)
        for (size_t i = 0; i < nns; i++)
            nss[i].seen = false;
    uint32_t nover = h->nover < OVER_MAX ? h->nover : OVER_MAX;
    for (size_t i = 0; i < nover_said; i++)
        over_said[i].seen = false;
    for (uint32_t o = 0; o < nover; o++)
        say_over(L->over[o].user, L->over[o].n, L->over[o].pid, whole);
    for (size_t i = 0; whole && i < nover_said;) /* no longer over: said again when next over */
        if (!over_said[i].seen)
            over_said[i] = over_said[--nover_said];
        else
            i++;
    uint32_t left_full = 0;
    pid_t full_pid = 0;
    for (uint32_t f = 0; f < nfound; f++) {
        const struct found *x = &L->found[f];
        struct ns *n = NULL;
        for (size_t i = 0; i < nns && !n; i++)
            if (nss[i].key == x->key)
                n = &nss[i];
        if (n == NULL) {
            principal user = x->user;
            if (nns == NETNS_MAX) {
                left_full++;
                full_pid = x->rep;
                continue;
            }
            if (user != 0 && namespaces_of(user) >= USER_NETNS_MAX)
                continue; /* those known stay until gone; the scanner counts the rest */
            n = &nss[nns++];
            *n = (struct ns){.key = x->key,
                             .user = user,
                             .looks = (uint32_t)(x->key % FORCE_LOOKS)}; /* forced relistings
                                                                             spread out */
            char who[48];
            ad_log(AC_LOG_DEBUG, "netns=%llu found (pid=%d, %s)", (unsigned long long)x->ino,
                   (int)x->rep, whose(user, who, sizeof who));
        }
        n->rep = x->rep;
        n->ino = x->ino;
        n->seen = true;
    }
    if (left_full != full_said && (left_full > full_said || whole)) {
        full_said = left_full;
        if (left_full > 0) {
            ad_unseen_netns++;
            ad_log(AC_LOG_ERROR,
                   "%u network namespaces are not looked into (pid=%d is in one): autoclosed "
                   "looks into %d already",
                   (unsigned)left_full, (int)full_pid, NETNS_MAX);
        }
    }
    for (size_t i = 0; whole && i < nns;) {
        if (!nss[i].seen) {
            ad_log(AC_LOG_DEBUG, "netns=%llu gone", (unsigned long long)nss[i].ino);
            forget(i);
        } else {
            i++;
        }
    }
    if (h->shortage)
        (void)ad_short_of(h->shortage, "listing the processes' network namespaces");
}

static uint64_t own_namespace_key(void)
{
    struct stat st;
    return stat("/proc/self/net/tcp", &st) == 0 ? st.st_ino : 0;
}

/* Runs a scanner for `pl`; the area (to be freed with its size) or NULL. */
static void *run(struct plan *pl, size_t *size)
{
    struct layout L;
    *size = lay_out(0, pl->n, &L);
    void *area;
    (void)ad_scan(*size, body, pl, &area);
    return area;
}

static void discovery(uint64_t now_us)
{
    struct plan pl = {.discover = true, .own_key = own_key};
    size_t size;
    void *area = run(&pl, &size);
    if (area) {
        struct layout L;
        (void)lay_out((uintptr_t)area, 0, &L);
        apply_discovery(&L);
        uint64_t wait = L.h->cpu_us * AD_SCAN_SHARE;
        discover_min_us = now_us + wait; /* ...but not sooner than its cost allows */
        if (wait < DISCOVER_MS * 1000ull)
            wait = DISCOVER_MS * 1000ull;
        discover_next_us = now_us + wait;
        ad_log(AC_LOG_DEBUG,
               "looked for network namespaces: %zu looked into, %u others' found cpu_us=%llu "
               "next_in_ms=%llu",
               nns, L.h->found_total, (unsigned long long)L.h->cpu_us,
               (unsigned long long)wait / 1000);
        if (L.h->discovered)
            discover_asap = false;
    } else {
        discover_next_us = discover_min_us = now_us + DISCOVER_MS * 1000ull;
    }
    ad_scan_free(area, size);
}

static void listing(uint64_t now_us)
{
    struct job *jobs = malloc(nns * sizeof *jobs);
    if (jobs == NULL)
        return; /* the rows of the last listing stand */
    for (size_t i = 0; i < nns; i++) {
        struct ns *n = &nss[i];
        struct user_budget *b = n->user ? budget_of(n->user, false) : NULL;
        jobs[i] = (struct job){.key = n->key,
                               .rep = n->rep,
                               .digest = n->digest,
                               .may_list = now_us >= n->next_us && (!b || now_us >= b->next_us) &&
                                           (n->user != 0 || now_us >= root_next_us),
                               .force = !n->listed || n->looks >= FORCE_LOOKS};
    }
    struct plan pl = {.jobs = jobs, .n = nns, .own_key = own_key};
    size_t size;
    uint64_t root_spent_us = 0;
    void *area = run(&pl, &size);
    if (area) {
        struct layout L;
        (void)lay_out((uintptr_t)area, nns, &L);
        uint32_t nrows = L.h->nrows < ROWS_MAX ? L.h->nrows : ROWS_MAX;
        for (size_t i = 0; i < nns; i++) {
            struct ns *n = &nss[i];
            const struct job_result *r = &L.res[i];
            switch ((enum job_state)r->state) {
            case J_UNREACHED:
            case J_DEFERRED:
                break; /* the last listing stands */
            case J_QUIET:
                n->looks++;
                break;
            case J_MOVED:
                discover_asap = true; /* its process has gone: another is looked for */
                break;
            case J_UNREADABLE:
                if (say_once(n->key << 1, r->err ? r->err : EIO)) {
                    ad_unseen_netns++;
                    ad_errors_total++;
                    ad_log(AC_LOG_ERROR,
                           "cannot list the TCP sockets of netns=%llu (/proc/%d/net/tcp): %s",
                           (unsigned long long)n->ino, (int)n->rep,
                           strerror(r->err ? r->err : EIO));
                }
                free(n->rows);
                n->rows = NULL;
                n->nrows = 0;
                break;
            case J_LISTED: {
                size_t got = r->first <= nrows && r->nrows <= nrows - r->first ? r->nrows : 0;
                struct ac_diag_socket *rows = got ? malloc(got * sizeof *rows) : NULL;
                if (got && rows == NULL)
                    break; /* the last listing stands; listed again next time */
                if (got)
                    memcpy(rows, &L.row[r->first], got * sizeof *rows);
                free(n->rows);
                n->rows = rows;
                n->nrows = got;
                n->digest = r->digest;
                n->listed = true;
                n->looks = 0;
                uint64_t wait = r->cpu_us * AD_SCAN_SHARE;
                n->next_us = now_us + wait;
                if (n->user != 0) {
                    struct user_budget *b = budget_of(n->user, true);
                    if (b)
                        b->next_us = (b->next_us > now_us ? b->next_us : now_us) + wait;
                } else {
                    root_spent_us += r->cpu_us;
                }
                if (r->truncated && say_once(n->key << 1 | 1, E2BIG))
                    ad_log(AC_LOG_ERROR,
                           "netns=%llu has more half-closed sockets on the watched ports than "
                           "autoclosed lists at once (%d): the rest wait",
                           (unsigned long long)n->ino, ROWS_PER_NETNS);
                ad_log(AC_LOG_DEBUG,
                       "listed netns=%llu pid=%d sockets=%zu cpu_us=%llu next_in_ms=%llu",
                       (unsigned long long)n->ino, (int)n->rep, got, (unsigned long long)r->cpu_us,
                       (unsigned long long)wait / 1000);
                break;
            }
            }
        }
    }
    if (root_spent_us > 0)
        root_next_us = now_us + root_spent_us * ROOT_SHARE;
    ad_scan_free(area, size);
    free(jobs);
}

bool ad_netns_look(bool (*add)(const struct ad_listed *s, void *ctx), void *ctx)
{
    if (own_key == 0)
        own_key = own_namespace_key();
    if (own_key == 0)
        return true; /* no /proc/self/net/tcp: nothing to compare with, only sock_diag's */
    uint64_t now_us = clock_us(CLOCK_MONOTONIC);
    for (size_t i = 0; i < nbudgets;) /* budgets run out are forgotten */
        if (budgets[i].next_us <= now_us)
            budgets[i] = budgets[--nbudgets];
        else
            i++;
    if ((discover_asap && now_us >= discover_min_us) || now_us >= discover_next_us)
        discovery(now_us);
    if (nns > 0)
        listing(now_us);
    for (size_t i = 0; i < nns; i++)
        for (size_t r = 0; r < nss[i].nrows; r++) {
            struct ad_listed s = {.d = nss[i].rows[r],
                                  .netns = nss[i].ino ? nss[i].ino : nss[i].key};
            if (!add(&s, ctx))
                return false;
        }
    return true;
}
