#!/usr/bin/env bash
# Silent peers: each connects, half-closes at once and never sends anything again, holding its
# socket open and only listening. The server's FIN must reach them a grace after the half-close,
# not before, and the connection must end cleanly (server CLOSE_WAIT gone, peer in TIME_WAIT).
#   read     mos_server reads the heartbeat, answers, reads the EOF and leaks: the read path.
#            The periodic sweep is off here, so "found=read" cannot come from a sweep tick that
#            happened to fall between the FIN and the read.
#   ignored  a server that accepts and never touches the socket (the peer sends nothing, so no
#            unread data holds the shim back): only the sweep can find it.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

GRACE=300
SWEEP=200
N=3
start_bg read LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=$GRACE AUTOCLOSE_SWEEP_MS=0 \
    AUTOCLOSE_LOG_FILE="$TMP/read.log" "$FIXTURES/mos_server" --style read \
    --port-file "$TMP/read.port"
start_bg ignored LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=$GRACE \
    AUTOCLOSE_SWEEP_MS=$SWEEP AUTOCLOSE_LOG_FILE="$TMP/ignored.log" "$FIXTURES/neglect_server" \
    --case ignore --port-file "$TMP/ignored.port"
declare -A port
port[read]=$(await_port read)
port[ignored]=$(await_port ignored)

pids=()
names=()
for i in $(seq 1 "$N"); do
    timeout 20 python3 "$SCRIPT_FIXTURES/reply_client.py" --port "${port[read]}" \
        --expect heartbeat --wait 5 >"$TMP/read-$i.out" 2>"$TMP/read-$i.err" &
    pids+=("$!")
    names+=("read-$i")
    timeout 20 python3 "$SCRIPT_FIXTURES/reply_client.py" --port "${port[ignored]}" \
        --no-request --expect none --wait 5 >"$TMP/ignored-$i.out" 2>"$TMP/ignored-$i.err" &
    pids+=("$!")
    names+=("ignored-$i")
done
for i in "${!pids[@]}"; do
    rc=0
    wait "${pids[$i]}" || rc=$?
    echo "${names[$i]}: $(grep '^reply_bytes=' "$TMP/${names[$i]}.out" || echo 'no result')" \
        "(exit $rc)"
    [ $rc -ne 3 ] || fail "${names[$i]}: wrong reply"
    [ $rc -eq 0 ] || fail "${names[$i]}: the server never closed its side within 5 s"
done

for kind in read ignored; do
    mapfile -t eofs < <(sed -n 's/.* eof_after_ms=\([0-9]*\).*/\1/p' "$TMP/$kind"-*.out)
    echo "$kind: peers saw the server's FIN ${eofs[*]} ms after their half-close (grace $GRACE)"
    for ms in "${eofs[@]}"; do
        # Acting before the grace is a bug; the timer may wake a little early in wall time.
        [ "$ms" -ge $((GRACE - 20)) ] || fail "$kind: FIN after ${ms} ms, before the grace"
        [ "$ms" -le $((GRACE + SWEEP + 1000)) ] || fail "$kind: FIN only after ${ms} ms"
    done
done

mapfile -t read_clients < <(printf 'read-%s\n' $(seq 1 "$N"))
mapfile -t ignored_clients < <(printf 'ignored-%s\n' $(seq 1 "$N"))
wait_until 2000 clients_settled "${port[read]}" "${read_clients[@]}" || true
wait_until 2000 clients_settled "${port[ignored]}" "${ignored_clients[@]}" || true
echo "read:    $(clients_report "${port[read]}" "${read_clients[@]}");" \
    "found: $(found_summary "$TMP/read.log")"
echo "ignored: $(clients_report "${port[ignored]}" "${ignored_clients[@]}");" \
    "found: $(found_summary "$TMP/ignored.log")"
require_settled "${port[read]}" "read: not ended cleanly" "${read_clients[@]}"
require_settled "${port[ignored]}" "ignored: not ended cleanly" "${ignored_clients[@]}"
assert_eq "read=0 ready=0 sweep=$N" "$(found_summary "$TMP/ignored.log")" "ignored: how found"
assert_eq "read=$N ready=0 sweep=0" "$(found_summary "$TMP/read.log")" "read: how found"
pass "silent half-closed peers got the server's FIN a grace later (read path and sweep);\
 peers in TIME_WAIT"
