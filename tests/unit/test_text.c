/*
 * The log line builder and the log's rate limit. The builder runs where nothing may allocate
 * and every line has a fixed buffer, so the bound and the terminating NUL are checked for each
 * kind of writer, with a guard past the buffer's end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "autoclose.h"

/* A buffer of `cap` bytes inside a larger area filled with a guard byte. */
struct guarded {
    char area[96];
    struct ac_text t;
};

static void guarded_init(struct guarded *g, size_t cap)
{
    memset(g->area, 'X', sizeof g->area);
    ac_text_init(&g->t, g->area, cap);
}

static void assert_bounded(const struct guarded *g, size_t cap)
{
    if (cap == 0) {
        assert_int_equal(g->area[0], 'X');
        assert_int_equal(g->t.len, 0);
    } else {
        assert_true(g->t.len < cap);
        assert_int_equal(strlen(g->area), g->t.len);
    }
    for (size_t i = cap; i < sizeof g->area; i++)
        if (g->area[i] != 'X')
            fail_msg("byte %zu past a buffer of %zu was written", i, cap);
}

/* ---- bounds ------------------------------------------------------------------------------ */

static void str_fills_then_stops(void **state)
{
    (void)state;
    struct guarded g;
    guarded_init(&g, 8);
    assert_string_equal(g.area, "");
    ac_text_str(&g.t, "hello, world");
    assert_string_equal(g.area, "hello, ");
    assert_int_equal(g.t.len, 7);
    ac_text_str(&g.t, "more");
    ac_text_uint(&g.t, 12345);
    ac_text_int(&g.t, -1);
    assert_string_equal(g.area, "hello, ");
    assert_bounded(&g, 8);

    guarded_init(&g, 6);
    ac_text_str(&g.t, "hello");
    assert_string_equal(g.area, "hello");
    ac_text_str(&g.t, "!");
    assert_string_equal(g.area, "hello");
    assert_bounded(&g, 6);

    guarded_init(&g, 32);
    ac_text_str(&g.t, "a");
    ac_text_str(&g.t, NULL);
    ac_text_str(&g.t, "");
    ac_text_str(&g.t, "b");
    assert_string_equal(g.area, "ab");
    assert_int_equal(g.t.len, 2);
}

static void tiny_buffers(void **state)
{
    (void)state;
    struct guarded g;
    guarded_init(&g, 1);
    assert_int_equal(g.area[0], '\0');
    ac_text_str(&g.t, "abc");
    ac_text_uint(&g.t, 7);
    assert_int_equal(g.area[0], '\0');
    assert_bounded(&g, 1);

    guarded_init(&g, 0); /* no room even for the NUL: nothing is written */
    ac_text_str(&g.t, "abc");
    ac_text_int(&g.t, -7);
    assert_bounded(&g, 0);
}

/* Every writer, cut short at every size. */
static void every_writer_is_bounded(void **state)
{
    (void)state;
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(10540)};
    inet_pton(AF_INET6, "2001:db8:85a3::8a2e:370:7334", &in6.sin6_addr);
    for (size_t cap = 0; cap <= 48; cap++) {
        struct guarded g;
        guarded_init(&g, cap);
        ac_text_uint(&g.t, UINT64_MAX);
        assert_bounded(&g, cap);
        guarded_init(&g, cap);
        ac_text_int(&g.t, INT64_MIN);
        assert_bounded(&g, cap);
        guarded_init(&g, cap);
        ac_text_sockaddr(&g.t, (const struct sockaddr *)&in6);
        assert_bounded(&g, cap);
        guarded_init(&g, cap);
        ac_text_utc(&g.t, 1795304351, 123);
        assert_bounded(&g, cap);
        guarded_init(&g, cap);
        ac_text_quoted(&g.t, "a value\nwith a newline that goes on", 20);
        assert_bounded(&g, cap);
        guarded_init(&g, cap);
        ac_text_field(&g.t, "x\" reclaimed=9\n\\");
        assert_bounded(&g, cap);
    }
    /* Cut short, a number keeps its leading digits. */
    struct guarded g;
    guarded_init(&g, 5);
    ac_text_uint(&g.t, UINT64_MAX);
    assert_string_equal(g.area, "1844");
    guarded_init(&g, 3);
    ac_text_int(&g.t, INT64_MIN);
    assert_string_equal(g.area, "-9");
}

/* ---- numbers ----------------------------------------------------------------------------- */

static void check_uint(uint64_t v, const char *want)
{
    char buf[32];
    struct ac_text t;
    ac_text_init(&t, buf, sizeof buf);
    ac_text_uint(&t, v);
    assert_string_equal(buf, want);
    assert_int_equal(t.len, strlen(want));
}

static void check_int(int64_t v, const char *want)
{
    char buf[32];
    struct ac_text t;
    ac_text_init(&t, buf, sizeof buf);
    ac_text_int(&t, v);
    assert_string_equal(buf, want);
    assert_int_equal(t.len, strlen(want));
}

static void uint_values(void **state)
{
    (void)state;
    check_uint(0, "0");
    check_uint(1, "1");
    check_uint(9, "9");
    check_uint(10, "10");
    check_uint(100, "100");
    check_uint(4294967295u, "4294967295");
    check_uint(4294967296u, "4294967296");
    check_uint(10000000000000000000u, "10000000000000000000");
    check_uint(UINT64_MAX, "18446744073709551615");
}

static void int_values(void **state)
{
    (void)state;
    check_int(0, "0");
    check_int(1, "1");
    check_int(-1, "-1");
    check_int(-10, "-10");
    check_int(INT32_MIN, "-2147483648");
    check_int(INT64_MAX, "9223372036854775807");
    check_int(INT64_MIN, "-9223372036854775808");
    check_int(INT64_MIN + 1, "-9223372036854775807");
}

static void pieces_concatenate(void **state)
{
    (void)state;
    char buf[64];
    struct ac_text t;
    ac_text_init(&t, buf, sizeof buf);
    ac_text_str(&t, "fd=");
    ac_text_int(&t, -3);
    ac_text_str(&t, " ms=");
    ac_text_uint(&t, 0);
    assert_string_equal(buf, "fd=-3 ms=0");
    assert_int_equal(t.len, 10);
}

/* ---- addresses --------------------------------------------------------------------------- */

static void check_v4(const char *addr, uint16_t port, const char *want)
{
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(port)};
    assert_int_equal(inet_pton(AF_INET, addr, &in.sin_addr), 1);
    char buf[64];
    struct ac_text t;
    ac_text_init(&t, buf, sizeof buf);
    ac_text_sockaddr(&t, (const struct sockaddr *)&in);
    assert_string_equal(buf, want);
}

static void check_v6(const char *addr, uint16_t port, const char *want)
{
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
    assert_int_equal(inet_pton(AF_INET6, addr, &in6.sin6_addr), 1);
    char buf[80];
    struct ac_text t;
    ac_text_init(&t, buf, sizeof buf);
    ac_text_sockaddr(&t, (const struct sockaddr *)&in6);
    assert_string_equal(buf, want);
}

static void sockaddr_ipv4(void **state)
{
    (void)state;
    check_v4("127.0.0.1", 10540, "127.0.0.1:10540");
    check_v4("0.0.0.0", 0, "0.0.0.0:0");
    check_v4("255.255.255.255", 65535, "255.255.255.255:65535");
    check_v4("192.0.2.7", 80, "192.0.2.7:80");
}

static void sockaddr_ipv6(void **state)
{
    (void)state;
    check_v6("::1", 10540, "[::1]:10540");
    check_v6("::", 0, "[::]:0");
    check_v6("2001:db8::1", 443, "[2001:db8::1]:443");
    check_v6("::ffff:192.0.2.1", 80, "[::ffff:192.0.2.1]:80");
    check_v6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535,
             "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
}

static void sockaddr_other_family(void **state)
{
    (void)state;
    struct sockaddr_un un = {.sun_family = AF_UNIX, .sun_path = "/tmp/x"};
    char buf[32];
    struct ac_text t;
    ac_text_init(&t, buf, sizeof buf);
    ac_text_sockaddr(&t, (const struct sockaddr *)&un);
    assert_string_equal(buf, "?");
}

/* ---- time -------------------------------------------------------------------------------- */

static void check_utc(int64_t sec, long msec, const char *want)
{
    char buf[48];
    struct ac_text t;
    ac_text_init(&t, buf, sizeof buf);
    ac_text_utc(&t, sec, msec);
    if (strcmp(buf, want) != 0)
        fail_msg("%lld.%03ld gave \"%s\", expected \"%s\"", (long long)sec, msec, buf, want);
}

/* Expected strings are `date -u -d @SECONDS +%FT%T` with the milliseconds added. */
static void utc_known_instants(void **state)
{
    (void)state;
    check_utc(0, 0, "1970-01-01T00:00:00.000Z");
    check_utc(951782400, 0, "2000-02-29T00:00:00.000Z");
    check_utc(951868799, 999, "2000-02-29T23:59:59.999Z");
    check_utc(1795304351, 123, "2026-11-21T23:39:11.123Z");
    check_utc(4107542399, 5, "2100-02-28T23:59:59.005Z");
    check_utc(4107542400, 50, "2100-03-01T00:00:00.050Z"); /* 2100 is not a leap year */
    check_utc(253402300799, 0, "9999-12-31T23:59:59.000Z");
}

static void utc_before_1970(void **state)
{
    (void)state;
    check_utc(-1, 0, "1969-12-31T23:59:59.000Z");
    check_utc(-86400, 0, "1969-12-31T00:00:00.000Z");
    check_utc(-86400001, 7, "1967-04-06T23:59:59.007Z");
    check_utc(-2208988800, 0, "1900-01-01T00:00:00.000Z");
}

/* ---- quoting ----------------------------------------------------------------------------- */

static void check_quoted(const char *s, size_t max, const char *want)
{
    char buf[96];
    struct ac_text t;
    ac_text_init(&t, buf, sizeof buf);
    ac_text_quoted(&t, s, max);
    assert_string_equal(buf, want);
}

static void quoted_values(void **state)
{
    (void)state;
    check_quoted("abc", 64, "'abc'");
    check_quoted("", 64, "''");
    check_quoted("with space", 64, "'with space'");
    check_quoted("a\nb", 64, "'a?b'");
    check_quoted("a\r\nlibautoclose[1]: forged", 64, "'a??libautoclose[1]: forged'");
    check_quoted("\t\x1b[31m", 64, "'??[31m'");
    check_quoted("\x7f\x01", 64, "'?\?'");
    check_quoted("caf\xc3\xa9", 64, "'caf?\?'");
    check_quoted("it's", 64, "'it?s'"); /* a quote would end the quoted value early */
    check_quoted("~!\"#", 64, "'~!\"#'");
}

static void quoted_truncation(void **state)
{
    (void)state;
    check_quoted("abcdefgh", 4, "'abcd'...");
    check_quoted("abc", 3, "'abc'");
    check_quoted("abcd", 3, "'abc'...");
    check_quoted("a", 0, "''...");
    check_quoted("", 0, "''");
    check_quoted("\n\n\n\n\n", 2, "'?\?'...");
}

static void check_field(const char *s, const char *want)
{
    char buf[96];
    struct ac_text t;
    ac_text_init(&t, buf, sizeof buf);
    ac_text_field(&t, s);
    assert_string_equal(buf, want);
}

/* A process's name in a key=value line: one field whatever it holds. */
static void field_values(void **state)
{
    (void)state;
    check_field("mosserver", "\"mosserver\"");
    check_field("", "\"\"");
    check_field("x reclaimed=9 p", "\"x reclaimed=9 p\"");
    check_field("x\" pid=1", "\"x\\\" pid=1\"");
    check_field("a\\", "\"a\\\\\"");
    check_field("a\nb\tc", "\"a\\x0ab\\x09c\"");
    check_field("\x7f\x1b[31m", "\"\\x7f\\x1b[31m\"");
    check_field("caf\xc3\xa9", "\"caf\\xc3\\xa9\"");
    check_field("it's", "\"it's\"");
}

/* ---- rate limit -------------------------------------------------------------------------- */

static void rate_burst_then_refusal(void **state)
{
    (void)state;
    struct ac_rate r = {.tokens = 5};
    for (int i = 0; i < 5; i++)
        assert_true(ac_rate_take(&r, 1000, 5, 2));
    assert_int_equal(r.suppressed, 0);
    assert_false(ac_rate_take(&r, 1000, 5, 2));
    assert_int_equal(r.suppressed, 1);
    assert_false(ac_rate_take(&r, 1000, 5, 2));
    assert_false(ac_rate_take(&r, 1001, 5, 2));
    assert_int_equal(r.suppressed, 3);
    assert_int_equal(r.tokens, 0);
}

static void rate_refills_per_second(void **state)
{
    (void)state;
    struct ac_rate r = {.tokens = 5};
    for (int i = 0; i < 5; i++)
        assert_true(ac_rate_take(&r, 1000, 5, 2));
    assert_false(ac_rate_take(&r, 1499, 5, 2)); /* not yet a whole token */
    assert_true(ac_rate_take(&r, 2000, 5, 2));  /* one second: two tokens */
    assert_true(ac_rate_take(&r, 2000, 5, 2));
    assert_false(ac_rate_take(&r, 2000, 5, 2));
    assert_int_equal(r.suppressed, 2);

    /* Ten a second: one every 100 ms. */
    struct ac_rate q = {.tokens = 1};
    assert_true(ac_rate_take(&q, 5000, 50, 10));
    assert_false(ac_rate_take(&q, 5050, 50, 10));
    assert_true(ac_rate_take(&q, 5100, 50, 10));
    assert_false(ac_rate_take(&q, 5100, 50, 10));
    assert_true(ac_rate_take(&q, 5200, 50, 10));
    assert_int_equal(q.suppressed, 2);
    /* A success does not clear the count: the logger reports and resets it. */
    assert_true(ac_rate_take(&q, 5300, 50, 10));
    assert_int_equal(q.suppressed, 2);
}

static void rate_long_idle_caps_at_burst(void **state)
{
    (void)state;
    struct ac_rate r = {.tokens = 3};
    for (int i = 0; i < 3; i++)
        assert_true(ac_rate_take(&r, 1000, 3, 10));
    assert_false(ac_rate_take(&r, 1000, 3, 10));
    uint64_t later = 1000 + 1000000000ull; /* eleven days */
    for (int i = 0; i < 3; i++)
        assert_true(ac_rate_take(&r, later, 3, 10));
    assert_false(ac_rate_take(&r, later, 3, 10));
    assert_true(r.tokens <= 3);

    /* A bucket never drained: still no more than the burst. */
    struct ac_rate q = {.tokens = 4};
    assert_true(ac_rate_take(&q, 1000, 4, 1000));
    assert_true(ac_rate_take(&q, 1000 + 3600 * 1000, 4, 1000));
    assert_true(q.tokens <= 3);
}

/* A steady stream just above the limit (one line every 95 ms against ten a second) must get
 * ten lines a second through once the burst is spent. A refill that only counts whole tokens
 * and then restarts its clock at `now` throws away the part of a token already earned, and
 * lets through about one line in two. */
static void rate_keeps_partial_refill(void **state)
{
    (void)state;
    struct ac_rate r = {.last_ms = 1000, .tokens = 0};
    unsigned granted = 0;
    uint64_t t;
    for (t = 1000 + 95; t <= 1000 + 10000; t += 95)
        granted += ac_rate_take(&r, t, 50, 10);
    /* In the 9975 ms covered, 99 whole tokens were earned. */
    if (granted < 98 || granted > 100)
        fail_msg("%u lines let through in 10 s at 10/s (expected 98-100), %u suppressed", granted,
                 r.suppressed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(str_fills_then_stops),
        cmocka_unit_test(tiny_buffers),
        cmocka_unit_test(every_writer_is_bounded),
        cmocka_unit_test(uint_values),
        cmocka_unit_test(int_values),
        cmocka_unit_test(pieces_concatenate),
        cmocka_unit_test(sockaddr_ipv4),
        cmocka_unit_test(sockaddr_ipv6),
        cmocka_unit_test(sockaddr_other_family),
        cmocka_unit_test(utc_known_instants),
        cmocka_unit_test(utc_before_1970),
        cmocka_unit_test(quoted_values),
        cmocka_unit_test(quoted_truncation),
        cmocka_unit_test(field_values),
        cmocka_unit_test(rate_burst_then_refusal),
        cmocka_unit_test(rate_refills_per_second),
        cmocka_unit_test(rate_long_idle_caps_at_burst),
        cmocka_unit_test(rate_keeps_partial_refill),
    };
    return cmocka_run_group_tests_name("text", tests, NULL, NULL);
}
