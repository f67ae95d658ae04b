/*
 * The daemon's records of the processes behind the sockets it tracks, and what it says about
 * processes it cannot reach and about its own shortages.
 *
 * A record is made from what a scanner read (owners.c), never by reading /proc here: some of a
 * process's entries wait while it is inside execve, for as long as it likes (scanner.c). It is
 * kept while a tracked socket names it or while it waits out a back-off, and forgotten otherwise;
 * nothing here asks whether its process still runs. That is asked where it matters, in the
 * taker, which compares the recorded start time with the process its pidfd names and is
 * disposable if the asking waits.
 */
#include "autoclosed.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

static struct proc_entry {
    struct ad_process p;
    bool used; /* holds a tracked socket this interval */
    UT_hash_handle hh;
} * procs;
static size_t nprocs;

size_t ad_unreachable_processes;

struct ad_process *ad_process(pid_t pid)
{
    struct proc_entry *e;
    HASH_FIND_INT(procs, &pid, e);
    if (e)
        return &e->p;
    errno = ESRCH;
    return NULL;
}

static void say_records_full(void)
{
    static uint64_t said_ms;
    uint64_t now = ac_now_ms();
    if (said_ms != 0 && now - said_ms < 60000)
        return;
    said_ms = now;
    ad_log(AC_LOG_ERROR,
           "%d processes with half-closed sockets are recorded already: the sockets of others "
           "wait until some are done (said once a minute at most)",
           AD_MAX_PROCESSES);
}

struct ad_process *ad_process_record(const struct ad_facts *f)
{
    struct proc_entry *e;
    HASH_FIND_INT(procs, &f->pid, e);
    if (e && e->p.start_time != f->start_time) {
        /* Another process under that number: nothing of the old one's holds. */
        e->p = (struct ad_process){.pid = f->pid};
    } else if (e == NULL) {
        if (nprocs >= AD_MAX_PROCESSES) {
            say_records_full();
            errno = ENOSPC;
            return NULL;
        }
        e = calloc(1, sizeof *e);
        if (e == NULL) {
            errno = ENOMEM;
            return NULL;
        }
        e->p.pid = f->pid;
        HASH_ADD_INT(procs, p.pid, e);
        nprocs++;
    }
    e->p.uid = f->uid;
    e->p.user = f->user;
    e->p.start_time = f->start_time;
    memcpy(e->p.container, f->container, sizeof f->container);
    e->p.container[sizeof e->p.container - 1] = '\0';
    memcpy(e->p.comm, f->comm, sizeof f->comm);
    e->p.comm[sizeof f->comm] = '\0';
    e->p.comm[strcspn(e->p.comm, "\n")] = '\0';
    if (e->p.comm[0] == '\0')
        strcpy(e->p.comm, "?");
    struct ac_text t;
    ac_text_init(&t, e->p.comm_field, sizeof e->p.comm_field);
    ac_text_field(&t, e->p.comm);
    e->used = true; /* until the next prune */
    return &e->p;
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
        if (!e->used && e->p.retry_ms <= now) {
            HASH_DEL(procs, e);
            nprocs--;
            free(e);
        } else {
            e->used = false;
        }
    }
}

/* Reads a small file whole; false if it cannot be read. */
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
