/*
 * The tracker's allocator. The tracker and uthash rely on blocks coming back zeroed (uthash
 * does not clear its handle), on two live blocks never overlapping, and on a freed block being
 * handed out again only for a request of its own size class.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "autoclose.h"

static void assert_zero(const void *p, size_t size)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < size; i++)
        if (b[i] != 0)
            fail_msg("byte %zu of a %zu-byte block is 0x%02x", i, size, b[i]);
}

static void small_blocks_zeroed(void **state)
{
    (void)state;
    for (size_t size = 1; size <= 256; size++) {
        unsigned char *p = ac_arena_alloc(size);
        assert_non_null(p);
        assert_zero(p, size);
        memset(p, 0xab, size);
    }
}

/* The free list keeps its link in the block: a reused block must be cleared of that too. */
static void reuse_after_free_is_zeroed(void **state)
{
    (void)state;
    for (size_t size = 1; size <= 256; size += 5) {
        unsigned char *p = ac_arena_alloc(size);
        assert_non_null(p);
        memset(p, 0xcd, size);
        ac_arena_free(p, size);
        unsigned char *q = ac_arena_alloc(size);
        assert_ptr_equal(q, p);
        assert_zero(q, size);
    }
    /* Several freed, all reused, all zeroed. */
    void *blocks[8];
    for (int i = 0; i < 8; i++) {
        blocks[i] = ac_arena_alloc(48);
        memset(blocks[i], 0xee, 48);
    }
    for (int i = 0; i < 8; i++)
        ac_arena_free(blocks[i], 48);
    for (int i = 0; i < 8; i++) {
        void *p = ac_arena_alloc(48);
        bool found = false;
        for (int j = 0; j < 8; j++)
            found |= p == blocks[j];
        assert_true(found);
        assert_zero(p, 48);
    }
}

static int by_address(const void *a, const void *b)
{
    const void *const *pa = a, *const *pb = b;
    uintptr_t x = (uintptr_t)*pa, y = (uintptr_t)*pb;
    return x < y ? -1 : x > y;
}

/* More blocks than one 64 KiB chunk holds, so the allocator moves on to a second chunk. */
static void distinct_blocks_do_not_overlap(void **state)
{
    (void)state;
    enum { N = 600 };
    static const size_t sizes[] = {24, 200, 256};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t size = sizes[s];
        static unsigned char *blocks[N];
        for (int i = 0; i < N; i++) {
            blocks[i] = ac_arena_alloc(size);
            assert_non_null(blocks[i]);
            assert_zero(blocks[i], size);
            memset(blocks[i], i & 0xff, size);
        }
        for (int i = 0; i < N; i++)
            for (size_t k = 0; k < size; k++)
                if (blocks[i][k] != (i & 0xff))
                    fail_msg("block %d of %zu bytes was overwritten at byte %zu", i, size, k);
        qsort(blocks, N, sizeof blocks[0], by_address);
        for (int i = 1; i < N; i++)
            assert_true((uintptr_t)blocks[i] - (uintptr_t)blocks[i - 1] >= size);
        for (int i = 0; i < N; i++)
            ac_arena_free(blocks[i], size);
    }
}

/* A block freed at one size must not come back for a bigger request. */
static void free_lists_kept_by_size(void **state)
{
    (void)state;
    void *small = ac_arena_alloc(16);
    ac_arena_free(small, 16);
    void *bigger = ac_arena_alloc(17);
    assert_ptr_not_equal(bigger, small);
    void *big = ac_arena_alloc(200);
    assert_ptr_not_equal(big, small);
    assert_ptr_equal(ac_arena_alloc(16), small);
}

/* Past 256 bytes a block is its own mapping: page-aligned, zeroed, all of it writable. */
static void large_blocks(void **state)
{
    (void)state;
    static const size_t sizes[] = {257, 4096, 4097, 100000, 1 << 20};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t size = sizes[s];
        unsigned char *p = ac_arena_alloc(size);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 4096, 0);
        assert_zero(p, size);
        memset(p, 0x77, size);
        unsigned char *q = ac_arena_alloc(size);
        assert_non_null(q);
        assert_true(q + size <= p || p + size <= q);
        assert_zero(q, size);
        ac_arena_free(p, size);
        ac_arena_free(q, size);
        p = ac_arena_alloc(size);
        assert_non_null(p);
        assert_zero(p, size);
        ac_arena_free(p, size);
    }
}

static void size_zero(void **state)
{
    (void)state;
    unsigned char *a = ac_arena_alloc(0);
    unsigned char *b = ac_arena_alloc(0);
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_not_equal(a, b);
    assert_int_equal(a[0], 0);
    a[0] = 1;
    b[0] = 2;
    assert_int_equal(a[0], 1);
    ac_arena_free(a, 0);
    unsigned char *c = ac_arena_alloc(0);
    assert_ptr_equal(c, a);
    assert_int_equal(c[0], 0);
    ac_arena_free(NULL, 0);
    ac_arena_free(NULL, 100000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(small_blocks_zeroed),
        cmocka_unit_test(reuse_after_free_is_zeroed),
        cmocka_unit_test(distinct_blocks_do_not_overlap),
        cmocka_unit_test(free_lists_kept_by_size),
        cmocka_unit_test(large_blocks),
        cmocka_unit_test(size_zero),
    };
    return cmocka_run_group_tests_name("arena", tests, NULL, NULL);
}
