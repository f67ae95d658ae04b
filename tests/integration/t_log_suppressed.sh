#!/usr/bin/env bash
# The log's rate limit (a burst of 50 lines, then 10 a second) drops lines in a storm; how many
# it dropped is said when its window closes, a second after the first line dropped, by the
# library's own thread, even though nothing happens afterwards. The lines shown and the lines
# counted as dropped add up to the actions taken.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

GRACE=300
N=80
LOG=$TMP/shim.log
# No periodic sweep: the thread wakes only for its deadlines, so nothing but the window wakes it
# once the storm is over.
start_bg server LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=$GRACE AUTOCLOSE_SWEEP_MS=0 \
    AUTOCLOSE_LOG_FILE="$LOG" "$FIXTURES/mos_server" --style thread --port-file "$TMP/server.port"
port=$(await_port server)
client clients --port "$port" --count $N --parallel || fail "client exchanges failed"
wait_until $((GRACE + 5000)) reclaimed "$port" $N clients ||
    fail "not all reclaimed: $(report_states "$port" clients)"
done_ms=$(now_ms)
note='log lines suppressed by the rate limit'
wait_until 4000 has_lines 1 "$note" "$LOG" ||
    fail "no line counts the dropped lines $(($(now_ms) - done_ms)) ms after the storm:" \
        "$(tail -n 3 "$LOG")"
echo "  the count came $(($(now_ms) - done_ms)) ms after the last connection was reclaimed"
grep -F "$note" "$LOG" | sed 's/^/  /'
shown=$(count_lines 'shutdown fd=' "$LOG")
dropped=$(grep -F "$note" "$LOG" | sed 's/.*\]: \([0-9]*\) log lines.*/\1/' | paste -sd+ | bc)
echo "  action lines shown: $shown, counted as dropped: $dropped"
[ "$shown" -lt $N ] || fail "all $N lines were shown: the storm was too small to test the limit"
assert_eq $N "$((shown + dropped))" "lines shown plus lines counted as dropped"
tail -n 1 "$LOG" | grep -qF "$note" || fail "the count is not the last line: $(tail -n 1 "$LOG")"
pass "$dropped dropped lines counted when the window closed, with no later event"
