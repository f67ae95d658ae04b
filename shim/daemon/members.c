/*
 * Who is selected now. --pid names processes held from the start (selection.c); --unit a systemd
 * unit's control group (cgroup.c), read again every interval, and --exe an executable, looked for
 * at each scan: so a restarted server is watched with no restart of the daemon, and one line says
 * when a unit or an executable has processes again, and when it has none. Unless --no-children,
 * the descendants of the --pid and --exe processes (a forking server's workers) are selected too;
 * a unit's are in its control group already.
 *
 * Each --pid, --unit and --exe is one scan unit (owners.c): its members are listed by the scanner
 * (scanner.c) when it is scanned, within its budget. Descendants come from
 * /proc/PID/task/TID/children (each thread's children: the kernel's CONFIG_PROC_CHILDREN), or,
 * where the daemon has no such file, from the PPid line of every /proc/PID/status. A process
 * found by a unit, an executable or as a descendant has no pidfd of the daemon's: as with --ports
 * alone, its identity is its start time, read by the scanner before and after its descriptors
 * and checked again by the taker once it has opened a pidfd (taker.c).
 *
 * An executable is matched by the path the kernel gives for /proc/PID/exe: the file's path, or
 * "PATH (deleted)" once an upgrade removed or replaced the file the process still runs (said in
 * one line, and still watched). That link waits while its process is inside execve, so only the
 * scanner reads it, which is killed when it stays blocked, and the process it was reading is left
 * out of scans for a while (scanner.c). A script's executable is its interpreter: --unit selects
 * it. The cgroup.procs files, status and the children files do not wait on a process: the unit's
 * processes are read in the daemon.
 */
#include "autoclosed.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Members of one scan unit at most: a bound on one scan's memory, far above any server's. */
#define MAX_MEMBERS 32768

static struct ad_unit units[AD_MAX_NAMES];
static struct unit_seen {
    pid_t *pids; /* as read at this interval's refresh */
    size_t n;
    int said; /* -1: nothing said yet; 0: "no process"; 1: processes */
} unit_seen[AD_MAX_NAMES];

static struct exe_state {
    char resolved[PATH_MAX]; /* the file's path as the kernel would give it: resolved at start
                              * in the daemon, again at each look in the scanner (a symbolic
                              * link in it may change) */
    int said;
    pid_t *deleted; /* processes said to run the replaced file */
    size_t ndeleted;
} exes[AD_MAX_NAMES];

/* Whether /proc/PID/task/TID/children exists for the daemon (CONFIG_PROC_CHILDREN), asked at
 * start: the scanner uses the daemon's answer. */
static bool children_files;

/* ---- the list of members -------------------------------------------------------------- */

static void add(struct ad_members *l, pid_t pid, bool held)
{
    if (l->n >= MAX_MEMBERS)
        return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct ad_member *v = realloc(l->v, cap * sizeof *v);
        if (v == NULL)
            return;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = (struct ad_member){.pid = pid, .held = held};
}

static int by_pid(const void *a, const void *b)
{
    const struct ad_member *x = a, *y = b;
    if (x->pid != y->pid)
        return x->pid < y->pid ? -1 : 1;
    return (int)y->held - (int)x->held; /* the held one first: it is kept */
}

static void sort_unique(struct ad_members *l)
{
    if (l->n < 2)
        return;
    qsort(l->v, l->n, sizeof *l->v, by_pid);
    size_t k = 1;
    for (size_t i = 1; i < l->n; i++)
        if (l->v[i].pid != l->v[k - 1].pid)
            l->v[k++] = l->v[i];
    l->n = k;
}

/* ---- descendants (in the scanner) ------------------------------------------------------- */

/* The numbers in a small /proc file, added to `l` as non-held members. */
static void add_listed(int dir, const char *name, struct ad_members *l)
{
    int fd = openat(dir, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    char buf[4096];
    size_t have = 0;
    ssize_t got;
    while ((got = read(fd, buf + have, sizeof buf - 1 - have)) > 0) {
        have += (size_t)got;
        buf[have] = '\0';
        char *p = buf, *end;
        for (;;) {
            long pid = strtol(p, &end, 10);
            if (end == p || (*end != ' ' && *end != '\n'))
                break; /* none, or a number cut at the buffer's end */
            add(l, (pid_t)pid, false);
            p = end + 1;
        }
        have = strlen(p);
        memmove(buf, p, have);
    }
    close(fd);
}

/* The children of every thread of `pid`. */
static void add_children(int proc, pid_t pid, struct ad_members *l)
{
    char path[64];
    snprintf(path, sizeof path, "%d/task", (int)pid);
    int fd = openat(proc, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        char children[300];
        snprintf(children, sizeof children, "%s/children", de->d_name);
        add_listed(dirfd(d), children, l);
    }
    closedir(d);
}

/* Every process's parent, from /proc/PID/status, sorted by parent: for a kernel without the
 * children files. */
struct parent_of {
    pid_t ppid, pid;
};

static int by_parent(const void *a, const void *b)
{
    const struct parent_of *x = a, *y = b;
    return x->ppid != y->ppid ? (x->ppid < y->ppid ? -1 : 1) : (x->pid < y->pid ? -1 : 1);
}

static size_t read_parents(int proc, struct parent_of **out)
{
    *out = NULL;
    int fd = openat(proc, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    struct parent_of *v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] < '1' || de->d_name[0] > '9')
            continue;
        /* status, not stat: reading a process's stat waits while it is stuck in execve. */
        char path[300], buf[2048];
        snprintf(path, sizeof path, "%s/status", de->d_name);
        int sfd = openat(proc, path, O_RDONLY | O_CLOEXEC);
        if (sfd < 0)
            continue;
        ssize_t got = read(sfd, buf, sizeof buf - 1);
        close(sfd);
        if (got <= 0)
            continue;
        buf[got] = '\0';
        const char *p = strstr(buf, "\nPPid:");
        if (p == NULL)
            continue;
        int ppid = atoi(p + 6);
        if (n == cap) {
            cap = cap ? cap * 2 : 512;
            struct parent_of *more = realloc(v, cap * sizeof *v);
            if (more == NULL)
                break;
            v = more;
        }
        v[n++] = (struct parent_of){(pid_t)ppid, (pid_t)atoi(de->d_name)};
    }
    closedir(d);
    if (n > 1)
        qsort(v, n, sizeof *v, by_parent);
    *out = v;
    return n;
}

/* Adds the descendants of l->v[0...] (breadth first: the list grows as it is walked). The
 * daemon's own children (scanners, takers) are never among them, even under --pid 1. */
static void add_descendants(struct ad_members *l)
{
    int proc = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (proc < 0)
        return;
    pid_t daemon = getppid(), self = getpid();
    struct parent_of *parents = NULL;
    size_t nparents = children_files ? 0 : read_parents(proc, &parents);
    for (size_t i = 0; i < l->n && l->n < MAX_MEMBERS; i++) {
        pid_t pid = l->v[i].pid;
        if (pid == daemon || pid == self)
            continue;
        if (children_files) {
            add_children(proc, pid, l);
            continue;
        }
        /* The first entry of this parent's run, by bisection. */
        size_t lo = 0, hi = nparents;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (parents[mid].ppid < pid)
                lo = mid + 1;
            else
                hi = mid;
        }
        for (; lo < nparents && parents[lo].ppid == pid; lo++)
            add(l, parents[lo].pid, false);
    }
    free(parents);
    close(proc);
}

/* ---- executables (in the scanner) ------------------------------------------------------- */

/* The processes running executable e now: each /proc/PID/exe read, its process named to the
 * daemon first (ad_scan_at). False when the scanner ran short (errno). */
static bool find_exe(size_t e, struct ad_members *l,
                     void (*found)(void *ctx, size_t e, pid_t pid, bool replaced), void *ctx)
{
    ad_scan_at(0, 0); /* resolving the path reads no process's entries */
    char path[PATH_MAX];
    if (realpath(ad_opt.exes[e], path) != NULL)
        strcpy(exes[e].resolved, path);
    /* else (the file is being replaced): the last resolution stands */
    const char *want = exes[e].resolved;
    size_t wlen = strlen(want);
    DIR *d = opendir("/proc");
    if (d == NULL)
        return false;
    pid_t self = getpid(), daemon = getppid();
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] < '1' || de->d_name[0] > '9')
            continue;
        pid_t pid = (pid_t)atoi(de->d_name);
        struct stat st;
        if (pid == self || pid == daemon || fstatat(dirfd(d), de->d_name, &st, 0) != 0 ||
            ad_scan_left_out(pid, st.st_uid))
            continue;
        char link[PATH_MAX + 16], name[300];
        snprintf(name, sizeof name, "%s/exe", de->d_name);
        ad_scan_at(pid, st.st_uid);
        ssize_t got = readlinkat(dirfd(d), name, link, sizeof link - 1);
        if (got < (ssize_t)wlen || memcmp(link, want, wlen) != 0)
            continue; /* not it, a kernel thread, or gone */
        link[got] = '\0';
        bool replaced = strcmp(link + wlen, " (deleted)") == 0;
        if (link[wlen] != '\0' && !replaced)
            continue;
        add(l, pid, false);
        if (found)
            found(ctx, e, pid, replaced);
    }
    ad_scan_at(0, 0);
    int err = errno;
    closedir(d);
    errno = err;
    return true;
}

const char *ad_exe_resolved(size_t e)
{
    return exes[e].resolved;
}

bool ad_selector_members(size_t k, struct ad_members *l, bool exe_only,
                         void (*found)(void *ctx, size_t e, pid_t pid, bool replaced), void *ctx)
{
    bool children = !ad_opt.no_children;
    if (k < ad_opt.npids) {
        if (ad_selected_running(k))
            add(l, ad_opt.pids[k], true);
    } else if (k < ad_opt.npids + ad_opt.nunits) {
        const struct unit_seen *s = &unit_seen[k - ad_opt.npids];
        for (size_t i = 0; i < s->n; i++)
            add(l, s->pids[i], false);
        children = false; /* in the unit's control group already */
    } else if (!find_exe(k - ad_opt.npids - ad_opt.nunits, l, found, ctx)) {
        return false;
    }
    if (children && !exe_only && l->n > 0) {
        ad_scan_at(0, 0); /* status and the children files do not wait on a process */
        add_descendants(l);
    }
    /* A --pid process met as another's descendant, or in a unit, is held all the same: its
     * pidfd, asked after the scan and used by the taker, stays its identity. */
    for (size_t i = 0; i < l->n; i++)
        for (size_t k2 = 0; k2 < ad_opt.npids && !l->v[i].held; k2++)
            l->v[i].held = l->v[i].pid == ad_opt.pids[k2] && ad_selected_running(k2);
    sort_unique(l);
    return true;
}

/* ---- what the daemon says ----------------------------------------------------------------- */

/* "pid=1,2,3" (at most 8 shown) into t. */
static void pid_list_text(struct ac_text *t, const pid_t *v, size_t n, size_t total)
{
    ac_text_str(t, "pid=");
    for (size_t i = 0; i < n && i < 8; i++) {
        if (i)
            ac_text_str(t, ",");
        ac_text_int(t, v[i]);
    }
    if (total > 8) {
        ac_text_str(t, ",... (");
        ac_text_uint(t, total);
        ac_text_str(t, " processes)");
    }
}

static int compare_pid(const void *a, const void *b)
{
    pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
    return x < y ? -1 : x > y;
}

void ad_exe_seen(size_t e, const char *resolved, const pid_t *pids, const bool *replaced, size_t n,
                 size_t total)
{
    struct exe_state *x = &exes[e];
    if (resolved[0] && strlen(resolved) < sizeof x->resolved)
        strcpy(x->resolved, resolved);
    int now = total > 0;
    if (now != x->said) {
        char line[600];
        struct ac_text t;
        ac_text_init(&t, line, sizeof line);
        pid_t shown[8];
        size_t ns = 0;
        for (size_t i = 0; i < n && ns < 8; i++)
            shown[ns++] = pids[i];
        qsort(shown, ns, sizeof *shown, compare_pid);
        if (now)
            pid_list_text(&t, shown, ns, total);
        ad_log(AC_LOG_INFO, "--exe %s: %s%s", ad_opt.exes[e], now ? line : "no process runs it",
               now ? ": watched" : ": watched when one starts");
        x->said = now;
    }
    pid_t *keep = malloc((n ? n : 1) * sizeof *keep);
    size_t nkeep = 0;
    for (size_t i = 0; i < n; i++) {
        if (!replaced[i])
            continue;
        bool known = false;
        for (size_t k = 0; k < x->ndeleted && !known; k++)
            known = x->deleted[k] == pids[i];
        if (!known)
            ad_log(AC_LOG_INFO,
                   "--exe %s: pid=%d runs the file as it was before it was replaced (the "
                   "kernel calls it \"%s (deleted)\"): still watched",
                   ad_opt.exes[e], (int)pids[i], x->resolved);
        if (keep)
            keep[nkeep++] = pids[i];
    }
    free(x->deleted);
    x->deleted = keep;
    x->ndeleted = keep ? nkeep : 0;
}

static void say_unit(size_t u)
{
    struct unit_seen *s = &unit_seen[u];
    int now = s->n > 0;
    if (now == s->said)
        return;
    s->said = now;
    if (!now) {
        ad_log(AC_LOG_INFO,
               "--unit %s: no process (the unit is not running%s): watched when it starts",
               units[u].name, ad_cgroup_roots() ? "" : "; no control group tree is mounted here");
        return;
    }
    char line[400];
    struct ac_text t;
    ac_text_init(&t, line, sizeof line);
    pid_list_text(&t, s->pids, s->n, s->n);
    const char *where = ad_unit_where(&units[u]);
    ad_log(AC_LOG_INFO, "--unit %s: %s in %s: watched", units[u].name, line, where ? where : "?");
}

void ad_selection_refresh(void)
{
    for (size_t u = 0; u < ad_opt.nunits; u++) {
        free(unit_seen[u].pids);
        unit_seen[u].pids = NULL;
        unit_seen[u].n = ad_unit_processes(&units[u], &unit_seen[u].pids);
        say_unit(u);
    }
}

/* ---- selectors ------------------------------------------------------------------------- */

size_t ad_selectors(void)
{
    return ad_opt.npids + ad_opt.nunits + ad_opt.nexes;
}

bool ad_selection_lasts(void)
{
    return ad_opt.nunits + ad_opt.nexes > 0;
}

bool ad_selector_ended(size_t k)
{
    return k < ad_opt.npids && !ad_selected_running(k);
}

bool ad_selector_empty(size_t k)
{
    return k >= ad_opt.npids && k < ad_opt.npids + ad_opt.nunits &&
           unit_seen[k - ad_opt.npids].n == 0;
}

void ad_selector_name(size_t k, char *out, size_t cap)
{
    if (k < ad_opt.npids)
        snprintf(out, cap, "pid=%d", (int)ad_opt.pids[k]);
    else if (k < ad_opt.npids + ad_opt.nunits)
        snprintf(out, cap, "unit=%s", ad_opt.units[k - ad_opt.npids]);
    else
        snprintf(out, cap, "exe=%s", ad_opt.exes[k - ad_opt.npids - ad_opt.nunits]);
}

int ad_members_start(struct ad_options *o)
{
    children_files = access("/proc/thread-self/children", F_OK) == 0;
    for (size_t u = 0; u < o->nunits; u++) {
        units[u].name = o->units[u];
        unit_seen[u].said = -1;
    }
    for (size_t e = 0; e < o->nexes; e++) {
        char path[PATH_MAX];
        struct stat st;
        if (realpath(o->exes[e], path) == NULL || stat(path, &st) != 0) {
            ad_complain("--exe %s: %s (see autoclosed --help)", o->exes[e], strerror(errno));
            return 2;
        }
        if (!S_ISREG(st.st_mode)) {
            ad_complain("--exe %s: not a file (see autoclosed --help)", o->exes[e]);
            return 2;
        }
        strcpy(exes[e].resolved, path);
        exes[e].said = -1;
    }
    return -1;
}

void ad_members_say(void)
{
    for (size_t e = 0; e < ad_opt.nexes; e++)
        if (strcmp(ad_opt.exes[e], exes[e].resolved) != 0)
            ad_log(AC_LOG_INFO, "--exe %s is %s: the processes running that file are watched",
                   ad_opt.exes[e], exes[e].resolved);
    if (ad_opt.nexes > 0)
        ad_exes_look();
    ad_selection_refresh();
}
