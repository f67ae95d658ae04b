/*
 * Descriptor headroom. The shim ends CLOSE_WAIT, but a program that never closes still holds a
 * number per connection (the placeholder's, after the reclaim): its leak of kernel sockets
 * becomes a slow leak of numbers, and RLIMIT_NOFILE says how long that lasts.
 *
 * AUTOCLOSE_NOFILE=max|N raises the soft limit at load, never later (programs size tables from
 * it at start). A number at or above FD_SETSIZE (1024) overflows an fd_set, and the raised limit
 * reaches every program this one starts (exec keeps it) and every library it loads later. So the
 * limit stays when any loaded object imports the select family (select, pselect, __fdelt_chk: the
 * fortified FD_SET's check), anything that starts another program, or dlopen. Imports only: libc
 * defines all of them (dlopen too, since glibc 2.34), and the modules it loads by itself (NSS,
 * iconv) are not seen here.
 */
#include "autoclose.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* The number of dynamic symbols, from the ELF hash table (DT_HASH's nchain, or the highest
 * symbol GNU hash's chains reach). */
static size_t dynsym_count(const ElfW(Dyn) * dyn, ElfW(Addr) base)
{
    const Elf32_Word *hash = NULL, *gnu = NULL;
    for (; dyn->d_tag != DT_NULL; dyn++) {
        ElfW(Addr) p = dyn->d_un.d_ptr < base ? base + dyn->d_un.d_ptr : dyn->d_un.d_ptr;
        if (dyn->d_tag == DT_HASH)
            hash = (const Elf32_Word *)p;
        else if (dyn->d_tag == DT_GNU_HASH)
            gnu = (const Elf32_Word *)p;
    }
    if (hash != NULL)
        return hash[1];
    if (gnu == NULL)
        return 0;
    Elf32_Word nbuckets = gnu[0], symoffset = gnu[1], bloom_size = gnu[2];
    const Elf32_Word *buckets = gnu + 4 + bloom_size * (sizeof(ElfW(Addr)) / 4);
    const Elf32_Word *chain = buckets + nbuckets;
    Elf32_Word last = 0;
    for (Elf32_Word i = 0; i < nbuckets; i++)
        if (buckets[i] > last)
            last = buckets[i];
    if (last < symoffset)
        return symoffset;
    while (!(chain[last - symoffset] & 1))
        last++;
    return last + 1;
}

/* What an object may import that makes a raised limit unsafe, and why. */
enum hazard { HAZARD_FD_SET, HAZARD_CHILDREN, HAZARD_LOADS };
static const char *const hazard_why[] = {
    [HAZARD_FD_SET] = ", whose fd_set cannot hold numbers from 1024 up",
    [HAZARD_CHILDREN] = ", whose children would inherit a limit their fd_set cannot hold",
    [HAZARD_LOADS] = ", whose code loaded later would get a limit its fd_set cannot hold",
};
static const struct {
    const char *name;
    enum hazard why;
} hazards[] = {
    {"select", HAZARD_FD_SET},        {"pselect", HAZARD_FD_SET},
    {"__fdelt_chk", HAZARD_FD_SET},   {"execve", HAZARD_CHILDREN},
    {"execv", HAZARD_CHILDREN},       {"execvp", HAZARD_CHILDREN},
    {"execvpe", HAZARD_CHILDREN},     {"execl", HAZARD_CHILDREN},
    {"execle", HAZARD_CHILDREN},      {"execlp", HAZARD_CHILDREN},
    {"fexecve", HAZARD_CHILDREN},     {"execveat", HAZARD_CHILDREN},
    {"posix_spawn", HAZARD_CHILDREN}, {"posix_spawnp", HAZARD_CHILDREN},
    {"pidfd_spawn", HAZARD_CHILDREN}, {"pidfd_spawnp", HAZARD_CHILDREN},
    {"system", HAZARD_CHILDREN},      {"popen", HAZARD_CHILDREN},
    {"wordexp", HAZARD_CHILDREN},     {"dlopen", HAZARD_LOADS},
    {"dlmopen", HAZARD_LOADS},
};

struct hazard_user {
    char name[160];
    const char *symbol;
    enum hazard why;
};

/* Finds an object that imports (needs from elsewhere) one of the hazards. */
static int imports_hazard(struct dl_phdr_info *info, size_t size, void *ctx)
{
    (void)size;
    struct hazard_user *found = ctx;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        if (info->dlpi_phdr[i].p_type != PT_DYNAMIC)
            continue;
        const ElfW(Dyn) *dyn = (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
        const ElfW(Sym) *symtab = NULL;
        const char *strtab = NULL;
        for (const ElfW(Dyn) *d = dyn; d->d_tag != DT_NULL; d++) {
            ElfW(Addr) p =
                d->d_un.d_ptr < info->dlpi_addr ? info->dlpi_addr + d->d_un.d_ptr : d->d_un.d_ptr;
            if (d->d_tag == DT_SYMTAB)
                symtab = (const ElfW(Sym) *)p;
            else if (d->d_tag == DT_STRTAB)
                strtab = (const char *)p;
        }
        if (symtab == NULL || strtab == NULL)
            continue;
        size_t n = dynsym_count(dyn, info->dlpi_addr);
        for (size_t s = 1; s < n; s++) {
            if (symtab[s].st_shndx != SHN_UNDEF || symtab[s].st_name == 0)
                continue;
            const char *name = strtab + symtab[s].st_name;
            for (size_t h = 0; h < sizeof hazards / sizeof hazards[0]; h++) {
                if (strcmp(name, hazards[h].name) != 0)
                    continue;
                const char *obj =
                    info->dlpi_name && info->dlpi_name[0] ? info->dlpi_name : "the program";
                struct ac_text t;
                ac_text_init(&t, found->name, sizeof found->name);
                ac_text_str(&t, obj);
                found->symbol = hazards[h].name;
                found->why = hazards[h].why;
                return 1;
            }
        }
    }
    return 0;
}

void ac_nofile_apply(void)
{
    if (ac_cfg.nofile == 0)
        return;
    char line[320];
    struct ac_text t;
    ac_text_init(&t, line, sizeof line);
    struct rlimit lim;
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0)
        return;
    struct hazard_user user = {.symbol = NULL};
    dl_iterate_phdr(imports_hazard, &user);
    /* Compared before the cast: rlim_t is 32 bits in a 32-bit program, where a larger N would
     * otherwise wrap to a small number. */
    rlim_t want = ac_cfg.nofile == UINT64_MAX || ac_cfg.nofile > lim.rlim_max
                      ? lim.rlim_max
                      : (rlim_t)ac_cfg.nofile;
    if (user.symbol != NULL) {
        ac_text_str(&t, "AUTOCLOSE_NOFILE: the descriptor limit stays ");
        ac_text_uint(&t, lim.rlim_cur);
        ac_text_str(&t, ": ");
        ac_text_str(&t, user.name);
        ac_text_str(&t, " uses ");
        ac_text_str(&t, user.symbol);
        ac_text_str(&t, hazard_why[user.why]);
    } else if (want <= lim.rlim_cur) {
        ac_text_str(&t, "AUTOCLOSE_NOFILE: the descriptor limit stays ");
        ac_text_uint(&t, lim.rlim_cur);
        ac_text_str(&t, ": the hard limit (");
        ac_text_uint(&t, lim.rlim_max);
        ac_text_str(&t, ") is not above it");
    } else {
        rlim_t was = lim.rlim_cur;
        lim.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &lim) != 0) {
            ac_text_str(&t, "AUTOCLOSE_NOFILE: cannot raise the descriptor limit: ");
            ac_text_str(&t, strerrordesc_np(errno) ? strerrordesc_np(errno) : "error");
        } else {
            ac_text_str(&t, "AUTOCLOSE_NOFILE: descriptor limit raised from ");
            ac_text_uint(&t, was);
            ac_text_str(&t, " to ");
            ac_text_uint(&t, want);
            ac_log(AC_LOG_INFO, line);
            return;
        }
    }
    ac_log(AC_LOG_ERROR, line);
}

uint64_t ac_nofile_limit(void)
{
    struct rlimit lim;
    return getrlimit(RLIMIT_NOFILE, &lim) == 0 ? (uint64_t)lim.rlim_cur : 0;
}

static bool count_one(int fd, void *ctx)
{
    (void)fd;
    ++*(long *)ctx;
    return true;
}

/* The program's descriptors: the library's netlink socket and /proc directory are not counted
 * (its placeholder is: a reclaimed number holds a duplicate of it). */
long ac_descriptors_open(void)
{
    long count = 0;
    return ac_fd_list(count_one, &count) ? count : -1;
}

void ac_headroom_check(int fd)
{
    static const unsigned marks[] = {50, 80, 95};
    static unsigned passed; /* how many marks the open count has passed */
    uint64_t limit = ac_nofile_limit();
    /* Numbers are handed out lowest first: the number just released is a floor for the count,
     * so /proc is read only near the next mark. */
    if (limit == 0 || passed >= 3 || (uint64_t)fd + 1 < limit * marks[passed] / 100)
        return;
    long open_now = ac_descriptors_open();
    if (open_now < 0 || (uint64_t)open_now < limit * marks[passed] / 100)
        return;
    for (; passed < 3 && (uint64_t)open_now >= limit * marks[passed] / 100; passed++) {
        char line[240];
        struct ac_text t;
        ac_text_init(&t, line, sizeof line);
        ac_text_str(&t, "descriptors: ");
        ac_text_int(&t, open_now);
        ac_text_str(&t, " of the limit of ");
        ac_text_uint(&t, limit);
        ac_text_str(&t, " are open (past ");
        ac_text_uint(&t, marks[passed]);
        ac_text_str(&t, "%); ");
        ac_text_uint(&t, __atomic_load_n(&ac_reclaimed_held, __ATOMIC_RELAXED));
        ac_text_str(&t, " of them are reclaimed connections the program never closed");
        ac_log_unlimited(AC_LOG_ERROR, line);
    }
}
