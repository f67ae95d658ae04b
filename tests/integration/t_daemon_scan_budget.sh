#!/usr/bin/env bash
# What autoclosed --pid costs while other processes' CLOSE_WAIT sockets keep appearing: each new
# one is looked for in the selected process's descriptor table (a readlinkat per descriptor),
# and a process's scans are spaced by their cost (after a scan that took D of CPU, none before
# 200 * D). A holder of 10,000 descriptors is watched at a 100 ms interval while another process
# makes 20 half-closed sockets a second; then the holder leaks one connection of its own.
#   - the daemon's CPU (its own and its scanners', the children that read the tables: utime +
#     stime + cutime + cstime) stays under 10% of a core (today's code rescans the whole
#     table at nearly every interval: about a third of a core here);
#   - by the daemon's own figures (its debug "scan" lines: cpu_us, next_in_ms), no scan of the
#     holder came before 200 times the previous one's CPU time had passed;
#   - the holder's own leak is still reclaimed, by the first scan allowed after it.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon

FDS=10000
RATE=20
GRACE=300
INTERVAL=100
SHARE=200
LOG="$TMP/daemon.log"
[ "$(ulimit -Hn)" = unlimited ] || [ "$(ulimit -Hn)" -ge $((FDS + 64)) ] || [ "$(id -u)" -eq 0 ] ||
    skip "the holder needs RLIMIT_NOFILE $((FDS + 64)); the hard limit is $(ulimit -Hn)"

start_bg holder python3 "$SCRIPT_FIXTURES/fd_hoard.py" hold --fds $FDS --port-file "$TMP/holder.port"
wait_until 20000 has_lines 1 '^ready fds=' "$TMP/holder.out" ||
    { grep -q 'hard limit' "$TMP/holder.err" && skip "$(cat "$TMP/holder.err")"; } ||
    fail "the holder did not start: $(cat "$TMP/holder.err")"
hport=$(await_port holder)
hpid=$(main_pid holder)
start_bg churn python3 "$SCRIPT_FIXTURES/fd_hoard.py" churn --rate $RATE
wait_until 5000 has_lines 1 '^churning port=' "$TMP/churn.out" || fail "the churn did not start"
echo "  holder $hpid: $(sed -n 's/^ready //p' "$TMP/holder.out"); $RATE unrelated CLOSE_WAIT sockets a second"

start_daemon daemon --pid "$hpid" --grace-ms $GRACE --interval-ms $INTERVAL --log-file "$LOG" \
    --log debug
ticks() { awk '{ print $14 + $15 + $16 + $17 }' "/proc/$DAEMON_PID/stat"; }
sleep_ms 1000 # the start-up scan, and a share of the churn's sockets to look for
# The cost, over a fixed window of churn.
t0=$(ticks)
m0=$(now_ms)
sleep_ms 4000
t1=$(ticks)
m1=$(now_ms)
pct=$(awk -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v ms=$((m1 - m0)) \
    'BEGIN { printf "%.2f", 100 * t / hz * 1000 / ms }')
echo "  daemon CPU: $((t1 - t0)) ticks in $((m1 - m0)) ms: $pct% of a core"
awk -v p="$pct" 'BEGIN { exit !(p < 10) }' ||
    fail "the daemon used $pct% of a core beside $RATE unrelated CLOSE_WAIT sockets a second"

kill -USR1 "$hpid"
wait_until 3000 has_lines 1 '^leak port=' "$TMP/holder.out" || fail "the holder made no leak"
leak_at=$(now_ms)
assert_eq 1 "$(ss_close_wait_of "$hpid" "$hport")" "  the holder's CLOSE_WAIT sockets"
wait_until 20000 state_is close-wait "$hport" server 0 || true
took=$(($(now_ms) - leak_at))
echo "  the holder's leak: $(count_state close-wait "$hport" server) in CLOSE_WAIT after ${took} ms"
state_is close-wait "$hport" server 0 || fail "the holder's leak was not reclaimed in 20 s"
shutdowns "$LOG" "$hpid" | sed 's/^/    /'
assert_eq 1 "$(count_shutdowns "$LOG" "$hpid")" "actions on the holder"

# The daemon's own figures: "<time> autoclosed[N]: scan pid=P fds=F cpu_us=C next_in_ms=W".
scans=$(grep -E ": scan pid=$hpid " "$LOG" || true)
printf '%s\n' "$scans" | sed 's/^/    /'
[ "$(grep -c . <<<"$scans")" -ge 2 ] || fail "fewer than two scans of the holder"
awk -v share=$SHARE '
    function ms(stamp,    t) { split(substr(stamp, 12, 12), t, ":"); return (t[1] * 3600 + t[2] * 60 + t[3]) * 1000 }
    {
        at = ms($1); cpu = 0
        for (i = 1; i <= NF; i++) if ($i ~ /^cpu_us=/) cpu = substr($i, 8) + 0
        if (NR > 1 && at - prev_at < prev_cpu * share / 1000 - 1) {
            printf "a scan %d ms after one of %d us of CPU (less than %d times that)\n", at - prev_at, prev_cpu, share
            bad = 1
        }
        prev_at = at; prev_cpu = cpu
    }
    END { exit bad }' <<<"$scans" || fail "the holder was scanned before its budget allowed"
first_wait=$(head -n 1 <<<"$scans" | sed -n 's/.* next_in_ms=\([0-9]*\).*/\1/p')
[ "$took" -le $((first_wait + 2 * INTERVAL + GRACE + 2000)) ] ||
    fail "the leak took ${took} ms: more than the budget's wait (${first_wait} ms) allows"
pass "beside $RATE unrelated CLOSE_WAIT sockets a second, $pct% of a core on a $FDS-descriptor\
 holder, its scans spaced by their cost; its own leak reclaimed in ${took} ms"
