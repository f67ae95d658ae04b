/*
 * The deadline heap. The tracker withdraws an entry by the index `place` last reported, so a
 * single stale index would remove the wrong connection's deadline: every test checks every
 * item's index against the array after every operation, not just the pop order.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "autoclose.h"

struct item {
    uint64_t deadline;
    uint32_t index; /* what `place` said last */
    int id;
};

static unsigned long place_calls;

static void place(void *p, uint32_t index)
{
    ((struct item *)p)->index = index;
    place_calls++;
}

static uint64_t deadline_of(const void *p)
{
    return ((const struct item *)p)->deadline;
}

static struct ac_heap new_heap(void)
{
    return (struct ac_heap){.place = place, .deadline = deadline_of};
}

/* The item at index i of the array. */
static struct item *at(const struct ac_heap *h, uint32_t i)
{
    return h->items[i];
}

static void init_items(struct item *items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        items[i] = (struct item){.index = UINT32_MAX, .id = (int)i};
}

/* A fixed sequence, the same on every libc. */
static uint64_t rng_state;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* The heap property, every node's item knowing its index, and every item outside the heap
 * knowing it is outside. */
static void check_heap(const struct ac_heap *h, const struct item *items, size_t n)
{
    size_t in_heap = 0;
    for (uint32_t i = 0; i < h->len; i++) {
        const struct item *it = at(h, i);
        if (it->index != i)
            fail_msg("item %d at index %u believes it is at %u", it->id, i, it->index);
        if (i > 0 && at(h, (i - 1) / 2)->deadline > it->deadline)
            fail_msg("heap order broken at index %u", i);
    }
    for (size_t i = 0; i < n; i++) {
        if (items[i].index != UINT32_MAX) {
            in_heap++;
            if (items[i].index >= h->len || at(h, items[i].index) != &items[i])
                fail_msg("item %d claims index %u, which holds something else", items[i].id,
                         items[i].index);
        }
    }
    assert_int_equal(in_heap, h->len);
}

static void push(struct ac_heap *h, struct item *it, uint64_t deadline)
{
    it->deadline = deadline;
    assert_true(ac_heap_push(h, it));
}

static void peek_and_pop_empty(void **state)
{
    (void)state;
    struct ac_heap h = new_heap();
    uint64_t deadline = 12345;
    assert_null(ac_heap_peek(&h, &deadline));
    assert_int_equal(deadline, 12345);
    assert_null(ac_heap_peek(&h, NULL));
    assert_null(ac_heap_pop(&h));
    assert_int_equal(h.len, 0);

    /* Emptied again after use: the same answers. */
    struct item it;
    init_items(&it, 1);
    push(&h, &it, 7);
    assert_ptr_equal(ac_heap_pop(&h), &it);
    assert_null(ac_heap_peek(&h, &deadline));
    assert_null(ac_heap_pop(&h));
    assert_int_equal(it.index, UINT32_MAX);
    ac_heap_free(&h);
}

static void peek_returns_minimum(void **state)
{
    (void)state;
    struct ac_heap h = new_heap();
    struct item items[4];
    init_items(items, 4);
    push(&h, &items[0], 300);
    push(&h, &items[1], 100);
    push(&h, &items[2], 200);
    push(&h, &items[3], 100);
    uint64_t deadline = 0;
    struct item *top = ac_heap_peek(&h, &deadline);
    assert_int_equal(deadline, 100);
    assert_true(top == &items[1] || top == &items[3]);
    assert_int_equal(top->index, 0);
    assert_int_equal(h.len, 4); /* peek takes nothing */
    check_heap(&h, items, 4);
    ac_heap_free(&h);
}

static void random_pushes_pop_in_order(void **state)
{
    (void)state;
    enum { N = 1000 };
    static struct item items[N];
    static bool popped[N];
    struct ac_heap h = new_heap();
    init_items(items, N);
    memset(popped, 0, sizeof popped);
    rng_state = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < N; i++) {
        push(&h, &items[i], rng() % 500); /* many equal deadlines */
        check_heap(&h, items, N);
    }
    assert_int_equal(h.len, N);
    uint64_t last = 0;
    for (size_t i = 0; i < N; i++) {
        uint64_t top_deadline;
        struct item *top = ac_heap_peek(&h, &top_deadline);
        struct item *it = ac_heap_pop(&h);
        assert_non_null(it);
        assert_ptr_equal(it, top);
        assert_int_equal(it->deadline, top_deadline);
        assert_true(it->deadline >= last);
        last = it->deadline;
        assert_int_equal(it->index, UINT32_MAX);
        assert_false(popped[it->id]);
        popped[it->id] = true;
        check_heap(&h, items, N);
    }
    assert_int_equal(h.len, 0);
    assert_null(ac_heap_pop(&h));
    ac_heap_free(&h);
}

/* Extreme deadlines: UINT64_MAX is the tracker's "never" and must still sort last. */
static void extreme_deadlines(void **state)
{
    (void)state;
    struct ac_heap h = new_heap();
    struct item items[5];
    init_items(items, 5);
    push(&h, &items[0], UINT64_MAX);
    push(&h, &items[1], 0);
    push(&h, &items[2], UINT64_MAX - 1);
    push(&h, &items[3], 1ull << 63);
    push(&h, &items[4], 1);
    static const int order[] = {1, 4, 3, 2, 0};
    for (size_t i = 0; i < 5; i++) {
        struct item *it = ac_heap_pop(&h);
        assert_int_equal(it->id, order[i]);
        check_heap(&h, items, 5);
    }
    ac_heap_free(&h);
}

static void remove_first_and_last(void **state)
{
    (void)state;
    struct ac_heap h = new_heap();
    struct item items[10];
    init_items(items, 10);
    for (int i = 0; i < 10; i++)
        push(&h, &items[i], (uint64_t)(10 - i) * 10);
    check_heap(&h, items, 10);

    struct item *last = at(&h, h.len - 1);
    ac_heap_remove(&h, h.len - 1);
    assert_int_equal(h.len, 9);
    assert_int_equal(last->index, UINT32_MAX);
    check_heap(&h, items, 10);

    struct item *first = at(&h, 0);
    assert_int_equal(first->deadline, 10);
    ac_heap_remove(&h, 0);
    assert_int_equal(first->index, UINT32_MAX);
    assert_int_equal(h.len, 8);
    check_heap(&h, items, 10);
    uint64_t deadline, want = UINT64_MAX;
    for (int i = 0; i < 10; i++)
        if (items[i].index != UINT32_MAX && items[i].deadline < want)
            want = items[i].deadline;
    ac_heap_peek(&h, &deadline);
    assert_int_equal(deadline, want);
    assert_true(deadline > 10);

    /* The only item left: removing index 0 of a one-item heap. */
    while (h.len > 1)
        ac_heap_remove(&h, h.len - 1);
    struct item *only = at(&h, 0);
    ac_heap_remove(&h, 0);
    assert_int_equal(h.len, 0);
    assert_int_equal(only->index, UINT32_MAX);
    check_heap(&h, items, 10);
    ac_heap_free(&h);
}

/* The replacement for a removed node can be smaller than the removed node's parent; only a
 * sift up puts it right. Pushed in this order the array is exactly [1,10,2,11,12,3,4]. */
static void remove_needs_sift_up(void **state)
{
    (void)state;
    static const uint64_t d[] = {1, 10, 2, 11, 12, 3, 4};
    struct ac_heap h = new_heap();
    struct item items[7];
    init_items(items, 7);
    for (int i = 0; i < 7; i++)
        push(&h, &items[i], d[i]);
    for (uint32_t i = 0; i < 7; i++)
        assert_int_equal(at(&h, i)->deadline, d[i]);

    ac_heap_remove(&h, items[4].index); /* 12, under 10; the last node, 4, takes its place */
    static const uint64_t want[] = {1, 4, 2, 11, 10, 3};
    assert_int_equal(h.len, 6);
    for (uint32_t i = 0; i < 6; i++)
        assert_int_equal(at(&h, i)->deadline, want[i]);
    assert_int_equal(items[6].index, 1);
    assert_int_equal(items[1].index, 4);
    assert_int_equal(items[4].index, UINT32_MAX);
    check_heap(&h, items, 7);
    ac_heap_free(&h);
}

static void remove_from_middle_by_item_index(void **state)
{
    (void)state;
    enum { N = 300 };
    static struct item items[N];
    struct ac_heap h = new_heap();
    init_items(items, N);
    rng_state = 12345;
    for (size_t i = 0; i < N; i++)
        push(&h, &items[i], rng() % 1000);
    /* The tracker's way: withdraw an item by the index it was told. Every third item goes. */
    for (size_t i = 0; i < N; i += 3) {
        uint32_t len = h.len;
        ac_heap_remove(&h, items[i].index);
        assert_int_equal(h.len, len - 1);
        assert_int_equal(items[i].index, UINT32_MAX);
        check_heap(&h, items, N);
    }
    uint64_t last = 0;
    size_t popped = 0;
    struct item *it;
    while ((it = ac_heap_pop(&h)) != NULL) {
        assert_true(it->id % 3 != 0);
        assert_true(it->deadline >= last);
        last = it->deadline;
        popped++;
    }
    assert_int_equal(popped, N - (N + 2) / 3);
    ac_heap_free(&h);
}

static void remove_out_of_range_is_ignored(void **state)
{
    (void)state;
    struct ac_heap h = new_heap();
    struct item items[3];
    init_items(items, 3);
    ac_heap_remove(&h, 0); /* empty heap */
    ac_heap_remove(&h, UINT32_MAX);
    for (int i = 0; i < 3; i++)
        push(&h, &items[i], (uint64_t)i);
    unsigned long calls = place_calls;
    ac_heap_remove(&h, 3);
    ac_heap_remove(&h, UINT32_MAX); /* what an item outside the heap holds */
    assert_int_equal(h.len, 3);
    assert_int_equal(place_calls, calls);
    check_heap(&h, items, 3);
    ac_heap_free(&h);
}

static void random_mixed_operations(void **state)
{
    (void)state;
    enum { N = 400 };
    static struct item items[N];
    struct ac_heap h = new_heap();
    init_items(items, N);
    rng_state = 0xdeadbeefcafef00dull;
    for (int step = 0; step < 5000; step++) {
        struct item *it = &items[rng() % N];
        unsigned op = (unsigned)(rng() % 3);
        if (it->index == UINT32_MAX) {
            push(&h, it, rng() % 256);
        } else if (op == 0) {
            ac_heap_remove(&h, it->index);
            assert_int_equal(it->index, UINT32_MAX);
        } else if (op == 1) {
            uint64_t min;
            struct item *top = ac_heap_peek(&h, &min);
            struct item *got = ac_heap_pop(&h);
            assert_ptr_equal(got, top);
            for (uint32_t i = 0; i < h.len; i++)
                assert_true(at(&h, i)->deadline >= min);
        }
        check_heap(&h, items, N);
    }
    ac_heap_free(&h);
}

/* Past the first allocation of 64 nodes the array is reallocated many times over; the copy
 * must keep every node, and the indices told before the move stay right. */
static void growth_to_ten_thousand(void **state)
{
    (void)state;
    enum { N = 10000 };
    static struct item items[N];
    struct ac_heap h = new_heap();
    init_items(items, N);
    rng_state = 42;
    for (size_t i = 0; i < N; i++) {
        push(&h, &items[i], rng() % 100000);
        if (i == 0)
            assert_int_equal(h.cap, 64);
        if (i == 64 || i == 65 || i % 1000 == 999)
            check_heap(&h, items, N);
    }
    assert_int_equal(h.len, N);
    assert_true(h.cap >= N);
    check_heap(&h, items, N);
    uint64_t last = 0;
    for (size_t i = 0; i < N; i++) {
        struct item *it = ac_heap_pop(&h);
        assert_non_null(it);
        assert_true(it->deadline >= last);
        last = it->deadline;
    }
    assert_null(ac_heap_pop(&h));
    ac_heap_free(&h);
}

static void free_resets_and_heap_is_reusable(void **state)
{
    (void)state;
    struct ac_heap h = new_heap();
    struct item items[100];
    init_items(items, 100);
    for (int i = 0; i < 100; i++)
        push(&h, &items[i], (uint64_t)(100 - i));
    assert_true(h.cap >= 100);
    ac_heap_free(&h);
    assert_null(h.items);
    assert_int_equal(h.len, 0);
    assert_int_equal(h.cap, 0);
    assert_null(ac_heap_peek(&h, NULL));
    ac_heap_free(&h); /* twice is harmless: the tracker's reset may find it empty */

    init_items(items, 100);
    push(&h, &items[5], 9);
    push(&h, &items[6], 3);
    assert_int_equal(h.cap, 64);
    assert_ptr_equal(ac_heap_pop(&h), &items[6]);
    assert_ptr_equal(ac_heap_pop(&h), &items[5]);
    ac_heap_free(&h);
}

/* ac_sort_u32 against a counting check: every size from 0 to 300 and a large one, with many
 * duplicates, extremes, and input already sorted or reversed; the result is ascending and a
 * permutation of the input. */
static void check_sorted(const uint32_t *in, uint32_t *v, size_t n)
{
    ac_sort_u32(v, n);
    for (size_t i = 1; i < n; i++)
        if (v[i - 1] > v[i])
            fail_msg("n=%zu: v[%zu]=%u > v[%zu]=%u", n, i - 1, v[i - 1], i, v[i]);
    uint64_t sum_in = 0, sum_out = 0, xor_in = 0, xor_out = 0;
    for (size_t i = 0; i < n; i++) {
        sum_in += in[i];
        sum_out += v[i];
        xor_in ^= (uint64_t)in[i] * 0x9e3779b97f4a7c15ull;
        xor_out ^= (uint64_t)v[i] * 0x9e3779b97f4a7c15ull;
    }
    assert_int_equal(sum_in, sum_out);
    assert_int_equal(xor_in, xor_out);
}

static void sort_u32_sorts(void **state)
{
    (void)state;
    enum { BIG = 20000 };
    static uint32_t in[BIG], v[BIG];
    rng_state = 0x0123456789abcdefull;
    for (size_t n = 0; n <= 300; n++) {
        for (size_t i = 0; i < n; i++)
            in[i] = n % 3 == 0 ? (uint32_t)(rng() % 7) : (uint32_t)rng();
        if (n % 5 == 1 && n > 0) {
            in[0] = UINT32_MAX;
            in[n - 1] = 0;
        }
        memcpy(v, in, n * sizeof *v);
        check_sorted(in, v, n);
    }
    for (size_t i = 0; i < BIG; i++)
        in[i] = (uint32_t)rng();
    memcpy(v, in, sizeof v);
    check_sorted(in, v, BIG);
    memcpy(in, v, sizeof v); /* already sorted */
    check_sorted(in, v, BIG);
    for (size_t i = 0; i < BIG; i++)
        in[i] = v[BIG - 1 - i]; /* reversed */
    memcpy(v, in, sizeof v);
    check_sorted(in, v, BIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(peek_and_pop_empty),
        cmocka_unit_test(peek_returns_minimum),
        cmocka_unit_test(random_pushes_pop_in_order),
        cmocka_unit_test(extreme_deadlines),
        cmocka_unit_test(remove_first_and_last),
        cmocka_unit_test(remove_needs_sift_up),
        cmocka_unit_test(remove_from_middle_by_item_index),
        cmocka_unit_test(remove_out_of_range_is_ignored),
        cmocka_unit_test(random_mixed_operations),
        cmocka_unit_test(growth_to_ten_thousand),
        cmocka_unit_test(free_resets_and_heap_is_reusable),
        cmocka_unit_test(sort_u32_sorts),
    };
    return cmocka_run_group_tests_name("heap", tests, NULL, NULL);
}
