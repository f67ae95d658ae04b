/*
 * autoclose-settings: what libautoclose would make of this environment's AUTOCLOSE_* variables,
 * for `autoclose --check`. The library's own parser (shim/core/config.c) reads them, so the
 * answer cannot drift from what the library does; each line the library would write about them
 * at start (a bad value, an unknown name) comes first, then every setting as it would be used.
 * Reads the environment, writes stdout, nothing else.
 */
#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *env(const char *name)
{
    return getenv(name);
}

static int said;
static bool refused[AC_VAR_COUNT]; /* a line above is about this variable's value */
static void say(const char *line)
{
    printf("  libautoclose: %s\n", line);
    said++;
    for (size_t v = 0; v < AC_VAR_COUNT; v++) {
        size_t n = strlen(ac_config_names[v]);
        if (strncmp(line, ac_config_names[v], n) == 0 && line[n] == '=')
            refused[v] = true;
    }
}

static bool is_set(enum ac_var v)
{
    const char *value = getenv(ac_config_names[v]);
    return value != NULL && *value != '\0';
}

/* One setting: its name, what is used, and whether that is the default. */
static void show(enum ac_var v, const char *value)
{
    printf("  %-26s %s%s\n", ac_config_names[v], value,
           refused[v]  ? " (see the line about it above)"
           : is_set(v) ? ""
                       : " (default)");
}

/* A number; 0 shown as `zero` when it means something else than a count. */
static void show_uint(enum ac_var v, uint64_t value, const char *zero)
{
    char text[64];
    snprintf(text, sizeof text, "%llu", (unsigned long long)value);
    show(v, value == 0 && zero != NULL ? zero : text);
}

/* The port set as the list AUTOCLOSE_PORTS takes, ranges merged. */
static void show_ports(const struct ac_portset *ports)
{
    if (ports->all) {
        show(AC_VAR_PORTS, "all ports");
        return;
    }
    static char text[65536 * 12];
    struct ac_text t;
    ac_text_init(&t, text, sizeof text);
    for (unsigned p = 1; p < 65536; p++) {
        if (!ac_portset_has(ports, p))
            continue;
        unsigned last = p;
        while (last + 1 < 65536 && ac_portset_has(ports, last + 1))
            last++;
        if (t.len > 0)
            ac_text_str(&t, ",");
        ac_text_uint(&t, p);
        if (last > p) {
            ac_text_str(&t, "-");
            ac_text_uint(&t, last);
        }
        p = last;
    }
    show(AC_VAR_PORTS, t.len > 0 ? text : "none (no connection is handled)");
}

int main(int argc, char **argv)
{
    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "usage: autoclose-settings (it reads AUTOCLOSE_* from the environment)\n");
        return 2;
    }
    static struct ac_config cfg;
    printf("lines libautoclose writes at start about these variables:\n");
    ac_config_load(&cfg, env, say);
    ac_config_report_unknown(environ, say);
    if (said == 0)
        printf("  (none)\n");
    printf("settings, as libautoclose reads them at start:\n");
    if (cfg.disabled)
        printf("  (AUTOCLOSE_DISABLE is on: the library does nothing at all)\n");
    show(AC_VAR_DISABLE, cfg.disabled ? "1" : "0");
    show(AC_VAR_DRY_RUN, cfg.dry_run ? "1 (it logs what it would do, and does nothing)" : "0");
    show_uint(AC_VAR_GRACE_MS, cfg.grace_ms, NULL);
    show(AC_VAR_MODE, cfg.mode == AC_MODE_CLOSE ? "close" : "shutdown");
    show_ports(&cfg.ports);
    show_uint(AC_VAR_SWEEP_MS, cfg.sweep_ms, "0, no periodic sweep");
    static const char *const levels[] = {"off", "error", "info", "debug"};
    show(AC_VAR_LOG, levels[cfg.log_level]);
    show(AC_VAR_LOG_FILE, cfg.log_file[0] ? cfg.log_file : "none: stderr, or syslog");
    show(AC_VAR_STATS_FILE, cfg.stats_file[0] ? cfg.stats_file : "none");
    char text[64];
    if (cfg.nofile == UINT64_MAX)
        snprintf(text, sizeof text, "max");
    else if (cfg.nofile)
        snprintf(text, sizeof text, "%llu", (unsigned long long)cfg.nofile);
    else
        snprintf(text, sizeof text, "not set, the limit stays");
    show(AC_VAR_NOFILE, text);
    if (cfg.keepalive.on)
        snprintf(text, sizeof text, "%d,%d,%d", cfg.keepalive.idle_s, cfg.keepalive.interval_s,
                 cfg.keepalive.count);
    else
        snprintf(text, sizeof text, "off");
    show(AC_VAR_KEEPALIVE, text);
    show_uint(AC_VAR_USER_TIMEOUT_MS, cfg.user_timeout_ms, "not set");
    show_uint(AC_VAR_FIN_WAIT2_S, (uint64_t)cfg.fin_wait2_s,
              "not set, the system's tcp_fin_timeout");
    show(AC_VAR_REUSEADDR, cfg.reuseaddr ? "1" : "0");
    return 0;
}
