/*
 * The rules the library and the daemon share (shim/core/): when a half-closed connection is idle
 * (idle.c: a reply in flight, a program still reading, unread data it abandoned), and the
 * Prometheus text they both write (prom.c): label values escaped as the format requires, since a
 * process name in the daemon's gauge may hold a quote or a backslash.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "core.h"

static const uint32_t grace = 1000;

static void idle_when_quiet_since_the_fin(void **state)
{
    (void)state;
    struct ac_tcp_snapshot s = {.state = AC_TCP_CLOSE_WAIT, .last_data_sent_ms = 60000};
    assert_int_equal(ac_busy_for(&s, 0, 1000, 1000, grace), 0);
    assert_int_equal(ac_busy_for(&s, 0, 50000, 50000, grace), 0);
}

static void data_in_flight_waits_a_grace(void **state)
{
    (void)state;
    struct ac_tcp_snapshot unacked = {.unacked = 3, .last_data_sent_ms = 60000};
    struct ac_tcp_snapshot unsent = {.notsent_bytes = 100, .last_data_sent_ms = 60000};
    assert_int_equal(ac_busy_for(&unacked, 0, 90000, 90000, grace), grace);
    assert_int_equal(ac_busy_for(&unsent, 0, 90000, 90000, grace), grace);
    /* A grace of 0 still waits a moment: never a spin on a busy connection. */
    assert_int_equal(ac_busy_for(&unsent, 0, 90000, 90000, 0), 1);
}

static void a_send_after_the_fin_restarts_the_grace(void **state)
{
    (void)state;
    /* FIN 1500 ms ago, last send 200 ms ago: 800 ms more. */
    struct ac_tcp_snapshot s = {.last_data_sent_ms = 200};
    assert_int_equal(ac_busy_for(&s, 0, 1500, 1500, grace), 800);
    /* A send before the FIN does not count. */
    s.last_data_sent_ms = 1600;
    assert_int_equal(ac_busy_for(&s, 0, 1500, 1500, grace), 0);
}

static void unread_data_holds_ten_graces(void **state)
{
    (void)state;
    struct ac_tcp_snapshot s = {.last_data_sent_ms = 60000};
    uint64_t total = 1000; /* since the FIN */
    int looks = 0;
    for (;;) {
        uint64_t wait = ac_busy_for(&s, 10, total, total, grace);
        if (wait == 0)
            break;
        total += wait;
        looks++;
        assert_true(looks < 20);
    }
    assert_int_equal(total, AC_UNREAD_GRACES * grace);
    assert_true(looks <= 5); /* doubling intervals, not a look per grace */
}

static void what_the_program_took_is_compared_between_looks(void **state)
{
    (void)state;
    struct ac_tcp_snapshot s = {.bytes_received = 100001}; /* the FIN counts one */
    uint32_t taken = 0;
    bool known = false;
    /* The first look has nothing to compare with. */
    assert_false(ac_took_data(&s, 60000, &taken, &known));
    assert_true(known);
    assert_false(ac_took_data(&s, 60000, &taken, &known));
    assert_true(ac_took_data(&s, 59000, &taken, &known));
    assert_false(ac_took_data(&s, 59000, &taken, &known));
    assert_true(ac_took_data(&s, 0, &taken, &known)); /* the last of it */
    /* Before Linux 4.1 the kernel gives no byte count: the unread count alone still tells. */
    struct ac_tcp_snapshot old = {0};
    known = false;
    assert_false(ac_took_data(&old, 5000, &taken, &known));
    assert_true(ac_took_data(&old, 4000, &taken, &known));
    /* Past 4 GiB in all: only the difference matters. */
    struct ac_tcp_snapshot big = {.bytes_received = (1ull << 32) + 10};
    known = false;
    assert_false(ac_took_data(&big, 20, &taken, &known));
    assert_true(ac_took_data(&big, 19, &taken, &known));
}

/* A slow reader: 1000 bytes every 200 ms of a 100 kB request whose FIN has come, twenty graces of
 * reading. At every look (as far apart as the rule asks) the program has taken more: it is never
 * idle, however long the reading takes. */
static void a_program_still_reading_is_never_cut(void **state)
{
    (void)state;
    struct ac_tcp_snapshot s = {.bytes_received = 100001, .last_data_sent_ms = 60000};
    uint32_t taken = 0;
    bool known = false;
    int unread = 100000, looks = 0;
    uint64_t since_fin = grace, read_at = 0; /* times from the FIN */
    while (unread > 0) {
        if (ac_took_data(&s, unread, &taken, &known))
            read_at = since_fin;
        uint64_t wait = ac_busy_for(&s, unread, since_fin, since_fin - read_at, grace);
        assert_true(wait > 0);
        since_fin += wait;
        unread -= (int)(wait / 200 * 1000); /* what it read meanwhile */
        if (unread < 0)
            unread = 0;
        looks++;
    }
    assert_true(since_fin > AC_UNREAD_GRACES * grace); /* longer than the hold from the FIN */
    /* Having taken the last of it, it may still answer: a grace from the look that saw that. */
    assert_true(ac_took_data(&s, unread, &taken, &known));
    assert_int_equal(ac_busy_for(&s, 0, since_fin, 0, grace), grace);
    assert_int_equal(ac_busy_for(&s, 0, since_fin, 300, grace), grace - 300);
    assert_int_equal(ac_busy_for(&s, 0, since_fin, grace, grace), 0); /* then silent: idle */
    assert_true(looks >= 20);
}

/* A program that stopped reading is still cut: ten graces after the last look that saw it read,
 * whatever it had read before. */
static void a_program_that_stopped_reading_is_cut_ten_graces_later(void **state)
{
    (void)state;
    struct ac_tcp_snapshot s = {.last_data_sent_ms = 60000};
    uint64_t since_fin = 7 * grace, since_read = 0; /* it read until here, then never again */
    int looks = 0;
    for (;;) {
        uint64_t wait = ac_busy_for(&s, 500, since_fin, since_read, grace);
        if (wait == 0)
            break;
        since_fin += wait;
        since_read += wait;
        assert_true(++looks < 20);
    }
    assert_int_equal(since_read, AC_UNREAD_GRACES * grace);
    assert_true(looks <= 5); /* doubling intervals once it has stopped */
    /* A reading dated before the FIN counts from the FIN. */
    assert_int_equal(ac_busy_for(&s, 500, AC_UNREAD_GRACES * grace, 99999, grace), 0);
}

static void prom_labels_are_escaped(void **state)
{
    (void)state;
    char buf[256], labels[128];
    struct ac_text l, t;
    ac_text_init(&l, labels, sizeof labels);
    ac_prom_label(&l, "pid", "42");
    ac_prom_label(&l, "comm", "a\"b\\c\nd");
    ac_prom_label(&l, "port", "10540");
    ac_text_init(&t, buf, sizeof buf);
    ac_prom_series(&t, "autoclose_close_wait", labels, 7);
    assert_string_equal(
        buf, "autoclose_close_wait{pid=\"42\",comm=\"a\\\"b\\\\c\\nd\",port=\"10540\"} 7\n");
    ac_text_init(&t, buf, sizeof buf);
    ac_prom_series(&t, "autoclose_reclaimed_total", "", 3);
    assert_string_equal(buf, "autoclose_reclaimed_total 3\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(idle_when_quiet_since_the_fin),
        cmocka_unit_test(data_in_flight_waits_a_grace),
        cmocka_unit_test(a_send_after_the_fin_restarts_the_grace),
        cmocka_unit_test(unread_data_holds_ten_graces),
        cmocka_unit_test(what_the_program_took_is_compared_between_looks),
        cmocka_unit_test(a_program_still_reading_is_never_cut),
        cmocka_unit_test(a_program_that_stopped_reading_is_cut_ten_graces_later),
        cmocka_unit_test(prom_labels_are_escaped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
