#!/usr/bin/env bash
# --exe looks at /proc/PID/exe of every process, and reading that link waits for as long as the
# process is stuck in execve: a local user (nobody here) makes one by opening a file of a FUSE
# mount whose server never answers FLUSH, with close-on-exec, and then exec'ing (the exec closes
# the file and waits). The daemon must not freeze: only its scanner (a child) reads the links; it
# is held up, killed after 1 s blocked, the process that held it up is named in one line and left
# out of scans, and the executable's server is found all the same at the next look: its leak is
# reclaimed, and SIGTERM ends the daemon at once.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
need_root "mounting a FUSE file system, and a process of another user"
[ -c /dev/fuse ] || skip "no /dev/fuse here"

GRACE=300
INTERVAL=100
LOG=$TMP/daemon.log

# The FUSE server first down (the stuck exec then goes on), then the rest as lib.sh does it. Its
# pid is taken before the stuck process exists: pgrep reads every /proc/PID/stat, which waits for
# the stuck exec too.
FUSE_PID=
# shellcheck disable=SC2317 # called by the trap
fuse_down() {
    [ -z "$FUSE_PID" ] || kill -KILL "$FUSE_PID" 2>/dev/null || true
    umount -l "$TMP/mnt" 2>/dev/null || true
}
trap 'fuse_down; cleanup' EXIT

chmod 0711 "$TMP"
mkdir "$TMP/mnt" "$TMP/bin"
start_bg fuse "$FIXTURES/fuse_stall" "$TMP/mnt"
if ! wait_until 5000 grep -q '^ready' "$TMP/fuse.out"; then
    grep -q 'fuse_stall: \(mount\|/dev/fuse\)' "$TMP/fuse.err" && skip "$(head -n 1 "$TMP/fuse.err")"
    fail "the FUSE server did not start"
fi
FUSE_PID=$(main_pid fuse)

# Everything that needs pgrep first.
cp "$FIXTURES/mos_server" "$TMP/bin/mosA"
start_bg a "$TMP/bin/mosA" --style read --port-file "$TMP/a.port"
aport=$(await_port a)
apid=$(main_pid a)
start_daemon daemon --exe "$TMP/bin/mosA" --grace-ms $GRACE --interval-ms $INTERVAL --log-file "$LOG"
dpid=$DAEMON_PID
wait_until 5000 has_lines 1 "--exe $TMP/bin/mosA: pid=$apid: watched" "$LOG" ||
    fail "the daemon did not find mosA's process: $(cat "$LOG")"

# shellcheck disable=SC2016 # the program is Python's
start_bg stuck "${UNPRIVILEGED[@]}" /usr/bin/python3 -c '
import os, sys
os.open(sys.argv[1], os.O_RDONLY | os.O_CLOEXEC)
os.execv("/bin/true", ["true"])' "$TMP/mnt/file"
wait_until 5000 grep -q '^flush pid=' "$TMP/fuse.out" || fail "the exec did not get stuck"
spid=$(sed -n 's/^flush pid=//p' "$TMP/fuse.out" | head -n 1)
blocks=yes
if timeout 1 readlink "/proc/$spid/exe" >/dev/null; then
    blocks=no
    echo "  (on this kernel reading /proc/$spid/exe does not wait for the stuck exec)"
else
    echo "  reading /proc/$spid/exe waits: pid $spid is stuck in execve"
fi

# A leak of mosA: a new socket, so the executable's processes are looked for again.
t0=$(now_ms)
client c1 --port "$aport" --count 1 || fail "client failed"
wait_until $((GRACE + 5000)) clients_settled "$aport" c1 || true
require_settled "$aport" "mosA's leak was not reclaimed beside the stuck exec" c1
echo "  mosA's leak reclaimed $(($(now_ms) - t0)) ms after it was made"
sed 's/^/    /' "$LOG"
assert_eq 1 "$(count_shutdowns "$LOG" "$apid")" "  actions on mosA"
if [ $blocks = yes ]; then
    grep -qF "cannot read pid=$spid " "$LOG" || fail "no line names the process that held up the look"
fi
alive "$spid" || fail "the stuck process has ended: the test proves nothing"
# stop_daemon finds the daemon with pgrep: here, by its pid.
kill -TERM "$dpid"
wait_until 2000 gone "$dpid" || fail "the daemon did not stop on SIGTERM"
pass "a process stuck in execve held up one look for 1 s, was left out, and the daemon went on"
