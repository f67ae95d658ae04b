#!/usr/bin/env bash
# A local user tries to blind autoclosed by exhaustion: as nobody, 1,100 short-lived processes,
# up to 400 alive at once, each holding a connection in CLOSE_WAIT whose peer port is watched,
# against a daemon limited to 256 descriptors (the condition the unit's default 1,024 reaches with
# more processes). The daemon keeps no descriptor per process: root's server's leaks are
# reclaimed during the attack and after it; the daemon's descriptor count never nears its limit
# and is back at its baseline once the attackers are gone; and the log stays bounded (errors
# 20 at once then 1 a second, the rest 200 then 50 a second).
#
# First, running out is shown to pass: started with 5 descriptors, too few to read any process's
# table (or, since the tables are read by a child, to make the pipe to it), the daemon says so in one line naming its limit, calls no process unreachable and gives
# no socket up; once its limit is raised (prlimit --pid) it reclaims the leak made meanwhile.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
need_root "an attacker of another user"
command -v prlimit >/dev/null || skip "prlimit (util-linux) is not installed"

NOFILE=256
COUNT=1100
CONCURRENT=400
LIFE_MS=2000
GRACE=300
INTERVAL=100
LOG="$TMP/daemon.log"

# A port below the clients' range: --ports alone refuses those clients may pick themselves.
start_bg srv "$FIXTURES/mos_server" --style read --port "$(pick_port)" --port-file "$TMP/srv.port"
sport=$(await_port srv)
aport=$(pick_port "$sport")

started=$(now_ms)
start_bg daemon prlimit --nofile=5:$NOFILE "$AUTOCLOSED" --ports "$aport,$sport" \
    --grace-ms $GRACE --interval-ms $INTERVAL --log-file "$LOG"
wait_until 2000 main_pid daemon >/dev/null || fail "autoclosed did not start"
dpid=$(main_pid daemon)
fds() { find "/proc/$dpid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

client starved --port "$sport" --count 1 || fail "client exchange with root's server failed"
sleep_ms $((GRACE + 5 * INTERVAL)) # past the grace, and more than three looks
sed 's/^/    /' "$LOG"
leaking "$sport" 1 starved || fail "the leak went: $(report_states "$sport" starved)"
prlimit --pid "$dpid" --nofile=$NOFILE || fail "prlimit --pid failed"
wait_until $((GRACE + 3000)) clients_settled "$sport" starved || true
require_settled "$sport" "the leak made while the daemon ran short was not reclaimed" starved
echo "  with RLIMIT_NOFILE $NOFILE the leak made meanwhile was reclaimed"
# The tables are read by a scanner (a child), whose pipe is the first thing the daemon runs short of.
SHORT='cannot go on (reading processes. descriptors|making a pipe to a scanner): its descriptors \(RLIMIT_NOFILE 5\) are all in use'
assert_eq 1 "$(count_lines "$SHORT" "$LOG")" "lines saying it ran short"
assert_eq 0 "$(count_lines 'cannot reach' "$LOG")" "processes called unreachable"

sleep_ms $((3 * INTERVAL))
base=$(fds)
echo "  the daemon (pid $dpid, RLIMIT_NOFILE $NOFILE): $base descriptors before the attack"

most=$base
# sample_fds: the daemon's descriptor count, its highest so far in `most`.
# shellcheck disable=SC2317 # called through wait_until
sample_fds() {
    local n
    n=$(fds)
    [ "$n" -le "$most" ] || most=$n
}
# attacked N: at least N of the swarm's sockets in CLOSE_WAIT; samples the count meanwhile.
# shellcheck disable=SC2317 # called through wait_until
attacked() {
    sample_fds
    [ "$(ss -Htn state close-wait "( dport = :$aport )" | wc -l)" -ge "$1" ]
}
# settled_sampling PORT CLIENT: clients_settled, sampling the daemon's descriptors.
# shellcheck disable=SC2317 # called through wait_until
settled_sampling() {
    sample_fds
    clients_settled "$@"
}
# shellcheck disable=SC2317 # called through wait_until
fds_back() { [ "$(fds)" -eq "$base" ]; }

t0=$(now_ms)
start_bg swarm "${UNPRIVILEGED[@]}" "$FIXTURES/cw_swarm" --port "$aport" --count $COUNT \
    --concurrent $CONCURRENT --life-ms $LIFE_MS
wait_until 10000 attacked $((CONCURRENT / 2)) || fail "the swarm did not get going"
echo "  $(ss -Htn state close-wait "( dport = :$aport )" | wc -l) of the swarm's sockets in" \
    "CLOSE_WAIT"

# During the attack.
client during --port "$sport" --count 2 || fail "client exchanges with root's server failed"
wait_until $((GRACE + 5000)) settled_sampling "$sport" during || true
require_settled "$sport" "root's leaks were not reclaimed during the attack" during
alive "$(main_pid swarm)" || fail "the swarm was over before root's leaks were reclaimed"
echo "  root's leaks reclaimed during the attack, $(($(now_ms) - t0)) ms after it began"

# After it.
wait_until 30000 gone "$(main_pid swarm)" || fail "the swarm did not end"
wait_bg swarm || fail "the swarm failed: $(cat "$TMP/swarm.err")"
echo "  $(cat "$TMP/swarm.out"), in $(($(now_ms) - t0)) ms"
client after --port "$sport" --count 2 || fail "client exchanges with root's server failed"
wait_until $((GRACE + 5000)) settled_sampling "$sport" after || true
require_settled "$sport" "root's leaks were not reclaimed after the attack" after
wait_until 3000 fds_back || fail "the daemon holds $(fds) descriptors, not $base"
took_s=$((($(now_ms) - started + 999) / 1000))
echo "  the daemon's descriptors: at most $most during the attack (limit $NOFILE), $(fds) after"
[ "$most" -lt $((NOFILE / 4)) ] || fail "the daemon's descriptor count reached $most"

lines=$(wc -l <"$LOG")
errors=$(grep -vc -E 'autoclosed\[[0-9]+\]: (shutdown|autoclosed [^ ]*: watching|[0-9]+ lines not shown|autoclosed cannot go on)' \
    "$LOG" || true)
reclaimed=$(grep -c 'shutdown pid=' "$LOG" || true)
echo "  the log: $lines lines in ${took_s} s, $reclaimed of them shutdown lines, $errors others:"
grep -v -E 'autoclosed\[[0-9]+\]: shutdown' "$LOG" | head -n 25 | sed 's/^/    /'
[ "$errors" -le $((20 + took_s + 1)) ] || fail "$errors error lines in ${took_s} s"
[ "$lines" -le $((200 + 50 * took_s + 20 + took_s + 2 * took_s + 1)) ] ||
    fail "$lines lines in ${took_s} s: the log is not bounded"
! grep -q 'cannot reach' "$LOG" || fail "a process was called unreachable"
stop_daemon daemon
pass "under $COUNT attacking processes (at most $CONCURRENT at once) root's leaks were reclaimed;\
 at most $most descriptors, $lines log lines"
