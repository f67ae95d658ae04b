#!/usr/bin/env bash
# Fork in a musl server run as `autoclose -- server` (musl's fork runs the library's
# pthread_atfork handlers; its _Fork is wrapped): (1) a threaded program that forks while its
# threads are inside the library's slow path never leaves a child stuck on an inherited lock;
# (2) a child that inherits a pending connection and never calls the library again gets it
# reclaimed by its own timer (released: the copy is shared), the peer ending in TIME_WAIT.
# Skipped without the musl build (musl-gcc, from Debian's musl-tools).
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tools_lib.sh
. "$(dirname "$0")/tools_lib.sh"
need_shim
[ -f "$AUTOCLOSE_LIBMUSL" ] || skip "no musl library at $AUTOCLOSE_LIBMUSL ('make' builds it where" \
    "musl-gcc is: Debian's musl-tools)"
for f in fork_storm fork_inherit; do
    [ -x "$FIXTURES_MUSL/$f" ] || skip "no musl $f in $FIXTURES_MUSL (make integration builds it)"
done
use_wrapper

timeout 120 "$AUTOCLOSE" --grace-ms 1 --log off -- "$FIXTURES_MUSL/fork_storm" --forks 300 \
    --threads 4 >"$TMP/storm.out" 2>&1 || fail "fork storm: $(cat "$TMP/storm.out")"
cat "$TMP/storm.out"
grep -q '^forks=300 stuck=0 failed=0$' "$TMP/storm.out" || fail "fork storm did not complete"

start_bg inherit "$AUTOCLOSE" --grace-ms 300 -- "$FIXTURES_MUSL/fork_inherit" \
    --port-file "$TMP/inherit.port"
port=$(await_port inherit)
maps_has "$(main_pid inherit)" "$AUTOCLOSE_LIBMUSL" || fail "the musl library is not loaded"
client inherit_client --port "$port" || fail "client exchange failed"
wait_until 3000 grep -q '^parent exits' "$TMP/inherit.out" || fail "the parent never forked"
wait_until 3000 reclaimed "$port" 1 inherit_client ||
    fail "the child's inherited connection was not reclaimed: $(report_states "$port" inherit_client)"
grep -q 'close fd=.* shared=yes' "$TMP/inherit.err" || fail "no release logged by the child"
pass "a musl program: no stuck child in 300 forks; inherited connection reclaimed by the child's timer"
