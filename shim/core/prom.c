/*
 * Counters in the Prometheus text exposition format, for node_exporter's textfile collector, and
 * the file that holds them, replaced atomically (written beside it, then renamed) so a scrape
 * never reads half a file. Errors leave errno set for the caller's line.
 */
#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void ac_prom_header(struct ac_text *t, const char *name, const char *type, const char *help)
{
    ac_text_str(t, "# HELP ");
    ac_text_str(t, name);
    ac_text_str(t, " ");
    ac_text_str(t, help);
    ac_text_str(t, "\n# TYPE ");
    ac_text_str(t, name);
    ac_text_str(t, " ");
    ac_text_str(t, type);
    ac_text_str(t, "\n");
}

void ac_prom_series(struct ac_text *t, const char *name, const char *labels, uint64_t value)
{
    ac_text_str(t, name);
    if (labels[0]) {
        ac_text_str(t, "{");
        ac_text_str(t, labels);
        ac_text_str(t, "}");
    }
    ac_text_str(t, " ");
    ac_text_uint(t, value);
    ac_text_str(t, "\n");
}

void ac_prom_label(struct ac_text *t, const char *name, const char *value)
{
    if (t->len > 0 && t->buf[t->len - 1] != '{' && t->buf[t->len - 1] != ',')
        ac_text_str(t, ",");
    ac_text_str(t, name);
    ac_text_str(t, "=\"");
    /* The format's escapes: a process name may hold a quote or a backslash. */
    for (const char *p = value; *p; p++) {
        char c[3] = {'\\', *p, '\0'};
        if (*p == '"' || *p == '\\')
            ac_text_str(t, c);
        else if (*p == '\n')
            ac_text_str(t, "\\n");
        else
            ac_text_str(t, c + 1);
    }
    ac_text_str(t, "\"");
}

/* The temporary file beside `path`: a name no one can guess ahead of time (the clock's
 * nanoseconds), created exclusively and never through a link, so a user who can write the
 * directory (a shared textfile-collector directory) cannot plant a symlink there and have the
 * writer (root, or a set-user-ID program) overwrite whatever it points to. Mode 0644 whatever
 * the umask: the scraper (node_exporter) runs as another user. */
static int create_beside(const char *path, char *tmp, size_t tmp_len)
{
    for (int attempt = 0; attempt < 4; attempt++) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        struct ac_text t;
        ac_text_init(&t, tmp, tmp_len);
        ac_text_str(&t, path);
        ac_text_str(&t, ".tmp.");
        ac_text_int(&t, getpid());
        ac_text_str(&t, ".");
        ac_text_uint(&t, (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec + attempt);
        if (t.truncated) {
            errno = ENAMETOOLONG;
            return -1;
        }
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0644);
        if (fd >= 0) {
            fchmod(fd, 0644);
            return fd;
        }
        if (errno != EEXIST)
            return -1;
    }
    return -1; /* EEXIST: someone is planting names */
}

bool ac_file_replace(const char *path, const char *text, size_t len)
{
    char tmp[600];
    int fd = create_beside(path, tmp, sizeof tmp);
    if (fd < 0)
        return false;
    bool ok = write(fd, text, len) == (ssize_t)len;
    int err = ok ? 0 : (errno ? errno : EIO);
    ac_core_close(fd);
    /* rename replaces the name itself, never what a link there points to. */
    if (ok && rename(tmp, path) == 0)
        return true;
    if (ok)
        err = errno;
    unlink(tmp);
    errno = err;
    return false;
}
