/*
 * What autoclosed is told to watch, made exact at start.
 *
 * --pid names a process, not a number: numbers are reused, by anyone. Each --pid is resolved
 * once (a thread id means the process it is a thread of) and a pidfd is opened on it then; that
 * pidfd is the process's identity from then on. Once it says the process has exited (it polls
 * readable), the number is never looked into or acted on again, so a later process that gets
 * the number (another user's, say) is never touched; and the action takes descriptors through
 * that same pidfd, which fails once the process has exited. On a kernel without pidfd_open
 * (before Linux 5.3) the start time stands in for it; nothing can be taken there anyway. Its
 * descendants, and the processes of --unit and --exe, change as processes come and go: they are
 * listed anew at each scan (members.c).
 *
 * What is read here of a selected process, in the daemon's own process, is among the /proc
 * entries that never wait on it: status and comm (scanner.c says which wait while a process is
 * inside execve, for as long as a user likes). So a selected process stuck in an exec cannot
 * hold up the start. Its start time (stat, which does wait) is read only where there is no
 * pidfd to stand for the process; pidfd_open itself never waits.
 *
 * --ports is matched against peer ports too (right for MOS, whose NCS listens on the upper
 * port). Clients pick their own ports from their host's ephemeral range, 32768-60999 on Linux
 * and 32768-65535 elsewhere (49152-65535 is within it): a list that reaches there selects
 * unrelated connections whose client happened to get a listed port. Without --pid, --unit or
 * --exe that is refused; with them, where only the selected processes' connections are in
 * question, said.
 */
#include "autoclosed.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434 /* the same number on every architecture */
#endif

/* What clients pick from on other systems (and on Linux with a widened range). */
#define CLIENT_PORTS_LO 32768
#define CLIENT_PORTS_HI 65535

static struct selected {
    pid_t named;  /* what --pid said: a thread id, when it differs from the process's */
    int pidfd;    /* -1: none on this kernel, or the process has exited */
    bool running; /* not yet seen to have exited */
    unsigned long long start_time;
    char comm[17];
} sel[AD_MAX_PIDS];
static size_t nrunning;
static char ports_note[512]; /* --ports with --pid reaching into clients' ports: said at start */

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

/* The process a pid or thread id belongs to (Tgid in /proc/ID/status, which exists for a
 * thread id too); 0 when there is none (errno says why). */
static pid_t process_of(pid_t id)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/status", (int)id);
    if (!read_small(path, buf, sizeof buf))
        return 0;
    const char *t = strstr(buf, "\nTgid:");
    if (t == NULL) {
        errno = ESRCH;
        return 0;
    }
    return (pid_t)strtol(t + 6, NULL, 10);
}

/* The pidfd says the process has exited (or, without one, its number has another start time
 * or none). */
static bool has_exited(const struct selected *s, pid_t pid)
{
    if (s->pidfd >= 0) {
        struct pollfd p = {.fd = s->pidfd, .events = POLLIN};
        return poll(&p, 1, 0) == 1; /* readable: exited (EINTR: asked again next time) */
    }
    unsigned long long start;
    return !ad_start_time(pid, &start) || start != s->start_time;
}

static int no_process(const char *given, const char *why)
{
    ad_complain("--pid %s: %s (see autoclosed --help)", given, why);
    return 2;
}

/* Resolves ad_opt.pids in place: each entry becomes a process, held. */
static int select_processes(struct ad_options *o)
{
    size_t n = 0;
    for (size_t i = 0; i < o->npids; i++) {
        pid_t given = o->pids[i], pid = process_of(given);
        char text[16];
        snprintf(text, sizeof text, "%d", (int)given);
        if (pid <= 0)
            return no_process(text, errno == ENOENT || errno == ESRCH ? "no such process"
                                                                      : "cannot be read in /proc");
        bool dup = false;
        for (size_t j = 0; j < n; j++)
            dup |= o->pids[j] == pid;
        if (dup)
            continue;
        struct selected *s = &sel[n];
        *s = (struct selected){.named = given, .pidfd = -1, .running = true};
        s->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (s->pidfd < 0 && errno != ENOSYS)
            return no_process(text, errno == ESRCH ? "no such process" : strerror(errno));
        /* Read after the pidfd is open and checked after: then they are this process's. */
        bool known = s->pidfd >= 0 || ad_start_time(pid, &s->start_time);
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
        if (read_small(path, s->comm, sizeof s->comm))
            s->comm[strcspn(s->comm, "\n")] = '\0';
        else
            strcpy(s->comm, "?");
        for (char *c = s->comm; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f)
                *c = '?'; /* the name is the process's to choose: no line of its own making */
        if (!known || (s->pidfd >= 0 && has_exited(s, pid)))
            return no_process(text, "no such process (it has exited)");
        o->pids[n++] = pid;
    }
    o->npids = n;
    nrunning = n;
    return -1;
}

/* The ephemeral range of this host, [lo, hi]; false when it cannot be read. */
static bool local_port_range(unsigned *lo, unsigned *hi)
{
    char buf[64];
    return read_small("/proc/sys/net/ipv4/ip_local_port_range", buf, sizeof buf) &&
           sscanf(buf, "%u %u", lo, hi) == 2 && *lo <= *hi;
}

/* The listed ports clients may pick, as a short list of ranges ("32768-60999,61000"); false
 * when there is none. */
static bool client_ports_listed(const struct ac_portset *ports, char *out, size_t cap, char *range,
                                size_t range_cap)
{
    unsigned lo = CLIENT_PORTS_LO, hi = CLIENT_PORTS_HI;
    bool local = local_port_range(&lo, &hi);
    if (local)
        snprintf(range, range_cap, "this host's ip_local_port_range is %u-%u", lo, hi);
    else
        snprintf(range, range_cap, "this host's ip_local_port_range cannot be read");
    struct ac_text t;
    ac_text_init(&t, out, cap);
    int shown = 0;
    bool any = false;
    for (unsigned p = 1; p <= 65535; p++) {
        bool client = (p >= lo && p <= hi) || p >= CLIENT_PORTS_LO;
        if (!client || !ac_portset_has(ports, p))
            continue;
        unsigned q = p;
        while (q < 65535 && ac_portset_has(ports, q + 1) &&
               ((q + 1 >= lo && q + 1 <= hi) || q + 1 >= CLIENT_PORTS_LO))
            q++;
        if (shown < 3) {
            if (shown)
                ac_text_str(&t, ",");
            ac_text_int(&t, p);
            if (q > p) {
                ac_text_str(&t, "-");
                ac_text_int(&t, q);
            }
        } else if (shown == 3) {
            ac_text_str(&t, ",...");
        }
        shown++;
        any = true;
        p = q;
    }
    return any;
}

static int check_ports(const struct ad_options *o)
{
    char listed[96], range[96];
    if (o->ports.all || !client_ports_listed(&o->ports, listed, sizeof listed, range, sizeof range))
        return -1;
    if (o->npids + o->nunits + o->nexes == 0) {
        ad_complain("--ports %s: clients pick their own ports there (%s; other systems use "
                    "32768-65535) and --ports matches peer ports too, so unrelated connections "
                    "would be shut down: narrow the list to the server's own ports, or add --pid, "
                    "--unit or --exe (see autoclosed --help)",
                    listed, range);
        return 2;
    }
    snprintf(ports_note, sizeof ports_note,
             "--ports %s: clients pick their own ports there (%s; other systems use "
             "32768-65535): a selected process's connection whose peer got such a port is "
             "handled too",
             listed, range);
    return -1;
}

int ad_selection_start(struct ad_options *o)
{
    int rc = check_ports(o);
    if (rc >= 0)
        return rc;
    if ((rc = select_processes(o)) >= 0)
        return rc;
    return ad_members_start(o);
}

void ad_selection_say(void)
{
    for (size_t i = 0; i < ad_opt.npids; i++)
        if (sel[i].named != ad_opt.pids[i])
            ad_log(AC_LOG_INFO, "--pid %d is a thread of pid=%d (%s): watching that process",
                   (int)sel[i].named, (int)ad_opt.pids[i], sel[i].comm);
    if (ports_note[0])
        ad_log(AC_LOG_INFO, "%s", ports_note);
    ad_members_say();
}

static void exited(size_t i)
{
    struct selected *s = &sel[i];
    s->running = false;
    nrunning--;
    if (s->pidfd >= 0)
        close(s->pidfd);
    s->pidfd = -1;
    char comm[72];
    struct ac_text t;
    ac_text_init(&t, comm, sizeof comm);
    ac_text_field(&t, s->comm); /* quoted: a name cannot forge fields */
    ad_log(AC_LOG_INFO, "pid=%d comm=%s has exited: no longer watched", (int)ad_opt.pids[i], comm);
}

size_t ad_selection_poll(void)
{
    struct pollfd p[AD_MAX_PIDS];
    size_t at[AD_MAX_PIDS], n = 0;
    for (size_t i = 0; i < ad_opt.npids; i++) {
        if (!sel[i].running)
            continue;
        if (sel[i].pidfd < 0) {
            if (has_exited(&sel[i], ad_opt.pids[i]))
                exited(i);
            continue;
        }
        p[n] = (struct pollfd){.fd = sel[i].pidfd, .events = POLLIN};
        at[n++] = i;
    }
    if (n > 0 && poll(p, n, 0) > 0)
        for (size_t k = 0; k < n; k++)
            if (p[k].revents)
                exited(at[k]);
    return nrunning;
}

size_t ad_selection_running(void)
{
    return nrunning;
}

bool ad_selected_running(size_t i)
{
    return sel[i].running;
}

bool ad_selected_still_running(size_t i)
{
    if (sel[i].running && has_exited(&sel[i], ad_opt.pids[i]))
        exited(i);
    return sel[i].running;
}

int ad_selected_pidfd(pid_t pid)
{
    for (size_t i = 0; i < ad_opt.npids; i++) {
        if (ad_opt.pids[i] != pid)
            continue;
        if (!sel[i].running)
            break;
        if (sel[i].pidfd < 0)
            errno = ENOSYS;
        return sel[i].pidfd;
    }
    errno = ESRCH;
    return -1;
}
