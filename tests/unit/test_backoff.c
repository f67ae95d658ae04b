/*
 * autoclosed's back-off for a process it cannot reach (a permission, Yama, a seccomp filter):
 * tried again after a minute, then after twice as long each time, never more than ten minutes
 * apart, and never given up.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../shim/daemon/autoclosed.h"

static void first_is_a_minute(void **state)
{
    (void)state;
    assert_int_equal(ad_backoff_next(0), 60000);
}

static void doubles_up_to_ten_minutes(void **state)
{
    (void)state;
    static const uint32_t want[] = {60000, 120000, 240000, 480000, 600000, 600000, 600000};
    uint32_t b = 0;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        b = ad_backoff_next(b);
        assert_int_equal(b, want[i]);
    }
}

static void never_above_the_cap(void **state)
{
    (void)state;
    for (uint32_t b = 1; b < 4000000000u; b = b * 3 + 7)
        assert_true(ad_backoff_next(b) <= AD_BACKOFF_MAX_MS);
    assert_int_equal(ad_backoff_next(UINT32_MAX), AD_BACKOFF_MAX_MS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(first_is_a_minute),
        cmocka_unit_test(doubles_up_to_ten_minutes),
        cmocka_unit_test(never_above_the_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
