#!/usr/bin/env bash
# A local user tries to use up autoclosed's takers with his subordinate ids. A taker stuck on one of
# his files holds his processes back, so that one user costs one taker of the 16 at most; but a
# user with a subuid range (newuidmap) has 65,536 real uids of his own, and the hold was by uid:
# 16 of them, each doing the FUSE swap of t_daemon_fuse_freeze, took every taker for good and no
# one's leak was reclaimed any more. The hold is by user: the owner of the user namespace such ids
# live in. Here nobody owns a user namespace that root has given the ids 100000-165535, and 17 of
# them (one more than there are takers) each swap a FUSE file onto a half-closed socket's number:
# one taker is stuck, the 16 others are held in one line, and root's leak, made meanwhile, is
# reclaimed.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
need_root "mounting a FUSE file system, and a user namespace of another user's"
[ -c /dev/fuse ] || skip "no /dev/fuse here"
{ command -v nsenter && command -v unshare; } >/dev/null || skip "no nsenter/unshare"

N=17
GRACE=1500 # long enough to swap after the daemon has found every socket
INTERVAL=100
LOG="$TMP/daemon.log"
STATS="$TMP/stats.prom"
nobody=$(id -u nobody)

fuse_stall_up

# nobody's user namespace; root maps 65,536 ids into it, as newuidmap does for a subuid range.
start_bg ns "${UNPRIVILEGED[@]}" unshare -U sleep 120
wait_until 2000 main_pid ns >/dev/null || fail "unshare did not start"
nspid=$(main_pid ns)
if ! wait_until 2000 bash -c "[ \"\$(readlink /proc/$nspid/ns/user)\" != \"\$(readlink /proc/self/ns/user)\" ]"; then
    skip "nobody cannot make a user namespace here: $(cat "$TMP/ns.err")"
fi
echo "0 100000 65536" >"/proc/$nspid/uid_map"
echo "0 100000 65536" >"/proc/$nspid/gid_map"

start_bg srv "$FIXTURES/mos_server" --style read --port "$(pick_port)" --port-file "$TMP/srv.port"
sport=$(await_port srv)
used=("$sport")
ports=()
for i in $(seq $N); do
    p=$(pick_port "${used[@]}")
    used+=("$p")
    ports+=("$p")
    start_bg "h$i" nsenter -t "$nspid" -U -S "$i" -G "$i" "$FIXTURES/fuse_swap" --port "$p" \
        --port-file "$TMP/nobody/h$i.port" --file "$TMP/mnt/file" --trigger "$TMP/nobody/swap"
done
for i in $(seq $N); do
    wait_until 5000 has_lines 1 '^leaking fd=' "$TMP/h$i.out" ||
        fail "holder $i did not leak: $(cat "$TMP/h$i.err")"
done
h1=$(main_pid h1)
echo "  $N holders, uids $(awk '/^Uid:/ { print $2 }' "/proc/$h1/status") and up, in nobody's" \
    "user namespace ($(readlink "/proc/$nspid/ns/user"))"

start_daemon daemon --ports "$(IFS=,; echo "${ports[*]},$sport")" --grace-ms $GRACE \
    --interval-ms $INTERVAL --log debug --log-file "$LOG" --stats-file "$STATS"
# shellcheck disable=SC2317 # called by wait_until
found() { [ "$(grep -c '^autoclosed_close_wait{' "$STATS" 2>/dev/null)" -ge "$N" ]; }
wait_until 5000 found || fail "the daemon did not find every holder's socket:"$'\n'"$(cat "$STATS")"
touch "$TMP/nobody/swap"
for i in $(seq $N); do
    wait_until 2000 grep -q '^moved' "$TMP/h$i.out" || fail "holder $i did not swap"
done

wait_until $((GRACE + 3000)) grep -q '^flush pid=' "$TMP/fuse.out" ||
    fail "nothing closed the FUSE file"
t0=$(now_ms)
client root --port "$sport" --count 1 || fail "client exchange with root's server failed"
wait_until $((GRACE + 10 * INTERVAL + 4000)) clients_settled "$sport" root || true
flushes=$(grep -c '^flush pid=' "$TMP/fuse.out")
echo "  FUSE files closed (each a taker stuck for good): $flushes"
require_settled "$sport" "root's leak was not reclaimed while nobody's subuids hold takers" root
echo "  root's leak reclaimed $(($(now_ms) - t0)) ms after it was made"
assert_eq 1 "$flushes" "takers stuck on nobody's files"
wait_until 3000 grep -q "no process of user $nobody is acted on until it ends" "$LOG" ||
    fail "no line says that nobody's processes are held"
grep -m1 "no process of user $nobody" "$LOG" | sed 's/^/  /'

stop_daemon daemon
fuse_down
pass "$N subuids of one user's: one taker stuck, the rest held, root's leak reclaimed"
