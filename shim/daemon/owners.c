/*
 * The processes behind the sockets: which selected process holds a socket the kernel listed in
 * CLOSE_WAIT, under which number, and what the daemon needs to know of that process (its name,
 * whether libautoclose is already in it, whether it can be reached at all).
 *
 * Cost: only sockets not seen before are looked for, only in the selected processes, and all of
 * one interval's newcomers in a single pass over each process's descriptors; a host with 10,000
 * healthy connections and no new CLOSE_WAIT socket costs no look into /proc at all.
 */
#include "autoclosed.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* One process's descriptors against the wanted list. Returns false when they cannot be read
 * (errno says why). */
static bool scan_process(pid_t pid, const uint32_t *want, size_t n, struct ad_holder *found,
                         size_t *left)
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

static void scan_selected(pid_t pid, const uint32_t *want, size_t n, struct ad_holder *found,
                          size_t *left, struct closed_door **doors, size_t *ndoors)
{
    if (pid == getpid())
        return;
    if (scan_process(pid, want, n, found, left))
        return;
    int err = errno;
    if (err == ENOENT || err == ESRCH)
        return; /* exited */
    if (doors == NULL) {
        /* Named by --pid: worth a line. */
        struct ad_process *p = ad_process(pid);
        if (p)
            ad_process_unreachable(p, err, "reading its descriptors");
        return;
    }
    struct closed_door *more = realloc(*doors, (*ndoors + 1) * sizeof **doors);
    if (more) {
        *doors = more;
        more[(*ndoors)++] = (struct closed_door){pid, err};
    }
}

void ad_find_owners(const uint32_t *want, const uint32_t *uids, size_t n, struct ad_holder *found)
{
    memset(found, 0, n * sizeof *found);
    size_t left = n;
    if (ad_opt.npids > 0) {
        for (size_t i = 0; i < ad_opt.npids && left > 0; i++)
            scan_selected(ad_opt.pids[i], want, n, found, &left, NULL, NULL);
        return;
    }
    DIR *proc = opendir("/proc");
    if (proc == NULL)
        return;
    struct closed_door *doors = NULL;
    size_t ndoors = 0;
    struct dirent *de;
    while (left > 0 && (de = readdir(proc)) != NULL) {
        if (de->d_name[0] < '1' || de->d_name[0] > '9')
            continue;
        scan_selected((pid_t)atoi(de->d_name), want, n, found, &left, &doors, &ndoors);
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
}
