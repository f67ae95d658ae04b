/*
 * The connections the shim knows of: a uthash table keyed by descriptor number, a deadline
 * heap for the pending ones, and the one lock that guards both.
 *
 * The lock is the point where the shim's actions and the application's closes meet: the timer
 * verifies a socket's identity and acts on it without letting go of the lock, and the close,
 * dup2, dup3, close_range, closefrom and fclose wrappers take the same lock before the real call,
 * so the number cannot be closed and handed to a new connection in between.
 *
 * While the lock is held the calling thread's signals are blocked: a signal handler that reads
 * or closes a descriptor can then never re-enter the lock it interrupted. Memory comes from
 * arena.c (mmap), never from malloc, for the same reason.
 */
#include "autoclose.h"

#include <pthread.h>
#include <string.h>
#include <sys/socket.h>

static bool add_failed; /* set by uthash when it cannot allocate; read right after HASH_ADD */

#define HASH_NONFATAL_OOM        1
#define uthash_malloc(sz)        ac_arena_alloc(sz)
#define uthash_free(ptr, sz)     ac_arena_free((ptr), (sz))
#define uthash_nonfatal_oom(obj) (add_failed = true)
#include <uthash.h>

/* 96 bytes, 56 of them uthash's handle (72 and 32 in a 32-bit program, where uthash's pointers
 * take 4 bytes and a uint64_t is aligned to 4): memory per tracked connection is a published
 * figure.
 * Times are kept as the monotonic clock's low 32 bits and widened against a recent reading
 * (widen): right for anything within 24 days of it. The identity is kept field by field, since
 * struct ac_identity as a member would bring its 4 bytes of padding along. */
struct ac_conn {
    UT_hash_handle hh;
    uint64_t cookie;
    uint32_t ino;
    int fd;
    uint32_t heap_index;    /* UINT32_MAX when not waiting for a deadline */
    uint32_t fin_ms32;      /* when the FIN was found */
    uint32_t deadline_ms32; /* while in the deadline order */
    uint32_t read_ms32;     /* when a look last found the program reading (the FIN's time before) */
    uint32_t taken32;       /* what it had taken of the peer's data then (core/idle.c) */
    uint8_t state;          /* enum ac_fd_state */
    uint8_t how;            /* enum ac_found_by */
    uint8_t flags;          /* CONN_TAKEN_KNOWN while pending; CONN_V6, CONN_OWN once RECLAIMED */
};
_Static_assert(sizeof(struct ac_conn) == sizeof(UT_hash_handle) + 40,
               "a tracked connection should take 96 bytes (72 in a 32-bit program)");
#define CONN_TAKEN_KNOWN 1u /* taken32 was read: the first look has been */
#define CONN_INET        2u /* reclaimed: the connection's family is known, AF_INET... */
#define CONN_V6          8u /* ...or AF_INET6 */
#define CONN_OWN         4u /* reclaimed: holds a dead socket of its own (act.c) */

static void set_flag(struct ac_conn *c, unsigned flag, bool on)
{
    c->flags = (uint8_t)(on ? c->flags | flag : c->flags & ~flag);
}

/* Deadlines lie at most this far ahead (later ones are brought forward to it), so every pending
 * deadline stays within reach of widen(). The longest real wait, the unread-data hold of ten
 * graces of at most a day each, is shorter. */
#define MAX_AHEAD_MS    (1ull << 30)
#define LONGEST_WAIT_MS ((uint64_t)AC_UNREAD_GRACES * AC_MAX_GRACE_MS)
_Static_assert(LONGEST_WAIT_MS < MAX_AHEAD_MS, "the longest wait must fit the 32-bit deadlines");

uint8_t ac_fdtab[AC_FDTAB_SIZE];
unsigned ac_high_fd_pending;
unsigned ac_high_fd_reclaimed;
unsigned ac_reclaimed_held;
static unsigned entry_count; /* HASH_COUNT, readable without the lock */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake;
static pthread_once_t wake_once = PTHREAD_ONCE_INIT;
static struct ac_conn *table;

/* The clock reading times are widened against: the latest `now` the tracker was given. */
static uint64_t clock_ref_ms;

static uint64_t widen(uint32_t ms32)
{
    return clock_ref_ms + (uint64_t)(int64_t)(int32_t)(ms32 - (uint32_t)clock_ref_ms);
}

static void place(void *item, uint32_t index)
{
    ((struct ac_conn *)item)->heap_index = index;
}
static uint64_t deadline_of(const void *item)
{
    return widen(((const struct ac_conn *)item)->deadline_ms32);
}
static struct ac_heap deadlines = {.place = place, .deadline = deadline_of};

/* Enters `c` into the deadline order. */
static bool schedule(struct ac_conn *c, uint64_t deadline_ms)
{
    if (deadline_ms > clock_ref_ms + MAX_AHEAD_MS)
        deadline_ms = clock_ref_ms + MAX_AHEAD_MS;
    c->deadline_ms32 = (uint32_t)deadline_ms;
    return ac_heap_push(&deadlines, c);
}

/* The timer sleeps on a monotonic clock so a wall-clock step cannot move a deadline. */
static void init_wake(void)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&wake, &attr);
    pthread_condattr_destroy(&attr);
}

/* Whether this thread holds the lock: a line logged under it must not take it again. */
static __thread bool held_here;

void ac_tracker_lock(sigset_t *saved_mask)
{
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, saved_mask);
    pthread_mutex_lock(&lock);
    held_here = true;
}

void ac_tracker_unlock(const sigset_t *saved_mask)
{
    held_here = false;
    pthread_mutex_unlock(&lock);
    pthread_sigmask(SIG_SETMASK, saved_mask, NULL);
}

bool ac_tracker_held_here(void)
{
    return held_here;
}

/* The writer of ac_fdtab for every number in the table (notes.c sets and clears the states of
 * numbers that are not), so the lock-free hint matches it. Keeps the counts the wrappers read
 * without the lock: pending high numbers (close must ask), reclaimed numbers held, and reclaimed
 * high numbers (getsockopt and the like must ask). */
static void count(enum ac_fd_state state, int fd, int delta)
{
    if (state == AC_FD_PENDING && (unsigned)fd >= AC_FDTAB_SIZE)
        __atomic_add_fetch(&ac_high_fd_pending, (unsigned)delta, __ATOMIC_RELAXED);
    if (state == AC_FD_RECLAIMED)
        __atomic_add_fetch(&ac_reclaimed_held, (unsigned)delta, __ATOMIC_RELAXED);
    if (state == AC_FD_RECLAIMED && (unsigned)fd >= AC_FDTAB_SIZE)
        __atomic_add_fetch(&ac_high_fd_reclaimed, (unsigned)delta, __ATOMIC_RELAXED);
}

static void set_state(struct ac_conn *c, enum ac_fd_state state)
{
    count((enum ac_fd_state)c->state, c->fd, -1);
    count(state, c->fd, +1);
    c->state = (uint8_t)state;
    if ((unsigned)c->fd < AC_FDTAB_SIZE)
        __atomic_store_n(&ac_fdtab[c->fd], (uint8_t)state, __ATOMIC_SEQ_CST);
}

static struct ac_conn *find(int fd)
{
    struct ac_conn *c;
    HASH_FIND_INT(table, &fd, c);
    return c;
}

static void drop(struct ac_conn *c)
{
    if (c->heap_index != UINT32_MAX)
        ac_heap_remove(&deadlines, c->heap_index);
    set_state(c, AC_FD_NONE);
    HASH_DEL(table, c);
    __atomic_sub_fetch(&entry_count, 1, __ATOMIC_RELAXED);
    ac_arena_free(c, sizeof *c);
}

static bool same_identity(const struct ac_conn *c, const struct ac_identity *id)
{
    return c->ino == id->ino && c->cookie == id->cookie;
}

static void set_identity(struct ac_conn *c, const struct ac_identity *id)
{
    c->ino = id->ino;
    c->cookie = id->cookie;
}

/* A new entry for `fd`, replacing a stale one; NULL if known already (*known) or no memory. */
static struct ac_conn *insert(int fd, const struct ac_identity *id, bool *known)
{
    *known = false;
    struct ac_conn *c = find(fd);
    if (c != NULL) {
        if (same_identity(c, id)) {
            *known = true;
            return NULL;
        }
        drop(c); /* the number was closed behind our back and now names another socket */
    }
    c = ac_arena_alloc(sizeof *c);
    if (c == NULL)
        return NULL;
    c->fd = fd;
    set_identity(c, id);
    c->heap_index = UINT32_MAX;
    add_failed = false;
    HASH_ADD_INT(table, fd, c);
    if (add_failed) {
        ac_arena_free(c, sizeof *c);
        return NULL;
    }
    __atomic_add_fetch(&entry_count, 1, __ATOMIC_RELAXED);
    return c;
}

bool ac_tracker_ignore(int fd, const struct ac_identity *id)
{
    bool known;
    struct ac_conn *c = insert(fd, id, &known);
    if (c != NULL)
        set_state(c, AC_FD_IGNORED);
    return c != NULL;
}

enum ac_add_result ac_tracker_add(int fd, const struct ac_identity *id, enum ac_found_by how,
                                  uint64_t fin_ms, uint64_t deadline_ms)
{
    bool known;
    struct ac_conn *c = insert(fd, id, &known);
    if (c == NULL)
        return known ? AC_ADD_KNOWN : AC_ADD_NO_MEMORY;
    c->how = (uint8_t)how;
    c->fin_ms32 = (uint32_t)fin_ms;
    c->read_ms32 = c->fin_ms32;
    clock_ref_ms = fin_ms; /* at most a grace in the past: well within widen()'s reach */
    if (!schedule(c, deadline_ms)) {
        drop(c);
        return AC_ADD_NO_MEMORY;
    }
    set_state(c, AC_FD_PENDING);
    return c->heap_index == 0 ? AC_ADD_NEW_EARLIEST : AC_ADD_NEW;
}

enum ac_fd_state ac_tracker_state(int fd)
{
    struct ac_conn *c = find(fd);
    return c ? (enum ac_fd_state)c->state : AC_FD_NONE;
}

bool ac_tracker_identity(int fd, struct ac_identity *id)
{
    struct ac_conn *c = find(fd);
    if (c != NULL)
        *id = (struct ac_identity){.cookie = c->cookie, .ino = c->ino};
    return c != NULL;
}

void ac_tracker_forget(int fd)
{
    struct ac_conn *c = find(fd);
    if (c != NULL)
        drop(c);
}

void ac_tracker_forget_range(unsigned lo, unsigned hi)
{
    if (lo > hi)
        return;
    /* Walk whichever is smaller: the numbers in the range, or the table. */
    if ((uint64_t)hi - lo < HASH_COUNT(table)) {
        for (uint64_t fd = lo; fd <= hi; fd++)
            ac_tracker_forget((int)fd);
        return;
    }
    struct ac_conn *c, *tmp;
    HASH_ITER(hh, table, c, tmp)
    {
        if ((unsigned)c->fd >= lo && (unsigned)c->fd <= hi)
            drop(c);
    }
}

void ac_tracker_settle(int fd, enum ac_fd_state state, const struct ac_identity *now_id)
{
    struct ac_conn *c = find(fd);
    if (c == NULL)
        return;
    if (state == AC_FD_NONE) {
        drop(c);
        return;
    }
    if (now_id != NULL)
        set_identity(c, now_id);
    set_state(c, state);
}

void ac_tracker_set_family(int fd, int family)
{
    struct ac_conn *c = find(fd);
    if (c != NULL) {
        set_flag(c, CONN_INET, family == AF_INET || family == AF_INET6);
        set_flag(c, CONN_V6, family == AF_INET6);
    }
}

int ac_tracker_family(int fd)
{
    struct ac_conn *c = find(fd);
    if (c == NULL || c->state != AC_FD_RECLAIMED || !(c->flags & CONN_INET))
        return 0;
    return c->flags & CONN_V6 ? AF_INET6 : AF_INET;
}

void ac_tracker_set_own(int fd, bool own)
{
    struct ac_conn *c = find(fd);
    if (c != NULL)
        set_flag(c, CONN_OWN, own);
}

bool ac_tracker_own(int fd)
{
    struct ac_conn *c = find(fd);
    return c != NULL && c->state == AC_FD_RECLAIMED && (c->flags & CONN_OWN);
}

bool ac_tracker_reschedule(int fd, uint64_t deadline_ms)
{
    struct ac_conn *c = find(fd);
    if (c == NULL || c->heap_index != UINT32_MAX)
        return false;
    if (!schedule(c, deadline_ms)) {
        drop(c);
        return false;
    }
    return true;
}

void ac_tracker_reading(int fd, uint32_t taken, uint64_t read_ms)
{
    struct ac_conn *c = find(fd);
    if (c == NULL)
        return;
    c->taken32 = taken;
    set_flag(c, CONN_TAKEN_KNOWN, true);
    c->read_ms32 = (uint32_t)read_ms;
}

bool ac_tracker_take_due(uint64_t now_ms, struct ac_due *out, uint64_t *next_ms)
{
    uint64_t deadline;
    clock_ref_ms = now_ms;
    struct ac_conn *c = ac_heap_peek(&deadlines, &deadline);
    if (c == NULL || deadline > now_ms) {
        *next_ms = c ? deadline : UINT64_MAX;
        return false;
    }
    ac_heap_pop(&deadlines);
    out->fd = c->fd;
    out->how = (enum ac_found_by)c->how;
    out->id = (struct ac_identity){.cookie = c->cookie, .ino = c->ino};
    out->fin_ms = now_ms - (uint32_t)((uint32_t)now_ms - c->fin_ms32);
    out->read_ms = now_ms - (uint32_t)((uint32_t)now_ms - c->read_ms32);
    out->taken = c->taken32;
    out->taken_known = (c->flags & CONN_TAKEN_KNOWN) != 0;
    return true;
}

size_t ac_tracker_pending(void)
{
    return deadlines.len;
}
size_t ac_tracker_entries(void)
{
    return HASH_COUNT(table);
}
size_t ac_tracker_entries_hint(void)
{
    return __atomic_load_n(&entry_count, __ATOMIC_RELAXED);
}

void ac_tracker_wait(uint64_t until_ms)
{
    pthread_once(&wake_once, init_wake);
    if (until_ms == UINT64_MAX) {
        pthread_cond_wait(&wake, &lock);
        return;
    }
    struct timespec ts = {.tv_sec = (time_t)(until_ms / 1000),
                          .tv_nsec = (long)(until_ms % 1000) * 1000000L};
    pthread_cond_timedwait(&wake, &lock, &ts);
}

void ac_tracker_wake(void)
{
    pthread_once(&wake_once, init_wake);
    pthread_cond_broadcast(&wake); /* for a moment after a fork there may be two timers */
}

static sigset_t fork_saved_mask;

void ac_tracker_atfork_prepare(void)
{
    ac_tracker_lock(&fork_saved_mask);
}
void ac_tracker_atfork_parent(void)
{
    ac_tracker_unlock(&fork_saved_mask);
}

/* The child has one thread, this one. After fork the prepare handler's lock is this thread's to
 * release; after _Fork, which runs no prepare handler, the parent's timer may have held it, so
 * it is made anew. The condition variable too: the parent's waiters do not exist here. */
void ac_tracker_atfork_child(bool held)
{
    held_here = false;
    if (held)
        pthread_mutex_unlock(&lock);
    else
        lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
    init_wake();
}

void ac_tracker_reset(void)
{
    struct ac_conn *c, *tmp;
    HASH_ITER(hh, table, c, tmp)
    {
        drop(c);
    }
    ac_heap_free(&deadlines);
}
