#!/usr/bin/env bash
# The shim never shuts down, closes or replaces a descriptor it was not asked to. One process
# holds the cases that must be left alone (UDP with empty datagrams, AF_UNIX at EOF, a live TCP
# connection read with length 0, its listener, a pipe and a regular file read to EOF) and one
# control connection that must be reclaimed, and reads, polls, selects, epolls and asks FIONREAD
# of them all for several graces and sweeps. Under strace -f, every shutdown, dup2 and dup3 must
# be the shim's one action on the control, every close by the program one it announced, and
# every other close the shim's own descriptor (its sock_diag socket, /proc/self/fd, a
# placeholder pair). Both modes.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim
command -v strace >/dev/null || skip "strace is not installed"

TRACED=shutdown,dup2,dup3,close,socket,socketpair,open,openat,fcntl,accept,accept4,pipe2
TRACED=$TRACED,epoll_create1,close_range
for mode in shutdown close; do
    timeout 50 strace -f -qq -s 4096 -e trace=$TRACED -o "$TMP/$mode.strace" \
        -E LD_PRELOAD="$AUTOCLOSE_LIB" -E AUTOCLOSE_MODE=$mode -E AUTOCLOSE_GRACE_MS=200 \
        -E AUTOCLOSE_SWEEP_MS=100 -E AUTOCLOSE_LOG=debug -E AUTOCLOSE_LOG_FILE="$TMP/$mode.log" \
        "$FIXTURES/quiet_fds" --ms 1500 --file "$TMP/$mode.data" >"$TMP/$mode.out" \
        2>"$TMP/$mode.err" || fail "$mode: a descriptor changed: $(grep '^changed' "$TMP/$mode.out")"
    echo "$mode mode: $(grep '^fd ' "$TMP/$mode.out" | cut -d' ' -f2 | xargs)"
    pid=$(awk 'NR == 1 { print $1 }' "$TMP/$mode.strace")
    control=$(sed -n 's/^fd control=//p' "$TMP/$mode.out")
    python3 "$SCRIPT_FIXTURES/strace_fds.py" --strace "$TMP/$mode.strace" --pid "$pid" \
        --own "$TMP/$mode.out" --own-path "$TMP/$mode.data" --acted-on "$control" \
        --action $mode | sed 's/^/  /'
    [ "${PIPESTATUS[0]}" -eq 0 ] || fail "$mode: the shim touched a descriptor it was not asked to"
    assert_eq 1 "$(actions "$TMP/$mode.log" | wc -l)" "$mode: actions logged"
    actions "$TMP/$mode.log" | grep -q ": $mode fd=$control " || fail "$mode: the action was not on the control"
    grep -q '^quiet ok$' "$TMP/$mode.out" || fail "$mode: quiet_fds did not finish"
done
pass "udp, unix, zero-length reads, listener, pipe, file untouched; only the control acted on"
