/*
 * What a reclaimed number answers (reclaimed.c). The tracker is told that a dead socket made here
 * is a reclaimed number, and the answers come from what it keeps (the family), never from the
 * socket. The answers themselves are the kernel's for a closed TCP connection, as
 * t_reclaimed_answers measures; here: the lengths and errors around them, that a number the
 * tracker does not know as reclaimed (or that holds something else now) gets the real call's
 * answer, and the lock-free hint for numbers above the state table, where only the tracker knows.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "autoclose.h"

#define HIGH 90001 /* above the state table: no descriptor here has it */

static void track(int fd, int family, const struct ac_identity *id)
{
    sigset_t saved;
    ac_tracker_lock(&saved);
    ac_tracker_add(fd, id, AC_FOUND_READ, 1000, 2000);
    ac_tracker_settle(fd, AC_FD_RECLAIMED, id);
    ac_tracker_set_family(fd, family);
    ac_tracker_unlock(&saved);
}

/* A dead socket, as a reclaimed number holds, that the tracker knows as reclaimed. */
static int reclaimed(int family)
{
    int pair[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
    close(pair[1]);
    struct ac_identity id;
    assert_true(ac_identity_of(pair[0], &id));
    track(pair[0], family, &id);
    return pair[0];
}

static void forget(int fd)
{
    sigset_t saved;
    ac_tracker_lock(&saved);
    ac_tracker_forget(fd);
    ac_tracker_unlock(&saved);
    close(fd);
}

static int setup(void **state)
{
    (void)state;
    ac_tracker_reset();
    return 0;
}

static int get_int(int fd, int level, int name, int *v)
{
    unsigned len = sizeof *v;
    int r = ac_reclaimed_getsockopt(fd, level, name, v, &len);
    if (r == 0)
        assert_int_equal(len, sizeof *v);
    return r;
}

static void hints(void **state)
{
    (void)state;
    int fd = reclaimed(AF_INET);
    assert_true(ac_fd_maybe_reclaimed(fd));
    assert_false(ac_fd_maybe_reclaimed(fd + 1));
    assert_false(ac_fd_maybe_reclaimed(-1));
    assert_false(ac_fd_maybe_reclaimed(HIGH));
    struct ac_identity none = {.ino = 7, .cookie = 7};
    track(HIGH, AF_INET6, &none);
    assert_int_equal(ac_high_fd_reclaimed, 1);
    /* Any high number, while one is reclaimed: the tracker tells them apart. */
    assert_true(ac_fd_maybe_reclaimed(HIGH + 1));
    forget(HIGH);
    assert_int_equal(ac_high_fd_reclaimed, 0);
    assert_false(ac_fd_maybe_reclaimed(HIGH));
    forget(fd);
    assert_false(ac_fd_maybe_reclaimed(fd));
}

static void identity_options(void **state)
{
    (void)state;
    int fd = reclaimed(AF_INET6);
    int v = -1;
    assert_int_equal(get_int(fd, SOL_SOCKET, SO_TYPE, &v), 0);
    assert_int_equal(v, SOCK_STREAM);
    assert_int_equal(get_int(fd, SOL_SOCKET, SO_DOMAIN, &v), 0);
    assert_int_equal(v, AF_INET6);
    assert_int_equal(get_int(fd, SOL_SOCKET, SO_PROTOCOL, &v), 0);
    assert_int_equal(v, IPPROTO_TCP);
    struct ucred cred = {1, 2, 3};
    unsigned len = sizeof cred;
    assert_int_equal(ac_reclaimed_getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len), 0);
    assert_int_equal(len, sizeof cred);
    assert_int_equal(cred.pid, 0);
    assert_int_equal(cred.uid, (uid_t)-1);
    assert_int_equal(cred.gid, (gid_t)-1);
    len = 64;
    char groups[64];
    assert_int_equal(ac_reclaimed_getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len), -1);
    assert_int_equal(errno, ENODATA);
    /* What no closed TCP socket differs in: the dead socket's own answer. */
    assert_int_equal(get_int(fd, SOL_SOCKET, SO_ERROR, &v), 0);
    assert_int_equal(v, 0);
    forget(fd);
}

/* As the kernel: as much as fits, the length says how much; a negative length is refused. */
static void lengths(void **state)
{
    (void)state;
    int fd = reclaimed(AF_INET);
    int v = -1;
    unsigned len = 2;
    assert_int_equal(ac_reclaimed_getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len), 0);
    assert_int_equal(len, 2);
    assert_int_equal((unsigned)v, 0xffff0000u | SOCK_STREAM);
    len = 8;
    long long wide = -1;
    assert_int_equal(ac_reclaimed_getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &wide, &len), 0);
    assert_int_equal(len, sizeof(int));
    len = (unsigned)-1;
    assert_int_equal(ac_reclaimed_getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(ac_reclaimed_getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, NULL), -1);
    assert_int_equal(errno, EFAULT);
    len = sizeof v;
    assert_int_equal(ac_reclaimed_getsockopt(fd, SOL_SOCKET, SO_TYPE, NULL, &len), -1);
    assert_int_equal(errno, EFAULT);
    unsigned char first = 0;
    len = 1;
    assert_int_equal(ac_reclaimed_getsockopt(fd, IPPROTO_TCP, TCP_INFO, &first, &len), 0);
    assert_int_equal(len, 1);
    assert_int_equal(first, 7); /* tcpi_state, TCP_CLOSE */
    forget(fd);
}

static void tcp_and_ip_levels(void **state)
{
    (void)state;
    int v4 = reclaimed(AF_INET), v6 = reclaimed(AF_INET6);
    struct tcp_info info;
    memset(&info, 0xff, sizeof info);
    unsigned len = sizeof info;
    assert_int_equal(ac_reclaimed_getsockopt(v6, IPPROTO_TCP, TCP_INFO, &info, &len), 0);
    assert_int_equal(len, sizeof info);
    assert_int_equal(info.tcpi_state, 7);
    assert_int_equal(info.tcpi_rtt, 0);
    int v = -1;
    assert_int_equal(get_int(v4, IPPROTO_TCP, TCP_NODELAY, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(get_int(v4, IPPROTO_IP, IP_TOS, &v), 0);
    assert_int_equal(get_int(v6, IPPROTO_IPV6, IPV6_V6ONLY, &v), 0);
    /* An IPv4 socket has no IPv6 level; a level neither knows is refused as each refuses it. */
    assert_int_equal(get_int(v4, IPPROTO_IPV6, IPV6_V6ONLY, &v), -1);
    assert_int_equal(errno, EOPNOTSUPP);
    assert_int_equal(get_int(v4, 999, 1, &v), -1);
    assert_int_equal(errno, EOPNOTSUPP);
    assert_int_equal(get_int(v6, 999, 1, &v), -1);
    assert_int_equal(errno, ENOPROTOOPT);
    int one = 1;
    assert_int_equal(ac_reclaimed_setsockopt(v4, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one), 0);
    assert_int_equal(ac_reclaimed_setsockopt(v4, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one), 0);
    assert_int_equal(ac_reclaimed_setsockopt(v6, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one), 0);
    assert_int_equal(ac_reclaimed_setsockopt(v4, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one), -1);
    assert_int_equal(errno, ENOPROTOOPT);
    /* Nothing was set on the dead socket, which other numbers share. */
    assert_int_equal(get_int(v4, SOL_SOCKET, SO_KEEPALIVE, &v), 0);
    assert_int_equal(v, 0);
    forget(v4);
    forget(v6);
}

static void addresses(void **state)
{
    (void)state;
    int fd = reclaimed(AF_INET6);
    struct sockaddr_in6 a;
    memset(&a, 0xff, sizeof a);
    unsigned len = sizeof a;
    assert_int_equal(ac_reclaimed_getsockname(fd, (struct sockaddr *)&a, &len), 0);
    assert_int_equal(len, sizeof a);
    assert_int_equal(a.sin6_family, AF_INET6);
    assert_int_equal(a.sin6_port, 0);
    assert_true(IN6_IS_ADDR_UNSPECIFIED(&a.sin6_addr));
    /* A short buffer gets what fits, and the length the whole address needs. */
    len = 2;
    assert_int_equal(ac_reclaimed_getsockname(fd, (struct sockaddr *)&a, &len), 0);
    assert_int_equal(len, sizeof a);
    assert_int_equal(ac_reclaimed_getsockname(fd, (struct sockaddr *)&a, NULL), -1);
    assert_int_equal(errno, EFAULT);
    len = sizeof a;
    assert_int_equal(ac_reclaimed_getpeername(fd, (struct sockaddr *)&a, &len), -1);
    assert_int_equal(errno, ENOTCONN);
    forget(fd);
}

/* A number the tracker does not know as reclaimed, or that no longer holds what the library put
 * there, gets the real call: here the dead socket's own answers. */
static void others_get_the_real_call(void **state)
{
    (void)state;
    int v;
    struct ac_identity none = {.ino = 7, .cookie = 7};
    track(HIGH, AF_INET, &none);
    assert_int_equal(get_int(HIGH, SOL_SOCKET, SO_TYPE, &v), -1); /* no such descriptor */
    assert_int_equal(errno, EBADF);
    forget(HIGH);
    /* Reclaimed, but with no family known: nothing to answer with. */
    int fd = reclaimed(0);
    assert_int_equal(get_int(fd, SOL_SOCKET, SO_DOMAIN, &v), 0);
    assert_int_equal(v, AF_UNIX);
    forget(fd);
    /* Closed where no wrapper saw, and the number given to another socket. */
    fd = reclaimed(AF_INET);
    int pair[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
    assert_int_equal(dup2(pair[0], fd), fd);
    assert_int_equal(get_int(fd, SOL_SOCKET, SO_TYPE, &v), 0);
    assert_int_equal(v, SOCK_STREAM);
    assert_int_equal(get_int(fd, SOL_SOCKET, SO_DOMAIN, &v), 0);
    assert_int_equal(v, AF_UNIX);
    struct sockaddr_un u;
    unsigned len = sizeof u;
    assert_int_equal(ac_reclaimed_getpeername(fd, (struct sockaddr *)&u, &len), 0);
    forget(fd);
    close(pair[0]);
    close(pair[1]);
    /* Forgotten (the program closed it). */
    fd = reclaimed(AF_INET);
    sigset_t saved;
    ac_tracker_lock(&saved);
    ac_tracker_forget(fd);
    ac_tracker_unlock(&saved);
    assert_int_equal(get_int(fd, SOL_SOCKET, SO_DOMAIN, &v), 0);
    assert_int_equal(v, AF_UNIX);
    close(fd);
}

/* A success leaves errno as it found it. */
static void errno_kept(void **state)
{
    (void)state;
    int fd = reclaimed(AF_INET);
    int v;
    errno = ERANGE;
    assert_int_equal(get_int(fd, SOL_SOCKET, SO_TYPE, &v), 0);
    assert_int_equal(errno, ERANGE);
    struct sockaddr_in a;
    unsigned len = sizeof a;
    assert_int_equal(ac_reclaimed_getsockname(fd, (struct sockaddr *)&a, &len), 0);
    assert_int_equal(errno, ERANGE);
    forget(fd);
}

#define TEST(f) cmocka_unit_test_setup_teardown(f, setup, setup)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(hints),     TEST(identity_options),         TEST(lengths),    TEST(tcp_and_ip_levels),
        TEST(addresses), TEST(others_get_the_real_call), TEST(errno_kept),
    };
    return cmocka_run_group_tests_name("reclaimed", tests, NULL, NULL);
}
