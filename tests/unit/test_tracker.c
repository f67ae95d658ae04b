/*
 * The tracker: the table of half-closed connections, their deadline order and the lock-free
 * ac_fdtab mirror the wrappers read. Descriptor numbers here are made up; nothing below starts
 * the timer thread (ac_timer_kick), which would act on them, so deadlines are driven by hand
 * through ac_tracker_take_due with explicit times.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <pthread.h>
#include <string.h>

#include "autoclose.h"

#define NOW 1000u
#define FAR                                                                                        \
    (NOW + (1ull << 29)) /* a deadline nothing here reaches (the tracker keeps them                \
                          * within 2^30 ms of its clock) */

static enum ac_add_result add_how(int fd, uint64_t ino, uint64_t cookie, enum ac_found_by how,
                                  uint64_t now, uint64_t deadline)
{
    struct ac_identity id = {.ino = ino, .cookie = cookie};
    sigset_t saved;
    ac_tracker_lock(&saved);
    enum ac_add_result r = ac_tracker_add(fd, &id, how, now, deadline);
    ac_tracker_unlock(&saved);
    return r;
}

static enum ac_add_result add_at(int fd, uint64_t ino, uint64_t cookie, uint64_t now,
                                 uint64_t deadline)
{
    return add_how(fd, ino, cookie, AC_FOUND_READ, now, deadline);
}

static enum ac_add_result add(int fd, uint64_t ino, uint64_t cookie, uint64_t deadline)
{
    return add_at(fd, ino, cookie, NOW, deadline);
}

static bool reschedule(int fd, uint64_t deadline)
{
    sigset_t saved;
    ac_tracker_lock(&saved);
    bool ok = ac_tracker_reschedule(fd, deadline);
    ac_tracker_unlock(&saved);
    return ok;
}

static enum ac_fd_state state_of(int fd)
{
    sigset_t saved;
    ac_tracker_lock(&saved);
    enum ac_fd_state s = ac_tracker_state(fd);
    ac_tracker_unlock(&saved);
    return s;
}

static void forget(int fd)
{
    sigset_t saved;
    ac_tracker_lock(&saved);
    ac_tracker_forget(fd);
    ac_tracker_unlock(&saved);
}

static void forget_range(unsigned lo, unsigned hi)
{
    sigset_t saved;
    ac_tracker_lock(&saved);
    ac_tracker_forget_range(lo, hi);
    ac_tracker_unlock(&saved);
}

static void settle(int fd, enum ac_fd_state s, const struct ac_identity *now_id)
{
    sigset_t saved;
    ac_tracker_lock(&saved);
    ac_tracker_settle(fd, s, now_id);
    ac_tracker_unlock(&saved);
}

static bool take_due(uint64_t now, struct ac_due *due, uint64_t *next)
{
    sigset_t saved;
    ac_tracker_lock(&saved);
    bool got = ac_tracker_take_due(now, due, next);
    ac_tracker_unlock(&saved);
    return got;
}

/* Takes the due connection expected next and checks it is `fd`. */
static void assert_due(uint64_t now, int fd)
{
    struct ac_due due;
    uint64_t next = 0;
    if (!take_due(now, &due, &next))
        fail_msg("nothing due at %llu, expected fd %d (next %llu)", (unsigned long long)now, fd,
                 (unsigned long long)next);
    assert_int_equal(due.fd, fd);
}

static void assert_nothing_due(uint64_t now, uint64_t want_next)
{
    struct ac_due due = {.fd = -1};
    uint64_t next = 0;
    if (take_due(now, &due, &next))
        fail_msg("fd %d due at %llu, expected nothing", due.fd, (unsigned long long)now);
    assert_true(next == want_next);
}

static bool identity_of(int fd, struct ac_identity *id)
{
    sigset_t saved;
    ac_tracker_lock(&saved);
    bool known = ac_tracker_identity(fd, id);
    ac_tracker_unlock(&saved);
    return known;
}

static size_t entries(void)
{
    sigset_t saved;
    ac_tracker_lock(&saved);
    size_t n = ac_tracker_entries();
    ac_tracker_unlock(&saved);
    return n;
}

static size_t pending(void)
{
    sigset_t saved;
    ac_tracker_lock(&saved);
    size_t n = ac_tracker_pending();
    ac_tracker_unlock(&saved);
    return n;
}

static void assert_counts(size_t want_entries, size_t want_pending)
{
    assert_int_equal(entries(), want_entries);
    assert_int_equal(ac_tracker_entries_hint(), want_entries);
    assert_int_equal(pending(), want_pending);
}

static void assert_fdtab_clear(void)
{
    for (size_t i = 0; i < AC_FDTAB_SIZE; i++)
        if (ac_fdtab[i] != AC_FD_NONE)
            fail_msg("ac_fdtab[%zu] is %d after every entry went", i, ac_fdtab[i]);
}

static int setup(void **state)
{
    (void)state;
    sigset_t saved;
    ac_tracker_lock(&saved);
    ac_tracker_reset();
    ac_tracker_unlock(&saved);
    return 0;
}

/* ---- add --------------------------------------------------------------------------------- */

static void add_makes_pending(void **state)
{
    (void)state;
    assert_counts(0, 0);
    assert_int_equal(add(5, 111, 222, FAR), AC_ADD_NEW_EARLIEST);
    assert_int_equal(state_of(5), AC_FD_PENDING);
    assert_int_equal(ac_fdtab[5], AC_FD_PENDING);
    assert_int_equal(ac_fd_state_hint(5), AC_FD_PENDING);
    assert_int_equal(ac_fdtab[4], AC_FD_NONE);
    assert_int_equal(ac_fdtab[6], AC_FD_NONE);
    assert_int_equal(state_of(6), AC_FD_NONE);
    assert_counts(1, 1);
    struct ac_identity id;
    assert_true(identity_of(5, &id));
    assert_int_equal(id.ino, 111);
    assert_int_equal(id.cookie, 222);
    assert_false(identity_of(6, &id));
}

static void add_same_identity_is_known(void **state)
{
    (void)state;
    assert_int_equal(add(5, 111, 222, 100), AC_ADD_NEW_EARLIEST);
    /* A second EOF on the same socket keeps the first deadline, even an earlier one. */
    assert_int_equal(add(5, 111, 222, 50), AC_ADD_KNOWN);
    assert_int_equal(add(5, 111, 222, 900), AC_ADD_KNOWN);
    assert_counts(1, 1);
    assert_int_equal(state_of(5), AC_FD_PENDING);
    assert_nothing_due(60, 100);
    assert_due(100, 5);
    assert_nothing_due(UINT64_MAX - 1, UINT64_MAX);
}

static void add_recycled_number_replaces(void **state)
{
    (void)state;
    assert_int_equal(add(7, 1, 10, 100), AC_ADD_NEW_EARLIEST);
    assert_int_equal(add_at(7, 2, 20, 400, 500), AC_ADD_NEW_EARLIEST);
    assert_counts(1, 1);
    assert_int_equal(ac_fdtab[7], AC_FD_PENDING);
    struct ac_identity id;
    assert_true(identity_of(7, &id));
    assert_int_equal(id.ino, 2);
    assert_int_equal(id.cookie, 20);
    /* The stale deadline went with the stale entry. */
    assert_nothing_due(100, 500);
    struct ac_due due;
    uint64_t next;
    assert_true(take_due(500, &due, &next));
    assert_int_equal(due.fd, 7);
    assert_int_equal(due.id.ino, 2);
    assert_int_equal(due.id.cookie, 20);
    assert_int_equal(due.fin_ms, 400);

    /* Either half of the identity differing is another socket. */
    assert_int_equal(add(8, 5, 50, FAR), AC_ADD_NEW_EARLIEST);
    assert_int_equal(add(8, 5, 51, FAR), AC_ADD_NEW_EARLIEST);
    assert_true(identity_of(8, &id));
    assert_int_equal(id.cookie, 51);
    assert_int_equal(add(8, 6, 51, FAR), AC_ADD_NEW_EARLIEST);
    assert_true(identity_of(8, &id));
    assert_int_equal(id.ino, 6);
    assert_int_equal(entries(), 2);
}

static void add_recycled_among_others(void **state)
{
    (void)state;
    assert_int_equal(add(3, 1, 1, 50), AC_ADD_NEW_EARLIEST);
    assert_int_equal(add(4, 2, 2, 100), AC_ADD_NEW);
    assert_int_equal(add(4, 3, 3, 500), AC_ADD_NEW);
    assert_int_equal(add(4, 4, 4, 10), AC_ADD_NEW_EARLIEST);
    assert_counts(2, 2);
    assert_due(100, 4);
    assert_due(100, 3);
    assert_nothing_due(100, UINT64_MAX);
}

static void new_earliest_only_when_earliest(void **state)
{
    (void)state;
    assert_int_equal(add(10, 10, 0, 500), AC_ADD_NEW_EARLIEST);
    assert_int_equal(add(11, 11, 0, 700), AC_ADD_NEW);
    assert_int_equal(add(12, 12, 0, 300), AC_ADD_NEW_EARLIEST);
    assert_int_equal(add(13, 13, 0, 400), AC_ADD_NEW);
    assert_int_equal(add(14, 14, 0, 100), AC_ADD_NEW_EARLIEST);
    assert_int_equal(add(15, 15, 0, 10000), AC_ADD_NEW);
    assert_int_equal(add(16, 16, 0, 101), AC_ADD_NEW);
    assert_counts(7, 7);
    /* After the earliest is taken, the next add is compared with what is left. */
    assert_due(100, 14);
    assert_int_equal(add(17, 17, 0, 200), AC_ADD_NEW);
    assert_int_equal(add(18, 18, 0, 50), AC_ADD_NEW_EARLIEST);
}

/* ---- take_due ---------------------------------------------------------------------------- */

static void take_due_empty(void **state)
{
    (void)state;
    assert_nothing_due(0, UINT64_MAX);
    assert_nothing_due(UINT64_MAX, UINT64_MAX);
}

/* Times are kept in 32 bits: deadlines on both sides of the moment the low 32 bits of the clock
 * wrap (every 49.7 days) still come out in order and with their full values. */
static void deadlines_across_the_32_bit_wrap(void **state)
{
    (void)state;
    const uint64_t wrap = 5ull << 32; /* the clock's low half is 0 here */
    assert_int_equal(add_at(5, 50, 500, wrap - 300, wrap + 200), AC_ADD_NEW_EARLIEST);
    assert_int_equal(add_at(6, 60, 600, wrap - 200, wrap - 100), AC_ADD_NEW_EARLIEST);
    assert_int_equal(add_at(7, 70, 700, wrap - 100, wrap + 100), AC_ADD_NEW);
    assert_nothing_due(wrap - 150, wrap - 100);
    assert_due(wrap - 100, 6);
    assert_nothing_due(wrap - 1, wrap + 100);
    struct ac_due due;
    uint64_t next = 0;
    assert_true(take_due(wrap + 150, &due, &next));
    assert_int_equal(due.fd, 7);
    assert_int_equal(due.fin_ms, wrap - 100);
    assert_nothing_due(wrap + 150, wrap + 200);
    assert_due(wrap + 200, 5);
    assert_nothing_due(wrap + 200, UINT64_MAX);
    forget(5);
    forget(6);
    forget(7);
    assert_counts(0, 0);
}

/* A deadline further ahead than 32-bit times can tell apart is brought forward to 2^30 ms. */
static void far_deadlines_are_brought_forward(void **state)
{
    (void)state;
    assert_int_equal(add_at(5, 50, 500, 1000, 1000 + (1ull << 40)), AC_ADD_NEW_EARLIEST);
    assert_int_equal(add_at(6, 60, 600, 1000, 5000), AC_ADD_NEW_EARLIEST);
    assert_nothing_due(1000, 5000);
    assert_due(5000, 6);
    assert_nothing_due(5000, 1000 + (1ull << 30));
    assert_due(1000 + (1ull << 30), 5);
    forget(5);
    forget(6);
    assert_counts(0, 0);
}

static void take_due_in_deadline_order(void **state)
{
    (void)state;
    assert_int_equal(add_at(5, 50, 500, 10, 300), AC_ADD_NEW_EARLIEST);
    assert_int_equal(add_how(6, 60, 600, AC_FOUND_SWEEP, 20, 100), AC_ADD_NEW_EARLIEST);
    assert_int_equal(add_how(7, 70, 700, AC_FOUND_READY, 30, 200), AC_ADD_NEW);
    assert_int_equal(add_at(8, 80, 800, 40, 1000), AC_ADD_NEW);

    assert_nothing_due(50, 100);
    assert_nothing_due(99, 100);

    struct ac_due due;
    uint64_t next = 0;
    assert_true(take_due(250, &due, &next));
    assert_int_equal(due.fd, 6);
    assert_int_equal(due.id.ino, 60);
    assert_int_equal(due.id.cookie, 600);
    assert_int_equal(due.fin_ms, 20);
    assert_int_equal(due.how, AC_FOUND_SWEEP);
    assert_true(take_due(250, &due, &next));
    assert_int_equal(due.fd, 7);
    assert_int_equal(due.how, AC_FOUND_READY);
    assert_int_equal(due.fin_ms, 30);
    assert_nothing_due(250, 300);

    /* Taken is not settled: the entry stays, still pending, out of the deadline order. */
    assert_int_equal(state_of(6), AC_FD_PENDING);
    assert_int_equal(ac_fdtab[6], AC_FD_PENDING);
    assert_counts(4, 2);

    assert_due(300, 5); /* a deadline equal to now is due */
    assert_nothing_due(999, 1000);
    assert_due(UINT64_MAX, 8);
    assert_nothing_due(UINT64_MAX, UINT64_MAX);
    assert_counts(4, 0);
}

static void forgotten_is_never_due(void **state)
{
    (void)state;
    add(20, 1, 1, 100);
    add(21, 2, 2, 200);
    add(22, 3, 3, 300);
    add(23, 4, 4, 50);
    forget(21);
    forget(23); /* the earliest: the next deadline moves on */
    forget(99); /* unknown: nothing happens */
    assert_counts(2, 2);
    assert_int_equal(state_of(21), AC_FD_NONE);
    assert_int_equal(ac_fdtab[21], AC_FD_NONE);
    assert_nothing_due(60, 100);
    assert_due(UINT64_MAX, 20);
    assert_due(UINT64_MAX, 22);
    assert_nothing_due(UINT64_MAX, UINT64_MAX);

    /* Forgetting an entry already taken out of the deadline order. */
    forget(20);
    assert_counts(1, 0);
    forget(22);
    assert_counts(0, 0);
    assert_fdtab_clear();
}

/* ---- reschedule -------------------------------------------------------------------------- */

/* What a look found the program had taken of the peer's data, and when it was last seen reading,
 * come back with the connection at its next look; before the first look nothing is known and the
 * reading dates from the FIN. */
static void reading_kept_between_looks(void **state)
{
    (void)state;
    assert_int_equal(add_at(5, 1, 10, 400, 500), AC_ADD_NEW_EARLIEST);
    struct ac_due due;
    uint64_t next;
    assert_true(take_due(500, &due, &next));
    assert_false(due.taken_known);
    assert_int_equal(due.read_ms, 400);
    sigset_t saved;
    ac_tracker_lock(&saved);
    ac_tracker_reading(5, 0xfffffff0u, 500);
    ac_tracker_unlock(&saved);
    assert_true(reschedule(5, 900));
    assert_true(take_due(900, &due, &next));
    assert_true(due.taken_known);
    assert_int_equal(due.taken, 0xfffffff0u);
    assert_int_equal(due.read_ms, 500);
    assert_int_equal(due.fin_ms, 400);
    /* A number the tracker does not know is left alone. */
    ac_tracker_lock(&saved);
    ac_tracker_reading(6, 1, 900);
    ac_tracker_unlock(&saved);
    assert_int_equal(entries(), 1);
}

static void reschedule_puts_back_in_order(void **state)
{
    (void)state;
    add_at(5, 50, 500, 10, 100);
    add_at(6, 60, 600, 20, 300);
    struct ac_due due;
    uint64_t next;
    assert_true(take_due(100, &due, &next));
    assert_int_equal(due.fd, 5);
    assert_counts(2, 1);

    assert_true(reschedule(5, 500));
    assert_counts(2, 2);
    assert_int_equal(state_of(5), AC_FD_PENDING);
    assert_nothing_due(299, 300);
    assert_due(300, 6);
    assert_nothing_due(499, 500);
    assert_true(take_due(500, &due, &next));
    assert_int_equal(due.fd, 5);
    assert_int_equal(due.fin_ms, 10); /* still counted from the FIN, not from the reschedule */
    assert_int_equal(due.id.ino, 50);

    /* Back in front of the others when its new deadline is the earliest. */
    add(7, 70, 700, 1000);
    assert_true(reschedule(5, 900));
    assert_due(UINT64_MAX, 5);
    assert_due(UINT64_MAX, 7);
}

static void reschedule_refuses_unknown_and_queued(void **state)
{
    (void)state;
    assert_false(reschedule(5, 100));
    assert_counts(0, 0);
    assert_int_equal(ac_fdtab[5], AC_FD_NONE);

    /* Still waiting: its place in the order stays as it was. */
    add(5, 50, 500, 100);
    assert_false(reschedule(5, 50));
    assert_false(reschedule(5, 5000));
    assert_counts(1, 1);
    assert_nothing_due(99, 100);
    assert_due(100, 5);

    /* Twice in a row: the second would put it in the order twice. */
    assert_true(reschedule(5, 200));
    assert_false(reschedule(5, 150));
    assert_counts(1, 1);
    assert_nothing_due(199, 200);

    /* Forgotten after a reschedule: gone from the order too. */
    forget(5);
    assert_false(reschedule(5, 300));
    assert_counts(0, 0);
    assert_nothing_due(UINT64_MAX, UINT64_MAX);
}

static void reschedule_high_number(void **state)
{
    (void)state;
    add(90000, 9, 9, 10);
    assert_due(10, 90000);
    assert_true(reschedule(90000, 20));
    assert_nothing_due(19, 20);
    assert_due(20, 90000);
    assert_int_equal(ac_high_fd_pending, 1);
    forget_range(65536, UINT_MAX);
    assert_int_equal(ac_high_fd_pending, 0);
    assert_counts(0, 0);
}

/* Only a pending high number sends the other high numbers' closes to the lock: one reclaimed
 * (or ignored) for good does not make every later close of a high number slow. */
static void settled_high_number_asks_no_more(void **state)
{
    (void)state;
    add(90001, 9, 9, 10);
    assert_int_equal(ac_fd_state_hint(90002), AC_FD_ASK);
    ac_tracker_settle(90001, AC_FD_RECLAIMED, NULL);
    assert_int_equal(ac_high_fd_pending, 0);
    assert_int_equal(ac_reclaimed_held, 1);
    assert_int_equal(ac_fd_state_hint(90002), AC_FD_NONE);
    forget_range(65536, UINT_MAX);
    assert_int_equal(ac_reclaimed_held, 0);
}

/* ---- forget_range ------------------------------------------------------------------------ */

static void forget_range_small(void **state)
{
    (void)state;
    for (int fd = 10; fd < 60; fd++)
        add(fd, (uint64_t)fd, 0, (uint64_t)fd);
    /* Ten numbers against fifty entries: the walk over the numbers. */
    forget_range(20, 29);
    assert_counts(40, 40);
    for (int fd = 10; fd < 60; fd++) {
        enum ac_fd_state want = fd >= 20 && fd <= 29 ? AC_FD_NONE : AC_FD_PENDING;
        assert_int_equal(state_of(fd), want);
        assert_int_equal(ac_fdtab[fd], want);
    }
    forget_range(40, 30); /* reversed: nothing */
    assert_counts(40, 40);
    forget_range(59, 59);
    forget_range(0, 10);
    assert_counts(38, 38);
    for (int fd = 11; fd < 59; fd++)
        if (fd < 20 || fd > 29)
            assert_due(UINT64_MAX, fd);
    assert_nothing_due(UINT64_MAX, UINT64_MAX);
}

static void forget_range_huge_with_high_numbers(void **state)
{
    (void)state;
    static const int fds[] = {0, 1, 2, 3, 100, 65535, 65536, 70000, INT_MAX};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
        assert_int_not_equal(add(fds[i], i + 1, 0, FAR + i), AC_ADD_NO_MEMORY);
    assert_counts(9, 9);
    assert_int_equal(ac_high_fd_pending, 3);
    assert_int_equal(ac_fdtab[65535], AC_FD_PENDING);
    assert_int_equal(state_of(70000), AC_FD_PENDING);
    assert_int_equal(state_of(INT_MAX), AC_FD_PENDING);
    assert_int_equal(ac_fd_state_hint(70000), AC_FD_ASK);

    /* A table of nine against four billion numbers: the walk over the table. */
    forget_range(3, UINT_MAX);
    assert_counts(3, 3);
    assert_int_equal(ac_high_fd_pending, 0);
    assert_int_equal(ac_fd_state_hint(70000), AC_FD_NONE);
    assert_int_equal(ac_fd_state_hint(INT_MAX), AC_FD_NONE);
    assert_int_equal(state_of(70000), AC_FD_NONE);
    for (int fd = 0; fd < 3; fd++)
        assert_int_equal(ac_fdtab[fd], AC_FD_PENDING);
    assert_int_equal(ac_fdtab[3], AC_FD_NONE);
    assert_int_equal(ac_fdtab[100], AC_FD_NONE);
    assert_int_equal(ac_fdtab[65535], AC_FD_NONE);
    assert_due(UINT64_MAX, 0);
    assert_due(UINT64_MAX, 1);
    assert_due(UINT64_MAX, 2);
    assert_nothing_due(UINT64_MAX, UINT64_MAX);

    forget_range(0, UINT_MAX);
    assert_counts(0, 0);
    assert_fdtab_clear();
}

/* ---- numbers beyond ac_fdtab ------------------------------------------------------------- */

static void high_numbers_counted_not_mirrored(void **state)
{
    (void)state;
    assert_int_equal(ac_fd_state_hint(70000), AC_FD_NONE);
    add(65535, 1, 0, FAR);
    assert_int_equal(ac_high_fd_pending, 0);
    add(65536, 2, 0, FAR);
    assert_int_equal(ac_high_fd_pending, 1);
    add(70000, 3, 0, FAR);
    assert_int_equal(ac_high_fd_pending, 2);
    /* No alias in the table for a number past its end. */
    assert_int_equal(ac_fdtab[0], AC_FD_NONE);
    assert_int_equal(ac_fdtab[70000 - AC_FDTAB_SIZE], AC_FD_NONE);

    /* The hint cannot tell high numbers apart: any high entry sends the caller to the lock. */
    assert_int_equal(ac_fd_state_hint(80000), AC_FD_ASK);
    assert_int_equal(state_of(80000), AC_FD_NONE);
    assert_int_equal(ac_fd_state_hint(-1), AC_FD_NONE);

    /* A recycled high number replaces its entry: still one entry for it. */
    assert_int_not_equal(add(70000, 4, 0, FAR), AC_ADD_KNOWN);
    assert_int_equal(ac_high_fd_pending, 2);
    assert_int_equal(add(70000, 4, 0, FAR), AC_ADD_KNOWN);
    assert_int_equal(ac_high_fd_pending, 2);

    forget(65536);
    assert_int_equal(ac_high_fd_pending, 1);
    assert_int_equal(ac_fd_state_hint(65536), AC_FD_ASK);
    assert_int_equal(state_of(65536), AC_FD_NONE);
    settle(70000, AC_FD_NONE, NULL);
    assert_int_equal(ac_high_fd_pending, 0);
    assert_int_equal(ac_fd_state_hint(70000), AC_FD_NONE);
    assert_int_equal(ac_fd_state_hint(65535), AC_FD_PENDING);
    assert_counts(1, 1);
}

/* ---- settle ------------------------------------------------------------------------------ */

static void settle_reclaimed(void **state)
{
    (void)state;
    add(9, 90, 900, 100);
    assert_due(100, 9);
    settle(9, AC_FD_RECLAIMED, NULL);
    assert_int_equal(state_of(9), AC_FD_RECLAIMED);
    assert_int_equal(ac_fdtab[9], AC_FD_RECLAIMED);
    assert_int_equal(ac_fd_state_hint(9), AC_FD_RECLAIMED);
    struct ac_identity id;
    assert_true(identity_of(9, &id));
    assert_int_equal(id.ino, 90);
    assert_int_equal(id.cookie, 900);
    assert_counts(1, 0);

    /* Close mode leaves a placeholder at the number: its identity is the one kept. */
    struct ac_identity placeholder = {.ino = 4242, .cookie = 0};
    settle(9, AC_FD_RECLAIMED, &placeholder);
    assert_true(identity_of(9, &id));
    assert_int_equal(id.ino, 4242);
    assert_int_equal(id.cookie, 0);
    assert_int_equal(ac_fdtab[9], AC_FD_RECLAIMED);

    /* The same socket seen again is known, and stays reclaimed. */
    assert_int_equal(add(9, 4242, 0, 50), AC_ADD_KNOWN);
    assert_int_equal(ac_fdtab[9], AC_FD_RECLAIMED);
    assert_counts(1, 0);
    /* A new socket under the number starts over. */
    assert_int_equal(add(9, 91, 901, 50), AC_ADD_NEW_EARLIEST);
    assert_int_equal(ac_fdtab[9], AC_FD_PENDING);
    assert_counts(1, 1);
}

static void settle_observed(void **state)
{
    (void)state;
    add(12, 1, 2, 10);
    assert_due(10, 12);
    settle(12, AC_FD_OBSERVED, NULL);
    assert_int_equal(state_of(12), AC_FD_OBSERVED);
    assert_int_equal(ac_fdtab[12], AC_FD_OBSERVED);
    assert_counts(1, 0);
}

static void settle_none_forgets(void **state)
{
    (void)state;
    add(9, 90, 900, 100);
    add(10, 100, 1000, 200);
    assert_due(100, 9);
    settle(9, AC_FD_NONE, NULL);
    assert_int_equal(state_of(9), AC_FD_NONE);
    assert_int_equal(ac_fdtab[9], AC_FD_NONE);
    struct ac_identity id;
    assert_false(identity_of(9, &id));
    assert_counts(1, 1);

    /* Settled while still in the deadline order: it leaves that too. */
    settle(10, AC_FD_NONE, NULL);
    assert_counts(0, 0);
    assert_nothing_due(UINT64_MAX, UINT64_MAX);

    /* An unknown number: nothing to do, nothing created. */
    settle(11, AC_FD_RECLAIMED, NULL);
    settle(11, AC_FD_NONE, NULL);
    assert_int_equal(state_of(11), AC_FD_NONE);
    assert_int_equal(ac_fdtab[11], AC_FD_NONE);
    assert_counts(0, 0);
}

static void settle_high_number(void **state)
{
    (void)state;
    add(100000, 1, 1, 10);
    assert_due(10, 100000);
    settle(100000, AC_FD_RECLAIMED, NULL);
    assert_int_equal(state_of(100000), AC_FD_RECLAIMED);
    /* Reclaimed for good: the other high numbers need not ask any more. */
    assert_int_equal(ac_fd_state_hint(100000), AC_FD_NONE);
    assert_int_equal(ac_high_fd_pending, 0);
    forget(100000);
    assert_int_equal(ac_high_fd_pending, 0);
    assert_counts(0, 0);
}

/* ---- volume ------------------------------------------------------------------------------ */

static void twenty_thousand_entries(void **state)
{
    (void)state;
    enum { N = 20000, HIGH = 100000 };
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N; i++) {
            /* A quarter of them above ac_fdtab, so both kinds of count move. */
            int fd = i % 4 == 3 ? HIGH + i : i;
            enum ac_add_result r = add(fd, (uint64_t)i + 1, (uint64_t)round, FAR + (uint64_t)i);
            assert_true(r == AC_ADD_NEW || r == AC_ADD_NEW_EARLIEST);
        }
        assert_counts(N, N);
        assert_int_equal(ac_high_fd_pending, N / 4);

        /* The first hundred deadlines, in order. */
        for (int i = 0; i < 100; i++)
            assert_due(FAR + 99, i % 4 == 3 ? HIGH + i : i);
        assert_nothing_due(FAR + 99, FAR + 100);
        assert_counts(N, N - 100);

        if (round == 0) {
            for (int i = 0; i < N; i++)
                forget(i % 4 == 3 ? HIGH + i : i);
        } else {
            forget_range(0, N / 2);
            forget_range(N / 2, UINT_MAX);
        }
        assert_counts(0, 0);
        assert_int_equal(ac_high_fd_pending, 0);
        assert_fdtab_clear();
        assert_nothing_due(UINT64_MAX, UINT64_MAX);
    }
}

static void reset_drops_everything(void **state)
{
    (void)state;
    for (int i = 0; i < 500; i++)
        add(i, 1, 1, i == 0 ? FAR - 1 : FAR);
    add(90000, 1, 1, FAR);
    add(3, 9, 9, FAR); /* recycled */
    assert_due(FAR - 1, 0);
    settle(0, AC_FD_RECLAIMED, NULL);
    sigset_t saved;
    ac_tracker_lock(&saved);
    ac_tracker_reset();
    ac_tracker_unlock(&saved);
    assert_counts(0, 0);
    assert_int_equal(ac_high_fd_pending, 0);
    assert_fdtab_clear();
    assert_nothing_due(UINT64_MAX, UINT64_MAX);
    assert_int_equal(add(3, 1, 1, 5), AC_ADD_NEW_EARLIEST);
}

/* ---- threads ----------------------------------------------------------------------------- */

struct worker {
    int base;
    int failures;
};

/* cmocka's assertions longjmp and are not for other threads: failures are counted and
 * checked in the test's own thread. Each worker keeps a window of 32 live entries among its
 * 64 numbers, so the table and the heap are shared by about a hundred entries at once. */
static void *churn(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 10000; i++) {
        int fd = w->base + i % 64;
        struct ac_identity id = {.ino = (uint64_t)i + 1, .cookie = (uint64_t)w->base};
        struct ac_identity seen;
        sigset_t saved;
        ac_tracker_lock(&saved);
        enum ac_add_result r =
            ac_tracker_add(fd, &id, AC_FOUND_READ, NOW, FAR + (uint64_t)(i * 7919 % 1000));
        if (r != AC_ADD_NEW && r != AC_ADD_NEW_EARLIEST)
            w->failures++;
        if (ac_tracker_state(fd) != AC_FD_PENDING || !ac_tracker_identity(fd, &seen) ||
            seen.ino != id.ino)
            w->failures++;
        ac_tracker_unlock(&saved);

        if (i >= 32) {
            int old = w->base + (i - 32) % 64;
            ac_tracker_lock(&saved);
            if (i % 2)
                ac_tracker_forget(old);
            else
                ac_tracker_forget_range((unsigned)old, (unsigned)old);
            if (ac_tracker_state(old) != AC_FD_NONE)
                w->failures++;
            ac_tracker_unlock(&saved);
        }
    }
    sigset_t saved;
    ac_tracker_lock(&saved);
    ac_tracker_forget_range((unsigned)w->base, (unsigned)w->base + 63);
    ac_tracker_unlock(&saved);
    return NULL;
}

static void threads_on_disjoint_ranges(void **state)
{
    (void)state;
    /* One worker above ac_fdtab, so the high count is updated concurrently too. */
    struct worker workers[4] = {{.base = 1000}, {.base = 2000}, {.base = 3000}, {.base = 100000}};
    pthread_t threads[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, churn, &workers[i]), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_join(threads[i], NULL), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(workers[i].failures, 0);
    assert_counts(0, 0);
    assert_int_equal(ac_high_fd_pending, 0);
    assert_fdtab_clear();
    assert_nothing_due(UINT64_MAX, UINT64_MAX);
}

#define TEST(f) cmocka_unit_test_setup_teardown(f, setup, setup)

/* Close marks are counts: one close ending cannot clear another's mark, on the same number or
 * on two numbers from 65,536 up, which share one count. */
static void close_marks_count(void **state)
{
    (void)state;
    int pairs[][2] = {{7, 7}, {AC_FDTAB_SIZE + 5, AC_FDTAB_SIZE + 9}};
    for (size_t i = 0; i < 2; i++) {
        int a = pairs[i][0], b = pairs[i][1];
        assert_false(ac_closing_now(a));
        ac_closing_begin(a);
        ac_closing_begin(b);
        ac_closing_end(b);
        assert_true(ac_closing_now(a)); /* a's close is still under way */
        ac_closing_end(a);
        assert_false(ac_closing_now(a));
        assert_false(ac_closing_now(b));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(add_makes_pending),
        TEST(add_same_identity_is_known),
        TEST(add_recycled_number_replaces),
        TEST(add_recycled_among_others),
        TEST(new_earliest_only_when_earliest),
        TEST(take_due_empty),
        TEST(take_due_in_deadline_order),
        TEST(deadlines_across_the_32_bit_wrap),
        TEST(far_deadlines_are_brought_forward),
        TEST(forgotten_is_never_due),
        TEST(reading_kept_between_looks),
        TEST(reschedule_puts_back_in_order),
        TEST(reschedule_refuses_unknown_and_queued),
        TEST(reschedule_high_number),
        TEST(settled_high_number_asks_no_more),
        TEST(forget_range_small),
        TEST(forget_range_huge_with_high_numbers),
        TEST(high_numbers_counted_not_mirrored),
        TEST(settle_reclaimed),
        TEST(settle_observed),
        TEST(settle_none_forgets),
        TEST(settle_high_number),
        TEST(twenty_thousand_entries),
        TEST(reset_drops_everything),
        TEST(close_marks_count),
        TEST(threads_on_disjoint_ranges),
    };
    return cmocka_run_group_tests_name("tracker", tests, NULL, NULL);
}
