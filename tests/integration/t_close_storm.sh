#!/usr/bin/env bash
# 2,000 connections whose peers all close at once, handled by 8 threads: half are leaked, half
# closed by the program at once and replaced by live connections that mostly reuse the numbers
# just closed. Traced with strace, every action the shim takes (shutdown, or dup3 in close mode)
# must hit a leaked connection, each exactly once: none lost, none on a wrong descriptor. The
# live connections must still carry data. Both modes.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim
command -v strace >/dev/null || skip "strace is not installed"

GRACE=1000
THREADS=${CLOSE_STORM_THREADS:-8}
PER_THREAD=${CLOSE_STORM_PER_THREAD:-250}
# The actions, and the calls that make the descriptors the shim closes again (its placeholder's
# socket pair, the sweep's sockets and directories), for strace_fds.py.
TRACED=shutdown,dup3,close,close_range,fcntl,socket,socketpair,open,openat
for mode in shutdown close; do
    timeout 50 strace -f -qq --seccomp-bpf -e trace=$TRACED -o "$TMP/$mode.strace" \
        -E LD_PRELOAD="$AUTOCLOSE_LIB" -E AUTOCLOSE_MODE=$mode -E AUTOCLOSE_GRACE_MS=$GRACE \
        -E AUTOCLOSE_LOG=error "$FIXTURES/close_storm" --threads "$THREADS" \
        --per-thread "$PER_THREAD" --grace-ms $GRACE --fd-file "$TMP/$mode.fds" \
        >"$TMP/$mode.out" 2>"$TMP/$mode.err" || fail "$mode: close_storm failed (exit $?)"
    echo "$mode mode:"
    sed 's/^/  /' "$TMP/$mode.out"
    leaked=$((THREADS * PER_THREAD / 2))
    grep -q "^storm conns=$((THREADS * PER_THREAD)) leaked=$leaked live=$leaked late_closes=0 \
failures=0\$" "$TMP/$mode.out" || fail "$mode: the storm did not run as planned"
    grep -q "^result reclaimed=$leaked/$leaked intact=$leaked/$leaked\$" "$TMP/$mode.out" ||
        fail "$mode: not every leaked connection was reclaimed, or a live one was touched"
    python3 "$SCRIPT_FIXTURES/strace_fds.py" --strace "$TMP/$mode.strace" --actions-only \
        --acted-set "$TMP/$mode.fds" --action $mode | sed 's/^/  /'
    [ "${PIPESTATUS[0]}" -eq 0 ] || fail "$mode: the traced actions do not match the leaked set"
    assert_eq 0 "$(count_lines 'libautoclose' "$TMP/$mode.err")" "$mode: errors logged by the shim"
done
pass "$((THREADS * PER_THREAD)) connections closing at once: every leaked one acted on once, nothing else"
