#!/usr/bin/env bash
# autoclose_port_filter_skipped_total counts the peer FINs found on connections outside
# AUTOCLOSE_PORTS: one per connection, like the other counters. One server process listens on
# two ports, only one of them listed; the sweep stays on (every 200 ms), and new half-closed
# connections keep appearing after the excluded ones, so every sweep meets the excluded
# connections again: they must not be counted again.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=hygiene_lib.sh
. "$(dirname "$0")/hygiene_lib.sh"
need_shim

GRACE=300
SKIPPED=5
HANDLED=7

listed=$(pick_port)
other=$(pick_port "$listed")
mkdir "$TMP/stats"
start_bg srv LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_STATS_FILE="$TMP/stats/stats-%p.prom" \
    AUTOCLOSE_GRACE_MS=$GRACE AUTOCLOSE_SWEEP_MS=200 AUTOCLOSE_PORTS="$listed" \
    "$FIXTURES/exit_server" --port "$listed" --port "$other" --port-file "$TMP/srv.port"
await_port srv >/dev/null
pid=$(main_pid srv)
file="$TMP/stats/stats-$pid.prom"

# series_sum DUMP PATTERN: the sum of the series whose name matches PATTERN (a grep -E regex).
series_sum() { grep -E "$2" <<<"$1" | awk '{ s += $NF } END { print s + 0 }'; }

# The excluded connections first; each later connection is new to the sweep.
for i in $(seq 1 $SKIPPED); do
    client "out$i" --port "$other" --no-message || fail "client to port $other failed"
done
for i in $(seq 1 $HANDLED); do
    client "in$i" --port "$listed" --no-message || fail "client to port $listed failed"
    sleep 0.1 # spread over several sweeps
done
in_clients=()
for i in $(seq 1 $HANDLED); do
    in_clients+=("in$i")
done
# The shim's log says when it acted (the peers' TIME_WAIT could be dropped on a busy machine).
# shellcheck disable=SC2317 # called through wait_until
acted() { [ "$(count_lines ': shutdown fd=' "$TMP/srv.err")" -ge "$1" ]; }
wait_until $((GRACE + 3000)) acted $HANDLED ||
    fail "port $listed: $(report_states "$listed" "${in_clients[@]}")"
mapfile -t in_ports < <(for c in "${in_clients[@]}"; do client_ports "$c"; done)
mapfile -t out_ports < <(for i in $(seq 1 $SKIPPED); do client_ports "out$i"; done)
assert_eq 0 "$(servers_in close-wait "$listed" "${in_ports[@]}")" \
    "CLOSE_WAIT left on the listed port"
echo "port $listed (listed): $(report_states "$listed" "${in_clients[@]}")"
assert_eq $SKIPPED "$(servers_in close-wait "$other" "${out_ports[@]}")" \
    "CLOSE_WAIT left on the port outside the list"

# reclaimed_total DUMP: every reclaim, however found (the sweep may get there before the read).
reclaimed_total() { series_sum "$1" '^autoclose_reclaimed_total\{action="shutdown"'; }
# shellcheck disable=SC2317 # called through wait_until
file_shows_handled() {
    local dump
    [ -e "$file" ] || return 1
    dump=$(prom_dump "$file" "$pid") || fail "malformed stats file: $(cat "$file")"
    [ "$(reclaimed_total "$dump")" -eq "$HANDLED" ]
}
wait_until 3000 file_shows_handled || fail "the file never showed $HANDLED reclaims"

# Several sweeps later, and after the file's one-second spacing.
for t in 1 2; do
    sleep 1
    dump=$(prom_dump "$file" "$pid") || fail "malformed stats file"
    echo "  after ${t} s more: reclaimed $(reclaimed_total "$dump")," \
        "port_filter_skipped $(prom_get "$dump" autoclose_port_filter_skipped_total)"
done
kill -TERM "$pid"
wait_bg srv || fail "the server ended with status $?"
dump=$(prom_dump "$file" "$pid") || fail "malformed stats file after exit"
echo "after exit():"
echo "    ${dump//$'\n'/$'\n'    }"
assert_eq $HANDLED "$(reclaimed_total "$dump")" "connections reclaimed (port $listed)"
assert_eq 0 "$(series_sum "$dump" '^autoclose_reclaimed_total\{action="close"')" \
    "connections released (close mode is off)"
assert_eq $SKIPPED "$(prom_get "$dump" autoclose_port_filter_skipped_total)" \
    "connections skipped by the port filter (port $other)"
for series in autoclose_pending autoclose_dry_run_observed_total \
    autoclose_keepalive_configured_total autoclose_errors_total; do
    assert_eq 0 "$(prom_get "$dump" "$series")" "$series"
done
pass "$HANDLED connections on the listed port reclaimed, $SKIPPED outside it counted once each"
