/*
 * AUTOCLOSE_* parsing. Each reader is a pure function so the unit tests can feed it every kind
 * of bad value; a bad value yields the safe default and one line that names the variable, the
 * value and what is used instead; a name nobody reads gets one line with the nearest known name.
 * Nothing here allocates: it runs from the library constructor.
 */
#include "core.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <strings.h>

struct ac_config ac_cfg = {
    .mode = AC_MODE_SHUTDOWN,
    .log_level = AC_LOG_INFO,
    .grace_ms = AC_DEFAULT_GRACE_MS,
    .sweep_ms = AC_DEFAULT_SWEEP_MS,
    .ports = {.all = true},
};

/* The one list of names: the loader below reads each variable by its place here, and any other
 * AUTOCLOSE_* variable in the environment is reported as unknown (ac_config_report_unknown). */
const char *const ac_config_names[AC_VAR_COUNT] = {
    [AC_VAR_DISABLE] = "AUTOCLOSE_DISABLE",
    [AC_VAR_DRY_RUN] = "AUTOCLOSE_DRY_RUN",
    [AC_VAR_LOG] = "AUTOCLOSE_LOG",
    [AC_VAR_GRACE_MS] = "AUTOCLOSE_GRACE_MS",
    [AC_VAR_SWEEP_MS] = "AUTOCLOSE_SWEEP_MS",
    [AC_VAR_MODE] = "AUTOCLOSE_MODE",
    [AC_VAR_PORTS] = "AUTOCLOSE_PORTS",
    [AC_VAR_NOFILE] = "AUTOCLOSE_NOFILE",
    [AC_VAR_KEEPALIVE] = "AUTOCLOSE_KEEPALIVE",
    [AC_VAR_USER_TIMEOUT_MS] = "AUTOCLOSE_USER_TIMEOUT_MS",
    [AC_VAR_FIN_WAIT2_S] = "AUTOCLOSE_FIN_WAIT2_S",
    [AC_VAR_REUSEADDR] = "AUTOCLOSE_REUSEADDR",
    [AC_VAR_STATS_FILE] = "AUTOCLOSE_STATS_FILE",
    [AC_VAR_LOG_FILE] = "AUTOCLOSE_LOG_FILE",
    [AC_VAR_TOOLS_LIB] = "AUTOCLOSE_LIB",
    [AC_VAR_TOOLS_LIB32] = "AUTOCLOSE_LIB32",
    [AC_VAR_TOOLS_LIBMUSL] = "AUTOCLOSE_LIBMUSL",
};

/* Builds "AUTOCLOSE_X='value' <problem>; <fallback>" in `why`. */
static void complain(char *why, size_t why_len, const char *var, const char *value,
                     const char *problem, const char *fallback)
{
    struct ac_text t;
    ac_text_init(&t, why, why_len);
    ac_text_str(&t, var);
    ac_text_str(&t, "=");
    ac_text_quoted(&t, value, 64);
    ac_text_str(&t, " ");
    ac_text_str(&t, problem);
    ac_text_str(&t, "; ");
    ac_text_str(&t, fallback);
}

static const char *skip_space(const char *s)
{
    while (*s && isspace((unsigned char)*s))
        s++;
    return s;
}

/* `value` without blanks around it, in `buf`: "close " is as clear as "close". */
static const char *trimmed(const char *value, char *buf, size_t cap)
{
    value = skip_space(value);
    size_t n = strlen(value);
    while (n > 0 && isspace((unsigned char)value[n - 1]))
        n--;
    if (n >= cap)
        n = cap - 1; /* too long to be any keyword: still compared, still refused */
    memcpy(buf, value, n);
    buf[n] = '\0';
    return buf;
}

/* Parses a whole decimal number in [0, max] with optional surrounding blanks. No sign, no
 * hex, no trailing garbage: "5s" or "0x10" are mistakes worth reporting, not guessing at. */
static bool parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    s = skip_space(s);
    if (!isdigit((unsigned char)*s))
        return false;
    uint64_t v = 0;
    while (isdigit((unsigned char)*s)) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (max - d) / 10)
            return false; /* overflow or above max */
        v = v * 10 + d;
        s++;
    }
    if (*skip_space(s) != '\0')
        return false;
    *out = v;
    return true;
}

static bool parse_ms(const char *var, const char *value, uint32_t fallback, uint32_t *out,
                     char *why, size_t why_len)
{
    *out = fallback;
    if (value == NULL)
        return true;
    uint64_t v;
    if (!parse_uint(value, AC_MAX_GRACE_MS, &v)) {
        char using[32];
        struct ac_text t;
        ac_text_init(&t, using, sizeof using);
        ac_text_str(&t, "using ");
        ac_text_uint(&t, fallback);
        complain(why, why_len, var, value, "is not a whole number of milliseconds (0-86400000)",
                 using);
        return false;
    }
    *out = (uint32_t)v;
    return true;
}

bool ac_parse_grace_ms(const char *value, uint32_t *out, char *why, size_t why_len)
{
    return parse_ms(ac_config_names[AC_VAR_GRACE_MS], value, AC_DEFAULT_GRACE_MS, out, why,
                    why_len);
}

bool ac_parse_sweep_ms(const char *value, uint32_t *out, char *why, size_t why_len)
{
    return parse_ms(ac_config_names[AC_VAR_SWEEP_MS], value, AC_DEFAULT_SWEEP_MS, out, why,
                    why_len);
}

bool ac_parse_mode(const char *value, enum ac_mode *out, char *why, size_t why_len)
{
    *out = AC_MODE_SHUTDOWN;
    if (value == NULL)
        return true;
    char buf[16];
    const char *v = trimmed(value, buf, sizeof buf);
    if (strcasecmp(v, "shutdown") == 0)
        return true;
    if (strcasecmp(v, "close") == 0) {
        *out = AC_MODE_CLOSE;
        return true;
    }
    complain(why, why_len, ac_config_names[AC_VAR_MODE], value, "is not 'shutdown' or 'close'",
             "using shutdown");
    return false;
}

bool ac_parse_log_level(const char *value, enum ac_log_level *out, char *why, size_t why_len)
{
    static const char *const names[] = {"off", "error", "info", "debug"};
    *out = AC_LOG_INFO;
    if (value == NULL)
        return true;
    char buf[16];
    const char *v = trimmed(value, buf, sizeof buf);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcasecmp(v, names[i]) == 0) {
            *out = (enum ac_log_level)i;
            return true;
        }
    }
    complain(why, why_len, ac_config_names[AC_VAR_LOG], value, "is not off, error, info or debug",
             "using info");
    return false;
}

/* A yes/no switch; an unrecognised value is reported and taken as `unknown_as`. */
static bool parse_switch(const char *var, const char *value, bool unknown_as, bool *out, char *why,
                         size_t why_len)
{
    static const char *const yes[] = {"1", "yes", "true", "on"};
    static const char *const no[] = {"0", "no", "false", "off", ""};
    *out = false;
    if (value == NULL)
        return true;
    char buf[16];
    const char *v = trimmed(value, buf, sizeof buf);
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = true;
            return true;
        }
    }
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        if (strcasecmp(v, no[i]) == 0)
            return true;
    }
    *out = unknown_as;
    complain(why, why_len, var, value, "is not 1/0, yes/no, true/false or on/off",
             unknown_as ? "taking it as 1" : "taking it as 0");
    return false;
}

/* The switches that make the shim hold back (AUTOCLOSE_DISABLE, AUTOCLOSE_DRY_RUN): an
 * unrecognised value is taken as "on", since whoever set it wanted less action. */
bool ac_parse_flag(const char *var, const char *value, bool *out, char *why, size_t why_len)
{
    return parse_switch(var, value, true, out, why, why_len);
}

void ac_portset_add_range(struct ac_portset *set, unsigned lo, unsigned hi)
{
    for (unsigned p = lo; p <= hi && p < 65536; p++)
        set->bits[p / 64] |= (uint64_t)1 << (p % 64);
}

/* Parses one "N" or "N-M" element between `s` and `end`. */
static bool parse_port_element(const char *s, const char *end, unsigned *lo, unsigned *hi)
{
    char buf[32];
    size_t n = (size_t)(end - s);
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *dash = strchr(buf, '-');
    uint64_t a, b;
    if (dash) {
        *dash = '\0';
        if (!parse_uint(buf, 65535, &a) || !parse_uint(dash + 1, 65535, &b))
            return false;
    } else {
        if (!parse_uint(buf, 65535, &a))
            return false;
        b = a;
    }
    if (a == 0 || a > b)
        return false;
    *lo = (unsigned)a;
    *hi = (unsigned)b;
    return true;
}

/* "10540,10541,12000-12010". A bad element is reported and skipped; the good ones still
 * count, since they are the operator's evident intent. A list with no good element at all
 * handles no connection: acting on every port would be the opposite of what was asked. */
bool ac_parse_ports(const char *value, struct ac_portset *out, char *why, size_t why_len)
{
    memset(out, 0, sizeof *out);
    if (value == NULL) {
        out->all = true;
        return true;
    }
    bool any_good = false;
    const char *bad = NULL;
    size_t bad_len = 0;
    const char *s = value;
    for (;;) {
        const char *end = strchr(s, ',');
        if (end == NULL)
            end = s + strlen(s);
        unsigned lo, hi;
        const char *a = skip_space(s);
        const char *b = end;
        while (b > a && isspace((unsigned char)b[-1]))
            b--;
        if (parse_port_element(a, b, &lo, &hi)) {
            ac_portset_add_range(out, lo, hi);
            any_good = true;
        } else if (bad == NULL) {
            bad = a;
            bad_len = (size_t)(b - a);
        }
        if (*end == '\0')
            break;
        s = end + 1;
    }
    if (bad == NULL)
        return true;
    char element[40];
    size_t n = bad_len < sizeof element - 1 ? bad_len : sizeof element - 1;
    memcpy(element, bad, n);
    element[n] = '\0';
    char problem[96];
    struct ac_text t;
    ac_text_init(&t, problem, sizeof problem);
    ac_text_str(&t, "has ");
    ac_text_quoted(&t, element, 32);
    ac_text_str(&t, ", not a port or range within 1-65535");
    complain(why, why_len, ac_config_names[AC_VAR_PORTS], value, problem,
             any_good ? "ignoring that element" : "no connection will be handled");
    return false;
}

/* "IDLE,INTVL,CNT": seconds before the first probe, seconds between probes, probes before the
 * peer counts as gone. Limits are the kernel's (TCP_KEEPIDLE/KEEPINTVL up to 32767 s,
 * TCP_KEEPCNT up to 127). A bad value leaves keepalive as the program set it. */
bool ac_parse_keepalive(const char *value, struct ac_keepalive *out, char *why, size_t why_len)
{
    memset(out, 0, sizeof *out);
    if (value == NULL)
        return true;
    const char *limits_text = "is not IDLE,INTVL,CNT (seconds 1-32767, seconds 1-32767, "
                              "probes 1-127)";
    static const uint64_t max[3] = {32767, 32767, 127};
    uint64_t v[3];
    const char *s = value;
    for (int i = 0; i < 3; i++) {
        const char *end = strchr(s, ',');
        if ((i < 2) != (end != NULL))
            goto bad;
        char part[24];
        size_t n = end ? (size_t)(end - s) : strlen(s);
        if (n >= sizeof part)
            goto bad;
        memcpy(part, s, n);
        part[n] = '\0';
        if (!parse_uint(part, max[i], &v[i]) || v[i] == 0)
            goto bad;
        s = end ? end + 1 : s + n;
    }
    *out = (struct ac_keepalive){
        .on = true, .idle_s = (int)v[0], .interval_s = (int)v[1], .count = (int)v[2]};
    return true;
bad:
    complain(why, why_len, ac_config_names[AC_VAR_KEEPALIVE], value, limits_text,
             "leaving keepalive as the program sets it");
    return false;
}

bool ac_parse_user_timeout_ms(const char *value, uint32_t *out, char *why, size_t why_len)
{
    *out = 0;
    uint64_t v;
    if (value == NULL)
        return true;
    if (!parse_uint(value, 2147483647u, &v)) {
        complain(why, why_len, ac_config_names[AC_VAR_USER_TIMEOUT_MS], value,
                 "is not a whole number of milliseconds (0-2147483647)", "not setting it");
        return false;
    }
    *out = (uint32_t)v;
    return true;
}

/* The kernel caps TCP_LINGER2 at 120 s (TCP_FIN_TIMEOUT_MAX); asking for more is a mistake
 * worth reporting rather than silently shortening. */
bool ac_parse_fin_wait2_s(const char *value, int *out, char *why, size_t why_len)
{
    *out = 0;
    uint64_t v;
    if (value == NULL)
        return true;
    if (!parse_uint(value, 120, &v) || v == 0) {
        complain(why, why_len, ac_config_names[AC_VAR_FIN_WAIT2_S], value,
                 "is not a whole number of seconds (1-120)", "leaving the system default");
        return false;
    }
    *out = (int)v;
    return true;
}

bool ac_expand_path(const char *pattern, long pid, char *out, size_t out_len)
{
    struct ac_text t;
    ac_text_init(&t, out, out_len);
    for (const char *p = pattern; *p; p++) {
        if (p[0] == '%' && p[1] == 'p') {
            ac_text_int(&t, pid);
            p++;
        } else if (p[0] == '%' && p[1] == '%') {
            ac_text_str(&t, "%");
            p++;
        } else {
            char c[2] = {*p, '\0'};
            ac_text_str(&t, c);
        }
    }
    return !t.truncated;
}

/* An empty variable counts as unset: service units clear a setting with `Environment=X=`. */
static const char *(*env_lookup)(const char *name);
static bool ignoring_untrusted; /* secure execution: see untrusted_in_secure below */
static bool is_untrusted_in_secure(enum ac_var v);
static const char *var(enum ac_var v)
{
    if (ignoring_untrusted && is_untrusted_in_secure(v))
        return NULL;
    const char *value = env_lookup(ac_config_names[v]);
    return value != NULL && *value != '\0' ? value : NULL;
}

bool ac_parse_nofile(const char *value, uint64_t *out, char *why, size_t why_len)
{
    *out = 0;
    if (value == NULL)
        return true;
    if (strcmp(value, "max") == 0) {
        *out = UINT64_MAX;
        return true;
    }
    uint64_t v = 0;
    const char *p = value;
    while (*p >= '0' && *p <= '9' && v < (1ull << 40))
        v = v * 10 + (uint64_t)(*p++ - '0');
    if (*p == '\0' && p != value && v >= 1 && v < (1ull << 40)) {
        *out = v;
        return true;
    }
    complain(why, why_len, ac_config_names[AC_VAR_NOFILE], value,
             "is not 'max' or a number of descriptors", "leaving the descriptor limit as it is");
    return false;
}

/* The variables that name a file or raise a limit: in a secure-execution process (set-user-ID,
 * set-group-ID, file capabilities) whoever runs the program sets the environment, and must not
 * make it write a file of its owner's or keep more descriptors. */
static const enum ac_var untrusted_in_secure[] = {AC_VAR_LOG_FILE, AC_VAR_STATS_FILE,
                                                  AC_VAR_NOFILE};

static bool is_untrusted_in_secure(enum ac_var v)
{
    for (size_t i = 0; i < sizeof untrusted_in_secure / sizeof untrusted_in_secure[0]; i++)
        if (v == untrusted_in_secure[i])
            return true;
    return false;
}

/* In secure execution: says once which of them were set and are ignored. */
static void refuse_untrusted(void (*complain_line)(const char *line))
{
    char line[256];
    struct ac_text t;
    ac_text_init(&t, line, sizeof line);
    ac_text_str(&t, "secure execution (set-user-ID, set-group-ID or file capabilities): ignoring");
    size_t n = 0;
    for (size_t i = 0; i < sizeof untrusted_in_secure / sizeof untrusted_in_secure[0]; i++) {
        if (var(untrusted_in_secure[i]) == NULL)
            continue;
        ac_text_str(&t, n++ ? ", " : " ");
        ac_text_str(&t, ac_config_names[untrusted_in_secure[i]]);
    }
    ac_text_str(&t, ", which name a file or raise a limit");
    if (n > 0)
        complain_line(line);
}

void ac_config_load(struct ac_config *cfg, const char *(*lookup_fn)(const char *name),
                    void (*complain_line)(const char *line))
{
    ac_config_load_for(cfg, lookup_fn, complain_line, false);
}

void ac_config_load_for(struct ac_config *cfg, const char *(*lookup_fn)(const char *name),
                        void (*complain_line)(const char *line), bool secure_execution)
{
    char why[256];
    struct ac_config c = {0};
    env_lookup = lookup_fn;
    ignoring_untrusted = false;
    if (secure_execution) {
        refuse_untrusted(complain_line);
        ignoring_untrusted = true; /* from here they read as unset */
    }

    if (!ac_parse_flag(ac_config_names[AC_VAR_DISABLE], var(AC_VAR_DISABLE), &c.disabled, why,
                       sizeof why))
        complain_line(why);
    if (!ac_parse_flag(ac_config_names[AC_VAR_DRY_RUN], var(AC_VAR_DRY_RUN), &c.dry_run, why,
                       sizeof why))
        complain_line(why);
    if (!ac_parse_log_level(var(AC_VAR_LOG), &c.log_level, why, sizeof why))
        complain_line(why);
    if (!ac_parse_grace_ms(var(AC_VAR_GRACE_MS), &c.grace_ms, why, sizeof why))
        complain_line(why);
    if (!ac_parse_sweep_ms(var(AC_VAR_SWEEP_MS), &c.sweep_ms, why, sizeof why))
        complain_line(why);
    if (!ac_parse_mode(var(AC_VAR_MODE), &c.mode, why, sizeof why))
        complain_line(why);
    if (!ac_parse_ports(var(AC_VAR_PORTS), &c.ports, why, sizeof why))
        complain_line(why);
    if (!ac_parse_nofile(var(AC_VAR_NOFILE), &c.nofile, why, sizeof why))
        complain_line(why);

    if (!ac_parse_keepalive(var(AC_VAR_KEEPALIVE), &c.keepalive, why, sizeof why))
        complain_line(why);
    if (!ac_parse_user_timeout_ms(var(AC_VAR_USER_TIMEOUT_MS), &c.user_timeout_ms, why, sizeof why))
        complain_line(why);
    if (!ac_parse_fin_wait2_s(var(AC_VAR_FIN_WAIT2_S), &c.fin_wait2_s, why, sizeof why))
        complain_line(why);
    /* Unlike the other switches, "on" is not the cautious reading here. */
    if (!parse_switch(ac_config_names[AC_VAR_REUSEADDR], var(AC_VAR_REUSEADDR), false, &c.reuseaddr,
                      why, sizeof why))
        complain_line(why);
    const char *stats = var(AC_VAR_STATS_FILE);
    char expanded[sizeof c.stats_file];
    if (stats != NULL) {
        /* The longest pid takes 7 digits: check the expansion now, not in a forked child. */
        if (strlen(stats) < sizeof c.stats_file &&
            ac_expand_path(stats, 9999999, expanded, sizeof expanded)) {
            strcpy(c.stats_file, stats);
        } else {
            complain(why, sizeof why, ac_config_names[AC_VAR_STATS_FILE], stats, "is too long",
                     "writing no stats");
            complain_line(why);
        }
    }

    const char *file = var(AC_VAR_LOG_FILE);
    if (file != NULL) {
        if (strlen(file) >= sizeof c.log_file) {
            complain(why, sizeof why, ac_config_names[AC_VAR_LOG_FILE], file, "is too long",
                     "logging to stderr");
            complain_line(why);
        } else {
            strcpy(c.log_file, file);
        }
    }
    if (c.disabled) {
        /* Inert means inert: no socket option, no stats file, no thread either. */
        bool dry_run = c.dry_run;
        c = (struct ac_config){.disabled = true, .dry_run = dry_run, .ports = {.all = true}};
    }
    *cfg = c;
}

/* ---- AUTOCLOSE_* variables nobody reads ----------------------------------------------------- */

#define PREFIX            "AUTOCLOSE_"
#define PREFIX_LEN        (sizeof PREFIX - 1)
#define NAME_MAX_COMPARED 64 /* longer names are compared by their start only */
#define MAX_UNKNOWN_LINES 8  /* a hostile environment gets a bounded number of lines */

static char upper(char c)
{
    return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

/* Levenshtein distance, case ignored, between a[0..n) and b[0..m) (each at most
 * NAME_MAX_COMPARED): two rows on the stack. */
static unsigned distance(const char *a, size_t n, const char *b, size_t m)
{
    unsigned row[NAME_MAX_COMPARED + 1], next[NAME_MAX_COMPARED + 1];
    for (size_t j = 0; j <= m; j++)
        row[j] = (unsigned)j;
    for (size_t i = 1; i <= n; i++) {
        next[0] = (unsigned)i;
        for (size_t j = 1; j <= m; j++) {
            unsigned cost = upper(a[i - 1]) != upper(b[j - 1]);
            unsigned best = row[j - 1] + cost;
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (next[j - 1] + 1 < best)
                best = next[j - 1] + 1;
            next[j] = best;
        }
        memcpy(row, next, (m + 1) * sizeof row[0]);
    }
    return row[m];
}

/* Whether needle[0..n) occurs in hay[0..m), case ignored. */
static bool contains(const char *hay, size_t m, const char *needle, size_t n)
{
    for (size_t i = 0; n <= m && i <= m - n; i++) {
        size_t k = 0;
        while (k < n && upper(hay[i + k]) == upper(needle[k]))
            k++;
        if (k == n)
            return true;
    }
    return false;
}

const char *ac_config_nearest(const char *name, size_t len)
{
    if (len < PREFIX_LEN || strncmp(name, PREFIX, PREFIX_LEN) != 0)
        return NULL;
    const char *s = name + PREFIX_LEN; /* what follows the prefix is what was mistyped */
    size_t n = len - PREFIX_LEN;
    if (n > NAME_MAX_COMPARED)
        n = NAME_MAX_COMPARED;
    const char *best = NULL;
    unsigned best_distance = UINT32_MAX;
    /* Only the library's own settings are suggested, not the tools' variables. */
    for (size_t v = 0; v < AC_VAR_READ_COUNT; v++) {
        const char *k = ac_config_names[v] + PREFIX_LEN;
        size_t m = strlen(k);
        /* Near: at most half the known name's length in edits (at least two), or holding a
         * known name whole (LOGLEVEL, LOG) or being a good part of one (GRACE, GRACE_MS);
         * beyond that a suggestion would be a guess. The fewest edits win. */
        unsigned d = distance(s, n, k, m);
        unsigned limit = m / 2 > 2 ? (unsigned)(m / 2) : 2;
        bool near =
            d <= limit || (m >= 3 && contains(s, n, k, m)) || (n >= 4 && contains(k, m, s, n));
        if (near && d < best_distance) {
            best_distance = d;
            best = ac_config_names[v];
        }
    }
    return best;
}

/* The name as it may safely go into a line: as it is when it is made of letters, digits and
 * underscores, else quoted so that it cannot forge a line. */
static void put_name(struct ac_text *t, const char *name, size_t len)
{
    bool plain = len <= NAME_MAX_COMPARED;
    for (size_t i = 0; plain && i < len; i++) {
        char c = name[i];
        plain =
            (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    }
    if (plain) {
        for (size_t i = 0; i < len; i++) {
            char c[2] = {name[i], '\0'};
            ac_text_str(t, c);
        }
        return;
    }
    char shown[NAME_MAX_COMPARED + 1];
    size_t n = len < NAME_MAX_COMPARED ? len : NAME_MAX_COMPARED;
    memcpy(shown, name, n);
    shown[n] = '\0';
    ac_text_quoted(t, shown, NAME_MAX_COMPARED);
    if (n < len)
        ac_text_str(t, "...");
}

static bool known(const char *name, size_t len)
{
    for (size_t v = 0; v < AC_VAR_COUNT; v++)
        if (strlen(ac_config_names[v]) == len && strncmp(ac_config_names[v], name, len) == 0)
            return true;
    return false;
}

void ac_config_report_unknown(char *const *env, void (*complain_line)(const char *line))
{
    size_t unknown = 0;
    for (size_t i = 0; env != NULL && env[i] != NULL; i++) {
        const char *entry = env[i];
        if (strncmp(entry, PREFIX, PREFIX_LEN) != 0)
            continue;
        const char *eq = strchr(entry, '=');
        size_t len = eq ? (size_t)(eq - entry) : strlen(entry);
        if (known(entry, len))
            continue;
        if (unknown++ >= MAX_UNKNOWN_LINES)
            continue;
        char line[256];
        struct ac_text t;
        ac_text_init(&t, line, sizeof line);
        ac_text_str(&t, "unknown variable ");
        put_name(&t, entry, len);
        const char *near = ac_config_nearest(entry, len);
        if (near != NULL) {
            ac_text_str(&t, " (did you mean ");
            ac_text_str(&t, near);
            ac_text_str(&t, "?)");
        }
        ac_text_str(&t, "; ignored");
        complain_line(line);
    }
    if (unknown > MAX_UNKNOWN_LINES) {
        char line[128];
        struct ac_text t;
        ac_text_init(&t, line, sizeof line);
        ac_text_uint(&t, unknown - MAX_UNKNOWN_LINES);
        ac_text_str(&t, " more unknown AUTOCLOSE_* variables; ignored");
        complain_line(line);
    }
}
