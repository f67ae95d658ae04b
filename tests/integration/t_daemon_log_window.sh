#!/usr/bin/env bash
# autoclosed's rate limit (200 lines at once, then 50 a second) drops lines in a storm; how many it
# dropped is said when its window closes, a second after the first line dropped, even though
# nothing happens afterwards, and before the daemon exits (--once here, whose exit writes no line
# of its own). Each time the lines shown and the lines counted as dropped add up to the actions.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon

N=260 # more than the burst of 200, reclaimed in one batch
GRACE=300
INTERVAL=100
note='lines not shown \(more than 50 a second\)'

start_bg server "$FIXTURES/mos_server" --style read --port-file "$TMP/server.port"
port=$(await_port server)
pid=$(main_pid server)

# dropped LOG: the lines the notes in LOG count.
dropped() { grep -E "$note" "$1" | sed 's/.*\]: \([0-9]*\) lines.*/\1/' | paste -sd+ | bc; }

# storm NAME: N leaks of the server, each proved with ss.
storm() {
    client "$1" --port "$port" --count $N || fail "client exchanges failed"
    wait_until 5000 leaking "$port" $N "$1" || fail "no leak: $(report_states "$port" "$1")"
}

echo "the window closes with nothing happening after the storm:"
storm first
LOG=$TMP/daemon.log
start_daemon daemon --pid "$pid" --grace-ms $GRACE --interval-ms $INTERVAL --log-file "$LOG"
wait_until $((GRACE + 5000)) clients_settled "$port" first || true
require_settled "$port" "the storm was not reclaimed" first
done_ms=$(now_ms)
wait_until 3000 has_lines 1 "$note" "$LOG" ||
    fail "no line counts the dropped lines $(($(now_ms) - done_ms)) ms after the storm: $(tail -n 2 "$LOG")"
echo "  the count came $(($(now_ms) - done_ms)) ms after the last connection was reclaimed"
grep -E "$note" "$LOG" | sed 's/^/  /'
shown=$(count_shutdowns "$LOG")
echo "  action lines shown: $shown, counted as dropped: $(dropped "$LOG")"
[ "$shown" -lt $N ] || fail "all $N lines were shown: the storm was too small to test the limit"
assert_eq $N "$((shown + $(dropped "$LOG")))" "lines shown plus lines counted as dropped"
tail -n 1 "$LOG" | grep -qE "$note" || fail "the count is not the last line: $(tail -n 1 "$LOG")"
stop_daemon daemon

echo "--once: the count before the exit:"
storm second
run_daemon once --pid "$pid" --once --grace-ms $GRACE --log-file "$TMP/once.log"
assert_eq 0 "$RUN_RC" "--once's exit status"
require_settled "$port" "--once did not reclaim the storm" second
grep -E "$note" "$TMP/once.log" | sed 's/^/  /'
shown=$(count_shutdowns "$TMP/once.log")
echo "  action lines shown: $shown, counted as dropped: $(dropped "$TMP/once.log")"
[ "$shown" -lt $N ] || fail "all $N lines were shown: the storm was too small to test the limit"
assert_eq $N "$((shown + $(dropped "$TMP/once.log")))" "lines shown plus lines counted as dropped"
tail -n 1 "$TMP/once.log" | grep -qE "$note" ||
    fail "the count is not --once's last line: $(tail -n 1 "$TMP/once.log")"
pass "dropped lines counted when the window closed, with no later event, and before --once exited"
