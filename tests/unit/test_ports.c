/*
 * The port filter's bit set. The interesting edges are the ends of the port space and ranges
 * that straddle two 64-bit words, where an off-by-one sets the wrong word or spills past the
 * array.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <string.h>

#include "autoclose.h"

/* The set followed by a guard, so a write past bits[] shows up. */
struct guarded {
    struct ac_portset set;
    uint64_t guard[4];
};

#define GUARD 0x5a5a5a5a5a5a5a5aull

static void init_guarded(struct guarded *g)
{
    memset(&g->set, 0, sizeof g->set);
    for (size_t i = 0; i < 4; i++)
        g->guard[i] = GUARD;
}

static void assert_guard_intact(const struct guarded *g)
{
    for (size_t i = 0; i < 4; i++)
        assert_true(g->guard[i] == GUARD);
}

static size_t count(const struct ac_portset *set)
{
    size_t n = 0;
    for (unsigned p = 0; p < 65536; p++)
        n += ac_portset_has(set, p);
    return n;
}

static void empty_set_has_nothing(void **state)
{
    (void)state;
    struct guarded g;
    init_guarded(&g);
    assert_false(ac_portset_has(&g.set, 0));
    assert_false(ac_portset_has(&g.set, 1));
    assert_false(ac_portset_has(&g.set, 65535));
    assert_false(ac_portset_has(&g.set, 65536));
    assert_int_equal(count(&g.set), 0);
}

static void single_ports_at_the_edges(void **state)
{
    (void)state;
    struct guarded g;
    init_guarded(&g);
    ac_portset_add_range(&g.set, 0, 0);
    assert_true(ac_portset_has(&g.set, 0));
    assert_false(ac_portset_has(&g.set, 1));
    assert_true(g.set.bits[0] == 1);

    ac_portset_add_range(&g.set, 1, 1);
    assert_true(ac_portset_has(&g.set, 1));
    assert_true(g.set.bits[0] == 3);

    ac_portset_add_range(&g.set, 63, 63);
    ac_portset_add_range(&g.set, 64, 64);
    assert_true(g.set.bits[0] == (3 | (1ull << 63)));
    assert_true(g.set.bits[1] == 1);

    ac_portset_add_range(&g.set, 65535, 65535);
    assert_true(ac_portset_has(&g.set, 65535));
    assert_false(ac_portset_has(&g.set, 65534));
    assert_true(g.set.bits[1023] == 1ull << 63);
    assert_int_equal(count(&g.set), 5);
    assert_guard_intact(&g);
}

static void range_across_word_boundary(void **state)
{
    (void)state;
    struct guarded g;
    init_guarded(&g);
    ac_portset_add_range(&g.set, 60, 70);
    assert_false(ac_portset_has(&g.set, 59));
    for (unsigned p = 60; p <= 70; p++)
        assert_true(ac_portset_has(&g.set, p));
    assert_false(ac_portset_has(&g.set, 71));
    assert_true(g.set.bits[0] == 0xf000000000000000ull);
    assert_true(g.set.bits[1] == 0x7full);
    assert_true(g.set.bits[2] == 0);
    assert_int_equal(count(&g.set), 11);

    /* A range spanning several whole words. */
    init_guarded(&g);
    ac_portset_add_range(&g.set, 100, 300);
    assert_int_equal(count(&g.set), 201);
    assert_true(g.set.bits[0] == 0);
    assert_true(g.set.bits[1] == ~0ull << 36);
    assert_true(g.set.bits[2] == ~0ull);
    assert_true(g.set.bits[3] == ~0ull);
    assert_true(g.set.bits[4] == (1ull << 45) - 1);
    assert_true(g.set.bits[5] == 0);
    assert_false(ac_portset_has(&g.set, 99));
    assert_false(ac_portset_has(&g.set, 301));
}

static void whole_port_space(void **state)
{
    (void)state;
    struct guarded g;
    init_guarded(&g);
    ac_portset_add_range(&g.set, 0, 65535);
    for (size_t i = 0; i < 1024; i++)
        assert_true(g.set.bits[i] == ~0ull);
    assert_false(g.set.all);
    assert_false(ac_portset_has(&g.set, 65536));
    assert_guard_intact(&g);
}

/* An upper bound past the port space must stop at 65535, not write past the array or wrap. */
static void range_clipped_at_65535(void **state)
{
    (void)state;
    struct guarded g;
    init_guarded(&g);
    ac_portset_add_range(&g.set, 65530, 70000);
    assert_int_equal(count(&g.set), 6);
    assert_true(ac_portset_has(&g.set, 65530));
    assert_true(ac_portset_has(&g.set, 65535));
    assert_false(ac_portset_has(&g.set, 65529));
    assert_guard_intact(&g);

    init_guarded(&g);
    ac_portset_add_range(&g.set, 65535, UINT_MAX);
    assert_int_equal(count(&g.set), 1);
    assert_guard_intact(&g);

    init_guarded(&g);
    ac_portset_add_range(&g.set, 65536, UINT_MAX);
    ac_portset_add_range(&g.set, UINT_MAX, UINT_MAX);
    assert_int_equal(count(&g.set), 0);
    assert_guard_intact(&g);
}

static void reversed_range_adds_nothing(void **state)
{
    (void)state;
    struct guarded g;
    init_guarded(&g);
    ac_portset_add_range(&g.set, 20, 10);
    assert_int_equal(count(&g.set), 0);
}

static void ranges_accumulate(void **state)
{
    (void)state;
    struct guarded g;
    init_guarded(&g);
    ac_portset_add_range(&g.set, 10, 12);
    ac_portset_add_range(&g.set, 11, 14);
    ac_portset_add_range(&g.set, 1000, 1000);
    assert_int_equal(count(&g.set), 6);
    assert_true(ac_portset_has(&g.set, 10));
    assert_true(ac_portset_has(&g.set, 14));
    assert_true(ac_portset_has(&g.set, 1000));
    assert_false(ac_portset_has(&g.set, 15));
}

/* `all` is "no filter": every number matches, even ones that are not ports. */
static void all_matches_everything(void **state)
{
    (void)state;
    struct guarded g;
    init_guarded(&g);
    g.set.all = true;
    assert_true(ac_portset_has(&g.set, 0));
    assert_true(ac_portset_has(&g.set, 1));
    assert_true(ac_portset_has(&g.set, 65535));
    assert_true(ac_portset_has(&g.set, 65536));
    assert_true(ac_portset_has(&g.set, UINT_MAX));
    g.set.all = false;
    assert_false(ac_portset_has(&g.set, 1));
}

/* Numbers beyond 65535 must never index the array, whatever bits happen to be set. */
static void out_of_range_never_matches(void **state)
{
    (void)state;
    struct guarded g;
    init_guarded(&g);
    memset(g.set.bits, 0xff, sizeof g.set.bits);
    g.guard[0] = ~0ull;
    assert_false(ac_portset_has(&g.set, 65536));
    assert_false(ac_portset_has(&g.set, 65536 + 64));
    assert_false(ac_portset_has(&g.set, UINT_MAX));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(empty_set_has_nothing),      cmocka_unit_test(single_ports_at_the_edges),
        cmocka_unit_test(range_across_word_boundary), cmocka_unit_test(whole_port_space),
        cmocka_unit_test(range_clipped_at_65535),     cmocka_unit_test(reversed_range_adds_nothing),
        cmocka_unit_test(ranges_accumulate),          cmocka_unit_test(all_matches_everything),
        cmocka_unit_test(out_of_range_never_matches),
    };
    return cmocka_run_group_tests_name("ports", tests, NULL, NULL);
}
