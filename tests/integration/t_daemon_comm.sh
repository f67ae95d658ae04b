#!/usr/bin/env bash
# A process's name is the user's to choose: a server named 'x reclaimed=9 pid=1' (of which the
# kernel keeps 15 bytes as comm), and one whose name also holds a double quote, must not forge
# fields in autoclosed's line about them. Each line, split on the spaces outside double quotes as
# a log parser would, has one comm field with the whole name, one pid field (the real one) and no
# reclaimed field.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
command -v python3 >/dev/null || skip "python3 is not installed"

GRACE=300
INTERVAL=100
LOG="$TMP/daemon.log"
names=('x reclaimed=9 pid=1' 'x" reclaimed=9 pid=1')
mkdir -p "$TMP/bin"
pids=() ports=()
for i in 0 1; do
    cp "$FIXTURES/mos_server" "$TMP/bin/${names[$i]}"
    # Through sh: start_bg's env would take a first word holding "=" for a variable.
    # shellcheck disable=SC2016 # $0 and $@ are sh's
    start_bg "srv$i" sh -c 'exec "$0" "$@"' "$TMP/bin/${names[$i]}" --style read \
        --port-file "$TMP/srv$i.port"
    ports[i]=$(await_port "srv$i")
    pids[i]=$(main_pid "srv$i")
    client "leak$i" --port "${ports[$i]}" --count 1 || fail "client exchange failed"
done
start_daemon daemon --pid "${pids[0]},${pids[1]}" --grace-ms $GRACE --interval-ms $INTERVAL \
    --log-file "$LOG"
for i in 0 1; do
    wait_until $((GRACE + 5000)) clients_settled "${ports[$i]}" "leak$i" || true
    require_settled "${ports[$i]}" "the daemon did not reclaim the leak" "leak$i"
    wait_until 2000 has_shutdowns 1 "$LOG" "${pids[$i]}" || fail "no action line"
    comm=$(cat "/proc/${pids[$i]}/comm")
    line=$(shutdowns "$LOG" "${pids[$i]}" | head -n 1)
    echo "  comm '$comm': $line"
    # The message after "autoclosed[<pid>]: ", split as a shell splits words: double quotes
    # group, a backslash escapes a quote or a backslash inside them.
    fields=$(python3 -c '
import shlex, sys
msg = sys.argv[1].split("]: ", 1)[1]
try:
    print("\n".join(shlex.split(msg)))
except ValueError as e:
    print("unparsable: %s" % e)
' "$line")
    ! grep -q '^unparsable' <<<"$fields" || fail "the line does not split into fields: $line"
    assert_eq "comm=$comm" "$(grep '^comm=' <<<"$fields")" "  the comm field"
    assert_eq "pid=${pids[$i]}" "$(grep '^pid=' <<<"$fields")" "  the pid field (only one)"
    assert_eq 0 "$(grep -c '^reclaimed=' <<<"$fields" || true)" "  forged reclaimed fields"
done
stop_daemon daemon
pass "names with spaces, = and a quote stay one quoted comm field"
