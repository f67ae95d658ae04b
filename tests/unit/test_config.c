/*
 * The AUTOCLOSE_* readers. An operator only learns a setting was wrong from the one complaint
 * line, so besides the parsed value every bad case checks that the line names the variable,
 * shows the value and says what is used instead.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "autoclose.h"

#define assert_contains(haystack, needle)                                                          \
    do {                                                                                           \
        if (strstr((haystack), (needle)) == NULL)                                                  \
            fail_msg("\"%s\" does not contain \"%s\"", (haystack), (needle));                      \
    } while (0)

/* A complaint goes to a log line: a raw control character would let a value forge lines. */
#define assert_printable(s)                                                                        \
    do {                                                                                           \
        for (const unsigned char *p_ = (const unsigned char *)(s); *p_; p_++)                      \
            if (*p_ < 0x20 || *p_ >= 0x7f)                                                         \
                fail_msg("byte 0x%02x at offset %d of \"%s\"", *p_,                                \
                         (int)(p_ - (const unsigned char *)(s)), (s));                             \
    } while (0)

static size_t ports_in(const struct ac_portset *set)
{
    size_t n = 0;
    for (size_t i = 0; i < sizeof set->bits / sizeof set->bits[0]; i++)
        n += (size_t)__builtin_popcountll(set->bits[i]);
    return n;
}

/* ---- AUTOCLOSE_GRACE_MS ------------------------------------------------------------------ */

static void grace_valid_values(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        uint32_t want;
    } cases[] = {
        {"0", 0}, {"5000", 5000}, {" 300 ", 300}, {"\t42\n", 42}, {"86400000", 86400000},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint32_t out = 777;
        char why[128] = "";
        assert_true(ac_parse_grace_ms(cases[i].value, &out, why, sizeof why));
        assert_int_equal(out, cases[i].want);
    }
}

static void grace_unset_is_default(void **state)
{
    (void)state;
    uint32_t out = 777;
    char why[128] = "";
    assert_true(ac_parse_grace_ms(NULL, &out, why, sizeof why));
    assert_int_equal(out, AC_DEFAULT_GRACE_MS);
    assert_string_equal(why, "");
}

static void grace_bad_values(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "abc", "-5", "5s", "0x10", "", "99999999999999999999", "86400001", "1.5", "+5", "5 5",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint32_t out = 777;
        char why[256] = "";
        char quoted[64];
        assert_false(ac_parse_grace_ms(bad[i], &out, why, sizeof why));
        assert_int_equal(out, 5000);
        assert_contains(why, "AUTOCLOSE_GRACE_MS");
        snprintf(quoted, sizeof quoted, "'%s'", bad[i]);
        assert_contains(why, quoted);
        assert_contains(why, "using 5000");
    }
}

/* The overflow check must neither wrap nor stop one digit short of the maximum. */
static void grace_around_the_maximum(void **state)
{
    (void)state;
    uint32_t out;
    char why[256];
    assert_true(ac_parse_grace_ms("86399999", &out, why, sizeof why));
    assert_int_equal(out, 86399999);
    assert_true(ac_parse_grace_ms("0086400000", &out, why, sizeof why));
    assert_int_equal(out, 86400000);
    assert_false(ac_parse_grace_ms("86400010", &out, why, sizeof why));
    assert_false(ac_parse_grace_ms("864000000", &out, why, sizeof why));
    assert_false(ac_parse_grace_ms("18446744073709551616", &out, why, sizeof why));
    assert_false(ac_parse_grace_ms("4294967296", &out, why, sizeof why));
    assert_int_equal(out, 5000);
}

/* ---- AUTOCLOSE_SWEEP_MS ------------------------------------------------------------------ */

static void sweep_valid_values(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        uint32_t want;
    } cases[] = {
        {"0", 0},
        {"1000", 1000},
        {" 250 ", 250},
        {"86400000", 86400000},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint32_t out = 777;
        char why[128] = "";
        assert_true(ac_parse_sweep_ms(cases[i].value, &out, why, sizeof why));
        assert_int_equal(out, cases[i].want);
    }
    uint32_t out = 777;
    char why[128] = "";
    assert_true(ac_parse_sweep_ms(NULL, &out, why, sizeof why));
    assert_int_equal(out, AC_DEFAULT_SWEEP_MS);
}

/* Its own name and its own default in the line, not the grace's. */
static void sweep_bad_values(void **state)
{
    (void)state;
    static const char *const bad[] = {"abc", "-1", "1s", "", "86400001", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint32_t out = 777;
        char why[256] = "";
        char quoted[64];
        assert_false(ac_parse_sweep_ms(bad[i], &out, why, sizeof why));
        assert_int_equal(out, AC_DEFAULT_SWEEP_MS);
        assert_contains(why, "AUTOCLOSE_SWEEP_MS");
        assert_null(strstr(why, "GRACE"));
        snprintf(quoted, sizeof quoted, "'%s'", bad[i]);
        assert_contains(why, quoted);
        assert_contains(why, "using 1000");
    }
}

/* ---- AUTOCLOSE_MODE ---------------------------------------------------------------------- */

static void mode_valid_values(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        enum ac_mode want;
    } cases[] = {
        {"shutdown", AC_MODE_SHUTDOWN}, {"SHUTDOWN", AC_MODE_SHUTDOWN},
        {"ShutDown", AC_MODE_SHUTDOWN}, {"close", AC_MODE_CLOSE},
        {"CLOSE", AC_MODE_CLOSE},       {"cLoSe", AC_MODE_CLOSE},
        {"  close", AC_MODE_CLOSE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        enum ac_mode out = cases[i].want == AC_MODE_CLOSE ? AC_MODE_SHUTDOWN : AC_MODE_CLOSE;
        char why[128] = "";
        assert_true(ac_parse_mode(cases[i].value, &out, why, sizeof why));
        assert_int_equal(out, cases[i].want);
    }
    enum ac_mode out = AC_MODE_CLOSE;
    char why[128] = "";
    assert_true(ac_parse_mode(NULL, &out, why, sizeof why));
    assert_int_equal(out, AC_MODE_SHUTDOWN);
}

static void mode_bad_values(void **state)
{
    (void)state;
    static const char *const bad[] = {"kill", "closed", "shut", "", "1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        enum ac_mode out = AC_MODE_CLOSE;
        char why[256] = "";
        char quoted[64];
        assert_false(ac_parse_mode(bad[i], &out, why, sizeof why));
        assert_int_equal(out, AC_MODE_SHUTDOWN);
        assert_contains(why, "AUTOCLOSE_MODE");
        snprintf(quoted, sizeof quoted, "'%s'", bad[i]);
        assert_contains(why, quoted);
        assert_contains(why, "using shutdown");
    }
}

/* ---- AUTOCLOSE_LOG ----------------------------------------------------------------------- */

static void log_level_valid_values(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        enum ac_log_level want;
    } cases[] = {
        {"off", AC_LOG_OFF},     {"OFF", AC_LOG_OFF},      {"error", AC_LOG_ERROR},
        {"Error", AC_LOG_ERROR}, {"info", AC_LOG_INFO},    {"INFO", AC_LOG_INFO},
        {"debug", AC_LOG_DEBUG}, {" DeBuG", AC_LOG_DEBUG},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        enum ac_log_level out = cases[i].want == AC_LOG_DEBUG ? AC_LOG_OFF : AC_LOG_DEBUG;
        char why[128] = "";
        assert_true(ac_parse_log_level(cases[i].value, &out, why, sizeof why));
        assert_int_equal(out, cases[i].want);
    }
    enum ac_log_level out = AC_LOG_DEBUG;
    char why[128] = "";
    assert_true(ac_parse_log_level(NULL, &out, why, sizeof why));
    assert_int_equal(out, AC_LOG_INFO);
}

static void log_level_bad_values(void **state)
{
    (void)state;
    static const char *const bad[] = {"verbose", "3", "", "warn", "infos"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        enum ac_log_level out = AC_LOG_DEBUG;
        char why[256] = "";
        char quoted[64];
        assert_false(ac_parse_log_level(bad[i], &out, why, sizeof why));
        assert_int_equal(out, AC_LOG_INFO);
        assert_contains(why, "AUTOCLOSE_LOG");
        snprintf(quoted, sizeof quoted, "'%s'", bad[i]);
        assert_contains(why, quoted);
        assert_contains(why, "using info");
    }
}

/* ---- switches ---------------------------------------------------------------------------- */

static void flag_valid_values(void **state)
{
    (void)state;
    static const char *const yes[] = {"1", "yes", "YES", "true", "True", "on", "ON", " yes"};
    static const char *const no[] = {"0", "no", "NO", "false", "FALSE", "off", "Off", " 0"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        bool out = false;
        char why[128] = "";
        assert_true(ac_parse_flag("AUTOCLOSE_X", yes[i], &out, why, sizeof why));
        assert_true(out);
    }
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        bool out = true;
        char why[128] = "";
        assert_true(ac_parse_flag("AUTOCLOSE_X", no[i], &out, why, sizeof why));
        assert_false(out);
    }
    bool out = true;
    char why[128] = "";
    assert_true(ac_parse_flag("AUTOCLOSE_X", NULL, &out, why, sizeof why));
    assert_false(out);
}

/* Every switch makes the shim hold back, so a value nobody can read is taken as "on". */
static void flag_garbage_is_on(void **state)
{
    (void)state;
    static const char *const bad[] = {"maybe", "2", "y", "enable", "-1"};
    static const char *const vars[] = {"AUTOCLOSE_DISABLE", "AUTOCLOSE_DRY_RUN"};
    for (size_t v = 0; v < 2; v++) {
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            bool out = false;
            char why[256] = "";
            char quoted[64];
            assert_false(ac_parse_flag(vars[v], bad[i], &out, why, sizeof why));
            assert_true(out);
            assert_contains(why, vars[v]);
            assert_null(strstr(why, vars[1 - v]));
            snprintf(quoted, sizeof quoted, "'%s'", bad[i]);
            assert_contains(why, quoted);
            assert_contains(why, "taking it as 1");
        }
    }
}

/* ---- AUTOCLOSE_PORTS --------------------------------------------------------------------- */

/* Starts from a set full of junk, so the reader must clear what it does not set. */
static bool parse_ports(const char *value, struct ac_portset *set, char *why, size_t why_len)
{
    memset(set, 0xff, sizeof *set);
    why[0] = '\0';
    return ac_parse_ports(value, set, why, why_len);
}

static void ports_single(void **state)
{
    (void)state;
    struct ac_portset set;
    char why[256];
    assert_true(parse_ports("10540", &set, why, sizeof why));
    assert_false(set.all);
    assert_true(ac_portset_has(&set, 10540));
    assert_false(ac_portset_has(&set, 10539));
    assert_false(ac_portset_has(&set, 10541));
    assert_int_equal(ports_in(&set), 1);

    assert_true(parse_ports("1", &set, why, sizeof why));
    assert_true(ac_portset_has(&set, 1));
    assert_int_equal(ports_in(&set), 1);

    assert_true(parse_ports("65535", &set, why, sizeof why));
    assert_true(ac_portset_has(&set, 65535));
    assert_int_equal(ports_in(&set), 1);
}

static void ports_list_and_ranges(void **state)
{
    (void)state;
    struct ac_portset set;
    char why[256];
    assert_true(parse_ports("80,443,10540", &set, why, sizeof why));
    assert_false(set.all);
    assert_true(ac_portset_has(&set, 80));
    assert_true(ac_portset_has(&set, 443));
    assert_true(ac_portset_has(&set, 10540));
    assert_int_equal(ports_in(&set), 3);

    assert_true(parse_ports("12000-12010,10540", &set, why, sizeof why));
    for (unsigned p = 12000; p <= 12010; p++)
        assert_true(ac_portset_has(&set, p));
    assert_false(ac_portset_has(&set, 11999));
    assert_false(ac_portset_has(&set, 12011));
    assert_true(ac_portset_has(&set, 10540));
    assert_int_equal(ports_in(&set), 12);

    assert_true(parse_ports("7-7", &set, why, sizeof why));
    assert_int_equal(ports_in(&set), 1);
    assert_true(ac_portset_has(&set, 7));

    assert_true(parse_ports("1-65535", &set, why, sizeof why));
    assert_false(set.all);
    assert_int_equal(ports_in(&set), 65535);
    assert_false(ac_portset_has(&set, 0));
}

static void ports_blanks_around_elements(void **state)
{
    (void)state;
    struct ac_portset set;
    char why[256];
    assert_true(parse_ports(" 80 ,\t443\t, 1000-1002 ,2000 - 2001 ", &set, why, sizeof why));
    assert_string_equal(why, "");
    assert_true(ac_portset_has(&set, 80));
    assert_true(ac_portset_has(&set, 443));
    assert_true(ac_portset_has(&set, 1000));
    assert_true(ac_portset_has(&set, 1002));
    assert_true(ac_portset_has(&set, 2000));
    assert_true(ac_portset_has(&set, 2001));
    assert_int_equal(ports_in(&set), 7);
}

static void ports_unset_means_all(void **state)
{
    (void)state;
    struct ac_portset set;
    char why[256];
    assert_true(parse_ports(NULL, &set, why, sizeof why));
    assert_true(set.all);
    assert_true(ac_portset_has(&set, 1));
    assert_true(ac_portset_has(&set, 65535));
    assert_int_equal(ports_in(&set), 0);
}

/* Each value has one bad element and no good one: nothing may be handled. */
static void ports_all_bad(void **state)
{
    (void)state;
    static const struct {
        const char *value, *element;
    } cases[] = {
        {"0", "'0'"},
        {"65536", "'65536'"},
        {"70000", "'70000'"},
        {"20-10", "'20-10'"},
        {"abc", "'abc'"},
        {"-5", "'-5'"},
        {"1-2-3", "'1-2-3'"},
        {"0-5", "'0-5'"},
        {"10-65536", "'10-65536'"},
        {"0x50", "'0x50'"},
        {"", "''"},
        {",", "''"},
        {"abc,0,70000", "'abc'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct ac_portset set;
        char why[256];
        assert_false(parse_ports(cases[i].value, &set, why, sizeof why));
        assert_false(set.all);
        assert_int_equal(ports_in(&set), 0);
        assert_false(ac_portset_has(&set, 80));
        assert_contains(why, "AUTOCLOSE_PORTS");
        assert_contains(why, cases[i].element);
        assert_contains(why, "no connection will be handled");
    }
}

static void ports_good_survive_bad(void **state)
{
    (void)state;
    struct ac_portset set;
    char why[256];
    assert_false(parse_ports("80,abc,443", &set, why, sizeof why));
    assert_false(set.all);
    assert_true(ac_portset_has(&set, 80));
    assert_true(ac_portset_has(&set, 443));
    assert_int_equal(ports_in(&set), 2);
    assert_contains(why, "AUTOCLOSE_PORTS");
    assert_contains(why, "'abc'");
    assert_contains(why, "ignoring that element");

    assert_false(parse_ports("1,,2", &set, why, sizeof why));
    assert_true(ac_portset_has(&set, 1));
    assert_true(ac_portset_has(&set, 2));
    assert_int_equal(ports_in(&set), 2);
    assert_contains(why, "ignoring that element");

    assert_false(parse_ports("20-10,30-31,65536,0", &set, why, sizeof why));
    assert_true(ac_portset_has(&set, 30));
    assert_true(ac_portset_has(&set, 31));
    assert_false(ac_portset_has(&set, 20));
    assert_int_equal(ports_in(&set), 2);
    assert_contains(why, "'20-10'"); /* the first bad element is the one named */
    assert_contains(why, "ignoring that element");
}

/* ---- hostile values ---------------------------------------------------------------------- */

static void assert_escaped(const char *why, const char *var)
{
    assert_true(why[0] != '\0');
    assert_printable(why);
    assert_contains(why, var);
}

static void hostile_values_are_escaped(void **state)
{
    (void)state;
    static const char *const hostile[] = {
        "5\nlibautoclose[1]: forged line", "x\r\n", "\x1b[2J\x1b[31mred", "a\tb\x7f\x01", "it's",
    };
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
        const char *v = hostile[i];
        char why[256];
        uint32_t ms;
        enum ac_mode mode;
        enum ac_log_level level;
        bool flag;
        struct ac_portset set;

        why[0] = '\0';
        assert_false(ac_parse_grace_ms(v, &ms, why, sizeof why));
        assert_escaped(why, "AUTOCLOSE_GRACE_MS");
        why[0] = '\0';
        assert_false(ac_parse_sweep_ms(v, &ms, why, sizeof why));
        assert_escaped(why, "AUTOCLOSE_SWEEP_MS");
        why[0] = '\0';
        assert_false(ac_parse_mode(v, &mode, why, sizeof why));
        assert_escaped(why, "AUTOCLOSE_MODE");
        why[0] = '\0';
        assert_false(ac_parse_log_level(v, &level, why, sizeof why));
        assert_escaped(why, "AUTOCLOSE_LOG");
        why[0] = '\0';
        assert_false(ac_parse_flag("AUTOCLOSE_DRY_RUN", v, &flag, why, sizeof why));
        assert_escaped(why, "AUTOCLOSE_DRY_RUN");
        assert_false(parse_ports(v, &set, why, sizeof why));
        assert_escaped(why, "AUTOCLOSE_PORTS");
    }

    /* Escaped, not dropped: the operator still sees where the odd byte was. */
    char why[256];
    uint32_t ms;
    assert_false(ac_parse_grace_ms("5\nX", &ms, why, sizeof why));
    assert_contains(why, "'5?X'");
    assert_false(ac_parse_grace_ms("it's", &ms, why, sizeof why));
    assert_contains(why, "'it?s'");
    struct ac_portset set;
    assert_false(parse_ports("80,4\n43", &set, why, sizeof why));
    assert_contains(why, "'4?43'");
    assert_true(ac_portset_has(&set, 80));
}

/* A huge value is shortened in the line, which still ends with the fallback. */
static void long_value_is_shortened(void **state)
{
    (void)state;
    char value[1000];
    memset(value, 'z', sizeof value - 1);
    value[sizeof value - 1] = '\0';
    char why[256];
    uint32_t ms;
    assert_false(ac_parse_grace_ms(value, &ms, why, sizeof why));
    assert_contains(why, "...");
    assert_contains(why, "using 5000");
    assert_true(strlen(why) < 200);

    struct ac_portset set;
    assert_false(parse_ports(value, &set, why, sizeof why));
    assert_contains(why, "...");
    assert_contains(why, "no connection will be handled");
}

/* A short buffer gets a truncated, terminated line and nothing past its end. */
static void complaint_respects_buffer(void **state)
{
    (void)state;
    char area[32];
    memset(area, '#', sizeof area);
    uint32_t ms;
    assert_false(ac_parse_grace_ms("abc", &ms, area, 10));
    assert_int_equal(strlen(area), 9);
    assert_memory_equal(area, "AUTOCLOSE", 9);
    for (size_t i = 10; i < sizeof area; i++)
        assert_int_equal(area[i], '#');
    assert_int_equal(ms, 5000);
}

/* ---- ac_config_load ---------------------------------------------------------------------- */

struct var {
    const char *name, *value;
};
static const struct var *env_table;
static size_t env_len;
static char lines[16][300];
static size_t line_count;

static const char *fake_lookup(const char *name)
{
    for (size_t i = 0; i < env_len; i++)
        if (strcmp(env_table[i].name, name) == 0)
            return env_table[i].value;
    return NULL;
}

static void record_line(const char *line)
{
    if (line_count < sizeof lines / sizeof lines[0])
        snprintf(lines[line_count], sizeof lines[0], "%s", line);
    line_count++;
}

#define LOAD(cfg, table)                                                                           \
    do {                                                                                           \
        env_table = (table);                                                                       \
        env_len = sizeof(table) / sizeof((table)[0]);                                              \
        line_count = 0;                                                                            \
        memset((cfg), 0xa5, sizeof *(cfg));                                                        \
        ac_config_load((cfg), fake_lookup, record_line);                                           \
    } while (0)

/* A line belongs to a variable when it starts with "NAME=": AUTOCLOSE_LOG is a prefix of
 * AUTOCLOSE_LOG_FILE, so a plain substring match would count wrong. */
static size_t lines_about(const char *var)
{
    size_t n = 0, len = strlen(var);
    for (size_t i = 0; i < line_count && i < sizeof lines / sizeof lines[0]; i++)
        if (strncmp(lines[i], var, len) == 0 && lines[i][len] == '=')
            n++;
    return n;
}

static void assert_defaults(const struct ac_config *cfg)
{
    assert_false(cfg->disabled);
    assert_false(cfg->dry_run);
    assert_int_equal(cfg->mode, AC_MODE_SHUTDOWN);
    assert_int_equal(cfg->log_level, AC_LOG_INFO);
    assert_int_equal(cfg->grace_ms, AC_DEFAULT_GRACE_MS);
    assert_int_equal(cfg->sweep_ms, AC_DEFAULT_SWEEP_MS);
    assert_true(cfg->ports.all);
    assert_int_equal(ports_in(&cfg->ports), 0);
    assert_string_equal(cfg->log_file, "");
}

static void load_nothing_set(void **state)
{
    (void)state;
    static const struct var table[] = {{"UNRELATED", "1"}};
    struct ac_config cfg;
    LOAD(&cfg, table);
    assert_int_equal(line_count, 0);
    assert_defaults(&cfg);
}

static void load_all_good(void **state)
{
    (void)state;
    static const struct var table[] = {
        {"AUTOCLOSE_DISABLE", "no"},
        {"AUTOCLOSE_DRY_RUN", "1"},
        {"AUTOCLOSE_LOG", "debug"},
        {"AUTOCLOSE_GRACE_MS", "250"},
        {"AUTOCLOSE_SWEEP_MS", "0"},
        {"AUTOCLOSE_MODE", "close"},
        {"AUTOCLOSE_PORTS", "10540,12000-12001"},
        {"AUTOCLOSE_LOG_FILE", "/var/log/autoclose.log"},
    };
    struct ac_config cfg;
    LOAD(&cfg, table);
    assert_int_equal(line_count, 0);
    assert_false(cfg.disabled);
    assert_true(cfg.dry_run);
    assert_int_equal(cfg.log_level, AC_LOG_DEBUG);
    assert_int_equal(cfg.grace_ms, 250);
    assert_int_equal(cfg.sweep_ms, 0);
    assert_int_equal(cfg.mode, AC_MODE_CLOSE);
    assert_false(cfg.ports.all);
    assert_int_equal(ports_in(&cfg.ports), 3);
    assert_true(ac_portset_has(&cfg.ports, 10540));
    assert_true(ac_portset_has(&cfg.ports, 12001));
    assert_string_equal(cfg.log_file, "/var/log/autoclose.log");
}

static void load_each_bad_variable_once(void **state)
{
    (void)state;
    static const struct var table[] = {
        {"AUTOCLOSE_DISABLE", "0"},   {"AUTOCLOSE_DRY_RUN", "sure"},   {"AUTOCLOSE_LOG", "loud"},
        {"AUTOCLOSE_GRACE_MS", "5s"}, {"AUTOCLOSE_SWEEP_MS", "often"}, {"AUTOCLOSE_MODE", "kill"},
        {"AUTOCLOSE_PORTS", "abc"},
    };
    static const char *const vars[] = {
        "AUTOCLOSE_DRY_RUN",  "AUTOCLOSE_LOG",  "AUTOCLOSE_GRACE_MS",
        "AUTOCLOSE_SWEEP_MS", "AUTOCLOSE_MODE", "AUTOCLOSE_PORTS",
    };
    struct ac_config cfg;
    LOAD(&cfg, table);
    assert_int_equal(line_count, 6);
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        assert_int_equal(lines_about(vars[i]), 1);
    assert_false(cfg.disabled);
    assert_true(cfg.dry_run);
    assert_int_equal(cfg.log_level, AC_LOG_INFO);
    assert_int_equal(cfg.grace_ms, 5000);
    assert_int_equal(cfg.sweep_ms, 1000);
    assert_int_equal(cfg.mode, AC_MODE_SHUTDOWN);
    assert_false(cfg.ports.all);
    assert_int_equal(ports_in(&cfg.ports), 0);
    assert_string_equal(cfg.log_file, "");
}

/* AUTOCLOSE_DISABLE makes the library inert: whatever else is set, nothing may act, no socket
 * option may be applied and no stats file written. A garbage value counts as "disable". */
static void load_disable_overrides_everything(void **state)
{
    (void)state;
    static const struct var table[] = {
        {"AUTOCLOSE_DISABLE", "maybe"}, {"AUTOCLOSE_KEEPALIVE", "30,5,3"},
        {"AUTOCLOSE_FIN_WAIT2_S", "2"}, {"AUTOCLOSE_USER_TIMEOUT_MS", "1000"},
        {"AUTOCLOSE_REUSEADDR", "1"},   {"AUTOCLOSE_STATS_FILE", "/tmp/x.prom"},
        {"AUTOCLOSE_SWEEP_MS", "100"},
    };
    struct ac_config cfg;
    LOAD(&cfg, table);
    assert_int_equal(line_count, 1);
    assert_int_equal(lines_about("AUTOCLOSE_DISABLE"), 1);
    assert_true(cfg.disabled);
    assert_false(cfg.keepalive.on);
    assert_int_equal(cfg.fin_wait2_s, 0);
    assert_int_equal(cfg.user_timeout_ms, 0);
    assert_false(cfg.reuseaddr);
    assert_string_equal(cfg.stats_file, "");
    assert_int_equal(cfg.sweep_ms, 0);
}

static void load_one_bad_among_good(void **state)
{
    (void)state;
    static const struct var table[] = {
        {"AUTOCLOSE_LOG", "error"},      {"AUTOCLOSE_GRACE_MS", "0x10"},
        {"AUTOCLOSE_SWEEP_MS", "2500"},  {"AUTOCLOSE_MODE", "CLOSE"},
        {"AUTOCLOSE_PORTS", "80,99999"},
    };
    struct ac_config cfg;
    LOAD(&cfg, table);
    assert_int_equal(line_count, 2);
    assert_int_equal(lines_about("AUTOCLOSE_GRACE_MS"), 1);
    assert_int_equal(lines_about("AUTOCLOSE_PORTS"), 1);
    assert_int_equal(cfg.log_level, AC_LOG_ERROR);
    assert_int_equal(cfg.grace_ms, 5000);
    assert_int_equal(cfg.sweep_ms, 2500);
    assert_int_equal(cfg.mode, AC_MODE_CLOSE);
    assert_false(cfg.ports.all);
    assert_true(ac_portset_has(&cfg.ports, 80));
    assert_int_equal(ports_in(&cfg.ports), 1);
    assert_false(cfg.disabled);
}

/* Service units clear a setting with `Environment=X=`: that is unset, not a mistake. */
static void load_empty_is_unset(void **state)
{
    (void)state;
    static const struct var table[] = {
        {"AUTOCLOSE_DISABLE", ""},  {"AUTOCLOSE_DRY_RUN", ""},  {"AUTOCLOSE_LOG", ""},
        {"AUTOCLOSE_GRACE_MS", ""}, {"AUTOCLOSE_SWEEP_MS", ""}, {"AUTOCLOSE_MODE", ""},
        {"AUTOCLOSE_PORTS", ""},    {"AUTOCLOSE_LOG_FILE", ""},
    };
    struct ac_config cfg;
    LOAD(&cfg, table);
    assert_int_equal(line_count, 0);
    assert_defaults(&cfg);
}

static void load_log_file_length(void **state)
{
    (void)state;
    static char longest[sizeof((struct ac_config *)0)->log_file];
    static char too_long[sizeof longest + 1];
    memset(longest, 'f', sizeof longest - 1);
    longest[0] = '/';
    memset(too_long, 'f', sizeof too_long - 1);
    too_long[0] = '/';

    struct var table[] = {{"AUTOCLOSE_LOG_FILE", longest}};
    struct ac_config cfg;
    LOAD(&cfg, table);
    assert_int_equal(line_count, 0);
    assert_string_equal(cfg.log_file, longest);

    table[0].value = too_long;
    LOAD(&cfg, table);
    assert_int_equal(line_count, 1);
    assert_int_equal(lines_about("AUTOCLOSE_LOG_FILE"), 1);
    assert_string_equal(cfg.log_file, "");
    assert_printable(lines[0]);
}

/* ---- AUTOCLOSE_KEEPALIVE ----------------------------------------------------------------- */

/* Starts from junk that claims keepalive is on, so a reader that returns early is caught. */
static bool parse_keepalive(const char *value, struct ac_keepalive *out, char *why, size_t len)
{
    *out = (struct ac_keepalive){.on = true, .idle_s = -7, .interval_s = -7, .count = -7};
    why[0] = '\0';
    return ac_parse_keepalive(value, out, why, len);
}

static void keepalive_valid_values(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        int idle, interval, count;
    } cases[] = {
        {"30,5,3", 30, 5, 3},
        {"1,1,1", 1, 1, 1},                     /* every lower bound */
        {"32767,32767,127", 32767, 32767, 127}, /* every kernel maximum */
        {"007,05,03", 7, 5, 3},
        {" 30 , 5 , 3 ", 30, 5, 3}, /* blanks around numbers, as the other readers allow */
        {"7200,75,9", 7200, 75, 9}, /* the kernel's own defaults, spelled out */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct ac_keepalive k;
        char why[256];
        if (!parse_keepalive(cases[i].value, &k, why, sizeof why))
            fail_msg("'%s' refused: %s", cases[i].value, why);
        assert_true(k.on);
        assert_int_equal(k.idle_s, cases[i].idle);
        assert_int_equal(k.interval_s, cases[i].interval);
        assert_int_equal(k.count, cases[i].count);
        assert_string_equal(why, "");
    }
}

static void keepalive_unset_is_off(void **state)
{
    (void)state;
    struct ac_keepalive k;
    char why[256];
    assert_true(parse_keepalive(NULL, &k, why, sizeof why));
    assert_false(k.on);
    assert_int_equal(k.idle_s, 0);
    assert_int_equal(k.interval_s, 0);
    assert_int_equal(k.count, 0);
    assert_string_equal(why, "");
}

/* Wrong arity, zeros, one past each kernel limit, overflow, signs, stray separators. */
static void keepalive_bad_values(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "30,5",     "0,5,3",   "30,0,3",   "30,5,0",    "30,5,200",
        "abc",      "",        "30",       "30,5,3,",   "30,5,3,1",
        ",5,3",     "30,,3",   "30,5,",    "32768,5,3", "30,32768,3",
        "30,5,128", "-1,5,3",  "30,-5,3",  "+30,5,3",   "30;5;3",
        "30 5 3",   "30,5,3x", "0x1e,5,3", "1.5,5,3",   "99999999999999999999,5,3",
        "30,5,3 ,", ",,",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct ac_keepalive k;
        char why[256], quoted[64];
        if (parse_keepalive(bad[i], &k, why, sizeof why))
            fail_msg("'%s' accepted as %d,%d,%d", bad[i], k.idle_s, k.interval_s, k.count);
        assert_false(k.on);
        assert_int_equal(k.idle_s, 0);
        assert_int_equal(k.interval_s, 0);
        assert_int_equal(k.count, 0);
        assert_contains(why, "AUTOCLOSE_KEEPALIVE=");
        snprintf(quoted, sizeof quoted, "'%s'", bad[i]);
        assert_contains(why, quoted);
        assert_contains(why, "leaving keepalive as the program sets it");
    }
}

/* A part too long for the reader's own buffer is refused, not cut to a valid-looking number. */
static void keepalive_long_part(void **state)
{
    (void)state;
    struct ac_keepalive k;
    char why[256];
    assert_false(parse_keepalive("000000000000000000000000000030,5,3", &k, why, sizeof why));
    assert_false(k.on);
    assert_false(parse_keepalive("30,5,000000000000000000000000000003", &k, why, sizeof why));
    assert_false(k.on);
}

/* ---- AUTOCLOSE_USER_TIMEOUT_MS ----------------------------------------------------------- */

static void user_timeout_valid_values(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        uint32_t want;
    } cases[] = {
        {"0", 0}, {"1", 1}, {"30000", 30000}, {" 250 ", 250}, {"2147483647", 2147483647u},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint32_t out = 777;
        char why[256] = "";
        assert_true(ac_parse_user_timeout_ms(cases[i].value, &out, why, sizeof why));
        assert_int_equal(out, cases[i].want);
        assert_string_equal(why, "");
    }
    uint32_t out = 777;
    char why[256] = "";
    assert_true(ac_parse_user_timeout_ms(NULL, &out, why, sizeof why));
    assert_int_equal(out, 0);
    assert_string_equal(why, "");
}

/* The kernel takes an int: one past INT_MAX must not wrap into a negative timeout. */
static void user_timeout_bad_values(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "-1",   "2147483648", "4294967296", "99999999999999999999", "abc", "", "1.5", "10ms",
        "0x10", "+5",         "5 5",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint32_t out = 777;
        char why[256] = "", quoted[64];
        assert_false(ac_parse_user_timeout_ms(bad[i], &out, why, sizeof why));
        assert_int_equal(out, 0);
        assert_contains(why, "AUTOCLOSE_USER_TIMEOUT_MS=");
        snprintf(quoted, sizeof quoted, "'%s'", bad[i]);
        assert_contains(why, quoted);
        assert_contains(why, "0-2147483647");
        assert_contains(why, "not setting it");
    }
}

/* ---- AUTOCLOSE_FIN_WAIT2_S --------------------------------------------------------------- */

static void fin_wait2_valid_values(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        int want;
    } cases[] = {
        {"1", 1}, {"2", 2}, {"60", 60}, {"119", 119}, {"120", 120}, {" 30 ", 30}, {"0120", 120},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int out = 777;
        char why[256] = "";
        assert_true(ac_parse_fin_wait2_s(cases[i].value, &out, why, sizeof why));
        assert_int_equal(out, cases[i].want);
        assert_string_equal(why, "");
    }
    int out = 777;
    char why[256] = "";
    assert_true(ac_parse_fin_wait2_s(NULL, &out, why, sizeof why));
    assert_int_equal(out, 0);
}

/* AUTOCLOSE_NOFILE: "max" is the hard limit (UINT64_MAX here), a number is itself; unset leaves
 * the limit alone (0), and so does anything else, said in one line. */
static void nofile_values(void **state)
{
    (void)state;
    uint64_t out = 7;
    char why[256] = "";
    assert_true(ac_parse_nofile(NULL, &out, why, sizeof why));
    assert_int_equal(out, 0);
    assert_true(ac_parse_nofile("max", &out, why, sizeof why));
    assert_true(out == UINT64_MAX);
    assert_true(ac_parse_nofile("4096", &out, why, sizeof why));
    assert_int_equal(out, 4096);
    assert_string_equal(why, "");
    static const char *const bad[] = {"", "0", "-1", "MAX", "10k", "4096 ", "99999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        out = 7;
        assert_false(ac_parse_nofile(bad[i], &out, why, sizeof why));
        assert_int_equal(out, 0);
        assert_contains(why, "AUTOCLOSE_NOFILE=");
        assert_contains(why, "leaving the descriptor limit as it is");
    }
}

/* 0 would mean "the system default" to the kernel and 121 more than it allows: both refused. */
static void fin_wait2_bad_values(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "0", "121", "500", "-1", "abc", "", "2s", "1.5", "99999999999999999999", "0x10",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int out = 777;
        char why[256] = "", quoted[64];
        assert_false(ac_parse_fin_wait2_s(bad[i], &out, why, sizeof why));
        assert_int_equal(out, 0);
        assert_contains(why, "AUTOCLOSE_FIN_WAIT2_S=");
        snprintf(quoted, sizeof quoted, "'%s'", bad[i]);
        assert_contains(why, quoted);
        assert_contains(why, "1-120");
        assert_contains(why, "leaving the system default");
    }
}

static void hygiene_hostile_values_are_escaped(void **state)
{
    (void)state;
    static const char *const hostile[] = {
        "5\nlibautoclose[1]: forged line", "30,5\n3", "\x1b[2J\x1b[31mred", "a\tb\x7f\x01", "it's",
    };
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
        char why[256];
        struct ac_keepalive k;
        uint32_t ms;
        int s;
        assert_false(parse_keepalive(hostile[i], &k, why, sizeof why));
        assert_escaped(why, "AUTOCLOSE_KEEPALIVE");
        why[0] = '\0';
        assert_false(ac_parse_user_timeout_ms(hostile[i], &ms, why, sizeof why));
        assert_escaped(why, "AUTOCLOSE_USER_TIMEOUT_MS");
        why[0] = '\0';
        assert_false(ac_parse_fin_wait2_s(hostile[i], &s, why, sizeof why));
        assert_escaped(why, "AUTOCLOSE_FIN_WAIT2_S");
    }
}

/* ---- ac_expand_path ---------------------------------------------------------------------- */

/* Expands into a buffer of `cap` bytes inside a guarded area. */
static bool expand(const char *pattern, long pid, char *area, size_t area_len, size_t cap)
{
    memset(area, '#', area_len);
    bool ok = ac_expand_path(pattern, pid, area, cap);
    for (size_t i = cap; i < area_len; i++)
        if (area[i] != '#')
            fail_msg("'%s' into %zu bytes wrote byte %zu", pattern, cap, i);
    assert_true(strlen(area) < cap);
    return ok;
}

static void expand_path_substitutions(void **state)
{
    (void)state;
    static const struct {
        const char *pattern;
        long pid;
        const char *want;
    } cases[] = {
        {"/var/lib/node_exporter/autoclose-%p.prom", 1234,
         "/var/lib/node_exporter/autoclose-1234.prom"},
        {"%p", 1, "1"},
        {"%p", 4194304, "4194304"}, /* the largest pid Linux hands out */
        {"a-%p-%p", 42, "a-42-42"},
        {"100%%", 7, "100%"},
        {"%%p", 7, "%p"}, /* an escaped %, then a plain p */
        {"%%%p", 7, "%7"},
        {"stats%", 7, "stats%"}, /* a lone % at the end stays */
        {"%x%", 7, "%x%"},       /* an unknown escape stays as written */
        {"plain.prom", 7, "plain.prom"},
        {"", 7, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char area[128];
        if (!expand(cases[i].pattern, cases[i].pid, area, sizeof area, 100))
            fail_msg("'%s' refused", cases[i].pattern);
        assert_string_equal(area, cases[i].want);
    }
}

static void expand_path_too_long(void **state)
{
    (void)state;
    char area[64];
    assert_false(expand("/tmp/a-much-longer-name.prom", 1, area, sizeof area, 10));
    /* The pattern fits, its expansion does not. */
    assert_false(expand("/t/%p", 1234567, area, sizeof area, 8));
    assert_false(expand("%p%p%p", 4194304, area, sizeof area, 16));
    /* The same with room to spare. */
    assert_true(expand("/t/%p", 1234567, area, sizeof area, 16));
    assert_string_equal(area, "/t/1234567");
    assert_true(expand("abc", 1, area, sizeof area, 8));
    assert_string_equal(area, "abc");
}

/* Secure execution (a set-user-ID program): whoever runs it sets the environment, so nothing
 * that names a file or raises a limit is taken from it; one line names what was ignored, and
 * the rest is read as usual. The same table in a normal process is taken whole. */
static void load_secure_execution_ignores_files_and_limits(void **state)
{
    (void)state;
    static const struct var table[] = {
        {"AUTOCLOSE_LOG_FILE", "/etc/shadow"},
        {"AUTOCLOSE_STATS_FILE", "/etc/passwd"},
        {"AUTOCLOSE_NOFILE", "max"},
        {"AUTOCLOSE_GRACE_MS", "250"},
    };
    struct ac_config cfg;
    env_table = table;
    env_len = sizeof table / sizeof table[0];
    line_count = 0;
    ac_config_load_for(&cfg, fake_lookup, record_line, true);
    assert_string_equal(cfg.log_file, "");
    assert_string_equal(cfg.stats_file, "");
    assert_int_equal(cfg.nofile, 0);
    assert_int_equal(cfg.grace_ms, 250);
    assert_int_equal(line_count, 1);
    assert_non_null(strstr(lines[0], "secure execution"));
    assert_non_null(strstr(lines[0], "AUTOCLOSE_LOG_FILE, AUTOCLOSE_STATS_FILE, AUTOCLOSE_NOFILE"));

    line_count = 0;
    ac_config_load_for(&cfg, fake_lookup, record_line, false);
    assert_string_equal(cfg.log_file, "/etc/shadow");
    assert_string_equal(cfg.stats_file, "/etc/passwd");
    assert_int_equal(cfg.nofile, UINT64_MAX);
    assert_int_equal(line_count, 0);

    /* Secure, and none of them set: no line at all. */
    static const struct var quiet[] = {{"AUTOCLOSE_GRACE_MS", "250"}};
    env_table = quiet;
    env_len = 1;
    line_count = 0;
    ac_config_load_for(&cfg, fake_lookup, record_line, true);
    assert_int_equal(line_count, 0);
}

/* ---- ac_config_load: the hygiene variables and the stats file --------------------------- */

static void load_hygiene_unset(void **state)
{
    (void)state;
    static const struct var table[] = {{"UNRELATED", "1"}};
    struct ac_config cfg;
    LOAD(&cfg, table);
    assert_int_equal(line_count, 0);
    assert_false(cfg.keepalive.on);
    assert_int_equal(cfg.user_timeout_ms, 0);
    assert_int_equal(cfg.fin_wait2_s, 0);
    assert_false(cfg.reuseaddr);
    assert_string_equal(cfg.stats_file, "");
}

static void load_hygiene_all_good(void **state)
{
    (void)state;
    static const struct var table[] = {
        {"AUTOCLOSE_KEEPALIVE", "30,5,3"},
        {"AUTOCLOSE_USER_TIMEOUT_MS", "4321"},
        {"AUTOCLOSE_FIN_WAIT2_S", "2"},
        {"AUTOCLOSE_REUSEADDR", "1"},
        {"AUTOCLOSE_STATS_FILE", "/var/lib/node_exporter/autoclose-%p.prom"},
        {"AUTOCLOSE_GRACE_MS", "250"},
    };
    struct ac_config cfg;
    LOAD(&cfg, table);
    assert_int_equal(line_count, 0);
    assert_true(cfg.keepalive.on);
    assert_int_equal(cfg.keepalive.idle_s, 30);
    assert_int_equal(cfg.keepalive.interval_s, 5);
    assert_int_equal(cfg.keepalive.count, 3);
    assert_int_equal(cfg.user_timeout_ms, 4321);
    assert_int_equal(cfg.fin_wait2_s, 2);
    assert_true(cfg.reuseaddr);
    /* Kept as given: %p is the pid of whichever process writes, a forked child included. */
    assert_string_equal(cfg.stats_file, "/var/lib/node_exporter/autoclose-%p.prom");
    assert_int_equal(cfg.grace_ms, 250);
    assert_false(cfg.disabled);
    assert_false(cfg.dry_run);
}

static void load_reuseaddr_switch(void **state)
{
    (void)state;
    static const char *const on[] = {"1", "yes", "YES", "true", "on", " On "};
    static const char *const off[] = {"0", "no", "false", "OFF", " 0 "};
    struct var table[] = {{"AUTOCLOSE_REUSEADDR", NULL}};
    struct ac_config cfg;
    for (size_t i = 0; i < sizeof on / sizeof on[0]; i++) {
        table[0].value = on[i];
        LOAD(&cfg, table);
        assert_int_equal(line_count, 0);
        assert_true(cfg.reuseaddr);
    }
    for (size_t i = 0; i < sizeof off / sizeof off[0]; i++) {
        table[0].value = off[i];
        LOAD(&cfg, table);
        assert_int_equal(line_count, 0);
        assert_false(cfg.reuseaddr);
    }
}

/* Unlike DISABLE and DRY_RUN, holding back here means not setting the option: 0. */
static void load_reuseaddr_garbage_is_off(void **state)
{
    (void)state;
    static const char *const bad[] = {"maybe", "2", "y", "enable", "-1"};
    struct var table[] = {{"AUTOCLOSE_REUSEADDR", NULL}};
    struct ac_config cfg;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char quoted[64];
        table[0].value = bad[i];
        LOAD(&cfg, table);
        assert_int_equal(line_count, 1);
        assert_int_equal(lines_about("AUTOCLOSE_REUSEADDR"), 1);
        assert_false(cfg.reuseaddr);
        snprintf(quoted, sizeof quoted, "'%s'", bad[i]);
        assert_contains(lines[0], quoted);
        assert_contains(lines[0], "taking it as 0");
        assert_false(cfg.disabled);
        assert_false(cfg.dry_run);
    }
}

static void load_hygiene_each_bad_once(void **state)
{
    (void)state;
    static const struct var table[] = {
        {"AUTOCLOSE_KEEPALIVE", "30,5"},  {"AUTOCLOSE_USER_TIMEOUT_MS", "-1"},
        {"AUTOCLOSE_FIN_WAIT2_S", "500"}, {"AUTOCLOSE_REUSEADDR", "maybe"},
        {"AUTOCLOSE_GRACE_MS", "250"},    {"AUTOCLOSE_MODE", "close"},
    };
    struct ac_config cfg;
    LOAD(&cfg, table);
    assert_int_equal(line_count, 4);
    assert_int_equal(lines_about("AUTOCLOSE_KEEPALIVE"), 1);
    assert_int_equal(lines_about("AUTOCLOSE_USER_TIMEOUT_MS"), 1);
    assert_int_equal(lines_about("AUTOCLOSE_FIN_WAIT2_S"), 1);
    assert_int_equal(lines_about("AUTOCLOSE_REUSEADDR"), 1);
    for (size_t i = 0; i < line_count; i++)
        assert_printable(lines[i]);
    assert_false(cfg.keepalive.on);
    assert_int_equal(cfg.user_timeout_ms, 0);
    assert_int_equal(cfg.fin_wait2_s, 0);
    assert_false(cfg.reuseaddr);
    /* The good ones beside them still count. */
    assert_int_equal(cfg.grace_ms, 250);
    assert_int_equal(cfg.mode, AC_MODE_CLOSE);
}

static void load_hygiene_empty_is_unset(void **state)
{
    (void)state;
    static const struct var table[] = {
        {"AUTOCLOSE_KEEPALIVE", ""},   {"AUTOCLOSE_USER_TIMEOUT_MS", ""},
        {"AUTOCLOSE_FIN_WAIT2_S", ""}, {"AUTOCLOSE_REUSEADDR", ""},
        {"AUTOCLOSE_STATS_FILE", ""},
    };
    struct ac_config cfg;
    LOAD(&cfg, table);
    assert_int_equal(line_count, 0);
    assert_false(cfg.keepalive.on);
    assert_int_equal(cfg.user_timeout_ms, 0);
    assert_int_equal(cfg.fin_wait2_s, 0);
    assert_false(cfg.reuseaddr);
    assert_string_equal(cfg.stats_file, "");
    assert_defaults(&cfg);
}

/* The path must still fit once %p becomes the longest pid, checked at load and not first in a
 * forked child, where a complaint would come late and from the wrong process. */
static void load_stats_file_length(void **state)
{
    (void)state;
    enum { CAP = sizeof((struct ac_config *)0)->stats_file };
    static char fits[CAP], pid_too_long[CAP], too_long[CAP + 10];
    /* CAP - 20 bytes of path and "%p": 7 digits of pid leave room. */
    memset(fits, 'f', CAP - 20);
    fits[0] = '/';
    memcpy(fits + CAP - 20, "%p", 3);
    /* Fits as given, not once %p is 7 digits. */
    memset(pid_too_long, 'g', CAP - 4);
    pid_too_long[0] = '/';
    memcpy(pid_too_long + CAP - 4, "%p", 3);
    memset(too_long, 'h', sizeof too_long - 1);
    too_long[0] = '/';

    struct var table[] = {{"AUTOCLOSE_STATS_FILE", fits}};
    struct ac_config cfg;
    LOAD(&cfg, table);
    assert_int_equal(line_count, 0);
    assert_string_equal(cfg.stats_file, fits);

    table[0].value = pid_too_long;
    LOAD(&cfg, table);
    assert_int_equal(line_count, 1);
    assert_int_equal(lines_about("AUTOCLOSE_STATS_FILE"), 1);
    assert_contains(lines[0], "writing no stats");
    assert_printable(lines[0]);
    assert_string_equal(cfg.stats_file, "");

    table[0].value = too_long;
    LOAD(&cfg, table);
    assert_int_equal(line_count, 1);
    assert_int_equal(lines_about("AUTOCLOSE_STATS_FILE"), 1);
    assert_string_equal(cfg.stats_file, "");
}

/* ---- unknown AUTOCLOSE_* variables ------------------------------------------------------- */

static const char *asked[64];
static size_t asked_count;

static const char *recording_lookup(const char *name)
{
    if (asked_count < sizeof asked / sizeof asked[0])
        asked[asked_count] = name;
    asked_count++;
    return NULL;
}

/* The loader reads exactly the settings of ac_config_names, no other name: the list the unknown
 * check uses is the parser's own. */
static void known_names_are_the_ones_read(void **state)
{
    (void)state;
    struct ac_config cfg;
    asked_count = 0;
    line_count = 0;
    ac_config_load(&cfg, recording_lookup, record_line);
    assert_int_equal(asked_count, AC_VAR_READ_COUNT);
    for (size_t v = 0; v < AC_VAR_READ_COUNT; v++) {
        bool found = false;
        for (size_t i = 0; i < asked_count; i++)
            found = found || strcmp(asked[i], ac_config_names[v]) == 0;
        if (!found)
            fail_msg("%s is in ac_config_names but never read", ac_config_names[v]);
    }
    for (size_t v = 0; v < AC_VAR_COUNT; v++)
        assert_int_equal(strncmp(ac_config_names[v], "AUTOCLOSE_", 10), 0);
}

static void nearest_names(void **state)
{
    (void)state;
    static const struct {
        const char *name, *nearest;
    } cases[] = {
        {"AUTOCLOSE_PORT", "AUTOCLOSE_PORTS"},
        {"AUTOCLOSE_GRACE", "AUTOCLOSE_GRACE_MS"},
        {"AUTOCLOSE_grace_ms", "AUTOCLOSE_GRACE_MS"},
        {"AUTOCLOSE_GRACE_S", "AUTOCLOSE_GRACE_MS"},
        {"AUTOCLOSE_DRYRUN", "AUTOCLOSE_DRY_RUN"},
        {"AUTOCLOSE_DISABLED", "AUTOCLOSE_DISABLE"},
        {"AUTOCLOSE_LOGLEVEL", "AUTOCLOSE_LOG"},
        {"AUTOCLOSE_LOG_FILEX", "AUTOCLOSE_LOG_FILE"},
        {"AUTOCLOSE_LOGFILE", "AUTOCLOSE_LOG_FILE"},
        {"AUTOCLOSE_SWEEP", "AUTOCLOSE_SWEEP_MS"},
        {"AUTOCLOSE_TIMEOUT", "AUTOCLOSE_USER_TIMEOUT_MS"},
        {"AUTOCLOSE_KEEP_ALIVE", "AUTOCLOSE_KEEPALIVE"},
        {"AUTOCLOSE_XYZZY", NULL},
        {"AUTOCLOSE_", NULL},
        /* The tools' own variables are known, never suggested. */
        {"AUTOCLOSE_LIBRARY", NULL},
        {"NOT_AUTOCLOSE_PORT", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = ac_config_nearest(cases[i].name, strlen(cases[i].name));
        if ((got == NULL) != (cases[i].nearest == NULL) ||
            (got != NULL && strcmp(got, cases[i].nearest) != 0))
            fail_msg("%s: nearest %s, expected %s", cases[i].name, got ? got : "none",
                     cases[i].nearest ? cases[i].nearest : "none");
    }
}

static void unknown_variables_each_named_once(void **state)
{
    (void)state;
    char *env[] = {
        "PATH=/bin",
        "AUTOCLOSE_GRACE=2000",
        "AUTOCLOSE_GRACE_MS=2000",
        "AUTOCLOSE_PORT=10540",
        "AUTOCLOSE_LIB=/x/libautoclose.so", /* make test's and make demo's own */
        "AUTOCLOSE_LIB32=/x/i386/libautoclose.so",
        "AUTOCLOSE_LIBMUSL=/x/musl/libautoclose.so",
        "AUTOCLOSED_OPTS=--ports 10540", /* the daemon's, not AUTOCLOSE_* */
        "AUTOCLOSE_XYZZY",               /* no '=' at all */
        NULL,
    };
    line_count = 0;
    ac_config_report_unknown(env, record_line);
    assert_int_equal(line_count, 3);
    assert_string_equal(lines[0],
                        "unknown variable AUTOCLOSE_GRACE (did you mean AUTOCLOSE_GRACE_MS?); "
                        "ignored");
    assert_string_equal(lines[1],
                        "unknown variable AUTOCLOSE_PORT (did you mean AUTOCLOSE_PORTS?); ignored");
    assert_string_equal(lines[2], "unknown variable AUTOCLOSE_XYZZY; ignored");

    line_count = 0;
    ac_config_report_unknown((char *[]){"HOME=/root", NULL}, record_line);
    ac_config_report_unknown(NULL, record_line);
    assert_int_equal(line_count, 0);
}

/* A name cannot forge a line, and a crowd of them gets a bounded number of lines. */
static void unknown_variables_hostile(void **state)
{
    (void)state;
    char *forged[] = {"AUTOCLOSE_X\n2026-01-01T00:00:00.000Z libautoclose[1]: shutdown fd=3=1",
                      NULL};
    line_count = 0;
    ac_config_report_unknown(forged, record_line);
    assert_int_equal(line_count, 1);
    assert_null(strchr(lines[0], '\n'));
    assert_non_null(strstr(lines[0], "unknown variable 'AUTOCLOSE_X?2026"));

    static char names[30][32];
    char *crowd[31];
    for (int i = 0; i < 30; i++) {
        snprintf(names[i], sizeof names[i], "AUTOCLOSE_UNKNOWN%d=1", i);
        crowd[i] = names[i];
    }
    crowd[30] = NULL;
    line_count = 0;
    ac_config_report_unknown(crowd, record_line);
    assert_int_equal(line_count, 9);
    assert_string_equal(lines[8], "22 more unknown AUTOCLOSE_* variables; ignored");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(grace_valid_values),
        cmocka_unit_test(grace_unset_is_default),
        cmocka_unit_test(grace_bad_values),
        cmocka_unit_test(grace_around_the_maximum),
        cmocka_unit_test(sweep_valid_values),
        cmocka_unit_test(sweep_bad_values),
        cmocka_unit_test(mode_valid_values),
        cmocka_unit_test(mode_bad_values),
        cmocka_unit_test(log_level_valid_values),
        cmocka_unit_test(log_level_bad_values),
        cmocka_unit_test(flag_valid_values),
        cmocka_unit_test(flag_garbage_is_on),
        cmocka_unit_test(ports_single),
        cmocka_unit_test(ports_list_and_ranges),
        cmocka_unit_test(ports_blanks_around_elements),
        cmocka_unit_test(ports_unset_means_all),
        cmocka_unit_test(ports_all_bad),
        cmocka_unit_test(ports_good_survive_bad),
        cmocka_unit_test(hostile_values_are_escaped),
        cmocka_unit_test(long_value_is_shortened),
        cmocka_unit_test(complaint_respects_buffer),
        cmocka_unit_test(load_nothing_set),
        cmocka_unit_test(load_all_good),
        cmocka_unit_test(load_each_bad_variable_once),
        cmocka_unit_test(load_disable_overrides_everything),
        cmocka_unit_test(load_one_bad_among_good),
        cmocka_unit_test(load_empty_is_unset),
        cmocka_unit_test(load_log_file_length),
        cmocka_unit_test(keepalive_valid_values),
        cmocka_unit_test(keepalive_unset_is_off),
        cmocka_unit_test(keepalive_bad_values),
        cmocka_unit_test(keepalive_long_part),
        cmocka_unit_test(user_timeout_valid_values),
        cmocka_unit_test(user_timeout_bad_values),
        cmocka_unit_test(fin_wait2_valid_values),
        cmocka_unit_test(fin_wait2_bad_values),
        cmocka_unit_test(nofile_values),
        cmocka_unit_test(hygiene_hostile_values_are_escaped),
        cmocka_unit_test(expand_path_substitutions),
        cmocka_unit_test(expand_path_too_long),
        cmocka_unit_test(load_hygiene_unset),
        cmocka_unit_test(load_hygiene_all_good),
        cmocka_unit_test(load_reuseaddr_switch),
        cmocka_unit_test(load_reuseaddr_garbage_is_off),
        cmocka_unit_test(load_hygiene_each_bad_once),
        cmocka_unit_test(load_hygiene_empty_is_unset),
        cmocka_unit_test(load_stats_file_length),
        cmocka_unit_test(load_secure_execution_ignores_files_and_limits),
        cmocka_unit_test(known_names_are_the_ones_read),
        cmocka_unit_test(nearest_names),
        cmocka_unit_test(unknown_variables_each_named_once),
        cmocka_unit_test(unknown_variables_hostile),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
