/*
 * libautoclose — the internal interface of the preloaded library's files; what they share with
 * the daemon is in core.h. Nothing here is public: the library exports only the libc functions
 * it wraps (see exports.map).
 *
 * Data flows one way: a wrapper sees a zero-length read (wrap_*.c) and notes the EOF in one byte
 * and a time (notes.c) → when the grace has run out the timer asks judge.c whether it is the
 * peer's FIN on a TCP connection we should handle → tracker.c records it with the socket's
 * identity → act.c shuts it down and releases its number to the placeholder. A program that
 * closes its connection within the grace clears the note itself and costs no system call.
 */
#ifndef AUTOCLOSE_H
#define AUTOCLOSE_H

#include "core.h"

#include <pthread.h>
#include <sys/select.h>

/* ---- the real libc functions (real.c) ---------------------------------------------------- */

struct iovec;
struct msghdr;
struct mmsghdr;
struct timespec;
struct timeval;
struct sockaddr;
struct pollfd;
struct epoll_event;
typedef struct _IO_FILE FILE;

struct ac_real_fns {
    ssize_t (*read)(int, void *, size_t);
    ssize_t (*readv)(int, const struct iovec *, int);
    ssize_t (*recv)(int, void *, size_t, int);
    ssize_t (*recvfrom)(int, void *, size_t, int, struct sockaddr *, unsigned *);
    ssize_t (*recvmsg)(int, struct msghdr *, int);
    int (*recvmmsg)(int, struct mmsghdr *, unsigned, ac_mmsg_flags, struct timespec *);
    ssize_t (*read_chk)(int, void *, size_t, size_t);
    ssize_t (*recv_chk)(int, void *, size_t, size_t, int);
    ssize_t (*recvfrom_chk)(int, void *, size_t, size_t, int, struct sockaddr *, unsigned *);
    ssize_t (*sendmsg)(int, const struct msghdr *, int);
    int (*sendmmsg)(int, struct mmsghdr *, unsigned, ac_mmsg_flags);
    int (*close)(int);
    int (*dup)(int);
    int (*dup2)(int, int);
    int (*dup3)(int, int, int);
    int (*fcntl)(int, int, ...);
    int (*fcntl64)(int, int, ...);
    int (*close_range)(unsigned, unsigned, int);
    void (*closefrom)(int);
    int (*fclose)(FILE *);
    int (*accept)(int, struct sockaddr *, unsigned *);
    int (*accept4)(int, struct sockaddr *, unsigned *, int);
    int (*connect)(int, const struct sockaddr *, unsigned);
    int (*bind)(int, const struct sockaddr *, unsigned);
    int (*listen)(int, int);
    int (*poll)(struct pollfd *, unsigned long, int);
    int (*poll_chk)(struct pollfd *, unsigned long, int, size_t);
    int (*ppoll)(struct pollfd *, unsigned long, const struct timespec *, const sigset_t *);
    int (*ppoll_chk)(struct pollfd *, unsigned long, const struct timespec *, const sigset_t *,
                     size_t);
    int (*epoll_ctl)(int, int, int, struct epoll_event *);
    int (*epoll_wait)(int, struct epoll_event *, int, int);
    int (*epoll_pwait)(int, struct epoll_event *, int, int, const sigset_t *);
    int (*epoll_pwait2)(int, struct epoll_event *, int, const struct timespec *, const sigset_t *);
    int (*ioctl)(int, ac_ioctl_request, ...);
    int (*getsockopt)(int, int, int, void *, unsigned *);
    int (*setsockopt)(int, int, int, const void *, unsigned);
    int (*getsockname)(int, struct sockaddr *, unsigned *);
    int (*getpeername)(int, struct sockaddr *, unsigned *);
    pid_t (*fork)(void);
    pid_t (*Fork)(void);
    pid_t (*vfork)(void);
    int (*clone)(int (*)(void *), void *, int, void *, ...);
    int (*posix_spawn)(pid_t *, const char *, const void *, const void *, char *const[],
                       char *const[]);
    int (*posix_spawnp)(pid_t *, const char *, const void *, const void *, char *const[],
                        char *const[]);
    int (*system)(const char *);
    FILE *(*popen)(const char *, const char *);
    int (*prctl)(int, ...);
    long (*syscall)(long, ...);
    int (*socket)(int, int, int);
    int (*dlclose)(void *);
};

/* libc's functions (or the next preloaded library's), found once with dlsym(RTLD_NEXT). Until
 * then each entry is a stub that finds them first, so a wrapper called before this library's
 * constructor (from another library's) needs no check of its own. */
/* Hidden: the wrappers load an entry with one instruction, not through the GOT. */
extern struct ac_real_fns ac_real __attribute__((visibility("hidden")));
void ac_real_resolve(void);

/* One relaxed load: the pointer is written once, whole, by ac_real_resolve. */
#define AC_REAL(name) (__atomic_load_n(&ac_real.name, __ATOMIC_RELAXED))

/* ---- per-descriptor state, readable without a lock (tracker.c) -------------------------- */

/* How the peer's FIN was found: the log and the counters say so. */
enum ac_found_by {
    AC_FOUND_READ,  /* a read returned 0 */
    AC_FOUND_READY, /* poll/epoll reported the FIN, or FIONREAD found nothing to read */
    AC_FOUND_SWEEP, /* the periodic sweep found it in CLOSE_WAIT, never read */
};

/* What the shim knows of a descriptor number. Read by the wrappers with one relaxed load, so a
 * wrapper that has nothing to do takes no lock. NOTED and NOT_TCP are set and cleared with a
 * compare-and-swap by any thread; the others are written only under the tracker lock. */
enum ac_fd_state {
    AC_FD_NONE = 0,        /* nothing known: the common case */
    AC_FD_NOTED_READ = 1,  /* a read returned EOF (time in ac_eof_ms); not judged yet */
    AC_FD_NOTED_READY = 2, /* poll/epoll or FIONREAD reported the FIN; not judged yet */
    AC_FD_NOT_TCP = 3,     /* a note judged: not a TCP socket (a file, a pipe) until closed */
    AC_FD_PENDING = 4,     /* half-closed, waiting out the grace (in the tracker) */
    AC_FD_RECLAIMED = 5,   /* released: the number holds the placeholder until closed */
    AC_FD_OBSERVED = 6,    /* dry run: reported once, left alone */
    AC_FD_IGNORED = 7,     /* half-closed, outside AUTOCLOSE_PORTS: counted once, left alone */
    AC_FD_PLACEHOLDER = 8, /* the library's own placeholder (act.c) */
    AC_FD_ASK = 9,         /* hint only: a number above the table while a pending one is known */
    AC_FD_LIBRARY = 10,    /* the library's own netlink socket or /proc directory (ownfd.c) */
};

#define AC_FDTAB_SIZE 65536 /* numbers above this are kept in the tracker's table only */

extern uint8_t ac_fdtab[AC_FDTAB_SIZE];
extern unsigned ac_high_fd_pending;   /* PENDING entries with fd >= AC_FDTAB_SIZE */
extern unsigned ac_high_fd_reclaimed; /* RECLAIMED entries with fd >= AC_FDTAB_SIZE */

/* Returns the state of `fd`, or AC_FD_ASK for a high number while any high one is pending (the
 * caller then asks the tracker under its lock). */
static inline enum ac_fd_state ac_fd_state_hint(int fd)
{
    if ((unsigned)fd < AC_FDTAB_SIZE)
        return (enum ac_fd_state)__atomic_load_n(&ac_fdtab[fd], __ATOMIC_RELAXED);
    if (fd < 0)
        return AC_FD_NONE;
    return __atomic_load_n(&ac_high_fd_pending, __ATOMIC_RELAXED) ? AC_FD_ASK : AC_FD_NONE;
}

/* True when a FIN reported on `fd` is worth noting: the shim knows nothing of it yet. */
static inline bool ac_fd_unknown(int fd)
{
    enum ac_fd_state h = ac_fd_state_hint(fd);
    return h == AC_FD_NONE || h == AC_FD_ASK;
}

/* The state as a closer reads it, after its mark: sequentially consistent, the other half of the
 * pair in ac_closing_now (a plain load on x86). */
static inline enum ac_fd_state ac_fd_state_for_close(int fd)
{
    if ((unsigned)fd < AC_FDTAB_SIZE)
        return (enum ac_fd_state)__atomic_load_n(&ac_fdtab[fd], __ATOMIC_SEQ_CST);
    if (fd < 0)
        return AC_FD_NONE;
    return __atomic_load_n(&ac_high_fd_pending, __ATOMIC_SEQ_CST) ? AC_FD_ASK : AC_FD_NONE;
}

/* True when `fd` may be a number the library reclaimed: one load and compare for a number in the
 * table; a high one only while any high number is reclaimed (the caller then asks the tracker). */
static inline bool ac_fd_maybe_reclaimed(int fd)
{
    if ((unsigned)fd < AC_FDTAB_SIZE)
        return __atomic_load_n(&ac_fdtab[fd], __ATOMIC_RELAXED) == AC_FD_RECLAIMED;
    return fd >= 0 && __atomic_load_n(&ac_high_fd_reclaimed, __ATOMIC_RELAXED) != 0;
}

static inline bool ac_fd_noted(enum ac_fd_state s)
{
    return s == AC_FD_NOTED_READ || s == AC_FD_NOTED_READY;
}

/* ---- call sites (sites.c) ---------------------------------------------------------------- */

/* A call site: the return address of the wrapped call (where the program called it from), or
 * one of these. */
#define AC_SITE_UNKNOWN ((uintptr_t)0) /* not kept (a number from AC_FDTAB_SIZE up) */
#define AC_SITE_NEVER   ((uintptr_t)1) /* the program never read the descriptor */
/* The exported wrapper's caller. */
#define AC_CALLER() ((uintptr_t)__builtin_return_address(0))
/* A wrapper's argument it reads again after the real call, kept in its frame: stored once, and
 * loaded only where it is needed, where a saved register would cost a push, a move and a pop on
 * every call (make bench counts the instructions). */
#define AC_KEEP(type, name, value) type volatile name = (value)

/* Objects unloaded so far, counted before each dlclose (wrap_dl.c; musl never unmaps one). A site
 * is kept with the count it was met at: when the count has moved by the time the site is put into
 * words, the address may lie in another object loaded where the first was, and it is not named. */
extern uint32_t ac_unload_gen;
static inline uint32_t ac_unload_gen_now(void)
{
    return __atomic_load_n(&ac_unload_gen, __ATOMIC_RELAXED);
}

/* Where the program last read each descriptor, by a wrapped call that returned data (0: never
 * since it was accepted or connected), and the unload count when that site was stored. */
extern uintptr_t ac_last_read[AC_FDTAB_SIZE];
extern uint32_t ac_last_read_gen[AC_FDTAB_SIZE];
/* On every read that returned data: a load and a compare, a store only when the site changed (a
 * line written by one thread stays in its cache). */
static inline void ac_read_at(int fd, uintptr_t site)
{
    /* Not __atomic: GCC will not fold an atomic load into the compare (two instructions more,
     * which a read's budget has no room for). The word is aligned, so each access is whole (a
     * relaxed atomic's machine code); the store is volatile, made once, never invented. Two
     * threads reading one number at once leave one of their sites: either is true. The count
     * is published after the site: a reader that sees it sees that site (act.c). */
    size_t i = (unsigned)fd; /* one index for both tables: no second extension of it */
    if (i < AC_FDTAB_SIZE && ac_last_read[i] != site) {
        *(volatile uintptr_t *)&ac_last_read[i] = site;
        __atomic_store_n(&ac_last_read_gen[i], ac_unload_gen_now(), __ATOMIC_RELEASE);
    }
}
/* A new connection under `fd` (accept, connect): not read yet. */
static inline void ac_read_forget(int fd)
{
    if ((unsigned)fd < AC_FDTAB_SIZE)
        __atomic_store_n(&ac_last_read[fd], AC_SITE_UNKNOWN, __ATOMIC_RELAXED);
}
/* `to` is a duplicate of `from` (dup, F_DUPFD): one connection, one history. */
static inline void ac_read_copy(int from, int to)
{
    if ((unsigned)from < AC_FDTAB_SIZE && (unsigned)to < AC_FDTAB_SIZE) {
        __atomic_store_n(&ac_last_read[to], __atomic_load_n(&ac_last_read[from], __ATOMIC_RELAXED),
                         __ATOMIC_RELAXED);
        __atomic_store_n(&ac_last_read_gen[to],
                         __atomic_load_n(&ac_last_read_gen[from], __ATOMIC_RELAXED),
                         __ATOMIC_RELEASE);
    }
}

#define AC_SITE_NAME_MAX   64 /* a module's name is cut short after this many bytes */
#define AC_SITE_SYMBOL_MAX 96 /* and a symbol's */
/* What a site resolves to: `module` is empty when no loaded object holds it. */
struct ac_site_info {
    const char *module; /* the object's file name, without its directory */
    uintptr_t offset;   /* the address less the object's load bias */
    const char *symbol; /* NULL: no sized dynamic symbol covers it */
    uintptr_t symbol_offset;
    /* ac_site_resolve's copies, which `module` and `symbol` then point to. */
    char module_copy[AC_SITE_NAME_MAX + 1], symbol_copy[AC_SITE_SYMBOL_MAX + 1];
};
/* Resolves `site` (dl_iterate_phdr: it takes the loader's list lock, so never with a lock of the
 * library's held). False when it names no loaded object (info->module is then ""). */
bool ac_site_resolve(uintptr_t site, struct ac_site_info *info);
/* " TOKEN=MODULE+0xOFF[ symbol=MODULE!NAME+0xOFF]", " TOKEN=never" or " TOKEN=unknown" (`info`
 * NULL or empty: unknown). */
void ac_site_text(struct ac_text *t, const char *token, uintptr_t site,
                  const struct ac_site_info *info);
/* The stats file's label: "MODULE+0xOFF", "never_read" or "unknown". */
void ac_site_label(struct ac_text *t, uintptr_t site, const struct ac_site_info *info);

/* ---- EOF notes (notes.c) ------------------------------------------------------------------ */

/* When each noted EOF was seen: the monotonic clock's low 32 bits. */
extern uint32_t ac_eof_ms[AC_FDTAB_SIZE];
/* Where the wrapped call that met it was called from (AC_CALLER), and the unload count then,
 * written with the note. */
extern uintptr_t ac_eof_site[AC_FDTAB_SIZE];
extern uint32_t ac_eof_gen[AC_FDTAB_SIZE];
/* Notes an EOF on `fd` (NONE → NOTED): a clock read and three stores, no system call. */
void ac_note_eof(int fd, enum ac_found_by how, uintptr_t site);
/* On the timer, under the tracker lock: judges every note whose grace has run out (TCP in
 * CLOSE_WAIT becomes PENDING, due at once) and returns the earliest deadline of the rest. */
uint64_t ac_notes_judge_due(uint64_t now_ms);
/* Whether any EOF note waits to be judged (a forked child looks: only then does it start its
 * timer as fork returns). */
bool ac_notes_outstanding(void);
/* How many EOFs were noted since the process started: epoll's FIN reports compare with it. */
extern unsigned long ac_notes_taken;

/* ---- closes in flight (lifetime.c) -------------------------------------------------------- */

/* Every wrapper that frees a number (close, dup2 and dup3 over it, fclose) marks it for the
 * duration of the real call, before it reads the number's state: a full barrier on both sides
 * (here, and before the timer looks at the mark) means either the closer sees the timer's state
 * and waits for the tracker lock, or the timer sees the mark and leaves the number alone. So no
 * number the timer acts on can be closed and handed to another file meanwhile.
 *
 * A mark is a count, not a flag: two closes of one number (or of two numbers from 65,536 up,
 * which share one count) cannot end each other's mark. The wrappers end it on every way out,
 * pthread_cancel's unwinding included (built with -fexceptions; under musl, which does not
 * unwind, see below). */
extern uint8_t ac_closing[AC_FDTAB_SIZE];
extern uint32_t ac_closing_high; /* every number from AC_FDTAB_SIZE up */
static inline void ac_closing_begin(int fd)
{
    if ((unsigned)fd < AC_FDTAB_SIZE)
        __atomic_add_fetch(&ac_closing[fd], 1, __ATOMIC_SEQ_CST);
    else if (fd >= 0)
        __atomic_add_fetch(&ac_closing_high, 1, __ATOMIC_SEQ_CST);
}
static inline void ac_closing_end(int fd)
{
    if ((unsigned)fd < AC_FDTAB_SIZE)
        __atomic_sub_fetch(&ac_closing[fd], 1, __ATOMIC_RELEASE);
    else if (fd >= 0)
        __atomic_sub_fetch(&ac_closing_high, 1, __ATOMIC_RELEASE);
}
#if AC_GLIBC
static inline void ac_close_mark_end(const int *fd)
{
    ac_closing_end(*fd);
}
/* Declares the mark of `fd` for the rest of the enclosing block: begun here, ended when the block
 * is left, by a return or by a cancellation's unwinding. */
#define AC_CLOSE_MARK(fd)                                                                          \
    const int ac_marked_fd_ __attribute__((cleanup(ac_close_mark_end))) = (fd);                    \
    ac_closing_begin(ac_marked_fd_)
#else
/* musl does not unwind a cancelled thread, and a record pushed on its cleanup list would be left
 * pointing into a dead frame by a signal handler's siglongjmp out of a blocking close (SO_LINGER),
 * and crash the thread's exit. So the thread's marks in flight are kept in its own slots
 * (lifetime.c): a return ends its mark and frees its slot; what a cancellation or a siglongjmp
 * leaves there ends when the thread exits (a thread-specific key's destructor). */
int ac_close_mark_take(int fd); /* begins the mark; returns its slot, or -1 when all are taken */
void ac_close_mark_give(int fd, int slot);
void ac_close_marks_init(void); /* at load: the key whose destructor ends what is left */
struct ac_close_mark {
    int fd, slot;
};
static inline void ac_close_mark_end(const struct ac_close_mark *m)
{
    ac_close_mark_give(m->fd, m->slot);
}
#define AC_CLOSE_MARK(fd)                                                                          \
    const int ac_marked_fd_ = (fd);                                                                \
    const struct ac_close_mark ac_mark_ __attribute__((cleanup(ac_close_mark_end))) = {            \
        ac_marked_fd_, ac_close_mark_take(ac_marked_fd_)}
#endif
/* The timer's side: true when a close of `fd` may be under way. */
bool ac_closing_now(int fd);

/* ---- log (log.c) ------------------------------------------------------------------------- */

/* Writes one line (no newline in `msg`) at `level`, with timestamp and pid, to the log file, or
 * stderr, or syslog when stderr is a socket (an inetd-style server's stderr is the peer), or,
 * without syslog, a stderr that is a log collector's socket. Rate-limited: a storm cannot flood
 * the log. */
void ac_log(enum ac_log_level level, const char *msg);
/* The same without the rate limit, for the rare line that must not be lost in a storm. */
void ac_log_unlimited(enum ac_log_level level, const char *msg);
void ac_log_atfork_child(void);
void ac_log_start(void); /* after the configuration is read */
/* At load, before anything is logged: notes which file stderr is, to write only there. */
void ac_log_capture_stderr(void);
/* A complaint about the configuration: never rate-limited, never suppressed by AUTOCLOSE_LOG. */
void ac_log_config_complaint(const char *line);
/* The timer's side of the rate limit: when the line counting the lines it dropped is due
 * (monotonic ms; UINT64_MAX while none was dropped), and the line itself, said once it is due. */
uint64_t ac_log_note_due(void);
void ac_log_say_dropped(uint64_t now_ms);

/* ---- the tracker (tracker.c) ------------------------------------------------------------- */

/* The identity of a socket, captured when its FIN is found and checked again before acting:
 * descriptor numbers are recycled, sockets are not. */
struct ac_identity {
    uint64_t cookie; /* SO_COOKIE: never reused while the system runs; 0 if unavailable */
    uint32_t ino;    /* fstat's inode number: sockfs numbers its inodes with 32 bits */
};

struct ac_conn; /* opaque outside tracker.c */

/* Every tracker call below, except where it says otherwise, needs the tracker lock. The lock
 * blocks the calling thread's signals while held, so a signal handler that calls a wrapped
 * function can never deadlock on it. */
void ac_tracker_lock(sigset_t *saved_mask);
void ac_tracker_unlock(const sigset_t *saved_mask);
/* Whether the calling thread holds it (no lock needed). */
bool ac_tracker_held_here(void);

/* Outcome of ac_tracker_add. */
enum ac_add_result { AC_ADD_NEW_EARLIEST, AC_ADD_NEW, AC_ADD_KNOWN, AC_ADD_NO_MEMORY };
enum ac_add_result ac_tracker_add(int fd, const struct ac_identity *id, enum ac_found_by how,
                                  uint64_t fin_ms, uint64_t deadline_ms);
/* Records a half-closed connection the port filter leaves alone, so it is counted once.
 * Returns true the first time. */
bool ac_tracker_ignore(int fd, const struct ac_identity *id);
/* Current state of `fd` (exact, including high numbers). */
enum ac_fd_state ac_tracker_state(int fd);
/* Forgets `fd` (the application closed it or reused the number). */
void ac_tracker_forget(int fd);
/* Forgets every fd in [lo, hi]. */
void ac_tracker_forget_range(unsigned lo, unsigned hi);
/* Sets the state of a known fd after the timer acted (RECLAIMED / OBSERVED), with the identity
 * of what the number holds now when the action replaced it (NULL: unchanged), or forgets it
 * (AC_FD_NONE). */
void ac_tracker_settle(int fd, enum ac_fd_state state, const struct ac_identity *now_id);
/* Of a reclaimed number: the address family (AF_INET, AF_INET6) of the connection it held,
 * recorded by the action (0: unknown), and whether it holds a dead socket of its own rather than
 * a shared placeholder (act.c). Asked by the calls that answer for the number (reclaimed.c). */
void ac_tracker_set_family(int fd, int family);
int ac_tracker_family(int fd);
void ac_tracker_set_own(int fd, bool own);
bool ac_tracker_own(int fd);
/* Puts a connection taken by ac_tracker_take_due back in the deadline order: it was not idle. */
bool ac_tracker_reschedule(int fd, uint64_t deadline_ms);
/* Records what a look found the program had taken of the peer's data, and when it was last seen
 * reading (struct ac_due's taken and read_ms at the next look). */
void ac_tracker_reading(int fd, uint32_t taken, uint64_t read_ms);

/* A due connection, copied out of the table for the timer. */
struct ac_due {
    int fd;
    enum ac_found_by how;
    struct ac_identity id;
    uint64_t fin_ms;
    uint64_t read_ms; /* when a look last found the program reading the peer's data, or fin_ms */
    uint32_t taken;   /* what it had taken of them at the last look (core.h: ac_took_data) */
    bool taken_known; /* false before the first look */
};
/* Takes the earliest connection whose deadline is <= now out of the deadline order (its entry
 * stays, still PENDING, until settled). Returns false when none is due; *next_ms is then the
 * earliest deadline, or UINT64_MAX when nothing is pending. */
bool ac_tracker_take_due(uint64_t now_ms, struct ac_due *out, uint64_t *next_ms);
/* The timer's sleep, on the tracker lock: until `until_ms` (monotonic), or until woken when it
 * is UINT64_MAX. ac_tracker_wake ends it early; both need the lock. */
void ac_tracker_wait(uint64_t until_ms);
void ac_tracker_wake(void);
/* Copies out the identity recorded for `fd`; false when the fd is unknown. */
bool ac_tracker_identity(int fd, struct ac_identity *id);
size_t ac_tracker_pending(void);
size_t ac_tracker_entries(void);
size_t ac_tracker_entries_hint(void); /* without the lock: for a quick "nothing to do" */
/* Fork: prepare locks, the parent unlocks, the child gets a fresh lock. */
void ac_tracker_atfork_prepare(void);
void ac_tracker_atfork_parent(void);
void ac_tracker_atfork_child(bool held); /* held: locked by this thread's prepare handler */
/* Test support: drops every entry. */
void ac_tracker_reset(void);

/* ---- memory for the tracker, async-signal-safe (arena.c) --------------------------------- */

void *ac_arena_alloc(size_t size); /* zeroed, or NULL */
void ac_arena_free(void *p, size_t size);

/* ---- deadline order (heap.c) ------------------------------------------------------------- */

/* A binary min-heap of items ordered by their deadlines, which `deadline` reads from the item
 * (an item's deadline must not change while it is in the heap). `place` tells an item its index
 * whenever it moves (UINT32_MAX once it leaves), so the item can be withdrawn in O(log n) when
 * the application closes the descriptor first. */
struct ac_heap {
    void **items;
    uint32_t len, cap;
    void (*place)(void *item, uint32_t index);
    uint64_t (*deadline)(const void *item);
};
bool ac_heap_push(struct ac_heap *h, void *item);
void *ac_heap_peek(const struct ac_heap *h, uint64_t *deadline_ms);
void *ac_heap_pop(struct ac_heap *h);
void ac_heap_remove(struct ac_heap *h, uint32_t index);
void ac_heap_free(struct ac_heap *h);

/* Sorts `v` ascending, in place, allocating nothing. For the sweep's inode lists: glibc's qsort
 * mallocs a buffer as large as the array, and the timer thread's first malloc gives it an arena
 * of its own, 132 KiB that stay resident for the life of the process. */
void ac_sort_u32(uint32_t *v, size_t n);

/* ---- judgement (judge.c) ----------------------------------------------------------------- */

/* Called when a read of more than zero bytes returned 0, or readiness reported a FIN: notes it
 * (notes.c), or for a number above the table judges it at once. Preserves errno; never blocks;
 * safe in a signal handler. */
void ac_on_eof(int fd, enum ac_found_by how, uintptr_t site);

/* What the kernel says of `fd` when its EOF is judged. */
enum ac_verdict {
    AC_VERDICT_GONE,    /* not open any more, or no longer half-closed: nothing to do */
    AC_VERDICT_NOT_TCP, /* a file, a pipe, a UNIX or UDP socket: never ours */
    AC_VERDICT_IGNORED, /* half-closed, outside AUTOCLOSE_PORTS */
    AC_VERDICT_PENDING, /* half-closed TCP the shim handles: `id` is its identity */
};
/* Asks the kernel (TCP_INFO, and the identity, read on both sides of a second look unless the
 * number is `stable`: under the tracker lock, with no close of it under way). */
enum ac_verdict ac_judge(int fd, struct ac_identity *id, bool stable);
/* Judges `fd` and records the outcome, under the tracker lock (taken here unless `locked`);
 * the deadline is `fin_ms` + the grace. Returns true when it became PENDING. */
bool ac_judge_and_track(int fd, enum ac_found_by how, uint64_t fin_ms, bool locked);

/* Reads the identity of `fd`; false if it is not an open socket. */
bool ac_identity_of(int fd, struct ac_identity *id);

/* ---- the timer and the action (timer.c, act.c) ------------------------------------------- */

/* The timer starts at a point where the program cannot be inside malloc or a signal handler
 * of its own making (accept, connect, the constructor, fork's return in the child): never from
 * a read, write or close, which signal handlers call. */
extern bool ac_timer_running_hint;
void ac_timer_start_slow(void);
static inline void ac_timer_start_here(void)
{
    if (AC_UNLIKELY(!__atomic_load_n(&ac_timer_running_hint, __ATOMIC_RELAXED)))
        ac_timer_start_slow();
}
/* A deadline at `deadline_ms` exists: wakes the timer only if it sleeps past it. With the
 * tracker lock held (`locked`) or not. */
void ac_timer_deadline(uint64_t deadline_ms, bool locked);
/* Epoll reported `fins` FINs on descriptors it does not name: a sweep in half a grace unless
 * the program reads as many EOFs meanwhile. Lock-free. */
void ac_timer_epoll_fins(unsigned fins);
/* Stats changed: the timer writes the file. Needs the tracker lock. */
void ac_timer_wake(void);
/* Whether this process's timer was ever started (it had a TCP connection of its own). */
bool ac_timer_ran_here(void);
/* The program is about to install a seccomp filter (lockdown.c): from now on no thread is
 * started. `start_now` starts the timer first (the process has a TCP socket); `stop` ends a
 * running timer before returning (the filter will apply to every thread). Returns whether a
 * timer was running. */
bool ac_timer_lockdown(bool start_now, bool stop);
/* The kernel refused that filter: threads may be started again, and a thread stopped for it is
 * started anew. */
void ac_timer_lockdown_undone(void);
/* Whether the program has locked itself down (the program's threads may make no system call the
 * program did not: the stats file is no longer written at exit). */
bool ac_timer_locked_down(void);
/* Fork: the child has no timer; it starts one once fork has returned (ac_timer_after_fork). */
void ac_timer_atfork_child(void);
void ac_timer_after_fork(void);
void ac_after_fork_child(bool locks_held); /* init.c: the child's reset (_Fork: not held) */
/* Serialises fork with the timer's work, so no descriptor the timer holds for a moment (a
 * lingering socket's last reference, a new descriptor of its own on its way up) is copied into
 * a child, and the program's close of one of the library's own descriptors with the timer's use
 * of it. Taken before the tracker lock; a program thread blocks its signals first, as
 * ac_tracker_lock does (ac_timer_work_lock_signals). */
void ac_timer_work_lock(void);
void ac_timer_work_unlock(void);
void ac_timer_work_lock_signals(sigset_t *saved_mask);
void ac_timer_work_unlock_signals(const sigset_t *saved_mask);
void ac_timer_work_atfork_child(bool held);
/* True on the timer thread. */
bool ac_timer_is_self(void);

/* ---- the sweep (sweep.c) ----------------------------------------------------------------- */

/* Finds this process's CLOSE_WAIT connections and judges them; timer thread only. Returns false
 * when sock_diag cannot be reached here (said once in the log): the sweep is then off. */
bool ac_sweep_run(void);
void ac_sweep_atfork_child(void);
/* The next sweep looks at every CLOSE_WAIT socket again, not only the new ones. */
void ac_sweep_forget(void);
/* At start-up: true if the process inherited a TCP connection (the timer should run). Learns
 * the ports of every TCP socket it inherited (ports.c). */
bool ac_sweep_inherited_tcp(void);

/* ---- the ports of this process's connections (ports.c) ------------------------------------ */

/* After a successful listen: the listener's local port (one getsockname). */
void ac_ports_listening(int fd);
/* After a connect: the peer port it was given, read from `addr` (no system call). */
void ac_ports_connecting(const struct sockaddr *addr, unsigned len);
/* After a receive that brought control data: descriptors passed with SCM_RIGHTS are queued, and
 * their ports learned by the timer. Async-signal-safe, no system call. */
void ac_ports_received(const struct msghdr *msg);
/* The local port of `fd`, now (one getsockname). */
void ac_ports_learn(int fd);
/* Timer, work lock held: learns the queued descriptors' ports, then points *filter at the
 * sweep's sock_diag filter for every port known; returns its length (0: no port known). */
size_t ac_ports_filter(const uint8_t **filter);

/* ---- the library's own descriptors (ownfd.c) --------------------------------------------- */

enum ac_own { AC_OWN_DIAG, AC_OWN_FDDIR, AC_OWN_COUNT };
/* Timer thread, work lock held: the descriptor, checked to be still the library's file (made
 * anew when it was lost, or inherited through fork), or -1; *fatal_errno then says why it cannot
 * be made when that will not pass, else 0. */
int ac_own_fd(enum ac_own which, int *fatal_errno);
/* Timer, work lock held: the descriptor is of no more use (a dump given up half-way). */
void ac_own_discard(enum ac_own which);
/* Timer, work lock held, at its start: makes them (a forked child's replace its parent's). */
void ac_own_prepare(void);
/* Program thread, before the timer thread starts: grows the descriptor table to where the
 * library's own descriptors go, while that is cheap. */
void ac_own_make_room(void);
/* The program closes or replaces `fd`, marked AC_FD_LIBRARY: it is forgotten, not closed. Under
 * the work lock and the tracker lock. */
void ac_own_forgotten(int fd);
void ac_own_atfork_child(void);
/* Calls `visit` for each of the process's descriptors but the library's own, until it returns
 * false; false when they could not be listed. Through the library's /proc directory on the
 * timer (work lock held), through one opened for the call elsewhere (start-up, exit). */
bool ac_fd_list(bool (*visit)(int fd, void *ctx), void *ctx);

/* The call site a reclaim's line names (sites.c), put into words by the timer once it holds no
 * lock of the library's. */
struct ac_site_note {
    uintptr_t site; /* AC_SITE_UNKNOWN, AC_SITE_NEVER or a return address */
    uint32_t gen;   /* the unload count when the site was met (ac_unload_gen) */
    bool last_read; /* the sweep found it: last_read= rather than site= */
    size_t at;      /* where in the line the tokens go; 0: the line names no site */
};
/* Inserts the site's tokens into `report` (a line of `report_len` bytes at most) and gives the
 * stats file its label. Timer thread, no lock held. */
void ac_site_complete(const struct ac_site_note *note, char *report, size_t report_len);

/* What the timer does with one due connection, called with the tracker lock held. Fills
 * `report` with the log line and returns its level, and may leave a descriptor in *release_fd
 * that the caller must close after unlocking (so a lingering close never blocks the lock);
 * *released says the number now holds the placeholder; *site where the line's site goes.
 * `batch` counts the timer's holds of the lock (a check done once per hold is not repeated). */
enum ac_log_level ac_act(const struct ac_due *due, uint64_t now_ms, unsigned batch, char *report,
                         size_t report_len, int *release_fd, bool *released,
                         struct ac_site_note *site);
/* Makes the placeholders (one blocking, one not) that reclaimed numbers are refilled with, early,
 * so that a program out of descriptors can still be helped. Under the tracker lock. */
void ac_placeholder_prepare(void);
/* The program closed, or replaced, a placeholder's number. Under the tracker lock. */
void ac_placeholder_lost(int fd);
/* Reclaimed numbers the program still holds (poll hides their hang-up, wrap_poll.c). */
extern unsigned ac_reclaimed_held;
/* For the calls that answer for a reclaimed number (reclaimed.c), on the program's thread, under
 * the tracker lock. ac_placeholder_held: `fd` is a reclaimed number that still holds what the
 * library put there (the others act only on such a number). ac_placeholder_switch makes O_NONBLOCK
 * on `fd` read as `nonblock` without touching the description other numbers share: `fd` gets the
 * other placeholder or, holding a dead socket of its own, the flag itself. ac_placeholder_own
 * gives `fd` a dead socket of its own unless it has one (false: out of descriptors): an epoll
 * registration of a shared placeholder would outlive the program's close of the number. */
bool ac_placeholder_held(int fd);
void ac_placeholder_switch(int fd, bool nonblock);
bool ac_placeholder_own(int fd);

/* ---- what a reclaimed number answers (reclaimed.c) ---------------------------------------- */

/* The cold paths of the wrappers, for a number ac_fd_maybe_reclaimed says may be reclaimed: each
 * asks the tracker, answers as a TCP connection that has ended would, and otherwise makes the
 * real call. */
int ac_reclaimed_getsockopt(int fd, int level, int name, void *val, unsigned *len);
int ac_reclaimed_setsockopt(int fd, int level, int name, const void *val, unsigned len);
int ac_reclaimed_getsockname(int fd, struct sockaddr *addr, unsigned *len);
int ac_reclaimed_getpeername(int fd, struct sockaddr *addr, unsigned *len);
/* fcntl(F_SETFL) and ioctl(FIONBIO): true when it answered for `fd` (the call succeeded). */
bool ac_reclaimed_set_nonblock(int fd, bool nonblock);
/* epoll_ctl, with the event as the program gave it and as it is `passed` on (EPOLLRDHUP added). */
int ac_reclaimed_epoll_ctl(int epfd, int op, int fd, struct epoll_event *passed,
                           struct epoll_event *event);

/* ---- lifetime helpers shared by the wrappers (lifetime.c) -------------------------------- */

/* The application is about to close or replace `fd`, whose hint is not NONE, or a new descriptor
 * appeared under such a number (the old one was closed where no wrapper sees): forget it. A
 * noted EOF is cleared with one compare-and-swap; anything else takes the tracker lock. */
void ac_fd_closing(int fd);
/* The same for a range; takes the lock (ranges are rare: daemons at start, children at exec). */
void ac_fd_range_closing(unsigned lo, unsigned hi);

/* Sharing. A socket is this process's alone only if it was accepted or connected here and no
 * other process has been started since (fork, vfork, clone, posix_spawn, system, popen), and it
 * was not duplicated, passed on or received (dup, F_DUPFD, SCM_RIGHTS either way). Such a socket
 * is shut down before its number is released; any other is only released, so whoever else holds
 * it keeps it. Every close of a number clears its stamp (ac_fd_shared), so that a file the number
 * gets later, by whatever call, never inherits it. */
extern uint32_t ac_spawn_epoch; /* starts at 1: an unstamped number (0) was born elsewhere */
extern uint32_t ac_fd_epoch[AC_FDTAB_SIZE];
extern int ac_highest_born; /* the highest number ever stamped: a forked child looks up to it */
static inline void ac_fd_born(int fd)
{
    if ((unsigned)fd < AC_FDTAB_SIZE) {
        __atomic_store_n(&ac_fd_epoch[fd], __atomic_load_n(&ac_spawn_epoch, __ATOMIC_RELAXED),
                         __ATOMIC_RELAXED);
        if (AC_UNLIKELY(fd > __atomic_load_n(&ac_highest_born, __ATOMIC_RELAXED)))
            __atomic_store_n(&ac_highest_born, fd, __ATOMIC_RELAXED); /* a race only lowers it */
    }
}
/* Whether a connection accepted or connected here (or in a parent before fork) may still be
 * open: a forked child that holds one starts its timer as fork returns. */
bool ac_born_connection_held(void);
static inline void ac_fd_shared(int fd)
{
    if ((unsigned)fd < AC_FDTAB_SIZE)
        __atomic_store_n(&ac_fd_epoch[fd], 0, __ATOMIC_RELAXED);
}
bool ac_fd_possibly_shared(int fd);
void ac_process_spawning(void);
/* Marks every descriptor an SCM_RIGHTS control message in `msg` carries as possibly shared:
 * passed on (sendmsg, sendmmsg) or received (recvmsg, recvmmsg). */
void ac_rights_shared(const struct msghdr *msg);

/* This process's id, and whether a child may share its memory (vfork, clone with CLONE_VM):
 * then a wrapper checks it is still in this process before it changes the shim's state. */
extern pid_t ac_pid;
extern bool ac_vm_shared_child_seen;
bool ac_in_other_process(void);

/* ---- TCP hygiene (hygiene.c) ------------------------------------------------------------ */

/* True when any per-connection option is configured: one load on accept and connect. */
static inline bool ac_hygiene_wanted(void)
{
    return ac_cfg.keepalive.on || ac_cfg.user_timeout_ms || ac_cfg.fin_wait2_s;
}
/* Applies keepalive, TCP_USER_TIMEOUT and TCP_LINGER2 to a new TCP connection. */
void ac_hygiene_on_connection(int fd);
/* SO_REUSEADDR before bind, on TCP sockets, when configured. */
void ac_hygiene_before_bind(int fd);
/* True when `fd` is a TCP socket over IPv4 or IPv6 (any creation flags). */
bool ac_is_tcp_socket(int fd);

/* ---- counters (stats.c) ------------------------------------------------------------------ */

enum ac_counter {
    AC_STAT_RECLAIMED_SHUTDOWN_READ,
    AC_STAT_RECLAIMED_SHUTDOWN_READY,
    AC_STAT_RECLAIMED_SHUTDOWN_SWEEP,
    AC_STAT_RECLAIMED_CLOSE_READ,
    AC_STAT_RECLAIMED_CLOSE_READY,
    AC_STAT_RECLAIMED_CLOSE_SWEEP,
    AC_STAT_DRY_RUN_OBSERVED,
    AC_STAT_PORT_FILTER_SKIPPED,
    AC_STAT_KEEPALIVE_CONFIGURED,
    AC_STAT_ERRORS,
    AC_STAT_COUNT
};
/* Adds one; wakes the timer to write the stats file if one is configured. Not for the hot
 * path: only where the shim did something. Takes the tracker lock: from the timer thread, with
 * the lock held, use ac_stat_add_on_timer (the timer looks at the file before it sleeps). */
void ac_stat_add(enum ac_counter which);
void ac_stat_add_on_timer(enum ac_counter which);
/* A reclaim, counted by action and how it was found, and by its call site (AC_SITE_*, or a return
 * address met at unload count `gen`: at most AC_STAT_SITES of them, the rest as "other"). */
void ac_stat_reclaimed_on_timer(bool closed, enum ac_found_by how, uintptr_t site, uint32_t gen);
#define AC_STAT_SITES 8
/* The label of a counted site, once the timer has put it into words (no lock held). */
void ac_stat_site_label(uintptr_t site, uint32_t gen, const char *label);
/* The pending count changed: the file should say so (same rules as above). */
void ac_stats_touch(void);
void ac_stats_touch_on_timer(void);
uint64_t ac_stat_get(enum ac_counter which);
/* The Prometheus text for the current counters; returns its length. */
size_t ac_stats_render(char *buf, size_t cap, size_t pending);
/* Called by the timer with the lock held: true when the file is due now, and else the time it
 * will be (UINT64_MAX: nothing to write). */
bool ac_stats_due(uint64_t now_ms, uint64_t *next_ms);
/* Writes the stats file (without the lock). */
void ac_stats_write(size_t pending);
/* Works out the file's name (%p is this process's id): at start-up and in a forked child, which
 * also starts its counts from zero. */
void ac_stats_start(void);
void ac_stats_atfork_child(void);
/* The last write, at exit. */
void ac_stats_at_exit(void);

/* ---- descriptor headroom (nofile.c) ------------------------------------------------------ */

/* AUTOCLOSE_NOFILE, at load: raises the soft RLIMIT_NOFILE, unless the program could not use
 * numbers above FD_SETSIZE (it imports select), saying why in one line either way. */
void ac_nofile_apply(void);
/* The soft limit, and the program's open descriptors (counted in /proc). */
uint64_t ac_nofile_limit(void);
long ac_descriptors_open(void);
/* After a release of `fd`: logs once each time the open count passes 50, 80 and 95% of the
 * limit, saying how many of them are numbers the program never closed. Timer thread. */
void ac_headroom_check(int fd);

/* ---- library state (init.c) -------------------------------------------------------------- */

/* True once the configuration is read and the library is not disabled. */
extern bool ac_active;
void ac_init(void);

#endif
