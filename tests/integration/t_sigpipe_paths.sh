#!/usr/bin/env bash
# After a reclaim, a late write by the program must fail with EPIPE and not raise SIGPIPE, whose
# default action would kill a program that, without the shim, would have written into a socket
# still in CLOSE_WAIT and lived (t_late_write covers write, writev and the send family). Here
# the write takes a path the write wrappers do not see:
#   fwrite     fwrite + fflush on fdopen(dup(fd)): another number, and libc's internal write
#   sendfile   from a small temporary file
#   splice     from a pipe
#   sendmmsg   one message
# Each in shutdown and close mode, one server per case, SIGPIPE at its default action. The
# server waits until the kernel no longer reports the socket in CLOSE_WAIT (TCP_INFO), then
# writes: it must print ret=-1 errno=EPIPE and exit 0.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

GRACE=300
MODES=(shutdown close)
VIAS=(fwrite sendfile splice sendmmsg)
RUNS=()
for m in "${MODES[@]}"; do
    for v in "${VIAS[@]}"; do
        RUNS+=("$m-$v")
    done
done
declare -A port status

for r in "${RUNS[@]}"; do
    start_bg "$r" LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS="$GRACE" AUTOCLOSE_MODE="${r%%-*}" \
        AUTOCLOSE_LOG_FILE="$TMP/$r.log" "$FIXTURES/late_writer" --via "${r#*-}" \
        --port-file "$TMP/$r.port"
done
for r in "${RUNS[@]}"; do
    port[$r]=$(await_port "$r")
done
for r in "${RUNS[@]}"; do
    client "client-$r" --port "${port[$r]}" || fail "$r: heartbeat exchange failed"
done
# Each server ends by itself once it has written (10 s at most if never reclaimed); a death by
# SIGPIPE shows as timeout's status 128 + 13.
for r in "${RUNS[@]}"; do
    rc=0
    wait_bg "$r" || rc=$?
    status[$r]=$rc
done

bad=()
for r in "${RUNS[@]}"; do
    echo "$r: $(grep -E '^(reclaimed|never|via=|alive)' "$TMP/$r.out" | xargs); exit status" \
        "${status[$r]}$([ "${status[$r]}" -eq 141 ] && echo ' (SIGPIPE)')"
    actions "$TMP/$r.log" | sed 's/^/    /'
    grep -q '^reclaimed ' "$TMP/$r.out" || fail "$r: the connection was never reclaimed"
    assert_eq 1 "$(actions "$TMP/$r.log" | wc -l)" "$r: the shim's actions"
    if [ "${status[$r]}" -ne 0 ] || ! grep -qx "via=${r#*-} ret=-1 errno=EPIPE" "$TMP/$r.out"; then
        bad+=("$r")
    fi
done
[ ${#bad[@]} -eq 0 ] || fail "a late write past the wrappers did not fail with EPIPE and live: ${bad[*]}"
pass "fwrite, sendfile, splice and sendmmsg after a reclaim: EPIPE, no SIGPIPE, in both modes"
