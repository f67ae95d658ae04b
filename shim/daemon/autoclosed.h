/*
 * autoclosed — the companion daemon's internal interface.
 *
 * Each interval: the kernel's list of TCP sockets in CLOSE_WAIT (core/diag.c) → the sockets not
 * seen before are looked for in the selected processes' descriptor tables (owners.c) → each
 * half-closed socket of a selected process waits out the grace in the table (table.c) → when
 * due, a reference taken with pidfd_getfd is checked against the kernel's record and, when the
 * connection is idle by the library's own rule (core/idle.c), shut down (reclaim.c). The process
 * is never stopped and its descriptor stays its own: the peer gets our FIN and ends in
 * TIME_WAIT, the process's next read sees EOF and its next write EPIPE.
 */
#ifndef AUTOCLOSED_H
#define AUTOCLOSED_H

#include "core.h"

#include <stdio.h>
#include <sys/types.h>
#include <uthash.h>

/* ---- options (options.c) ----------------------------------------------------------------- */

#define AD_MAX_PIDS 64

struct ad_options {
    pid_t pids[AD_MAX_PIDS];
    size_t npids;            /* 0: every process (then --ports is required) */
    struct ac_portset ports; /* .all when --ports was not given */
    uint32_t grace_ms, interval_ms;
    bool once, dry_run;
    enum ac_log_level log_level;
    const char *log_file, *stats_file;
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
/* The pidfd kept for a selected process that still runs (for pidfd_getfd: it fails once the
 * process has exited, so its number's next owner is never reached); -1 otherwise, errno ESRCH
 * (not selected, or exited) or ENOSYS (this kernel has no pidfd_open). */
int ad_selected_pidfd(pid_t pid);

/* ---- log (report.c) ---------------------------------------------------------------------- */

/* "<UTC time> autoclosed[<pid>]: <message>" to --log-file or stderr; info and debug lines are
 * rate-limited (a storm of reclaims is summed up, not listed). */
void ad_log(enum ac_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same in two steps, for a line whose making costs system calls: ad_log_take says whether
 * a line at `level` will be written now (and counts it), ad_log_taken writes it. */
bool ad_log_take(enum ac_log_level level);
void ad_log_taken(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
bool ad_log_open(void);   /* false: the log file cannot be opened (said on stderr) */
void ad_log_reopen(void); /* SIGHUP: a rotated log file is opened anew */

/* ---- processes (owners.c) ---------------------------------------------------------------- */

/* What the daemon knows of a process it looked into, kept while it has half-closed sockets. */
struct ad_process {
    pid_t pid;
    unsigned long long start_time; /* /proc/PID/stat field 22: tells a reused pid apart */
    char comm[17];
    bool preloaded;   /* libautoclose is mapped: the library handles it */
    bool unreachable; /* its descriptors cannot be read or taken (said once) */
    int pidfd;        /* -1 until needed */
};

/* A socket's holder: the process and the descriptor number there. */
struct ad_holder {
    pid_t pid;
    int fd;
};

/* Looks for the owners of `want` (sorted inodes; `uids` their owners' user ids, from the kernel's
 * record) in the selected processes, filling `found[i]` (pid 0: not found). One pass over each
 * process's descriptors for the whole list. A scan unit (a selected process; with --ports alone
 * the whole host) is scanned again only once AD_SCAN_SHARE times its last scan's CPU time has
 * passed. Returns the units this call covered (bit i: ad_opt.pids[i], or bit 0: the host),
 * scanned or exited. */
/* At most 0.5% of a core per unit on descriptor scans: with the dumps, the daemon stays under 1%
 * beside a 20,000-descriptor process at the default interval, whatever other sockets do. */
#define AD_SCAN_SHARE 200
uint64_t ad_find_owners(const uint32_t *want, const uint32_t *uids, size_t n,
                        struct ad_holder *found);
/* Every scan unit: a socket covered by them all has had one whole look. */
uint64_t ad_scan_units(void);
/* The process record for `pid`, made (comm, start time, whether the library is preloaded) the
 * first time; NULL if the process is gone. */
struct ad_process *ad_process(pid_t pid);
/* The process's start time (/proc/PID/stat field 22), which tells a reused pid apart. */
bool ad_start_time(pid_t pid, unsigned long long *out);
/* Forgets processes that hold no tracked socket any more, or have exited. */
void ad_processes_prune(void);
/* Says once, for a process whose descriptors cannot be read or taken, what is missing. */
extern size_t ad_unreachable_processes; /* so far: --once then exits 1 */
void ad_process_unreachable(struct ad_process *p, int err, const char *step);

/* ---- half-closed sockets (cycle.c) ------------------------------------------------------- */

enum ad_sock_state {
    AD_WAITING, /* in the grace, or still busy: acted on at `due_ms` */
    AD_UNOWNED, /* no selected process holds it (yet): looked for again a few times */
    AD_LEFT,    /* left alone for good: another process's, the library's, or not permitted */
    AD_DONE,    /* shut down, or reported by a dry run: waits for the kernel to drop it */
};

struct ad_sock {
    uint32_t ino;
    struct ac_diag_socket diag; /* cookie, ports, addresses: the kernel's record */
    struct ad_holder holder;
    enum ad_sock_state state;
    uint8_t looks;    /* whole owner lookups so far, while unowned */
    uint64_t covered; /* the scan units that looked since the last whole lookup */
    bool present;     /* in this interval's list */
    bool at_start;    /* listed at the first interval (what --once waits for) */
    uint64_t fin_ms, due_ms;
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

/* ---- MPTCP (mptcp.c) --------------------------------------------------------------------- */

/* One dump of the MPTCP sockets in CLOSE_WAIT on the watched ports: the daemon does not reclaim
 * them (their TCP subflows are not half-closed), and says so once. */
void ad_mptcp_look(void);

/* ---- reclaim (reclaim.c) ----------------------------------------------------------------- */

enum ad_outcome { AD_RECLAIMED, AD_BUSY, AD_LEAVE, AD_RETRY_OWNER, AD_FAILED };
/* Acts on a due socket: takes its holder's descriptor with pidfd_getfd, checks it is the very
 * socket the kernel listed, and shuts it down when idle. *wait_ms says how long a busy one
 * waits. */
enum ad_outcome ad_reclaim(struct ad_sock *s, uint64_t now_ms, uint64_t *wait_ms);

/* ---- counters (report.c) ----------------------------------------------------------------- */

extern uint64_t ad_reclaimed_total, ad_errors_total, ad_dry_run_total;
/* One CLOSE_WAIT socket of `pid` on local port `port`, for this interval's gauge. */
void ad_gauge_reset(void);
void ad_gauge_add(pid_t pid, uint16_t port);
void ad_gauge_sub(pid_t pid, uint16_t port); /* shut down: no longer in CLOSE_WAIT */
/* Writes --stats-file when anything changed since the last write. */
void ad_stats_write(void);

#endif
