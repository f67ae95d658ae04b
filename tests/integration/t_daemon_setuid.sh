#!/usr/bin/env bash
# A setuid-root copy of the leaking simulator, run by an unprivileged user: the loader runs it in
# secure-execution mode and ignores LD_PRELOAD (asked for here, and checked not to have happened),
# so the shim cannot help it. autoclosed, running as root, reclaims its connections.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
need_root "a setuid-root program and a daemon allowed to reach it"

N=4
GRACE=300
INTERVAL=100
LOG="$TMP/daemon.log"

open_to_all "$TMP/suid"
chmod 0755 "$TMP/suid"
cp "$FIXTURES/mos_server" "$TMP/suid/mos_server"
chown root:root "$TMP/suid/mos_server"
chmod 4755 "$TMP/suid/mos_server"

start_bg server LD_PRELOAD="$AUTOCLOSE_LIB" "${UNPRIVILEGED[@]}" "$TMP/suid/mos_server" \
    --style read --port-file "$TMP/server.port"
port=$(await_port server)
pid=$(main_pid server)
uids=$(sed -n 's/^Uid:[[:space:]]*//p' "/proc/$pid/status" | awk '{ print $1, $2 }')
assert_eq "$(id -u nobody) 0" "$uids" "the server's real and effective uids"
if maps_lib "$pid"; then
    fail "the shim was preloaded into a setuid program: the test proves nothing"
fi
echo "  setuid server (pid $pid, real uid nobody, effective root): LD_PRELOAD ignored"

reclaim_leaks_of "$pid" "$port" mos_server "setuid server"
client after --port "$port" --count 1 || fail "a new session after the reclaim failed"
stop_daemon daemon
pass "$N leaks of a setuid-root server run by nobody reclaimed in ${TOOK} ms (grace ${GRACE} ms)"
