/*
 * The deadline order: a binary min-heap. The timer needs the earliest deadline in O(1), and the
 * application's close must be able to withdraw any entry in O(log n), so every item is told its
 * position (through `place`) whenever it moves.
 */
#include "autoclose.h"

#include <string.h>

static void set(struct ac_heap *h, uint32_t i, struct ac_heap_node node)
{
    h->nodes[i] = node;
    h->place(node.item, i);
}

static void sift_up(struct ac_heap *h, uint32_t i)
{
    struct ac_heap_node node = h->nodes[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (h->nodes[parent].deadline_ms <= node.deadline_ms)
            break;
        set(h, i, h->nodes[parent]);
        i = parent;
    }
    set(h, i, node);
}

static void sift_down(struct ac_heap *h, uint32_t i)
{
    struct ac_heap_node node = h->nodes[i];
    for (;;) {
        uint32_t child = 2 * i + 1;
        if (child >= h->len)
            break;
        if (child + 1 < h->len && h->nodes[child + 1].deadline_ms < h->nodes[child].deadline_ms)
            child++;
        if (node.deadline_ms <= h->nodes[child].deadline_ms)
            break;
        set(h, i, h->nodes[child]);
        i = child;
    }
    set(h, i, node);
}

bool ac_heap_push(struct ac_heap *h, uint64_t deadline_ms, void *item)
{
    if (h->len == h->cap) {
        /* Half again, not double: the array's slack is part of each connection's cost. */
        uint32_t cap = h->cap ? h->cap + h->cap / 2 : 64;
        struct ac_heap_node *nodes = ac_arena_alloc(cap * sizeof *nodes);
        if (nodes == NULL)
            return false;
        if (h->len)
            memcpy(nodes, h->nodes, h->len * sizeof *nodes);
        ac_arena_free(h->nodes, h->cap * sizeof *nodes);
        h->nodes = nodes;
        h->cap = cap;
    }
    h->nodes[h->len] = (struct ac_heap_node){deadline_ms, item};
    sift_up(h, h->len++);
    return true;
}

void *ac_heap_peek(const struct ac_heap *h, uint64_t *deadline_ms)
{
    if (h->len == 0)
        return NULL;
    if (deadline_ms)
        *deadline_ms = h->nodes[0].deadline_ms;
    return h->nodes[0].item;
}

void ac_heap_remove(struct ac_heap *h, uint32_t i)
{
    if (i >= h->len)
        return;
    void *item = h->nodes[i].item;
    uint64_t removed = h->nodes[i].deadline_ms;
    h->len--;
    if (i != h->len) {
        set(h, i, h->nodes[h->len]);
        if (h->nodes[i].deadline_ms < removed)
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
    ac_arena_free(h->nodes, h->cap * sizeof *h->nodes);
    h->nodes = NULL;
    h->len = h->cap = 0;
}
