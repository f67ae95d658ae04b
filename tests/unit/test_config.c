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
        {"AUTOCLOSE_DISABLE", "yes"},
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
    assert_true(cfg.disabled);
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
        {"AUTOCLOSE_DISABLE", "maybe"}, {"AUTOCLOSE_DRY_RUN", "sure"},   {"AUTOCLOSE_LOG", "loud"},
        {"AUTOCLOSE_GRACE_MS", "5s"},   {"AUTOCLOSE_SWEEP_MS", "often"}, {"AUTOCLOSE_MODE", "kill"},
        {"AUTOCLOSE_PORTS", "abc"},
    };
    static const char *const vars[] = {
        "AUTOCLOSE_DISABLE",  "AUTOCLOSE_DRY_RUN", "AUTOCLOSE_LOG",   "AUTOCLOSE_GRACE_MS",
        "AUTOCLOSE_SWEEP_MS", "AUTOCLOSE_MODE",    "AUTOCLOSE_PORTS",
    };
    struct ac_config cfg;
    LOAD(&cfg, table);
    assert_int_equal(line_count, 7);
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        assert_int_equal(lines_about(vars[i]), 1);
    assert_true(cfg.disabled);
    assert_true(cfg.dry_run);
    assert_int_equal(cfg.log_level, AC_LOG_INFO);
    assert_int_equal(cfg.grace_ms, 5000);
    assert_int_equal(cfg.sweep_ms, 1000);
    assert_int_equal(cfg.mode, AC_MODE_SHUTDOWN);
    assert_false(cfg.ports.all);
    assert_int_equal(ports_in(&cfg.ports), 0);
    assert_string_equal(cfg.log_file, "");
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
        cmocka_unit_test(load_one_bad_among_good),
        cmocka_unit_test(load_empty_is_unset),
        cmocka_unit_test(load_log_file_length),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
