/*
 * EOF notes: what a wrapper does when a read returns 0 or readiness reports a FIN.
 *
 * A correct server closes its connection soon after the EOF, and that must cost it nothing. So
 * the wrapper only notes the EOF, in the number's state byte and the time beside it, without a
 * system call or a lock; the program's own close clears the note the same way. Only a note still
 * there when the grace has run out is judged with the kernel (judge.c), by the timer: that is a
 * connection the program kept after its peer had gone.
 *
 * The timer is not woken per note: it sleeps until its earliest deadline, which a new note's
 * (now + grace) comes after unless the timer had nothing to wait for.
 */
#include "autoclose.h"

#include <errno.h>

uint32_t ac_eof_ms[AC_FDTAB_SIZE];
uintptr_t ac_eof_site[AC_FDTAB_SIZE];
uint32_t ac_eof_gen[AC_FDTAB_SIZE];
unsigned long ac_notes_taken;
static int highest_noted = -1; /* the timer looks at numbers up to here */

void ac_note_eof(int fd, enum ac_found_by how, uintptr_t site)
{
    int saved_errno = errno;
    if (!__atomic_load_n(&ac_active, __ATOMIC_ACQUIRE)) {
        ac_init(); /* a wrapper can run before our constructor, from another library's */
        if (!__atomic_load_n(&ac_active, __ATOMIC_ACQUIRE))
            goto out;
    }
    uint8_t expected = AC_FD_NONE;
    if (__atomic_load_n(&ac_fdtab[fd], __ATOMIC_RELAXED) != expected)
        goto out; /* known already: noted (a repeated EOF keeps its first time), judged... */
    uint64_t now = ac_now_ms();
    uint8_t noted = how == AC_FOUND_READ ? AC_FD_NOTED_READ : AC_FD_NOTED_READY;
    /* The time and site first, then the state that publishes them (the timer reads them in that
     * order). */
    __atomic_store_n(&ac_eof_ms[fd], (uint32_t)now, __ATOMIC_RELAXED);
    __atomic_store_n(&ac_eof_site[fd], site, __ATOMIC_RELAXED);
    __atomic_store_n(&ac_eof_gen[fd], ac_unload_gen_now(), __ATOMIC_RELAXED);
    if (!__atomic_compare_exchange_n(&ac_fdtab[fd], &expected, noted, false, __ATOMIC_RELEASE,
                                     __ATOMIC_RELAXED))
        goto out;
    __atomic_add_fetch(&ac_notes_taken, 1, __ATOMIC_SEQ_CST);
    int high = __atomic_load_n(&highest_noted, __ATOMIC_RELAXED);
    while (fd > high && !__atomic_compare_exchange_n(&highest_noted, &high, fd, true,
                                                     __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
    ac_timer_deadline(now + ac_cfg.grace_ms, false);
out:
    errno = saved_errno;
}

void ac_on_eof(int fd, enum ac_found_by how, uintptr_t site)
{
    if ((unsigned)fd < AC_FDTAB_SIZE) {
        ac_note_eof(fd, how, site);
        return;
    }
    if (fd < 0)
        return;
    /* Above the table there is no byte to note in: judged at once, under the lock (its site is
     * not kept). */
    int saved_errno = errno;
    if (__atomic_load_n(&ac_active, __ATOMIC_ACQUIRE))
        ac_judge_and_track(fd, how, ac_now_ms(), false);
    errno = saved_errno;
}

bool ac_notes_outstanding(void)
{
    int high = __atomic_load_n(&highest_noted, __ATOMIC_RELAXED);
    for (int fd = 0; fd <= high; fd++)
        if (ac_fd_noted((enum ac_fd_state)__atomic_load_n(&ac_fdtab[fd], __ATOMIC_RELAXED)))
            return true;
    return false;
}

uint64_t ac_notes_judge_due(uint64_t now_ms)
{
    uint64_t next = UINT64_MAX;
    int high = __atomic_load_n(&highest_noted, __ATOMIC_RELAXED);
    int judged = 0;
    for (int fd = 0; fd <= high; fd++) {
        if (judged == 256)
            return now_ms; /* enough for one hold of the lock: the program's closes wait */
        uint8_t state = __atomic_load_n(&ac_fdtab[fd], __ATOMIC_ACQUIRE);
        if (!ac_fd_noted((enum ac_fd_state)state))
            continue;
        uint32_t seen32 = __atomic_load_n(&ac_eof_ms[fd], __ATOMIC_RELAXED);
        uint64_t seen = now_ms - (uint32_t)((uint32_t)now_ms - seen32);
        uint64_t due = seen + ac_cfg.grace_ms;
        if (due > now_ms) {
            if (due < next)
                next = due;
            continue;
        }
        /* Taken from the program's lock-free close: from here its close waits for the lock. */
        if (!__atomic_compare_exchange_n(&ac_fdtab[fd], &state, AC_FD_PENDING, false,
                                         __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
            continue; /* closed this very moment */
        enum ac_found_by how = state == AC_FD_NOTED_READ ? AC_FOUND_READ : AC_FOUND_READY;
        ac_judge_and_track(fd, how, seen, true);
        judged++;
    }
    return next;
}
