/*
 * The processes behind the sockets: which selected process holds a socket the kernel listed in
 * CLOSE_WAIT, under which number, and what the daemon needs to know of that process (its name,
 * whether libautoclose is already in it, whether it can be reached at all).
 *
 * Cost: only sockets not seen before are looked for, only in the selected processes, and all of
 * one interval's newcomers in a single pass over each process's descriptors; a host with 10,000
 * healthy connections and no new CLOSE_WAIT socket costs no look into /proc at all. New CLOSE_WAIT
 * sockets of other processes are newcomers too, so each process's scans are spaced by their own
 * cost (the budget below), whatever those sockets do.
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

static struct proc_entry {
    struct ad_process p;
    bool used; /* holds a tracked socket this interval */
    UT_hash_handle hh;
} * procs;

size_t ad_unreachable_processes;

/* Reads a small /proc file whole; false if it is gone or unreadable. */
static bool read_small(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    return true;
}

/* Field 22 of /proc/PID/stat, counted after the command's closing parenthesis (a command may
 * hold spaces and parentheses of its own). */
bool ad_start_time(pid_t pid, unsigned long long *out)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (!read_small(path, buf, sizeof buf))
        return false;
    char *p = strrchr(buf, ')');
    if (p == NULL)
        return false;
    p++;
    for (int field = 3; field < 22; field++) {
        p = strchr(p + 1, ' ');
        if (p == NULL)
            return false;
    }
    *out = strtoull(p + 1, NULL, 10);
    return true;
}

/* libautoclose in the process's mappings: the library handles its sockets itself. */
static bool has_library(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, "/libautoclose.so") != NULL;
    fclose(f);
    return found;
}

struct ad_process *ad_process(pid_t pid)
{
    struct proc_entry *e;
    HASH_FIND_INT(procs, &pid, e);
    if (e)
        return &e->p;
    e = calloc(1, sizeof *e);
    if (e == NULL)
        return NULL;
    e->p.pid = pid;
    e->p.pidfd = -1;
    if (!ad_start_time(pid, &e->p.start_time)) {
        free(e);
        return NULL;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
    if (read_small(path, e->p.comm, sizeof e->p.comm))
        e->p.comm[strcspn(e->p.comm, "\n")] = '\0';
    else
        strcpy(e->p.comm, "?");
    e->p.preloaded = has_library(pid);
    if (e->p.preloaded)
        ad_log(AC_LOG_DEBUG,
               "pid=%d comm=%s has libautoclose preloaded: its sockets are left to it", (int)pid,
               e->p.comm);
    HASH_ADD_INT(procs, p.pid, e);
    return &e->p;
}

static void forget(struct proc_entry *e)
{
    HASH_DEL(procs, e);
    if (e->p.pidfd >= 0)
        close(e->p.pidfd);
    free(e);
}

void ad_processes_prune(void)
{
    struct proc_entry *e, *tmp;
    HASH_ITER(hh, procs, e, tmp)
    {
        unsigned long long start;
        /* An exited process, or its pid reused: a new record is made if it is met again. */
        if (!ad_start_time(e->p.pid, &start) || start != e->p.start_time)
            forget(e);
    }
}

/* Yama's ptrace_scope, for a message that names what really stands in the way. */
static int ptrace_scope(void)
{
    char buf[16];
    return read_small("/proc/sys/kernel/yama/ptrace_scope", buf, sizeof buf) ? atoi(buf) : 0;
}

void ad_process_unreachable(struct ad_process *p, int err, const char *step)
{
    if (p->unreachable)
        return;
    p->unreachable = true;
    ad_errors_total++;
    ad_unreachable_processes++;
    int scope = ptrace_scope();
    if (err == EPERM || err == EACCES) {
        if (scope >= 3)
            ad_log(AC_LOG_ERROR,
                   "cannot reach pid=%d comm=%s: %s is refused (Yama ptrace_scope=3 forbids it "
                   "to everyone, CAP_SYS_PTRACE included); its sockets are left alone",
                   (int)p->pid, p->comm, step);
        else
            ad_log(AC_LOG_ERROR,
                   "cannot reach pid=%d comm=%s: %s needs CAP_SYS_PTRACE%s (or the same user%s); "
                   "its sockets are left alone",
                   (int)p->pid, p->comm, step,
                   strcmp(step, "reading its descriptors") == 0 ? " and CAP_DAC_READ_SEARCH" : "",
                   scope >= 1 ? " and a parent of it, under Yama ptrace_scope>=1" : "");
    } else {
        ad_log(AC_LOG_ERROR, "cannot reach pid=%d comm=%s: %s failed: %s", (int)p->pid, p->comm,
               step, strerror(err));
    }
}

static int compare_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
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

/* One process's descriptors against the wanted list, counted in *fds. Returns false when they
 * cannot be read (errno says why). */
static bool scan_process(pid_t pid, const uint32_t *want, size_t n, struct ad_holder *found,
                         size_t *left, size_t *fds)
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
    while (*left > 0 && (de = readdir(d)) != NULL) {
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
        uint32_t *hit = bsearch(&ino, want, n, sizeof *want, compare_u32);
        if (hit && found[hit - want].pid == 0) {
            found[hit - want] = (struct ad_holder){pid, atoi(de->d_name)};
            (*left)--;
        }
    }
    int err = errno;
    closedir(d);
    errno = err;
    return ok;
}

/* Processes of the host the daemon may not look into (--ports alone), kept for one lookup. */
struct closed_door {
    pid_t pid;
    int err;
};

/* Returns false when the process's descriptors could not be read (errno says why); with --ports
 * alone that is noted in `doors` instead. */
static bool scan_one(pid_t pid, const uint32_t *want, size_t n, struct ad_holder *found,
                     size_t *left, size_t *fds, struct closed_door **doors, size_t *ndoors)
{
    if (pid == getpid())
        return true;
    if (scan_process(pid, want, n, found, left, fds))
        return true;
    int err = errno;
    if (err == ENOENT || err == ESRCH)
        return true; /* exited */
    if (doors == NULL) {
        errno = err;
        return false;
    }
    struct closed_door *more = realloc(*doors, (*ndoors + 1) * sizeof **doors);
    if (more) {
        *doors = more;
        more[(*ndoors)++] = (struct closed_door){pid, err};
    }
    return true;
}

/* The scans' budget. Reading a descriptor table costs a readlinkat per descriptor (20,000 take
 * tens of milliseconds), and every new CLOSE_WAIT socket of the host, however unrelated, is
 * looked for: so a unit whose last scan took D of CPU time (the daemon's own cost, whatever the
 * machine's load) is not scanned again before AD_SCAN_SHARE * D has passed. New sockets wait for
 * the next allowed scan; their grace runs from the FIN all the same. */
static uint64_t scan_next_us[AD_MAX_PIDS];

static uint64_t clock_us(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t ad_scan_units(void)
{
    size_t n = ad_opt.npids ? ad_opt.npids : 1;
    return n >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << n) - 1;
}

static void scan_spent(size_t unit, pid_t pid, size_t processes, size_t fds, uint64_t cpu_us)
{
    uint64_t wait_us = cpu_us * AD_SCAN_SHARE;
    scan_next_us[unit] = clock_us(CLOCK_MONOTONIC) + wait_us;
    if (pid)
        ad_log(AC_LOG_DEBUG, "scan pid=%d fds=%zu cpu_us=%llu next_in_ms=%llu", (int)pid, fds,
               (unsigned long long)cpu_us, (unsigned long long)(wait_us / 1000));
    else
        ad_log(AC_LOG_DEBUG, "scan pid=any processes=%zu fds=%zu cpu_us=%llu next_in_ms=%llu",
               processes, fds, (unsigned long long)cpu_us, (unsigned long long)(wait_us / 1000));
}

/* --pid: each selected process still running, each when its budget allows. A scan is believed
 * only if the process was still running after it: once it has exited, its number may already
 * name another process, whose table the scan may have read. */
static uint64_t scan_selected(const uint32_t *want, size_t n, struct ad_holder *found, size_t *left)
{
    uint64_t covered = 0, now = clock_us(CLOCK_MONOTONIC);
    for (size_t i = 0; i < ad_opt.npids; i++) {
        if (*left == 0)
            break;
        pid_t pid = ad_opt.pids[i];
        if (!ad_selected_running(i)) {
            covered |= (uint64_t)1 << i;
            continue;
        }
        if (now < scan_next_us[i])
            continue;
        size_t fds = 0, before = *left;
        uint64_t cpu0 = clock_us(CLOCK_THREAD_CPUTIME_ID);
        bool ok = scan_one(pid, want, n, found, left, &fds, NULL, NULL);
        int err = errno;
        scan_spent(i, pid, 1, fds, clock_us(CLOCK_THREAD_CPUTIME_ID) - cpu0);
        covered |= (uint64_t)1 << i;
        if ((!ok || *left < before) && !ad_selected_still_running(i)) {
            for (size_t k = 0; k < n; k++)
                if (found[k].pid == pid) {
                    found[k].pid = 0;
                    (*left)++;
                }
            continue;
        }
        if (!ok) {
            /* Named by --pid: worth a line. */
            struct ad_process *p = ad_process(pid);
            if (p)
                ad_process_unreachable(p, err, "reading its descriptors");
        }
    }
    return covered;
}

uint64_t ad_find_owners(const uint32_t *want, const uint32_t *uids, size_t n,
                        struct ad_holder *found)
{
    memset(found, 0, n * sizeof *found);
    size_t left = n;
    if (ad_opt.npids > 0)
        return scan_selected(want, n, found, &left);
    /* --ports alone: every process of the host, one scan unit. */
    if (clock_us(CLOCK_MONOTONIC) < scan_next_us[0])
        return 0;
    DIR *proc = opendir("/proc");
    if (proc == NULL)
        return 0;
    uint64_t cpu0 = clock_us(CLOCK_THREAD_CPUTIME_ID);
    struct closed_door *doors = NULL;
    size_t ndoors = 0, processes = 0, fds = 0;
    struct dirent *de;
    while (left > 0 && (de = readdir(proc)) != NULL) {
        if (de->d_name[0] < '1' || de->d_name[0] > '9')
            continue;
        processes++;
        (void)scan_one((pid_t)atoi(de->d_name), want, n, found, &left, &fds, &doors, &ndoors);
    }
    closedir(proc);
    /* Among every process of the host, one the daemon may not look into is named only when it
     * belongs to the user of a socket nobody else was found holding: most likely its owner. */
    for (size_t d = 0; d < ndoors && left > 0; d++) {
        char path[32];
        struct stat st;
        snprintf(path, sizeof path, "/proc/%d", (int)doors[d].pid);
        if (stat(path, &st) != 0)
            continue;
        for (size_t i = 0; i < n; i++) {
            if (found[i].pid == 0 && uids[i] == st.st_uid) {
                struct ad_process *p = ad_process(doors[d].pid);
                if (p)
                    ad_process_unreachable(p, doors[d].err, "reading its descriptors");
                break;
            }
        }
    }
    free(doors);
    scan_spent(0, 0, processes, fds, clock_us(CLOCK_THREAD_CPUTIME_ID) - cpu0);
    return 1;
}
