#!/usr/bin/env bash
# AUTOCLOSE_USER_TIMEOUT_MS sets TCP_USER_TIMEOUT on every connection the program accepts or
# connects. ss does not show the option, so the program itself reports it: sockopt_probe asks
# getsockopt on the very sockets it got from accept4 or a non-blocking connect, IPv4 and IPv6.
# And the option must do its work: a server writing to a peer that stopped reading (zero window)
# is cut after about the timeout, where without the variable its writes stay blocked.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=hygiene_lib.sh
. "$(dirname "$0")/hygiene_lib.sh"
need_shim

UT=4321      # checked through getsockopt
UT_FLOOD=2000 # the zero-window case, short enough to watch
HOLD=15000

families=(4)
if have_ipv6; then
    families+=(6)
else
    echo "no ::1 on the loopback: IPv6 cases left out"
fi
declare -A host=([4]=127.0.0.1 [6]=::1)

# The zero-window case first, as it takes the longest: two flooding servers (one with the
# variable, one without), each with one client that never reads.
start_bg flood_ut LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_USER_TIMEOUT_MS=$UT_FLOOD \
    "$FIXTURES/sockopt_probe" --listen 127.0.0.1 --flood --hold-ms $HOLD \
    --port-file "$TMP/flood_ut.port"
start_bg flood_unset LD_PRELOAD="$AUTOCLOSE_LIB" \
    "$FIXTURES/sockopt_probe" --listen 127.0.0.1 --flood --hold-ms $HOLD \
    --port-file "$TMP/flood_unset.port"
for s in flood_ut flood_unset; do
    client_bg "c_$s" --port "$(await_port "$s")" --no-message --hold-ms $((HOLD + 5000))
done

for f in "${families[@]}"; do
    start_bg "srv_ut$f" LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_USER_TIMEOUT_MS=$UT \
        "$FIXTURES/sockopt_probe" --listen "${host[$f]}" --count 2 --hold-ms $HOLD \
        --port-file "$TMP/srv_ut$f.port"
    start_bg "srv_unset$f" LD_PRELOAD="$AUTOCLOSE_LIB" \
        "$FIXTURES/sockopt_probe" --listen "${host[$f]}" --count 2 --hold-ms $HOLD \
        --port-file "$TMP/srv_unset$f.port"
done
for f in "${families[@]}"; do
    # The connecting probes carry the shim too: against srv_unset they give connected sockets
    # with the variable, against srv_ut connected sockets without it.
    start_bg "cli_ut$f" LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_USER_TIMEOUT_MS=$UT \
        "$FIXTURES/sockopt_probe" --connect "${host[$f]}" --port "$(await_port "srv_unset$f")" \
        --count 2 --hold-ms $HOLD
    start_bg "cli_unset$f" LD_PRELOAD="$AUTOCLOSE_LIB" \
        "$FIXTURES/sockopt_probe" --connect "${host[$f]}" --port "$(await_port "srv_ut$f")" \
        --count 2 --hold-ms $HOLD
done
for f in "${families[@]}"; do
    for p in "srv_ut$f" "srv_unset$f"; do
        wait_until 10000 probe_ok "$p" accepted 2 || fail "$p: did not accept 2 connections"
    done
    for p in "cli_ut$f" "cli_unset$f"; do
        wait_until 10000 probe_ok "$p" connected 2 || fail "$p: did not make 2 connections"
    done
done

for f in "${families[@]}"; do
    echo "IPv$f (${host[$f]}), AUTOCLOSE_USER_TIMEOUT_MS=$UT:"
    probe_expect "srv_ut$f" accepted 2 nonblock=1 cloexec=1 user_timeout_ms=$UT
    probe_expect "cli_ut$f" connected 2 nonblock=1 cloexec=1 user_timeout_ms=$UT
    probe_expect "srv_unset$f" accepted 2 user_timeout_ms=0
    probe_expect "cli_unset$f" connected 2 user_timeout_ms=0
done

echo "zero window: a client that never reads, a server that keeps writing:"
wait_until 5000 probe_ok flood_ut accepted 1 user_timeout_ms=$UT_FLOOD ||
    fail "flood_ut: $(probe_lines flood_ut accepted)"
wait_until 5000 probe_ok flood_unset accepted 1 user_timeout_ms=0 ||
    fail "flood_unset: $(probe_lines flood_unset accepted)"
started=$(now_ms)
wait_until 10000 has_lines 1 '^write failed ' "$TMP/flood_ut.out" ||
    fail "with TCP_USER_TIMEOUT=$UT_FLOOD the blocked connection was still open after 10 s"
line=$(grep '^write failed ' "$TMP/flood_ut.out")
echo "  with the variable: $line ($(($(now_ms) - started)) ms after the probe accepted)"
[[ $line == *"error=Connection timed out "* ]] || fail "expected ETIMEDOUT: $line"
cut_after=${line##*since_last_write_ms=}
# The kernel aborts once zero-window probing has gone on for the timeout; probing starts about
# one RTO after the window closed, and the check runs at the next probe.
if [ "$cut_after" -lt $((UT_FLOOD - 200)) ] || [ "$cut_after" -gt $((UT_FLOOD + 3000)) ]; then
    fail "cut ${cut_after} ms after the last successful write: expected about $UT_FLOOD ms"
fi
echo "  cut ${cut_after} ms after its last successful write (timeout $UT_FLOOD ms)"
[ "$(count_lines '^write failed ' "$TMP/flood_unset.out")" -eq 0 ] ||
    fail "without the variable the connection was cut too: $(cat "$TMP/flood_unset.out")"
echo "  without the variable: still open, writes blocked;" \
    "$(servers_in established "$(cat "$TMP/flood_unset.port")" \
        "$(client_ports c_flood_unset)") server socket established"
assert_eq 0 "$(servers_in established "$(cat "$TMP/flood_ut.port")" \
    "$(client_ports c_flood_ut)")" "server sockets left of the one cut"
for f in "${families[@]}"; do
    for p in "srv_ut$f" "srv_unset$f" "cli_ut$f" "cli_unset$f" flood_ut flood_unset; do
        [ ! -s "$TMP/$p.err" ] || fail "$p wrote to stderr: $(cat "$TMP/$p.err")"
    done
done
pass "TCP_USER_TIMEOUT=$UT on accept4 and connect sockets; a zero-window connection cut\
 ${cut_after} ms after its last write with $UT_FLOOD ms, kept without the variable"
