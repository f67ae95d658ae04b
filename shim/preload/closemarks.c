/*
 * musl only: the marks of the closes a thread has in flight (AC_CLOSE_MARK), kept in slots of
 * the thread's own, so that no record of ours sits on musl's cleanup list, where a signal
 * handler's siglongjmp out of a blocking close would leave it pointing into a dead frame. A
 * return frees its slot; a cancelled thread's mark, or one a siglongjmp abandoned, stays in its
 * slot until the thread exits, when the key's destructor ends it (musl runs destructors after
 * the cancellation's cleanup handlers). Until then the timer leaves that number alone, as it
 * must while a close of it may be under way.
 *
 * Async-signal-safe: a handler that closes while the thread is inside close takes another slot
 * and frees it before the interrupted code runs again.
 */
#include "autoclose.h"

#if !AC_GLIBC

#include <errno.h>

#define AC_CLOSE_SLOTS 8

/* fd + 1 per slot; 0: free. */
static __thread int close_slots[AC_CLOSE_SLOTS];
static __thread bool destructor_armed;
static pthread_key_t marks_key;
static bool marks_key_made;

/* At the thread's exit: every mark still held ends. */
static void end_abandoned_marks(void *unused)
{
    (void)unused;
    for (int i = 0; i < AC_CLOSE_SLOTS; i++) {
        if (close_slots[i] != 0) {
            ac_closing_end(close_slots[i] - 1);
            close_slots[i] = 0;
        }
    }
}

void ac_close_marks_init(void)
{
    marks_key_made = pthread_key_create(&marks_key, end_abandoned_marks) == 0;
}

int ac_close_mark_take(int fd)
{
    int slot = -1;
    if (fd >= 0) {
        for (int i = 0; i < AC_CLOSE_SLOTS; i++) {
            if (close_slots[i] == 0) {
                close_slots[i] = fd + 1;
                slot = i;
                break;
            }
        }
    }
    /* A key's destructor runs only for a thread that gave it a value: once per thread, no system
     * call, no allocation (musl keeps the values in the thread's descriptor). */
    if (slot >= 0 && !destructor_armed && marks_key_made) {
        int saved = errno;
        destructor_armed = pthread_setspecific(marks_key, &destructor_armed) == 0;
        errno = saved;
    }
    __atomic_signal_fence(__ATOMIC_SEQ_CST); /* the slot is written before the mark counts */
    ac_closing_begin(fd);
    return slot;
}

void ac_close_mark_give(int fd, int slot)
{
    ac_closing_end(fd);
    if (slot >= 0)
        close_slots[slot] = 0;
}

#endif
