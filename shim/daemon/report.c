/*
 * What the daemon says: log lines in the library's format ("<UTC time> autoclosed[<pid>]: ..."),
 * and counters in the Prometheus text format, the per-process, per-port CLOSE_WAIT gauge among
 * them (node_exporter counts CLOSE_WAIT sockets only host-wide).
 */
#include "autoclosed.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- log --------------------------------------------------------------------------------- */

static int log_fd = 2;
static struct ac_rate rate = {.tokens = 200}; /* a full bucket to start with */
static struct ac_rate error_rate = {.tokens = 20};

static void emit(const char *msg);

/* Whether no other user can put something at the log file's name: its directory is the daemon's
 * user's (or root's) and no one else may write it, and each directory above it either is too or
 * is sticky (where no one else may move or remove what root owns). A user who could would put
 * there a file whose open never returns (a FUSE mount) and hang the daemon at start or at the
 * SIGHUP after a rotation; the file rules below would not help. */
static bool log_dir_safe(const char *path, char *why, size_t cap)
{
    char dir[4096];
    size_t len = strlen(path);
    if (len >= sizeof dir)
        return true; /* the open says it */
    memcpy(dir, path, len + 1);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        strcpy(dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    bool innermost = true;
    for (;;) {
        struct stat st;
        if (stat(dir, &st) != 0)
            return true; /* the open says it */
        bool others_write = (st.st_mode & (S_IWGRP | S_IWOTH)) != 0;
        bool foreign = st.st_uid != 0 && st.st_uid != geteuid();
        if (foreign || (others_write && (innermost || !(st.st_mode & S_ISVTX)))) {
            snprintf(why, cap,
                     "another user can put a file there: %s is %s (uid %u, mode %04o); use a "
                     "directory only root can write, such as /var/log/autoclosed",
                     dir, foreign ? "owned by another user" : "writable by others",
                     (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
            return false;
        }
        innermost = false;
        char *up = strrchr(dir, '/');
        if (dir[0] != '/' || strcmp(dir, "/") == 0)
            return true; /* a relative name: its directory only */
        if (up == dir)
            dir[1] = '\0';
        else
            *up = '\0';
    }
}

/* The library's rule (core/logfile.c): no symlink, no FIFO, only a plain file with one link; a
 * user who can write the file's directory cannot make root append to another file. */
bool ad_log_open(void)
{
    if (ad_opt.log_file == NULL)
        return true;
    char why[400];
    if (!log_dir_safe(ad_opt.log_file, why, sizeof why)) {
        fprintf(stderr, "autoclosed: --log-file '%.200s': %s\n", ad_opt.log_file, why);
        return false;
    }
    dev_t dev;
    ino64_t ino;
    int fd = ac_log_file_open(ad_opt.log_file, &dev, &ino);
    if (fd < 0) {
        fprintf(stderr, "autoclosed: --log-file '%.200s': %s\n", ad_opt.log_file,
                ac_log_file_error(errno));
        return false;
    }
    log_fd = fd;
    return true;
}

/* SIGHUP, after logrotate moved the file away: the name is opened anew, by the same rule. When
 * that fails the lines go to stderr (the journal, under the unit) from then on, never to the old
 * file, which logrotate will compress or delete; the old file's last line and stderr say why.
 * The next SIGHUP tries again. */
void ad_log_reopen(void)
{
    if (ad_opt.log_file == NULL)
        return;
    dev_t dev;
    ino64_t ino;
    char dir_why[400];
    bool safe = log_dir_safe(ad_opt.log_file, dir_why, sizeof dir_why);
    int fd = safe ? ac_log_file_open(ad_opt.log_file, &dev, &ino) : -1;
    if (fd >= 0) {
        if (log_fd != 2)
            close(log_fd);
        log_fd = fd;
        return;
    }
    char why[900];
    snprintf(why, sizeof why, "cannot reopen --log-file '%.200s' (%s): logging to stderr",
             ad_opt.log_file, safe ? ac_log_file_error(errno) : dir_why);
    if (log_fd != 2) {
        emit(why); /* the last line of the old file */
        close(log_fd);
        log_fd = 2;
    }
    emit(why);
}

static void emit(const char *msg)
{
    char line[1024];
    struct ac_text t;
    ac_text_init(&t, line, sizeof line);
    ac_log_format(&t, "autoclosed", getpid(), msg);
    if (write(log_fd, line, t.len) < 0 && log_fd != 2)
        (void)!write(2, line, t.len);
}

bool ad_log_take(enum ac_log_level level)
{
    if (level > ad_opt.log_level)
        return false;
    /* A storm of reclaims is summed up: 200 lines at once, then 50 a second; errors in a bucket
     * of their own, 20 at once, then 1 a second, so that a storm of them cannot hide the rest. */
    bool error = level < AC_LOG_INFO;
    struct ac_rate *r = error ? &error_rate : &rate;
    if (!ac_rate_take(r, ac_now_ms(), error ? 20 : 200, error ? 1 : 50))
        return false;
    if (r->suppressed) {
        char note[96];
        snprintf(note, sizeof note, "%u %slines not shown (more than %s a second)", r->suppressed,
                 error ? "error " : "", error ? "1" : "50");
        r->suppressed = 0;
        emit(note);
    }
    return true;
}

static void vemit(const char *fmt, va_list ap)
{
    char msg[900];
    vsnprintf(msg, sizeof msg, fmt, ap);
    emit(msg);
}

void ad_log_taken(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vemit(fmt, ap);
    va_end(ap);
}

void ad_log(enum ac_log_level level, const char *fmt, ...)
{
    if (!ad_log_take(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    vemit(fmt, ap);
    va_end(ap);
}

/* ---- counters ---------------------------------------------------------------------------- */

uint64_t ad_reclaimed_total, ad_errors_total, ad_dry_run_total;

/* The gauge: CLOSE_WAIT sockets per (process, local port), counted anew each interval. */
struct gauge_cell {
    uint64_t key; /* pid << 16 | port */
    uint32_t count;
    UT_hash_handle hh;
};
static struct gauge_cell *cells;
static uint64_t last_digest; /* of what was last written: a quiet host rewrites nothing */
static bool written;

void ad_gauge_reset(void)
{
    struct gauge_cell *c, *tmp;
    HASH_ITER(hh, cells, c, tmp)
    {
        HASH_DEL(cells, c);
        free(c);
    }
}

void ad_gauge_add(pid_t pid, uint16_t port)
{
    uint64_t key = (uint64_t)(uint32_t)pid << 16 | port;
    struct gauge_cell *c;
    HASH_FIND(hh, cells, &key, sizeof key, c);
    if (c == NULL) {
        c = calloc(1, sizeof *c);
        if (c == NULL)
            return;
        c->key = key;
        HASH_ADD(hh, cells, key, sizeof key, c);
    }
    c->count++;
}

void ad_gauge_sub(pid_t pid, uint16_t port)
{
    uint64_t key = (uint64_t)(uint32_t)pid << 16 | port;
    struct gauge_cell *c;
    HASH_FIND(hh, cells, &key, sizeof key, c);
    if (c && c->count > 0)
        c->count--;
}

static int by_key(const struct gauge_cell *a, const struct gauge_cell *b)
{
    return a->key < b->key ? -1 : a->key > b->key;
}

static void append(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t want = (*cap ? *cap * 2 : 8192);
        while (want < *len + n + 1)
            want *= 2;
        char *b = realloc(*buf, want);
        if (b == NULL)
            return;
        *buf = b;
        *cap = want;
    }
    memcpy(*buf + *len, s, n);
    *len += n;
}

static void append_text(char **buf, size_t *len, size_t *cap, const struct ac_text *t)
{
    append(buf, len, cap, t->buf, t->len);
}

void ad_stats_write(void)
{
    if (ad_opt.stats_file == NULL)
        return;
    HASH_SORT(cells, by_key);
    /* A digest of the values: the file is rewritten only when one changed. */
    uint64_t digest = 1469598103934665603ull ^ ad_reclaimed_total * 31 ^ ad_errors_total * 131 ^
                      ad_dry_run_total * 1031;
    for (struct gauge_cell *c = cells; c; c = c->hh.next)
        digest = (digest ^ c->key ^ (uint64_t)c->count << 40) * 1099511628211ull;
    if (written && digest == last_digest)
        return;

    char *buf = NULL;
    size_t len = 0, cap = 0;
    char chunk[1024], labels[256];
    struct ac_text t, l;
    ac_text_init(&t, chunk, sizeof chunk);
    ac_prom_header(&t, "autoclose_close_wait", "gauge",
                   "TCP connections in CLOSE_WAIT per process and local port, among the "
                   "processes and ports autoclosed watches.");
    append_text(&buf, &len, &cap, &t);
    for (struct gauge_cell *c = cells; c; c = c->hh.next) {
        pid_t pid = (pid_t)(c->key >> 16);
        struct ad_process *p = ad_process(pid);
        char pid_text[16], port_text[8];
        snprintf(pid_text, sizeof pid_text, "%d", (int)pid);
        snprintf(port_text, sizeof port_text, "%u", (unsigned)(c->key & 0xffff));
        ac_text_init(&l, labels, sizeof labels);
        ac_prom_label(&l, "pid", pid_text);
        ac_prom_label(&l, "comm", p ? p->comm : "?");
        ac_prom_label(&l, "port", port_text);
        ac_text_init(&t, chunk, sizeof chunk);
        ac_prom_series(&t, "autoclose_close_wait", labels, c->count);
        append_text(&buf, &len, &cap, &t);
    }
    ac_text_init(&t, chunk, sizeof chunk);
    ac_prom_header(&t, "autoclose_reclaimed_total", "counter",
                   "Half-closed connections autoclosed shut down.");
    ac_prom_series(&t, "autoclose_reclaimed_total", "", ad_reclaimed_total);
    ac_prom_header(&t, "autoclose_dry_run_observed_total", "counter",
                   "Connections a dry run would have shut down.");
    ac_prom_series(&t, "autoclose_dry_run_observed_total", "", ad_dry_run_total);
    ac_prom_header(&t, "autoclose_errors_total", "counter",
                   "Actions that failed, and processes that could not be reached.");
    ac_prom_series(&t, "autoclose_errors_total", "", ad_errors_total);
    append_text(&buf, &len, &cap, &t);

    if (buf && ac_file_replace(ad_opt.stats_file, buf, len)) {
        written = true;
        last_digest = digest;
    } else {
        static bool said;
        if (!said)
            ad_log(AC_LOG_ERROR, "cannot write --stats-file '%.200s'", ad_opt.stats_file);
        said = true;
    }
    free(buf);
}
