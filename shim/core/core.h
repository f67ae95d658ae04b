/*
 * The core that the preloaded library (shim/preload/) and the daemon (shim/daemon/) share:
 * configuration syntax, the TCP_INFO reading and the rule that says when a half-closed
 * connection is idle, the sock_diag query, log lines, counters in the Prometheus text format,
 * and the small containers they use. Nothing here wraps a libc function or keeps per-process
 * state of the library's.
 */
#ifndef AUTOCLOSE_CORE_H
#define AUTOCLOSE_CORE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "libc_compat.h"

struct sockaddr;

#define AC_HIDDEN      __attribute__((visibility("hidden")))
#define AC_EXPORT      __attribute__((visibility("default")))
#define AC_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define AC_LIKELY(x)   __builtin_expect(!!(x), 1)

/* The project's version, from the Makefile's VERSION. */
#ifndef AC_VERSION
#define AC_VERSION "unknown"
#endif

/* ---- configuration (config.c) ------------------------------------------------------------ */

enum ac_mode { AC_MODE_SHUTDOWN, AC_MODE_CLOSE };
enum ac_log_level { AC_LOG_OFF, AC_LOG_ERROR, AC_LOG_INFO, AC_LOG_DEBUG };

#define AC_DEFAULT_GRACE_MS 5000u
#define AC_DEFAULT_SWEEP_MS 1000u
#define AC_MAX_GRACE_MS     86400000u /* one day: anything longer is a typo */
#define AC_UNREAD_GRACES    10 /* graces unread data holds a connection nobody reads (idle.c) */

/* Every AUTOCLOSE_* variable the library knows, by its place in ac_config_names: first the ones
 * it reads, then the ones the project's own tools and test harness set for themselves (it reads
 * none of those, and does not call them unknown). */
enum ac_var {
    AC_VAR_DISABLE,
    AC_VAR_DRY_RUN,
    AC_VAR_LOG,
    AC_VAR_GRACE_MS,
    AC_VAR_SWEEP_MS,
    AC_VAR_MODE,
    AC_VAR_PORTS,
    AC_VAR_NOFILE,
    AC_VAR_KEEPALIVE,
    AC_VAR_USER_TIMEOUT_MS,
    AC_VAR_FIN_WAIT2_S,
    AC_VAR_REUSEADDR,
    AC_VAR_STATS_FILE,
    AC_VAR_LOG_FILE,
    AC_VAR_READ_COUNT,
    AC_VAR_TOOLS_LIB = AC_VAR_READ_COUNT, /* AUTOCLOSE_LIB: make test, make demo */
    AC_VAR_TOOLS_LIB32,                   /* AUTOCLOSE_LIB32: make test */
    AC_VAR_TOOLS_LIBMUSL,                 /* AUTOCLOSE_LIBMUSL: make test, make bench */
    AC_VAR_COUNT
};
extern const char *const ac_config_names[AC_VAR_COUNT];

/* A set of TCP ports: one bit each. `all` means no filter was given. */
struct ac_portset {
    bool all;
    uint64_t bits[65536 / 64];
};

struct ac_config {
    bool disabled;
    bool dry_run;
    enum ac_mode mode;
    enum ac_log_level log_level;
    uint32_t grace_ms;
    uint32_t sweep_ms; /* 0: no sweep */
    struct ac_portset ports;
    char log_file[512];
    /* TCP hygiene, applied to each connection the program accepts or connects (hygiene.c). */
    struct ac_keepalive {
        bool on;
        int idle_s, interval_s, count;
    } keepalive;
    uint32_t user_timeout_ms; /* TCP_USER_TIMEOUT; 0: not set */
    int fin_wait2_s;          /* TCP_LINGER2; 0: not set */
    bool reuseaddr;           /* SO_REUSEADDR before bind */
    char stats_file[512];     /* AUTOCLOSE_STATS_FILE as given (%p not expanded); empty: none */
    uint64_t nofile;          /* AUTOCLOSE_NOFILE: 0 leave the limit, UINT64_MAX the hard one */
};

/* Read once at load; every field keeps its default when its variable is bad. */
extern struct ac_config ac_cfg;

/* A reader of one variable: the value (NULL when unset), where to store the result, and a
 * buffer for the one-line complaint. Returns true when the value was usable; on false the result
 * holds the safe default and `why` says what was wrong and what is used instead. */
bool ac_parse_grace_ms(const char *value, uint32_t *out, char *why, size_t why_len);
bool ac_parse_sweep_ms(const char *value, uint32_t *out, char *why, size_t why_len);
bool ac_parse_mode(const char *value, enum ac_mode *out, char *why, size_t why_len);
bool ac_parse_log_level(const char *value, enum ac_log_level *out, char *why, size_t why_len);
bool ac_parse_flag(const char *var, const char *value, bool *out, char *why, size_t why_len);
bool ac_parse_ports(const char *value, struct ac_portset *out, char *why, size_t why_len);
bool ac_parse_keepalive(const char *value, struct ac_keepalive *out, char *why, size_t why_len);
bool ac_parse_user_timeout_ms(const char *value, uint32_t *out, char *why, size_t why_len);
bool ac_parse_fin_wait2_s(const char *value, int *out, char *why, size_t why_len);
bool ac_parse_nofile(const char *value, uint64_t *out, char *why, size_t why_len);
/* Expands %p (the process id) and %% in a stats file path; false if the result is too long. */
bool ac_expand_path(const char *pattern, long pid, char *out, size_t out_len);

/* Fills `cfg` from a getenv-like lookup, reporting each bad variable through `complain`. */
void ac_config_load(struct ac_config *cfg, const char *(*lookup)(const char *name),
                    void (*complain)(const char *line));
/* The same for a process in secure execution (AT_SECURE: set-user-ID, set-group-ID, file
 * capabilities) when `secure_execution`: whoever runs it controls the environment, so the
 * variables that name a file or raise a limit (AUTOCLOSE_LOG_FILE, AUTOCLOSE_STATS_FILE,
 * AUTOCLOSE_NOFILE) are ignored, and one line through `complain` says which were set. */
void ac_config_load_for(struct ac_config *cfg, const char *(*lookup)(const char *name),
                        void (*complain)(const char *line), bool secure_execution);

/* Names, through `complain`, each AUTOCLOSE_* variable of `env` (environ's layout) that is not in
 * ac_config_names, with the nearest known one: "unknown variable AUTOCLOSE_PORT (did you mean
 * AUTOCLOSE_PORTS?); ignored". At most a few lines, then one that counts the rest. */
void ac_config_report_unknown(char *const *env, void (*complain)(const char *line));
/* The setting nearest to the variable name name[0..len) (case ignored), or NULL when none is
 * near enough to be a likely mistyping. */
const char *ac_config_nearest(const char *name, size_t len);

static inline bool ac_portset_has(const struct ac_portset *set, unsigned port)
{
    return set->all || (port < 65536 && (set->bits[port / 64] >> (port % 64)) & 1u);
}
void ac_portset_add_range(struct ac_portset *set, unsigned lo, unsigned hi);

/* ---- time (clock.c) ---------------------------------------------------------------------- */

uint64_t ac_now_ms(void); /* CLOCK_MONOTONIC, milliseconds */

/* ---- async-signal-safe text (text.c) ----------------------------------------------------- */

/* A bounded string builder: never allocates, never overflows, always NUL-terminated. */
struct ac_text {
    char *buf;
    size_t cap, len;
    bool truncated; /* something did not fit */
};
void ac_text_init(struct ac_text *t, char *buf, size_t cap);
void ac_text_str(struct ac_text *t, const char *s);
void ac_text_uint(struct ac_text *t, uint64_t v);
void ac_text_int(struct ac_text *t, int64_t v);
void ac_text_sockaddr(struct ac_text *t, const struct sockaddr *sa); /* "1.2.3.4:80", "[::1]:80" */
void ac_text_utc(struct ac_text *t, int64_t sec, long msec);         /* 2026-11-21T23:59:01.123Z */
/* Quoted and shortened for a complaint line, so a hostile value cannot forge log lines. */
void ac_text_quoted(struct ac_text *t, const char *s, size_t max);
/* A key=value line's value, "s": between double quotes, with ", \ and every byte outside printable
 * ASCII escaped (\", \\, \xNN), so that a value (a process's name) cannot forge other fields. */
void ac_text_field(struct ac_text *t, const char *s);

/* ---- log lines and their rate (logline.c) ------------------------------------------------ */

/* Appends "<UTC time> <program>[<pid>]: <msg>\n"; with a journal_priority of 0 or more, for a
 * stderr that is the journal's stream, "<N><program>[<pid>]: <msg>\n" instead (sd-daemon(3): the
 * journal takes N as the line's priority and adds the time itself). */
void ac_log_format(struct ac_text *t, int journal_priority, const char *program, long pid,
                   const char *msg);
/* The syslog priority of a level: 3 (error), 6 (info), 7 (debug). */
int ac_log_priority(enum ac_log_level level);
/* Whether JOURNAL_STREAM's value ("<dev>:<ino>", which systemd sets when it connects a service's
 * stderr to the journal) names the file dev/ino: then that stderr is the journal. */
bool ac_journal_stream_is(const char *value, dev_t dev, ino64_t ino);

/* Pure token bucket, exposed for its unit test. */
struct ac_rate {
    uint64_t last_ms;
    uint32_t tokens;
    uint32_t suppressed;
};
bool ac_rate_take(struct ac_rate *r, uint64_t now_ms, uint32_t burst, uint32_t per_sec);

/* ---- the log file (logfile.c) ------------------------------------------------------------ */

/* Opens `path` to append log lines (created with mode 0640): never through a symlink, never a
 * FIFO or device, only a plain file with one link. Returns the descriptor (close-on-exec), with
 * its identity in *dev and *ino, or -1 with errno set (EINVAL: not a plain file with one link). */
int ac_log_file_open(const char *path, dev_t *dev, ino64_t *ino);
/* Why ac_log_file_open failed, in a few words, for the one line that says so. */
const char *ac_log_file_error(int err);

/* ---- a compact sorted set of inodes (inodeset.c) ----------------------------------------- */

/* Sorted inodes as varint-coded gaps, about a byte each, in a mapping of their own. */
struct ac_inode_set {
    uint8_t *bytes;
    size_t len, mapped; /* bytes used, bytes mapped */
    size_t count;
};
/* Replaces the set's members with `v`, which must be sorted ascending. On false (no memory) the
 * set is left empty. */
bool ac_inode_set_assign(struct ac_inode_set *set, const uint32_t *v, size_t n);
void ac_inode_set_clear(struct ac_inode_set *set); /* empty, and its mapping given back */

/* Membership, asked in ascending order: one pass over the set for a whole sorted list. */
struct ac_inode_cursor {
    const uint8_t *p, *end;
    uint32_t at; /* the member under the cursor, while `valid` */
    bool valid;
};
void ac_inode_cursor_start(struct ac_inode_cursor *c, const struct ac_inode_set *set);
/* True when `ino` is a member; each call's `ino` must be at least the previous call's. */
bool ac_inode_cursor_has(struct ac_inode_cursor *c, uint32_t ino);

/* ---- kernel state of a TCP connection (tcpinfo.c) ---------------------------------------- */

#define AC_TCP_CLOSE_WAIT 8 /* tcpi_state once the peer's FIN has arrived */

struct ac_tcp_snapshot {
    int state;
    uint32_t unacked;           /* segments sent and not yet acknowledged */
    uint32_t notsent_bytes;     /* written by the application, not yet sent */
    uint32_t last_data_sent_ms; /* since any process sharing the socket last sent data */
    uint64_t bytes_received;    /* of the peer's, in all (0 before Linux 4.1) */
    uint32_t last_ack_recv_ms;  /* since the last segment from the peer (its FIN, if it closed) */
};
bool ac_tcp_snapshot(int fd, struct ac_tcp_snapshot *out);
/* TCP state of `fd`, or -1 when it is not a TCP socket. */
int ac_tcp_state(int fd);

/* ---- when a half-closed connection is idle (idle.c) --------------------------------------- */

/* How much longer a connection in CLOSE_WAIT must be left before it counts as idle, 0 when it
 * is: not while it still has data in flight or sent lately (a half-close reply), nor while the
 * program is still reading the peer's data, nor for up to AC_UNREAD_GRACES graces from the
 * program's last read while `unread` bytes of the peer's wait (FIONREAD). `since_read_ms`: since
 * a look last found that the program had taken some of the peer's data (ac_took_data), or since
 * the FIN when none did. */
uint64_t ac_busy_for(const struct ac_tcp_snapshot *s, int unread, uint64_t since_fin_ms,
                     uint64_t since_read_ms, uint32_t grace_ms);
/* True when the program has taken some of the peer's data since the previous look, which saw
 * *taken of it (low 32 bits); *taken becomes what this look sees. The first look (*known false)
 * has nothing to compare with: it only records. */
bool ac_took_data(const struct ac_tcp_snapshot *s, int unread, uint32_t *taken, bool *known);

/* Drops the peer's unread data (at most 8 MiB), so that the last close of the socket sends a FIN,
 * not a reset. Only for a socket nothing will read any more: ten graces without a read, and held by
 * this process alone (the queue is every holder's). */
void ac_drain_unread(int fd);

/* ---- the kernel's TCP sockets, as `ss` asks for them (diag.c) ---------------------------- */

struct ac_diag_socket {
    uint32_t ino;    /* 0 never reaches a visitor */
    uint64_t cookie; /* SO_COOKIE's value */
    uint8_t state;   /* tcpi_state numbering */
    uint8_t family;  /* AF_INET or AF_INET6 */
    uint16_t local_port, peer_port;
    uint32_t uid;
    uint8_t local_addr[16], peer_addr[16]; /* network order; IPv4 in the first four bytes */
    /* With want_info: TCP_INFO's tcpi_last_ack_recv, milliseconds since the last segment that
     * carried an ACK arrived. The peer's FIN carries one, so on a socket in CLOSE_WAIT this is
     * the time since the FIN, or less when a later segment came (a keepalive answer): never
     * more, which makes it a safe start for a grace. */
    bool has_info;
    uint32_t last_ack_recv_ms;
};
/* A NETLINK_SOCK_DIAG socket the caller keeps from one dump to the next. A dump given up half-way
 * leaves the kernel's side of it busy: `stale` then says it must not be asked again. */
struct ac_diag_channel {
    int fd;
    bool stale;
};
struct ac_diag_query {
    uint32_t states; /* a bit per tcpi_state */
    bool want_info;  /* also the TCP_INFO the kernel keeps (last_ack_recv_ms) */
    /* Each socket; false stops the dump as failed. */
    bool (*visit)(const struct ac_diag_socket *s, void *ctx);
    /* Optional: what was visited so far is void (the dump is asked for again per family). */
    void (*restart)(void *ctx);
    void *ctx;
    /* Optional: the socket to ask through (NULL: one made and closed for each dump). */
    struct ac_diag_channel *via;
    /* Optional: an inet_diag bytecode program (ac_diag_port_filter): the kernel then returns
     * only the sockets it accepts. */
    const uint8_t *filter;
    size_t filter_len;
    /* Optional: IPPROTO_MPTCP lists MPTCP sockets (the process's end of a connection that is
     * MPTCP on both sides; with want_info false) instead; 0 lists TCP sockets. */
    int protocol;
    /* Optional: when the list could not be read, why: the errno of the socket, the request or
     * the kernel's answer (an LSM refusing sock_diag answers EACCES); 0 when nothing says. */
    int *error;
};
/* Every TCP socket (or MPTCP socket: q->protocol) of this network namespace in q->states. False
 * when the list could not be read whole; *fatal_errno then says why no netlink socket could be
 * made when that will not pass (no such family under a seccomp filter or
 * RestrictAddressFamilies), else 0; q->error why the list could not be read. */
bool ac_diag_tcp(const struct ac_diag_query *q, int *fatal_errno);

/* Ports from lo to hi, both included. */
struct ac_port_range {
    uint16_t lo, hi;
};
#define AC_DIAG_FILTER_RANGE_BYTES 20 /* what one range adds to a filter */
/* Writes the bytecode of a filter (INET_DIAG_REQ_BYTECODE, built as `ss` builds one) that accepts
 * a socket whose local port lies in one of the `local` ranges or whose peer port lies in one of
 * the `peer` ranges. Returns its length: 0 when there is no range at all, or it would not fit. */
size_t ac_diag_port_filter(const struct ac_port_range *local, size_t n_local,
                           const struct ac_port_range *peer, size_t n_peer, uint8_t *out,
                           size_t cap);

/* ---- counters in the Prometheus text format (prom.c) ------------------------------------- */

void ac_prom_header(struct ac_text *t, const char *name, const char *type, const char *help);
/* `labels` as they go inside the braces (empty: none). */
void ac_prom_series(struct ac_text *t, const char *name, const char *labels, uint64_t value);
/* Appends name="value" to a label list being built, escaped as the format says. */
void ac_prom_label(struct ac_text *t, const char *name, const char *value);
/* Writes `path` anew, atomically (a file beside it, created exclusively and never through a
 * link, then renamed over `path`), mode 0644. False with errno set on failure. */
bool ac_file_replace(const char *path, const char *text, size_t len);

/* ---- what each program that links the core provides -------------------------------------- */

/* close, recv and getsockopt as the core must call them: the library's are libc's own, never its
 * wrappers. */
int ac_core_close(int fd);
ssize_t ac_core_recv(int fd, void *buf, size_t len, int flags);
int ac_core_getsockopt(int fd, int level, int name, void *val, unsigned *len);
/* Waits up to `timeout_ms` for `fd` to be readable; false on a timeout or an error. */
bool ac_core_wait_readable(int fd, int timeout_ms);

#endif
