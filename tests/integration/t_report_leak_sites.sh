#!/usr/bin/env bash
# The report a vendor gets, end to end: leak_sites (session_read_loop leaks what it reads with
# read(), session_recv_loop what it reads with recv(), a third port's connections are never read)
# runs under the library with AUTOCLOSE_LOG_FILE, 3, 2 and 1 connections closed by their peers;
# `autoclose report --json` on that log names session_read_loop with 3, session_recv_loop with
# 2 (each symbolised from the -g build's debug information: function and source line) and 1
# connection never read. The same run of the stripped copy gives the same sites, symbolised with
# --exe naming the unstripped build (what a vendor does with its own). Its text form says the
# same to a person.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tools_lib.sh
. "$(dirname "$0")/tools_lib.sh"
need_shim
command -v addr2line >/dev/null || command -v eu-addr2line >/dev/null ||
    fail "neither addr2line nor eu-addr2line is installed (scripts/install-deps.sh installs them)"
GRACE=300
SWEEP=200
first_lib=${AUTOCLOSE_LIB%% *}
[[ $first_lib == */libautoclose.so ]] ||
    skip "a runtime is preloaded in front of the library (${first_lib##*/}): the sites are its" \
        "interceptors', as t_leak_sites checks"

# connect PORT WORD: one client that sends WORD (none if empty) and closes.
connect() {
    timeout 10 python3 - "$1" "$2" <<'PY' || fail "a client failed"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
if sys.argv[2]:
    s.sendall(sys.argv[2].encode())
s.close()
PY
}

# leak NAME BINARY: the six connections against BINARY under the library, logged to
# $TMP/NAME.log; returns once all six are reclaimed.
leak() {
    local name=$1 bin=$2 p i n kind word port
    start_bg "$name" LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=$GRACE AUTOCLOSE_SWEEP_MS=$SWEEP \
        AUTOCLOSE_LOG_FILE="$TMP/$name.log" "$bin" --port-prefix "$TMP/$name"
    for p in read:3:hello recv:2:hello never:1:; do
        IFS=: read -r kind n word <<<"$p"
        port=$(await_port "${name}_$kind")
        for ((i = 1; i <= n; i++)); do
            connect "$port" "$word"
        done
    done
    wait_until $((GRACE + 10 * SWEEP + 5000)) has_lines 6 ': (shutdown|close) fd=' "$TMP/$name.log" ||
        fail "$name: $(count_lines ': (shutdown|close) fd=' "$TMP/$name.log") of 6 reclaims logged"
}

# report_counts JSON: "FUNCTION=COUNT" per entry (its site where it names no function, as the
# never-read one), sorted.
report_counts() {
    python3 - "$1" <<'PY'
import json, sys
entries = json.load(open(sys.argv[1]))
out = []
for e in entries:
    out.append("%s=%d" % (e.get("function") or e["site"], e["count"]))
print(" ".join(sorted(out)))
PY
}

leak plain "$FIXTURES/leak_sites"
run_rc rc "$TOOLS/autoclose" report --json "$TMP/plain.log"
assert_eq 0 "$rc" "exit status of autoclose report --json"
cp "$TMP/rc.out" "$TMP/plain.json"
python3 -m json.tool "$TMP/plain.json" >/dev/null || fail "the report is not JSON: $(cat "$TMP/plain.json")"
assert_eq "never-read=1 session_read_loop=3 session_recv_loop=2" "$(report_counts "$TMP/plain.json")" \
    "functions and counts the report names (unstripped build)"
grep -q '"location": *"[^"]*leak_sites\.c:[0-9]' "$TMP/plain.json" ||
    fail "the report names no source line in leak_sites.c: $(cat "$TMP/plain.json")"

run_rc rc "$TOOLS/autoclose" report "$TMP/plain.log"
sed 's/^/    | /' "$TMP/rc.out"
grep -q 'session_read_loop at .*leak_sites\.c:' "$TMP/rc.out" || fail "the text report does not name session_read_loop"
grep -q 'session_recv_loop at .*leak_sites\.c:' "$TMP/rc.out" || fail "the text report does not name session_recv_loop"
grep -qi 'never read' "$TMP/rc.out" || fail "the text report does not name the never-read connection"

leak stripped "$FIXTURES/stripped/leak_sites"
run_rc rc "$TOOLS/autoclose" report --json --exe "$FIXTURES/leak_sites" "$TMP/stripped.log"
assert_eq 0 "$rc" "exit status of autoclose report --json --exe (stripped run)"
assert_eq "never-read=1 session_read_loop=3 session_recv_loop=2" "$(report_counts "$TMP/rc.out")" \
    "functions and counts from the stripped copy's log, symbolised with the unstripped build"
pass "autoclose report names session_read_loop (3), session_recv_loop (2) and 1 never read," \
    "from an unstripped and a stripped build's logs"
