/*
 * The table of half-closed sockets and one interval of work on it.
 *
 * The kernel lists every TCP socket in CLOSE_WAIT (one sock_diag dump, filtered by state in the
 * kernel); those outside --ports are dropped at once. A socket already in the table is only
 * marked present; one the daemon has already found belongs to nobody it watches is remembered in
 * a compact inode set (about a byte each) and skipped; only the rest are looked for in the
 * selected processes' descriptors. So the memory follows the half-closed sockets, not all
 * sockets, and a quiet host costs one dump per interval.
 *
 * The dump asks for nothing that takes a socket's lock (no TCP_INFO): a process can hold its own
 * socket's lock for as long as it likes (a send from a page a FUSE mount never supplies), and a
 * dump waiting on it would freeze the daemon. The grace runs from the peer's FIN all the same:
 * the first taker to look at a new socket dates the FIN from TCP_INFO's last_ack_recv (reclaim.c),
 * in a process that may wait on a lock without harm, and the socket's time is set from that.
 */
#include "autoclosed.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static struct ad_sock *table;      /* by inode */
static struct ac_inode_set others; /* CLOSE_WAIT sockets of processes not watched */
static bool first_cycle_done;
static uint64_t previous_look_ms; /* when the previous dump began; 0 before the first */
static size_t start_failures; /* sockets listed at the first interval that could not be reclaimed */
static uint64_t last_batch_ms; /* when the last taker was asked for (taker.c) */

/* A socket owner lookup that found nothing is tried at this many intervals before the socket
 * counts as another process's: a connection half-closed in the accept queue is accepted later.
 * A look is whole once every scan unit has scanned (owners.c: a unit's scans are spaced by their
 * cost), so no socket is written off without every selected process having been looked into. */
#define OWNER_LOOKS 3
/* Another's, but not for good: a socket may be handed to a selected process later (an acceptor
 * passing connections to workers over SCM_RIGHTS). The set is forgotten every this many looks
 * (30 s at the default interval), and its sockets looked for again; the scans' budget bounds
 * what that costs. */
#define OTHERS_KEPT_LOOKS 30

struct listing {
    struct ad_listed *v;
    size_t len, cap;
};

/* A socket of another network namespace (netns.c), or of the daemon's (netns 0). */
static bool add_listed(const struct ad_listed *s, void *ctx)
{
    struct listing *l = ctx;
    if (l->len == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        struct ad_listed *v = realloc(l->v, cap * sizeof *v);
        if (v == NULL)
            return false;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->len++] = *s;
    return true;
}

static bool collect(const struct ac_diag_socket *s, void *ctx)
{
    if (!ac_portset_has(&ad_opt.ports, s->local_port) &&
        !ac_portset_has(&ad_opt.ports, s->peer_port))
        return true;
    struct ad_listed one = {.d = *s};
    return add_listed(&one, ctx);
}

static void restart(void *ctx)
{
    ((struct listing *)ctx)->len = 0;
}

static int by_inode(const void *a, const void *b)
{
    uint32_t x = ((const struct ad_listed *)a)->d.ino, y = ((const struct ad_listed *)b)->d.ino;
    return x < y ? -1 : x > y;
}

/* The socket the table knows under that inode, not a new one that was given the number: by its
 * cookie, or (another namespace's table has none) by its ports and addresses. */
static bool same_socket(const struct ad_sock *s, const struct ad_listed *l)
{
    const struct ac_diag_socket *d = &l->d;
    if (d->cookie != 0)
        return s->diag.cookie == d->cookie;
    return s->netns == l->netns && s->diag.family == d->family &&
           s->diag.local_port == d->local_port && s->diag.peer_port == d->peer_port &&
           memcmp(s->diag.local_addr, d->local_addr, sizeof d->local_addr) == 0 &&
           memcmp(s->diag.peer_addr, d->peer_addr, sizeof d->peer_addr) == 0;
}

static void drop(struct ad_sock *s)
{
    HASH_DEL(table, s);
    free(s);
}

/* Sockets that belong to nobody watched: out of the table, into the compact set. */
static void remember_others(const uint32_t *v, size_t n)
{
    if (!ac_inode_set_assign(&others, v, n))
        ac_inode_set_clear(&others); /* no memory: looked for again, nothing worse */
}

/* Looks for the owners of the sockets that have none yet. */
static void find_owners(uint32_t **other_inos, size_t *nothers, size_t *other_cap)
{
    size_t n = 0;
    for (struct ad_sock *s = table; s; s = s->hh.next)
        n += s->state == AD_UNOWNED;
    if (n == 0)
        return;
    uint32_t *want = malloc(n * sizeof *want), *uids = malloc(n * sizeof *uids);
    struct ad_holder *found = malloc(n * sizeof *found);
    struct ad_sock **who = malloc(n * sizeof *who);
    if (!want || !uids || !found || !who)
        goto out;
    /* The table's order is the listing's, sorted by inode: so is `want`. */
    size_t i = 0;
    for (struct ad_sock *s = table; s; s = s->hh.next)
        if (s->state == AD_UNOWNED) {
            who[i] = s;
            want[i] = s->ino;
            uids[i] = s->diag.uid;
            i++;
        }
    uint64_t covered = ad_find_owners(want, uids, n, found), units = ad_scan_units();
    for (i = 0; i < n; i++) {
        struct ad_sock *s = who[i];
        if (found[i].pid != 0) {
            s->holder = found[i]; /* its process recorded by the scan */
            s->state = AD_WAITING;
            continue;
        }
        s->covered |= covered;
        if ((s->covered & units) != units)
            continue; /* a unit's scan is still to come */
        s->covered = 0;
        if (++s->looks < OWNER_LOOKS)
            continue;
        if (*nothers == *other_cap) {
            size_t cap = *other_cap ? *other_cap * 2 : 256;
            uint32_t *v = realloc(*other_inos, cap * sizeof *v);
            if (v == NULL)
                continue;
            *other_inos = v;
            *other_cap = cap;
        }
        (*other_inos)[(*nothers)++] = s->ino;
        drop(s);
    }
out:
    free(want);
    free(uids);
    free(found);
    free(who);
}

static int compare_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int by_sock_inode(const struct ad_sock *a, const struct ad_sock *b)
{
    return a->ino < b->ino ? -1 : a->ino > b->ino;
}

int ad_diag_error;

/* The kernel's list could not be read: said once for each reason (an LSM or a seccomp filter
 * refusing sock_diag would otherwise leave the leaks in place without a word). False when it
 * will not pass (no netlink socket can be made), or under --once, which cannot know then what
 * is half-closed. */
static bool list_failed(int fatal, int error)
{
    static uint64_t said[4]; /* a bit per errno below 256; 0 (no reason given) included */
    int err = fatal ? fatal : error;
    ad_diag_error = err ? err : EIO;
    unsigned bit = err >= 0 && err < 256 ? (unsigned)err : 255;
    if (!(said[bit / 64] >> (bit % 64) & 1)) {
        said[bit / 64] |= 1ull << (bit % 64);
        if (fatal)
            ad_log(AC_LOG_ERROR, "no sock_diag netlink socket here (%s): nothing can be found",
                   strerror(fatal));
        else
            ad_log(AC_LOG_ERROR,
                   "cannot read the kernel's list of TCP sockets (sock_diag: %s): nothing is "
                   "found while this lasts",
                   err ? strerror(err) : "the list ended early");
    }
    return fatal == 0 && !ad_opt.once;
}

static bool look(uint64_t now_ms)
{
    uint64_t began_ms = now_ms;
    struct listing l = {0};
    int fatal, error = 0;
    struct ac_diag_query q = {.states = 1u << AC_TCP_CLOSE_WAIT,
                              .visit = collect,
                              .restart = restart,
                              .ctx = &l,
                              .error = &error};
    if (!ac_diag_tcp(&q, &fatal)) {
        free(l.v);
        return list_failed(fatal, error);
    }
    ad_diag_error = 0;
    /* The other namespaces' (no memory: what was listed stands, the rest waits a look) */
    (void)ad_netns_look(add_listed, &l);
    if (l.len > 1)
        qsort(l.v, l.len, sizeof *l.v, by_inode);
    now_ms = ac_now_ms(); /* after the dump, so no earlier than the kernel's reading of it */

    for (struct ad_sock *s = table; s; s = s->hh.next)
        s->present = false;
    static unsigned others_looks;
    if (++others_looks >= OTHERS_KEPT_LOOKS) {
        others_looks = 0;
        ac_inode_set_clear(&others);
    }
    /* Sockets of nobody watched that are still half-closed: the set is rebuilt from them. */
    uint32_t *other_inos = NULL;
    size_t nothers = 0, other_cap = 0;
    struct ac_inode_cursor cur;
    ac_inode_cursor_start(&cur, &others);
    for (size_t i = 0; i < l.len; i++) {
        const struct ac_diag_socket *d = &l.v[i].d;
        struct ad_sock *s;
        HASH_FIND(hh, table, &d->ino, sizeof d->ino, s);
        if (s && !same_socket(s, &l.v[i])) {
            drop(s); /* the inode number was reused by a new socket */
            s = NULL;
        }
        if (s) {
            s->present = true;
            continue;
        }
        if (ac_inode_cursor_has(&cur, d->ino)) {
            if (nothers == other_cap) {
                size_t cap = other_cap ? other_cap * 2 : 256;
                uint32_t *v = realloc(other_inos, cap * sizeof *v);
                if (v == NULL)
                    continue; /* forgotten: looked for again next time */
                other_inos = v;
                other_cap = cap;
            }
            other_inos[nothers++] = d->ino;
            continue;
        }
        s = calloc(1, sizeof *s);
        if (s == NULL) {
            ad_errors_total++;
            continue;
        }
        *s = (struct ad_sock){.ino = d->ino,
                              .diag = *d,
                              .netns = l.v[i].netns,
                              .state = AD_UNOWNED,
                              .present = true,
                              .at_start = !first_cycle_done,
                              .fin_ms = now_ms, /* until a taker dates the FIN */
                              .not_before_ms = previous_look_ms};
        s->read_ms = s->fin_ms;
        HASH_ADD(hh, table, ino, sizeof s->ino, s);
    }
    free(l.v);
    /* Gone from CLOSE_WAIT (closed by the process, or shut down and finished): forgotten. */
    struct ad_sock *s, *tmp;
    HASH_ITER(hh, table, s, tmp)
    {
        if (!s->present)
            drop(s);
    }
    HASH_SORT(table, by_sock_inode);
    if (ad_opt.npids > 0)
        (void)ad_selection_poll(); /* an exit said, and never a scan of its number again */
    ad_selection_refresh();        /* --unit: its processes now */
    find_owners(&other_inos, &nothers, &other_cap);
    if (nothers > 1)
        qsort(other_inos, nothers, sizeof *other_inos, compare_u32);
    remember_others(other_inos, nothers);
    free(other_inos);

    for (s = table; s; s = s->hh.next)
        if (s->holder.pid != 0)
            ad_process_keep(s->holder.pid);
    ad_processes_prune();
    ad_gauge_reset();
    for (s = table; s; s = s->hh.next) {
        if (s->state != AD_UNOWNED) {
            /* Undated: a taker looks at once, to date the FIN (and act, if its grace is over). */
            if (s->due_ms == 0)
                s->due_ms = s->fin_known ? s->fin_ms + ad_opt.grace_ms : now_ms;
            ad_gauge_add(s->holder.pid, s->diag.local_port, s->netns);
        }
    }
    first_cycle_done = true;
    previous_look_ms = began_ms;
    return true;
}

/* Takers are asked for at most this often: sockets due meanwhile wait for the next batch. */
static uint64_t batch_gap_ms(void)
{
    return ad_opt.interval_ms < 100 ? ad_opt.interval_ms : 100;
}

static void act(uint64_t now_ms)
{
    ad_takers_reap();
    if (last_batch_ms != 0 && now_ms < last_batch_ms + batch_gap_ms())
        return;
    size_t n = 0;
    for (struct ad_sock *s = table; s && n < AD_BATCH_MAX; s = s->hh.next)
        n += s->state == AD_WAITING && s->due_ms <= now_ms;
    if (n == 0)
        return;
    last_batch_ms = now_ms;
    struct ad_sock **due = malloc(n * sizeof *due);
    enum ad_outcome *outcome = malloc(n * sizeof *outcome);
    uint64_t *wait_ms = malloc(n * sizeof *wait_ms);
    if (!due || !outcome || !wait_ms)
        goto out; /* tried again at the next wake-up */
    n = 0;
    for (struct ad_sock *s = table; s && n < AD_BATCH_MAX; s = s->hh.next)
        if (s->state == AD_WAITING && s->due_ms <= now_ms)
            due[n++] = s;
    ad_take(due, n, now_ms, outcome, wait_ms);
    for (size_t i = 0; i < n; i++) {
        struct ad_sock *s = due[i];
        uint64_t wait = wait_ms[i];
        switch (outcome[i]) {
        case AD_RECLAIMED:
            s->state = AD_DONE;
            if (!ad_opt.dry_run)
                ad_gauge_sub(s->holder.pid, s->diag.local_port);
            break;
        case AD_BUSY:
            s->due_ms = now_ms + (wait ? wait : 1);
            break;
        case AD_LEAVE:
            s->state = AD_LEFT;
            break;
        case AD_RETRY_OWNER:
            s->state = AD_UNOWNED;
            s->looks = 0;
            s->covered = 0;
            break;
        case AD_FAILED:
            s->state = AD_LEFT;
            start_failures += s->at_start;
            break;
        }
    }
out:
    free(due);
    free(outcome);
    free(wait_ms);
}

bool ad_cycle(uint64_t now_ms, bool dump)
{
    if (dump && !look(now_ms))
        return false;
    act(now_ms);
    return true;
}

uint64_t ad_next_due(void)
{
    uint64_t next = UINT64_MAX;
    for (struct ad_sock *s = table; s; s = s->hh.next)
        if (s->state == AD_WAITING && s->due_ms < next)
            next = s->due_ms;
    if (next != UINT64_MAX && last_batch_ms != 0 && next < last_batch_ms + batch_gap_ms())
        next = last_batch_ms + batch_gap_ms();
    return next;
}

size_t ad_start_sockets_waiting(bool *any_failed)
{
    size_t n = 0;
    for (struct ad_sock *s = table; s; s = s->hh.next) {
        if (!s->at_start)
            continue;
        n += s->state == AD_WAITING || s->state == AD_UNOWNED;
    }
    /* A selected process the daemon could not reach: its sockets never got to wait. */
    *any_failed = start_failures > 0 || ad_unreachable_processes > 0 || ad_unseen_netns > 0;
    return n;
}

static int compare_pid(const void *a, const void *b)
{
    pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
    return x < y ? -1 : x > y;
}

void ad_table_counts(size_t *sockets, size_t *waiting, size_t *processes)
{
    *sockets = HASH_COUNT(table);
    *waiting = *processes = 0;
    pid_t *pids = malloc((*sockets + 1) * sizeof *pids);
    size_t n = 0;
    for (struct ad_sock *s = table; s; s = s->hh.next) {
        *waiting += s->state == AD_WAITING;
        if (pids && s->state != AD_UNOWNED)
            pids[n++] = s->holder.pid;
    }
    if (n > 1)
        qsort(pids, n, sizeof *pids, compare_pid);
    for (size_t i = 0; i < n; i++)
        *processes += i == 0 || pids[i] != pids[i - 1];
    free(pids);
}
