/*
 * The processes behind the sockets: which process holds a socket the kernel listed in CLOSE_WAIT,
 * under which number, and what the daemon needs to know of it (its start time, user, name). The
 * looking is done in a scanner, a short-lived child (scanner.c), which leaves what it found in
 * shared memory; the daemon applies that (records, budgets, lines) and reads no /proc entry of
 * another process itself. Nothing is read from /proc/PID/maps, whose reading waits for the
 * process's memory map lock, which the process can hold.
 *
 * Which processes are looked into (decided here only):
 *  - --pid, --unit, --exe: each is a scan unit of its own, with the processes it selects at that
 *    scan (members.c lists them, in the scanner: a --pid process, a unit's, an executable's, and
 *    the descendants of the first and last); a process two units select is scanned once. One
 *    that is not a --pid process is believed only if its start time is the same before and after
 *    its descriptors were read: its number may have been reused since it was listed. The
 *    daemon's own children (scanners, takers: a taker may hold a copy of a socket) are never
 *    looked into.
 *  - --ports alone: first the processes of the wanted sockets' users, then, for sockets not found
 *    there, the rest of the host. A socket's uid in the kernel's record is its maker's (for an
 *    accepted one, its listener's), so a process is looked into first when one of its user ids
 *    (real, effective, saved, file system) or the owner of its /proc directory (root for a
 *    process that is not dumpable, as a server is once it has dropped root's privileges) is a
 *    wanted socket's uid. Each such process is charged to its user's scan unit; the rest of the
 *    host is one unit, the host-wide pass. A user is the owner of the outermost user namespace
 *    below the daemon's that the process is in (a rootless container's ids, 65,536 of them, are
 *    its owner's), else the process's real uid.
 *
 * The budget: reading a table costs a readlinkat per descriptor (20,000 take tens of
 * milliseconds), and every new CLOSE_WAIT socket on a watched port is looked for, however
 * unrelated. So a unit whose last scan took D of CPU time (the scanner's own, whatever the
 * machine's load) is not scanned again before AD_SCAN_SHARE * D has passed; the list of the
 * host's processes that picks the users' processes out (about 2 us a process, 10 for those
 * /proc shows as root's) is charged to the users whose sockets it was made for. New sockets wait
 * for the next allowed scan; their grace runs from the FIN all the same. A user's heavy tables
 * thus slow only the looks into that user's processes, and the host-wide pass.
 *
 * Cost: only sockets not seen before are looked for, and all of one interval's newcomers in a
 * single pass over each process's descriptors; a look with none, or with no scan its budget
 * allows, starts no scanner.
 */
#include "autoclosed.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/nsfs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- what a scanner leaves, in the shared memory ------------------------------------------ */

enum unit_kind { UNIT_SELECTED, UNIT_USER, UNIT_HOST };

struct cost {
    uint32_t kind, key; /* key: the index of a selected process, or a user */
    uint32_t processes, unused;
    uint64_t fds, cpu_us;
};

/* A process the scanner could not look into ("reading its descriptors" failed: err). */
struct event {
    struct ad_facts f;
    int32_t err, unused;
};

/* A wanted socket's uid, and the user whose processes have it. */
struct pair {
    uid_t uid, user;
};

/* A process running executable `exe` (an index in ad_opt.exes), and that executable's look. */
struct match {
    uint32_t exe;
    int32_t pid;
    uint32_t replaced; /* it runs the file as it was before it was removed or replaced */
};
struct exe_look {
    uint32_t total;          /* processes found, kept in matches or not */
    char resolved[PATH_MAX]; /* the path the links were matched against */
};

/* Counts first: a record is written whole before its count grows, so that what a killed scanner
 * leaves is sound. found[i] is set only once its holder's facts are counted. */
struct results {
    uint32_t nfacts, nevents, ncosts, npairs;
    int32_t shortage;   /* the scanner's own shortage of descriptors or memory: its errno */
    uint32_t host_done; /* the host-wide pass went through */
    uint64_t covered;   /* selectors: those scanned */
    uint32_t nmatches;
    uint32_t exes_done; /* bit e: the look for ad_opt.exes[e] went through (exes[e] is whole) */
};

#define EVENTS_MAX  64
#define COSTS_MAX   1024
#define PAIRS_MAX   256
#define MATCHES_MAX 1024

struct layout {
    struct results *r;
    struct ad_holder *found; /* [n] */
    struct ad_facts *facts;  /* [n]: a process counts only with a socket found in it */
    struct event *events;    /* [EVENTS_MAX] */
    struct cost *costs;      /* [COSTS_MAX] */
    struct pair *pairs;      /* [PAIRS_MAX] */
    struct match *matches;   /* [MATCHES_MAX] */
    struct exe_look *exes;   /* [ad_opt.nexes] */
    size_t n;
};

/* Each array starts on an 8-byte boundary (struct ad_facts holds 64-bit fields); returns the
 * offset of the next `bytes`. */
static size_t place(size_t *end, size_t bytes)
{
    size_t at = (*end + 7) & ~(size_t)7;
    *end = at + bytes;
    return at;
}

/* The arrays in the area at `base`; returns the area's size. */
static size_t lay_out(uintptr_t base, size_t n, struct layout *L)
{
    size_t end = 0;
    L->n = n;
    L->r = (void *)(base + place(&end, sizeof *L->r));
    L->found = (void *)(base + place(&end, n * sizeof *L->found));
    L->facts = (void *)(base + place(&end, n * sizeof *L->facts));
    L->events = (void *)(base + place(&end, EVENTS_MAX * sizeof *L->events));
    L->costs = (void *)(base + place(&end, COSTS_MAX * sizeof *L->costs));
    L->pairs = (void *)(base + place(&end, PAIRS_MAX * sizeof *L->pairs));
    L->matches = (void *)(base + place(&end, MATCHES_MAX * sizeof *L->matches));
    L->exes = (void *)(base + place(&end, ad_opt.nexes * sizeof *L->exes));
    return end;
}

static size_t area_size(size_t n)
{
    struct layout L;
    return lay_out(0, n, &L);
}

static struct layout layout_of(void *area, size_t n)
{
    struct layout L;
    (void)lay_out((uintptr_t)area, n, &L);
    return L;
}

/* What the daemon asks of one scanner (read in its copy of the daemon's memory). */
struct plan {
    const uint32_t *want, *uids;
    size_t n;
    uid_t *uid_set; /* --ports: the wanted sockets' uids whose users' scans are due, sorted */
    size_t nuids;
    bool host;     /* --ports: the host-wide pass is due */
    uint64_t due;  /* selectors: those to scan (bit k: selector k) */
    bool exe_only; /* at start: only the executables' processes listed, nothing scanned */
    uint64_t now_us;
};

/* ---- the budgets (kept by the daemon, read by the scanner) -------------------------------- */

static uint64_t scan_next_us[AD_MAX_SELECTORS]; /* selectors */
static uint64_t host_next_us;
static struct budget {
    uid_t user;
    uint64_t next_us;
    UT_hash_handle hh;
} * budgets;
static size_t nbudgets;
/* A uid's user, as the last scan found it: whether its scan is due is known before a fork. */
static struct uid_user {
    uid_t uid, user;
    UT_hash_handle hh;
} * users_of;
static size_t nusers_of;
#define BUDGETS_MAX 4096

static uint64_t clock_us(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static bool user_due(uid_t user, uint64_t now_us)
{
    struct budget *b;
    HASH_FIND(hh, budgets, &user, sizeof user, b);
    return b == NULL || b->next_us <= now_us;
}

static uid_t known_user(uid_t uid)
{
    struct uid_user *u;
    HASH_FIND(hh, users_of, &uid, sizeof uid, u);
    return u ? u->user : uid;
}

/* ---- in the scanner ------------------------------------------------------------------------ */

static int compare_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Reads a small /proc file whole; false (errno set) if it is gone or unreadable. */
static bool read_small(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, cap - 1);
    int err = errno;
    close(fd);
    if (n <= 0) {
        errno = n == 0 ? ESRCH : err;
        return false;
    }
    buf[n] = '\0';
    return true;
}

/* Field `n` (from 3) of a /proc/PID/stat text, counted after the command's closing parenthesis
 * (a command may hold spaces and parentheses of its own). */
static bool field_of(const char *buf, int n, unsigned long long *out)
{
    const char *p = strrchr(buf, ')');
    if (p == NULL)
        return false;
    p++;
    for (int field = 3; field < n; field++) {
        p = strchr(p + 1, ' ');
        if (p == NULL)
            return false;
    }
    *out = strtoull(p + 1, NULL, 10);
    return true;
}

static bool read_stat(pid_t pid, char *buf, size_t cap)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    return read_small(path, buf, cap);
}

static bool stat_field(pid_t pid, int n, unsigned long long *out)
{
    char buf[1024];
    return read_stat(pid, buf, sizeof buf) && field_of(buf, n, out);
}

bool ad_start_time(pid_t pid, unsigned long long *out)
{
    return stat_field(pid, 22, out);
}

/* From /proc/PID/status, which does not wait on the process: its user ids (real, effective,
 * saved, file system) and whether it is a kernel thread. */
struct status {
    uid_t ids[4];
    bool kthread;
};

static bool read_status(pid_t pid, struct status *st)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    if (!read_small(path, buf, sizeof buf))
        return false;
    const char *line = strstr(buf, "\nUid:");
    if (line == NULL)
        return false;
    char *p = (char *)line + 5;
    for (int i = 0; i < 4; i++)
        st->ids[i] = (uid_t)strtoul(p, &p, 10);
    const char *k = strstr(buf, "\nKthread:");
    if (k) {
        st->kthread = strtol(k + 9, NULL, 10) == 1;
    } else { /* before Linux 6.1: PF_KTHREAD in the flags (field 9 of stat) */
        unsigned long long flags = 0;
        st->kthread = stat_field(pid, 9, &flags) && (flags & 0x00200000u);
    }
    return true;
}

/* The daemon's own user namespace, and the owners of others met in this scan. */
static ino_t own_ns;
static struct ns_owner {
    ino_t ns;
    uid_t owner;
} ns_owners[16];
static size_t nns_owners;

/* Whose the process is: the owner of the outermost user namespace below the daemon's that it is
 * in, walked up with NS_GET_PARENT; its real uid when it is in the daemon's or cannot be told. */
static uid_t user_of(pid_t pid, uid_t uid)
{
    char path[64];
    struct stat st;
    snprintf(path, sizeof path, "/proc/%d/ns/user", (int)pid);
    if (own_ns == 0) {
        if (stat("/proc/self/ns/user", &st) != 0)
            return uid;
        own_ns = st.st_ino;
    }
    if (stat(path, &st) != 0 || st.st_ino == own_ns)
        return uid;
    for (size_t i = 0; i < nns_owners; i++)
        if (ns_owners[i].ns == st.st_ino)
            return ns_owners[i].owner;
    ino_t ns = st.st_ino;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    uid_t owner = uid;
    for (int depth = 0; fd >= 0 && depth < 33; depth++) {
        int parent = ioctl(fd, NS_GET_PARENT);
        if (parent < 0)
            break; /* outside the daemon's namespace: not below it */
        bool top = fstat(parent, &st) == 0 && st.st_ino == own_ns;
        if (top) {
            uid_t o;
            if (ioctl(fd, NS_GET_OWNER_UID, &o) == 0)
                owner = o;
            close(parent);
            break;
        }
        close(fd);
        fd = parent;
    }
    if (fd >= 0)
        close(fd);
    if (nns_owners < sizeof ns_owners / sizeof *ns_owners)
        ns_owners[nns_owners++] = (struct ns_owner){ns, owner};
    return owner;
}

/* The scanner's state, in its own memory. */
struct scratch {
    const struct plan *pl;
    struct layout L;
    bool *claimed; /* [n]: found already, in this scan */
    size_t left;   /* sockets not found yet */
    uint32_t *hit; /* [n]: the current process's finds, want index... */
    int *hit_fd;   /* ...and number */
    size_t nhits;
    int shortage;
    struct door {
        pid_t pid;
        uid_t owner;
        int err;
    } * doors;
    size_t ndoors;
};

static bool short_of(int err)
{
    return err == EMFILE || err == ENFILE || err == ENOMEM || err == EAGAIN;
}

/* "socket:[12345]" → 12345. */
static uint32_t socket_inode(int dir, const char *name)
{
    char link[64];
    ssize_t n = readlinkat(dir, name, link, sizeof link - 1);
    if (n < 9 || memcmp(link, "socket:[", 8) != 0)
        return 0;
    link[n] = '\0';
    return (uint32_t)strtoul(link + 8, NULL, 10);
}

/* One process's descriptors against the wanted list, counted in *fds; its finds go to sc->hit.
 * Returns false when they cannot be read (errno says why). */
static bool scan_process(struct scratch *sc, pid_t pid, size_t *fds)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    int dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return false;
    DIR *d = fdopendir(dir);
    if (d == NULL) {
        close(dir);
        return false;
    }
    bool ok = true;
    errno = 0;
    struct dirent *de;
    while (sc->left > 0 && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        (*fds)++;
        errno = 0;
        uint32_t ino = socket_inode(dir, de->d_name);
        if (ino == 0) {
            if (errno == EACCES || errno == EPERM) {
                ok = false; /* the table is listed, the links are not: no ptrace access */
                break;
            }
            continue;
        }
        const uint32_t *want = sc->pl->want;
        uint32_t *at = bsearch(&ino, want, sc->pl->n, sizeof *want, compare_u32);
        if (at && !sc->claimed[at - want]) {
            sc->claimed[at - want] = true;
            sc->hit[sc->nhits] = (uint32_t)(at - want);
            sc->hit_fd[sc->nhits++] = atoi(de->d_name);
            sc->left--;
        }
    }
    int err = errno;
    closedir(d);
    errno = err;
    return ok;
}

/* What the daemon records of a process; false if it has gone meanwhile. */
static bool facts_of(pid_t pid, const struct status *known, struct ad_facts *f)
{
    struct status st;
    if (known)
        st = *known;
    else if (!read_status(pid, &st))
        return false;
    *f = (struct ad_facts){.pid = pid, .uid = st.ids[0]};
    char path[64], comm[32];
    snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
    if (read_small(path, comm, sizeof comm))
        memcpy(f->comm, comm, strnlen(comm, sizeof f->comm));
    if (!ad_start_time(pid, &f->start_time))
        return false;
    f->user = user_of(pid, f->uid);
    (void)ad_read_container(pid, f->container, sizeof f->container);
    return true;
}

/* The current process's finds: its facts counted first, then the sockets. `start`: the start
 * time the process had before its descriptors were read (0: not to be checked). */
static void settle_hits(struct scratch *sc, pid_t pid, const struct status *st, bool held,
                        unsigned long long start)
{
    struct ad_facts f;
    struct results *r = sc->L.r;
    uint32_t k = r->nfacts;
    if (k < sc->L.n && facts_of(pid, st, &f) && (start == 0 || f.start_time == start)) {
        sc->L.facts[k] = f;
        __atomic_store_n(&r->nfacts, k + 1, __ATOMIC_RELEASE);
        for (size_t i = 0; i < sc->nhits; i++)
            sc->L.found[sc->hit[i]] = (struct ad_holder){pid, sc->hit_fd[i], held};
    } else {
        for (size_t i = 0; i < sc->nhits; i++) /* gone: looked for again next time */
            sc->claimed[sc->hit[i]] = false;
        sc->left += sc->nhits;
    }
    sc->nhits = 0;
}

static void add_event(struct scratch *sc, const struct ad_facts *f, int err)
{
    struct results *r = sc->L.r;
    if (r->nevents >= EVENTS_MAX)
        return;
    sc->L.events[r->nevents] = (struct event){.f = *f, .err = err};
    __atomic_store_n(&r->nevents, r->nevents + 1, __ATOMIC_RELEASE);
}

/* The unit's cost record, made if need be; NULL when there is no room for another. */
static struct cost *cost_of(struct scratch *sc, enum unit_kind kind, uint32_t key)
{
    struct results *r = sc->L.r;
    for (uint32_t i = 0; i < r->ncosts; i++)
        if (sc->L.costs[i].kind == kind && sc->L.costs[i].key == key)
            return &sc->L.costs[i];
    if (r->ncosts >= COSTS_MAX)
        return NULL;
    struct cost *c = &sc->L.costs[r->ncosts];
    *c = (struct cost){.kind = kind, .key = key};
    __atomic_store_n(&r->ncosts, r->ncosts + 1, __ATOMIC_RELEASE);
    return c;
}

static void charge(struct cost *c, uint32_t processes, size_t fds, uint64_t cpu_us)
{
    if (c == NULL)
        return;
    c->processes += processes;
    c->fds += fds;
    c->cpu_us += cpu_us;
}

static void add_pair(struct scratch *sc, uid_t uid, uid_t user)
{
    struct results *r = sc->L.r;
    for (uint32_t i = 0; i < r->npairs; i++)
        if (sc->L.pairs[i].uid == uid)
            return;
    if (r->npairs >= PAIRS_MAX)
        return;
    sc->L.pairs[r->npairs] = (struct pair){uid, user};
    __atomic_store_n(&r->npairs, r->npairs + 1, __ATOMIC_RELEASE);
}

/* One process looked into: its finds settled, a door that stays closed noted. */
static void look_into(struct scratch *sc, pid_t pid, uid_t owner, const struct status *st,
                      size_t *fds)
{
    ad_scan_at(pid, owner);
    bool ok = scan_process(sc, pid, fds);
    int err = errno;
    if (sc->nhits)
        settle_hits(sc, pid, st, false, 0);
    if (ok || err == ENOENT || err == ESRCH)
        return;
    if (short_of(err)) {
        sc->shortage = err; /* ours to pass, not the process's: the look does not count */
        return;
    }
    struct door *more = realloc(sc->doors, (sc->ndoors + 1) * sizeof *sc->doors);
    if (more) {
        sc->doors = more;
        more[sc->ndoors++] = (struct door){pid, owner, err};
    }
}

static bool uid_wanted(const struct plan *pl, uid_t uid)
{
    return bsearch(&uid, pl->uid_set, pl->nuids, sizeof *pl->uid_set, compare_u32) != NULL;
}

/* A process running executable e, as the look finds it: counted, and kept while there is room. */
static void exe_found(void *ctx, size_t e, pid_t pid, bool replaced)
{
    struct scratch *sc = ctx;
    struct results *r = sc->L.r;
    sc->L.exes[e].total++;
    if (r->nmatches >= MATCHES_MAX)
        return;
    sc->L.matches[r->nmatches] = (struct match){(uint32_t)e, pid, replaced};
    __atomic_store_n(&r->nmatches, r->nmatches + 1, __ATOMIC_RELEASE);
}

/* Selector k's members listed (an executable's look published whole). False: cut short. */
static bool list_members(struct scratch *sc, size_t k, struct ad_members *l)
{
    bool ok = ad_selector_members(k, l, sc->pl->exe_only, exe_found, sc);
    size_t first_exe = ad_opt.npids + ad_opt.nunits;
    if (ok && k >= first_exe) {
        size_t e = k - first_exe;
        struct exe_look *x = &sc->L.exes[e];
        strncpy(x->resolved, ad_exe_resolved(e), sizeof x->resolved - 1);
        struct results *r = sc->L.r;
        __atomic_store_n(&r->exes_done, r->exes_done | 1u << e, __ATOMIC_RELEASE);
    }
    return ok;
}

/* One member of a selector. False when the scanner's own shortage cut it short (r->shortage). */
static bool scan_member(struct scratch *sc, const struct ad_member *m, size_t *fds)
{
    pid_t pid = m->pid, daemon = getppid();
    char path[32];
    struct stat st;
    snprintf(path, sizeof path, "/proc/%d", (int)pid);
    if (pid == getpid() || pid == daemon || stat(path, &st) != 0 ||
        ad_scan_left_out(pid, st.st_uid))
        return true; /* ours, exited (a --pid's exit: the daemon sees it), or left out */
    ad_scan_at(pid, st.st_uid);
    unsigned long long start = 0, parent = 0;
    if (!m->held) {
        char buf[1024];
        if (!read_stat(pid, buf, sizeof buf) || !field_of(buf, 22, &start) ||
            !field_of(buf, 4, &parent) || (pid_t)parent == daemon)
            return true; /* gone, or a taker of the daemon's */
    }
    bool ok = scan_process(sc, pid, fds);
    int err = errno;
    if (sc->nhits)
        settle_hits(sc, pid, NULL, m->held, start);
    if (!ok && short_of(err)) {
        sc->L.r->shortage = err; /* not covered: tried again at the next interval */
        return false;
    }
    struct ad_facts f;
    if (!ok && err != ENOENT && err != ESRCH && facts_of(pid, NULL, &f) &&
        (m->held || f.start_time == start))
        add_event(sc, &f, err); /* selected by the operator: worth a line */
    return true;
}

static int compare_pid(const void *a, const void *b)
{
    pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
    return x < y ? -1 : x > y;
}

/* --pid, --unit, --exe: each selector the budget allows, with the processes it selects now
 * (listing them is part of its cost). */
static void scan_selected(struct scratch *sc)
{
    const struct plan *pl = sc->pl;
    struct results *r = sc->L.r;
    pid_t *scanned = NULL; /* sorted: what this scanner looked into already */
    size_t nscanned = 0;
    for (size_t k = 0; k < ad_selectors() && sc->left > 0; k++) {
        if (!(pl->due >> k & 1))
            continue;
        uint64_t cpu0 = clock_us(CLOCK_THREAD_CPUTIME_ID);
        struct ad_members l = {0};
        if (!list_members(sc, k, &l)) {
            int err = errno;
            free(l.v);
            if (short_of(err)) {
                r->shortage = err;
                break;
            }
            continue; /* not covered: /proc could not be listed */
        }
        size_t fds = 0, done = 0;
        bool shortage = false;
        for (; done < l.n && sc->left > 0; done++) {
            const struct ad_member *m = &l.v[done];
            if (nscanned && bsearch(&m->pid, scanned, nscanned, sizeof *scanned, compare_pid))
                continue; /* another selector's scan saw it this time */
            if (!scan_member(sc, m, &fds)) {
                shortage = true;
                break;
            }
        }
        pid_t *more = realloc(scanned, (nscanned + done + 1) * sizeof *scanned);
        if (more) {
            scanned = more;
            for (size_t i = 0; i < done; i++)
                scanned[nscanned++] = l.v[i].pid;
            qsort(scanned, nscanned, sizeof *scanned, compare_pid);
        }
        charge(cost_of(sc, UNIT_SELECTED, (uint32_t)k), (uint32_t)l.n, fds,
               clock_us(CLOCK_THREAD_CPUTIME_ID) - cpu0);
        free(l.v);
        if (shortage)
            break;
        __atomic_store_n(&r->covered, r->covered | (uint64_t)1 << k, __ATOMIC_RELEASE);
    }
    free(scanned);
}

/* At start (exe_only): each executable's processes, nothing scanned. */
static void list_exes(struct scratch *sc)
{
    for (size_t k = 0; k < ad_selectors(); k++) {
        if (!(sc->pl->due >> k & 1))
            continue;
        struct ad_members l = {0};
        bool ok = list_members(sc, k, &l);
        free(l.v);
        if (!ok)
            break;
    }
}

/* The process list of the host, with the owner of each /proc/PID. */
struct entry {
    pid_t pid;
    uid_t owner;
    bool done; /* looked into, or not to be */
};

static struct entry *list_processes(struct scratch *sc, size_t *count)
{
    DIR *proc = opendir("/proc");
    if (proc == NULL) {
        if (short_of(errno))
            sc->shortage = errno;
        return NULL;
    }
    struct entry *v = NULL;
    size_t n = 0, cap = 0;
    pid_t self = getpid(), daemon = getppid();
    struct dirent *de;
    while ((de = readdir(proc)) != NULL) {
        if (de->d_name[0] < '1' || de->d_name[0] > '9')
            continue;
        pid_t pid = (pid_t)atoi(de->d_name);
        struct stat st;
        if (pid == self || pid == daemon || fstatat(dirfd(proc), de->d_name, &st, 0) != 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 512;
            struct entry *more = realloc(v, cap * sizeof *v);
            if (more == NULL) {
                sc->shortage = ENOMEM;
                break;
            }
            v = more;
        }
        v[n++] = (struct entry){pid, st.st_uid, ad_scan_left_out(pid, st.st_uid)};
    }
    closedir(proc);
    *count = n;
    return v;
}

/* First pass (--ports alone): the processes of the wanted sockets' users, each charged to its
 * user, when its user's budget allows. */
static void scan_users(struct scratch *sc, struct entry *v, size_t n)
{
    const struct plan *pl = sc->pl;
    uint64_t start = clock_us(CLOCK_THREAD_CPUTIME_ID), charged = 0;
    for (size_t k = 0; k < n && sc->left > 0 && !sc->shortage; k++) {
        struct entry *e = &v[k];
        bool owner_wanted = uid_wanted(pl, e->owner);
        if (e->done || (!owner_wanted && e->owner != 0))
            continue; /* root's: perhaps not dumpable, its ids tell */
        ad_scan_at(e->pid, e->owner);
        struct status st;
        if (!read_status(e->pid, &st) || st.kthread) {
            e->done = true; /* gone, or holds no file */
            continue;
        }
        uid_t matched = e->owner;
        for (int i = 0; i < 4 && !owner_wanted; i++)
            if (uid_wanted(pl, st.ids[i])) {
                matched = st.ids[i];
                owner_wanted = true;
            }
        if (!owner_wanted)
            continue;
        uid_t user = user_of(e->pid, st.ids[0]);
        if (matched == st.ids[0])
            add_pair(sc, matched, user); /* not a setuid program's or an undumpable's */
        struct cost *c;
        if (!user_due(user, pl->now_us) || (c = cost_of(sc, UNIT_USER, user)) == NULL)
            continue; /* left to the host-wide pass */
        e->done = true;
        size_t fds = 0;
        uint64_t cpu0 = clock_us(CLOCK_THREAD_CPUTIME_ID);
        look_into(sc, e->pid, e->owner, &st, &fds);
        uint64_t spent = clock_us(CLOCK_THREAD_CPUTIME_ID) - cpu0;
        charge(c, 1, fds, spent);
        charged += spent;
    }
    /* The list and the picking, shared by the users it was made for. */
    uint64_t listing = clock_us(CLOCK_THREAD_CPUTIME_ID) - start - charged;
    uid_t users[64];
    size_t nusers = 0;
    for (size_t i = 0; i < pl->nuids && nusers < 64; i++) {
        uid_t user = known_user(pl->uid_set[i]);
        for (uint32_t p = 0; p < sc->L.r->npairs; p++)
            if (sc->L.pairs[p].uid == pl->uid_set[i])
                user = sc->L.pairs[p].user;
        bool seen = false;
        for (size_t j = 0; j < nusers; j++)
            seen |= users[j] == user;
        if (!seen)
            users[nusers++] = user;
    }
    for (size_t j = 0; j < nusers; j++)
        charge(cost_of(sc, UNIT_USER, users[j]), 0, 0, listing / nusers);
}

/* Second pass (--ports alone): every process not looked into yet, one unit. */
static void scan_rest(struct scratch *sc, struct entry *v, size_t n)
{
    size_t processes = 0, fds = 0;
    uint64_t cpu0 = clock_us(CLOCK_THREAD_CPUTIME_ID);
    for (size_t k = 0; k < n && sc->left > 0 && !sc->shortage; k++) {
        if (v[k].done)
            continue;
        processes++;
        look_into(sc, v[k].pid, v[k].owner, NULL, &fds);
    }
    charge(cost_of(sc, UNIT_HOST, 0), (uint32_t)processes, fds,
           clock_us(CLOCK_THREAD_CPUTIME_ID) - cpu0);
    if (!sc->shortage)
        sc->L.r->host_done = 1;
}

/* Among the host's processes, one the scanner may not look into is named only when it belongs to
 * the user of a socket nobody was found holding: most likely its owner. */
static void name_doors(struct scratch *sc)
{
    const struct plan *pl = sc->pl;
    for (size_t d = 0; d < sc->ndoors && sc->left > 0; d++) {
        for (size_t i = 0; i < pl->n; i++) {
            if (sc->claimed[i] || pl->uids[i] != sc->doors[d].owner)
                continue;
            struct status st;
            struct ad_facts f;
            ad_scan_at(sc->doors[d].pid, sc->doors[d].owner);
            if (read_status(sc->doors[d].pid, &st) && !st.kthread &&
                facts_of(sc->doors[d].pid, &st, &f))
                add_event(sc, &f, sc->doors[d].err);
            break;
        }
    }
}

/* The processes of users one of whose processes got a scanner stuck lately go after all others
 * (in pid order each): else a user with many processes stuck in execve, below another's in pid
 * order, would cost that other's look BLOCKED_MS each (scanner.c). */
static void suspects_last(struct entry *v, size_t n)
{
    struct entry *tmp = malloc(n * sizeof *tmp);
    if (tmp == NULL)
        return; /* the order stays; only the time may suffer */
    size_t k = 0;
    for (int suspect = 0; suspect < 2; suspect++)
        for (size_t i = 0; i < n; i++)
            if (ad_scan_suspect(v[i].owner) == (bool)suspect)
                tmp[k++] = v[i];
    memcpy(v, tmp, n * sizeof *v);
    free(tmp);
}

/* The scan proper, on the scratch scan_body made. */
static void scan_with(struct scratch *sc)
{
    const struct plan *pl = sc->pl;
    if (ad_selectors() > 0) {
        scan_selected(sc);
        return;
    }
    size_t n = 0;
    struct entry *v = list_processes(sc, &n);
    if (v == NULL)
        return;
    suspects_last(v, n);
    if (pl->nuids > 0)
        scan_users(sc, v, n);
    if (pl->host && sc->left > 0 && !sc->shortage)
        scan_rest(sc, v, n);
    name_doors(sc);
    if (sc->shortage)
        sc->L.r->shortage = sc->shortage;
    free(v);
}

/* In the scanner. What it allocates is freed before it ends, though its exit would free it too:
 * then a memory checker that follows it into the child sees no leak to judge. */
static void scan_body(void *area, void *arg)
{
    const struct plan *pl = arg;
    struct scratch sc = {.pl = pl, .L = layout_of(area, pl->n), .left = pl->n};
    if (pl->exe_only) {
        list_exes(&sc);
        return;
    }
    sc.claimed = calloc(pl->n, sizeof *sc.claimed);
    sc.hit = malloc(pl->n * sizeof *sc.hit);
    sc.hit_fd = malloc(pl->n * sizeof *sc.hit_fd);
    if (sc.claimed && sc.hit && sc.hit_fd)
        scan_with(&sc);
    else
        sc.L.r->shortage = ENOMEM;
    free(sc.claimed);
    free(sc.hit);
    free(sc.hit_fd);
    free(sc.doors);
}

/* ---- in the daemon ------------------------------------------------------------------------- */

uint64_t ad_scan_units(void)
{
    size_t n = ad_selectors() ? ad_selectors() : 1;
    return n >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << n) - 1;
}

/* A unit's scan done: the next not before AD_SCAN_SHARE times its CPU time. `gone`: the --pid
 * processes found exited after the scan (their scans neither believed nor said). */
static void spent(const struct cost *c, uint64_t now_us, uint64_t gone)
{
    uint64_t wait_us = c->cpu_us * AD_SCAN_SHARE, next = now_us + wait_us;
    unsigned long long ms = wait_us / 1000, fds = c->fds, cpu = c->cpu_us;
    if (c->kind == UNIT_SELECTED && c->key < ad_selectors()) {
        scan_next_us[c->key] = next;
        char name[1100];
        ad_selector_name(c->key, name, sizeof name);
        if (c->key < ad_opt.npids && (gone >> c->key & 1))
            ; /* its number may be another's by now: nothing said of it */
        else if (c->key < ad_opt.npids && c->processes == 1) /* a --pid alone: no descendant */
            ad_log(AC_LOG_DEBUG, "scan %s fds=%llu cpu_us=%llu next_in_ms=%llu", name, fds, cpu,
                   ms);
        else
            ad_log(AC_LOG_DEBUG, "scan %s processes=%u fds=%llu cpu_us=%llu next_in_ms=%llu", name,
                   c->processes, fds, cpu, ms);
    } else if (c->kind == UNIT_HOST) {
        host_next_us = next;
        ad_log(AC_LOG_DEBUG, "scan pid=any processes=%u fds=%llu cpu_us=%llu next_in_ms=%llu",
               c->processes, fds, cpu, ms);
    } else if (c->kind == UNIT_USER) {
        uid_t user = c->key;
        struct budget *b;
        HASH_FIND(hh, budgets, &user, sizeof user, b);
        if (b == NULL && nbudgets < BUDGETS_MAX && (b = calloc(1, sizeof *b)) != NULL) {
            b->user = user;
            HASH_ADD(hh, budgets, user, sizeof b->user, b);
            nbudgets++;
        }
        if (b)
            b->next_us = next;
        ad_log(AC_LOG_DEBUG, "scan user=%u processes=%u fds=%llu cpu_us=%llu next_in_ms=%llu",
               (unsigned)user, c->processes, fds, cpu, ms);
    }
}

static void learn_user(uid_t uid, uid_t user)
{
    struct uid_user *u;
    HASH_FIND(hh, users_of, &uid, sizeof uid, u);
    if (u == NULL) {
        if (nusers_of >= BUDGETS_MAX) {
            struct uid_user *tmp;
            HASH_ITER(hh, users_of, u, tmp)
            {
                HASH_DEL(users_of, u);
                free(u);
            }
            nusers_of = 0;
        }
        if ((u = calloc(1, sizeof *u)) == NULL)
            return;
        u->uid = uid;
        HASH_ADD(hh, users_of, uid, sizeof u->uid, u);
        nusers_of++;
    }
    u->user = user;
}

/* Budgets that have run out are forgotten: a user without one is due. */
static void budgets_prune(uint64_t now_us)
{
    struct budget *b, *tmp;
    HASH_ITER(hh, budgets, b, tmp)
    {
        if (b->next_us <= now_us) {
            HASH_DEL(budgets, b);
            free(b);
            nbudgets--;
        }
    }
}

/* The wanted sockets' uids whose users' scans are due, sorted, in pl->uid_set. */
static bool plan_users(struct plan *pl)
{
    pl->uid_set = malloc(pl->n * sizeof *pl->uid_set);
    if (pl->uid_set == NULL)
        return false;
    memcpy(pl->uid_set, pl->uids, pl->n * sizeof *pl->uid_set);
    qsort(pl->uid_set, pl->n, sizeof *pl->uid_set, compare_u32);
    size_t m = 0;
    for (size_t i = 0; i < pl->n; i++) {
        uid_t uid = pl->uid_set[i];
        if ((m == 0 || pl->uid_set[m - 1] != uid) && user_due(known_user(uid), pl->now_us))
            pl->uid_set[m++] = uid;
    }
    pl->nuids = m;
    return true;
}

/* What a scanner's finished looks for executables found, said (members.c). */
static void exes_seen(const struct layout *L)
{
    const struct results *r = L->r;
    uint32_t nm = r->nmatches < MATCHES_MAX ? r->nmatches : MATCHES_MAX;
    pid_t *pids = malloc((nm ? nm : 1) * sizeof *pids);
    bool *replaced = malloc((nm ? nm : 1) * sizeof *replaced);
    for (size_t e = 0; pids && replaced && e < ad_opt.nexes; e++) {
        if (!(r->exes_done >> e & 1))
            continue;
        size_t n = 0;
        for (uint32_t i = 0; i < nm; i++)
            if (L->matches[i].exe == e) {
                pids[n] = L->matches[i].pid;
                replaced[n++] = L->matches[i].replaced;
            }
        struct exe_look *x = &L->exes[e];
        x->resolved[sizeof x->resolved - 1] = '\0';
        ad_exe_seen(e, x->resolved, pids, replaced, n, x->total);
    }
    free(pids);
    free(replaced);
}

/* What a scanner left: the costs, the users, the records, the finds, the lines. */
static bool selected_gone(uint64_t gone, pid_t pid)
{
    for (size_t u = 0; u < ad_opt.npids; u++)
        if ((gone >> u & 1) && ad_opt.pids[u] == pid)
            return true;
    return false;
}

static uint64_t apply(const struct plan *pl, void *area, struct ad_holder *found)
{
    struct layout L = layout_of(area, pl->n);
    const struct results *r = L.r;
    if (ad_opt.nexes > 0)
        exes_seen(&L);
    uint32_t ncosts = r->ncosts < COSTS_MAX ? r->ncosts : COSTS_MAX;
    uint64_t now = clock_us(CLOCK_MONOTONIC);
    uint64_t covered = 0, gone = 0;
    if (ad_selectors() > 0) {
        covered = r->covered & ad_scan_units();
        /* A --pid process's scan is believed only if it was still running after it: once it has
         * exited, its number may already name another process, whose table it may have read.
         * (Any other process's start time was checked in the scanner.) A --pid process may be
         * met in another selector's scan too (as a descendant, or in a unit). */
        for (size_t u = 0; u < ad_opt.npids; u++)
            if (!ad_selected_still_running(u))
                gone |= (uint64_t)1 << u;
    } else {
        covered = r->host_done ? 1 : 0;
    }
    for (uint32_t i = 0; i < ncosts; i++)
        spent(&L.costs[i], now, gone);
    for (uint32_t i = 0; i < r->npairs && i < PAIRS_MAX; i++)
        learn_user(L.pairs[i].uid, L.pairs[i].user);
    for (uint32_t i = 0; i < r->nfacts && i < pl->n; i++)
        if (!selected_gone(gone, L.facts[i].pid))
            (void)ad_process_record(&L.facts[i]);
    for (size_t i = 0; i < pl->n; i++)
        if (L.found[i].pid != 0 && !selected_gone(gone, L.found[i].pid) &&
            ad_process(L.found[i].pid) != NULL)
            found[i] = L.found[i];
    for (uint32_t e = 0; e < r->nevents && e < EVENTS_MAX; e++) {
        bool dropped = selected_gone(gone, L.events[e].f.pid);
        struct ad_process *p = dropped ? NULL : ad_process_record(&L.events[e].f);
        if (p)
            ad_process_unreachable(p, L.events[e].err, "reading its descriptors");
    }
    if (r->shortage)
        (void)ad_short_of(r->shortage, "reading processes' descriptors");
    return covered;
}

/* How long a look goes on starting scanners after stuck ones; the rest waits for the next. */
#define LOOK_RESTARTS_MS 2000

uint64_t ad_find_owners(const uint32_t *want, const uint32_t *uids, size_t n,
                        struct ad_holder *found)
{
    memset(found, 0, n * sizeof *found);
    struct plan pl = {.want = want, .uids = uids, .n = n, .now_us = clock_us(CLOCK_MONOTONIC)};
    uint64_t covered = 0;
    if (ad_selectors() > 0) {
        for (size_t k = 0; k < ad_selectors(); k++) {
            if (ad_selector_ended(k) || ad_selector_empty(k))
                covered |= (uint64_t)1 << k; /* nothing to look into */
            else if (pl.now_us >= scan_next_us[k])
                pl.due |= (uint64_t)1 << k;
        }
        if (pl.due == 0)
            return covered;
    } else {
        budgets_prune(pl.now_us);
        pl.host = pl.now_us >= host_next_us;
        if (!plan_users(&pl))
            return 0;
        if (pl.nuids == 0 && !pl.host) {
            free(pl.uid_set);
            return 0;
        }
    }
    /* A scanner stuck in a process is killed and that process left out: another then does the
     * rest of the look without it, so that a user's many stuck processes cost the others' look
     * BLOCKED_MS each (scanner.c) within a bound, rather than a whole look each. */
    size_t size = area_size(n);
    uint64_t look_ends = ac_now_ms() + LOOK_RESTARTS_MS;
    for (;;) {
        void *area;
        enum ad_scan_end end = ad_scan(size, scan_body, &pl, &area);
        if (area)
            covered |= apply(&pl, area, found);
        ad_scan_free(area, size);
        if (end != AD_SCAN_STUCK || ac_now_ms() >= look_ends)
            break;
        if (ad_selectors() > 0 && (pl.due &= ~covered) == 0)
            break; /* what is left was done before the scanner got stuck */
    }
    free(pl.uid_set);
    return covered;
}

void ad_exes_look(void)
{
    struct plan pl = {.exe_only = true, .now_us = clock_us(CLOCK_MONOTONIC)};
    for (size_t e = 0; e < ad_opt.nexes; e++)
        pl.due |= (uint64_t)1 << (ad_opt.npids + ad_opt.nunits + e);
    size_t size = area_size(0);
    void *area;
    (void)ad_scan(size, scan_body, &pl, &area);
    if (area)
        (void)apply(&pl, area, NULL);
    ad_scan_free(area, size);
}
