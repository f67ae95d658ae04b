/*
 * Log lines: "<UTC time> libautoclose[<pid>]: <message>"; on a stderr that is the journal's
 * stream (JOURNAL_STREAM names it, checked once at load), "<N>libautoclose[<pid>]: <message>",
 * sd-daemon(3)'s priority prefix, and no time of ours (the journal adds its own).
 *
 * Where they go: AUTOCLOSE_LOG_FILE if set; else the stderr the process started with, while fd 2
 * still names that same file (a daemon that closed stderr and opened a data file as fd 2 must
 * not find our lines in it) and it is not a socket (an inetd-style server's fds 0-2 are the
 * connection itself) unless it is the journal's stream; else syslog, as one datagram to /dev/log
 * made here (glibc's syslog() allocates, and a line may be written on a path a signal handler
 * reaches); and where nothing listens on /dev/log (a container), a stderr that is a log collector's
 * socket rather than a connection (see collector_socket). The log file's identity is checked before
 * each write too: if the program closed it and the number now names something else, it is reopened
 * rather than written into a stranger's descriptor; if its name now names another file, or none
 * (logrotate moved it), the name is opened again.
 *
 * A token bucket limits lines to a burst of 50, then 10 a second. What it drops is counted, and
 * the count said when its window closes, a second after the first line dropped: by the library's
 * thread (woken for it), or with the next line if that comes first.
 */
#include "autoclose.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <string.h>
#include <unistd.h>

#define BURST     50
#define PER_SEC   10
#define WINDOW_MS 1000 /* from the first line dropped to the line that counts them */

static struct ac_rate rate = {.tokens = BURST};
static int busy; /* the lock around `rate`, `note_due` and the log file (take_log_lock) */
/* When the count of dropped lines is due (monotonic ms); UINT64_MAX while none was dropped. Read
 * by the timer without the lock. */
static uint64_t note_due = UINT64_MAX;

/* A 32-bit program's plain stat and open fail with EOVERFLOW on a file of 2 GiB or more, or one
 * whose inode number needs more than 32 bits (XFS, btrfs): a long-lived log file, or the stderr a
 * service appends to, would then be given up. Hence fstat64 and O_LARGEFILE here (the same as
 * fstat and 0 in a 64-bit program). */

/* The log file as open in one descriptor table. */
struct log_file {
    int fd;
    dev_t dev;
    ino64_t ino;
    bool failed;
    int error; /* why it could not be opened: EINVAL when it is no plain, singly linked file */
};
static struct log_file log_file = {.fd = -1};
static char log_path[sizeof ac_cfg.log_file + 16]; /* %p expanded */

/* The stderr the process started with, if a line may go there; or, when it is a socket, if a
 * line may go there when syslog cannot be reached. stderr_journal: it is the journal's stream
 * (JOURNAL_STREAM names it), whose lines take a priority prefix and no time of ours. */
static bool stderr_usable, stderr_collector, stderr_journal;
static dev_t stderr_dev;
static ino64_t stderr_ino;
static mode_t stderr_mode;

/* Works out the file's name: at start-up, and again in a forked child, whose %p differs. A
 * relative name is made absolute from the directory of that moment, so that the look for a
 * rotated file (log_file_fd) never follows the program into another directory. */
static void start_log_file(void)
{
    log_file = (struct log_file){.fd = -1};
    char expanded[sizeof log_path];
    if (!ac_expand_path(ac_cfg.log_file, getpid(), expanded, sizeof expanded)) {
        log_path[0] = '\0';
        return;
    }
    struct ac_text t;
    ac_text_init(&t, log_path, sizeof log_path);
    if (expanded[0] != '/' && expanded[0] != '\0' && getcwd(log_path, sizeof log_path) != NULL) {
        t.len = strlen(log_path);
        ac_text_str(&t, "/");
    }
    ac_text_str(&t, expanded);
    if (t.truncated)
        strcpy(log_path, expanded);
}

void ac_log_start(void)
{
    start_log_file();
}

static bool fd_is(int fd, dev_t dev, ino64_t ino)
{
    struct stat64 st;
    return fstat64(fd, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

/* A stderr that is a socket is a log collector's stream (journald's, a container runtime's: a
 * socketpair, or a socket connected to the collector, so it has no name of its own) only when it
 * is a local socket with no name and not the program's stdin as well. An inetd-style server's
 * fds 0-2 are its connection (the same socket as stdin, a TCP one, or an accepted local one,
 * which bears its listener's name): a line written there would go to the peer. */
static bool collector_socket(void)
{
    int domain = 0;
    socklen_t len = sizeof domain;
    if (AC_REAL(getsockopt)(2, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0 || domain != AF_UNIX)
        return false;
    struct sockaddr_un name;
    len = sizeof name;
    if (AC_REAL(getsockname)(2, (struct sockaddr *)&name, &len) != 0 ||
        len > offsetof(struct sockaddr_un, sun_path))
        return false;
    return !fd_is(0, stderr_dev, stderr_ino);
}

void ac_log_capture_stderr(void)
{
    struct stat64 st;
    bool open = fstat64(2, &st) == 0;
    stderr_usable = open && !S_ISSOCK(st.st_mode);
    stderr_dev = st.st_dev;
    stderr_ino = st.st_ino;
    stderr_mode = open ? st.st_mode : 0;
    /* Read once, here: a line costs no more for it. systemd sets it for the service's own
     * stderr; a child with another stderr inherits the variable, which then names another file.
     * Not in a set-user-ID program, where whoever runs it sets the environment. */
    stderr_journal = open && !getauxval(AT_SECURE) &&
                     ac_journal_stream_is(getenv("JOURNAL_STREAM"), st.st_dev, st.st_ino);
    /* The journal's stream is a socket, and no connection: lines go there before syslog. */
    stderr_usable = stderr_usable || stderr_journal;
    stderr_collector = open && S_ISSOCK(st.st_mode) && collector_socket();
}

/* Whether `path` names the file dev/ino, without following a link. */
static bool path_is(const char *path, dev_t dev, ino64_t ino)
{
    struct stat64 st;
    return lstat64(path, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

/* Opens the log file above fd 2, so it never squats on a number a daemon is about to reuse
 * for its standard streams. */
static int log_file_fd(struct log_file *lf)
{
    if (lf->fd >= 0 && fd_is(lf->fd, lf->dev, lf->ino)) {
        if (path_is(log_path, lf->dev, lf->ino))
            return lf->fd;
        /* Moved away (logrotate) or replaced: ours still, let go of it and open the name. */
        AC_REAL(close)(lf->fd);
    }
    lf->fd = -1;
    if (lf->failed)
        return -1;
    /* The core's rule (logfile.c): no symlink, no FIFO, only a plain file with one link. */
    dev_t dev;
    ino64_t ino;
    int fd = ac_log_file_open(log_path, &dev, &ino);
    if (fd >= 0 && fd <= 2) {
        int high = AC_REAL(fcntl)(fd, F_DUPFD_CLOEXEC, 3);
        AC_REAL(close)(fd);
        fd = high;
    }
    if (fd < 0) {
        lf->failed = true; /* said once below; stderr or syslog from now on */
        lf->error = errno;
        return -1;
    }
    *lf = (struct log_file){.fd = fd, .dev = dev, .ino = ino};
    return fd;
}

/* A syslog line in glibc's format without the time (the daemon adds it): "<priority>ident:
 * libautoclose: message", sent without blocking. False when it could not be sent (nothing
 * listens on /dev/log). */
static bool syslog_line(int priority, const char *message)
{
    char datagram[700];
    struct ac_text t;
    ac_text_init(&t, datagram, sizeof datagram);
    ac_text_str(&t, "<");
    ac_text_uint(&t, (unsigned)priority);
    ac_text_str(&t, ">");
    ac_text_str(&t, program_invocation_short_name);
    ac_text_str(&t, ": libautoclose: ");
    ac_text_str(&t, message);
    int s = AC_REAL(socket)(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0); /* not marked: ours */
    if (s < 0)
        return false;
    struct sockaddr_un log_socket = {.sun_family = AF_UNIX, .sun_path = "/dev/log"};
    const struct sockaddr *to = (const struct sockaddr *)&log_socket;
    bool sent = sendto(s, datagram, t.len, MSG_DONTWAIT | MSG_NOSIGNAL, to, sizeof log_socket) >= 0;
    AC_REAL(close)(s);
    return sent;
}

/* On a socket (a log collector's stderr), never SIGPIPE and never a wait: a collector that went
 * away or fell behind costs the line, not the program. */
static void write_all(int fd, const char *s, size_t n, bool socket)
{
    while (n > 0) {
        ssize_t w =
            socket ? sendto(fd, s, n, MSG_NOSIGNAL | MSG_DONTWAIT, NULL, 0) : write(fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

static void emit(enum ac_log_level level, const char *msg, bool have_file_lock)
{
    int saved_errno = errno;
    int fd = -1;
    if (log_path[0] && have_file_lock) {
        struct log_file *lf = &log_file;
        bool had_failed = lf->failed;
        fd = log_file_fd(lf);
        if (fd < 0 && !had_failed) {
            char why[640];
            struct ac_text w;
            ac_text_init(&w, why, sizeof why);
            ac_text_str(&w, "cannot open AUTOCLOSE_LOG_FILE=");
            ac_text_quoted(&w, log_path, 200);
            ac_text_str(&w, " (");
            ac_text_str(&w, ac_log_file_error(lf->error));
            ac_text_str(&w, "); logging to stderr or syslog");
            emit(AC_LOG_ERROR, why, false);
        }
    }
    if (fd < 0 && stderr_usable && fd_is(2, stderr_dev, stderr_ino))
        fd = 2;
    bool journal = fd == 2 && stderr_journal;
    char line[800]; /* a reclaim line with its call site is up to 560 bytes */
    struct ac_text t;
    ac_text_init(&t, line, sizeof line);
    ac_log_format(&t, journal ? ac_log_priority(level) : -1, "libautoclose", getpid(), msg);
    int priority = LOG_DAEMON | (level == AC_LOG_ERROR ? LOG_ERR : LOG_INFO);
    if (fd >= 0)
        write_all(fd, line, t.len, journal && S_ISSOCK(stderr_mode));
    else if (!syslog_line(priority, msg) && stderr_collector && fd_is(2, stderr_dev, stderr_ino))
        write_all(2, line, t.len, true);
    errno = saved_errno;
}

/* The log's lock: held with every signal blocked, so a signal handler that logs can never
 * interrupt its own thread's holder. Another thread's line waits for it, 20 ms at most (a line
 * is one write), and only past that goes to stderr or syslog without the shared state: a log
 * file on a hung disk must not hang the application's threads too. */
static bool take_log_lock(sigset_t *saved)
{
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, saved);
    for (int tries = 0; tries < 400; tries++) {
        if (!__atomic_exchange_n(&busy, 1, __ATOMIC_ACQUIRE))
            return true;
        struct timespec pause = {.tv_nsec = 50000};
        nanosleep(&pause, NULL);
    }
    pthread_sigmask(SIG_SETMASK, saved, NULL);
    return false;
}

static void drop_log_lock(const sigset_t *saved)
{
    __atomic_store_n(&busy, 0, __ATOMIC_RELEASE);
    pthread_sigmask(SIG_SETMASK, saved, NULL);
}

/* Under the log lock: says how many lines were dropped, and closes the window. */
static void say_dropped(void)
{
    char note[80];
    struct ac_text t;
    ac_text_init(&t, note, sizeof note);
    ac_text_uint(&t, rate.suppressed);
    ac_text_str(&t, " log lines suppressed by the rate limit");
    rate.suppressed = 0;
    __atomic_store_n(&note_due, UINT64_MAX, __ATOMIC_RELAXED);
    emit(AC_LOG_INFO, note, true);
}

void ac_log(enum ac_log_level level, const char *msg)
{
    if (level == AC_LOG_OFF || level > ac_cfg.log_level)
        return;
    sigset_t saved;
    if (!take_log_lock(&saved)) {
        emit(level, msg, false);
        return;
    }
    uint64_t now = ac_now_ms();
    bool go = ac_rate_take(&rate, now, BURST, PER_SEC);
    uint64_t opened = UINT64_MAX;
    if (rate.suppressed > 0) {
        uint64_t due = __atomic_load_n(&note_due, __ATOMIC_RELAXED);
        if (due == UINT64_MAX) {
            opened = now + WINDOW_MS; /* the first line dropped: the window opens */
            /* Before the timer's look at sleeps_until (ac_timer_deadline), as the timer stores
             * that before it looks here (timer.c): one of the two sees the other. */
            __atomic_store_n(&note_due, opened, __ATOMIC_SEQ_CST);
        } else if (now >= due) {
            say_dropped(); /* its window closed and the timer has not said it yet */
        }
    }
    if (go)
        emit(level, msg, true);
    drop_log_lock(&saved);
    /* The timer sleeps until its next deadline: make sure it looks when the window closes (on
     * the timer itself it will anyway). */
    if (opened != UINT64_MAX && !ac_timer_is_self() && !ac_in_other_process())
        ac_timer_deadline(opened, ac_tracker_held_here());
}

uint64_t ac_log_note_due(void)
{
    return __atomic_load_n(&note_due, __ATOMIC_SEQ_CST);
}

void ac_log_say_dropped(uint64_t now_ms)
{
    sigset_t saved;
    if (!take_log_lock(&saved)) {
        /* A line stuck on a hung disk holds the lock: try again in a window, not at once. */
        uint64_t due = __atomic_load_n(&note_due, __ATOMIC_RELAXED);
        if (due <= now_ms)
            __atomic_compare_exchange_n(&note_due, &due, now_ms + WINDOW_MS, false,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED);
        return;
    }
    uint64_t due = __atomic_load_n(&note_due, __ATOMIC_RELAXED);
    if (due <= now_ms) {
        if (rate.suppressed > 0)
            say_dropped();
        else
            __atomic_store_n(&note_due, UINT64_MAX, __ATOMIC_RELAXED);
    }
    drop_log_lock(&saved);
}

void ac_log_unlimited(enum ac_log_level level, const char *msg)
{
    if (level == AC_LOG_OFF || level > ac_cfg.log_level)
        return;
    sigset_t saved;
    bool locked = take_log_lock(&saved);
    emit(level, msg, locked);
    if (locked)
        drop_log_lock(&saved);
}

/* A fork taken while another thread was logging leaves `busy` set in the child, where that
 * thread does not exist: clear it. */
void ac_log_atfork_child(void)
{
    __atomic_store_n(&busy, 0, __ATOMIC_RELAXED);
    /* The parent's dropped lines are the parent's to count. */
    rate.suppressed = 0;
    __atomic_store_n(&note_due, UINT64_MAX, __ATOMIC_RELAXED);
    /* The parent's file stays open in the child (it is the same file unless the name has a
     * %p); reopening costs a descriptor only when the child logs. */
    if (strstr(ac_cfg.log_file, "%p") != NULL)
        start_log_file();
}

void ac_log_config_complaint(const char *line)
{
    /* Before the configuration is complete: stderr, or syslog, never the log file. */
    emit(AC_LOG_ERROR, line, false);
}
