/*
 * Call sites (sites.c): the tokens a reclaim's line names them by and the stats file's labels,
 * for a resolved site (module and offset, with and without a symbol), a connection never read,
 * and one whose site was not kept; names that could confuse a reader of the line are masked and
 * cut short. Then a real address: a function of this program resolves to its file name and the
 * address less the load bias (what nm says of it), and one past every loaded object to nothing;
 * a library's function to its dynamic symbol; a plugin's names survive its dlclose (glibc: the
 * fixtures' plugin, where the build names it); a site met before an unload is unknown.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>

#include "autoclose.h"

static const char *text_of(const char *token, uintptr_t site, const struct ac_site_info *info)
{
    static char buf[512];
    struct ac_text t;
    ac_text_init(&t, buf, sizeof buf);
    ac_site_text(&t, token, site, info);
    return buf;
}

static const char *label_of(uintptr_t site, const struct ac_site_info *info)
{
    static char buf[128];
    struct ac_text t;
    ac_text_init(&t, buf, sizeof buf);
    ac_site_label(&t, site, info);
    return buf;
}

static void module_and_offset(void **state)
{
    (void)state;
    struct ac_site_info info = {.module = "mosserver", .offset = 0x1a2b};
    assert_string_equal(text_of("site", 0x55550001a2b, &info), " site=mosserver+0x1a2b");
    assert_string_equal(label_of(0x55550001a2b, &info), "mosserver+0x1a2b");
    info.offset = 0;
    assert_string_equal(text_of("last_read", 0x5555, &info), " last_read=mosserver+0x0");
}

static void with_a_symbol(void **state)
{
    (void)state;
    struct ac_site_info info = {
        .module = "mosserver", .offset = 0x1a2b, .symbol = "session_loop", .symbol_offset = 0x51};
    assert_string_equal(text_of("site", 0x55550001a2b, &info),
                        " site=mosserver+0x1a2b symbol=mosserver!session_loop+0x51");
    /* The label is the place alone: one series per site, whatever its symbol. */
    assert_string_equal(label_of(0x55550001a2b, &info), "mosserver+0x1a2b");
    info.symbol = "";
    assert_string_equal(text_of("site", 0x55550001a2b, &info), " site=mosserver+0x1a2b");
}

static void never_and_unknown(void **state)
{
    (void)state;
    struct ac_site_info info = {.module = "mosserver", .offset = 0x10};
    assert_string_equal(text_of("last_read", AC_SITE_NEVER, &info), " last_read=never");
    assert_string_equal(label_of(AC_SITE_NEVER, NULL), "never_read");
    assert_string_equal(text_of("site", AC_SITE_UNKNOWN, &info), " site=unknown");
    assert_string_equal(label_of(AC_SITE_UNKNOWN, &info), "unknown");
    /* Resolved to no object: unknown too. */
    assert_string_equal(text_of("site", 0x1234, NULL), " site=unknown");
    struct ac_site_info none = {.module = ""};
    assert_string_equal(text_of("last_read", 0x1234, &none), " last_read=unknown");
    assert_string_equal(label_of(0x1234, &none), "unknown");
}

static void names_masked_and_bounded(void **state)
{
    (void)state;
    struct ac_site_info info = {
        .module = "my server\"!+x", .offset = 0xff, .symbol = "a b\\c", .symbol_offset = 1};
    assert_string_equal(text_of("site", 0x5555, &info),
                        " site=my?server???x+0xff symbol=my?server???x!a?b?c+0x1");
    char longname[200];
    memset(longname, 'm', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    info = (struct ac_site_info){.module = longname, .offset = 1};
    const char *label = label_of(0x5555, &info);
    assert_int_equal(strlen(label), AC_SITE_NAME_MAX + strlen("+0x1"));
}

__attribute__((noinline)) void sites_probe_function(void);
__attribute__((noinline)) void sites_probe_function(void)
{
    __asm__ volatile("");
}

static int first_object(struct dl_phdr_info *o, size_t size, void *bias)
{
    (void)size;
    *(uintptr_t *)bias = (uintptr_t)o->dlpi_addr; /* the first is the program itself */
    return 1;
}

static void resolves_a_function_of_this_program(void **state)
{
    (void)state;
    uintptr_t addr = (uintptr_t)&sites_probe_function + 1, bias = 0;
    dl_iterate_phdr(first_object, &bias);
    struct ac_site_info info;
    assert_true(ac_site_resolve(addr, &info));
    assert_string_equal(info.module, "test_sites");
    assert_true(info.offset == addr - bias);
    /* An address no object maps, and the two markers: nothing. */
    assert_false(ac_site_resolve(8, &info));
    assert_string_equal(info.module, "");
    assert_false(ac_site_resolve(AC_SITE_NEVER, &info));
    assert_false(ac_site_resolve(AC_SITE_UNKNOWN, &info));
}

/* A function of a shared object (libc's): named by its dynamic symbol, as dlsym knows it. */
static void names_a_library_function(void **state)
{
    (void)state;
    void *fns[] = {(void *)&strtol, (void *)&qsort, (void *)&getenv};
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        struct ac_site_info info;
        assert_true(ac_site_resolve((uintptr_t)fns[i] + 1, &info));
        assert_non_null(info.symbol);
        assert_true(info.symbol_offset == 1);
        assert_ptr_equal(dlsym(RTLD_DEFAULT, info.symbol), fns[i]);
        assert_ptr_equal(info.module, info.module_copy);
        assert_ptr_equal(info.symbol, info.symbol_copy);
    }
}

#ifdef SITES_PLUGIN
/* The names are copies: an object unloaded once its site was put into words (unmapped, its
 * link_map freed) takes nothing of them along. */
static void names_outlive_the_object(void **state)
{
    (void)state;
    void *h = dlopen(SITES_PLUGIN, RTLD_NOW);
    assert_non_null(h);
    void *fn = dlsym(h, "sites_plugin_a_eof");
    assert_non_null(fn);
    struct ac_site_info info;
    assert_true(ac_site_resolve((uintptr_t)fn + 4, &info));
    assert_int_equal(dlclose(h), 0);
    /* Gone: a dlopen with RTLD_NOLOAD finds nothing. */
    assert_null(dlopen(SITES_PLUGIN, RTLD_NOW | RTLD_NOLOAD));
    assert_string_equal(info.module, "sites_dlclose_a.so");
    assert_non_null(info.symbol);
    assert_string_equal(info.symbol, "sites_plugin_a_eof");
    assert_true(info.symbol_offset == 4);
}
#endif

/* A reclaim's line: a site met before an unload since is unknown (its address may now be another
 * object's); one met after it is named, the look-ups kept from before the unload forgotten. */
static void a_site_met_before_an_unload_is_unknown(void **state)
{
    (void)state;
    uintptr_t addr = (uintptr_t)&sites_probe_function + 1;
    char line[512];
    struct ac_site_note note = {.site = addr, .gen = ac_unload_gen_now(), .at = 13};
    strcpy(line, "shutdown fd=4 found=read");
    ac_site_complete(&note, line, sizeof line);
    assert_non_null(strstr(line, "shutdown fd=4 site=test_sites+0x"));
    __atomic_add_fetch(&ac_unload_gen, 1, __ATOMIC_RELAXED); /* a dlclose */
    strcpy(line, "shutdown fd=4 found=read");
    ac_site_complete(&note, line, sizeof line);
    assert_string_equal(line, "shutdown fd=4 site=unknown found=read");
    note.gen = ac_unload_gen_now();
    strcpy(line, "shutdown fd=4 found=read");
    ac_site_complete(&note, line, sizeof line);
    assert_non_null(strstr(line, "shutdown fd=4 site=test_sites+0x"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(module_and_offset),
        cmocka_unit_test(with_a_symbol),
        cmocka_unit_test(never_and_unknown),
        cmocka_unit_test(names_masked_and_bounded),
        cmocka_unit_test(resolves_a_function_of_this_program),
        cmocka_unit_test(names_a_library_function),
#ifdef SITES_PLUGIN
        cmocka_unit_test(names_outlive_the_object),
#endif
        cmocka_unit_test(a_site_met_before_an_unload_is_unknown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
