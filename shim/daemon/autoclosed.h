/*
 * autoclosed — the companion daemon's internal interface.
 *
 * Each interval: the kernel's list of TCP sockets in CLOSE_WAIT (core/diag.c) → the sockets not
 * seen before are looked for in the selected processes' descriptor tables by a short-lived child
 * process (owners.c, scanner.c) → each half-closed socket of a selected process waits out the
 * grace in the table (table.c) → when due, a short-lived child process (taker.c) takes a
 * reference with pidfd_getfd, checks it against the kernel's record and, when the connection is
 * idle by the library's own rule (core/idle.c), shuts it down (reclaim.c). The daemon itself
 * never holds another process's file, nor reads another process's /proc entries that may wait on
 * it. The process is never stopped and its descriptor stays its own: the peer gets our FIN and
 * ends in TIME_WAIT, the process's next read sees EOF and its next write EPIPE.
 */
#ifndef AUTOCLOSED_H
#define AUTOCLOSED_H

#include "core.h"

#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <uthash.h>

/* ---- options (options.c) ----------------------------------------------------------------- */

#define AD_MAX_PIDS      64
#define AD_MAX_NAMES     16 /* --unit, and --exe */
#define AD_MAX_SELECTORS 64 /* --pid, --unit and --exe in all: a bit each in a scan's mask */

struct ad_options {
    pid_t pids[AD_MAX_PIDS];
    size_t npids; /* with no --unit and --exe either: every process (then --ports is required) */
    const char *units[AD_MAX_NAMES]; /* systemd units, "mosserver.service" (a suffix added) */
    size_t nunits;
    const char *exes[AD_MAX_NAMES]; /* absolute paths of executables, as given */
    size_t nexes;
    bool no_children;        /* --no-children: a --pid's or --exe's descendants are not selected */
    struct ac_portset ports; /* .all when --ports was not given */
    const char *ports_text;  /* --ports as given, for the start-up line */
    uint32_t grace_ms, interval_ms;
    bool once, dry_run;
    enum ac_log_level log_level;
    const char *log_file, *stats_file;
    const char *metrics_listen; /* --metrics-listen as given; NULL: no endpoint */
    struct ad_metrics_addr {
        struct sockaddr_storage ss;
        socklen_t len;
    } metrics_addr;
};

/* Parses argv. Returns -1 to go on, or the exit status (0 for --help/--version, 2 for a bad
 * argument, said in one line on stderr). */
int ad_parse_options(int argc, char **argv, struct ad_options *o);
extern struct ad_options ad_opt;

/* ---- the selection (selection.c) --------------------------------------------------------- */

/* At start, once the options are read: each --pid resolved to its process (a thread id to the
 * process it is a thread of; o->pids then lists processes) and held by a pidfd, its identity
 * from then on; --ports checked against the ports clients pick for themselves (refused without
 * --pid). Returns -1 to go on, or 2 (said in one line on stderr). */
int ad_selection_start(struct ad_options *o);
/* Once the log is open: a thread id taken for its process, a port list reaching into clients'
 * ports alongside --pid. */
void ad_selection_say(void);
/* Asks the kernel (one poll of every pidfd) which selected processes have exited; each exit is
 * said in one line, and the process is never looked into or acted on again. Returns how many
 * still run. */
size_t ad_selection_poll(void);
size_t ad_selection_running(void); /* the same, as last seen */
/* Selected process i (ad_opt.pids[i]) not yet seen to have exited; "still": asked now. */
bool ad_selected_running(size_t i);
bool ad_selected_still_running(size_t i);
/* Every interval: the --unit processes read again; a unit that has processes again, or none,
 * is said in one line (members.c). */
void ad_selection_refresh(void);
/* With --unit or --exe the selection outlives every --pid process: processes may come again. */
bool ad_selection_lasts(void);

/* ---- who is selected now (members.c, cgroup.c) ------------------------------------------- */

/* Selectors, each a scan unit: each --pid (0 .. npids-1), then each --unit, then each --exe; 0
 * with --ports alone. */
size_t ad_selectors(void);
bool ad_selector_ended(size_t k); /* a --pid process that has exited */
bool ad_selector_empty(size_t k); /* a --unit with no process at this interval's refresh */
void ad_selector_name(size_t k, char *out, size_t cap); /* "pid=12", "unit=...", "exe=..." */
int ad_members_start(struct ad_options *o);             /* --exe checked (exit 2) */
void ad_members_say(void); /* the first look at --unit and --exe (a scanner's for --exe), said */

struct ad_member {
    pid_t pid;
    bool held; /* a --pid process: its pidfd (selection.c) is its identity */
};
struct ad_members {
    struct ad_member *v;
    size_t n, cap;
};
/* In the scanner: the processes selector k covers now, sorted by pid, in *l (l->v to be freed):
 * a --pid process, a unit's (as read at this interval's refresh), or an executable's, with their
 * descendants unless --no-children (a unit's are in its control group already). An executable's
 * processes are those whose /proc/PID/exe names it (`found` is told each, with `replaced` for
 * one that runs the file as it was before it was removed or replaced), read with ad_scan_at
 * before each; with `exe_only` nothing more is listed. False when the look for the executable's
 * processes was cut short by the scanner's own shortage (errno). */
bool ad_selector_members(size_t k, struct ad_members *l, bool exe_only,
                         void (*found)(void *ctx, size_t e, pid_t pid, bool replaced), void *ctx);
const char *ad_exe_resolved(size_t e); /* in the scanner: the path its look matched */
/* In the daemon: a scanner's look for executable e, finished: the path it matched ("PATH" or
 * "PATH (deleted)"), `total` processes of which pids[0..n) were kept. Said in one line when it
 * has processes again, or none, and for each process that runs the replaced file. */
void ad_exe_seen(size_t e, const char *resolved, const pid_t *pids, const bool *replaced, size_t n,
                 size_t total);

/* A systemd unit's control groups, one per tree mounted (cgroup2, and name=systemd v1). */
struct ad_unit {
    const char *name;
    char *dir[4];                           /* found, in each tree; NULL: not there */
    int where;                              /* the first tree its processes were read in, or -1 */
    uint64_t next_search_us, search_cpu_us; /* searches spaced by their cost */
};
/* Its processes now, sorted, in *pids (to be freed): its directories' cgroup.procs, found again
 * when gone or empty. Read in the daemon: cgroup.procs never waits on a process. */
size_t ad_unit_processes(struct ad_unit *u, pid_t **pids);
const char *ad_unit_where(const struct ad_unit *u); /* where its processes were read, or NULL */
size_t ad_cgroup_roots(void);                       /* the trees mounted here */

/* The pidfd kept for a selected process that still runs (for pidfd_getfd: it fails once the
 * process has exited, so its number's next owner is never reached); -1 otherwise, errno ESRCH
 * (not selected, or exited) or ENOSYS (this kernel has no pidfd_open). */
int ad_selected_pidfd(pid_t pid);

/* ---- log (report.c) ---------------------------------------------------------------------- */

/* "<UTC time> autoclosed[<pid>]: <message>" to --log-file or stderr ("<N>autoclosed[<pid>]:
 * <message>" on a stderr that is the journal's stream); every line is rate-limited, errors in a
 * bucket of their own (a storm is summed up, not listed). */
void ad_log(enum ac_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same for a line about a process of `user` (ad_process.user): other users' lines share a
 * bucket of their own, so that one who makes many cannot hide root's. */
void ad_log_of(uid_t user, enum ac_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A line asked for (SIGUSR1's status): written at every level but off, with the priority of a
 * notice, in the errors' bucket. */
void ad_log_notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Before the options are read: whether stderr is the journal's stream (JOURNAL_STREAM). */
void ad_log_start_stderr(void);
/* "autoclosed: <message>" on stderr, for a bad argument before the log is open ("<3>" first
 * when stderr is the journal's stream). */
void ad_complain(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Says the count of lines a bucket dropped once its window has closed (now_ms UINT64_MAX: all
 * of them, before exit); ad_log_next_note says when the next window closes (UINT64_MAX: none). */
void ad_log_say_dropped(uint64_t now_ms);
uint64_t ad_log_next_note(void);
/* The same in two steps, for a line whose making costs system calls: ad_log_take says whether
 * a line at `level` will be written now (and counts it), ad_log_taken writes it. */
bool ad_log_take(enum ac_log_level level);
void ad_log_taken(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
bool ad_log_open(void);   /* false: the log file cannot be opened (said on stderr) */
void ad_log_reopen(void); /* SIGHUP: a rotated log file is opened anew */

/* ---- processes (processes.c) ------------------------------------------------------------- */

/* A container's runtime and short id ("docker:0123456789ab", "containerd:...", "cri-o:...",
 * "podman:..."), with " pod=UID" for a Kubernetes pod's: read from /proc/PID/cgroup (netns.c). */
#define AD_CONTAINER_LEN 72
/* Where the name was read: the line's hierarchy ("" for cgroup2's "0::", else v1's controllers,
 * "name=systemd") and the path up to and including the component that names the container. */
struct ad_cgroup_dir {
    char hierarchy[64];
    char path[1024];
};
void ad_container_parse(const char *cgroup, char *out, size_t cap, struct ad_cgroup_dir *dir);
/* The name, "" when none shows or its directory is not root's (stat of the cgroup tree). */
void ad_container_of(const char *cgroup, char *out, size_t cap);
void ad_cgroup_mounts_read(void); /* where the trees are: once, before the first scanner */
bool ad_read_container(pid_t pid, char *out, size_t cap); /* in a scanner */

/* What the daemon knows of a process it looked into, kept while a tracked socket names it (or
 * while it waits out a back-off), at most AD_MAX_PROCESSES of them. Made from a scanner's facts
 * (owners.c), never by reading /proc in the daemon. No descriptor: the pidfd is opened by the
 * taker (taker.c) and dies with it. */
struct ad_process {
    pid_t pid;
    uid_t uid;  /* real user id */
    uid_t user; /* whose it is: the owner of the outermost user namespace below the daemon's that
                   it is in (a rootless container's ids are its owner's), else uid */
    unsigned long long start_time; /* /proc/PID/stat field 22: tells a reused pid apart */
    char comm[17];
    char comm_field[72]; /* comm quoted for a log line (ac_text_field), e.g. "mosserver" */
    char container[AD_CONTAINER_LEN]; /* from its cgroup path: "docker:0123456789ab", or "" */
    bool unreachable;                 /* has been out of reach at least once (counted once) */
    uint32_t backoff_ms; /* the last back-off while out of reach; 0 once reached again */
    uint64_t retry_ms;   /* out of reach: left alone until then (monotonic ms) */
};

/* What a scanner read of a process. */
struct ad_facts {
    pid_t pid;
    uid_t uid, user;
    unsigned long long start_time;
    char comm[16];
    char container[AD_CONTAINER_LEN];
};

#define AD_MAX_PROCESSES 4096
/* Out of reach: tried again after 60 s, then after twice as long each time, up to 10 min. */
#define AD_BACKOFF_FIRST_MS 60000u
#define AD_BACKOFF_MAX_MS   600000u
static inline uint32_t ad_backoff_next(uint32_t previous_ms)
{
    if (previous_ms == 0)
        return AD_BACKOFF_FIRST_MS;
    return previous_ms >= AD_BACKOFF_MAX_MS / 2 ? AD_BACKOFF_MAX_MS : previous_ms * 2;
}

/* The record for `pid`; NULL with errno ESRCH when there is none. */
struct ad_process *ad_process(pid_t pid);
/* The record made, or brought up to date, from a scanner's facts (another start time: another
 * process under that number, recorded anew); NULL with errno ENOSPC when AD_MAX_PROCESSES are
 * recorded already (said once a minute), ENOMEM. */
struct ad_process *ad_process_record(const struct ad_facts *f);
/* Forgets the processes no tracked socket named by ad_process_keep since the last prune, unless
 * waiting out a back-off. Whether a record still names the same process is checked where it
 * matters, in the taker (the start time, against the process its pidfd names). */
void ad_process_keep(pid_t pid);
void ad_processes_prune(void);
/* Says, once per back-off, what stands in the way of reaching a process (a permission, Yama, a
 * seccomp filter); its sockets are tried again when the back-off ends. */
extern size_t ad_unreachable_processes; /* so far: --once then exits 1 */
void ad_process_unreachable(struct ad_process *p, int err, const char *step);
/* True when `err` is the daemon's own shortage (EMFILE, ENFILE, ENOMEM, EAGAIN from fork): then
 * says so in one line now and then, naming the daemon's limit; nothing is given up, the work is
 * tried again at the next interval. */
bool ad_short_of(int err, const char *what);

/* ---- owners (owners.c) ------------------------------------------------------------------- */

/* A socket's holder: the process and the descriptor number there. */
struct ad_holder {
    pid_t pid;
    int fd;
    bool held; /* a --pid process: the taker acts through its pidfd (selection.c) */
};

/* Looks for the owners of `want` (sorted inodes; `uids` their owners' user ids, from the kernel's
 * record) in the selected processes, filling `found[i]` (pid 0: not found; a process found has
 * its record). One scanner (scanner.c), one pass over each process's descriptors for the whole
 * list. Scan units: each selector (a --pid, --unit or --exe, with the processes it selects at
 * that scan); with --ports alone, each user whose processes are looked into for their own
 * sockets, and the host-wide pass for sockets not found among them. A unit is scanned again only
 * once AD_SCAN_SHARE times its last scan's CPU time has passed. Returns the units this call
 * covered (bit k: selector k, or bit 0: the host-wide pass), scanned or ended; a scan the
 * daemon's own shortage of descriptors or memory cut short, or a scanner killed meanwhile, covers
 * nothing more. */
/* At most 0.5% of a core per unit on descriptor scans: with the dumps, the daemon stays under 1%
 * beside a 20,000-descriptor process at the default interval, whatever other sockets do. */
#define AD_SCAN_SHARE 200
uint64_t ad_find_owners(const uint32_t *want, const uint32_t *uids, size_t n,
                        struct ad_holder *found);
/* Every scan unit a socket's whole look needs: the selectors, or the host-wide pass. */
uint64_t ad_scan_units(void);
/* At start, with --exe: one scanner looks for the executables' processes (ad_exe_seen says). */
void ad_exes_look(void);
/* The process's start time (/proc/PID/stat field 22), which tells a reused pid apart. That entry
 * waits while the process is inside execve (scanner.c): read in a scanner or a taker only. */
bool ad_start_time(pid_t pid, unsigned long long *out);

/* ---- the scanner: the child that reads other processes' /proc entries (scanner.c) -------- */

enum ad_scan_end {
    AD_SCAN_DONE,    /* it went through its work */
    AD_SCAN_STUCK,   /* blocked in a process's entries: killed, that process left out (said) */
    AD_SCAN_STOPPED, /* a stop signal came: killed */
    AD_SCAN_LOST,    /* not started (said), or ended without finishing */
};
/* Runs body(area, arg) in a scanner, with `size` bytes of zeroed memory shared with it at *area,
 * which stays readable after its end (what it recorded until then) until ad_scan_free; *area is
 * NULL when no scanner could be started. Waits for its end, taking the stop signals meanwhile. */
enum ad_scan_end ad_scan(size_t size, void (*body)(void *area, void *arg), void *arg, void **area);
void ad_scan_free(void *area, size_t size);
/* In the scanner: about to read the entries of process `pid` (/proc/PID owned by `owner`). */
void ad_scan_at(pid_t pid, uid_t owner);
/* In the scanner: that process is left out, its entries not having answered lately. */
bool ad_scan_left_out(pid_t pid, uid_t owner);
/* In the scanner: a process of that /proc owner's was left out lately (its others go last). */
bool ad_scan_suspect(uid_t owner);
/* Collects the scanners that have ended. */
void ad_scanners_reap(void);
/* main.c: poll() that takes the stop signals (and SIGHUP, SIGUSR1) meanwhile; -1 with errno
 * EINTR once a stop signal came. */
int ad_poll(struct pollfd *p, nfds_t n, int timeout_ms);
bool ad_stopping(void);

/* ---- half-closed sockets (cycle.c) ------------------------------------------------------- */

enum ad_sock_state {
    AD_WAITING, /* in the grace, still busy, or its process out of reach: acted on at `due_ms` */
    AD_UNOWNED, /* no selected process holds it (yet): looked for again a few times */
    AD_LEFT,    /* left alone for good: finished by its process, or could not be shut down */
    AD_DONE,    /* shut down, or reported by a dry run: waits for the kernel to drop it */
};

struct ad_sock {
    uint32_t ino;
    struct ac_diag_socket diag; /* cookie, ports, addresses: the kernel's record */
    uint64_t netns; /* another network namespace's (its inode, netns.c); 0: the daemon's own */
    struct ad_holder holder;
    enum ad_sock_state state;
    uint8_t looks;    /* whole owner lookups so far, while unowned */
    uint64_t covered; /* the scan units that looked since the last whole lookup */
    bool present;     /* in this interval's list */
    bool at_start;    /* listed at the first interval (what --once waits for) */
    /* When the peer's FIN came: dated by the first taker that looks at the socket (fin_known);
     * until then, fin_ms is the look that first listed it. not_before_ms: the look before that
     * one, which did not list it (0: none). */
    uint64_t fin_ms, due_ms, not_before_ms;
    bool fin_known;
    /* When a look last found the process reading the peer's data (fin_ms before), and what it
     * had taken of them then (core/idle.c). */
    uint64_t read_ms;
    uint32_t taken;
    bool taken_known;
    UT_hash_handle hh; /* keyed by ino */
};

/* One interval's look at the kernel's list (when `dump`), then the action on every socket whose
 * time has come. Returns false when sock_diag cannot be reached at all (said once). */
bool ad_cycle(uint64_t now_ms, bool dump);
/* The earliest time a socket in the table is due (UINT64_MAX: none). */
uint64_t ad_next_due(void);
/* Why the last look could not read the kernel's list (an errno; said once per reason), 0 when it
 * could. Under --once a look that cannot read it ends the run (ad_cycle returns false). */
extern int ad_diag_error;
/* For SIGUSR1's status line: sockets in the table, those waiting out a grace (or busy), and the
 * processes that hold them. */
void ad_table_counts(size_t *sockets, size_t *waiting, size_t *processes);
/* For --once: sockets listed at the first interval that are still being waited for, and whether
 * any of them could not be reclaimed. */
size_t ad_start_sockets_waiting(bool *any_failed);

/* ---- other network namespaces (netns.c) --------------------------------------------------- */

/* A socket another namespace lists, with the namespace's inode (0: the daemon's own). */
struct ad_listed {
    struct ac_diag_socket d;
    uint64_t netns;
};
/* One interval's look at the other network namespaces of the watched processes (with --ports
 * alone, of every process): their CLOSE_WAIT sockets on the watched ports go to add(). False
 * when the listing could not be made (add failed: no memory). */
bool ad_netns_look(bool (*add)(const struct ad_listed *s, void *ctx), void *ctx);
/* Namespaces that could not be seen (said, one line each): --once then exits 1. */
extern size_t ad_unseen_netns;
/* For lines: " netns=4026532281" (nothing for the daemon's own), then " container=..." when the
 * process's cgroup path names one. */
void ad_netns_fields(struct ac_text *t, uint64_t netns, const struct ad_process *p);

/* ---- MPTCP (mptcp.c) --------------------------------------------------------------------- */

/* One dump of the MPTCP sockets in CLOSE_WAIT on the watched ports: the daemon does not reclaim
 * them (their TCP subflows are not half-closed), and says so once. */
void ad_mptcp_look(void);

/* ---- the taker: a child process that acts on one batch of due sockets (taker.c) ---------- */

/* A due socket, as the taker needs it (copied before the fork). */
struct ad_job {
    uint32_t ino;
    pid_t pid;
    int fd;
    unsigned long long start_time; /* of the holder, as recorded */
    bool held;                     /* a --pid process: its pidfd, not one opened now */
    /* cookie 0 (listed from another namespace's /proc table, which has none): the socket is
     * checked by its inode and ports instead, and its cookie learnt */
    uint64_t cookie, fin_ms, read_ms, not_before_ms;
    uint16_t local_port, peer_port;
    bool fin_known;
    uint32_t taken;
    bool taken_known;
    uint32_t slot; /* the socket's place in the caller's list */
};

enum ad_verdict_kind {
    AD_V_RECLAIMED, /* shut down (or, dry run, would be); `where` says the addresses */
    AD_V_BUSY,      /* not idle yet: `wait_ms` */
    AD_V_FINISHED,  /* no longer in CLOSE_WAIT: its process finished it meanwhile */
    AD_V_GONE,      /* the process ended, its pid was reused, or the number was closed */
    AD_V_FOREIGN,   /* the number holds another file now: the taker keeps it and stops */
    AD_V_FAILED,    /* shutdown failed: `err` */
    AD_V_REFUSED,   /* `step` refused: `err` (a permission, Yama, a seccomp filter) */
    AD_V_SHORT,     /* `step` ran short of the taker's descriptors or memory: `err` */
    AD_V_NOSYS,     /* no pidfd_open or pidfd_getfd in this kernel */
    AD_V_END,       /* the taker is done; no socket */
};
enum ad_step { AD_STEP_PIDFD_OPEN, AD_STEP_PIDFD_GETFD };

/* One record on the taker's pipe: fixed size, under PIPE_BUF, so each write is whole. */
struct ad_verdict {
    uint32_t job; /* index in the batch */
    uint8_t kind, step;
    bool taken_known;
    int32_t err;
    uint32_t taken;
    uint64_t wait_ms, read_ms;
    uint64_t fin_ms; /* the FIN's date, when the job had none (fin_dated) */
    bool fin_dated;
    uint64_t cookie; /* the socket's, once taken */
    char where[160]; /* "local=... peer=..." */
};

enum ad_outcome { AD_RECLAIMED, AD_BUSY, AD_LEAVE, AD_RETRY_OWNER, AD_FAILED };
/* Acts on `n` due sockets: one taker for all of them, its verdicts read for at most 2 s. Each
 * socket's outcome goes to out[i]; wait_ms[i] says how long an AD_BUSY one waits (one interval
 * for a socket not acted on now: its process's user is held, the taker could not be made or did
 * not answer in time). */
#define AD_BATCH_MAX 16384
void ad_take(struct ad_sock **due, size_t n, uint64_t now_ms, enum ad_outcome *out,
             uint64_t *wait_ms);
/* Collects the takers that have ended. */
void ad_takers_reap(void);

/* ---- one socket's action (reclaim.c) ------------------------------------------------------ */

/* In the taker: the action on one due socket, through `pidfd`, its holder's. Fills *v. False
 * when the batch must stop: the number held another file, whose reference is kept (closing it
 * might never return). */
bool ad_reclaim_job(const struct ad_job *j, int pidfd, uint64_t now_ms, struct ad_verdict *v);
/* False once the kernel turned out to have no pidfd_open or pidfd_getfd (said once). */
bool ad_reclaim_possible(void);
/* In the daemon: what a verdict on `s` (held by `p`) means: counters, the log line, and the
 * outcome (*wait_ms for AD_BUSY). */
enum ad_outcome ad_verdict_apply(struct ad_sock *s, struct ad_process *p,
                                 const struct ad_verdict *v, uint64_t now_ms, uint64_t *wait_ms);

/* ---- counters (report.c) ----------------------------------------------------------------- */

extern uint64_t ad_reclaimed_total, ad_errors_total, ad_dry_run_total;
/* One CLOSE_WAIT socket of `pid` on local port `port` (as its namespace `netns` sees it; 0: the
 * daemon's), for this interval's gauge. */
void ad_gauge_reset(void);
void ad_gauge_add(pid_t pid, uint16_t port, uint64_t netns);
void ad_gauge_sub(pid_t pid, uint16_t port); /* shut down: no longer in CLOSE_WAIT */
/* Writes --stats-file, and publishes the --metrics-listen text, when anything changed since. */
void ad_stats_write(void);

/* ---- the /metrics endpoint (metrics_http.c) ---------------------------------------------- */

/* --metrics-listen's value: PORT (on 127.0.0.1), ADDR:PORT or [ADDR6]:PORT, numeric only. */
bool ad_metrics_parse(const char *value, struct ad_metrics_addr *out);
/* At start, once the signals are set up (its thread inherits their mask): listens and starts
 * the server's thread. Returns -1 to go on (also without --metrics-listen), or 2 (said). */
int ad_metrics_start(void);
bool ad_metrics_on(void);
/* The text served from now on (copied); false when it could not be (the last one stands). */
bool ad_metrics_publish(const char *text, size_t len);
void ad_metrics_stop(void);

#endif
