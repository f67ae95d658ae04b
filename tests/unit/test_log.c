/*
 * The log under contention: while one thread's line is being written, another thread's line
 * waits for it and then goes to the same place, AUTOCLOSE_LOG_FILE, never to stderr.
 *
 * Four threads write long lines at once into the log file (a plain file: the log never writes
 * into a FIFO, a device or a file with a second link), so every writer meets another's line in
 * progress. Then a planted symlink, a FIFO and a hard link are each refused as the log file; and
 * the rate limit's count of dropped lines is due when its window closes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "autoclose.h"

#define WRITERS          4
#define LINES_PER_WRITER 12 /* 48 lines: within the log's burst of 50, so none is rate-limited */
#define LINES            (WRITERS * LINES_PER_WRITER)

static char dir[64];
static char log_path[128];

static size_t count_lines(const char *s, size_t n)
{
    size_t lines = 0;
    for (size_t i = 0; i < n; i++)
        lines += s[i] == '\n';
    return lines;
}

static char text[64 * 1024];

static size_t read_whole(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    text[n > 0 ? n : 0] = '\0';
    return n > 0 ? (size_t)n : 0;
}

static void *write_lines(void *arg)
{
    int writer = (int)(intptr_t)arg;
    char msg[400];
    for (int i = 0; i < LINES_PER_WRITER; i++) {
        snprintf(msg, sizeof msg, "writer=%d line=%d %0320d", writer, i, 0);
        ac_log(AC_LOG_INFO, msg);
    }
    return NULL;
}

static void contended_lines_all_reach_the_log_file(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/autoclose-test-log.XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(log_path, sizeof log_path, "%s/log", dir);

    /* stderr to a file of its own while the writers run: anything the log diverts lands there. */
    char err_path[128];
    snprintf(err_path, sizeof err_path, "%s/stderr", dir);
    int err_fd = open(err_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(err_fd >= 0);
    int saved_stderr = dup(2);
    dup2(err_fd, 2);

    ac_cfg.log_level = AC_LOG_INFO;
    snprintf(ac_cfg.log_file, sizeof ac_cfg.log_file, "%s", log_path);
    ac_log_start();
    pthread_t writers[WRITERS];
    for (int w = 0; w < WRITERS; w++)
        assert_int_equal(pthread_create(&writers[w], NULL, write_lines, (void *)(intptr_t)w), 0);
    for (int w = 0; w < WRITERS; w++)
        pthread_join(writers[w], NULL);

    dup2(saved_stderr, 2);
    close(saved_stderr);
    struct stat st;
    assert_int_equal(fstat(err_fd, &st), 0);
    close(err_fd);

    size_t len = read_whole(log_path);
    size_t got = count_lines(text, len);
    if (got != LINES || st.st_size != 0)
        fail_msg("%zu of %d lines reached the log file; %lld bytes went to stderr", got, LINES,
                 (long long)st.st_size);
    /* Whole lines, never two interleaved: each starts with the time and the library's name. */
    for (int w = 0; w < WRITERS; w++) {
        for (int i = 0; i < LINES_PER_WRITER; i++) {
            char want[64];
            snprintf(want, sizeof want, "]: writer=%d line=%d ", w, i);
            if (strstr(text, want) == NULL)
                fail_msg("missing from the log file: %s", want + 3);
        }
    }
    unlink(err_path);
    unlink(log_path);
    rmdir(dir);
}

/* A log file name that is a planted symlink, a FIFO or a second link to another file: the line
 * goes to stderr, with one line saying why, and the file behind the name is never written. */
static void refuses_what_is_no_plain_file(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/autoclose-test-log.XXXXXX");
    assert_non_null(mkdtemp(dir));
    char victim[160], err_path[160];
    snprintf(victim, sizeof victim, "%s/victim", dir);
    snprintf(err_path, sizeof err_path, "%s/stderr", dir);
    int v = open(victim, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(v >= 0 && write(v, "secret\n", 7) == 7);
    close(v);
    static const char *const kinds[] = {"symlink", "fifo", "hardlink"};
    for (size_t k = 0; k < 3; k++) {
        snprintf(log_path, sizeof log_path, "%s/%s", dir, kinds[k]);
        if (k == 0)
            assert_int_equal(symlink(victim, log_path), 0);
        else if (k == 1)
            assert_int_equal(mkfifo(log_path, 0600), 0);
        else
            assert_int_equal(link(victim, log_path), 0);
        int err_fd = open(err_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
        int saved_stderr = dup(2);
        dup2(err_fd, 2);
        ac_log_capture_stderr();
        ac_cfg.log_level = AC_LOG_INFO;
        snprintf(ac_cfg.log_file, sizeof ac_cfg.log_file, "%s", log_path);
        ac_log_start();
        ac_log_unlimited(AC_LOG_INFO, "a line for the log"); /* past the burst: no rate limit */
        dup2(saved_stderr, 2);
        close(saved_stderr);
        close(err_fd);
        ac_log_capture_stderr();
        size_t len = read_whole(victim);
        if (len != 7 || strcmp(text, "secret\n") != 0)
            fail_msg("%s: the file behind the log's name was written: %s", kinds[k], text);
        read_whole(err_path);
        if (strstr(text, "a line for the log") == NULL ||
            strstr(text, "cannot open AUTOCLOSE_LOG_FILE") == NULL)
            fail_msg("%s: the line did not go to stderr with the reason: %s", kinds[k], text);
        unlink(log_path);
    }
    ac_cfg.log_file[0] = '\0';
    ac_log_start();
    unlink(victim);
    unlink(err_path);
    rmdir(dir);
}

/* The rate limit's count of dropped lines is due a second after the first line it dropped (the
 * library's thread then says it, ac_log_say_dropped), not only with the next line let through;
 * and it counts exactly the lines that did not go out. */
static void dropped_lines_counted_when_the_window_closes(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/autoclose-test-log.XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(log_path, sizeof log_path, "%s/log", dir);
    ac_cfg.log_level = AC_LOG_INFO;
    snprintf(ac_cfg.log_file, sizeof ac_cfg.log_file, "%s", log_path);
    ac_log_start();

    /* Lines until the bucket is empty and one is dropped: that opens the window. */
    int calls = 0;
    uint64_t first_drop = 0;
    while (ac_log_note_due() == UINT64_MAX && calls < 1000) {
        first_drop = ac_now_ms();
        ac_log(AC_LOG_INFO, "storm line");
        calls++;
    }
    uint64_t due = ac_log_note_due();
    assert_true(due != UINT64_MAX);
    assert_in_range(due, first_drop + 1000, ac_now_ms() + 1000);
    for (int i = 0; i < 5; i++, calls++)
        ac_log(AC_LOG_INFO, "storm line");

    ac_log_say_dropped(due - 1); /* the window is still open: nothing said */
    size_t len = read_whole(log_path);
    assert_null(strstr(text, "suppressed"));
    size_t shown = count_lines(text, len);

    ac_log_say_dropped(due);
    len = read_whole(log_path);
    assert_int_equal(count_lines(text, len), shown + 1);
    const char *note = strstr(text, "log lines suppressed by the rate limit");
    assert_non_null(note);
    assert_true(note > text && strchr(note, '\n')[1] == '\0'); /* the last line */
    const char *num = note - 1; /* "<N> log lines ...": back over the blank, then the digits */
    while (num > text && num[-1] >= '0' && num[-1] <= '9')
        num--;
    assert_int_equal(strtol(num, NULL, 10), calls - (int)shown);
    assert_int_equal(ac_log_note_due(), UINT64_MAX); /* the window is closed */

    ac_cfg.log_file[0] = '\0';
    ac_log_start();
    unlink(log_path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(contended_lines_all_reach_the_log_file),
        cmocka_unit_test(refuses_what_is_no_plain_file),
        cmocka_unit_test(dropped_lines_counted_when_the_window_closes),
    };
    return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
