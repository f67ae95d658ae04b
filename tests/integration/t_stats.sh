#!/usr/bin/env bash
# AUTOCLOSE_STATS_FILE: the counters as node_exporter's textfile collector reads them. Read back
# (every family with its HELP and TYPE, a pid label on every series, whole numbers) and checked
# against what happened:
#   30 reclaims: found="read" 30, keepalive_configured 30, pending 0, errors 0; %p is the pid
#   a dry run: observed counted once per connection, even as sweeps meet them again
#   a forked server: one file per process, each child counting from zero
#   timing: written within a second of a change, at most once a second, not at all while nothing
#   changes, and once more at exit() (exit_server; mos_server leaves through _exit)
# No temporary file may be left beside the stats file.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=hygiene_lib.sh
. "$(dirname "$0")/hygiene_lib.sh"
need_shim

GRACE=300
N=30
RECLAIMED_READ='autoclose_reclaimed_total{action="shutdown",found="read"}'

# stat_is FILE PID SERIES VALUE: the stats file exists, is well formed, and SERIES has VALUE.
# shellcheck disable=SC2317 # called through wait_until
stat_is() {
    local dump
    [ -e "$1" ] || return 1
    dump=$(prom_dump "$1" "$2") || fail "the stats file $1 is malformed: $(cat "$1")"
    [ "$(prom_get "$dump" "$3")" = "$4" ]
}

# file_says FILE PID N: the file holds found="read" reclaims N (a quick look, for the timed
# parts; the whole file is checked with prom_dump afterwards).
# shellcheck disable=SC2317 # called through wait_until
file_says() {
    grep -qx "autoclose_reclaimed_total{pid=\"$2\",action=\"shutdown\",found=\"read\"} $3" \
        "$1" 2>/dev/null
}

# mtime_ms FILE: when FILE was last written (the rename keeps the temporary file's time), on the
# same clock as now_ms: the writes are timed by the file itself, not by when a poll noticed them.
mtime_ms() { date -r "$1" +%s%3N; }

# acted NAME N: server NAME's shim has logged N actions (or more). The log, not the peers'
# TIME_WAIT, says when a reclaim happened: a full TIME_WAIT table (other load) can drop those.
# shellcheck disable=SC2317 # called through wait_until
acted() { [ "$(count_lines ': (shutdown|close) fd=' "$TMP/$1.err")" -ge "$2" ]; }

# only_files DIR FILE...: DIR holds exactly these files (no temporary file left behind).
only_files() {
    local dir=$1 got want
    shift
    got=$(find "$dir" -mindepth 1 -printf "%f\n" | sort)
    want=$(printf '%s\n' "$@" | sort)
    [ "$got" = "$want" ] || fail "$dir holds:"$'\n'"$got"$'\n'"expected:"$'\n'"$want"
}

mkdir "$TMP/main" "$TMP/dry" "$TMP/fork" "$TMP/rate"

# The sweep is off where the found label is checked: it could otherwise meet a connection in
# CLOSE_WAIT a moment before the server's read does, and count it as found="sweep".
start_bg main LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_STATS_FILE="$TMP/main/stats-%p.prom" \
    AUTOCLOSE_GRACE_MS=$GRACE AUTOCLOSE_SWEEP_MS=0 AUTOCLOSE_KEEPALIVE=30,5,3 \
    "$FIXTURES/mos_server" --style read --port-file "$TMP/main.port"
start_bg dry LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_STATS_FILE="$TMP/dry/stats-%p.prom" \
    AUTOCLOSE_GRACE_MS=$GRACE AUTOCLOSE_SWEEP_MS=200 AUTOCLOSE_DRY_RUN=1 \
    "$FIXTURES/mos_server" --style read --port-file "$TMP/dry.port"
start_bg fork LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_STATS_FILE="$TMP/fork/stats-%p.prom" \
    AUTOCLOSE_GRACE_MS=$GRACE AUTOCLOSE_SWEEP_MS=0 AUTOCLOSE_KEEPALIVE=30,5,3 \
    "$FIXTURES/mos_server" --style fork --port-file "$TMP/fork.port"
# Grace 0: each reclaim follows its client at once.
start_bg rate LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_STATS_FILE="$TMP/rate/stats-%p.prom" \
    AUTOCLOSE_GRACE_MS=0 AUTOCLOSE_SWEEP_MS=0 "$FIXTURES/exit_server" --port-file "$TMP/rate.port"
declare -A port pid
for s in main dry fork rate; do
    port[$s]=$(await_port $s)
    pid[$s]=$(main_pid $s)
done

client_bg main_client --port "${port[main]}" --count $N
client_bg dry_client --port "${port[dry]}" --count 4
client_bg fork_client --port "${port[fork]}" --count 3

# ---- timing -------------------------------------------------------------------------------------
# The writes are timed by the file's own modification time, not by when a poll noticed them.
file="$TMP/rate/stats-${pid[rate]}.prom"
echo "exit_server (pid ${pid[rate]}), one connection at a time, grace 0:"
# Timed from the client's start: the change comes a moment later, so this bounds the delay.
started=$(now_ms)
client r1 --port "${port[rate]}" --no-message || fail "r1 failed"
wait_until 3000 file_says "$file" "${pid[rate]}" 1 ||
    fail "no stats file showing the first reclaim 3 s after it: $(ls "$TMP/rate")"
first=$(mtime_ms "$file")
echo "  first reclaim: written $((first - started)) ms after the client started"
[ $((first - started)) -le 1000 ] || fail "the first change took more than a second to show"

client r2 --port "${port[rate]}" --no-message || fail "r2 failed"
wait_until 3000 acted rate 2 || fail "r2: no second reclaim"
seen=$(now_ms) # the second change happened before this
wait_until 3000 file_says "$file" "${pid[rate]}" 2 ||
    fail "the second reclaim did not reach the file within 3 s"
second=$(mtime_ms "$file")
echo "  second reclaim (done by $((seen - first)) ms after the first write):" \
    "written $((second - first)) ms after the first"
[ $((second - first)) -ge 950 ] ||
    fail "rewritten $((second - first)) ms after the previous write: more than once a second"
# Due a second after the previous write, or at once if the change came later than that; a
# second more allows for a loaded machine waking the timer late.
due=$((first + 1000 > seen ? first + 1000 : seen))
[ "$second" -le $((due + 1000)) ] ||
    fail "the second change waited $((second - due)) ms past its due time to be written"

sleep 1.5
[ "$(mtime_ms "$file")" = "$second" ] || fail "rewritten although nothing changed"
echo "  nothing changed for 1.5 s: not rewritten"
prom_expect "$(prom_dump "$file" "${pid[rate]}")" "$RECLAIMED_READ=2"
only_files "$TMP/rate" "stats-${pid[rate]}.prom"

# ---- the write at exit -----------------------------------------------------------------------------
# exit_server --exit-after 2 calls exit() milliseconds after the shim reclaimed its second
# connection. When that comes less than a second after the first write, the periodic write is
# not due yet, so only the write at exit can put the 2 in the file. A slow moment can push it
# past that; then another server tries again.
exit_checked=
for attempt in 1 2 3; do
    ex="ex$attempt"
    mkdir "$TMP/$ex"
    start_bg "$ex" LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_STATS_FILE="$TMP/$ex/stats-%p.prom" \
        AUTOCLOSE_GRACE_MS=0 AUTOCLOSE_SWEEP_MS=0 \
        "$FIXTURES/exit_server" --exit-after 2 --port-file "$TMP/$ex.port"
    ex_port=$(await_port "$ex")
    ex_pid=$(main_pid "$ex")
    file="$TMP/$ex/stats-$ex_pid.prom"
    client "$ex-1" --port "$ex_port" --no-message || fail "$ex-1 failed"
    wait_until 3000 file_says "$file" "$ex_pid" 1 || fail "$ex: the first reclaim never showed"
    written=$(mtime_ms "$file")
    client "$ex-2" --port "$ex_port" --no-message || fail "$ex-2 failed"
    wait_bg "$ex" || fail "$ex ended with status $?"
    grep -q 'left CLOSE_WAIT: yes' "$TMP/$ex.out" || fail "$ex: the shim did not act in time"
    grep -q '^exiting via exit()$' "$TMP/$ex.out" || fail "$ex did not leave through exit()"
    at_exit=$(mtime_ms "$file")
    file_says "$file" "$ex_pid" 2 ||
        fail "$ex: after exit() the file says: $(grep -v '^#' "$file")"
    if [ $((at_exit - written)) -lt 700 ]; then
        echo "  exit(): the file rewritten $((at_exit - written)) ms after the previous write," \
            "before any periodic write was due, with the last reclaim in it"
        prom_expect "$(prom_dump "$file" "$ex_pid")" "$RECLAIMED_READ=2"
        only_files "$TMP/$ex" "stats-$ex_pid.prom"
        exit_checked=$((at_exit - written))
        break
    fi
    echo "  $ex: exit came $((at_exit - written)) ms after the previous write: too late to" \
        "tell the write at exit from the periodic one; again"
done
[ -n "$exit_checked" ] || fail "no exit() landed within 700 ms of a write in 3 attempts"

# ---- 30 reclaims -------------------------------------------------------------------------------
file="$TMP/main/stats-${pid[main]}.prom"
echo "mos_server (pid ${pid[main]}), $N connections, AUTOCLOSE_KEEPALIVE set:"
wait_bg main_client || fail "main: client exchanges failed"
wait_until $((GRACE + 5000)) acted main $N ||
    fail "main: $(count_lines ': shutdown fd=' "$TMP/main.err") reclaims logged;" \
        "$(report_states "${port[main]}" main_client)"
done_at=$(now_ms)
assert_eq $N "$(count_lines ': shutdown fd=' "$TMP/main.err")" "  reclaims logged"
mapfile -t main_ports < <(client_ports main_client)
assert_eq 0 "$(servers_in close-wait "${port[main]}" "${main_ports[@]}")" "  CLOSE_WAIT left"
wait_until 2000 stat_is "$file" "${pid[main]}" "$RECLAIMED_READ" $N ||
    fail "the file did not reach $N reclaims within 2 s: $(cat "$file" 2>/dev/null)"
echo "  all $N reclaimed; the file said so $(($(now_ms) - done_at)) ms later"
prom_expect "$(prom_dump "$file" "${pid[main]}")" "$RECLAIMED_READ=$N" \
    "autoclose_keepalive_configured_total=$N"
only_files "$TMP/main" "stats-${pid[main]}.prom"
for family in autoclose_reclaimed_total autoclose_pending autoclose_dry_run_observed_total \
    autoclose_port_filter_skipped_total autoclose_keepalive_configured_total \
    autoclose_errors_total; do
    assert_eq "1 1" "$(grep -c "^# HELP $family " "$file") $(grep -c "^# TYPE $family " "$file")" \
        "  HELP and TYPE lines of $family"
done

# ---- a dry run -----------------------------------------------------------------------------------
file="$TMP/dry/stats-${pid[dry]}.prom"
echo "mos_server (pid ${pid[dry]}), AUTOCLOSE_DRY_RUN=1, sweep every 200 ms:"
wait_bg dry_client || fail "dry: client exchanges failed"
wait_until $((GRACE + 3000)) stat_is "$file" "${pid[dry]}" autoclose_dry_run_observed_total 4 ||
    fail "dry run: the file never showed 4 observed: $(cat "$file" 2>/dev/null)"
# One more half-closed connection is new to the sweep, which then judges every CLOSE_WAIT socket
# of the process again: the four already observed must not count twice.
client dry_client2 --port "${port[dry]}" || fail "dry: fifth client failed"
wait_until $((GRACE + 3000)) stat_is "$file" "${pid[dry]}" autoclose_dry_run_observed_total 5 ||
    fail "dry run: the file never showed 5 observed: $(cat "$file" 2>/dev/null)"
sleep 1.5 # several sweeps, and more than the file's one-second spacing
prom_expect "$(prom_dump "$file" "${pid[dry]}")" autoclose_dry_run_observed_total=5
mapfile -t dry_ports < <(client_ports dry_client; client_ports dry_client2)
assert_eq 5 "$(servers_in close-wait "${port[dry]}" "${dry_ports[@]}")" \
    "  CLOSE_WAIT left (a dry run acts on none)"
only_files "$TMP/dry" "stats-${pid[dry]}.prom"

# ---- a forked server: a file per process -------------------------------------------------------
echo "mos_server --style fork (pid ${pid[fork]}), 3 connections, a child for each:"
wait_bg fork_client || fail "fork: client exchanges failed"
wait_until $((GRACE + 3000)) acted fork 3 ||
    fail "fork: $(report_states "${port[fork]}" fork_client)"
mapfile -t children < <(sed -n 's/^forked pid=\([0-9]*\) .*/\1/p' "$TMP/fork.out")
assert_eq 3 "${#children[@]}" "  children forked"
# shellcheck disable=SC2317 # called through wait_until
child_counted() {
    local dump read
    [ -e "$TMP/fork/stats-$1.prom" ] || return 1
    dump=$(prom_dump "$TMP/fork/stats-$1.prom" "$1") || fail "stats-$1.prom is malformed"
    # Shut down or released: which one depends on the shared-socket rule, not on the counters.
    read=$(($(prom_get "$dump" "$RECLAIMED_READ") +
        $(prom_get "$dump" 'autoclose_reclaimed_total{action="close",found="read"}')))
    [ "$read" -eq 1 ]
}
for c in "${children[@]}"; do
    wait_until 2000 child_counted "$c" || fail "child $c: $(cat "$TMP/fork/stats-$c.prom")"
    dump=$(prom_dump "$TMP/fork/stats-$c.prom" "$c")
    echo "  child $c: $(grep -v ' 0$' <<<"$dump" | tr '\n' ' ')"
    [ "$(prom_get "$dump" autoclose_keepalive_configured_total)" = 0 ] ||
        fail "child $c did not start its counts from zero"
done
file="$TMP/fork/stats-${pid[fork]}.prom"
wait_until 2000 stat_is "$file" "${pid[fork]}" autoclose_keepalive_configured_total 3 ||
    fail "the parent's file: $(cat "$file" 2>/dev/null)"
echo "  parent ${pid[fork]}: keepalive_configured 3, nothing reclaimed (its children did that)"
prom_expect "$(prom_dump "$file" "${pid[fork]}")" autoclose_keepalive_configured_total=3
names=("stats-${pid[fork]}.prom")
for c in "${children[@]}"; do
    names+=("stats-$c.prom")
done
only_files "$TMP/fork" "${names[@]}"

pass "30 reclaims, a dry run, a forked server and exit() all written as they happened;\
 first write $((first - started)) ms after a change, the next $((second - first)) ms later, the one\
 at exit() ${exit_checked} ms after the one before"
