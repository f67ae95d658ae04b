/*
 * Call sites: where in the program a leaked connection's EOF was met, or where the program last
 * read it, so that a reclaim's log line points at the code that forgot to close.
 *
 * The wrappers keep a return address per descriptor number (the EOF's in notes.c, the last
 * read's here): a load, a compare and, when the site changed, a store. Nothing is looked up then.
 * The address is turned into text only when a reclaim is logged, on the timer holding none of
 * the library's locks: the loader's lock (dl_iterate_phdr, dladdr1 take it) may be held by a
 * program thread inside dlopen, whose constructor may be waiting for one of ours.
 *
 * The text is MODULE+0xOFF: the ELF object's file name and the address less its load bias, as
 * the file's own addresses have it (`addr2line -e FILE 0xOFF`), the same for a stripped and an
 * unstripped copy of one build. A symbol is added where the object's dynamic symbol table has a
 * sized one that covers the address (glibc's dladdr1; musl's dladdr gives no size: none there).
 */
#include "autoclose.h"

#include <dlfcn.h>
#include <link.h>
#include <stddef.h>
#include <string.h>
#include <sys/auxv.h>

uintptr_t ac_last_read[AC_FDTAB_SIZE];

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

struct lookup {
    uintptr_t addr;
    struct ac_site_info *info;
    bool found;
};

/* The object whose loaded segments hold the address: its name and load bias. */
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
        l->info->offset = l->addr - (uintptr_t)o->dlpi_addr;
        l->info->module = base_name(file);
        l->found = true;
        return 1;
    }
    return 0;
}

bool ac_site_resolve(uintptr_t addr, struct ac_site_info *info)
{
    *info = (struct ac_site_info){.module = ""};
    if (addr == AC_SITE_UNKNOWN || addr == AC_SITE_NEVER)
        return false;
    struct lookup l = {.addr = addr, .info = info};
    dl_iterate_phdr(find_object, &l);
    if (!l.found || info->module[0] == '\0') {
        info->module = "";
        return false;
    }
#if AC_GLIBC
    Dl_info d;
    const ElfW(Sym) *sym = NULL;
    if (dladdr1((void *)addr, &d, (void **)&sym, RTLD_DL_SYMENT) && d.dli_sname != NULL &&
        sym != NULL && d.dli_saddr != NULL && addr >= (uintptr_t)d.dli_saddr &&
        addr - (uintptr_t)d.dli_saddr < sym->st_size) {
        info->symbol = d.dli_sname;
        info->symbol_offset = addr - (uintptr_t)d.dli_saddr;
    }
#endif
    return true;
}

/* The timer's last few sites, put into words once each: a storm of reclaims has few sites, and a
 * look-up walks every loaded object (and dladdr1 a symbol table). Kept as copies, and forgotten
 * whenever an object is loaded or unloaded since (dlpi_adds, dlpi_subs). Timer thread only. */
#define CACHED 8
static struct cached {
    uintptr_t site;
    bool known, symbol;
    uintptr_t offset, symbol_offset;
    char module[AC_SITE_NAME_MAX + 1], name[AC_SITE_SYMBOL_MAX + 1];
} cache[CACHED];
static unsigned cache_next;
static unsigned long long cache_adds, cache_subs;

static int loads_so_far(struct dl_phdr_info *o, size_t size, void *ctx)
{
    unsigned long long *counts = ctx;
    if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof o->dlpi_subs) {
        counts[0] = o->dlpi_adds;
        counts[1] = o->dlpi_subs;
    }
    return 1; /* every object carries them: the first will do */
}

static void copy_name(char *to, size_t cap, const char *from)
{
    size_t n = strnlen(from, cap - 1);
    memcpy(to, from, n);
    to[n] = '\0';
}

/* Resolves `site` through the cache; `info` may point into it until the next call. */
static bool resolve_cached(uintptr_t site, struct ac_site_info *info)
{
    if (site <= AC_SITE_NEVER)
        return ac_site_resolve(site, info);
    unsigned long long counts[2] = {~0ull, ~0ull};
    dl_iterate_phdr(loads_so_far, counts);
    if (counts[0] != cache_adds || counts[1] != cache_subs || counts[1] == ~0ull) {
        memset(cache, 0, sizeof cache);
        cache_adds = counts[0];
        cache_subs = counts[1];
    }
    struct cached *c = NULL;
    for (unsigned i = 0; i < CACHED && c == NULL; i++)
        if (cache[i].site == site)
            c = &cache[i];
    if (c == NULL) {
        struct ac_site_info fresh;
        c = &cache[cache_next++ % CACHED];
        *c = (struct cached){.site = site, .known = ac_site_resolve(site, &fresh)};
        c->offset = fresh.offset;
        copy_name(c->module, sizeof c->module, fresh.module);
        c->symbol = fresh.symbol != NULL;
        if (c->symbol) {
            copy_name(c->name, sizeof c->name, fresh.symbol);
            c->symbol_offset = fresh.symbol_offset;
        }
    }
    *info = (struct ac_site_info){.module = c->module,
                                  .offset = c->offset,
                                  .symbol = c->symbol ? c->name : NULL,
                                  .symbol_offset = c->symbol_offset};
    return c->known;
}

void ac_site_complete(const struct ac_site_note *note, char *report, size_t report_len)
{
    if (note->at == 0)
        return;
    struct ac_site_info info;
    bool known = resolve_cached(note->site, &info);
    char label[AC_SITE_NAME_MAX + 24];
    struct ac_text t;
    ac_text_init(&t, label, sizeof label);
    ac_site_label(&t, note->site, known ? &info : NULL);
    ac_stat_site_label(note->site, label);

    char tokens[2 * AC_SITE_NAME_MAX + AC_SITE_SYMBOL_MAX + 80];
    ac_text_init(&t, tokens, sizeof tokens);
    ac_site_text(&t, note->last_read ? "last_read" : "site", note->site, known ? &info : NULL);
    size_t len = strlen(report);
    if (note->at > len || len + t.len >= report_len)
        return; /* cannot happen: the line has room for the longest tokens */
    memmove(report + note->at + t.len, report + note->at, len - note->at + 1);
    memcpy(report + note->at, tokens, t.len);
}
