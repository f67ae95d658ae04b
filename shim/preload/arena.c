/*
 * Memory for the tracker, taken straight from the kernel with mmap.
 *
 * Why not malloc: the tracker is fed from wrappers that a signal handler may call, and malloc
 * is not async-signal-safe (a handler that interrupts malloc and re-enters it deadlocks). mmap
 * is a plain system call. Small blocks come from 64 KiB chunks kept on per-size free lists;
 * large ones (hash bucket arrays, the deadline heap) get their own mapping.
 *
 * Not locked itself: every caller holds the tracker lock.
 */
#include "autoclose.h"

#include <string.h>
#include <sys/mman.h>

/* Fine steps: a tracked connection's 72 bytes in a 32-bit program must not round up to 96. */
#define SMALL_STEP 8u
#define SMALL_MAX  256u
#define CHUNK_SIZE (64u * 1024u)
#define CLASSES    (SMALL_MAX / SMALL_STEP)

struct free_block {
    struct free_block *next;
};

static struct free_block *free_lists[CLASSES];
static char *chunk_next, *chunk_end;

static size_t class_of(size_t size)
{
    return (size + SMALL_STEP - 1) / SMALL_STEP - 1;
}

static void *map(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static size_t page_round(size_t size)
{
    return (size + 4095u) & ~(size_t)4095u;
}

void *ac_arena_alloc(size_t size)
{
    if (size == 0)
        size = 1;
    if (size > SMALL_MAX)
        return map(page_round(size)); /* fresh anonymous pages are zero */

    size_t cls = class_of(size), block = (cls + 1) * SMALL_STEP;
    struct free_block *b = free_lists[cls];
    if (b != NULL) {
        free_lists[cls] = b->next;
        memset(b, 0, block);
        return b;
    }
    if (chunk_next == NULL || (size_t)(chunk_end - chunk_next) < block) {
        /* The tail of the old chunk (< 256 bytes) is abandoned: simpler than splitting it. */
        chunk_next = map(CHUNK_SIZE);
        if (chunk_next == NULL)
            return NULL;
        chunk_end = chunk_next + CHUNK_SIZE;
    }
    void *p = chunk_next;
    chunk_next += block;
    return p;
}

void ac_arena_free(void *p, size_t size)
{
    if (p == NULL)
        return;
    if (size == 0)
        size = 1;
    if (size > SMALL_MAX) {
        munmap(p, page_round(size));
        return;
    }
    struct free_block *b = p;
    size_t cls = class_of(size);
    b->next = free_lists[cls];
    free_lists[cls] = b;
}
