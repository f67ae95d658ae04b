# shellcheck shell=bash
# Shared by the t_daemon_*.sh tests, sourced after lib.sh: autoclosed (the daemon that reclaims
# other processes' half-closed connections) started, stopped and run once, and what it logs and
# counts read back.

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# The daemon under test: AUTOCLOSED (make integration passes it), else autoclosed beside the
# library under test (AUTOCLOSE_LIB may be a list: the sanitizer suites put their runtime in it).
daemon_default() {
    local libs lib
    read -ra libs <<<"$AUTOCLOSE_LIB"
    for lib in "${libs[@]}"; do
        if [ "${lib##*/}" = libautoclose.so ]; then
            echo "$(dirname "$lib")/autoclosed"
            return
        fi
    done
    echo "$REPO/build/autoclosed"
}
: "${AUTOCLOSED:=$(daemon_default)}"

need_daemon() {
    if [ ! -f "$AUTOCLOSED" ] || [ ! -x "$AUTOCLOSED" ]; then
        fail "AUTOCLOSED='$AUTOCLOSED' is not a built autoclosed (make build/autoclosed)"
    fi
}

# need_root WHY: skips unless this runs as root.
need_root() { [ "$(id -u)" -eq 0 ] || skip "needs root: $1"; }

# The Makefile's VERSION, the one place it is set.
make_version() { sed -n 's/^VERSION[[:space:]]*:*=[[:space:]]*//p' "$REPO/Makefile" | head -n 1; }

# start_daemon NAME ARGS...: autoclosed ARGS in the background (output in $TMP/NAME.out and
# .err, stopped with the rest on exit); its own pid in DAEMON_PID.
start_daemon() {
    local name=$1
    shift
    start_bg "$name" "$AUTOCLOSED" "$@"
    wait_until 2000 main_pid "$name" >/dev/null || fail "autoclosed ($name) did not start"
    # shellcheck disable=SC2034 # read by the tests
    DAEMON_PID=$(main_pid "$name")
}

# await_watching LOG: the daemon has resolved its selection and said so in its start-up line.
# start_daemon returns once the process exists; a test that then ends a selected process must wait
# for this first (under ThreadSanitizer the daemon takes a second to get that far).
await_watching() {
    wait_until 10000 has_lines 1 ': watching ' "$1" || fail "autoclosed said no start-up line in 10 s"
}

# alive PID: the process exists and is not a zombie.
alive() {
    local state
    state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}
gone() { ! alive "$1"; }

# stop_daemon NAME [SIGNAL]: SIGTERM (or SIGNAL) to the daemon NAME; it must exit with status 0
# within two seconds. Sets STOP_MS to how long it took.
stop_daemon() {
    local name=$1 sig=${2:-TERM} pid t0 rc=0
    pid=$(main_pid "$name") || fail "autoclosed ($name) is not running any more"
    t0=$(now_ms)
    kill "-$sig" "$pid"
    wait_until 2000 gone "$pid" || fail "autoclosed ($name) still running 2 s after SIG$sig"
    STOP_MS=$(($(now_ms) - t0))
    wait_bg "$name" || rc=$?
    echo "  autoclosed ($name): SIG$sig, exited with status $rc after ${STOP_MS} ms"
    [ "$rc" -eq 0 ] || fail "autoclosed ($name) exited with status $rc on SIG$sig, not 0"
}

# run_daemon NAME ARGS...: autoclosed ARGS in the foreground, bounded by 30 s; its status in
# RUN_RC, its output in $TMP/NAME.out and .err, and how long it ran in RUN_MS. Never trips set -e.
# shellcheck disable=SC2034 # RUN_RC and RUN_MS are read by the tests
run_daemon() {
    local name=$1 t0
    shift
    t0=$(now_ms)
    RUN_RC=0
    timeout 30 "$AUTOCLOSED" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" || RUN_RC=$?
    RUN_MS=$(($(now_ms) - t0))
}

# shutdowns FILE [PID]: the daemon's action lines in FILE (for process PID only, if given).
shutdowns() {
    [ -e "$1" ] || return 0
    grep -E "autoclosed\[[0-9]+\]: shutdown pid=${2:-[0-9]+} " "$1" || true
}
count_shutdowns() { shutdowns "$@" | wc -l; }

# has_shutdowns N FILE [PID]: at least N action lines; for wait_until.
has_shutdowns() { [ "$(count_shutdowns "${@:2}")" -ge "$1" ]; }

# check_actions FILE PID PORT COMM GRACE CLIENT...: every action line for PID in FILE has the
# documented form ("<UTC time> autoclosed[<pid>]: shutdown pid=<PID> fd=<N>
# local=127.0.0.1:<PORT> peer=127.0.0.1:<port> since_fin_ms=<ms> comm="<COMM>""), a peer port one
# of the named clients' and since_fin_ms at least GRACE. Sets ACTED_FDS to the numbers acted on.
check_actions() {
    local file=$1 pid=$2 port=$3 comm=$4 grace=$5 line peer since
    shift 5
    local peers form="^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z autoclosed\[[0-9]+\]:\
 shutdown pid=$pid fd=([0-9]+) local=127\.0\.0\.1:$port peer=127\.0\.0\.1:([0-9]+)\
 since_fin_ms=([0-9]+) comm=\"$comm\"\$"
    peers=" $(ports_of_clients "$@" | tr '\n' ' ') "
    ACTED_FDS=()
    while read -r line; do
        [[ $line =~ $form ]] || fail "an action line not of the documented form: '$line'"
        peer=${BASH_REMATCH[3]} since=${BASH_REMATCH[4]}
        [[ $peers == *" $peer "* ]] || fail "acted on a connection of no client of this test: '$line'"
        [ "$since" -ge "$grace" ] || fail "acted ${since} ms after the FIN, within the grace: '$line'"
        ACTED_FDS+=("${BASH_REMATCH[2]}")
    done < <(shutdowns "$file" "$pid")
}

# numbers_still_open PID FD...: each reclaimed number is still open in the process, holding a
# socket (the daemon shuts the connection down; the descriptor stays the program's own).
numbers_still_open() {
    local pid=$1 fd holds
    shift
    for fd in "$@"; do
        holds=$(fd_holds "$pid" "$fd")
        case $holds in
        socket | tcp) ;;
        *) fail "fd $fd of process $pid holds '$holds' after the reclaim, not the socket" ;;
        esac
    done
    echo "  fds $* of process $pid: still open, each a socket"
}

# proc_start PID: the process's start time (clock ticks after boot): with the pid, its identity.
proc_start() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $20 }'; }

# prom_sum FILE METRIC [LABEL=VALUE...]: the sum of the values of METRIC's series in the
# Prometheus text FILE that carry every LABEL="VALUE" given (other labels may be there too), or
# "none" when no series matches (or the file does not exist yet).
prom_sum() {
    local file=$1 metric=$2
    shift 2
    [ -e "$file" ] || {
        echo none
        return
    }
    awk -v m="$metric" -v want="$*" '
        BEGIN { n = split(want, w, " ") }
        /^#/ || NF == 0 { next }
        {
            line = $0; labels = ""
            if (match(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*/) == 0) next
            name = substr(line, 1, RLENGTH); rest = substr(line, RLENGTH + 1)
            if (name != m) next
            if (substr(rest, 1, 1) == "{") {
                close_at = index(rest, "}")
                labels = substr(rest, 1, close_at); rest = substr(rest, close_at + 1)
            }
            for (k = 1; k <= n; k++) {
                eq = index(w[k], "=")
                want_label = substr(w[k], 1, eq - 1) "=\"" substr(w[k], eq + 1) "\""
                if (index(labels, "{" want_label) == 0 && index(labels, "," want_label) == 0) next
            }
            split(rest, v, " ")
            sum += v[1]; found = 1
        }
        END { if (found) print sum; else print "none" }' "$file"
}

# prom_is FILE VALUE METRIC [LABEL=VALUE...]: for wait_until.
prom_is() { [ "$(prom_sum "$1" "${@:3}")" = "$2" ]; }

# ss_close_wait_of PID PORT: how many server sockets on PORT in CLOSE_WAIT process PID holds, as
# ss -p tells (root sees every process's).
ss_close_wait_of() {
    ss -Htnp state close-wait "( sport = :$2 )" | grep -c "pid=$1," || true
}

# not_permitted_lines FILE PID: the lines naming CAP_SYS_PTRACE for process PID.
not_permitted_lines() {
    [ -e "$1" ] || return 0
    grep 'CAP_SYS_PTRACE' "$1" | grep -Ew -- "(pid=)?$2" || true
}

# maps_lib PID: the library under test is mapped into process PID (the loader preloaded it).
maps_lib() {
    local libs lib
    read -ra libs <<<"$AUTOCLOSE_LIB"
    for lib in "${libs[@]}"; do
        [ "${lib##*/}" = libautoclose.so ] || continue
        grep -qF -- "$(readlink -f -- "$lib")" "/proc/$1/maps" && return 0
    done
    return 1
}

# UNPRIVILEGED: a command prefix: what follows runs as nobody, with no capability to keep or regain.
# shellcheck disable=SC2034 # used by the tests
UNPRIVILEGED=(setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all
    --bounding-set=-all)

# open_to_all DIR: DIR (under $TMP) reachable by another user, for a program run as nobody.
open_to_all() {
    chmod 0711 "$TMP"
    mkdir -p "$1"
    chmod 0777 "$1"
}

# reclaim_leaks_of PID PORT COMM WHAT [CLIENT-OPTION...]: N (the caller's) client sessions leak on
# PORT (proved with ss), then autoclosed --pid PID (GRACE, INTERVAL, log in LOG) reclaims them:
# each peer settles in TIME_WAIT, each action line has the documented form for process COMM, and
# each number stays open in the process. TOOK says how long after the daemon started.
# shellcheck disable=SC2153 # N, GRACE, INTERVAL and LOG are set by the test that calls it
reclaim_leaks_of() {
    local pid=$1 port=$2 comm=$3 what=$4 started
    shift 4
    client leak --port "$port" --count "$N" "$@" || fail "client exchanges failed"
    wait_until 3000 leaking "$port" "$N" leak || true
    echo "without the daemon: $(report_states "$port" leak)"
    assert_eq "$N" "$(count_state close-wait "$port" server)" "server sockets in CLOSE_WAIT"
    started=$(now_ms)
    start_daemon daemon --pid "$pid" --grace-ms "$GRACE" --interval-ms "$INTERVAL" --log-file "$LOG"
    wait_until $((GRACE + 5000)) clients_settled "$port" leak || true
    TOOK=$(($(now_ms) - started))
    echo "${TOOK} ms after autoclosed started: $(clients_report "$port" leak)"
    require_settled "$port" "autoclosed did not reclaim the $what's leaks" leak
    wait_until 2000 has_shutdowns "$N" "$LOG" "$pid" || true
    check_actions "$LOG" "$pid" "$port" "$comm" "$GRACE" leak
    assert_eq "$N" "${#ACTED_FDS[@]}" "action lines"
    numbers_still_open "$pid" "${ACTED_FDS[@]}"
}

# fuse_stall_up: a FUSE mount at $TMP/mnt whose server (tests/fixtures/fuse_stall) never answers,
# $TMP/nobody open to all; on exit (fuse_down) the FUSE connection is aborted first, so that any
# request waiting on it fails and an exec stuck on it goes on, then the server's process group is
# killed and the mount removed. Skips where FUSE cannot be mounted. No pgrep: it reads
# /proc/PID/stat, which waits for a process stuck in an exec.
fuse_stall_up() {
    FUSE_CTL=/sys/fs/fuse/connections
    FUSE_CTL_MOUNTED=
    trap 'fuse_down; cleanup' EXIT
    open_to_all "$TMP/nobody"
    mkdir "$TMP/mnt"
    start_bg fuse "$FIXTURES/fuse_stall" "$TMP/mnt"
    if ! wait_until 5000 grep -q '^ready' "$TMP/fuse.out"; then
        grep -q 'fuse_stall: \(mount\|/dev/fuse\)' "$TMP/fuse.err" && skip "$(head -n 1 "$TMP/fuse.err")"
        fail "the FUSE server did not start"
    fi
}

# shellcheck disable=SC2317 # called by the trap and by tests
fuse_down() {
    local dev
    if mountpoint -q "$TMP/mnt" 2>/dev/null; then
        dev=$(mountpoint -d "$TMP/mnt" | cut -d: -f2)
        if [ ! -e "$FUSE_CTL/$dev/abort" ] && ! mountpoint -q "$FUSE_CTL" &&
            mount -t fusectl fusectl "$FUSE_CTL"; then
            FUSE_CTL_MOUNTED=yes
        fi
        [ ! -e "$FUSE_CTL/$dev/abort" ] || echo 1 >"$FUSE_CTL/$dev/abort"
    fi
    [ -z "${BG_PIDS[fuse]:-}" ] || kill -KILL -- "-${BG_PIDS[fuse]}" 2>/dev/null || true
    umount -l "$TMP/mnt" 2>/dev/null || true
    [ -z "$FUSE_CTL_MOUNTED" ] || umount "$FUSE_CTL" 2>/dev/null || true
    FUSE_CTL_MOUNTED=
}
