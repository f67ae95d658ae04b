#!/usr/bin/env bash
# A forked child's fork handlers run while the locks other libraries took in their prepare
# handlers (an allocator's, a sanitizer's) are still held: a thread a fork handler starts may
# block on them forever, and the handlers that run after it find a second thread they never
# expected. The program's own child handler, registered after the shim's, counts the child's
# threads: it must find no more than the child of a fork made before the timer existed (one,
# unless a runtime such as a sanitizer's adds its own), and none named as the shim's timer. Two
# parents: one whose timer runs for the sweep (it accepted a connection), one that also holds a
# pending connection (it read the FIN; the sweep is off). The child's own timer, when it needs
# one, starts once fork has returned (t_fork).
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

# census WHEN FILE: "PARENT_COUNT|PARENT_NAMES|CHILD_COUNT|CHILD_NAMES" from the fixture's line.
census() {
    local n='\([0-9-]*\)' names='(\([^)]*\))'
    sed -n "s/^$1 parent_threads=$n $names child_threads=$n $names\$/\1|\2|\3|\4/p" "$2"
}

failed=()
for variant in sweep pending; do
    if [ "$variant" = sweep ]; then
        env=(AUTOCLOSE_SWEEP_MS=1000)
        opt=()
    else
        env=(AUTOCLOSE_SWEEP_MS=0 AUTOCLOSE_GRACE_MS=60000)
        opt=(--read-eof)
    fi
    name=server-$variant
    start_bg "$name" LD_PRELOAD="$AUTOCLOSE_LIB" "${env[@]}" "$FIXTURES/fork_handlers" \
        --port-file "$TMP/$name.port" "${opt[@]}"
    port=$(await_port "$name")
    if [ "$variant" = sweep ]; then
        client_bg "client-$variant" --port "$port" --no-message --hold-ms 10000
    else
        client "client-$variant" --port "$port" || fail "$variant: client exchange failed"
    fi
    wait_until 5000 grep -q '^timer ' "$TMP/$name.out" || fail "$variant: the child never reported"
    # A fork before any connection is the control: a runtime's own threads count in both.
    lines="$TMP/$name.out"
    IFS='|' read -r c_parent c_parent_names c_child c_child_names < <(census control "$lines")
    IFS='|' read -r parent parent_names child child_names < <(census timer "$lines")
    echo "  $variant: no connection yet: parent $c_parent ($c_parent_names)," \
        "child $c_child ($c_child_names)"
    echo "  $variant: timer running:    parent $parent ($parent_names), child $child ($child_names)"
    [[ ,$parent_names, == *,autoclose,* ]] || fail "$variant: the parent has no timer thread"
    # More threads than the control, or the timer's by name (it names itself once it runs).
    if [ "$child" -gt "$c_child" ] || [[ ,$child_names, == *,autoclose,* ]]; then
        failed+=("$variant=$child ($child_names; control $c_child)")
    fi
done
[ ${#failed[@]} -eq 0 ] ||
    fail "the child had the timer, or more threads than the control, in its fork handlers: ${failed[*]}"
pass "the fork handlers of a parent with a running timer find no more threads in the child than\
 those of a fork before the timer existed"
