#!/usr/bin/env bash
# AUTOCLOSE_LOG_FILE after logrotate: once the file is moved away, the next line goes to a new
# file under the name (made by the library, or the empty one logrotate's `create` left there),
# and none to the moved one. The opening rules still hold for the new file: a symlink planted
# under the name is refused, the line goes to stderr and the link's target stays untouched.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

GRACE=300
LOG=$TMP/shim.log
start_bg server LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=$GRACE AUTOCLOSE_LOG_FILE="$LOG" \
    "$FIXTURES/mos_server" --style read --port-file "$TMP/server.port"
port=$(await_port server)

# leak_and_log NAME FILE: one connection leaked and reclaimed; its line must reach FILE.
leak_and_log() {
    client "$1" --port "$port" || fail "$1: client exchange failed"
    local peer
    peer=$(client_ports "$1")
    wait_until $((GRACE + 3000)) reclaimed "$port" 1 "$1" ||
        fail "$1: not reclaimed: $(report_states "$port" "$1")"
    wait_until 2000 has_lines 1 "shutdown fd=.* peer=127\.0\.0\.1:$peer " "$2" ||
        fail "$1: its line did not reach ${2##*/}: $(cat "$2" 2>/dev/null)"
    echo "  $1: line in ${2##*/}"
}

leak_and_log first "$LOG"
# Rotated as logrotate does by default: renamed, nothing in its place.
mv "$LOG" "$LOG.1"
leak_and_log second "$LOG"
[ "$(stat -c %a "$LOG")" = 640 ] || fail "the new file's mode is $(stat -c %a "$LOG"), not 640"
# Rotated with `create`: renamed, and a new empty file made under the name.
mv "$LOG" "$LOG.2"
install -m 0640 /dev/null "$LOG"
created=$(stat -c %i "$LOG")
leak_and_log third "$LOG"
assert_eq "$created" "$(stat -c %i "$LOG")" "inode of the file the line went to (the one created)"
for f in "$LOG.1" "$LOG.2" "$LOG"; do
    assert_eq 1 "$(count_lines 'shutdown fd=' "$f")" "action lines in ${f##*/}"
done

# A symlink where the file was: refused as at start; the line goes to stderr.
mv "$LOG" "$LOG.3"
: >"$TMP/target"
ln -s "$TMP/target" "$LOG"
client fourth --port "$port" || fail "fourth: client exchange failed"
wait_until $((GRACE + 3000)) reclaimed "$port" 1 fourth || fail "fourth: not reclaimed"
wait_until 2000 has_lines 1 'shutdown fd=' "$TMP/server.err" ||
    fail "with a symlink under the name, the line went nowhere: $(cat "$TMP/server.err")"
grep -q 'cannot open AUTOCLOSE_LOG_FILE=.*(a symbolic link)' "$TMP/server.err" ||
    fail "no line says why the file was not opened: $(cat "$TMP/server.err")"
assert_eq 0 "$(wc -c <"$TMP/target")" "bytes written through the planted symlink"
assert_eq 1 "$(count_lines 'shutdown fd=' "$LOG.3")" "action lines in the file moved away last (its own)"
pass "after each rotation the next line goes to the name; a link there is refused"
