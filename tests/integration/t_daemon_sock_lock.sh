#!/usr/bin/env bash
# A local user tries to freeze autoclosed through the kernel's own lock on his socket: his process
# (run as nobody) leaks a half-closed connection and one of its threads sends on it from a page of
# a FUSE file whose data never comes, so the socket's lock stays held (tests/fixtures/lock_holder).
# Whoever asks the kernel for that socket's TCP_INFO then sleeps uninterruptibly: `ss -ti` does,
# and so did the daemon's every-interval sock_diag dump, for good (SIGKILL or not). Now the dump
# asks for nothing that takes a socket's lock, and the taker that dates the FIN of the user's
# socket is the one left waiting: it is given up after 2 s, that process is left alone for a
# back-off (and that user's others while the taker lives), and root's leak, made meanwhile, is
# reclaimed; SIGTERM still ends the daemon. The user's socket is watched (--ports names its port),
# so both the dump and the taker meet it.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
need_root "mounting a FUSE file system, and an attacker of another user"
[ -c /dev/fuse ] || skip "no /dev/fuse here"

GRACE=500
INTERVAL=100
LOG="$TMP/daemon.log"
nobody=$(id -u nobody)

fuse_stall_up

# Ports below the clients' range: --ports alone refuses those clients may pick themselves.
start_bg srv "$FIXTURES/mos_server" --style read --port "$(pick_port)" --port-file "$TMP/srv.port"
sport=$(await_port srv)
start_bg holder "${UNPRIVILEGED[@]}" "$FIXTURES/lock_holder" --port "$(pick_port "$sport")" \
    --port-file "$TMP/nobody/holder.port" --file "$TMP/mnt/file"
wait_for_file "$TMP/nobody/holder.port" || fail "the holder published no port"
cp "$TMP/nobody/holder.port" "$TMP/holder.port"
hport=$(await_port holder)
hpid=$(main_pid holder)
wait_until 3000 grep -q '^read pid=' "$TMP/fuse.out" || fail "the holder's send did not stall"
echo "  the holder (pid $hpid, uid $nobody) holds its CLOSE_WAIT socket's lock (port $hport)"

start_daemon daemon --ports "$hport,$sport" --grace-ms $GRACE --interval-ms $INTERVAL \
    --log debug --log-file "$LOG"
dpid=$DAEMON_PID

# Root's leak, made now, is reclaimed: the dump goes on, the taker stuck on the user's socket is
# given up after 2 s, and the next takes root's.
t0=$(now_ms)
client root --port "$sport" --count 1 || fail "client exchange with root's server failed"
wait_until $((GRACE + 2000 + 10 * INTERVAL + 2000)) clients_settled "$sport" root || true
state=$(sed -n 's/^State:[[:space:]]*//p' "/proc/$dpid/status")
echo "  the daemon: $state, in $(cat "/proc/$dpid/wchan")"
require_settled "$sport" "root's leak was not reclaimed while the user's socket is locked" root
echo "  root's leak reclaimed $(($(now_ms) - t0)) ms after it was made"

# One line says which process the taker was stuck on, and that it is left alone meanwhile.
wait_until 3000 grep -q "stuck on pid=$hpid " "$LOG" || fail "no line names the holder"
grep -q "stuck on pid=$hpid fd=[0-9]*): stopped; that process is left alone for 60 s" "$LOG" ||
    fail "no line says the holder is left alone"

# SIGTERM ends the daemon at once.
stop_daemon daemon
echo "  SIGTERM ended the daemon in $STOP_MS ms"

# The FUSE server gone, the send fails, the lock is let go: nothing stays in D.
fuse_down
wait_until 3000 bash -c "! grep -l '^State:[[:space:]]*D' /proc/[0-9]*/status 2>/dev/null |
    xargs -r grep -l '^Name:[[:space:]]*autoclosed' | grep -q ." ||
    fail "a process of the daemon is still in D"
pass
