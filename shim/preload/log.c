/*
 * Log lines: "<UTC time> libautoclose[<pid>]: <message>".
 *
 * Where they go: AUTOCLOSE_LOG_FILE if set; else the stderr the process started with, while fd 2
 * still names that same file (a daemon that closed stderr and opened a data file as fd 2 must
 * not find our lines in it) and it is not a socket (an inetd-style server's fds 0-2 are the
 * connection itself); else syslog, as one datagram to /dev/log made here (glibc's syslog()
 * allocates, and a line may be written on a path a signal handler reaches). The log file's
 * identity is checked before each write too: if the program closed it and the number now names
 * something else, it is reopened rather than written into a stranger's descriptor.
 *
 * A token bucket limits lines to a burst of 50, then 10 a second; what it drops is counted and
 * reported with the next line that goes out.
 */
#include "autoclose.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <string.h>
#include <unistd.h>

#define BURST   50
#define PER_SEC 10

static struct ac_rate rate = {.tokens = BURST};
static int busy; /* the lock around `rate` and the log file (take_log_lock) */

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

/* The stderr the process started with, if a line may go there. */
static bool stderr_usable;
static dev_t stderr_dev;
static ino64_t stderr_ino;

/* Works out the file's name: at start-up, and again in a forked child, whose %p differs. */
static void start_log_file(void)
{
    log_file = (struct log_file){.fd = -1};
    if (!ac_expand_path(ac_cfg.log_file, getpid(), log_path, sizeof log_path))
        log_path[0] = '\0';
}

void ac_log_start(void)
{
    start_log_file();
}

void ac_log_capture_stderr(void)
{
    struct stat64 st;
    stderr_usable = fstat64(2, &st) == 0 && !S_ISSOCK(st.st_mode);
    stderr_dev = st.st_dev;
    stderr_ino = st.st_ino;
}

static bool fd_is(int fd, dev_t dev, ino64_t ino)
{
    struct stat64 st;
    return fstat64(fd, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

/* Opens the log file above fd 2, so it never squats on a number a daemon is about to reuse
 * for its standard streams. */
static int log_file_fd(struct log_file *lf)
{
    if (lf->fd >= 0 && fd_is(lf->fd, lf->dev, lf->ino))
        return lf->fd;
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
 * libautoclose: message", sent without blocking; dropped if nothing listens on /dev/log. */
static void syslog_line(int priority, const char *message)
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
        return;
    struct sockaddr_un log_socket = {.sun_family = AF_UNIX, .sun_path = "/dev/log"};
    const struct sockaddr *to = (const struct sockaddr *)&log_socket;
    sendto(s, datagram, t.len, MSG_DONTWAIT | MSG_NOSIGNAL, to, sizeof log_socket);
    AC_REAL(close)(s);
}

static void write_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, s, n);
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
    char line[600];
    struct ac_text t;
    ac_text_init(&t, line, sizeof line);
    ac_log_format(&t, "libautoclose", getpid(), msg);

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
    int priority = LOG_DAEMON | (level == AC_LOG_ERROR ? LOG_ERR : LOG_INFO);
    if (fd >= 0) {
        write_all(fd, line, t.len);
    } else {
        syslog_line(priority, msg);
    }
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

void ac_log(enum ac_log_level level, const char *msg)
{
    if (level == AC_LOG_OFF || level > ac_cfg.log_level)
        return;
    sigset_t saved;
    if (!take_log_lock(&saved)) {
        emit(level, msg, false);
        return;
    }
    uint32_t dropped = rate.suppressed;
    bool go = ac_rate_take(&rate, ac_now_ms(), BURST, PER_SEC);
    if (go && dropped) {
        char note[80];
        struct ac_text t;
        ac_text_init(&t, note, sizeof note);
        ac_text_uint(&t, dropped);
        ac_text_str(&t, " log lines suppressed by the rate limit");
        rate.suppressed = 0;
        emit(AC_LOG_INFO, note, true);
    }
    if (go)
        emit(level, msg, true);
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
