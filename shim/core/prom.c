/*
 * Counters in the Prometheus text exposition format, for node_exporter's textfile collector, and
 * the file that holds them, replaced atomically (written beside it, then renamed) so a scrape
 * never reads half a file.
 */
#include "core.h"

#include <fcntl.h>
#include <stdio.h>
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

bool ac_file_replace(const char *path, const char *text, size_t len)
{
    char tmp[600];
    struct ac_text t;
    ac_text_init(&t, tmp, sizeof tmp);
    ac_text_str(&t, path);
    ac_text_str(&t, ".tmp.");
    ac_text_int(&t, getpid());
    if (t.truncated)
        return false;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0644);
    if (fd < 0)
        return false;
    bool ok = write(fd, text, len) == (ssize_t)len;
    ac_core_close(fd);
    if (ok && rename(tmp, path) == 0)
        return true;
    unlink(tmp);
    return false;
}
