#!/usr/bin/env bash
# t_daemon_exec_stuck_many, in network namespaces: 12 of nobody's processes, each alone in a
# namespace of his own (unshare -rn) and stuck in execve (see t_daemon_exec_stuck), then root's
# "container" (unshare -n) with a leaking server on the watched port, made after them. The look
# for network namespaces (--ports alone: every process) reads which namespace each process is in,
# which waits while it execs. It was given up at the first stuck process and made again 5 s later,
# one stuck process per look, so root's namespace, met after all of them, was found only once
# every one of them had been left out (150 of them: 50 s). Now the processes of a user with one
# left out are met after everyone else's: root's namespace is found at the next look (after at
# most two of his are named), and its leak reclaimed within its grace and the looks' 5 s.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
need_root "mounting a FUSE file system, namespaces of root's and processes of another user"
[ -c /dev/fuse ] || skip "no /dev/fuse here"
unshare -n true 2>/dev/null || skip "this sandbox lets no network namespace be made"
"${UNPRIVILEGED[@]}" unshare -rn true 2>/dev/null ||
    skip "users cannot make namespaces of their own here (user namespaces closed to them)"

N=12
GRACE=1000
INTERVAL=200
LOG="$TMP/daemon.log"

fuse_stall_up

# shellcheck disable=SC2119 # no port to keep clear of
port=$(pick_port)
# The daemon first, then nobody's processes, stuck, then root's container. From the execs on
# nothing here reads every process's /proc/PID/stat (pgrep, ps: start_daemon and stop_daemon do),
# which would wait as long as they do: the daemon's pid comes from its start-up line.
start_bg daemon "$AUTOCLOSED" --ports "$port" --grace-ms $GRACE --interval-ms $INTERVAL \
    --log debug --log-file "$LOG"
await_watching "$LOG"
dpid=$(sed -n 's/.* autoclosed\[\([0-9]*\)\]: autoclosed .*: watching .*/\1/p' "$LOG")
for i in $(seq $N); do
    # shellcheck disable=SC2016 # $0 and $@ are sh's
    start_bg "s$i" "${UNPRIVILEGED[@]}" unshare -rn sh -c 'ip link set lo up && exec "$0" "$@"' \
        "$FIXTURES/exec_stuck" --port "$port" --port-file "$TMP/nobody/s$i.port" \
        --file "$TMP/mnt/file"
done
pids=()
for i in $(seq $N); do
    wait_until 5000 grep -q '^leaking fd=' "$TMP/s$i.out" || fail "stuck process $i did not start"
    pids+=("$(sed -n 's/^leaking fd=[0-9]* pid=//p' "$TMP/s$i.out")")
done
# shellcheck disable=SC2317 # called through wait_until
all_stuck() { [ "$(grep -c '^flush pid=' "$TMP/fuse.out")" -ge $N ]; }
wait_until 5000 all_stuck || fail "not every exec waits for its FLUSH"
echo "  $N processes of nobody stuck in execve, each in a namespace of his (pids ${pids[0]}..${pids[-1]})"

named0=$(count_lines 'cannot read pid=' "$LOG")
# shellcheck disable=SC2016 # $0 and $@ are sh's
start_bg root_srv unshare -n sh -c 'ip link set lo up && exec "$0" "$@"' \
    "$FIXTURES/mos_server" --style read --port "$port" --port-file "$TMP/root_srv.port"
wait_for_file "$TMP/root_srv.port" 5000 || fail "root's server published no port"
# Its pid: the child of start_bg's timeout wrapper (unshare and sh exec into the server), read
# from the wrapper's children file, which does not wait (pgrep would).
rpid=$(cat "/proc/${BG_PIDS[root_srv]}/task/${BG_PIDS[root_srv]}/children")
rpid=${rpid%% *}
t0=$(now_ms)
timeout 30 nsenter -t "$rpid" -n "$FIXTURES/ncs_client" --port "$port" --count 2 \
    >"$TMP/root.out" 2>"$TMP/root.err" || fail "client of root's server failed"
# shellcheck disable=SC2317 # called through wait_until
reclaimed_in_root() { [ "$(count_shutdowns "$LOG" "$rpid")" -ge 2 ]; }
wait_until $((GRACE + 15000)) reclaimed_in_root ||
    fail "root's leak was not reclaimed beside $N stuck processes: $(grep -c 'cannot read pid=' "$LOG") named stuck"
echo "  root's leak (pid $rpid) reclaimed $(($(now_ms) - t0)) ms after it was made;" \
    "$(grep -c 'cannot read pid=' "$LOG") stuck processes named so far"
assert_eq 0 "$(nsenter -t "$rpid" -n ss -Htn state close-wait "( sport = :$port )" | wc -l)" \
    "  CLOSE_WAIT sockets left in root's namespace"

# From root's container's start until its namespace was found, how many of nobody's were named
# stuck (the old order met all those not yet left out first).
before=$(($(sed -n "/: netns=[0-9]* found (pid=$rpid, user 0)/q; /cannot read pid=/p" "$LOG" | wc -l) - named0))
echo "  root's namespace found after $before more of nobody's stuck processes were named"
[ "$before" -le 2 ] || fail "root's namespace was found only after $before of nobody's stuck processes"
kill -TERM "$dpid"
wait_until 2000 gone "$dpid" || fail "autoclosed still running 2 s after SIGTERM"
fuse_down
for p in "${pids[@]}"; do
    wait_until 3000 gone "$p" || fail "process $p still waits once the FUSE connection is aborted"
done
pass "root's container's leak reclaimed beside $N processes of nobody stuck in execve, each in a\
 namespace of his own"
