/*
 * Call sites: where in the program a leaked connection's EOF was met, or where the program last
 * read it, so that a reclaim's log line points at the code that forgot to close.
 *
 * The wrappers keep a return address per descriptor number (the EOF's in notes.c, the last
 * read's here): a load, a compare and, when the site changed, a store. Nothing is looked up then.
 * The address is turned into text only when a reclaim is logged, on the timer holding none of
 * the library's locks: dl_iterate_phdr takes the loader's list lock, which a program thread may
 * hold in a dl_iterate_phdr of its own whose callback waits for one of ours.
 *
 * The text is MODULE+0xOFF: the ELF object's file name and the address less its load bias, as
 * the file's own addresses have it (`addr2line -e FILE 0xOFF`), the same for a stripped and an
 * unstripped copy of one build. A symbol is added where the object's dynamic symbol table has a
 * sized one that covers the address, as glibc's dladdr would find it.
 *
 * Everything is read inside dl_iterate_phdr's callback and copied out there: glibc calls it
 * holding dl_load_write_lock, which dlclose takes before it unmaps an object and frees its name,
 * and musl never unmaps one. dladdr is not used: it takes dl_load_lock, which dlopen holds while
 * constructors run (a reclaim would wait for them) and which, taken inside the callback, would
 * invert dlopen's order of the two. The symbol table is walked by hand instead.
 *
 * An address is only as good as the object still loaded there: dlclose (wrapped, wrap_dl.c)
 * counts unloads, each site is kept with the count it was met at, and one met before an unload
 * since is written `unknown` rather than be named in whatever was loaded in its place.
 */
#include "autoclose.h"

#include <link.h>
#include <stddef.h>
#include <string.h>
#include <sys/auxv.h>

uintptr_t ac_last_read[AC_FDTAB_SIZE];
uint32_t ac_last_read_gen[AC_FDTAB_SIZE];
uint32_t ac_unload_gen;

/* MODULE+0xOFF or MODULE!SYMBOL+0xOFF: names are cut short and any byte that could confuse a
 * reader of the line (space, quote, backslash, '!', '+', control bytes) becomes '?'. */
static void name(struct ac_text *t, const char *s, size_t max)
{
    char c[2] = {0, 0};
    for (size_t i = 0; s[i] && i < max; i++) {
        unsigned char b = (unsigned char)s[i];
        c[0] = b > ' ' && b < 0x7f && b != '"' && b != '\\' && b != '!' && b != '+' ? (char)b : '?';
        ac_text_str(t, c);
    }
}

static void hex(struct ac_text *t, uintptr_t v)
{
    char digits[2 + 2 * sizeof v + 1];
    size_t i = sizeof digits - 1;
    digits[i] = '\0';
    do {
        digits[--i] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    digits[--i] = 'x';
    digits[--i] = '0';
    ac_text_str(t, digits + i);
}

static void module_offset(struct ac_text *t, const struct ac_site_info *info)
{
    name(t, info->module, AC_SITE_NAME_MAX);
    ac_text_str(t, "+");
    hex(t, info->offset);
}

void ac_site_text(struct ac_text *t, const char *token, uintptr_t site,
                  const struct ac_site_info *info)
{
    ac_text_str(t, " ");
    ac_text_str(t, token);
    ac_text_str(t, "=");
    if (site == AC_SITE_NEVER) {
        ac_text_str(t, "never");
        return;
    }
    if (site == AC_SITE_UNKNOWN || info == NULL || info->module[0] == '\0') {
        ac_text_str(t, "unknown");
        return;
    }
    module_offset(t, info);
    if (info->symbol == NULL || info->symbol[0] == '\0')
        return;
    ac_text_str(t, " symbol=");
    name(t, info->module, AC_SITE_NAME_MAX);
    ac_text_str(t, "!");
    name(t, info->symbol, AC_SITE_SYMBOL_MAX);
    ac_text_str(t, "+");
    hex(t, info->symbol_offset);
}

void ac_site_label(struct ac_text *t, uintptr_t site, const struct ac_site_info *info)
{
    if (site == AC_SITE_NEVER)
        ac_text_str(t, "never_read");
    else if (site == AC_SITE_UNKNOWN || info == NULL || info->module[0] == '\0')
        ac_text_str(t, "unknown");
    else
        module_offset(t, info);
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static void copy_name(char *to, size_t cap, const char *from, size_t from_max)
{
    size_t n = strnlen(from, cap - 1 < from_max ? cap - 1 : from_max);
    memcpy(to, from, n);
    to[n] = '\0';
}

/* The most symbols looked at in one object: a look-up holds the loader's list lock. */
#define SYMBOLS_MAX 1000000u

/* Whether [p, p + len) lies in one readable loaded segment of the object. */
static bool mapped(const struct dl_phdr_info *o, uintptr_t p, size_t len)
{
    for (int i = 0; i < o->dlpi_phnum; i++) {
        const ElfW(Phdr) *h = &o->dlpi_phdr[i];
        uintptr_t start = (uintptr_t)o->dlpi_addr + h->p_vaddr;
        if (h->p_type == PT_LOAD && (h->p_flags & PF_R) && p >= start && p - start <= h->p_memsz &&
            len <= h->p_memsz - (p - start))
            return true;
    }
    return false;
}

/* An address the dynamic section gives: glibc relocates those of a writable one in place, musl
 * and a read-only one (the vDSO's) keep the file's. Whichever lies in the object; 0 for neither
 * or both. */
static uintptr_t dynamic_address(const struct dl_phdr_info *o, ElfW(Addr) v)
{
    bool as_is = mapped(o, v, 1);
    bool biased = o->dlpi_addr != 0 && mapped(o, v + (uintptr_t)o->dlpi_addr, 1);
    if (as_is == biased)
        return 0;
    return as_is ? v : v + (uintptr_t)o->dlpi_addr;
}

/* How many entries the dynamic symbol table has: DT_HASH says so; with DT_GNU_HASH alone, one
 * more than the highest index its chains reach. 0 when the tables do not add up. */
static size_t symbol_count(const struct dl_phdr_info *o, uintptr_t hash, uintptr_t gnu_hash)
{
    if (gnu_hash != 0) {
        const uint32_t *h = (const uint32_t *)gnu_hash;
        if (!mapped(o, gnu_hash, 4 * sizeof *h) || h[0] > SYMBOLS_MAX || h[2] > SYMBOLS_MAX)
            return 0;
        uint32_t nbuckets = h[0], first = h[1];
        const uint32_t *buckets =
            (const uint32_t *)(gnu_hash + 4 * sizeof *h + (size_t)h[2] * sizeof(ElfW(Addr)));
        if (!mapped(o, (uintptr_t)buckets, (size_t)nbuckets * sizeof *buckets))
            return 0;
        uint32_t last = 0;
        for (uint32_t b = 0; b < nbuckets; b++)
            if (buckets[b] > last)
                last = buckets[b];
        if (last < first)
            return first; /* no symbol is hashed */
        const uint32_t *chain = buckets + nbuckets;
        for (; last - first < SYMBOLS_MAX; last++) {
            const uint32_t *c = &chain[last - first];
            if (!mapped(o, (uintptr_t)c, sizeof *c))
                return 0;
            if (*c & 1)
                return (size_t)last + 1; /* the end of the last chain */
        }
        return SYMBOLS_MAX;
    }
    if (hash != 0 && mapped(o, hash, 2 * sizeof(uint32_t)))
        return ((const uint32_t *)hash)[1]; /* nchain */
    return 0;
}

/* The defined, sized dynamic symbol that covers `off` (an address less the load bias): the one
 * that starts last, as dladdr picks. Its name and the offset in it go into `info`. */
static void find_symbol(const struct dl_phdr_info *o, uintptr_t off, struct ac_site_info *info)
{
    const ElfW(Dyn) *dyn = NULL;
    size_t ndyn = 0;
    for (int i = 0; i < o->dlpi_phnum; i++)
        if (o->dlpi_phdr[i].p_type == PT_DYNAMIC) {
            dyn = (const ElfW(Dyn) *)((uintptr_t)o->dlpi_addr + o->dlpi_phdr[i].p_vaddr);
            ndyn = o->dlpi_phdr[i].p_memsz / sizeof *dyn;
        }
    if (dyn == NULL || !mapped(o, (uintptr_t)dyn, ndyn * sizeof *dyn))
        return;
    uintptr_t symtab = 0, strtab = 0, hash = 0, gnu_hash = 0;
    size_t strsz = 0;
    for (size_t i = 0; i < ndyn && dyn[i].d_tag != DT_NULL; i++) {
        switch (dyn[i].d_tag) {
        case DT_SYMTAB:
            symtab = dynamic_address(o, dyn[i].d_un.d_ptr);
            break;
        case DT_STRTAB:
            strtab = dynamic_address(o, dyn[i].d_un.d_ptr);
            break;
        case DT_STRSZ:
            strsz = dyn[i].d_un.d_val;
            break;
        case DT_HASH:
            hash = dynamic_address(o, dyn[i].d_un.d_ptr);
            break;
        case DT_GNU_HASH:
            gnu_hash = dynamic_address(o, dyn[i].d_un.d_ptr);
            break;
        }
    }
    if (symtab == 0 || strtab == 0 || strsz == 0 || !mapped(o, strtab, strsz))
        return;
    size_t n = symbol_count(o, hash, gnu_hash);
    if (n > SYMBOLS_MAX)
        n = SYMBOLS_MAX;
    const ElfW(Sym) *syms = (const ElfW(Sym) *)symtab, *best = NULL;
    if (!mapped(o, symtab, n * sizeof *syms))
        return;
    for (size_t i = 0; i < n; i++) {
        const ElfW(Sym) *s = &syms[i];
        unsigned type = s->st_info & 0xf, bind = s->st_info >> 4;
        if (off < s->st_value || off - s->st_value >= s->st_size || s->st_shndx == SHN_UNDEF ||
            s->st_shndx == SHN_ABS || bind == STB_LOCAL || s->st_name == 0 || s->st_name >= strsz)
            continue;
        if (type != STT_FUNC && type != STT_GNU_IFUNC && type != STT_OBJECT && type != STT_NOTYPE)
            continue;
        if (best == NULL || s->st_value > best->st_value)
            best = s;
    }
    if (best == NULL)
        return;
    const char *name = (const char *)strtab + best->st_name;
    copy_name(info->symbol_copy, sizeof info->symbol_copy, name, strsz - best->st_name);
    if (info->symbol_copy[0] == '\0')
        return;
    info->symbol = info->symbol_copy;
    info->symbol_offset = off - best->st_value;
}

struct lookup {
    uintptr_t addr;
    struct ac_site_info *info;
    bool found;
};

/* The object whose loaded segments hold the address: its name, load bias and symbol, copied. */
static int find_object(struct dl_phdr_info *o, size_t size, void *ctx)
{
    (void)size;
    struct lookup *l = ctx;
    for (int i = 0; i < o->dlpi_phnum; i++) {
        const ElfW(Phdr) *p = &o->dlpi_phdr[i];
        uintptr_t start = (uintptr_t)o->dlpi_addr + p->p_vaddr;
        if (p->p_type != PT_LOAD || l->addr < start || l->addr - start >= p->p_memsz)
            continue;
        const char *file = o->dlpi_name ? o->dlpi_name : "";
        if (file[0] == '\0') {
            /* The main program: the name it was started by (no system call). */
            const char *exe = (const char *)getauxval(AT_EXECFN);
            file = exe ? exe : "";
        }
        struct ac_site_info *info = l->info;
        info->offset = l->addr - (uintptr_t)o->dlpi_addr;
        copy_name(info->module_copy, sizeof info->module_copy, base_name(file), SIZE_MAX);
        info->module = info->module_copy;
        if (info->module[0] != '\0')
            find_symbol(o, info->offset, info);
        l->found = true;
        return 1;
    }
    return 0;
}

bool ac_site_resolve(uintptr_t addr, struct ac_site_info *info)
{
    info->module = "";
    info->offset = 0;
    info->symbol = NULL;
    info->symbol_offset = 0;
    info->module_copy[0] = info->symbol_copy[0] = '\0';
    if (addr == AC_SITE_UNKNOWN || addr == AC_SITE_NEVER)
        return false;
    struct lookup l = {.addr = addr, .info = info};
    dl_iterate_phdr(find_object, &l);
    if (!l.found || info->module[0] == '\0') {
        info->module = "";
        info->symbol = NULL;
        return false;
    }
    return true;
}

/* `to` is a copy of `from`, its names its own. */
static void copy_info(struct ac_site_info *to, const struct ac_site_info *from)
{
    *to = *from;
    to->module = from->module[0] ? to->module_copy : "";
    to->symbol = from->symbol ? to->symbol_copy : NULL;
}

/* The timer's last few sites, put into words once each: a storm of reclaims has few sites, and a
 * look-up walks every loaded object and a symbol table. Only sites found in an object are kept,
 * and only for one unload count: an object loaded later may take a place that was in none, and
 * one unloaded may leave its place to another (a load alone changes no kept answer). Timer thread
 * only. */
#define CACHED 8
static struct cached {
    uintptr_t site;
    struct ac_site_info info;
} cache[CACHED];
static unsigned cache_next;
static uint32_t cache_gen;

/* Resolves `site`, met at unload count `gen`, through the cache: false (unknown) when it lies in
 * no object, or an object may have been unloaded since it was met. */
static bool resolve_cached(uintptr_t site, uint32_t gen, struct ac_site_info *info)
{
    if (site <= AC_SITE_NEVER || gen != ac_unload_gen_now())
        return false;
    if (gen != cache_gen) {
        memset(cache, 0, sizeof cache);
        cache_gen = gen;
    }
    for (unsigned i = 0; i < CACHED; i++)
        if (cache[i].site == site) {
            copy_info(info, &cache[i].info);
            return true;
        }
    /* An unload during the look-up (counted before the object goes) may have left the address
     * to another object: unknown then. */
    if (!ac_site_resolve(site, info) || gen != ac_unload_gen_now())
        return false;
    struct cached *c = &cache[cache_next++ % CACHED];
    c->site = site;
    copy_info(&c->info, info);
    return true;
}

void ac_site_complete(const struct ac_site_note *note, char *report, size_t report_len)
{
    if (note->at == 0)
        return;
    struct ac_site_info info;
    bool known = resolve_cached(note->site, note->gen, &info);
    char label[AC_SITE_NAME_MAX + 24];
    struct ac_text t;
    ac_text_init(&t, label, sizeof label);
    ac_site_label(&t, note->site, known ? &info : NULL);
    ac_stat_site_label(note->site, note->gen, label);

    char tokens[2 * AC_SITE_NAME_MAX + AC_SITE_SYMBOL_MAX + 80];
    ac_text_init(&t, tokens, sizeof tokens);
    ac_site_text(&t, note->last_read ? "last_read" : "site", note->site, known ? &info : NULL);
    size_t len = strlen(report);
    if (note->at > len || len + t.len >= report_len)
        return; /* cannot happen: the line has room for the longest tokens */
    memmove(report + note->at + t.len, report + note->at, len - note->at + 1);
    memcpy(report + note->at, tokens, t.len);
}
