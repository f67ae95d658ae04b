#!/usr/bin/env bash
# Under systemd a service's stderr is the journal's stream, and JOURNAL_STREAM names it
# ("<st_dev>:<st_ino>"). autoclosed's lines written there, and the library's, carry sd-daemon(3)'s
# priority prefix (<3> error, <5> the SIGUSR1 status, <6> info, <7> debug) and no time of their
# own (the journal stamps each line): so `journalctl -p err` finds the errors. Here stderr is a
# pipe and JOURNAL_STREAM names that pipe, as systemd would name its socket. With JOURNAL_STREAM
# unset, or naming another file (a child of the service with another stderr inherits it), the
# lines are unchanged: "<UTC time> program[pid]: ...".
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
need_shim

GRACE=300
INTERVAL=100
STAMP='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z '

# on_pipe NAME MODE CMD...: CMD in the background, its stderr on a pipe whose other end copies
# it to $TMP/NAME.pipe. MODE journal: JOURNAL_STREAM names that pipe; other: it names another
# file (/dev/null); none: it is unset.
on_pipe() {
    local name=$1 mode=$2
    shift 2
    # shellcheck disable=SC2016 # expanded by the inner shell
    start_bg "$name" bash -c '
        exec 2> >(exec cat >"$1")
        case $2 in
        journal) JOURNAL_STREAM=$(stat -L -c %d:%i /dev/fd/2) ;;
        other) JOURNAL_STREAM=$(stat -L -c %d:%i /dev/null) ;;
        none) unset JOURNAL_STREAM ;;
        esac
        [ -z "${JOURNAL_STREAM+set}" ] || export JOURNAL_STREAM
        shift 2
        exec "$@"' on_pipe "$TMP/$name.pipe" "$mode" "$@"
}

# on_socket NAME CMD...: the same with stderr on a local stream socket (a socketpair, as journald
# gives a service), JOURNAL_STREAM naming it: the library must not take it for a connection.
# shellcheck disable=SC2317 # called through "${run[@]}"
on_socket() {
    local name=$1
    shift
    start_bg "$name" python3 -c '
import os, socket, sys
mine, theirs = socket.socketpair()
if os.fork() == 0:
    theirs.close()
    with open(sys.argv[1], "wb", buffering=0) as out:
        while True:
            data = mine.recv(4096)
            if not data:
                os._exit(0)
            out.write(data)
mine.close()
os.dup2(theirs.fileno(), 2)
theirs.close()
st = os.fstat(2)
os.environ["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
os.execvp(sys.argv[2], sys.argv[2:])' "$TMP/$name.pipe" "$@"
}

# all_lines FILE REGEX WHAT: every line of FILE matches REGEX.
all_lines() {
    local bad
    [ -s "$1" ] || fail "$3: no line at all"
    bad=$(grep -Ev -- "$2" "$1" | head -n 3) || true
    [ -z "$bad" ] || fail "$3: lines not of that form:"$'\n'"$bad"
}

# has PRIORITY REGEX FILE: a line of FILE with that prefix and message.
has() { grep -Eq -- "^<$1>$2" "$3"; }

start_bg server "$FIXTURES/mos_server" --style read --port-file "$TMP/server.port"
port=$(await_port server)
pid=$(main_pid server)

# daemon NAME MODE: the daemon on the server, at debug, with a stats file it cannot write (an
# error line); its leak reclaimed (an info line), a status asked for; then stopped.
daemon() {
    local name=$1 mode=$2 dpid
    client "$name-c" --port "$port" --count 1 || fail "client exchange failed"
    wait_until 3000 leaking "$port" 1 "$name-c" || fail "no leak: $(report_states "$port" "$name-c")"
    on_pipe "$name" "$mode" "$AUTOCLOSED" --pid "$pid" --grace-ms $GRACE --interval-ms $INTERVAL \
        --log debug --stats-file "$TMP/no-such-dir/autoclosed.prom"
    wait_until $((GRACE + 5000)) clients_settled "$port" "$name-c" || true
    require_settled "$port" "the daemon ($mode) did not reclaim the leak" "$name-c"
    dpid=$(main_pid "$name")
    wait_until 2000 has_lines 1 'shutdown pid=' "$TMP/$name.pipe" || fail "no action line from the daemon"
    kill -USR1 "$dpid"
    wait_until 2000 has_lines 1 'status: sockets=' "$TMP/$name.pipe" || fail "no status line"
    kill -TERM "$dpid"
    wait_until 2000 gone "$dpid" || fail "the daemon did not stop"
    wait_until 2000 has_lines 1 'stopping on signal' "$TMP/$name.pipe" || fail "no last line"
    sed 's/^/    /' "$TMP/$name.pipe" | head -n 8
}

echo "autoclosed, JOURNAL_STREAM naming its stderr:"
daemon dj journal
all_lines "$TMP/dj.pipe" '^<[3567]>autoclosed\[[0-9]+\]: ' "the daemon's lines to the journal"
has 6 "autoclosed\[[0-9]+\]: autoclosed [^ ]+: watching" "$TMP/dj.pipe" || fail "no <6> start-up line"
has 7 "autoclosed\[[0-9]+\]: scan pid=$pid " "$TMP/dj.pipe" || fail "no <7> debug line"
has 3 "autoclosed\[[0-9]+\]: cannot write --stats-file" "$TMP/dj.pipe" || fail "no <3> error line"
has 6 "autoclosed\[[0-9]+\]: shutdown pid=$pid " "$TMP/dj.pipe" || fail "no <6> action line"
has 5 "autoclosed\[[0-9]+\]: status: " "$TMP/dj.pipe" || fail "no <5> status line"
! grep -Eq "$STAMP|^<[0-9]>[0-9]{4}-" "$TMP/dj.pipe" || fail "a line to the journal has a time of its own"

echo "autoclosed, a bad option, JOURNAL_STREAM naming its stderr:"
on_pipe bad journal "$AUTOCLOSED" --pid "$pid" --no-such-option
wait_until 2000 has_lines 1 'unknown option' "$TMP/bad.pipe" || fail "no line about the bad option"
sed 's/^/    /' "$TMP/bad.pipe"
grep -q "^<3>autoclosed: unknown option: '--no-such-option'" "$TMP/bad.pipe" ||
    fail "the bad option's line is not an error to the journal"

for mode in none other; do
    echo "autoclosed, JOURNAL_STREAM $mode:"
    daemon "d$mode" $mode
    all_lines "$TMP/d$mode.pipe" "${STAMP}autoclosed\[[0-9]+\]: " "the daemon's lines (JOURNAL_STREAM $mode)"
done

# library NAME MODE: a preloaded server at debug, with a bad setting (an error line at load), whose
# leak is reclaimed. MODE socket: on_socket.
library() {
    local name=$1 mode=$2 lport run=(on_pipe "$1" "$2")
    [ "$mode" != socket ] || run=(on_socket "$name")
    "${run[@]}" env LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=$GRACE AUTOCLOSE_LOG=debug \
        AUTOCLOSE_SWEEP_MS=soon "$FIXTURES/mos_server" --style read --port-file "$TMP/$name.port"
    lport=$(await_port "$name")
    client "$name-c" --port "$lport" --count 1 || fail "client exchange failed"
    wait_until $((GRACE + 5000)) clients_settled "$lport" "$name-c" || true
    require_settled "$lport" "the library ($mode) did not reclaim the leak" "$name-c"
    wait_until 2000 has_lines 1 'shutdown fd=' "$TMP/$name.pipe" || fail "no action line from the library"
    sed 's/^/    /' "$TMP/$name.pipe" | head -n 6
}

for mode in journal socket; do
    echo "the library, JOURNAL_STREAM naming its stderr ($mode):"
    library "l$mode" $mode
    f=$TMP/l$mode.pipe
    all_lines "$f" '^<[367]>libautoclose\[[0-9]+\]: ' "the library's lines to the journal ($mode)"
    has 3 "libautoclose\[[0-9]+\]: AUTOCLOSE_SWEEP_MS='soon'" "$f" || fail "no <3> line for the bad setting"
    has 7 "libautoclose\[[0-9]+\]: libautoclose [^ ]+ active: " "$f" || fail "no <7> start-up line"
    has 6 "libautoclose\[[0-9]+\]: shutdown fd=" "$f" || fail "no <6> action line"
    ! grep -Eq "$STAMP|^<[0-9]>[0-9]{4}-" "$f" || fail "a line to the journal has a time of its own"
done

for mode in none other; do
    echo "the library, JOURNAL_STREAM $mode:"
    library "l$mode" $mode
    all_lines "$TMP/l$mode.pipe" "${STAMP}libautoclose\[[0-9]+\]: " "the library's lines (JOURNAL_STREAM $mode)"
done
pass "on the journal's stream: priority prefixes <3>/<5>/<6>/<7> and no time of their own, the\
 daemon's and the library's; elsewhere, lines unchanged"
