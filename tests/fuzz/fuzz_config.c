/*
 * libFuzzer target for the configuration readers (shim/core/config.c): the library reads them once,
 * inside whatever program it was preloaded into, so no value may crash it, overrun a buffer or
 * leave a field outside its range.
 *
 * The input is text, one "NAME=VALUE" line per variable of the environment ac_config_load reads.
 * Each line, and the value part of each, is also handed to every ac_parse_* reader and to
 * ac_expand_path, with a complaint buffer of 1 to 256 bytes (from the input's length). Each call
 * is checked: the result is in range (the default when the value was refused), the complaint is
 * printable, ends within its buffer and names the variable, and not one byte past the buffer is
 * written.
 */
#include "autoclose.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CANARY    0xA5
#define MAX_VARS  32
#define WHY_SPARE 16

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "check failed: %s (line %d)\n", #cond, __LINE__);                      \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static char names[MAX_VARS][64];
static char *values[MAX_VARS];
static size_t var_count;

static const char *lookup(const char *name)
{
    for (size_t i = 0; i < var_count; i++)
        if (strcmp(names[i], name) == 0)
            return values[i];
    return NULL;
}

/* A complaint line is logged as it is: printable, one line, at most the 256-byte buffer. */
static void complain(const char *line)
{
    size_t n = strnlen(line, 256);
    CHECK(n < 256);
    CHECK(strncmp(line, "AUTOCLOSE_", 10) == 0);
    for (size_t i = 0; i < n; i++)
        CHECK(line[i] >= 0x20 && line[i] < 0x7f);
}

/* The complaint buffer: `len` usable bytes, then canaries that must survive. */
struct why {
    char buf[256 + WHY_SPARE];
    size_t len;
};

static void why_init(struct why *w, size_t len)
{
    memset(w->buf, CANARY, sizeof w->buf);
    w->len = len;
}

static void why_check(const struct why *w, bool ok, const char *var)
{
    for (size_t i = w->len; i < sizeof w->buf; i++)
        CHECK((unsigned char)w->buf[i] == CANARY);
    if (ok)
        return;
    size_t n = strnlen(w->buf, w->len);
    CHECK(n < w->len);
    for (size_t i = 0; i < n; i++)
        CHECK(w->buf[i] >= 0x20 && w->buf[i] < 0x7f);
    /* A buffer long enough for the name must show it: the operator needs to know which. */
    if (w->len > strlen(var) + 1)
        CHECK(strncmp(w->buf, var, strlen(var)) == 0);
}

static void check_config(const struct ac_config *c)
{
    CHECK(c->grace_ms <= AC_MAX_GRACE_MS);
    CHECK(c->sweep_ms <= AC_MAX_GRACE_MS);
    CHECK(c->mode == AC_MODE_SHUTDOWN || c->mode == AC_MODE_CLOSE);
    CHECK(c->log_level >= AC_LOG_OFF && c->log_level <= AC_LOG_DEBUG);
    CHECK(memchr(c->log_file, '\0', sizeof c->log_file) != NULL);
    CHECK(memchr(c->stats_file, '\0', sizeof c->stats_file) != NULL);
    if (c->keepalive.on) {
        CHECK(c->keepalive.idle_s >= 1 && c->keepalive.idle_s <= 32767);
        CHECK(c->keepalive.interval_s >= 1 && c->keepalive.interval_s <= 32767);
        CHECK(c->keepalive.count >= 1 && c->keepalive.count <= 127);
    }
    CHECK(c->user_timeout_ms <= 2147483647u);
    CHECK(c->fin_wait2_s >= 0 && c->fin_wait2_s <= 120);
    if (c->ports.all) {
        for (size_t i = 0; i < sizeof c->ports.bits / sizeof c->ports.bits[0]; i++)
            CHECK(c->ports.bits[i] == 0);
    } else {
        CHECK((c->ports.bits[0] & 1) == 0); /* port 0 is never a valid element */
    }
}

/* Splits `text` into lines in place; lines holding '=' make the environment. */
static size_t split_lines(char *text, char **lines, size_t max)
{
    size_t n = 0;
    var_count = 0;
    for (char *p = text; *p && n < max;) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        lines[n++] = p;
        char *eq = strchr(p, '=');
        if (eq && (size_t)(eq - p) < sizeof names[0] && var_count < MAX_VARS) {
            memcpy(names[var_count], p, (size_t)(eq - p));
            names[var_count][eq - p] = '\0';
            values[var_count++] = eq + 1;
        }
        if (!nl)
            break;
        p = nl + 1;
    }
    return n;
}

static void each_reader(const char *v, size_t why_len)
{
    struct why w;
    bool ok;

    uint32_t ms;
    why_init(&w, why_len);
    ok = ac_parse_grace_ms(v, &ms, w.buf, w.len);
    CHECK(ms <= AC_MAX_GRACE_MS && (ok || ms == AC_DEFAULT_GRACE_MS));
    why_check(&w, ok, "AUTOCLOSE_GRACE_MS");

    why_init(&w, why_len);
    ok = ac_parse_sweep_ms(v, &ms, w.buf, w.len);
    CHECK(ms <= AC_MAX_GRACE_MS && (ok || ms == AC_DEFAULT_SWEEP_MS));
    why_check(&w, ok, "AUTOCLOSE_SWEEP_MS");

    enum ac_mode mode;
    why_init(&w, why_len);
    ok = ac_parse_mode(v, &mode, w.buf, w.len);
    CHECK(mode == AC_MODE_SHUTDOWN || (ok && mode == AC_MODE_CLOSE));
    why_check(&w, ok, "AUTOCLOSE_MODE");

    enum ac_log_level level;
    why_init(&w, why_len);
    ok = ac_parse_log_level(v, &level, w.buf, w.len);
    CHECK(level <= AC_LOG_DEBUG && (ok || level == AC_LOG_INFO));
    why_check(&w, ok, "AUTOCLOSE_LOG");

    bool flag;
    why_init(&w, why_len);
    ok = ac_parse_flag("AUTOCLOSE_DRY_RUN", v, &flag, w.buf, w.len);
    CHECK(ok || flag); /* unrecognised: held back */
    why_check(&w, ok, "AUTOCLOSE_DRY_RUN");

    static struct ac_portset ports;
    why_init(&w, why_len);
    ok = ac_parse_ports(v, &ports, w.buf, w.len);
    CHECK(!ports.all || ok);
    why_check(&w, ok, "AUTOCLOSE_PORTS");

    struct ac_keepalive ka;
    why_init(&w, why_len);
    ok = ac_parse_keepalive(v, &ka, w.buf, w.len);
    CHECK(ok || !ka.on);
    CHECK(!ka.on || (ka.idle_s >= 1 && ka.idle_s <= 32767 && ka.interval_s >= 1 &&
                     ka.interval_s <= 32767 && ka.count >= 1 && ka.count <= 127));
    why_check(&w, ok, "AUTOCLOSE_KEEPALIVE");

    uint32_t ut;
    why_init(&w, why_len);
    ok = ac_parse_user_timeout_ms(v, &ut, w.buf, w.len);
    CHECK(ut <= 2147483647u && (ok || ut == 0));
    why_check(&w, ok, "AUTOCLOSE_USER_TIMEOUT_MS");

    int fw2;
    why_init(&w, why_len);
    ok = ac_parse_fin_wait2_s(v, &fw2, w.buf, w.len);
    CHECK(fw2 >= 0 && fw2 <= 120 && (ok || fw2 == 0));
    why_check(&w, ok, "AUTOCLOSE_FIN_WAIT2_S");

    /* The expansion ends inside its buffer, whatever the pattern, and is reported as fitting
     * exactly when it is the whole of what a roomy buffer gets. */
    if (v != NULL) {
        struct why out;
        static char full[1 << 16];
        bool roomy = ac_expand_path(v, 4194304, full, sizeof full);
        why_init(&out, why_len);
        bool fits = ac_expand_path(v, 4194304, out.buf, out.len);
        for (size_t i = out.len; i < sizeof out.buf; i++)
            CHECK((unsigned char)out.buf[i] == CANARY);
        CHECK(memchr(out.buf, '\0', out.len) != NULL);
        if (roomy) {
            CHECK(fits == (strlen(full) < out.len));
            CHECK(!fits || strcmp(out.buf, full) == 0);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t why_len = 1 + size % 256; /* 1..256 bytes, as small as one */
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    char *lines[MAX_VARS];
    size_t n = split_lines(text, lines, MAX_VARS);
    static struct ac_config cfg;
    ac_config_load(&cfg, lookup, complain);
    check_config(&cfg);

    each_reader(NULL, why_len);
    for (size_t i = 0; i < n && i < 8; i++)
        each_reader(lines[i], why_len);
    for (size_t i = 0; i < var_count && i < 8; i++)
        each_reader(values[i], why_len);
    free(text);
    return 0;
}
