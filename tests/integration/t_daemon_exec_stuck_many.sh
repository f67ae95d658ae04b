#!/usr/bin/env bash
# A local user tries to blind autoclosed by numbers: 24 of his processes (nobody's) are stuck in
# execve (see t_daemon_exec_stuck), each holding a half-closed connection on a watched port, all
# with pids below root's server. Each look wants his sockets, so it reads his processes, and a
# scanner stuck in one of them was killed and that one left out, the look given up: one process
# per look, so root's leak waited until every one of his had been met (24 looks and more; past
# the 64 the daemon remembered, for good). Now a look goes on without the stuck process in a new
# scanner for up to 2 s, the blame is for 250 ms in one process, and the processes of a user with
# one left out go after everyone else's: root's leak is reclaimed within its grace and a few s.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
need_root "mounting a FUSE file system, and processes of another user"
[ -c /dev/fuse ] || skip "no /dev/fuse here"

N=24
GRACE=1000
INTERVAL=200
LOG="$TMP/daemon.log"

fuse_stall_up

# nobody's processes first (lower pids), then root's server, then the execs, then the daemon, so
# that it meets nobody's sockets only once they are stuck. From the execs on nothing here reads
# every process's /proc/PID/stat (pgrep, ps: start_daemon and stop_daemon do), which would wait as
# long as they do: the daemon's pid comes from its start-up line.
ports=()
for i in $(seq $N); do
    p=$(pick_port "${ports[@]}")
    ports+=("$p")
    start_bg "s$i" "${UNPRIVILEGED[@]}" "$FIXTURES/exec_stuck" --port "$p" \
        --port-file "$TMP/nobody/s$i.port" --file "$TMP/mnt/file" --trigger "$TMP/nobody/go"
done
pids=()
for i in $(seq $N); do
    wait_until 5000 grep -q '^leaking fd=' "$TMP/s$i.out" || fail "stuck process $i did not start"
    pids+=("$(sed -n 's/^leaking fd=[0-9]* pid=//p' "$TMP/s$i.out")")
done
start_bg srv "$FIXTURES/mos_server" --style read --port "$(pick_port "${ports[@]}")" \
    --port-file "$TMP/srv.port"
sport=$(await_port srv)
touch "$TMP/nobody/go"
# shellcheck disable=SC2317 # called by wait_until
stuck() { [ "$(grep -c '^flush pid=' "$TMP/fuse.out")" -ge "$N" ]; }
wait_until 5000 stuck || fail "not every exec waits for its FLUSH"
echo "  $N processes of nobody stuck in execve (pids ${pids[0]}..${pids[-1]}), root's server above"
start_bg daemon "$AUTOCLOSED" --ports "$(IFS=,; echo "${ports[*]},$sport")" --grace-ms $GRACE \
    --interval-ms $INTERVAL --log debug --log-file "$LOG"
await_watching "$LOG"
dpid=$(sed -n 's/.* autoclosed\[\([0-9]*\)\]: autoclosed .*: watching .*/\1/p' "$LOG")
t0=$(now_ms)
client root --port "$sport" --count 1 || fail "client exchange with root's server failed"
wait_until $((GRACE + 6000)) clients_settled "$sport" root || true
require_settled "$sport" "root's leak was not reclaimed beside $N stuck processes" root
echo "  root's leak reclaimed $(($(now_ms) - t0)) ms after it was made;" \
    "$(grep -c 'cannot read pid=' "$LOG") stuck processes named so far"
grep -m1 'cannot read pid=' "$LOG" | sed 's/^/    /'

kill -TERM "$dpid"
wait_until 2000 gone "$dpid" || fail "autoclosed still running 2 s after SIGTERM"
fuse_down
for p in "${pids[@]}"; do
    wait_until 3000 gone "$p" || fail "process $p still waits once the FUSE connection is aborted"
done
pass "root's leak reclaimed beside $N processes of nobody stuck in execve below it"
