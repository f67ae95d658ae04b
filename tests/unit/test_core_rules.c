/*
 * The rules the library and the daemon share (shim/core/): when a half-closed connection is idle
 * (idle.c), and the Prometheus text they both write (prom.c): label values escaped as the format
 * requires, since a process name in the daemon's gauge may hold a quote or a backslash.
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
    assert_int_equal(ac_busy_for(&s, 0, 1000, grace), 0);
    assert_int_equal(ac_busy_for(&s, 0, 50000, grace), 0);
}

static void data_in_flight_waits_a_grace(void **state)
{
    (void)state;
    struct ac_tcp_snapshot unacked = {.unacked = 3, .last_data_sent_ms = 60000};
    struct ac_tcp_snapshot unsent = {.notsent_bytes = 100, .last_data_sent_ms = 60000};
    assert_int_equal(ac_busy_for(&unacked, 0, 90000, grace), grace);
    assert_int_equal(ac_busy_for(&unsent, 0, 90000, grace), grace);
    /* A grace of 0 still waits a moment: never a spin on a busy connection. */
    assert_int_equal(ac_busy_for(&unsent, 0, 90000, 0), 1);
}

static void a_send_after_the_fin_restarts_the_grace(void **state)
{
    (void)state;
    /* FIN 1500 ms ago, last send 200 ms ago: 800 ms more. */
    struct ac_tcp_snapshot s = {.last_data_sent_ms = 200};
    assert_int_equal(ac_busy_for(&s, 0, 1500, grace), 800);
    /* A send before the FIN does not count. */
    s.last_data_sent_ms = 1600;
    assert_int_equal(ac_busy_for(&s, 0, 1500, grace), 0);
}

static void unread_data_holds_ten_graces(void **state)
{
    (void)state;
    struct ac_tcp_snapshot s = {.last_data_sent_ms = 60000};
    uint64_t total = 1000; /* since the FIN */
    int looks = 0;
    for (;;) {
        uint64_t wait = ac_busy_for(&s, 10, total, grace);
        if (wait == 0)
            break;
        total += wait;
        looks++;
        assert_true(looks < 20);
    }
    assert_int_equal(total, AC_UNREAD_GRACES * grace);
    assert_true(looks <= 5); /* doubling intervals, not a look per grace */
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
        cmocka_unit_test(prom_labels_are_escaped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
