#!/usr/bin/env bash
# A local user tries to blind autoclosed by cost: his processes (run as nobody) hold thousands of
# descriptors each, some of them undumpable (so that /proc shows them as root's), and one keeps
# making half-closed connections on a watched port. Each new socket is looked for, and reading his
# tables costs the daemon a readlinkat per descriptor, which its scan budget then pays for by
# waiting (200 times the scan's CPU time: a minute or more here). The wait must fall on his
# sockets only: the daemon scans each socket's user's processes first, each user on a budget of
# its own, so root's leak on the other watched port is still reclaimed within its grace and a few
# intervals. (One budget for the whole host made root wait as long as the attacker's scans cost.)
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
need_root "processes of another user"

HOGS=8
FDS=15000
GRACE=1000
INTERVAL=200
LOG="$TMP/daemon.log"

open_to_all "$TMP/nobody"
for i in $(seq $HOGS); do
    undumpable=()
    [ $((i % 2)) -eq 0 ] || undumpable=(--undumpable)
    start_bg "hog$i" "${UNPRIVILEGED[@]}" "$FIXTURES/fd_hog" --fds $FDS "${undumpable[@]}"
done
hport=$(pick_port)
start_bg churn "${UNPRIVILEGED[@]}" "$FIXTURES/fd_hog" --fds $FDS --port "$hport" \
    --port-file "$TMP/nobody/churn.port" --every-ms 200
for name in $(seq -f hog%g $HOGS) churn; do
    wait_until 10000 grep -q '^ready' "$TMP/$name.out" || fail "$name did not start: $(cat "$TMP/$name.err")"
done
held=$(cat "$TMP"/hog*.out "$TMP/churn.out" | sed -n 's/^ready fds=//p' | awk '{ s += $1 } END { print s }')
echo "  nobody's $((HOGS + 1)) processes hold $held descriptors; one makes a half-closed connection on port $hport every 200 ms"

start_bg srv "$FIXTURES/mos_server" --style read --port "$(pick_port "$hport")" --port-file "$TMP/srv.port"
sport=$(await_port srv)
start_daemon daemon --ports "$hport,$sport" --grace-ms $GRACE --interval-ms $INTERVAL \
    --log debug --log-file "$LOG"

# The attack works: a scan through nobody's tables, and a long wait after it. Its figures, by the
# daemon's debug lines: "scan pid=any|user=U processes=P fds=F cpu_us=C next_in_ms=W".
heavy() {
    awk -v fds=$((held / 2)) '/: scan / {
            for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
            if (v["fds"] >= fds && v["next_in_ms"] >= 10000) found = 1
        } END { exit !found }' "$LOG"
}
wait_until 15000 heavy || fail "no scan read nobody's tables and waited 10 s after: the attack did not take"
grep ': scan ' "$LOG" | awk -v fds=$((held / 2)) '{ for (i = 1; i <= NF; i++) if ($i ~ /^fds=/ && substr($i, 5) + 0 >= fds) print "    " $0 }'

t0=$(now_ms)
client root --port "$sport" --count 1 || fail "client exchange with root's server failed"
wait_until $((GRACE + 5 * INTERVAL + 1500)) clients_settled "$sport" root || true
took=$(($(now_ms) - t0))
require_settled "$sport" "root's leak was not reclaimed within $((GRACE + 5 * INTERVAL + 1500)) ms while nobody's tables are dear to scan" root
echo "  root's leak reclaimed $took ms after it was made"
grep -E ': scan user=0 ' "$LOG" | tail -n 2 | sed 's/^/    /'
stop_daemon daemon
pass "root's leak reclaimed in $took ms beside nobody's $held descriptors and churn"
