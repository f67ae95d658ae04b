#!/usr/bin/env bash
# --pid takes what pidof prints and thread ids:
#   --pid "CHILD PARENT"   (pidof's form, spaces) for a two-process server, the simulator forking a
#                          child per connection: the child's leak is reclaimed
#   --pid TID              a thread of the threaded simulator (a thread per connection, one kept
#                          alive by a healthy session): taken for its process, said in one line,
#                          and the process's leak reclaimed
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon

GRACE=300
INTERVAL=100

echo "--pid as pidof prints it, for a parent and its child:"
start_bg forking "$FIXTURES/mos_server" --style fork --port-file "$TMP/forking.port"
fport=$(await_port forking)
fpid=$(main_pid forking)
client f1 --port "$fport" --count 1 || fail "f1 failed"
wait_until 3000 has_lines 1 '^forked pid=' "$TMP/forking.out" || fail "the server did not fork"
child=$(sed -n 's/^forked pid=\([0-9]*\) .*/\1/p' "$TMP/forking.out")
wait_until 3000 leaking "$fport" 1 f1 || fail "the child did not leak: $(report_states "$fport" f1)"
assert_eq 1 "$(ss_close_wait_of "$child" "$fport")" "  the child's CLOSE_WAIT sockets"
start_daemon list --pid "$child $fpid" --grace-ms $GRACE --interval-ms $INTERVAL \
    --log-file "$TMP/list.log"
wait_until $((GRACE + 5000)) clients_settled "$fport" f1 || true
require_settled "$fport" "the child's leak was not reclaimed with --pid '$child $fpid'" f1
assert_eq 1 "$(count_shutdowns "$TMP/list.log" "$child")" "  actions on the child"
await_watching "$TMP/list.log"
grep -F "watching pid=$child,$fpid " "$TMP/list.log" || fail "the start-up line names other processes"
stop_daemon list

echo "--pid THREAD-ID:"
start_bg threaded "$FIXTURES/mos_server" --style thread --port-file "$TMP/threaded.port"
tport=$(await_port threaded)
tpid=$(main_pid threaded)
# A healthy session keeps its thread alive; its id is the one not the process's.
client_bg keep --port "$tport" --count 1 --hold-ms 30000
# shellcheck disable=SC2317 # called through wait_until
has_threads() { [ "$(find "/proc/$1/task" -mindepth 1 -maxdepth 1 | wc -l)" -ge "$2" ]; }
wait_until 3000 has_threads "$tpid" 2 || fail "the threaded server started no thread"
tid=$(find "/proc/$tpid/task" -mindepth 1 -maxdepth 1 -printf '%f\n' | grep -vx "$tpid" | head -n 1)
echo "  thread $tid of process $tpid"
client t1 --port "$tport" --count 1 || fail "t1 failed"
wait_until 3000 leaking "$tport" 1 t1 || fail "the threaded server did not leak: $(report_states "$tport" t1)"
start_daemon thread --pid "$tid" --grace-ms $GRACE --interval-ms $INTERVAL \
    --log-file "$TMP/thread.log"
wait_until $((GRACE + 5000)) clients_settled "$tport" t1 || true
require_settled "$tport" "the leak of thread $tid's process was not reclaimed" t1
grep -F -- "--pid $tid is a thread of pid=$tpid (mos_server): watching that process" \
    "$TMP/thread.log" || fail "the daemon did not say that $tid is a thread of $tpid"
assert_eq 1 "$(count_shutdowns "$TMP/thread.log" "$tpid")" "  actions on process $tpid"
stop_daemon thread
pass "--pid '$child $fpid' (pidof's form) reclaimed the child's leak; --pid $tid (a thread)\
 meant process $tpid, said so, and reclaimed its leak"
