#!/usr/bin/env bash
# A child that runs in the parent's memory (vfork; clone with CLONE_VM | CLONE_VFORK, as
# posix_spawn does) and closes its copies of every descriptor before it exits or execs must not
# cancel the parent's pending reclaim: the parent still holds the half-closed connection. The
# sweep is off, so only the deadline set when the parent read the FIN can reclaim it.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

GRACE=300
failed=()
for variant in plain exec clone-vm; do
    opt=()
    [ "$variant" = plain ] || opt=("--$variant")
    name=server-$variant
    start_bg "$name" LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=$GRACE AUTOCLOSE_SWEEP_MS=0 \
        AUTOCLOSE_LOG=debug AUTOCLOSE_LOG_FILE="$TMP/$name.log" "$FIXTURES/vfork_server" \
        --port-file "$TMP/$name.port" "${opt[@]}"
    port=$(await_port "$name")
    client "client-$variant" --port "$port" || fail "$variant: client exchange failed"
    wait_until 3000 grep -q '^child pid=[0-9]* done status=0' "$TMP/$name.out" ||
        fail "$variant: the child never finished"
    if wait_until 3000 reclaimed "$port" 1 "client-$variant"; then
        echo "  $variant: reclaimed; $(actions "$TMP/$name.log" | sed 's/.*]: //')"
    else
        echo "  $variant: NOT reclaimed within 3 s: $(report_states "$port" "client-$variant")"
        failed+=("$variant")
    fi
done
[ ${#failed[@]} -eq 0 ] ||
    fail "the child's closes cancelled the parent's pending reclaim (${failed[*]})"
pass "vfork, vfork+exec and clone(CLONE_VM|CLONE_VFORK) children left the parent's reclaim alone"
