#!/usr/bin/env bash
# autoclosed's signals. SIGTERM ends it at once wherever it lands: 50 starts with an interval of a
# day, each sent SIGTERM at a random point of its first interval's work (from the moment its
# handler is in place, read from /proc/PID/status), each end within a second with status 0 (one
# that slipped in between the check of the flag and the sleep would wait out the day; the bound
# leaves room for a loaded machine under a sanitizer, where an exit has taken 200 ms). SIGUSR2 is
# ignored; SIGUSR1 logs one status line (the sockets it holds, the processes, the totals), at
# --log error too; neither ends it.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
STARTS=${SIGNAL_STARTS:-50}
BOUND_MS=1000

# A leaking server on the watched port, so that each first interval has a socket to look up.
# A port below the clients' range: --ports alone refuses those clients may pick themselves.
start_bg server "$FIXTURES/mos_server" --style read --port "$(pick_port)" --port-file "$TMP/server.port"
port=$(await_port server)
spid=$(main_pid server)
client leak --port "$port" --count 1 || fail "client exchange failed"
wait_until 3000 leaking "$port" 1 leak || fail "the server did not leak: $(report_states "$port" leak)"

# term_caught PID: the daemon (exec'd: the shell's own trap does not count) has a handler for
# SIGTERM (bit 15 of SigCgt).
term_caught() {
    local line mask comm
    read -r comm <"/proc/$1/comm" || return 1
    [ "$comm" = autoclosed ] || return 1
    while read -r line; do
        [[ $line == SigCgt:* ]] || continue
        mask=${line##*[[:space:]]}
        return $((((16#$mask >> 14) & 1) == 0))
    done <"/proc/$1/status"
    return 1
}

# ended PID: the process has exited (a zombie until waited for, or gone).
ended() {
    local stat
    read -r stat 2>/dev/null <"/proc/$1/stat" || return 0
    stat=${stat##*) }
    [ "${stat:0:1}" = Z ]
}

took=()
late=0
for ((i = 1; i <= STARTS; i++)); do
    # setsid: the daemon leads its own group, which cleanup stops should the test die here.
    setsid "$AUTOCLOSED" --pid "$spid" --ports "$port" --grace-ms 600000 --interval-ms 86400000 \
        --log-file "$TMP/storm.log" 2>>"$TMP/storm.err" &
    pid=$!
    STARTED+=("$pid")
    spins=0
    until term_caught "$pid"; do
        spins=$((spins + 1))
        if [ $spins -ge 200000 ] || [ ! -e "/proc/$pid" ]; then
            fail "start $i: no SIGTERM handler in place"
        fi
    done
    # A random point of the first interval: at once, or after up to ~1 ms of spinning.
    delay=$((RANDOM % 3 == 0 ? 0 : RANDOM % 400))
    for ((k = 0; k < delay; k++)); do :; done
    t0=${EPOCHREALTIME/./}
    kill -TERM "$pid"
    # Its exit seen at once (spinning, not sleeping); past 2 s it is killed.
    until ended "$pid"; do
        [ $((${EPOCHREALTIME/./} - t0)) -lt 2000000 ] || {
            kill -KILL "$pid"
            break
        }
    done
    t1=${EPOCHREALTIME/./}
    rc=0
    wait "$pid" || rc=$?
    ms=$(((t1 - t0) / 1000))
    took+=("$ms")
    if [ "$ms" -ge $BOUND_MS ] || [ "$rc" -ne 0 ]; then
        late=$((late + 1))
        echo "  start $i: SIGTERM after $delay spins: exit $rc after ${ms} ms"
        [ "$late" -lt 3 ] || fail "$late of $i starts did not end within $BOUND_MS ms with status 0"
    fi
done
sorted=$(printf '%s\n' "${took[@]}" | sort -n)
echo "  $STARTS starts, SIGTERM at a random point: exit within $(head -n 1 <<<"$sorted")-$(tail -n 1 <<<"$sorted") ms" \
    "(median $(sed -n "$(((STARTS + 1) / 2))p" <<<"$sorted") ms)"
[ "$late" -eq 0 ] || fail "$late of $STARTS starts did not end within $BOUND_MS ms with status 0"

# SIGUSR2 and SIGUSR1 leave it running; SIGUSR1 says what it holds: the leaked socket, waiting out
# its grace, in the server's process.
LOG=$TMP/usr.log
start_daemon usr --pid "$spid" --ports "$port" --grace-ms 600000 --interval-ms 100 --log-file "$LOG"
wait_until 2000 has_lines 1 'watching' "$LOG" || fail "no start-up line"
kill -USR2 "$DAEMON_PID"
kill -USR1 "$DAEMON_PID"
status_form='autoclosed\[[0-9]+\]: status: sockets=[0-9]+ waiting=[0-9]+ processes=[0-9]+ reclaimed_total=[0-9]+ errors_total=[0-9]+ dry_run_observed_total=[0-9]+ sock_diag=ok$'
wait_until 2000 has_lines 1 "$status_form" "$LOG" || fail "SIGUSR1 logged no status line"
alive "$DAEMON_PID" || fail "SIGUSR1 or SIGUSR2 ended the daemon"
grep -E "$status_form" "$LOG" | sed 's/^/  /'
grep -qE 'status: sockets=1 waiting=1 processes=1 ' "$LOG" ||
    fail "the status line does not count the one leaked socket of the one process"
for _ in 1 2 3; do kill -USR2 "$DAEMON_PID"; done
kill -USR1 "$DAEMON_PID"
wait_until 2000 has_lines 2 "$status_form" "$LOG" || fail "a second SIGUSR1 logged no status line"
alive "$DAEMON_PID" || fail "SIGUSR2 ended the daemon"
stop_daemon usr

# The status line is asked for: written at --log error too.
start_daemon quiet --ports "$port" --interval-ms 100 --log error --log-file "$TMP/quiet.log"
wait_until 2000 term_caught "$DAEMON_PID" || fail "no SIGUSR1 handler in place"
kill -USR1 "$DAEMON_PID"
wait_until 2000 has_lines 1 "$status_form" "$TMP/quiet.log" || fail "no status line at --log error"
stop_daemon quiet
pass "$STARTS SIGTERMs each ended it within $BOUND_MS ms; SIGUSR1 logs its status, SIGUSR2 is ignored"
