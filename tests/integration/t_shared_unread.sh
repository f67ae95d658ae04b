#!/usr/bin/env bash
# A socket another process may hold is only released, never drained: the peer's unread data is
# that process's too. A server hands a connection to a helper (fork and exec) and keeps its own
# copy by mistake; the helper reads the 50,000-byte request only after longer than ten graces.
# The library releases the server's copy (shared=yes), and the helper still reads every byte.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

GRACE=100 # ten graces: 1 s; the helper waits 2.5 s
start_bg server LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=$GRACE AUTOCLOSE_SWEEP_MS=100 \
    "$FIXTURES/shared_unread" --port-file "$TMP/server.port" --helper-wait-ms 2500
port=$(await_port server)
cat >"$TMP/client.py" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"x" * 50000)
s.shutdown(socket.SHUT_WR)
s.settimeout(20)
print(s.recv(200).decode().strip())
PY
got=$(timeout 30 python3 "$TMP/client.py" "$port") || fail "the client got no answer"
echo "  the helper answered: $got"
assert_eq "helper read 50000 bytes" "$got" "what the helper read"
grep -q 'close fd=.* shared=yes' "$TMP/server.err" ||
    fail "the server's copy was not released: $(cat "$TMP/server.err")"
pass "a shared socket's unread data stays for the process that still reads it"
