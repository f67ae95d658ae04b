#!/usr/bin/env bash
# AUTOCLOSE_DISABLE=1 makes the library inert (README: "every wrapped call goes straight
# through"), the switch an operator reaches for when the shim is suspected: it must also hold back
# the TCP hygiene options, SO_REUSEADDR and the stats file, and start no thread, whatever other
# AUTOCLOSE_* variables the service unit still sets.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=hygiene_lib.sh
. "$(dirname "$0")/hygiene_lib.sh"
need_shim

DEFAULT_LINGER2=$(cat /proc/sys/net/ipv4/tcp_fin_timeout)
mkdir "$TMP/stats"
SETTINGS=(LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_DISABLE=1 'AUTOCLOSE_KEEPALIVE=30,5,3'
    AUTOCLOSE_USER_TIMEOUT_MS=4321 AUTOCLOSE_FIN_WAIT2_S=2 AUTOCLOSE_REUSEADDR=1
    AUTOCLOSE_STATS_FILE="$TMP/stats/stats-%p.prom")
KERNEL_DEFAULTS=(keepalive=0 idle=7200 intvl=75 cnt=9 user_timeout_ms=0
    "linger2_s=$DEFAULT_LINGER2")

start_bg srv "${SETTINGS[@]}" "$FIXTURES/sockopt_probe" --listen 127.0.0.1 --count 2 \
    --hold-ms 3000 --port-file "$TMP/srv.port"
port=$(await_port srv)
start_bg cli "${SETTINGS[@]}" "$FIXTURES/sockopt_probe" --connect 127.0.0.1 --port "$port" \
    --count 2 --hold-ms 3000
wait_until 5000 probe_ok srv accepted 2 || fail "the probe accepted nothing"
wait_until 5000 probe_ok cli connected 2 || fail "the probe connected nothing"
# shellcheck disable=SC2119 # no port to keep clear of
start_bg listener "${SETTINGS[@]}" "$FIXTURES/plain_listener" --port "$(pick_port)"
wait_until 5000 has_lines 1 '^listening ' "$TMP/listener.out" || fail "plain_listener did not start"

problems=()
probe_ok srv accepted 2 "${KERNEL_DEFAULTS[@]}" ||
    problems+=("accepted sockets changed: $(probe_lines srv accepted | head -n 1)")
probe_ok cli connected 2 "${KERNEL_DEFAULTS[@]}" ||
    problems+=("connected sockets changed: $(probe_lines cli connected | head -n 1)")
grep -q 'reuseaddr=0' "$TMP/listener.out" ||
    problems+=("SO_REUSEADDR set before bind: $(head -n 1 "$TMP/listener.out")")
# The stats file would be written within a second of the first count.
sleep 1.5
for name in srv cli listener; do
    pid=$(main_pid "$name")
    threads=$(cat /proc/"$pid"/task/*/comm 2>/dev/null | grep -c '^autoclose$' || true)
    [ "$threads" -eq 0 ] || problems+=("$name (pid $pid) runs the shim's autoclose thread")
    [ ! -s "$TMP/$name.err" ] || problems+=("$name wrote to stderr: $(cat "$TMP/$name.err")")
done
files=$(find "$TMP/stats" -type f -printf '%f ')
[ -z "$files" ] || problems+=("stats files written: $files")

echo "AUTOCLOSE_DISABLE=1 with every hygiene variable and a stats file set:"
echo "  accepted:  $(probe_lines srv accepted | head -n 1)"
echo "  connected: $(probe_lines cli connected | head -n 1)"
echo "  listener:  $(head -n 1 "$TMP/listener.out")"
echo "  stats dir: ${files:-empty}"
if [ ${#problems[@]} -gt 0 ]; then
    fail "the disabled library still acted:$(printf '\n  - %s' "${problems[@]}")"
fi
pass "disabled: kernel defaults on accepted and connected sockets, no SO_REUSEADDR, no stats\
 file, no thread"
