/*
 * The log under contention: while one thread's line is being written, another thread's line
 * waits for it and then goes to the same place, AUTOCLOSE_LOG_FILE, never to stderr.
 *
 * The log file is a FIFO with a one-page buffer, drained slowly by a reader thread, so writes
 * block part-way and every writer meets another's line in progress.
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
static char fifo_path[128];

struct reader {
    char text[64 * 1024];
    size_t len;
};

static size_t count_lines(const char *s, size_t n)
{
    size_t lines = 0;
    for (size_t i = 0; i < n; i++)
        lines += s[i] == '\n';
    return lines;
}

/* Drains the FIFO two kilobytes at a time, a tenth of a millisecond apart, until every line
 * arrived or 50,000 reads (5 s at least) went by. */
static void *drain(void *arg)
{
    struct reader *r = arg;
    int fd = open(fifo_path, O_RDONLY | O_NONBLOCK);
    if (fd < 0)
        return NULL;
    fcntl(fd, F_SETPIPE_SZ, 4096);
    struct timespec gap = {.tv_nsec = 100000};
    for (int i = 0; i < 50000 && count_lines(r->text, r->len) < LINES; i++) {
        size_t room = sizeof r->text - r->len;
        ssize_t n = read(fd, r->text + r->len, room < 2048 ? room : 2048);
        if (n > 0)
            r->len += (size_t)n;
        nanosleep(&gap, NULL);
    }
    close(fd);
    return NULL;
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
    snprintf(fifo_path, sizeof fifo_path, "%s/log.fifo", dir);
    assert_int_equal(mkfifo(fifo_path, 0600), 0);

    /* stderr to a file of its own while the writers run: anything the log diverts lands there. */
    char err_path[128];
    snprintf(err_path, sizeof err_path, "%s/stderr", dir);
    int err_fd = open(err_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(err_fd >= 0);
    int saved_stderr = dup(2);
    dup2(err_fd, 2);

    static struct reader r;
    pthread_t reader;
    assert_int_equal(pthread_create(&reader, NULL, drain, &r), 0);
    struct timespec settle = {.tv_nsec = 50000000}; /* the reader opens first: no blocking open */
    nanosleep(&settle, NULL);

    ac_cfg.log_level = AC_LOG_INFO;
    snprintf(ac_cfg.log_file, sizeof ac_cfg.log_file, "%s", fifo_path);
    ac_log_start();
    pthread_t writers[WRITERS];
    for (int w = 0; w < WRITERS; w++)
        assert_int_equal(pthread_create(&writers[w], NULL, write_lines, (void *)(intptr_t)w), 0);
    for (int w = 0; w < WRITERS; w++)
        pthread_join(writers[w], NULL);
    pthread_join(reader, NULL);

    dup2(saved_stderr, 2);
    close(saved_stderr);
    struct stat st;
    assert_int_equal(fstat(err_fd, &st), 0);
    close(err_fd);

    size_t got = count_lines(r.text, r.len);
    if (got != LINES || st.st_size != 0)
        fail_msg("%zu of %d lines reached the log file; %lld bytes went to stderr", got, LINES,
                 (long long)st.st_size);
    /* Whole lines, never two interleaved: each starts with the time and the library's name. */
    for (int w = 0; w < WRITERS; w++) {
        for (int i = 0; i < LINES_PER_WRITER; i++) {
            char want[64];
            snprintf(want, sizeof want, "]: writer=%d line=%d ", w, i);
            if (strstr(r.text, want) == NULL)
                fail_msg("missing from the log file: %s", want + 3);
        }
    }
    unlink(err_path);
    unlink(fifo_path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(contended_lines_all_reach_the_log_file),
    };
    return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
