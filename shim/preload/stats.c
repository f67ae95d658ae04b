/*
 * Counters, and AUTOCLOSE_STATS_FILE: the Prometheus text exposition format, for
 * node_exporter's textfile collector. The file is replaced atomically (written beside it, then
 * renamed), by the timer thread at most once a second while anything changed, and at exit.
 * Every series carries a pid label, so the files of many processes can be scraped together.
 * Only a process that had a TCP connection (its timer ran) writes one.
 */
#include "autoclose.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Aligned to 8 by hand: a 32-bit program aligns a uint64_t to 4 only, and an atomic add on one
 * that straddled two cache lines would be a split lock, which recent kernels slow down or trap. */
static _Alignas(8) uint64_t counters[AC_STAT_COUNT];

/* Reclaims by call site: the first AC_STAT_SITES sites met, then "other"; counted by the timer
 * under the tracker lock. A site's label is written once, by the timer holding no lock (sites.c),
 * and published by `labelled`. One address met at two unload counts is two sites: another object
 * may have been loaded there in between. */
static struct site_count {
    uintptr_t site;
    uint32_t gen;
    uint64_t count;
    int labelled;
    char label[AC_SITE_NAME_MAX + 24];
} sites[AC_STAT_SITES];
static _Alignas(8) uint64_t site_other, site_never, site_unknown;
static char path[sizeof ac_cfg.stats_file + 16]; /* expanded; empty: no stats file */
static bool dirty;                               /* changed since the file was last written */
static uint64_t last_write_ms;                   /* timer thread, under the tracker lock */
static int write_busy; /* the timer and the exit handler must not write at once */

/* A name without %p is one file for every process that has the library with it: a process
 * writes it only while the file does not name another process that is still running (see
 * claim_shared_name), and a forked child never does (it is its parent's). */
static bool name_is_shared;
static bool name_claimed;
static bool held_by_another; /* the name is another running process's: no file from this one */

/* Whether this process writes a stats file at all. */
static bool writing(void)
{
    return path[0] != '\0' && !__atomic_load_n(&held_by_another, __ATOMIC_RELAXED);
}

void ac_stats_start(void)
{
    path[0] = '\0';
    /* Shared unless the pid is in the name (%p, but not the escaped %%p): two pids, one name. */
    char one[sizeof path], other[sizeof path];
    held_by_another = false;
    name_is_shared = ac_expand_path(ac_cfg.stats_file, 1, one, sizeof one) &&
                     ac_expand_path(ac_cfg.stats_file, 2, other, sizeof other) &&
                     strcmp(one, other) == 0;
    name_claimed = false;
    if (ac_cfg.stats_file[0] && !ac_expand_path(ac_cfg.stats_file, getpid(), path, sizeof path))
        path[0] = '\0';
}

void ac_stats_atfork_child(void)
{
    for (int i = 0; i < AC_STAT_COUNT; i++)
        counters[i] = 0;
    memset(sites, 0, sizeof sites);
    site_other = site_never = site_unknown = 0;
    dirty = false;
    last_write_ms = 0;
    write_busy = 0;
    ac_stats_start();
    if (name_is_shared)
        path[0] = '\0'; /* the parent's file: a child never overwrites its counters */
}

/* The pid a stats file names in its first pid="N" label, or 0. */
static long pid_in_file(const char *file)
{
    int fd = open(file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return 0;
    char text[512];
    struct stat st;
    ssize_t n = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? read(fd, text, sizeof text - 1) : 0;
    AC_REAL(close)(fd);
    if (n <= 0)
        return 0;
    text[n] = '\0';
    const char *p = strstr(text, "pid=\"");
    long pid = 0;
    for (p = p ? p + 5 : ""; *p >= '0' && *p <= '9' && pid < 100000000; p++)
        pid = pid * 10 + (*p - '0');
    return pid;
}

/* Whether this process may write a file without %p in its name: yes unless the file names
 * another process that still runs (an exec'd child must not overwrite its parent's counters,
 * nor a second server the first's). Decided at the first write; the file is then this
 * process's. A reused pid can only make a process hold back, never overwrite. */
static bool claim_shared_name(void)
{
    if (!name_is_shared || name_claimed)
        return true;
    long owner = pid_in_file(path);
    if (owner > 0 && owner != (long)getpid() && (kill((pid_t)owner, 0) == 0 || errno == EPERM)) {
        char line[600];
        struct ac_text t;
        ac_text_init(&t, line, sizeof line);
        ac_text_str(&t, "AUTOCLOSE_STATS_FILE=");
        ac_text_quoted(&t, path, 400);
        ac_text_str(&t, " holds the counters of process ");
        ac_text_int(&t, owner);
        ac_text_str(&t, ", which still runs; this process writes none (put %p in the name)");
        ac_log(AC_LOG_ERROR, line);
        __atomic_store_n(&held_by_another, true, __ATOMIC_RELAXED);
        return false;
    }
    name_claimed = true;
    return true;
}

/* Returns true on the first change since the last write. */
static bool mark_dirty(void)
{
    return writing() && !__atomic_exchange_n(&dirty, true, __ATOMIC_RELAXED);
}

void ac_stats_touch(void)
{
    if (!mark_dirty() || ac_timer_locked_down())
        return; /* locked down: the timer looks by itself, the program's thread makes no call */
    /* The timer may be asleep with no deadline: wake it (or start it) to write the file. */
    sigset_t saved;
    ac_tracker_lock(&saved);
    ac_timer_wake();
    ac_tracker_unlock(&saved);
}

/* On the timer, which looks at the file before it sleeps again. */
void ac_stats_touch_on_timer(void)
{
    (void)mark_dirty();
}

void ac_stat_add(enum ac_counter which)
{
    __atomic_add_fetch(&counters[which], 1, __ATOMIC_RELAXED);
    ac_stats_touch();
}

void ac_stat_add_on_timer(enum ac_counter which)
{
    __atomic_add_fetch(&counters[which], 1, __ATOMIC_RELAXED);
    ac_stats_touch_on_timer();
}

static uint64_t *site_counter(uintptr_t site, uint32_t gen)
{
    if (site == AC_SITE_UNKNOWN)
        return &site_unknown;
    if (site == AC_SITE_NEVER)
        return &site_never;
    for (int i = 0; i < AC_STAT_SITES; i++) {
        uintptr_t here = __atomic_load_n(&sites[i].site, __ATOMIC_RELAXED);
        if (here == site && __atomic_load_n(&sites[i].gen, __ATOMIC_RELAXED) == gen)
            return &sites[i].count;
        if (here == AC_SITE_UNKNOWN) {
            __atomic_store_n(&sites[i].gen, gen, __ATOMIC_RELAXED);
            __atomic_store_n(&sites[i].site, site, __ATOMIC_RELAXED); /* an exit may render it */
            return &sites[i].count;
        }
    }
    return &site_other;
}

void ac_stat_reclaimed_on_timer(bool closed, enum ac_found_by how, uintptr_t site, uint32_t gen)
{
    __atomic_add_fetch(site_counter(site, gen), 1, __ATOMIC_RELAXED);
    ac_stat_add_on_timer((enum ac_counter)(
        (closed ? AC_STAT_RECLAIMED_CLOSE_READ : AC_STAT_RECLAIMED_SHUTDOWN_READ) + (int)how));
}

void ac_stat_site_label(uintptr_t site, uint32_t gen, const char *label)
{
    for (int i = 0; i < AC_STAT_SITES && site > AC_SITE_NEVER; i++) {
        if (__atomic_load_n(&sites[i].site, __ATOMIC_RELAXED) != site ||
            __atomic_load_n(&sites[i].gen, __ATOMIC_RELAXED) != gen ||
            __atomic_load_n(&sites[i].labelled, __ATOMIC_RELAXED))
            continue;
        struct ac_text t;
        ac_text_init(&t, sites[i].label, sizeof sites[i].label);
        ac_text_str(&t, label);
        __atomic_store_n(&sites[i].labelled, 1, __ATOMIC_RELEASE);
    }
}

/* One by_site series; `label` is the site's text, escaped as the format wants. */
static void site_series(struct ac_text *t, const char *label, uint64_t value);

/* The sites' series: each counted site, then never_read, unknown and other when they counted
 * anything. A site not labelled yet (the program exits while the timer is between counting and
 * logging it) is put into words here, on the exiting thread, which holds no lock of ours. Sites
 * with one label (an object unloaded and loaded again where it was) are one series. */
static void render_sites(struct ac_text *t)
{
    uint64_t never = __atomic_load_n(&site_never, __ATOMIC_RELAXED);
    uint64_t unknown = __atomic_load_n(&site_unknown, __ATOMIC_RELAXED);
    uint64_t other = __atomic_load_n(&site_other, __ATOMIC_RELAXED);
    bool any = never || unknown || other;
    for (int i = 0; i < AC_STAT_SITES; i++)
        any |= __atomic_load_n(&sites[i].count, __ATOMIC_RELAXED) != 0;
    if (!any)
        return;
    ac_prom_header(t, "autoclose_reclaimed_by_site_total", "counter",
                   "Connections reclaimed, by where the program met the peer's FIN (site) or, for "
                   "those the sweep found, where it last read them.");
    char labels[AC_STAT_SITES][AC_SITE_NAME_MAX + 24];
    uint64_t counts[AC_STAT_SITES];
    for (int i = 0; i < AC_STAT_SITES; i++) {
        labels[i][0] = '\0';
        counts[i] = __atomic_load_n(&sites[i].count, __ATOMIC_RELAXED);
        if (counts[i] == 0)
            continue;
        struct ac_text l;
        ac_text_init(&l, labels[i], sizeof labels[i]);
        if (__atomic_load_n(&sites[i].labelled, __ATOMIC_ACQUIRE)) {
            ac_text_str(&l, sites[i].label);
        } else {
            struct ac_site_info info;
            uintptr_t site = __atomic_load_n(&sites[i].site, __ATOMIC_RELAXED);
            uint32_t gen = __atomic_load_n(&sites[i].gen, __ATOMIC_RELAXED);
            bool known = !ac_timer_is_self() && gen == ac_unload_gen_now() &&
                         ac_site_resolve(site, &info) && gen == ac_unload_gen_now();
            ac_site_label(&l, site, known ? &info : NULL);
        }
    }
    for (int i = 0; i < AC_STAT_SITES; i++) {
        if (counts[i] == 0)
            continue;
        if (strcmp(labels[i], "unknown") == 0) {
            unknown += counts[i]; /* an address in no loaded object: one series for all of them */
            continue;
        }
        uint64_t n = counts[i];
        for (int j = i + 1; j < AC_STAT_SITES; j++)
            if (counts[j] != 0 && strcmp(labels[i], labels[j]) == 0) {
                n += counts[j];
                counts[j] = 0;
            }
        site_series(t, labels[i], n);
    }
    if (never)
        site_series(t, "never_read", never);
    if (unknown)
        site_series(t, "unknown", unknown);
    if (other)
        site_series(t, "other", other);
}

uint64_t ac_stat_get(enum ac_counter which)
{
    return __atomic_load_n(&counters[which], __ATOMIC_RELAXED);
}

/* One series with this process's pid among its labels, so many processes' files can be
 * scraped together. */
static void series(struct ac_text *t, const char *name, const char *labels, uint64_t value)
{
    char all[160];
    struct ac_text l;
    ac_text_init(&l, all, sizeof all);
    ac_text_str(&l, "pid=\"");
    ac_text_int(&l, getpid());
    ac_text_str(&l, "\"");
    if (labels[0]) {
        ac_text_str(&l, ",");
        ac_text_str(&l, labels);
    }
    ac_prom_series(t, name, all, value);
}

static void site_series(struct ac_text *t, const char *label, uint64_t value)
{
    char labels[AC_SITE_NAME_MAX + 48];
    struct ac_text l;
    ac_text_init(&l, labels, sizeof labels);
    ac_prom_label(&l, "site", label);
    series(t, "autoclose_reclaimed_by_site_total", labels, value);
}

size_t ac_stats_render(char *buf, size_t cap, size_t pending)
{
    static const char *const reclaimed_labels[] = {
        "action=\"shutdown\",found=\"read\"",  "action=\"shutdown\",found=\"ready\"",
        "action=\"shutdown\",found=\"sweep\"", "action=\"close\",found=\"read\"",
        "action=\"close\",found=\"ready\"",    "action=\"close\",found=\"sweep\"",
    };
    struct ac_text t;
    ac_text_init(&t, buf, cap);
    ac_prom_header(
        &t, "autoclose_reclaimed_total", "counter",
        "Half-closed connections shut down or released, by action and by how the FIN was "
        "found.");
    for (int i = 0; i < 6; i++)
        series(&t, "autoclose_reclaimed_total", reclaimed_labels[i],
               ac_stat_get((enum ac_counter)(AC_STAT_RECLAIMED_SHUTDOWN_READ + i)));
    render_sites(&t);
    ac_prom_header(&t, "autoclose_pending", "gauge",
                   "Half-closed connections waiting out their grace period.");
    series(&t, "autoclose_pending", "", pending);
    ac_prom_header(&t, "autoclose_dry_run_observed_total", "counter",
                   "Connections a dry run would have reclaimed.");
    series(&t, "autoclose_dry_run_observed_total", "", ac_stat_get(AC_STAT_DRY_RUN_OBSERVED));
    ac_prom_header(&t, "autoclose_port_filter_skipped_total", "counter",
                   "Peer FINs found on connections outside AUTOCLOSE_PORTS.");
    series(&t, "autoclose_port_filter_skipped_total", "", ac_stat_get(AC_STAT_PORT_FILTER_SKIPPED));
    ac_prom_header(&t, "autoclose_keepalive_configured_total", "counter",
                   "Connections given the AUTOCLOSE_KEEPALIVE settings.");
    series(&t, "autoclose_keepalive_configured_total", "",
           ac_stat_get(AC_STAT_KEEPALIVE_CONFIGURED));
    ac_prom_header(
        &t, "autoclose_errors_total", "counter",
        "Actions or socket options that failed, and connections left for lack of memory.");
    series(&t, "autoclose_errors_total", "", ac_stat_get(AC_STAT_ERRORS));
    /* Headroom (nofile.c): what a program that never closes has left before EMFILE. */
    ac_prom_header(&t, "autoclose_descriptors_limit", "gauge", "The soft RLIMIT_NOFILE.");
    series(&t, "autoclose_descriptors_limit", "", ac_nofile_limit());
    long open_now = ac_descriptors_open();
    ac_prom_header(&t, "autoclose_descriptors_open", "gauge", "Descriptors open in the process.");
    series(&t, "autoclose_descriptors_open", "", open_now > 0 ? (uint64_t)open_now : 0);
    ac_prom_header(&t, "autoclose_descriptors_reclaimed_held", "gauge",
                   "Reclaimed connections whose numbers the program still holds (never closed).");
    series(&t, "autoclose_descriptors_reclaimed_held", "",
           __atomic_load_n(&ac_reclaimed_held, __ATOMIC_RELAXED));
    return t.len;
}

bool ac_stats_due(uint64_t now_ms, uint64_t *next_ms)
{
    if (!writing() || !__atomic_load_n(&dirty, __ATOMIC_RELAXED)) {
        *next_ms = UINT64_MAX;
        return false;
    }
    *next_ms = last_write_ms + 1000;
    if (now_ms < *next_ms)
        return false;
    last_write_ms = now_ms;
    return true;
}

void ac_stats_write(size_t pending)
{
    if (!writing() || __atomic_exchange_n(&write_busy, 1, __ATOMIC_ACQUIRE))
        return;
    __atomic_store_n(&dirty, false, __ATOMIC_RELAXED);
    if (!claim_shared_name()) {
        __atomic_store_n(&write_busy, 0, __ATOMIC_RELEASE);
        return;
    }
    char text[8192]; /* the by-site series need room beside the rest */
    size_t len = ac_stats_render(text, sizeof text, pending);
    if (ac_file_replace(path, text, len)) {
        __atomic_store_n(&write_busy, 0, __ATOMIC_RELEASE);
        return;
    }
    int err = errno;
    struct ac_text t;
    static bool said;
    if (!said) {
        said = true;
        char line[600];
        ac_text_init(&t, line, sizeof line);
        ac_text_str(&t, "cannot write AUTOCLOSE_STATS_FILE=");
        ac_text_quoted(&t, path, 400);
        ac_text_str(&t, ": ");
        ac_text_str(&t, strerrordesc_np(err) ? strerrordesc_np(err) : "unknown error");
        ac_log(AC_LOG_ERROR, line);
    }
    __atomic_store_n(&write_busy, 0, __ATOMIC_RELEASE);
}

void ac_stats_at_exit(void)
{
    /* A process that never had a TCP connection (its timer never ran) has nothing to say: the
     * 50 short-lived children of a shell leave no 50 files behind. Nor one locked down by a
     * seccomp filter, whose exit must not meet a system call the filter forbids. */
    if (!writing() || !ac_timer_ran_here() || ac_timer_locked_down())
        return;
    sigset_t saved;
    ac_tracker_lock(&saved);
    size_t pending = ac_tracker_pending();
    ac_tracker_unlock(&saved);
    /* The timer may be writing right now; give it a moment, then write the final figures. */
    for (int i = 0; i < 1000 && __atomic_load_n(&write_busy, __ATOMIC_ACQUIRE); i++)
        usleep(100);
    ac_stats_write(pending);
}
