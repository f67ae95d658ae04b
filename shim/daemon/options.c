/*
 * autoclosed's command line. The syntax of --ports and the bounds of the times are the library's
 * own (core/config.c), so an operator's AUTOCLOSE_PORTS value works here unchanged. A bad
 * argument is one line on stderr and exit status 2: a unit that starts with a typo must fail
 * loudly, not watch the wrong thing.
 */
#include "autoclosed.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

struct ad_options ad_opt;

static void usage(FILE *to)
{
    fputs("Usage: autoclosed [--pid PID[,PID...]] [--unit NAME] [--exe PATH]\n"
          "                  [--no-children] [--ports LIST] [--grace-ms N]\n"
          "                  [--interval-ms N] [--once] [--dry-run] [--log LEVEL]\n"
          "                  [--log-file PATH] [--stats-file PATH]\n"
          "                  [--metrics-listen [ADDR:]PORT] [--version] [--help]\n"
          "\n"
          "Shuts down other processes' TCP connections that their peer has closed\n"
          "(CLOSE_WAIT) and that stay idle for a grace period, without stopping or\n"
          "restarting the process: the peer ends in TIME_WAIT, the descriptor stays the\n"
          "process's own. Needs CAP_SYS_PTRACE (and CAP_DAC_READ_SEARCH) for processes of\n"
          "other users.\n"
          "\n"
          "  --pid PID[,PID...]  only these processes (up to 64; commas or spaces, as\n"
          "                      pidof prints them; a thread id means its process) and\n"
          "                      their descendants; each must exist at start; with no\n"
          "                      --unit or --exe the daemon stops when all have exited,\n"
          "                      and never touches a later process that gets the same\n"
          "                      number\n"
          "  --unit NAME         the processes of this systemd unit (its control group;\n"
          "                      NAME without a suffix is NAME.service), whenever it runs:\n"
          "                      a restarted server is watched without a restart of the\n"
          "                      daemon; may be repeated\n"
          "  --exe PATH          the processes running this executable (also after it was\n"
          "                      replaced on disk) and their descendants, whenever they\n"
          "                      run; may be repeated\n"
          "  --no-children       not the descendants of --pid and --exe processes\n"
          "  --ports LIST        only connections whose local or peer port is listed,\n"
          "                      e.g. 10540,10541,12000-12010 (as AUTOCLOSE_PORTS);\n"
          "                      without --pid, --unit or --exe every process of the host\n"
          "                      is looked into, and ports from 32768 up or in the host's\n"
          "                      ip_local_port_range (clients' own ports) are refused\n"
          "                      At least one of --pid, --unit, --exe and --ports; with\n"
          "                      several, connections of the processes they select, on\n"
          "                      those ports.\n"
          "  --grace-ms N        from the peer's FIN, as the kernel dates it, to the\n"
          "                      action, 0-86400000 (default 5000); restarts while the\n"
          "                      connection still sends\n"
          "  --interval-ms N     how often the kernel is asked, 1-86400000 (default 1000)\n"
          "  --once              act on what is half-closed now, once its grace has\n"
          "                      passed, then exit: 0, or 1 when something could not be\n"
          "                      reclaimed\n"
          "  --dry-run           only log what would be done\n"
          "  --log LEVEL         off, error, info (default) or debug\n"
          "  --log-file PATH     append log lines to PATH instead of stderr (reopened on\n"
          "                      SIGHUP), in a directory no other user can write\n"
          "  --stats-file PATH   Prometheus text file: autoclosed_close_wait per process\n"
          "                      and local port, autoclosed_reclaimed_total,\n"
          "                      autoclosed_dry_run_observed_total,\n"
          "                      autoclosed_errors_total,\n"
          "                      autoclosed_unreachable_processes_total,\n"
          "                      autoclosed_netns_unseen_total\n"
          "  --metrics-listen [ADDR:]PORT\n"
          "                      also serve that text over HTTP, GET /metrics, on\n"
          "                      ADDR (numeric; default 127.0.0.1; [::1] for IPv6)\n"
          "  --version           print the version and exit\n"
          "  --help              show this help and exit\n",
          to);
}

static int bad(const char *option, const char *value, const char *problem)
{
    ad_complain("%s '%.64s': %s (see autoclosed --help)", option, value, problem);
    return 2;
}

/* A whole decimal number in [lo, hi]. */
static bool number(const char *s, unsigned long long lo, unsigned long long hi,
                   unsigned long long *out)
{
    if (*s < '0' || *s > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end != '\0' || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

/* Commas or white space between the numbers: --pid "$(pidof NAME)" gives the list pidof prints.
 * Repeated --pid options add up. */
static int parse_pids(const char *value, struct ad_options *o)
{
    char copy[1024];
    if (strlen(value) >= sizeof copy)
        return bad("--pid", value, "too long");
    strcpy(copy, value);
    size_t before = o->npids;
    for (char *save = NULL, *tok = strtok_r(copy, ", \t\n", &save); tok;
         tok = strtok_r(NULL, ", \t\n", &save)) {
        unsigned long long pid;
        if (!number(tok, 1, 4194304, &pid))
            return bad("--pid", value, "not a list of process ids (1-4194304)");
        if (o->npids == AD_MAX_PIDS)
            return bad("--pid", value, "more than 64 processes");
        o->pids[o->npids++] = (pid_t)pid;
    }
    if (o->npids == before)
        return bad("--pid", value, "not a list of process ids (1-4194304)");
    return -1;
}

/* The unit types systemd knows: a name ending in none of them is a service, as systemctl takes
 * it. */
static bool has_unit_suffix(const char *name)
{
    static const char *const types[] = {".service",   ".socket", ".device", ".mount",
                                        ".automount", ".swap",   ".target", ".path",
                                        ".timer",     ".slice",  ".scope"};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        size_t t = strlen(types[i]);
        if (n > t && strcmp(name + n - t, types[i]) == 0)
            return true;
    }
    return false;
}

/* A unit's name: the characters systemd allows (it names a directory of the control group tree:
 * no "/" and no "." or ".." alone), a suffix added where it has none. Commas or white space
 * separate several. */
static int parse_units(const char *value, struct ad_options *o)
{
    char copy[1024];
    if (strlen(value) >= sizeof copy)
        return bad("--unit", value, "too long");
    strcpy(copy, value);
    size_t before = o->nunits;
    for (char *save = NULL, *tok = strtok_r(copy, ", \t\n", &save); tok;
         tok = strtok_r(NULL, ", \t\n", &save)) {
        if (strlen(tok) > 240 || tok[0] == '.' ||
            tok[strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                            "abcdefghijklmnopqrstuvwxyz"
                            "0123456789:_.@\\-")] != '\0')
            return bad("--unit", value, "not a systemd unit name, e.g. mosserver.service");
        if (o->nunits == AD_MAX_NAMES)
            return bad("--unit", value, "more than 16 units");
        char *name = malloc(strlen(tok) + sizeof ".service");
        if (name == NULL)
            return bad("--unit", value, "out of memory");
        strcpy(name, tok);
        if (!has_unit_suffix(name))
            strcat(name, ".service");
        o->units[o->nunits++] = name;
    }
    if (o->nunits == before)
        return bad("--unit", value, "not a systemd unit name, e.g. mosserver.service");
    return -1;
}

static int parse_exe(const char *value, struct ad_options *o)
{
    if (value[0] != '/')
        return bad("--exe", value, "not an absolute path");
    if (strlen(value) >= 1024)
        return bad("--exe", value, "too long");
    if (o->nexes == AD_MAX_NAMES)
        return bad("--exe", value, "more than 16 executables");
    o->exes[o->nexes++] = value;
    return -1;
}

int ad_parse_options(int argc, char **argv, struct ad_options *o)
{
    static const struct option longs[] = {
        {"pid", required_argument, NULL, 'p'},
        {"unit", required_argument, NULL, 'u'},
        {"exe", required_argument, NULL, 'e'},
        {"no-children", no_argument, NULL, 'c'},
        {"ports", required_argument, NULL, 'P'},
        {"grace-ms", required_argument, NULL, 'g'},
        {"interval-ms", required_argument, NULL, 'i'},
        {"once", no_argument, NULL, 'o'},
        {"dry-run", no_argument, NULL, 'n'},
        {"log", required_argument, NULL, 'l'},
        {"log-file", required_argument, NULL, 'L'},
        {"stats-file", required_argument, NULL, 's'},
        {"metrics-listen", required_argument, NULL, 'M'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *o = (struct ad_options){.ports = {.all = true},
                             .grace_ms = AC_DEFAULT_GRACE_MS,
                             .interval_ms = 1000,
                             .log_level = AC_LOG_INFO};
    bool have_ports = false;
    opterr = 0;
    int c, rc;
    char why[256];
    unsigned long long v;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (c) {
        case 'p':
            if ((rc = parse_pids(optarg, o)) >= 0)
                return rc;
            break;
        case 'u':
            if ((rc = parse_units(optarg, o)) >= 0)
                return rc;
            break;
        case 'e':
            if ((rc = parse_exe(optarg, o)) >= 0)
                return rc;
            break;
        case 'c':
            o->no_children = true;
            break;
        case 'P':
            if (!ac_parse_ports(optarg, &o->ports, why, sizeof why) || o->ports.all)
                return bad("--ports", optarg,
                           "not a list of ports or ranges within 1-65535, e.g. "
                           "10540,10541,12000-12010");
            have_ports = true;
            o->ports_text = optarg;
            break;
        case 'g':
            if (!number(optarg, 0, AC_MAX_GRACE_MS, &v))
                return bad("--grace-ms", optarg, "not a whole number of milliseconds (0-86400000)");
            o->grace_ms = (uint32_t)v;
            break;
        case 'i':
            if (!number(optarg, 1, AC_MAX_GRACE_MS, &v))
                return bad("--interval-ms", optarg,
                           "not a whole number of milliseconds (1-86400000)");
            o->interval_ms = (uint32_t)v;
            break;
        case 'o':
            o->once = true;
            break;
        case 'n':
            o->dry_run = true;
            break;
        case 'l':
            if (!ac_parse_log_level(optarg, &o->log_level, why, sizeof why))
                return bad("--log", optarg, "not off, error, info or debug");
            break;
        case 'L':
            o->log_file = optarg;
            break;
        case 's':
            o->stats_file = optarg;
            break;
        case 'M':
            if (!ad_metrics_parse(optarg, &o->metrics_addr))
                return bad("--metrics-listen", optarg,
                           "not PORT, ADDR:PORT or [ADDR6]:PORT with a numeric address and a "
                           "port within 1-65535, e.g. 9836 or [::1]:9836");
            o->metrics_listen = optarg;
            break;
        case 'V':
            printf("autoclosed %s\n", AC_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            /* getopt_long sets optopt for a known option without its value, 0 otherwise. */
            ad_complain("%s '%.64s' (see autoclosed --help)",
                        optopt ? "option needs a value:" : "unknown option:", argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        ad_complain("unexpected argument '%.64s' (see autoclosed --help)", argv[optind]);
        return 2;
    }
    if (o->npids + o->nunits + o->nexes == 0 && !have_ports) {
        ad_complain("pick what to watch: --pid PID[,PID...], --unit NAME, --exe PATH, --ports "
                    "LIST, or several (see autoclosed --help)");
        return 2;
    }
    if (o->npids + o->nunits + o->nexes > AD_MAX_SELECTORS) {
        ad_complain("more than %d processes, units and executables in all (see autoclosed --help)",
                    AD_MAX_SELECTORS);
        return 2;
    }
    return ad_selection_start(o);
}
