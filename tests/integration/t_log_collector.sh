#!/usr/bin/env bash
# Where nothing listens on /dev/log (a container) and stderr is a log collector's socket (a
# socketpair or a stream connected to the collector, as container runtimes and journald give a
# service), the lines go to that stderr rather than nowhere: the start-up complaint from the
# application's thread and the action line from the library's. An inetd-style server's stderr is
# its connection, which stays clean: those lines are lost, never sent to the peer.
#
# Runs in a mount namespace of its own whose /dev has no log socket: root, and unshare(1).
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim
[ "$(id -u)" -eq 0 ] || skip "a mount namespace of its own needs root"
command -v unshare >/dev/null || skip "unshare is not installed"

# The collector: the program's stderr is one end of a socketpair, the other end read into a file.
cat >"$TMP/collector.py" <<'PY'
import socket, subprocess, sys
ours, theirs = socket.socketpair()
child = subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL, stderr=theirs.fileno())
theirs.close()
with open(sys.argv[1], "ab", buffering=0) as out:
    while True:
        data = ours.recv(65536)
        if not data:
            break
        out.write(data)
sys.exit(child.wait())
PY
cat >"$TMP/in_namespace.sh" <<'SH'
set -eu
mount --make-rprivate /
mkdir -p "$TMP/realdev"
mount --rbind /dev "$TMP/realdev"
mount -t tmpfs tmpfs /dev
for n in null zero random urandom; do
    touch "/dev/$n"
    mount --bind "$TMP/realdev/$n" "/dev/$n"
done
[ ! -e /dev/log ] || { echo "/dev/log is still there" >&2; exit 1; }
env LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=300 AUTOCLOSE_MODE=explode \
    "$FIXTURES/inetd_server" --port-file "$TMP/inetd.port" &
exec python3 "$TMP/collector.py" "$TMP/collected.txt" env LD_PRELOAD="$AUTOCLOSE_LIB" \
    AUTOCLOSE_GRACE_MS=300 AUTOCLOSE_MODE=explode "$FIXTURES/mos_server" --style read \
    --port-file "$TMP/server.port"
SH
start_bg ns env TMP="$TMP" AUTOCLOSE_LIB="$AUTOCLOSE_LIB" FIXTURES="$FIXTURES" \
    unshare -m bash "$TMP/in_namespace.sh"
port=$(await_port server)
client leak --port "$port" || fail "client exchange failed"
wait_until 3000 reclaimed "$port" 1 leak || fail "not reclaimed: $(report_states "$port" leak)"
wait_until 3000 grep -q 'libautoclose\[[0-9]*\]: shutdown fd=' "$TMP/collected.txt" ||
    fail "the timer's line did not reach the collector: $(cat "$TMP/collected.txt" 2>/dev/null)"
sed 's/^/  collected: /' "$TMP/collected.txt"
grep -q 'libautoclose\[[0-9]*\]: AUTOCLOSE_MODE=' "$TMP/collected.txt" ||
    fail "the application thread's line did not reach the collector"

inetd=$(await_port inetd)
timeout 10 python3 "$SCRIPT_FIXTURES/halfclose_client.py" --port "$inetd" --wait 5 \
    >"$TMP/inetd-client.out" || fail "the inetd server's connection was never closed"
cat "$TMP/inetd-client.out"
grep -q 'clean_reply=True extra_bytes=0 ' "$TMP/inetd-client.out" ||
    fail "the inetd server's peer received bytes after the reply: $(cat "$TMP/inetd-client.out")"
pass "without /dev/log, lines reach a collector's stderr socket and never a connection"
