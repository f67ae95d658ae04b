/*
 * The sweep's compact inode set: every member must be found, no non-member may be, at the
 * extremes of the 32-bit range too, and sequential inodes must cost about a byte each (the
 * reason the set exists).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>

#include "autoclose.h"

static int compare_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Asks about every value from `lo` to `hi` in order, and checks each answer against `v`. */
static void check_range(const struct ac_inode_set *set, const uint32_t *v, size_t n, uint32_t lo,
                        uint32_t hi)
{
    struct ac_inode_cursor c;
    ac_inode_cursor_start(&c, set);
    for (uint64_t x = lo; x <= hi; x++) {
        uint32_t ino = (uint32_t)x;
        bool member = n > 0 && bsearch(&ino, v, n, sizeof ino, compare_u32) != NULL;
        assert_int_equal(ac_inode_cursor_has(&c, ino), member);
    }
}

static void empty_set_has_nothing(void **state)
{
    (void)state;
    struct ac_inode_set set = {0};
    struct ac_inode_cursor c;
    ac_inode_cursor_start(&c, &set);
    assert_false(ac_inode_cursor_has(&c, 0));
    assert_false(ac_inode_cursor_has(&c, 12345));
    assert_true(ac_inode_set_assign(&set, NULL, 0));
    assert_int_equal(set.count, 0);
    assert_null(set.bytes);
    ac_inode_cursor_start(&c, &set);
    assert_false(ac_inode_cursor_has(&c, 0));
}

static void extremes_and_duplicates(void **state)
{
    (void)state;
    static const uint32_t v[] = {0,     1,       1,       127,         128,         16383,
                                 16384, 2097151, 2097152, 0x7fffffffu, 0xfffffffeu, 0xffffffffu};
    size_t n = sizeof v / sizeof *v;
    struct ac_inode_set set = {0};
    assert_true(ac_inode_set_assign(&set, v, n));
    assert_int_equal(set.count, n);
    struct ac_inode_cursor c;
    ac_inode_cursor_start(&c, &set);
    for (size_t i = 0; i < n; i++)
        assert_true(ac_inode_cursor_has(&c, v[i])); /* a repeated question is answered again */
    ac_inode_cursor_start(&c, &set);
    assert_false(ac_inode_cursor_has(&c, 2));
    assert_false(ac_inode_cursor_has(&c, 126));
    assert_true(ac_inode_cursor_has(&c, 127));
    assert_false(ac_inode_cursor_has(&c, 2097150));
    assert_false(ac_inode_cursor_has(&c, 0xfffffffdu));
    assert_true(ac_inode_cursor_has(&c, 0xffffffffu));
    check_range(&set, v, n, 0, 20000);
    check_range(&set, v, n, 0xffff0000u, 0xffffffffu);
    ac_inode_set_clear(&set);
    assert_null(set.bytes);
    assert_int_equal(set.count, 0);
}

static void random_sets_against_bsearch(void **state)
{
    (void)state;
    srand(7);
    enum { N = 5000 };
    static uint32_t v[N];
    for (int round = 0; round < 20; round++) {
        size_t n = (size_t)rand() % N;
        uint32_t spread = round % 2 ? 3 : 40; /* dense and sparse */
        uint32_t base = (uint32_t)rand() * 2654435761u;
        for (size_t i = 0; i < n; i++)
            v[i] = base + (uint32_t)rand() % (spread * (uint32_t)(n + 1));
        qsort(v, n, sizeof *v, compare_u32);
        if (n > 0 && v[0] > v[n - 1])
            continue; /* wrapped past 2^32: not a sorted list */
        struct ac_inode_set set = {0};
        assert_true(ac_inode_set_assign(&set, v, n));
        uint32_t lo = n ? v[0] - (v[0] > 5 ? 5 : v[0]) : 0;
        uint32_t hi = n ? v[n - 1] : 100;
        check_range(&set, v, n, lo, hi);
        ac_inode_set_clear(&set);
    }
}

/* Reassigning replaces the members; nothing of the old set remains. */
static void assign_replaces(void **state)
{
    (void)state;
    uint32_t a[] = {10, 20, 30}, b[] = {15, 25};
    struct ac_inode_set set = {0};
    assert_true(ac_inode_set_assign(&set, a, 3));
    assert_true(ac_inode_set_assign(&set, b, 2));
    check_range(&set, b, 2, 0, 40);
    ac_inode_set_clear(&set);
}

/* What the set is for: 50,000 inodes handed out nearly in sequence cost about a byte each. */
static void sequential_inodes_cost_a_byte(void **state)
{
    (void)state;
    enum { N = 50000 };
    static uint32_t v[N];
    uint32_t ino = 3000000000u;
    for (size_t i = 0; i < N; i++) {
        ino += 1 + (i % 7 == 0 ? 3 : 0);
        v[i] = ino;
    }
    struct ac_inode_set set = {0};
    assert_true(ac_inode_set_assign(&set, v, N));
    assert_true(set.len <= N + 5); /* the first gap takes 5 bytes, every other one 1 */
    assert_true(set.mapped < N * sizeof(uint32_t) / 3);
    check_range(&set, v, N, v[0] - 10, v[N - 1]);
    ac_inode_set_clear(&set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(empty_set_has_nothing),         cmocka_unit_test(extremes_and_duplicates),
        cmocka_unit_test(random_sets_against_bsearch),   cmocka_unit_test(assign_replaces),
        cmocka_unit_test(sequential_inodes_cost_a_byte),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
