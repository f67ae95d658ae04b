/*
 * The deadline order: a binary min-heap. The timer needs the earliest deadline in O(1), and the
 * application's close must be able to withdraw any entry in O(log n), so every item is told its
 * position (through `place`) whenever it moves.
 *
 * The array holds only pointers; each item carries its own deadline, read through `deadline`.
 * Eight bytes a node instead of sixteen: the array and its slack are part of each tracked
 * connection's memory, a published figure.
 *
 * The same sift, on plain numbers, sorts the sweep's inode lists (ac_sort_u32).
 */
#include "autoclose.h"

#include <string.h>

static void set(struct ac_heap *h, uint32_t i, void *item)
{
    h->items[i] = item;
    h->place(item, i);
}

static uint64_t key(const struct ac_heap *h, uint32_t i)
{
    return h->deadline(h->items[i]);
}

static void sift_up(struct ac_heap *h, uint32_t i)
{
    void *item = h->items[i];
    uint64_t deadline = h->deadline(item);
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (key(h, parent) <= deadline)
            break;
        set(h, i, h->items[parent]);
        i = parent;
    }
    set(h, i, item);
}

static void sift_down(struct ac_heap *h, uint32_t i)
{
    void *item = h->items[i];
    uint64_t deadline = h->deadline(item);
    for (;;) {
        uint32_t child = 2 * i + 1;
        if (child >= h->len)
            break;
        uint64_t child_key = key(h, child);
        if (child + 1 < h->len) {
            uint64_t right_key = key(h, child + 1);
            if (right_key < child_key) {
                child++;
                child_key = right_key;
            }
        }
        if (deadline <= child_key)
            break;
        set(h, i, h->items[child]);
        i = child;
    }
    set(h, i, item);
}

bool ac_heap_push(struct ac_heap *h, void *item)
{
    if (h->len == h->cap) {
        /* Half again, not double: the array's slack is part of each connection's cost. */
        uint32_t cap = h->cap ? h->cap + h->cap / 2 : 64;
        void **items = ac_arena_alloc(cap * sizeof *items);
        if (items == NULL)
            return false;
        if (h->len)
            memcpy(items, h->items, h->len * sizeof *items);
        ac_arena_free(h->items, h->cap * sizeof *items);
        h->items = items;
        h->cap = cap;
    }
    h->items[h->len] = item;
    sift_up(h, h->len++);
    return true;
}

void *ac_heap_peek(const struct ac_heap *h, uint64_t *deadline_ms)
{
    if (h->len == 0)
        return NULL;
    if (deadline_ms)
        *deadline_ms = key(h, 0);
    return h->items[0];
}

void ac_heap_remove(struct ac_heap *h, uint32_t i)
{
    if (i >= h->len)
        return;
    void *item = h->items[i];
    uint64_t removed = key(h, i);
    h->len--;
    if (i != h->len) {
        set(h, i, h->items[h->len]);
        if (key(h, i) < removed)
            sift_up(h, i);
        else
            sift_down(h, i);
    }
    h->place(item, UINT32_MAX);
}

void *ac_heap_pop(struct ac_heap *h)
{
    void *item = ac_heap_peek(h, NULL);
    if (item)
        ac_heap_remove(h, 0);
    return item;
}

void ac_heap_free(struct ac_heap *h)
{
    ac_arena_free(h->items, h->cap * sizeof *h->items);
    h->items = NULL;
    h->len = h->cap = 0;
}

/* ac_sort_u32: a heapsort, in place. */
static void sift_down_u32(uint32_t *v, size_t root, size_t n)
{
    uint32_t x = v[root];
    for (size_t child; (child = 2 * root + 1) < n; root = child) {
        if (child + 1 < n && v[child + 1] > v[child])
            child++;
        if (x >= v[child])
            break;
        v[root] = v[child];
    }
    v[root] = x;
}

void ac_sort_u32(uint32_t *v, size_t n)
{
    for (size_t i = n / 2; i-- > 0;)
        sift_down_u32(v, i, n);
    for (size_t end = n; end-- > 1;) {
        uint32_t top = v[0];
        v[0] = v[end];
        v[end] = top;
        sift_down_u32(v, 0, end);
    }
}
