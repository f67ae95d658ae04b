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

# The kernel's name for the process is cut to 15 characters.
reclaim_leaks_of "$pid" "$port" mos_server_stat "static server"
assert_eq "$born" "$(proc_start "$pid")" "the server's start time (same process)"

client after --port "$port" --count 1 || fail "a new session after the reclaim failed"
stop_daemon daemon
pass "$N leaks of a static server reclaimed in ${TOOK} ms (grace ${GRACE} ms); still serving"
