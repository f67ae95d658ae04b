/*
 * The sweep's sock_diag filter: the bytecode ac_diag_port_filter writes must pass the kernel's
 * check of a program (inet_diag_bc_audit) and, run as the kernel runs it (inet_diag_bc_run),
 * accept a socket exactly when its local port lies in one of the local ranges or its peer port in
 * one of the peer ranges. Both kernel functions are restated here from net/ipv4/inet_diag.c, for
 * the operations the filter uses. And the ports the library learns (ports.c) may be merged into
 * a few wider ranges, but a known port is never left out.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "autoclose.h"

/* inet_diag.c's valid_cc: `cc` bytes from the end is where some operation starts. */
static bool valid_cc(const uint8_t *bc, int len, int cc)
{
    while (len >= 0) {
        const struct inet_diag_bc_op *op = (const void *)bc;
        if (cc > len)
            return false;
        if (cc == len)
            return true;
        if (op->yes < 4 || op->yes & 3)
            return false;
        len -= op->yes;
        bc += op->yes;
    }
    return false;
}

/* inet_diag_bc_audit, for the operations a port filter uses. */
static bool audit(const uint8_t *bytecode, int bytecode_len)
{
    const uint8_t *bc = bytecode;
    int len = bytecode_len;
    if (len < (int)sizeof(struct inet_diag_bc_op))
        return false;
    while (len > 0) {
        int min_len = sizeof(struct inet_diag_bc_op);
        const struct inet_diag_bc_op *op = (const void *)bc;
        switch (op->code) {
        case INET_DIAG_BC_S_GE:
        case INET_DIAG_BC_S_LE:
        case INET_DIAG_BC_D_GE:
        case INET_DIAG_BC_D_LE:
            min_len += sizeof(struct inet_diag_bc_op);
            if (len < min_len)
                return false;
            break;
        case INET_DIAG_BC_JMP:
        case INET_DIAG_BC_NOP:
            break;
        default:
            return false;
        }
        if (op->code != INET_DIAG_BC_NOP) {
            if (op->no < min_len || op->no > len + 4 || op->no & 3)
                return false;
            if (op->no < len && !valid_cc(bytecode, bytecode_len, len - op->no))
                return false;
        }
        if (op->yes < min_len || op->yes > len + 4 || op->yes & 3)
            return false;
        bc += op->yes;
        len -= op->yes;
    }
    return len == 0;
}

/* inet_diag_bc_run: true when the socket passes. */
static bool run(const uint8_t *bc, int len, unsigned sport, unsigned dport)
{
    while (len > 0) {
        const struct inet_diag_bc_op *op = (const void *)bc;
        bool yes = true;
        switch (op->code) {
        case INET_DIAG_BC_JMP:
            yes = false;
            break;
        case INET_DIAG_BC_S_GE:
            yes = sport >= op[1].no;
            break;
        case INET_DIAG_BC_S_LE:
            yes = sport <= op[1].no;
            break;
        case INET_DIAG_BC_D_GE:
            yes = dport >= op[1].no;
            break;
        case INET_DIAG_BC_D_LE:
            yes = dport <= op[1].no;
            break;
        }
        int step = yes ? op->yes : op->no;
        len -= step;
        bc += step;
    }
    return len == 0;
}

static bool in_ranges(const struct ac_port_range *r, size_t n, unsigned port)
{
    for (size_t i = 0; i < n; i++)
        if (port >= r[i].lo && port <= r[i].hi)
            return true;
    return false;
}

/* Every local port against a peer port in and out of the peer ranges, and the other way round. */
static void check(const struct ac_port_range *local, size_t n_local,
                  const struct ac_port_range *peer, size_t n_peer)
{
    uint8_t program[1024];
    size_t len = ac_diag_port_filter(local, n_local, peer, n_peer, program, sizeof program);
    assert_int_equal(len, (n_local + n_peer) * AC_DIAG_FILTER_RANGE_BYTES);
    assert_true(audit(program, (int)len));
    static const unsigned others[] = {0, 1, 80, 10540, 32768, 65535};
    for (unsigned p = 0; p <= 65535; p++) {
        for (size_t i = 0; i < sizeof others / sizeof *others; i++) {
            unsigned o = others[i];
            bool want = in_ranges(local, n_local, p) || in_ranges(peer, n_peer, o);
            assert_int_equal(run(program, (int)len, p, o), want);
            want = in_ranges(local, n_local, o) || in_ranges(peer, n_peer, p);
            assert_int_equal(run(program, (int)len, o, p), want);
        }
    }
}

static void one_local_port(void **state)
{
    (void)state;
    struct ac_port_range r = {10540, 10540};
    check(&r, 1, NULL, 0);
}

static void one_peer_range(void **state)
{
    (void)state;
    struct ac_port_range r = {10540, 10542};
    check(NULL, 0, &r, 1);
}

static void both_sides_at_the_edges(void **state)
{
    (void)state;
    struct ac_port_range local[] = {{0, 0}, {80, 80}, {65535, 65535}};
    struct ac_port_range peer[] = {{1, 1023}, {10540, 10541}, {60000, 65535}};
    check(local, 3, peer, 3);
}

static void random_ranges(void **state)
{
    (void)state;
    srand(7);
    for (int round = 0; round < 20; round++) {
        struct ac_port_range local[8], peer[8];
        size_t nl = (size_t)(rand() % 9), np = (size_t)(rand() % 9);
        if (nl + np == 0)
            nl = 1;
        for (size_t i = 0; i < nl + np; i++) {
            unsigned a = (unsigned)rand() % 65536, b = a + (unsigned)rand() % 200;
            struct ac_port_range r = {(uint16_t)a, (uint16_t)(b > 65535 ? 65535 : b)};
            if (i < nl)
                local[i] = r;
            else
                peer[i - nl] = r;
        }
        check(local, nl, peer, np);
    }
}

static void nothing_or_too_long_is_no_filter(void **state)
{
    (void)state;
    uint8_t program[64];
    struct ac_port_range r[4] = {{1, 1}, {2, 2}, {3, 3}, {4, 4}};
    assert_int_equal(ac_diag_port_filter(NULL, 0, NULL, 0, program, sizeof program), 0);
    assert_int_equal(ac_diag_port_filter(r, 4, NULL, 0, program, sizeof program), 0);
}

/* ports.c: many peer ports, far apart, become a few ranges that still hold every one. */
static void learned_ports_are_never_left_out(void **state)
{
    (void)state;
    static unsigned ports[300];
    srand(11);
    for (size_t i = 0; i < 300; i++) {
        ports[i] = 1 + (unsigned)rand() % 65535;
        struct sockaddr_in6 to = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)ports[i])};
        ac_ports_connecting((const struct sockaddr *)&to, sizeof to);
    }
    struct sockaddr_in to4 = {.sin_family = AF_INET, .sin_port = htons(10540)};
    ac_ports_connecting((const struct sockaddr *)&to4, sizeof to4);
    const uint8_t *program;
    size_t len = ac_ports_filter(&program);
    assert_true(len > 0 && len <= 16 * AC_DIAG_FILTER_RANGE_BYTES);
    assert_true(audit(program, (int)len));
    for (size_t i = 0; i < 300; i++)
        assert_true(run(program, (int)len, 0, ports[i]));
    assert_true(run(program, (int)len, 0, 10540));
    /* An address too short to hold a port, or of another family, teaches nothing. */
    const uint8_t *before = program;
    uint8_t copy[16 * AC_DIAG_FILTER_RANGE_BYTES];
    memcpy(copy, before, len);
    struct sockaddr_in short_one = {.sin_family = AF_INET, .sin_port = htons(7)};
    ac_ports_connecting((const struct sockaddr *)&short_one, 3);
    struct sockaddr_in other = {.sin_family = AF_UNIX, .sin_port = htons(7)};
    ac_ports_connecting((const struct sockaddr *)&other, sizeof other);
    assert_int_equal(ac_ports_filter(&program), len);
    assert_memory_equal(program, copy, len);
    /* An IPv6 address of 24 bytes (no scope), as the kernel takes it, does. */
    struct sockaddr_in6 rfc2133 = {.sin6_family = AF_INET6, .sin6_port = htons(7)};
    ac_ports_connecting((const struct sockaddr *)&rfc2133, 24);
    len = ac_ports_filter(&program);
    assert_true(run(program, (int)len, 0, 7));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_local_port),
        cmocka_unit_test(one_peer_range),
        cmocka_unit_test(both_sides_at_the_edges),
        cmocka_unit_test(random_ranges),
        cmocka_unit_test(nothing_or_too_long_is_no_filter),
        cmocka_unit_test(learned_ports_are_never_left_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
