#!/usr/bin/env bash
# Where log lines go when stderr is a socket (an inetd-style server: fds 0-2 are the
# connection) and no log file is set: syslog, never the connection. Every line, from the
# application's own thread or the timer's, is one datagram the shim sends to /dev/log itself
# (glibc's syslog() allocates, and a line may be written where a signal handler runs). Both
# threads' lines must arrive.
#
# Runs the server in a mount namespace of its own whose /dev holds the real null, zero, random
# and urandom and a /dev/log read by this test: root, and unshare(1), are needed.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim
[ "$(id -u)" -eq 0 ] || skip "a mount namespace of its own needs root"
command -v unshare >/dev/null || skip "unshare is not installed"

cat >"$TMP/sink.py" <<'PY'
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "ab", buffering=0) as out:
    while True:
        out.write(s.recv(65536) + b"\n")
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
python3 "$TMP/sink.py" /dev/log "$TMP/syslog.txt" &
for _ in $(seq 100); do [ -S /dev/log ] && break; sleep 0.05; done
[ -S /dev/log ] || { echo "no /dev/log sink" >&2; exit 1; }
exec env LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=300 AUTOCLOSE_LOG=debug AUTOCLOSE_MODE=explode \
    "$FIXTURES/inetd_server" --port-file "$TMP/server.port"
SH
start_bg server env TMP="$TMP" AUTOCLOSE_LIB="$AUTOCLOSE_LIB" FIXTURES="$FIXTURES" \
    unshare -m bash "$TMP/in_namespace.sh"
port=$(await_port server)
timeout 10 python3 "$SCRIPT_FIXTURES/halfclose_client.py" --port "$port" --wait 5 \
    >"$TMP/client.out" || fail "with the shim the server never closed its side"
grep -q 'clean_reply=True extra_bytes=0 ' "$TMP/client.out" ||
    fail "the peer received bytes after the reply: $(cat "$TMP/client.out")"
wait_until 3000 grep -Eq 'libautoclose: (shutdown|close) fd=' "$TMP/syslog.txt" ||
    fail "no line from the timer reached /dev/log: $(cat "$TMP/syslog.txt" 2>/dev/null)"
sed 's/^/  syslog: /' "$TMP/syslog.txt"
# The application's thread: the constructor's complaint about AUTOCLOSE_MODE. LOG_DAEMON |
# LOG_ERR is 27, LOG_DAEMON | LOG_INFO 30; the daemon adds the time stamp.
grep -Eq '^<27>[^ ]+: libautoclose: AUTOCLOSE_MODE=' "$TMP/syslog.txt" ||
    fail "the application thread's line did not arrive"
# inetd's connection is born elsewhere: released, not shut down.
grep -Eq '^<30>[^ ]+: libautoclose: (shutdown|close) fd=[0-2] ' "$TMP/syslog.txt" ||
    fail "the timer's line is not in the expected form"
pass "log lines reach syslog from the application's thread and from the timer"
