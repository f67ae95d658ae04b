#!/usr/bin/env bash
# The files the library writes for its counters (AUTOCLOSE_STATS_FILE), as an unprivileged user
# who can write their directory would attack them, and as ordinary programs use them:
#   1. a symlink planted where the temporary file goes (today's name: the file's name, .tmp.,
#      the pid) never makes the writer write through it: the file it points to stays as it was;
#      the stats file is replaced as a plain file of mode 0644;
#   2. 50 short-lived children of a shell, none with a TCP connection, leave no file behind;
#   3. a child the server runs, with a TCP connection of its own and the same name without %p,
#      does not overwrite the server's counters, and says so.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

GRACE=200
# 1. A directory everyone can write, not sticky (a shared textfile-collector directory).
shared="$TMP/textfile"
chmod 0755 "$TMP" # the unprivileged user must reach the shared directory
mkdir -m 0777 "$shared"
echo "the victim's own content" >"$TMP/victim"
cp "$TMP/victim" "$TMP/victim.orig"
start_bg main LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=$GRACE \
    AUTOCLOSE_STATS_FILE="$shared/autoclose.prom" "$FIXTURES/mos_server" --style read \
    --port-file "$TMP/main.port"
port=$(await_port main)
pid=$(main_pid main)
planted="$shared/autoclose.prom.tmp.$pid"
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    setpriv --reuid=65534 --regid=65534 --clear-groups ln -s "$TMP/victim" "$planted"
else
    ln -s "$TMP/victim" "$planted"
fi
client c1 --port "$port" --count 2 || fail "client failed"
wait_until 5000 grep -qs 'autoclose_reclaimed_total{pid="'"$pid"'",action="shutdown",found="read"} 2' \
    "$shared/autoclose.prom" || fail "the stats file never showed the 2 reclaims"
cmp -s "$TMP/victim" "$TMP/victim.orig" ||
    fail "the file behind a planted symlink was written: $(head -c 200 "$TMP/victim")"
[ -f "$shared/autoclose.prom" ] && [ ! -L "$shared/autoclose.prom" ] ||
    fail "the stats file is not a plain file"
assert_eq 644 "$(stat -c %a "$shared/autoclose.prom")" "the stats file's mode"
[ -L "$planted" ] || fail "the planted link was removed or replaced"
leftovers=$(find "$shared" -name 'autoclose.prom.tmp.*' ! -path "$planted" | wc -l)
assert_eq 0 "$leftovers" "temporary files left beside the stats file"

# 2. No TCP connection, no file: 50 children of a shell.
mkdir "$TMP/children"
env LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_STATS_FILE="$TMP/children/autoclose-%p.prom" \
    bash -c 'for i in $(seq 50); do /bin/true; done' || fail "the shell loop failed"
assert_eq 0 "$(find "$TMP/children" -type f | wc -l)" "stats files left by 50 children without TCP"

# 3. The server (python here, with a connection reclaimed) runs a child that makes a TCP
# connection of its own, with the same stats file name, which has no %p.
cat >"$TMP/parent.py" <<'PY'
import socket, subprocess, sys, time
path, probe = sys.argv[1], sys.argv[2]
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen()
c = socket.create_connection(l.getsockname()); s, _ = l.accept()
c.shutdown(socket.SHUT_WR)
assert s.recv(16) == b""  # the EOF: the library reclaims it after its grace
deadline = time.monotonic() + 10
while time.monotonic() < deadline:
    try:
        if 'found="read"} 1' in open(path).read():
            break
    except OSError:
        pass
    time.sleep(0.05)
print("parent counted", flush=True)
subprocess.run([probe], check=True)
print("child done", flush=True)
time.sleep(60)
PY
start_bg py LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=$GRACE \
    AUTOCLOSE_STATS_FILE="$TMP/shared.prom" python3 "$TMP/parent.py" "$TMP/shared.prom" \
    "$FIXTURES/secure_probe"
wait_until 15000 grep -q '^child done' "$TMP/py.out" ||
    fail "the parent and its child did not finish: $(cat "$TMP/py.out" "$TMP/py.err")"
pypid=$(main_pid py)
grep -q "autoclose_reclaimed_total{pid=\"$pypid\",action=\"shutdown\",found=\"read\"} 1" \
    "$TMP/shared.prom" || fail "the child overwrote the server's counters: $(head -n 5 "$TMP/shared.prom")"
grep -q "holds the counters of process $pypid, which still runs" "$TMP/py.err" ||
    fail "the child did not say why it wrote no stats: $(cat "$TMP/py.err")"
pass "no write through a planted link, no file without TCP, no child over its parent's counters"
