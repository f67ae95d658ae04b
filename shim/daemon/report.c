/*
 * What the daemon says: log lines in the library's format ("<UTC time> autoclosed[<pid>]: ..."),
 * and counters in the Prometheus text format, the per-process, per-port CLOSE_WAIT gauge among
 * them (node_exporter counts CLOSE_WAIT sockets only host-wide). The counters are named
 * autoclosed_*: the library's autoclose_* files carry other help and labels, and node_exporter's
 * textfile collector drops a name it meets with two meanings in one directory.
 */
#include "autoclosed.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- log --------------------------------------------------------------------------------- */

static int log_fd = 2;
/* Standard error is the journal's stream (JOURNAL_STREAM names it): lines written there carry
 * sd-daemon(3)'s priority prefix and no time of ours, which the journal adds. */
static bool stderr_journal;

/* A storm of lines is summed up: 200 lines at once, then 50 a second; errors in a bucket of their
 * own, 20 at once, then 1 a second, so that a storm of them cannot hide the rest; and the actions
 * on other users' processes in a third (ad_log_of), so that a user who leaks on a watched port,
 * in namespaces of his own, cannot hide root's. What a bucket
 * drops is said when its window closes, a second after the first line dropped (the main loop
 * wakes for it, ad_log_next_note), and before the daemon exits. */
#define NOTE_WINDOW_MS 1000
static struct log_bucket {
    struct ac_rate rate;
    uint32_t burst, per_sec;
    uint64_t note_due; /* monotonic ms; UINT64_MAX while nothing was dropped */
    const char *kind;
} buckets[3] = {
    {.rate = {.tokens = 200}, .burst = 200, .per_sec = 50, .note_due = UINT64_MAX, .kind = ""},
    {.rate = {.tokens = 20}, .burst = 20, .per_sec = 1, .note_due = UINT64_MAX, .kind = "error "},
    {.rate = {.tokens = 200},
     .burst = 200,
     .per_sec = 50,
     .note_due = UINT64_MAX,
     .kind = "other users' "},
};
#define NBUCKETS (sizeof buckets / sizeof *buckets)

static void emit(int priority, const char *msg);

void ad_log_start_stderr(void)
{
    struct stat st;
    stderr_journal =
        fstat(2, &st) == 0 && ac_journal_stream_is(getenv("JOURNAL_STREAM"), st.st_dev, st.st_ino);
}

void ad_complain(const char *fmt, ...)
{
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%sautoclosed: %s\n", stderr_journal ? "<3>" : "", msg);
}

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
        ad_complain("--log-file '%.200s': %s", ad_opt.log_file, ac_log_file_error(errno));
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
        emit(3, why); /* the last line of the old file */
        close(log_fd);
        log_fd = 2;
    }
    emit(3, why);
}

static void emit(int priority, const char *msg)
{
    char line[1024];
    struct ac_text t;
    ac_text_init(&t, line, sizeof line);
    ac_log_format(&t, log_fd == 2 && stderr_journal ? priority : -1, "autoclosed", getpid(), msg);
    if (write(log_fd, line, t.len) < 0 && log_fd != 2) {
        ac_text_init(&t, line, sizeof line);
        ac_log_format(&t, stderr_journal ? priority : -1, "autoclosed", getpid(), msg);
        (void)!write(2, line, t.len);
    }
}

/* The count a bucket dropped, said now. */
static void say_dropped(struct log_bucket *b)
{
    char note[96];
    snprintf(note, sizeof note, "%u %slines not shown (more than %u a second)", b->rate.suppressed,
             b->kind, b->per_sec);
    b->rate.suppressed = 0;
    b->note_due = UINT64_MAX;
    emit(6, note);
}

void ad_log_say_dropped(uint64_t now_ms)
{
    for (size_t i = 0; i < NBUCKETS; i++)
        if (buckets[i].note_due <= now_ms && buckets[i].rate.suppressed > 0)
            say_dropped(&buckets[i]);
}

uint64_t ad_log_next_note(void)
{
    uint64_t next = UINT64_MAX;
    for (size_t i = 0; i < NBUCKETS; i++)
        if (buckets[i].note_due < next)
            next = buckets[i].note_due;
    return next;
}

static int taken_priority = 6;

static bool take_in(enum ac_log_level level, struct log_bucket *b)
{
    if (level > ad_opt.log_level)
        return false;
    uint64_t now = ac_now_ms();
    bool go = ac_rate_take(&b->rate, now, b->burst, b->per_sec);
    if (b->rate.suppressed > 0 && b->note_due == UINT64_MAX)
        b->note_due = now + NOTE_WINDOW_MS; /* the first line dropped: the window opens */
    else if (b->note_due <= now)
        say_dropped(b); /* its window closed before the loop woke for it */
    taken_priority = ac_log_priority(level);
    return go;
}

bool ad_log_take(enum ac_log_level level)
{
    return take_in(level, &buckets[level < AC_LOG_INFO]);
}

static void vemit(int priority, const char *fmt, va_list ap)
{
    char msg[900];
    vsnprintf(msg, sizeof msg, fmt, ap);
    emit(priority, msg);
}

void ad_log_taken(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vemit(taken_priority, fmt, ap);
    va_end(ap);
}

void ad_log(enum ac_log_level level, const char *fmt, ...)
{
    if (!ad_log_take(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    vemit(ac_log_priority(level), fmt, ap);
    va_end(ap);
}

void ad_log_of(uid_t user, enum ac_log_level level, const char *fmt, ...)
{
    if (!take_in(level, &buckets[level < AC_LOG_INFO ? 1 : user != 0 ? 2 : 0]))
        return;
    va_list ap;
    va_start(ap, fmt);
    vemit(ac_log_priority(level), fmt, ap);
    va_end(ap);
}

void ad_log_notice(const char *fmt, ...)
{
    if (ad_opt.log_level == AC_LOG_OFF || !ad_log_take(AC_LOG_ERROR))
        return;
    va_list ap;
    va_start(ap, fmt);
    vemit(5, fmt, ap); /* LOG_NOTICE: asked for, written at every level, and no error */
    va_end(ap);
}

/* ---- counters ---------------------------------------------------------------------------- */

uint64_t ad_reclaimed_total, ad_errors_total, ad_dry_run_total;

/* The gauge: CLOSE_WAIT sockets per (process, local port), counted anew each interval. */
struct gauge_cell {
    uint64_t key;   /* pid << 16 | port */
    uint64_t netns; /* the namespace the port is in, as its sockets were listed (0: ours) */
    uint32_t count;
    UT_hash_handle hh;
};
static struct gauge_cell *cells;
static uint64_t last_digest; /* of what was last written: a quiet host rewrites nothing */
static bool written;
static int said_failure; /* the errno of the last failed write, said once; 0 after a success */

void ad_gauge_reset(void)
{
    struct gauge_cell *c, *tmp;
    HASH_ITER(hh, cells, c, tmp)
    {
        HASH_DEL(cells, c);
        free(c);
    }
}

void ad_gauge_add(pid_t pid, uint16_t port, uint64_t netns)
{
    uint64_t key = (uint64_t)(uint32_t)pid << 16 | port;
    struct gauge_cell *c;
    HASH_FIND(hh, cells, &key, sizeof key, c);
    if (c == NULL) {
        c = calloc(1, sizeof *c);
        if (c == NULL)
            return;
        c->key = key;
        c->netns = netns;
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

/* The text both --stats-file and --metrics-listen give: one renderer. NULL when out of memory. */
static char *render(size_t *out_len)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    char chunk[1024], labels[512];
    struct ac_text t, l;
    ac_text_init(&t, chunk, sizeof chunk);
    ac_prom_header(&t, "autoclosed_close_wait", "gauge",
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
        if (c->netns != 0) { /* another network namespace's: which, and its container */
            char netns_text[24];
            snprintf(netns_text, sizeof netns_text, "%llu", (unsigned long long)c->netns);
            ac_prom_label(&l, "netns", netns_text);
        }
        if (p && p->container[0])
            ac_prom_label(&l, "container", p->container);
        ac_text_init(&t, chunk, sizeof chunk);
        ac_prom_series(&t, "autoclosed_close_wait", labels, c->count);
        append_text(&buf, &len, &cap, &t);
    }
    ac_text_init(&t, chunk, sizeof chunk);
    ac_prom_header(&t, "autoclosed_reclaimed_total", "counter",
                   "Half-closed connections autoclosed shut down.");
    ac_prom_series(&t, "autoclosed_reclaimed_total", "", ad_reclaimed_total);
    ac_prom_header(&t, "autoclosed_dry_run_observed_total", "counter",
                   "Connections an autoclosed dry run would have shut down.");
    ac_prom_series(&t, "autoclosed_dry_run_observed_total", "", ad_dry_run_total);
    ac_prom_header(&t, "autoclosed_errors_total", "counter",
                   "autoclosed's actions that failed, and processes it could not reach.");
    ac_prom_series(&t, "autoclosed_errors_total", "", ad_errors_total);
    append_text(&buf, &len, &cap, &t);
    ac_text_init(&t, chunk, sizeof chunk);
    ac_prom_header(&t, "autoclosed_unreachable_processes_total", "counter",
                   "Processes autoclosed could not reach (each counted once).");
    ac_prom_series(&t, "autoclosed_unreachable_processes_total", "", ad_unreachable_processes);
    ac_prom_header(&t, "autoclosed_netns_unseen_total", "counter",
                   "Network namespaces autoclosed could not see or look into (each counted "
                   "once for each reason).");
    ac_prom_series(&t, "autoclosed_netns_unseen_total", "", ad_unseen_netns);
    append_text(&buf, &len, &cap, &t);
    *out_len = len;
    return buf;
}

void ad_stats_write(void)
{
    static uint64_t published_digest;
    static bool published;
    if (ad_opt.stats_file == NULL && !ad_metrics_on())
        return;
    HASH_SORT(cells, by_key);
    /* A digest of the values: the file is rewritten, and the text published, only when one
     * changed. */
    uint64_t digest = 1469598103934665603ull ^ ad_reclaimed_total * 31 ^ ad_errors_total * 131 ^
                      ad_dry_run_total * 1031 ^ (uint64_t)ad_unreachable_processes * 10301 ^
                      (uint64_t)ad_unseen_netns * 100103;
    for (struct gauge_cell *c = cells; c; c = c->hh.next)
        digest = (digest ^ c->key ^ c->netns ^ (uint64_t)c->count << 40) * 1099511628211ull;
    bool file_due = ad_opt.stats_file && !(written && digest == last_digest);
    bool publish_due = ad_metrics_on() && !(published && digest == published_digest);
    if (!file_due && !publish_due)
        return;

    size_t len = 0;
    char *buf = render(&len);
    if (publish_due && buf && ad_metrics_publish(buf, len)) {
        published = true;
        published_digest = digest;
    }
    if (!file_due) {
        free(buf);
        return;
    }
    if (buf && ac_file_replace(ad_opt.stats_file, buf, len)) {
        written = true;
        last_digest = digest;
        said_failure = 0;
    } else {
        /* Said once for each reason: a directory made writable later starts afresh. */
        int err = buf ? errno : ENOMEM;
        if (err != said_failure)
            ad_log(AC_LOG_ERROR, "cannot write --stats-file '%.200s': %s", ad_opt.stats_file,
                   strerror(err));
        said_failure = err;
    }
    free(buf);
}
