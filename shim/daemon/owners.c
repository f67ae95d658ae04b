/*
 * The processes behind the sockets: which selected process holds a socket the kernel listed in
 * CLOSE_WAIT, under which number, and what the daemon needs to know of that process (its name,
 * its user, whether it can be reached at all). A process with libautoclose in it is treated like
 * any other: where the library is active its grace ends first, and the daemon then finds the
 * socket finished. Nothing is read from /proc/PID/maps, whose reading waits for the process's
 * memory map lock, which the process can hold.
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
#include <linux/capability.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static struct proc_entry {
    struct ad_process p;
    bool used; /* holds a tracked socket this interval */
    UT_hash_handle hh;
} * procs;
static size_t nprocs;

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

/* Field `n` (from 3) of /proc/PID/stat, counted after the command's closing parenthesis (a
 * command may hold spaces and parentheses of its own). */
static bool stat_field(pid_t pid, int n, unsigned long long *out)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (!read_small(path, buf, sizeof buf))
        return false;
    char *p = strrchr(buf, ')');
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

bool ad_start_time(pid_t pid, unsigned long long *out)
{
    return stat_field(pid, 22, out);
}

/* PF_KTHREAD in the flags (field 9): a kernel thread holds no file and is never named. */
static bool kernel_thread(pid_t pid)
{
    unsigned long long flags;
    return stat_field(pid, 9, &flags) && (flags & 0x00200000u);
}

/* The real user id, from the "Uid:" line of /proc/PID/status. */
static bool real_uid(pid_t pid, uid_t *out)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    if (!read_small(path, buf, sizeof buf))
        return false;
    const char *line = strstr(buf, "\nUid:");
    if (line == NULL)
        return false;
    *out = (uid_t)strtoul(line + 5, NULL, 10);
    return true;
}

struct ad_process *ad_process(pid_t pid)
{
    struct proc_entry *e;
    HASH_FIND_INT(procs, &pid, e);
    if (e)
        return &e->p;
    if (nprocs >= AD_MAX_PROCESSES) {
        errno = ENOSPC;
        return NULL;
    }
    e = calloc(1, sizeof *e);
    if (e == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    e->p.pid = pid;
    if (!ad_start_time(pid, &e->p.start_time) || !real_uid(pid, &e->p.uid)) {
        free(e);
        errno = ESRCH;
        return NULL;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
    if (read_small(path, e->p.comm, sizeof e->p.comm))
        e->p.comm[strcspn(e->p.comm, "\n")] = '\0';
    else
        strcpy(e->p.comm, "?");
    struct ac_text t;
    ac_text_init(&t, e->p.comm_field, sizeof e->p.comm_field);
    ac_text_field(&t, e->p.comm);
    HASH_ADD_INT(procs, p.pid, e);
    nprocs++;
    e->used = true; /* until the next prune */
    return &e->p;
}

static void forget(struct proc_entry *e)
{
    HASH_DEL(procs, e);
    nprocs--;
    free(e);
}

void ad_process_keep(pid_t pid)
{
    struct proc_entry *e;
    HASH_FIND_INT(procs, &pid, e);
    if (e)
        e->used = true;
}

void ad_processes_prune(void)
{
    uint64_t now = ac_now_ms();
    struct proc_entry *e, *tmp;
    HASH_ITER(hh, procs, e, tmp)
    {
        unsigned long long start;
        /* An exited process, or its pid reused: a new record is made if it is met again. One
         * that no socket names is forgotten too, unless it waits out a back-off. */
        if (!ad_start_time(e->p.pid, &start) || start != e->p.start_time ||
            (!e->used && e->p.retry_ms <= now))
            forget(e);
        else
            e->used = false;
    }
}

/* Yama's ptrace_scope, for a message that names what really stands in the way. */
static int ptrace_scope(void)
{
    char buf[16];
    return read_small("/proc/sys/kernel/yama/ptrace_scope", buf, sizeof buf) ? atoi(buf) : 0;
}

/* CAP_SYS_PTRACE in the daemon's effective set: then a refused pidfd_getfd is no permission
 * matter. */
static bool have_cap_sys_ptrace(void)
{
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];
    if (syscall(SYS_capget, &h, d) != 0)
        return false;
    return d[CAP_SYS_PTRACE / 32].effective & (1u << (CAP_SYS_PTRACE % 32));
}

void ad_process_unreachable(struct ad_process *p, int err, const char *step)
{
    uint64_t now = ac_now_ms();
    if (p->retry_ms > now)
        return; /* said for this back-off */
    p->backoff_ms = ad_backoff_next(p->backoff_ms);
    p->retry_ms = now + p->backoff_ms;
    ad_errors_total++;
    if (!p->unreachable)
        ad_unreachable_processes++;
    p->unreachable = true;
    char again[48] = "its sockets are left alone"; /* --once: there is no later */
    if (!ad_opt.once)
        snprintf(again, sizeof again, "tried again in %u s", p->backoff_ms / 1000);
    int scope = ptrace_scope();
    /* The system call named in the step, for a refusal that no capability explains. */
    const char *call = strstr(step, "pidfd_getfd")  ? "pidfd_getfd"
                       : strstr(step, "pidfd_open") ? "pidfd_open"
                                                    : NULL;
    /* pidfd_open checks no permission at all; pidfd_getfd none that CAP_SYS_PTRACE lacks. */
    bool cap = call && have_cap_sys_ptrace();
    if ((err == EPERM || err == EACCES) && scope < 3 && call &&
        (cap || strcmp(call, "pidfd_open") == 0)) {
        ad_log(AC_LOG_ERROR,
               "cannot reach pid=%d comm=%s: %s is refused%s: a seccomp filter "
               "(SystemCallFilter=) or an LSM forbids %s; %s",
               (int)p->pid, p->comm_field, step,
               cap ? " although autoclosed has CAP_SYS_PTRACE" : "", call, again);
    } else if (err == EPERM || err == EACCES) {
        if (scope >= 3)
            ad_log(AC_LOG_ERROR,
                   "cannot reach pid=%d comm=%s: %s is refused (Yama ptrace_scope=3 forbids it "
                   "to everyone, CAP_SYS_PTRACE included); %s",
                   (int)p->pid, p->comm_field, step, again);
        else
            ad_log(AC_LOG_ERROR,
                   "cannot reach pid=%d comm=%s: %s needs CAP_SYS_PTRACE%s (or the same user%s); "
                   "%s",
                   (int)p->pid, p->comm_field, step,
                   strcmp(step, "reading its descriptors") == 0 ? " and CAP_DAC_READ_SEARCH" : "",
                   scope >= 1 ? " and a parent of it, under Yama ptrace_scope>=1" : "", again);
    } else {
        ad_log(AC_LOG_ERROR, "cannot reach pid=%d comm=%s: %s failed: %s; %s", (int)p->pid,
               p->comm_field, step, strerror(err), again);
    }
}

bool ad_short_of(int err, const char *what)
{
    if (err != EMFILE && err != ENFILE && err != ENOMEM && err != EAGAIN)
        return false;
    static uint64_t said_ms;
    uint64_t now = ac_now_ms();
    if (said_ms != 0 && now - said_ms < 60000)
        return true;
    said_ms = now;
    struct rlimit lim = {0};
    getrlimit(RLIMIT_NOFILE, &lim);
    char why[96];
    if (err == EMFILE)
        snprintf(why, sizeof why, "its descriptors (RLIMIT_NOFILE %llu) are all in use",
                 (unsigned long long)lim.rlim_cur);
    else
        snprintf(why, sizeof why, "%s",
                 err == ENFILE ? "the system's file table (fs.file-max) is full"
                               : "memory or processes ran short");
    ad_log(AC_LOG_ERROR,
           "autoclosed cannot go on %s: %s (%s); nothing is given up, tried again at the next "
           "interval (said once a minute at most)",
           what, why, strerror(err));
    return true;
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

/* Returns false when the process's descriptors could not be read (errno says why): with --ports
 * alone that is noted in `doors` instead. *shortage: the daemon ran short of descriptors or
 * memory on the way (ours to pass, not the process's: the look does not count). */
static bool scan_one(pid_t pid, const uint32_t *want, size_t n, struct ad_holder *found,
                     size_t *left, size_t *fds, struct closed_door **doors, size_t *ndoors,
                     bool *shortage)
{
    if (pid == getpid())
        return true;
    if (scan_process(pid, want, n, found, left, fds))
        return true;
    int err = errno;
    if (err == ENOENT || err == ESRCH)
        return true; /* exited */
    if (ad_short_of(err, "reading processes' descriptors")) {
        *shortage = true;
        return true;
    }
    if (doors == NULL) {
        errno = err;
        return false;
    }
    if (kernel_thread(pid))
        return true;
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
 * name another process, whose table the scan may have read. A scan the daemon's own shortage
 * cut short covers nothing. */
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
        bool shortage = false;
        uint64_t cpu0 = clock_us(CLOCK_THREAD_CPUTIME_ID);
        bool ok = scan_one(pid, want, n, found, left, &fds, NULL, NULL, &shortage);
        int err = errno;
        scan_spent(i, pid, 1, fds, clock_us(CLOCK_THREAD_CPUTIME_ID) - cpu0);
        if (shortage)
            break; /* not covered: tried again at the next interval */
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
    if (proc == NULL) {
        (void)ad_short_of(errno, "reading /proc");
        return 0;
    }
    uint64_t cpu0 = clock_us(CLOCK_THREAD_CPUTIME_ID);
    struct closed_door *doors = NULL;
    size_t ndoors = 0, processes = 0, fds = 0;
    bool shortage = false;
    struct dirent *de;
    while (left > 0 && !shortage && (de = readdir(proc)) != NULL) {
        if (de->d_name[0] < '1' || de->d_name[0] > '9')
            continue;
        processes++;
        (void)scan_one((pid_t)atoi(de->d_name), want, n, found, &left, &fds, &doors, &ndoors,
                       &shortage);
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
    return shortage ? 0 : 1;
}
