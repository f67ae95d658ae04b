# shellcheck shell=bash
# Helpers for the TCP hygiene and stats tests (sourced after lib.sh): what the kernel says about a
# connection's keepalive timer, what sockopt_probe says about its own sockets, and the stats file
# read back the way a Prometheus scraper would.

# have_ipv6: the loopback has ::1 (a container may run without IPv6).
have_ipv6() {
    [ -r /proc/net/if_inet6 ] && grep -q '^00000000000000000000000000000001 ' /proc/net/if_inet6
}

# ka_list FILTER: one line per ESTABLISHED socket matching the ss FILTER:
# "LOCAL_PORT PEER_PORT SECONDS", SECONDS being what is left of its keepalive timer (whole
# seconds) or "none" when it has none.
ka_list() {
    ss -Htno state established "$1" | awk '{
        n = split($3, l, ":"); m = split($4, p, ":"); left = "none"
        if (match($0, /timer:\(keepalive,[0-9.]+(ms|sec|min)/)) {
            t = substr($0, RSTART + 17, RLENGTH - 17); v = t + 0
            if (t ~ /ms$/) v = 0; else if (t ~ /min$/) v = v * 60
            left = int(v)
        }
        print l[n], p[m], left
    }'
}

# ka_summary FILTER LO HI PORT...: "in=N out=N none=N" over the matching sockets whose local or
# peer port is one of the PORTs (a test's own clients: ss filters on port numbers alone, and
# another program's socket on another address can share one): a keepalive timer with LO..HI
# seconds left, one outside that range (the system's 2 hours, say), no keepalive timer at all.
ka_summary() {
    local filter=$1 lo=$2 hi=$3 local_port peer left
    shift 3
    local want=" $* " in=0 out=0 none=0
    while read -r local_port peer left; do
        [[ $want == *" $local_port "* || $want == *" $peer "* ]] || continue
        if [ "$left" = none ]; then
            none=$((none + 1))
        elif [ "$left" -ge "$lo" ] && [ "$left" -le "$hi" ]; then
            in=$((in + 1))
        else
            out=$((out + 1))
        fi
    done < <(ka_list "$filter")
    echo "in=$in out=$out none=$none"
}

# ka_report FILTER PORT...: the timers of those sockets as ss shows them, for the log.
ka_report() {
    local filter=$1 local_port peer left
    shift
    local want=" $* " out=()
    while read -r local_port peer left; do
        [[ $want == *" $local_port "* || $want == *" $peer "* ]] || continue
        out+=("$local_port->$peer:$left")
    done < <(ka_list "$filter")
    echo "${out[*]:-no sockets}"
}

# server_peers_are STATE PORT N PEER_PORT...: N server sockets on PORT in STATE whose peer is one
# of the listed ports (a test's own clients); lib.sh's servers_in counts them.
# shellcheck disable=SC2317 # called through wait_until
server_peers_are() { [ "$(servers_in "$1" "$2" "${@:4}")" -eq "$3" ]; }

# probe_lines NAME KIND: the "accepted" or "connected" lines sockopt_probe NAME printed.
probe_lines() { grep -E "^$2 fd=" "$TMP/$1.out" || true; }

# probe_ok NAME KIND N FIELD=VALUE...: sockopt_probe NAME reported N sockets of KIND, each with
# every FIELD=VALUE given.
probe_ok() {
    local name=$1 kind=$2 n=$3 line kv
    shift 3
    [ "$(probe_lines "$name" "$kind" | wc -l)" -eq "$n" ] || return 1
    while read -r line; do
        for kv in "$@"; do
            [[ " $line " == *" $kv "* ]] || return 1
        done
    done < <(probe_lines "$name" "$kind")
}

# probe_expect NAME KIND N FIELD=VALUE...: probe_ok, or fail showing what the probe printed.
probe_expect() {
    local name=$1 kind=$2 n=$3
    shift 3
    if probe_ok "$name" "$kind" "$n" "$@"; then
        echo "  $name: $n $kind socket(s) with $*"
    else
        fail "$name: expected $n $kind socket(s) with $*; the probe printed:" \
            "$(probe_lines "$name" "$kind")"
    fi
}

# probe_local_ports NAME KIND: the local ports of the sockets the probe reported.
probe_local_ports() { probe_lines "$1" "$2" | sed -n 's/.* local_port=\([0-9]*\) .*/\1/p'; }

# prom_dump FILE PID: the stats file checked as a scraper would read it, then printed as one
# "name{labels} value" line per series with the pid label taken out (labels in file order).
# Fails (status 1, reason on stderr) unless: every family has exactly one HELP and one TYPE line,
# both before its samples; the type is gauge for autoclose_pending and the descriptor gauges,
# counter for the others;
# every sample starts with pid="PID"; every value is a whole number; the file ends in a newline.
prom_dump() {
    python3 - "$1" "$2" <<'EOF'
import re, sys

path, pid = sys.argv[1], sys.argv[2]
text = open(path).read()
problems = []
if not text.endswith("\n"):
    problems.append("the file does not end with a newline")
helps, types, seen_sample, out = {}, {}, set(), []
sample = re.compile(r'^([a-z_]+)\{pid="([0-9]+)"((?:,[a-z_]+="[^"]*")*)\} ([0-9]+)$')
for n, line in enumerate(text.splitlines(), 1):
    if line.startswith("# HELP ") or line.startswith("# TYPE "):
        kind, name, rest = line[2:6], *(line[7:].split(" ", 1) + [""])[:2]
        table = helps if kind == "HELP" else types
        if name in table:
            problems.append(f"line {n}: a second {kind} for {name}")
        if name in seen_sample:
            problems.append(f"line {n}: {kind} for {name} after its samples")
        if not rest.strip():
            problems.append(f"line {n}: empty {kind} for {name}")
        table[name] = rest
        continue
    m = sample.match(line)
    if not m:
        problems.append(f"line {n}: not a sample with a leading pid label: {line!r}")
        continue
    name, got_pid, labels, value = m.groups()
    if got_pid != pid:
        problems.append(f"line {n}: pid label {got_pid}, expected {pid}")
    if name not in helps or name not in types:
        problems.append(f"line {n}: sample of {name} before its HELP and TYPE")
    seen_sample.add(name)
    labels = labels.lstrip(",")
    out.append(f"{name}{{{labels}}} {value}" if labels else f"{name} {value}")
for name, kind in types.items():
    gauge = name == "autoclose_pending" or name.startswith("autoclose_descriptors_")
    want = "gauge" if gauge else "counter"
    if kind != want:
        problems.append(f"TYPE of {name} is {kind!r}, expected {want!r}")
for name in set(helps) ^ set(types):
    problems.append(f"{name} lacks a HELP or a TYPE line")
for name in set(helps) - seen_sample:
    problems.append(f"{name} has no sample")
if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
print("\n".join(out))
EOF
}

# Every series the stats file must hold (pid label aside), in the order it writes them.
PROM_SERIES=(
    'autoclose_reclaimed_total{action="shutdown",found="read"}'
    'autoclose_reclaimed_total{action="shutdown",found="ready"}'
    'autoclose_reclaimed_total{action="shutdown",found="sweep"}'
    'autoclose_reclaimed_total{action="close",found="read"}'
    'autoclose_reclaimed_total{action="close",found="ready"}'
    'autoclose_reclaimed_total{action="close",found="sweep"}'
    'autoclose_pending'
    'autoclose_dry_run_observed_total'
    'autoclose_port_filter_skipped_total'
    'autoclose_keepalive_configured_total'
    'autoclose_errors_total'
    'autoclose_descriptors_limit'
    'autoclose_descriptors_open'
    'autoclose_descriptors_reclaimed_held'
)

# prom_get DUMP SERIES: the value of SERIES in a prom_dump output (empty if absent).
prom_get() {
    local series=$2 line
    while read -r line; do
        if [ "${line% *}" = "$series" ]; then
            echo "${line##* }"
            return
        fi
    done <<<"$1"
}

# prom_expect DUMP SERIES=VALUE...: every series in the file exactly once, in PROM_SERIES order;
# the series given must have the value given, the others 0 (the descriptor gauges, which are the
# process's state, only when given). The reclaims by call site, whose labels are the program's
# addresses, are left to t_leak_sites.
prom_expect() {
    local dump=$1 series kv want got names
    shift
    names=$(cut -d' ' -f1 <<<"$dump" | grep -v '^autoclose_reclaimed_by_site_total{' || true)
    [ "$names" = "$(printf '%s\n' "${PROM_SERIES[@]}")" ] ||
        fail "the stats file's series differ from the expected set:" $'\n'"$dump"
    for series in "${PROM_SERIES[@]}"; do
        want=0
        [[ $series == autoclose_descriptors_* ]] && want=any
        for kv in "$@"; do
            [ "${kv%=*}" = "$series" ] && want=${kv##*=}
        done
        got=$(prom_get "$dump" "$series")
        echo "    $series $got"
        [ "$want" = any ] || [ "$got" = "$want" ] || fail "$series: expected $want, got $got"
    done
}

# tw_overflows: how many sockets the kernel has destroyed at once, instead of keeping them in
# TIME_WAIT (or in FIN_WAIT_2 after a close, kept in the same table), because that table was full
# (tcp_max_tw_buckets). A busy machine, or other tests, can fill it.
tw_overflows() {
    awk '$1 == "TcpExt:" {
        if (!seen) { for (i = 2; i <= NF; i++) name[i] = $i; seen = 1; next }
        for (i = 2; i <= NF; i++) if (name[i] == "TCPTimeWaitOverflow") print $i
    }' /proc/net/netstat 2>/dev/null || true
}
TW_OVERFLOWS_AT_START=$(tw_overflows)

# tw_fail MSG...: for a check that needs sockets in TIME_WAIT or FIN_WAIT_2: fails, unless the
# kernel dropped such sockets meanwhile (the table was full), in which case the test cannot tell
# and is skipped, saying so and what it saw.
tw_fail() {
    local now
    now=$(tw_overflows)
    if [ -n "$now" ] && [ -n "$TW_OVERFLOWS_AT_START" ] && [ "$now" -gt "$TW_OVERFLOWS_AT_START" ]
    then
        skip "the kernel's TIME_WAIT table overflowed during the test ($((now - TW_OVERFLOWS_AT_START))" \
            "sockets dropped; $(ss -Htan state time-wait | wc -l) in TIME_WAIT," \
            "tcp_max_tw_buckets=$(cat /proc/sys/net/ipv4/tcp_max_tw_buckets)): cannot tell. Seen: $*"
    fi
    fail "$@"
}
