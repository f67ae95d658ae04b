# shellcheck shell=bash
# Shared by the integration tests (sourced). Every wait is a bounded poll of real kernel state,
# and every process a test starts is killed on exit, whatever the outcome.

set -euo pipefail

: "${FIXTURES:?FIXTURES must name the directory of the built fixtures}"
: "${AUTOCLOSE_LIB:=}"
# The 32-bit x86 library and fixtures, when built (make's integration rule names them; run by
# hand, they are looked for in i386/ beside the 64-bit ones, as make builds them). Under a
# sanitizer AUTOCLOSE_LIB also names the sanitizer's runtime, before or after the library.
lib64=
for word in $AUTOCLOSE_LIB; do
    [[ $word != */libautoclose.so ]] || lib64=$word
done
unset word
: "${AUTOCLOSE_LIB32:=$(dirname -- "${lib64:-.}")/i386/libautoclose.so}"
: "${FIXTURES32:=$(dirname -- "$FIXTURES")/i386/fixtures}"
# The musl library and fixtures likewise (musl/ beside the 64-bit ones).
: "${AUTOCLOSE_LIBMUSL:=$(dirname -- "${lib64:-.}")/musl/libautoclose.so}"
: "${FIXTURES_MUSL:=$(dirname -- "$FIXTURES")/musl/fixtures}"
unset lib64

T_NAME=$(basename "$0" .sh)
# shellcheck disable=SC2034 # used by the tests that run the script fixtures
SCRIPT_FIXTURES=$(cd "$(dirname "${BASH_SOURCE[0]}")/../fixtures" && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/autoclose.$T_NAME.XXXXXX")
# Outer bound for every background process, should this script die without cleaning up.
BG_BOUND_S=${BG_BOUND_S:-90}
STARTED=()
declare -A BG_PIDS=()

now_ms() { echo $((${EPOCHREALTIME/./} / 1000)); }

cleanup() {
    local pid deadline
    for pid in "${STARTED[@]}"; do
        kill -TERM -- "-$pid" 2>/dev/null || true
    done
    deadline=$(($(now_ms) + 2000))
    for pid in "${STARTED[@]}"; do
        while kill -0 -- "-$pid" 2>/dev/null && [ "$(now_ms)" -lt "$deadline" ]; do
            sleep 0.05
        done
        kill -KILL -- "-$pid" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

show_outputs() {
    local f
    for f in "$TMP"/*.out "$TMP"/*.err "$TMP"/*.log; do
        [ -s "$f" ] || continue
        echo "--- ${f##*/} (last 15 lines)"
        tail -n 15 "$f"
    done
}

fail() {
    echo "FAIL: $T_NAME: $*" >&2
    show_outputs >&2
    exit 1
}

pass() {
    echo "PASS: $T_NAME${1:+: $1}"
    exit 0
}

skip() {
    echo "SKIP: $T_NAME: $*"
    exit 77
}

# AUTOCLOSE_LIB goes into LD_PRELOAD as it is, so it may be a space-separated list: the
# sanitizer suites put their runtime beside the library (tests/sanitizers/run.sh).
need_shim() {
    local libs lib
    read -ra libs <<<"$AUTOCLOSE_LIB"
    [ ${#libs[@]} -gt 0 ] || fail "AUTOCLOSE_LIB is empty"
    for lib in "${libs[@]}"; do
        [ -f "$lib" ] || fail "AUTOCLOSE_LIB='$AUTOCLOSE_LIB': '$lib' is not a built library"
    done
}

assert_eq() {
    local expected=$1 actual=$2 what=$3
    echo "  $what: $actual (expected $expected)"
    [ "$expected" = "$actual" ] || fail "$what: expected $expected, got $actual"
}

# wait_until MS CMD...: polls CMD every 50 ms until it succeeds (0) or MS have passed (1).
wait_until() {
    local deadline=$(($(now_ms) + $1))
    shift
    until "$@"; do
        [ "$(now_ms)" -lt "$deadline" ] || return 1
        sleep 0.05
    done
}

wait_for_file() {
    wait_until "${2:-5000}" test -s "$1"
}

# start_bg NAME [VAR=VALUE...] CMD ARGS...: output goes to $TMP/NAME.out and .err. The process
# leads its own group, so cleanup also reaches whatever it forks. Only from the test's own shell:
# called in a subshell ($(...), a pipeline) it would record the process there, where cleanup
# never looks, and the process would outlive the test.
start_bg() {
    local name=$1
    shift
    [ "$BASHPID" = "$$" ] || fail "start_bg $name called in a subshell: cleanup would never stop it"
    setsid timeout "$BG_BOUND_S" env "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
    STARTED+=("$!")
    BG_PIDS[$name]=$!
}

# The program's own pid, below the timeout wrapper that start_bg puts around it.
main_pid() { pgrep -o -P "${BG_PIDS[$1]}"; }

# await_port NAME: the port the server NAME published in $TMP/NAME.port.
await_port() {
    local port
    # A bound, not a wait: most servers publish within milliseconds, but an interpreter starting
    # under ThreadSanitizer on a loaded machine took more than 5 s.
    wait_for_file "$TMP/$1.port" 20000 || fail "server $1 published no port within 20 s"
    port=$(cat "$TMP/$1.port")
    # Sockets towards this port number from before the server started (TIME_WAITs of an earlier
    # test whose server got the same number) are left out of every client-side count.
    peer_side_ports all "$port" >"$TMP/before.$port"
    echo "$port"
}

# client NAME ARGS...: ncs_client in the foreground, bounded, output kept in $TMP/NAME.out.
client() {
    local name=$1
    shift
    timeout 60 "$FIXTURES/ncs_client" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
}

# client_bg NAME ARGS...: the same in the background, killed with the rest on exit.
client_bg() {
    local name=$1
    shift
    start_bg "$name" "$FIXTURES/ncs_client" "$@"
}

# wait_bg NAME: the exit status of a process start_bg started.
wait_bg() { wait "${BG_PIDS[$1]}"; }

client_ports() { sed -n 's/^local_port=//p' "$TMP/$1.out"; }

# count_state STATE PORT server|client: sockets in STATE whose local (server) or remote
# (client) port is PORT.
count_state() {
    local key
    case $3 in
    server) key=sport ;;
    client) key=dport ;;
    *) fail "count_state: side must be server or client, not '$3'" ;;
    esac
    ss -Htn state "$1" "( $key = :$2 )" | wc -l
}

# state_is STATE PORT SIDE N: for wait_until.
state_is() { [ "$(count_state "$1" "$2" "$3")" -eq "$4" ]; }

# peer_side_ports STATE PORT: the local port of each socket in STATE connected to PORT.
peer_side_ports() {
    ss -Htn state "$1" "( dport = :$2 )" | awk '{ n = split($(NF - 1), a, ":"); print a[n] }'
}

# count_client STATE PORT [CLIENT...]: client-side sockets in STATE towards PORT. Given the names
# of client runs, only the local ports they printed count; otherwise every socket but those that
# predate the server does.
count_client() {
    local state=$1 port=$2 name
    shift 2
    if [ $# -gt 0 ]; then
        peer_side_ports "$state" "$port" |
            grep -Fxc -f <(for name in "$@"; do client_ports "$name"; done) || true
    elif [ -f "$TMP/before.$port" ]; then
        peer_side_ports "$state" "$port" | grep -Fxvc -f "$TMP/before.$port" || true
    else
        count_state "$state" "$port" client
    fi
}

client_is() { [ "$(count_client "$1" "$2" "${@:4}")" -eq "$3" ]; }

# report_states PORT [CLIENT...]: the states that show whether a server reclaimed its
# half-closed connections.
report_states() {
    echo "port $1: CLOSE_WAIT=$(count_state close-wait "$1" server)" \
        "FIN_WAIT_2=$(count_client fin-wait-2 "$@")" \
        "TIME_WAIT(client)=$(count_client time-wait "$@")"
}

# reclaimed PORT N [CLIENT...]: the N connections to PORT ended cleanly on both sides.
reclaimed() {
    local port=$1 n=$2
    shift 2
    state_is close-wait "$port" server 0 && client_is fin-wait-2 "$port" 0 "$@" &&
        client_is fin-wait-1 "$port" 0 "$@" && client_is time-wait "$port" "$n" "$@"
}

# leaking PORT N [CLIENT...]: N server sockets in CLOSE_WAIT, their peers in FIN_WAIT_2.
leaking() {
    local port=$1 n=$2
    shift 2
    state_is close-wait "$port" server "$n" && client_is fin-wait-2 "$port" "$n" "$@"
}

# pick_port [TAKEN...]: a free port outside the ephemeral range, for tests that must name the
# port before the server starts; the server binding it is the final check.
pick_port() {
    local p tries=0
    while [ $tries -lt 50 ]; do
        p=$((20000 + RANDOM % 10000))
        tries=$((tries + 1))
        [[ " $* " != *" $p "* ]] || continue
        if [ -z "$(ss -Htan "( sport = :$p or dport = :$p )")" ]; then
            echo "$p"
            return 0
        fi
    done
    fail "no free port found in 20000-29999"
}

# A control server with the shim and the given grace, with one disconnected client. Once its
# connection is reclaimed, a grace period has demonstrably passed, so a test can then assert
# that something else was left alone without a blind sleep.
start_witness() {
    need_shim
    start_bg witness LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS="$1" \
        "$FIXTURES/mos_server" --style read --port-file "$TMP/witness.port"
    WITNESS_PORT=$(await_port witness)
    client witness_client --port "$WITNESS_PORT" || fail "witness client failed"
}

wait_witness() {
    wait_until "${1:-5000}" reclaimed "$WITNESS_PORT" 1 witness_client || fail "witness:" \
        "the shim never reclaimed a plain leak; $(report_states "$WITNESS_PORT" witness_client)"
    echo "  witness reclaimed its connection: a grace period has passed"
}

# count_lines REGEX FILE: matching lines (extended regex), 0 when the file does not exist yet.
count_lines() {
    if [ -e "$2" ]; then
        grep -Ec -- "$1" "$2" || true
    else
        echo 0
    fi
}

# has_lines N REGEX FILE: at least N matching lines; for wait_until.
has_lines() { [ "$(count_lines "$2" "$3")" -ge "$1" ]; }

# count_by_port STATE FILTER COLUMN PORT...: how many sockets `ss state STATE FILTER` lists whose
# address in ss's COLUMN (3: local, 4: peer) has one of the listed ports.
count_by_port() {
    local state=$1 filter=$2 column=$3
    shift 3
    local want=" $* " p n=0
    while read -r p; do
        [[ $want == *" ${p##*:} "* ]] && n=$((n + 1))
    done < <(ss -Htn state "$state" "$filter" | awk -v c="$column" '{ print $c }')
    echo "$n"
}

# peers_in STATE PORT CLIENT_PORT...: how many of the listed client sockets (by their own local
# port) connected to server PORT are in STATE. Keyed on the clients' ports, so a TIME_WAIT left on
# a recycled server port by an earlier run does not count.
peers_in() { count_by_port "$1" "( dport = :$2 )" 3 "${@:3}"; }

# servers_in STATE PORT CLIENT_PORT...: how many server sockets on PORT whose peers are the
# listed client ports are in STATE.
servers_in() { count_by_port "$1" "( sport = :$2 )" 4 "${@:3}"; }

# peers_settled PORT CLIENT_PORT...: none of the listed connections' server sockets on PORT in
# CLOSE_WAIT, and every listed client socket in TIME_WAIT (the clean ending); for wait_until.
peers_settled() {
    local port=$1
    shift
    [ "$(servers_in close-wait "$port" "$@")" -eq 0 ] &&
        [ "$(peers_in time-wait "$port" "$@")" -eq $# ]
}

# peer_report PORT CLIENT_PORT...: the states that show whether the listed connections ended.
peer_report() {
    local port=$1
    shift
    echo "port $port: CLOSE_WAIT=$(servers_in close-wait "$port" "$@")" \
        "FIN_WAIT_2=$(peers_in fin-wait-2 "$port" "$@")" \
        "TIME_WAIT=$(peers_in time-wait "$port" "$@") of $# client sockets"
}

# port_sockets PORT: every TCP socket to or from PORT, one per line, for a failure report.
port_sockets() { ss -Htan "( sport = :$1 or dport = :$1 )"; }

# actions LOG: the shim's action lines in LOG (the connection was shut down or released).
actions() {
    if [ -e "$1" ]; then
        grep -E 'libautoclose\[[0-9]+\]: (shutdown|close) fd=' "$1" || true
    fi
}

# found_summary LOG: "read=N ready=N sweep=N" over the action lines in LOG.
found_summary() {
    local how out=()
    for how in read ready sweep; do
        out+=("$how=$(actions "$1" | grep -c " found=$how\( \|$\)" || true)")
    done
    echo "${out[*]}"
}

# The same, naming the clients (ncs_client or reply_client runs whose output, with its
# local_port= lines, is in $TMP/NAME.out) instead of listing their ports.
ports_of_clients() {
    local name
    for name in "$@"; do
        client_ports "$name"
    done
}
clients_settled() {
    local port=$1 ports
    shift
    mapfile -t ports < <(ports_of_clients "$@")
    [ ${#ports[@]} -gt 0 ] && peers_settled "$port" "${ports[@]}"
}
clients_report() {
    local port=$1 ports
    shift
    mapfile -t ports < <(ports_of_clients "$@")
    peer_report "$port" "${ports[@]}"
}

# fd_holds PID FD: what descriptor FD of process PID holds now: tcp (a TCP socket the kernel still
# lists), unix (an AF_UNIX socket, such as the shim's placeholder), socket (any other socket,
# including a TCP socket already closed down), file, or none.
fd_holds() {
    local link inode
    link=$(readlink "/proc/$1/fd/$2" 2>/dev/null) || {
        echo none
        return
    }
    inode=${link#socket:[}
    inode=${inode%]}
    if [ "$inode" = "$link" ]; then
        echo file
    elif awk -v i="$inode" 'NR > 1 && $7 == i { f = 1 } END { exit !f }' /proc/net/unix; then
        echo unix
    elif awk -v i="$inode" 'NR > 1 && $10 == i { f = 1 } END { exit !f }' \
        /proc/net/tcp /proc/net/tcp6; then
        echo tcp
    else
        echo socket
    fi
}

# sleep_ms MS: sleep a whole number of milliseconds.
sleep_ms() { sleep "$(($1 / 1000)).$(printf '%03d' $(($1 % 1000)))"; }

# earliest_stamp FILE...: the smallest at_ms=<wall-clock ms> in the files (fixtures stamp the
# lines saying a connection was answered; its peer closes after that, so this is a time no later
# than the first FIN).
earliest_stamp() {
    sed -n 's/.* at_ms=\([0-9]*\).*/\1/p' "$@" | sort -n | head -n 1
}

# snapshot_now PORT...: the server sockets on these ports in CLOSE_WAIT at one instant (one ss
# call, filtered in the kernel: cheap however many other sockets the machine has), for
# leaks_before_grace. Taken as soon as the clients have closed: other checks can wait, the grace
# does not.
snapshot_now() {
    local filter="" p
    for p in "$@"; do
        filter+="${filter:+ or }sport = :$p"
    done
    ss -Htn state close-wait "( $filter )" >"$TMP/before-grace.ss"
    SNAPSHOT_MS=$(now_ms)
}

# leaks_before_grace FLOOR_MS GRACE_MS N PORT...: the snapshot_now snapshot of these ports must
# have been taken less than GRACE_MS after FLOOR_MS (a time no later than the first FIN, as now_ms
# counts) and show N server sockets in CLOSE_WAIT on each PORT: nothing acted early, and each
# fixture really leaked.
leaks_before_grace() {
    local floor=$1 grace=$2 n=$3 at p got
    shift 3
    [ -n "$floor" ] || fail "leaks_before_grace: no time to measure from"
    [ -n "${SNAPSHOT_MS:-}" ] || fail "leaks_before_grace: no snapshot_now before"
    at=$((SNAPSHOT_MS - floor))
    [ "$at" -lt "$grace" ] ||
        fail "the snapshot came ${at} ms after the first answer, past the ${grace} ms grace"
    for p in "$@"; do
        got=$(awk -v p=":$p" 'substr($3, length($3) - length(p) + 1) == p { n++ }
            END { print n + 0 }' "$TMP/before-grace.ss")
        echo "  at most ${at} ms after the first FIN: port $p: CLOSE_WAIT=$got (expected $n)"
        [ "$got" -eq "$n" ] || fail "port $p: $got CLOSE_WAIT before the grace, not $n"
    done
}

# tw_overflows: how often the kernel could not make a TIME_WAIT socket because its table was full
# (a connection closing then skips TIME_WAIT altogether, and no test can see its clean ending).
tw_overflows() {
    awk '$1 == "TcpExt:" { if (!c) { for (i = 2; i <= NF; i++) if ($i == "TCPTimeWaitOverflow") c = i }
        else { print $c + 0; exit } }' /proc/net/netstat 2>/dev/null || echo 0
}
TW_OVERFLOWS_AT_START=$(tw_overflows)

# require_settled PORT WHAT CLIENT_NAME...: fails, showing every socket on PORT, unless the named
# clients' connections ended cleanly.
require_settled() {
    local port=$1 what=$2 overflows
    shift 2
    clients_settled "$port" "$@" && return 0
    overflows=$(($(tw_overflows) - TW_OVERFLOWS_AT_START))
    if [ "$overflows" -gt 0 ]; then
        what="$what (the kernel's TIME_WAIT table overflowed $overflows times during this test:\
 closing sockets skipped TIME_WAIT; another workload on this machine is filling it)"
    fi
    fail "$what: $(clients_report "$port" "$@"); every socket on the port:"$'\n'"$(port_sockets "$port")"
}

# disconnect_variants N GRACE VARIANT...: N parallel NCS disconnects against the server of each
# variant (port[VARIANT], client runs named client-VARIANT), all at once; then every leak must
# still be there before the grace has passed. Sets DISCONNECT_STARTED (ms) to when they began.
disconnect_variants() {
    local n=$1 grace=$2 v i
    shift 2
    local variants=("$@") pids=() ports=()
    DISCONNECT_STARTED=$(now_ms)
    for v in "${variants[@]}"; do
        client "client-$v" --port "${port[$v]}" --count "$n" --parallel &
        pids+=("$!")
    done
    for i in "${!variants[@]}"; do
        wait "${pids[$i]}" || fail "${variants[$i]}: heartbeat exchanges failed"
    done
    snapshot_now "${port[@]}"
    echo "clients done after $(($(now_ms) - DISCONNECT_STARTED)) ms (grace ${grace} ms); before the grace:"
    for v in "${variants[@]}"; do
        ports+=("${port[$v]}")
    done
    leaks_before_grace "$(earliest_stamp "$TMP"/*.out)" "$grace" "$n" "${ports[@]}"
}
