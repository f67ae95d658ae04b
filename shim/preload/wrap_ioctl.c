/*
 * ioctl(FIONREAD): the other way a legacy server learns of a FIN without reading it. Woken by
 * poll, select or epoll, it asks how many bytes are waiting, sees 0 and drops the descriptor.
 * A zero answer is noted like a zero-length read; any other ioctl, or a non-zero
 * answer, costs one comparison. FIONBIO on a reclaimed number changes that number's O_NONBLOCK
 * alone, as fcntl's F_SETFL does (reclaimed.c).
 */
#include "autoclose.h"

#include <stdarg.h>
#include <sys/ioctl.h>

AC_EXPORT int ioctl(int fd, ac_ioctl_request request, ...)
{
    /* Every ioctl argument is one word (a pointer or an integer): pass it on as it came. */
    va_list ap;
    va_start(ap, request);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    if (AC_UNLIKELY(request == FIONBIO) && arg != NULL && AC_UNLIKELY(ac_fd_maybe_reclaimed(fd)) &&
        ac_reclaimed_set_nonblock(fd, *(int *)arg != 0))
        return 0;
    int r = AC_REAL(ioctl)(fd, request, arg);
    if (AC_UNLIKELY(request == FIONREAD) && r == 0 && arg != NULL && *(int *)arg == 0 &&
        ac_fd_unknown(fd))
        ac_on_eof(fd, AC_FOUND_READY, AC_CALLER());
    return r;
}
