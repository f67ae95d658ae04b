#!/usr/bin/env bash
# A statically linked leaking server (the simulator built with -static: no dynamic loader, so no
# library can ever be preloaded into it) is reclaimed by autoclosed: every leak ends cleanly on
# both sides, the server keeps running and serving.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon

N=5
GRACE=300
INTERVAL=100
LOG="$TMP/daemon.log"

# The preload is asked for, and cannot happen: there is no loader to honour it.
start_bg server LD_PRELOAD="$AUTOCLOSE_LIB" "$FIXTURES/mos_server_static" --style read \
    --port-file "$TMP/server.port"
port=$(await_port server)
pid=$(main_pid server)
born=$(proc_start "$pid")
if grep -qE '/ld-linux|libautoclose|libc\.so' "/proc/$pid/maps"; then
    fail "mos_server_static maps a shared object: $(grep -E '\.so' "/proc/$pid/maps" | head -n 3)"
fi
echo "  mos_server_static (pid $pid): no loader, no shared library mapped"

client leak --port "$port" --count $N || fail "client exchanges failed"
wait_until 3000 leaking "$port" $N leak || true
echo "without the daemon: $(report_states "$port" leak)"
assert_eq $N "$(count_state close-wait "$port" server)" "server sockets in CLOSE_WAIT"

started=$(now_ms)
start_daemon daemon --pid "$pid" --grace-ms $GRACE --interval-ms $INTERVAL --log-file "$LOG"
wait_until $((GRACE + 5000)) clients_settled "$port" leak || true
took=$(($(now_ms) - started))
echo "${took} ms after autoclosed started: $(clients_report "$port" leak)"
require_settled "$port" "autoclosed did not reclaim the static server's leaks" leak
wait_until 2000 has_shutdowns $N "$LOG" "$pid" || true
# The kernel's name for the process is cut to 15 characters.
check_actions "$LOG" "$pid" "$port" mos_server_stat $GRACE leak
assert_eq $N "${#ACTED_FDS[@]}" "action lines"
numbers_still_open "$pid" "${ACTED_FDS[@]}"
assert_eq "$born" "$(proc_start "$pid")" "the server's start time (same process)"

client after --port "$port" --count 1 || fail "a new session after the reclaim failed"
stop_daemon daemon
pass "$N leaks of a static server reclaimed in ${took} ms (grace ${GRACE} ms); still serving"
