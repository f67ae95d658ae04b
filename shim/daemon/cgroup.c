/*
 * A systemd unit's processes, read from the control group tree: systemd puts each unit's
 * processes in a control group named after the unit, inside the slices (system.slice/
 * mosserver.service, system.slice/system-mos.slice/mos@1.service). Where the trees are mounted is
 * read from
 * /proc/self/mountinfo: the unified one (cgroup2: /sys/fs/cgroup, or /sys/fs/cgroup/unified on a
 * hybrid host) and the legacy name=systemd one (cgroup v1: /sys/fs/cgroup/systemd); a unit is
 * looked for in each, and its processes are the union.
 *
 * A unit's directory, once found, is remembered: reading its cgroup.procs (and its children's,
 * for a unit that delegates a subtree) costs a few system calls an interval. Only while it is
 * not found, or holds no process (a unit may move to another slice), is the tree searched, and
 * then only through the slices; each search is spaced by its own cost, as the descriptor scans
 * are (AD_SCAN_SHARE).
 */
#include "autoclosed.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_ROOTS 4
#define MAX_DEPTH 8 /* slices in slices; systemd nests a few */

static char *roots[MAX_ROOTS];
static size_t nroots;
static bool roots_read;

/* mountinfo escapes blanks and backslashes in a path as \ooo. */
static void unescape(char *s)
{
    char *out = s;
    for (char *p = s; *p; p++) {
        if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' &&
            p[3] >= '0' && p[3] <= '7') {
            *out++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
            p += 3;
        } else {
            *out++ = *p;
        }
    }
    *out = '\0';
}

/* The mount points of the cgroup2 tree and of the name=systemd one, each tree once (a tree
 * mounted twice has one device number). */
static void read_roots(void)
{
    roots_read = true;
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (f == NULL)
        return;
    char line[4096], devs[MAX_ROOTS][32];
    while (nroots < MAX_ROOTS && fgets(line, sizeof line, f)) {
        /* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS */
        char *sep = strstr(line, " - ");
        if (sep == NULL)
            continue;
        char fstype[32], source[256], super[1024] = "";
        if (sscanf(sep + 3, "%31s %255s %1023s", fstype, source, super) < 2)
            continue;
        bool v2 = strcmp(fstype, "cgroup2") == 0;
        bool v1 = strcmp(fstype, "cgroup") == 0 && strstr(super, "name=systemd") != NULL;
        if (!v2 && !v1)
            continue;
        char dev[32], point[4096];
        if (sscanf(line, "%*s %*s %31s %*s %4095s", dev, point) != 2)
            continue;
        bool seen = false;
        for (size_t i = 0; i < nroots; i++)
            seen |= strcmp(devs[i], dev) == 0;
        if (seen)
            continue;
        unescape(point);
        char *copy = strdup(point);
        if (copy == NULL)
            break;
        strcpy(devs[nroots], dev);
        roots[nroots++] = copy;
    }
    fclose(f);
}

static uint64_t clock_us(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static bool ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), t = strlen(tail);
    return n >= t && strcmp(s + n - t, tail) == 0;
}

/* Looks for a directory named `name` in `dir` (the path `path`) and, failing that, in the slices
 * below it. Only directories root owns: systemd hands a user manager (user@UID.service) and a
 * unit with Delegate= a subtree of their own, where that user may make a "mosserver.service" and
 * put his processes in it. */
static bool search(int dir, const char *path, const char *name, int depth, char *out, size_t cap)
{
    struct stat st;
    if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode) &&
        st.st_uid == 0) {
        if ((size_t)snprintf(out, cap, "%s/%s", path, name) < cap)
            return true;
    }
    if (depth >= MAX_DEPTH)
        return false;
    int again = openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = again >= 0 ? fdopendir(again) : NULL;
    if (d == NULL) {
        if (again >= 0)
            close(again);
        return false;
    }
    bool found = false;
    struct dirent *de;
    while (!found && (de = readdir(d)) != NULL) {
        if (de->d_type != DT_DIR || de->d_name[0] == '.')
            continue;
        if (!ends_with(de->d_name, ".slice"))
            continue;
        char sub[4096];
        if ((size_t)snprintf(sub, sizeof sub, "%s/%s", path, de->d_name) >= sizeof sub)
            continue;
        int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
            continue;
        if (fstat(fd, &st) == 0 && st.st_uid == 0)
            found = search(fd, sub, name, depth + 1, out, cap);
        close(fd);
    }
    closedir(d);
    return found;
}

struct pid_list {
    pid_t *v;
    size_t n, cap;
};

static void add_pid(struct pid_list *l, pid_t pid)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        pid_t *v = realloc(l->v, cap * sizeof *v);
        if (v == NULL)
            return;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = pid;
}

/* The processes of the control group open at `dir` and of those below it (a unit may delegate a
 * subtree). A pid of 0 is a process of another PID namespace: not ours to reach. False when
 * `dir` has no cgroup.procs (errno says why). */
static bool read_procs(int dir, struct pid_list *l, int depth)
{
    int fd = openat(dir, "cgroup.procs", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    FILE *f = fdopen(fd, "re");
    if (f == NULL) {
        close(fd);
        return false;
    }
    long pid;
    while (fscanf(f, "%ld", &pid) == 1)
        if (pid > 0)
            add_pid(l, (pid_t)pid);
    fclose(f);
    if (depth >= MAX_DEPTH)
        return true;
    int again = openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = again >= 0 ? fdopendir(again) : NULL;
    if (d == NULL) {
        if (again >= 0)
            close(again);
        return true;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_type != DT_DIR || de->d_name[0] == '.')
            continue;
        int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (sub >= 0) {
            (void)read_procs(sub, l, depth + 1);
            close(sub);
        }
    }
    closedir(d);
    return true;
}

static int compare_pid(const void *a, const void *b)
{
    pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
    return x < y ? -1 : x > y;
}

size_t ad_unit_processes(struct ad_unit *u, pid_t **pids)
{
    if (!roots_read)
        read_roots();
    struct pid_list l = {0};
    bool searched = false;
    u->where = -1;
    for (size_t r = 0; r < nroots; r++) {
        size_t before = l.n;
        int dir = u->dir[r] ? open(u->dir[r], O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
        if (dir >= 0) {
            if (!read_procs(dir, &l, 0)) {
                free(u->dir[r]); /* no longer a control group */
                u->dir[r] = NULL;
            }
            close(dir);
        } else if (u->dir[r]) {
            free(u->dir[r]); /* removed: the unit stopped */
            u->dir[r] = NULL;
        }
        if (l.n > before) {
            if (u->where < 0)
                u->where = (int)r;
            continue;
        }
        /* Not found, or empty: searched for, as often as its cost allows. */
        uint64_t now = clock_us(CLOCK_MONOTONIC);
        if (now < u->next_search_us)
            continue;
        searched = true;
        uint64_t cpu0 = clock_us(CLOCK_THREAD_CPUTIME_ID);
        int root = open(roots[r], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        char path[4096];
        if (root >= 0 && search(root, roots[r], u->name, 0, path, sizeof path)) {
            if (u->dir[r] == NULL || strcmp(u->dir[r], path) != 0) {
                free(u->dir[r]);
                u->dir[r] = strdup(path);
            }
            dir = u->dir[r] ? open(u->dir[r], O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
            if (dir >= 0) {
                (void)read_procs(dir, &l, 0);
                close(dir);
            }
            if (l.n > before && u->where < 0)
                u->where = (int)r;
        }
        if (root >= 0)
            close(root);
        u->search_cpu_us += clock_us(CLOCK_THREAD_CPUTIME_ID) - cpu0;
    }
    if (searched) {
        u->next_search_us = clock_us(CLOCK_MONOTONIC) + u->search_cpu_us * AD_SCAN_SHARE;
        u->search_cpu_us = 0;
    }
    if (l.n > 1) {
        qsort(l.v, l.n, sizeof *l.v, compare_pid);
        size_t k = 1;
        for (size_t i = 1; i < l.n; i++)
            if (l.v[i] != l.v[k - 1])
                l.v[k++] = l.v[i];
        l.n = k;
    }
    *pids = l.v;
    return l.n;
}

const char *ad_unit_where(const struct ad_unit *u)
{
    return u->where >= 0 ? u->dir[u->where] : NULL;
}

size_t ad_cgroup_roots(void)
{
    if (!roots_read)
        read_roots();
    return nroots;
}
