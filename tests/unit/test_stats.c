/*
 * The counters and the stats file (Prometheus text format). Counts are made with
 * ac_stat_add_on_timer, which never takes the tracker lock nor starts the timer thread; the file
 * is written by hand through ac_stats_due / ac_stats_write with explicit times, as the timer
 * would. Each test starts from zero counts and no stats file (ac_stats_atfork_child, the reset a
 * forked child gets).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "autoclose.h"

/* ac_stats_write renders into a buffer of this size (stats.c): the largest file must fit. */
#define WRITE_BUFFER 8192 /* stats.c's */

static const char *const families[] = {
    "autoclose_reclaimed_total",
    "autoclose_pending",
    "autoclose_dry_run_observed_total",
    "autoclose_port_filter_skipped_total",
    "autoclose_keepalive_configured_total",
    "autoclose_errors_total",
    "autoclose_descriptors_limit",
    "autoclose_descriptors_open",
    "autoclose_descriptors_reclaimed_held",
};
#define FAMILIES (sizeof families / sizeof families[0])
#define SERIES   14 /* 6 reclaimed (action x found) + one for each other family */

/* The gauges: the pending count and the descriptor figures (the process's own state). */
static bool is_gauge(const char *family)
{
    return strcmp(family, "autoclose_pending") == 0 ||
           strncmp(family, "autoclose_descriptors_", 22) == 0;
}

static char dir[64];

static int make_dir(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "%s", "/tmp/autoclose-unit-stats.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static void empty_dir(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[600];
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    if (d)
        closedir(d);
}

static int remove_dir(void **state)
{
    (void)state;
    empty_dir();
    return rmdir(dir);
}

static int reset(void **state)
{
    (void)state;
    ac_cfg.stats_file[0] = '\0';
    ac_stats_atfork_child();
    empty_dir();
    return 0;
}

static size_t render(char *buf, size_t cap, size_t pending)
{
    size_t len = ac_stats_render(buf, cap, pending);
    assert_int_equal(len, strlen(buf));
    return len;
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The next line of `*text` into `line` (without its newline); false at the end. */
static bool next_line(const char **text, char *line, size_t cap)
{
    const char *s = *text, *nl = strchr(s, '\n');
    if (*s == '\0')
        return false;
    if (nl == NULL)
        fail_msg("the text does not end with a newline: \"%s\"", s);
    size_t n = (size_t)(nl - s);
    assert_true(n < cap);
    memcpy(line, s, n);
    line[n] = '\0';
    *text = nl + 1;
    return true;
}

static int family_of(const char *name_start)
{
    for (size_t i = 0; i < FAMILIES; i++) {
        size_t n = strlen(families[i]);
        if (strncmp(name_start, families[i], n) == 0 &&
            (name_start[n] == ' ' || name_start[n] == '{'))
            return (int)i;
    }
    return -1;
}

/* The value of the series whose line starts with `head` (name and labels, pid included). */
static uint64_t value_of(const char *text, const char *head)
{
    char line[512];
    while (next_line(&text, line, sizeof line)) {
        if (starts_with(line, head) && line[strlen(head)] == ' ')
            return strtoull(line + strlen(head) + 1, NULL, 10);
    }
    fail_msg("no series \"%s\" in:\n%s", head, text);
    return 0;
}

/* ---- the format -------------------------------------------------------------------------- */

/* Each family: one HELP, then one TYPE (gauges for pending and descriptors, counters for the
 * rest), then its
 * samples; nothing else, no blank line, a newline at the end. */
static void every_family_has_help_then_type_then_samples(void **state)
{
    (void)state;
    char text[WRITE_BUFFER], line[512];
    int stage[FAMILIES] = {0}; /* 0 nothing yet, 1 HELP seen, 2 TYPE seen, 3 samples seen */
    int samples = 0;
    render(text, sizeof text, 0);
    assert_true(text[strlen(text) - 1] == '\n');
    const char *p = text;
    while (next_line(&p, line, sizeof line)) {
        int f;
        if (starts_with(line, "# HELP ")) {
            f = family_of(line + 7);
            assert_true(f >= 0);
            assert_int_equal(stage[f], 0);
            assert_true(strlen(line) > 8 + strlen(families[f])); /* some help text */
            stage[f] = 1;
        } else if (starts_with(line, "# TYPE ")) {
            f = family_of(line + 7);
            assert_true(f >= 0);
            assert_int_equal(stage[f], 1);
            const char *type = line + 8 + strlen(families[f]);
            assert_string_equal(type, is_gauge(families[f]) ? "gauge" : "counter");
            stage[f] = 2;
        } else {
            f = family_of(line);
            if (f < 0)
                fail_msg("a line of no known family: \"%s\"", line);
            assert_true(stage[f] >= 2);
            /* Once a family's samples start, the previous family is finished. */
            for (int g = 0; g < f; g++)
                assert_int_equal(stage[g], 3);
            stage[f] = 3;
            samples++;
        }
    }
    for (size_t i = 0; i < FAMILIES; i++)
        if (stage[i] != 3)
            fail_msg("%s: incomplete (stage %d)", families[i], stage[i]);
    assert_int_equal(samples, SERIES);
}

/* Files of many processes are scraped together: every series says whose it is. */
static void every_series_has_the_pid_label_first(void **state)
{
    (void)state;
    char text[WRITE_BUFFER], line[512], pid_label[32];
    snprintf(pid_label, sizeof pid_label, "{pid=\"%ld\"", (long)getpid());
    render(text, sizeof text, 0);
    const char *p = text;
    int samples = 0;
    while (next_line(&p, line, sizeof line)) {
        if (line[0] == '#')
            continue;
        char *brace = strchr(line, '{');
        if (brace == NULL || !starts_with(brace, pid_label))
            fail_msg("no leading %s} label: \"%s\"", pid_label, line);
        char *close = strchr(brace, '}');
        assert_non_null(close);
        assert_true(close[1] == ' ' && close[2] >= '0' && close[2] <= '9');
        samples++;
    }
    assert_int_equal(samples, SERIES);
}

static void reclaimed_has_every_action_and_finding(void **state)
{
    (void)state;
    static const char *const labels[] = {
        "action=\"shutdown\",found=\"read\"",  "action=\"shutdown\",found=\"ready\"",
        "action=\"shutdown\",found=\"sweep\"", "action=\"close\",found=\"read\"",
        "action=\"close\",found=\"ready\"",    "action=\"close\",found=\"sweep\"",
    };
    char text[WRITE_BUFFER], head[128];
    render(text, sizeof text, 0);
    for (size_t i = 0; i < sizeof labels / sizeof labels[0]; i++) {
        snprintf(head, sizeof head, "autoclose_reclaimed_total{pid=\"%ld\",%s}", (long)getpid(),
                 labels[i]);
        assert_int_equal(value_of(text, head), 0);
    }
}

/* ---- the values -------------------------------------------------------------------------- */

static void starts_at_zero(void **state)
{
    (void)state;
    for (int i = 0; i < AC_STAT_COUNT; i++)
        assert_int_equal(ac_stat_get((enum ac_counter)i), 0);
    char text[WRITE_BUFFER], line[512];
    render(text, sizeof text, 0);
    const char *p = text;
    while (next_line(&p, line, sizeof line))
        if (line[0] != '#' && !starts_with(line, "autoclose_descriptors_") &&
            strcmp(strrchr(line, ' '), " 0") != 0)
            fail_msg("not zero: \"%s\"", line);
}

static void add_n(enum ac_counter which, int n)
{
    for (int i = 0; i < n; i++)
        ac_stat_add_on_timer(which);
}

static void reclaimed_n(bool closed, enum ac_found_by how, int n)
{
    for (int i = 0; i < n; i++)
        ac_stat_reclaimed_on_timer(closed, how, AC_SITE_UNKNOWN, 0);
}

/* Each count lands in its own series, each with a different number so a swap shows. */
static void values_follow_the_counts(void **state)
{
    (void)state;
    reclaimed_n(false, AC_FOUND_READ, 4);
    reclaimed_n(false, AC_FOUND_READY, 1);
    reclaimed_n(false, AC_FOUND_SWEEP, 2);
    reclaimed_n(true, AC_FOUND_READ, 6);
    reclaimed_n(true, AC_FOUND_READY, 9);
    reclaimed_n(true, AC_FOUND_SWEEP, 3);
    add_n(AC_STAT_DRY_RUN_OBSERVED, 5);
    add_n(AC_STAT_PORT_FILTER_SKIPPED, 8);
    add_n(AC_STAT_KEEPALIVE_CONFIGURED, 30);
    add_n(AC_STAT_ERRORS, 11);

    static const struct {
        const char *series;
        uint64_t want;
    } expect[] = {
        {"autoclose_reclaimed_total{pid=\"%ld\",action=\"shutdown\",found=\"read\"}", 4},
        {"autoclose_reclaimed_total{pid=\"%ld\",action=\"shutdown\",found=\"ready\"}", 1},
        {"autoclose_reclaimed_total{pid=\"%ld\",action=\"shutdown\",found=\"sweep\"}", 2},
        {"autoclose_reclaimed_total{pid=\"%ld\",action=\"close\",found=\"read\"}", 6},
        {"autoclose_reclaimed_total{pid=\"%ld\",action=\"close\",found=\"ready\"}", 9},
        {"autoclose_reclaimed_total{pid=\"%ld\",action=\"close\",found=\"sweep\"}", 3},
        {"autoclose_pending{pid=\"%ld\"}", 7},
        {"autoclose_dry_run_observed_total{pid=\"%ld\"}", 5},
        {"autoclose_port_filter_skipped_total{pid=\"%ld\"}", 8},
        {"autoclose_keepalive_configured_total{pid=\"%ld\"}", 30},
        {"autoclose_errors_total{pid=\"%ld\"}", 11},
    };
    char text[WRITE_BUFFER], head[160];
    render(text, sizeof text, 7);
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
        snprintf(head, sizeof head, expect[i].series, (long)getpid());
        if (value_of(text, head) != expect[i].want)
            fail_msg("%s: %llu, expected %llu", head, (unsigned long long)value_of(text, head),
                     (unsigned long long)expect[i].want);
    }
    assert_int_equal(ac_stat_get(AC_STAT_RECLAIMED_CLOSE_READY), 9);
    assert_int_equal(ac_stat_get(AC_STAT_KEEPALIVE_CONFIGURED), 30);
    assert_int_equal(ac_stat_get(AC_STAT_ERRORS), 11);
}

/* ---- bounds ------------------------------------------------------------------------------ */

/* A short buffer gets the start of the text, terminated, and nothing past its end. */
static void render_respects_the_buffer(void **state)
{
    (void)state;
    char full[WRITE_BUFFER];
    size_t full_len = render(full, sizeof full, 3);
    const size_t caps[] = {1, 2, 10, 100, full_len, full_len + 1, full_len + 2};
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        char area[WRITE_BUFFER + 64];
        memset(area, '#', sizeof area);
        size_t len = ac_stats_render(area, caps[i], 3);
        assert_true(len < caps[i]);
        assert_int_equal(strlen(area), len);
        assert_memory_equal(area, full, len);
        for (size_t j = caps[i]; j < sizeof area; j++)
            if (area[j] != '#')
                fail_msg("a buffer of %zu: byte %zu written", caps[i], j);
    }
    /* Nothing at all for no buffer. */
    char byte = '#';
    assert_int_equal(ac_stats_render(&byte, 0, 3), 0);
    assert_int_equal(byte, '#');
}

/* Reclaims by call site: the first AC_STAT_SITES sites each have a series under the label the
 * timer gave them, later ones count as "other"; the never read and the unknown ones have theirs;
 * a site whose label says it is in no object counts as unknown (one series, not two alike). */
static void by_site_is_bounded(void **state)
{
    (void)state;
    char head[160], label[32];
    for (int i = 0; i < 10; i++) {
        uintptr_t site = 0x10000 + (uintptr_t)i * 16;
        reclaimed_n(i % 2, AC_FOUND_READ, i + 1);
        for (int j = 0; j <= i; j++)
            ac_stat_reclaimed_on_timer(false, AC_FOUND_READ, site, 0);
        snprintf(label, sizeof label, "server+0x%x", 0x100 + i);
        ac_stat_site_label(site, 0, i == 7 ? "unknown" : label);
    }
    ac_stat_reclaimed_on_timer(true, AC_FOUND_SWEEP, AC_SITE_NEVER, 0);
    ac_stat_reclaimed_on_timer(true, AC_FOUND_SWEEP, AC_SITE_NEVER, 0);
    char text[WRITE_BUFFER];
    render(text, sizeof text, 0);
    long pid = (long)getpid();
    for (int i = 0; i < 8; i++) {
        if (i == 7)
            continue;
        snprintf(head, sizeof head,
                 "autoclose_reclaimed_by_site_total{pid=\"%ld\",site=\"server+0x%x\"}", pid,
                 0x100 + i);
        assert_int_equal(value_of(text, head), i + 1);
    }
    /* reclaimed_n counted 1 + 2 + ... + 10 as unknown; the eighth site adds its 8. */
    snprintf(head, sizeof head, "autoclose_reclaimed_by_site_total{pid=\"%ld\",site=\"unknown\"}",
             pid);
    assert_int_equal(value_of(text, head), 55 + 8);
    snprintf(head, sizeof head,
             "autoclose_reclaimed_by_site_total{pid=\"%ld\",site=\"never_read\"}", pid);
    assert_int_equal(value_of(text, head), 2);
    snprintf(head, sizeof head, "autoclose_reclaimed_by_site_total{pid=\"%ld\",site=\"other\"}",
             pid);
    assert_int_equal(value_of(text, head), 9 + 10);
    assert_null(strstr(text, "server+0x108"));
    assert_null(strstr(text, "server+0x107"));
    /* One HELP and one TYPE, before the samples. */
    const char *help = strstr(text, "# HELP autoclose_reclaimed_by_site_total ");
    assert_non_null(help);
    assert_null(strstr(help + 1, "# HELP autoclose_reclaimed_by_site_total "));
    assert_true(help < strstr(text, "autoclose_reclaimed_by_site_total{"));
}

/* One address met at two unload counts is counted as two sites (another object may have been
 * loaded there in between), each under its own label; two with one label are one series. */
static void by_site_keeps_unload_counts_apart(void **state)
{
    (void)state;
    uintptr_t site = 0x30000;
    ac_stat_reclaimed_on_timer(false, AC_FOUND_READ, site, 0);
    ac_stat_site_label(site, 0, "plugin_a.so+0x10");
    for (int i = 0; i < 2; i++)
        ac_stat_reclaimed_on_timer(false, AC_FOUND_READ, site, 1);
    ac_stat_site_label(site, 1, "plugin_b.so+0x10");
    for (int i = 0; i < 4; i++)
        ac_stat_reclaimed_on_timer(false, AC_FOUND_READ, site, 2);
    ac_stat_site_label(site, 2, "plugin_a.so+0x10");
    char text[WRITE_BUFFER], head[160];
    render(text, sizeof text, 0);
    long pid = (long)getpid();
    snprintf(head, sizeof head,
             "autoclose_reclaimed_by_site_total{pid=\"%ld\",site=\"plugin_a.so+0x10\"}", pid);
    assert_int_equal(value_of(text, head), 1 + 4);
    assert_null(strstr(strstr(text, head) + 1, head)); /* once */
    snprintf(head, sizeof head,
             "autoclose_reclaimed_by_site_total{pid=\"%ld\",site=\"plugin_b.so+0x10\"}", pid);
    assert_int_equal(value_of(text, head), 2);
}

static int digits(uint64_t v)
{
    int n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

/* The file is rendered into a fixed buffer; a cut-off file would be a broken scrape. The
 * largest text: every value at 20 digits, the pid at Linux's largest (7 digits). */
static void largest_text_fits_the_write_buffer(void **state)
{
    (void)state;
    /* Every by-site series, each with the longest label. */
    char label[AC_SITE_NAME_MAX + 24];
    memset(label, 'm', AC_SITE_NAME_MAX);
    snprintf(label + AC_SITE_NAME_MAX, sizeof label - AC_SITE_NAME_MAX, "+0x%016llx", ~0ull);
    for (int i = 0; i < AC_STAT_SITES; i++) {
        label[0] = (char)('a' + i); /* one series each: alike, they would be one */
        ac_stat_reclaimed_on_timer(false, AC_FOUND_READ, 0x10000 + (uintptr_t)i, 0);
        ac_stat_site_label(0x10000 + (uintptr_t)i, 0, label);
    }
    ac_stat_reclaimed_on_timer(false, AC_FOUND_READ, 0x20000, 0);
    ac_stat_reclaimed_on_timer(false, AC_FOUND_READ, AC_SITE_NEVER, 0);
    ac_stat_reclaimed_on_timer(false, AC_FOUND_READ, AC_SITE_UNKNOWN, 0);
    size_t series = SERIES + AC_STAT_SITES + 3;
    char text[WRITE_BUFFER];
    size_t len = render(text, sizeof text, 0);
    size_t largest = len + series * (size_t)(digits(UINT64_MAX) - 1) +
                     series * (size_t)(7 - digits((uint64_t)getpid()));
    if (largest >= WRITE_BUFFER)
        fail_msg("the largest text takes %zu bytes; the write buffer has %d", largest + 1,
                 WRITE_BUFFER);
}

/* ---- writing the file -------------------------------------------------------------------- */

static void use_stats_file(const char *pattern)
{
    snprintf(ac_cfg.stats_file, sizeof ac_cfg.stats_file, "%s/%s", dir, pattern);
    ac_stats_start();
}

static char *read_file(const char *path)
{
    static char buf[WRITE_BUFFER + 1];
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* The names in `dir`, each followed by a space: for "nothing else here". */
static int files_in_dir(char *names, size_t cap)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    names[0] = '\0';
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        n++;
        strncat(names, e->d_name, cap - strlen(names) - 2);
        strcat(names, " ");
    }
    closedir(d);
    return n;
}

static void own_path(char *path, size_t cap, const char *prefix)
{
    snprintf(path, cap, "%s/%s%ld.prom", dir, prefix, (long)getpid());
}

static void no_file_without_a_path(void **state)
{
    (void)state;
    uint64_t next = 0;
    ac_stat_add_on_timer(AC_STAT_ERRORS);
    assert_false(ac_stats_due(1000000, &next));
    assert_true(next == UINT64_MAX);
}

/* Due on the first change, then at most once a second; nothing due while nothing changed. */
static void due_once_a_second_while_counts_change(void **state)
{
    (void)state;
    uint64_t next = 0;
    use_stats_file("due-%p.prom");
    assert_false(ac_stats_due(5000, &next));
    assert_true(next == UINT64_MAX); /* nothing changed: the timer may sleep */

    ac_stat_add_on_timer(AC_STAT_ERRORS);
    assert_true(ac_stats_due(5000, &next));
    ac_stats_write(0);

    assert_false(ac_stats_due(5100, &next)); /* written, nothing new */
    assert_true(next == UINT64_MAX);
    ac_stat_add_on_timer(AC_STAT_ERRORS);
    assert_false(ac_stats_due(5500, &next));
    assert_true(next == 6000);
    assert_false(ac_stats_due(5999, &next));
    assert_true(ac_stats_due(6000, &next));
    ac_stats_write(0);
    assert_false(ac_stats_due(9000, &next));
    assert_true(next == UINT64_MAX);
}

/* What the file holds is exactly the rendered text; %p is this process; no temporary is left. */
static void write_replaces_the_file(void **state)
{
    (void)state;
    char path[300], names[600], text[WRITE_BUFFER];
    use_stats_file("stats-%p.prom");
    own_path(path, sizeof path, "stats-");
    add_n(AC_STAT_KEEPALIVE_CONFIGURED, 3);
    ac_stats_write(2);
    const char *got = read_file(path);
    if (got == NULL)
        fail_msg("no file %s", path);
    render(text, sizeof text, 2);
    assert_string_equal(got, text);

    reclaimed_n(false, AC_FOUND_READ, 30);
    ac_stats_write(0);
    got = read_file(path);
    assert_non_null(got);
    render(text, sizeof text, 0);
    assert_string_equal(got, text);
    char head[128];
    snprintf(head, sizeof head,
             "autoclose_reclaimed_total{pid=\"%ld\",action=\"shutdown\",found=\"read\"}",
             (long)getpid());
    assert_int_equal(value_of(got, head), 30);

    assert_int_equal(files_in_dir(names, sizeof names), 1);
    snprintf(path, sizeof path, "stats-%ld.prom ", (long)getpid());
    assert_string_equal(names, path);
}

/* At exit the file is written whether or not anything changed since the last write, with the
 * tracker's pending count (none here). */
static void at_exit_writes_the_final_figures(void **state)
{
    (void)state;
    char path[300], text[WRITE_BUFFER];
    use_stats_file("exit-%p.prom");
    own_path(path, sizeof path, "exit-");
    /* A process whose timer never ran (no TCP connection) writes nothing, even at exit. */
    ac_timer_running_hint = false;
    ac_stats_at_exit();
    if (read_file(path) != NULL)
        fail_msg("a process that never had a TCP connection wrote %s", path);
    ac_timer_running_hint = true;
    ac_stats_at_exit();
    const char *got = read_file(path);
    if (got == NULL)
        fail_msg("no file %s after ac_stats_at_exit", path);
    render(text, sizeof text, 0);
    assert_string_equal(got, text);

    add_n(AC_STAT_DRY_RUN_OBSERVED, 4);
    ac_stats_at_exit();
    got = read_file(path);
    assert_non_null(got);
    render(text, sizeof text, 0);
    assert_string_equal(got, text);
}

/* A directory that does not exist: no file, nothing left behind, and the program goes on. */
static void unwritable_path_leaves_nothing(void **state)
{
    (void)state;
    char names[600];
    use_stats_file("missing/stats-%p.prom");
    ac_stat_add_on_timer(AC_STAT_ERRORS);
    ac_stats_write(0);
    ac_stats_write(0);
    assert_int_equal(files_in_dir(names, sizeof names), 0);
}

/* A forked child counts its own connections from zero, in its own file. */
static void a_forked_child_starts_from_zero(void **state)
{
    (void)state;
    uint64_t next = 0;
    use_stats_file("child-%p.prom");
    add_n(AC_STAT_KEEPALIVE_CONFIGURED, 12);
    add_n(AC_STAT_ERRORS, 2);
    ac_stats_atfork_child();
    for (int i = 0; i < AC_STAT_COUNT; i++)
        assert_int_equal(ac_stat_get((enum ac_counter)i), 0);
    assert_false(ac_stats_due(1000000, &next)); /* nothing counted in the child yet */
    ac_stat_add_on_timer(AC_STAT_ERRORS);
    assert_true(ac_stats_due(1000000, &next)); /* the child's path is set: it writes */
}

/* A name without the pid in it (no %p, or only the escaped %%p) is the parent's: a forked child
 * writes none. With %p the child writes its own. */
static void a_forked_child_never_writes_a_shared_name(void **state)
{
    (void)state;
    static const char *const shared[] = {"shared.prom", "shared-%%p.prom"};
    uint64_t next = 0;
    for (size_t i = 0; i < 2; i++) {
        use_stats_file(shared[i]);
        ac_stats_atfork_child();
        ac_stat_add_on_timer(AC_STAT_ERRORS);
        if (ac_stats_due(1000000, &next))
            fail_msg("a forked child would write its parent's %s", shared[i]);
    }
    use_stats_file("own-%%%p.prom");
    ac_stats_atfork_child();
    ac_stat_add_on_timer(AC_STAT_ERRORS);
    assert_true(ac_stats_due(1000000, &next));
}

int main(void)
{
#define TEST(f) cmocka_unit_test_setup_teardown(f, reset, reset)
    const struct CMUnitTest tests[] = {
        TEST(every_family_has_help_then_type_then_samples),
        TEST(every_series_has_the_pid_label_first),
        TEST(reclaimed_has_every_action_and_finding),
        TEST(starts_at_zero),
        TEST(values_follow_the_counts),
        TEST(by_site_is_bounded),
        TEST(by_site_keeps_unload_counts_apart),
        TEST(render_respects_the_buffer),
        TEST(largest_text_fits_the_write_buffer),
        TEST(no_file_without_a_path),
        TEST(due_once_a_second_while_counts_change),
        TEST(write_replaces_the_file),
        TEST(at_exit_writes_the_final_figures),
        TEST(unwritable_path_leaves_nothing),
        TEST(a_forked_child_starts_from_zero),
        TEST(a_forked_child_never_writes_a_shared_name),
    };
    return cmocka_run_group_tests_name("stats", tests, make_dir, remove_dir);
}
