#!/usr/bin/env bash
# AUTOCLOSE_FIN_WAIT2_S bounds how long a connection the program closed waits in FIN_WAIT_2 for a
# peer that never sends its FIN: the NCS side of the legacy-MOS leak, whose sockets would
# otherwise sit there for tcp_fin_timeout (60 s by default). Counted per program, by the local
# ports it printed: a control program without the variable, closing at the same time, must
# still have all of its sockets in FIN_WAIT_2 when the bounded ones are gone. Both for
# connections the program connected (ncs_client) and for ones it accepted (sockopt_probe).
# The kernel keeps these FIN_WAIT_2 sockets in its TIME_WAIT table: should that table overflow
# meanwhile (other load), they vanish at once and the test cannot tell, so it says so (skip).
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=hygiene_lib.sh
. "$(dirname "$0")/hygiene_lib.sh"
need_shim

BOUND_S=2
N=5
LIMIT_MS=4000 # the bound plus room for a loaded machine
DEFAULT_S=$(cat /proc/sys/net/ipv4/tcp_fin_timeout)
[ "$DEFAULT_S" -ge 10 ] ||
    skip "tcp_fin_timeout is ${DEFAULT_S} s here: too short to tell a ${BOUND_S} s bound from it"

# ---- connected: the NCS closes, the legacy MOS never does ------------------------------------
# The MOS server runs without the shim: it leaks every connection in CLOSE_WAIT and never sends
# its FIN, so the NCS's sockets can only leave FIN_WAIT_2 by timing out.
start_bg mos "$FIXTURES/mos_server" --style thread --port-file "$TMP/mos.port"
port=$(await_port mos)
client control --port "$port" --count $N --parallel || fail "control client failed"
control_closed=$(now_ms)
# The client closes somewhere between these two instants; a slow exit (under a sanitizer, say)
# can put seconds between them. The upper bound counts from the later, the lower from the earlier.
started=$(now_ms)
timeout 60 env LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_FIN_WAIT2_S=$BOUND_S \
    "$FIXTURES/ncs_client" --port "$port" --count $N --parallel \
    >"$TMP/bounded.out" 2>"$TMP/bounded.err" || fail "bounded client failed"
closed=$(now_ms)
echo "NCS side, $N connections each, server never closes:"
# The peer may delay the ACK of a FIN a little: FIN_WAIT_1 until then. Waiting for all of them
# to be in FIN_WAIT_2 also keeps "none left" from passing before they ever got there.
wait_until 1000 client_is fin-wait-2 "$port" $N bounded ||
    tw_fail "the bounded client's sockets did not reach FIN_WAIT_2 after its close:" \
        "$(count_client fin-wait-1 "$port" bounded) in FIN_WAIT_1," \
        "$(count_client fin-wait-2 "$port" bounded) in FIN_WAIT_2"
echo "  $(($(now_ms) - closed)) ms after the close: bounded" \
    "FIN_WAIT_2=$(count_client fin-wait-2 "$port" bounded)," \
    "control FIN_WAIT_2=$(count_client fin-wait-2 "$port" control)"
wait_until 10000 client_is fin-wait-2 "$port" 0 bounded ||
    fail "bounded client: $(count_client fin-wait-2 "$port" bounded) sockets still in" \
        "FIN_WAIT_2 10 s after the close"
gone_ms=$(($(now_ms) - closed))
since_start_ms=$(($(now_ms) - started))
control_age=$(($(now_ms) - control_closed))
echo "  AUTOCLOSE_FIN_WAIT2_S=$BOUND_S: all $N gone from FIN_WAIT_2 after ${gone_ms} ms"
echo "  control (no variable), closed ${control_age} ms ago:" \
    "FIN_WAIT_2=$(count_client fin-wait-2 "$port" control) (system bound ${DEFAULT_S} s)"
[ "$gone_ms" -le $LIMIT_MS ] || fail "took ${gone_ms} ms, more than ${LIMIT_MS} ms"
# Much sooner than the bound would mean something else ended them (a reset, say).
[ "$since_start_ms" -ge $((BOUND_S * 1000 - 500)) ] ||
    tw_fail "gone ${since_start_ms} ms after the client started: sooner than the ${BOUND_S} s\
 bound can explain"
client_is fin-wait-2 "$port" $N control || tw_fail "the control client's sockets left FIN_WAIT_2"
assert_eq 0 "$(count_client time-wait "$port" bounded)" "  bounded sockets now in TIME_WAIT"
assert_eq 0 "$(count_client established "$port" bounded)" "  bounded sockets now established"
mapfile -t all_clients < <(client_ports control; client_ports bounded)
assert_eq $((2 * N)) "$(servers_in close-wait "$port" "${all_clients[@]}")" \
    "  server sockets still in CLOSE_WAIT (it never closes)"
connected_ms=$gone_ms

# ---- accepted: the server closes, its peers never do -----------------------------------------
# The peers hold their connections open (20 s, longer than the test) without a word; the probe
# servers close theirs after 300 ms and exit, leaving their sockets orphaned in FIN_WAIT_2.
start_bg srv_bounded LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_FIN_WAIT2_S=$BOUND_S \
    "$FIXTURES/sockopt_probe" --listen 127.0.0.1 --count $N --hold-ms 300 \
    --port-file "$TMP/srv_bounded.port"
start_bg srv_default LD_PRELOAD="$AUTOCLOSE_LIB" \
    "$FIXTURES/sockopt_probe" --listen 127.0.0.1 --count $N --hold-ms 300 \
    --port-file "$TMP/srv_default.port"
declare -A sport
for s in srv_bounded srv_default; do
    sport[$s]=$(await_port $s)
    client_bg "peers_$s" --port "${sport[$s]}" --count $N --parallel --no-message --hold-ms 20000
done
for s in srv_bounded srv_default; do
    wait_until 10000 has_lines 1 '^done$' "$TMP/$s.out" || fail "$s did not close its connections"
done
closed=$(now_ms)
mapfile -t bounded_peers < <(client_ports peers_srv_bounded)
mapfile -t default_peers < <(client_ports peers_srv_default)
wait_until 1000 server_peers_are fin-wait-2 "${sport[srv_bounded]}" $N "${bounded_peers[@]}" ||
    tw_fail "the bounded server's sockets did not reach FIN_WAIT_2 after its close"
probe_expect srv_bounded accepted $N linger2_s=$BOUND_S
probe_expect srv_default accepted $N linger2_s="$DEFAULT_S"
echo "MOS side, $N accepted connections each, peers never close:"
echo "  $(($(now_ms) - closed)) ms after the close: bounded" \
    "FIN_WAIT_2=$(servers_in fin-wait-2 "${sport[srv_bounded]}" "${bounded_peers[@]}")," \
    "control FIN_WAIT_2=$(servers_in fin-wait-2 "${sport[srv_default]}" "${default_peers[@]}")"
wait_until 10000 server_peers_are fin-wait-2 "${sport[srv_bounded]}" 0 "${bounded_peers[@]}" ||
    fail "bounded server: sockets still in FIN_WAIT_2 10 s after the close"
gone_ms=$(($(now_ms) - closed))
echo "  AUTOCLOSE_FIN_WAIT2_S=$BOUND_S: all $N gone from FIN_WAIT_2 after ${gone_ms} ms"
echo "  control: FIN_WAIT_2=$(servers_in fin-wait-2 "${sport[srv_default]}" \
    "${default_peers[@]}")"
[ "$gone_ms" -le $LIMIT_MS ] || fail "took ${gone_ms} ms, more than ${LIMIT_MS} ms"
[ "$gone_ms" -ge $((BOUND_S * 1000 - 500)) ] ||
    tw_fail "gone after ${gone_ms} ms: sooner than the ${BOUND_S} s bound can explain"
server_peers_are fin-wait-2 "${sport[srv_default]}" $N "${default_peers[@]}" ||
    tw_fail "the control server's sockets left FIN_WAIT_2"

pass "FIN_WAIT_2 bounded to ${BOUND_S} s: $N connected sockets gone after ${connected_ms} ms,\
 $N accepted after ${gone_ms} ms; controls still there (system bound ${DEFAULT_S} s)"
