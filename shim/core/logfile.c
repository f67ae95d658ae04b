/*
 * The log file, opened by the library (AUTOCLOSE_LOG_FILE) and the daemon (--log-file) by one
 * rule, since either may run as root and the file's directory may be writable by a user who is
 * not: never through a symlink planted at the name, never blocking on a FIFO put there, and only
 * into a plain file no other name links to (a hard link to another file would have us append to
 * that file). Async-signal-safe: the library opens it on a path a signal handler can reach.
 */
#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

int ac_log_file_open(const char *path, dev_t *dev, ino64_t *ino)
{
    /* O_LARGEFILE: a 32-bit program's plain open fails with EOVERFLOW on a log file of 2 GiB. */
    int fd = open(path,
                  O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_LARGEFILE | O_NOFOLLOW |
                      O_NONBLOCK,
                  0640);
    if (fd < 0)
        return -1;
    struct stat64 st;
    if (fstat64(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
        ac_core_close(fd);
        errno = EINVAL;
        return -1;
    }
    *dev = st.st_dev;
    *ino = st.st_ino;
    return fd;
}

const char *ac_log_file_error(int err)
{
    /* ENXIO: a FIFO nobody reads, or a socket, refused by the open itself. */
    if (err == EINVAL || err == ENXIO)
        return "not a plain file with one link";
    if (err == ELOOP)
        return "a symbolic link";
    return strerrordesc_np(err) ?: "error";
}
