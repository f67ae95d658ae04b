/*
 * The sock_diag query (core/diag.c) against a stand-in for the kernel: a thread at the other end
 * of a socket pair reads each request and answers it. A dump the kernel refuses (NLMSG_ERROR, as
 * an LSM denying sock_diag answers) fails with that errno, for the request and for each family of
 * the fallback; an MPTCP query asks by family with the protocol in INET_DIAG_REQ_PROTOCOL (its
 * number does not fit the request's 8-bit field) and gets the sockets of the answer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "autoclose.h"

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif

/* What the stand-in does with each request, and what it saw. */
struct kernel {
    int fd;
    int requests;    /* to answer before it ends */
    int refuse_with; /* an errno: NLMSG_ERROR; 0: one socket, then NLMSG_DONE */
    uint16_t types[4];
    uint8_t protocols[4];
    uint32_t protocol_attr[4]; /* INET_DIAG_REQ_PROTOCOL's value, 0 when absent */
};

static uint32_t protocol_attribute(const struct nlmsghdr *h, size_t req_len)
{
    size_t at = NLMSG_ALIGN(NLMSG_LENGTH(req_len));
    while (at + NLA_HDRLEN <= h->nlmsg_len) {
        const struct nlattr *a = (const void *)((const char *)h + at);
        if (a->nla_len < NLA_HDRLEN)
            break;
        if (a->nla_type == INET_DIAG_REQ_PROTOCOL && a->nla_len >= NLA_HDRLEN + 4) {
            uint32_t v;
            memcpy(&v, (const char *)a + NLA_HDRLEN, sizeof v);
            return v;
        }
        at += NLA_ALIGN(a->nla_len);
    }
    return 0;
}

static void *stand_in(void *arg)
{
    struct kernel *k = arg;
    for (int i = 0; i < k->requests; i++) {
        char req[2048] __attribute__((aligned(8)));
        ssize_t n = recv(k->fd, req, sizeof req, 0);
        if (n < (ssize_t)sizeof(struct nlmsghdr))
            return NULL;
        const struct nlmsghdr *h = (const void *)req;
        k->types[i] = h->nlmsg_type;
        if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY) {
            const struct inet_diag_req_v2 *r = NLMSG_DATA(h);
            k->protocols[i] = r->sdiag_protocol;
            k->protocol_attr[i] = protocol_attribute(h, sizeof *r);
        }
        char answer[512] __attribute__((aligned(8)));
        memset(answer, 0, sizeof answer);
        size_t len;
        if (k->refuse_with) {
            struct nlmsghdr *e = (void *)answer;
            *e = (struct nlmsghdr){.nlmsg_len = NLMSG_LENGTH(sizeof(struct nlmsgerr)),
                                   .nlmsg_type = NLMSG_ERROR,
                                   .nlmsg_seq = h->nlmsg_seq};
            struct nlmsgerr *body = NLMSG_DATA(e);
            body->error = -k->refuse_with;
            body->msg = *h;
            len = e->nlmsg_len;
        } else {
            struct nlmsghdr *m = (void *)answer;
            *m = (struct nlmsghdr){.nlmsg_len = NLMSG_LENGTH(sizeof(struct inet_diag_msg)),
                                   .nlmsg_type = SOCK_DIAG_BY_FAMILY,
                                   .nlmsg_seq = h->nlmsg_seq};
            struct inet_diag_msg *d = NLMSG_DATA(m);
            d->idiag_family = AF_INET;
            d->idiag_state = AC_TCP_CLOSE_WAIT;
            d->id.idiag_sport = htons(10540);
            d->id.idiag_dport = htons(40000 + i);
            d->idiag_inode = 1000 + i;
            struct nlmsghdr *done = (void *)(answer + NLMSG_ALIGN(m->nlmsg_len));
            *done = (struct nlmsghdr){.nlmsg_len = NLMSG_LENGTH(sizeof(int)),
                                      .nlmsg_type = NLMSG_DONE,
                                      .nlmsg_seq = h->nlmsg_seq};
            len = NLMSG_ALIGN(m->nlmsg_len) + done->nlmsg_len;
        }
        if (send(k->fd, answer, len, 0) != (ssize_t)len)
            return NULL;
    }
    return NULL;
}

struct seen {
    int n;
    uint32_t ino[4];
};

static bool visit(const struct ac_diag_socket *s, void *ctx)
{
    struct seen *seen = ctx;
    if (seen->n < 4)
        seen->ino[seen->n] = s->ino;
    seen->n++;
    return true;
}

static void forget(void *ctx)
{
    ((struct seen *)ctx)->n = 0;
}

/* Runs one query against the stand-in, which answers `requests` requests. */
static bool ask(struct kernel *k, int protocol, int *fatal, int *error, struct seen *seen)
{
    int pair[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, pair), 0);
    k->fd = pair[1];
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, stand_in, k), 0);
    struct ac_diag_channel via = {.fd = pair[0]};
    struct ac_diag_query q = {.states = 1u << AC_TCP_CLOSE_WAIT,
                              .visit = visit,
                              .restart = forget,
                              .ctx = seen,
                              .via = &via,
                              .protocol = protocol,
                              .error = error};
    bool ok = ac_diag_tcp(&q, fatal);
    pthread_join(t, NULL);
    close(pair[0]);
    close(pair[1]);
    return ok;
}

static void a_refused_dump_says_why(void **state)
{
    (void)state;
    /* The old request, then the fallback's one per family: each refused. */
    struct kernel k = {.requests = 3, .refuse_with = EACCES};
    struct seen seen = {0};
    int fatal = -1, error = -1;
    assert_false(ask(&k, 0, &fatal, &error, &seen));
    assert_int_equal(fatal, 0);
    assert_int_equal(error, EACCES);
    assert_int_equal(k.types[0], TCPDIAG_GETSOCK);
    assert_int_equal(k.types[1], SOCK_DIAG_BY_FAMILY);
    assert_int_equal(k.types[2], SOCK_DIAG_BY_FAMILY);
    assert_int_equal(k.protocols[1], IPPROTO_TCP);
    assert_int_equal(k.protocol_attr[1], 0);
    assert_int_equal(seen.n, 0);

    k = (struct kernel){.requests = 3, .refuse_with = EPERM};
    assert_false(ask(&k, 0, &fatal, &error, &seen));
    assert_int_equal(error, EPERM);
}

static void a_dump_that_works_says_nothing(void **state)
{
    (void)state;
    struct kernel k = {.requests = 1};
    struct seen seen = {0};
    int fatal = -1, error = -1;
    assert_true(ask(&k, 0, &fatal, &error, &seen));
    assert_int_equal(error, 0);
    assert_int_equal(seen.n, 1);
    assert_int_equal(seen.ino[0], 1000);
}

static void mptcp_is_asked_by_family_with_its_protocol(void **state)
{
    (void)state;
    struct kernel k = {.requests = 2};
    struct seen seen = {0};
    int fatal = -1, error = -1;
    assert_true(ask(&k, IPPROTO_MPTCP, &fatal, &error, &seen));
    assert_int_equal(error, 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(k.types[i], SOCK_DIAG_BY_FAMILY);
        assert_int_equal(k.protocol_attr[i], IPPROTO_MPTCP);
    }
    assert_int_equal(seen.n, 2);

    k = (struct kernel){.requests = 2, .refuse_with = ENOENT}; /* no mptcp_diag */
    assert_false(ask(&k, IPPROTO_MPTCP, &fatal, &error, &seen));
    assert_int_equal(error, ENOENT);
}

int main(void)
{
    ac_real_resolve();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_refused_dump_says_why),
        cmocka_unit_test(a_dump_that_works_says_nothing),
        cmocka_unit_test(mptcp_is_asked_by_family_with_its_protocol),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
