#!/usr/bin/env bash
# A timer signal whose handler read()s and close()s tracked descriptors (half-closed connections,
# some already pending in the shim) while the main thread does the same and the shim's timer acts
# on them with a 20 ms grace: nothing may hang (the fixture's watchdog), the shim's tables must
# still work afterwards (fresh half-closed connections reclaimed, live ones left alone), every
# connection must have ended, and the program must still answer. Both modes.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

GRACE=20
SECONDS_OF_STORM=${SIGNAL_STORM_S:-3}

for mode in shutdown close; do
    name=storm-$mode
    start_bg "$name" LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_MODE=$mode AUTOCLOSE_GRACE_MS=$GRACE \
        AUTOCLOSE_SWEEP_MS=100 AUTOCLOSE_LOG_FILE="$TMP/$name.log" \
        AUTOCLOSE_STATS_FILE="$TMP/$name.stats" "$FIXTURES/signal_storm" \
        --seconds "$SECONDS_OF_STORM" --grace-ms $GRACE --port-file "$TMP/$name.port"
    # The port is published after the storm and the table check: a few seconds.
    wait_until 40000 test -s "$TMP/$name.port" ||
        fail "$mode: no port published (storm or check never finished)"
    port=$(cat "$TMP/$name.port")
    # shellcheck disable=SC2016 # $1 is the inner shell's argument
    reply=$(timeout 10 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && echo ping >&3 && cat <&3' \
        _ "$port") || true
    assert_eq pong "$reply" "$mode: answer to a ping after the storm"
    wait_bg "$name" || fail "$mode: the storm program failed (exit $?)"
    sed 's/^/  /' "$TMP/$name.out"

    read -r created by_signal < <(sed -n \
        's/^storm created=\([0-9]*\) by_signal=\([0-9]*\) .*/\1 \2/p' "$TMP/$name.out")
    [ "${created:-0}" -ge 300 ] || fail "$mode: only ${created:-0} connections made"
    [ "${by_signal:-0}" -ge 50 ] || fail "$mode: the handler closed only ${by_signal:-0}"
    grep -q '^check reclaimed=16/16 live_intact=16/16$' "$TMP/$name.out" ||
        fail "$mode: the shim's tables did not work after the storm"
    grep -q '^tcp_fds_left=1$' "$TMP/$name.out" || fail "$mode: connections left open"
    # The final counters: nothing still pending, no failed action.
    assert_eq 1 "$(grep -c '^autoclose_pending{pid="[0-9]*"} 0$' "$TMP/$name.stats")" \
        "$mode: pending at exit is 0"
    assert_eq 1 "$(grep -c '^autoclose_errors_total{pid="[0-9]*"} 0$' "$TMP/$name.stats")" \
        "$mode: errors at exit is 0"
    assert_eq 0 "$(count_lines 'failed to' "$TMP/$name.log")" "$mode: failed actions logged"
    [ "$(actions "$TMP/$name.log" | wc -l)" -ge 1 ] || fail "$mode: the timer never acted"
done
pass "signal handler reading and closing tracked descriptors: no hang, tables intact, all ended"
