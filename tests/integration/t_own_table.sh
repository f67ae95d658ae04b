#!/usr/bin/env bash
# The timer's descriptor table, read from /proc. In shutdown mode, in a process that has not
# forked, the timer thread has a table of its own (so the application's system calls never pay
# for a shared one): it holds none of the application's sockets, yet the leaked connection is
# reclaimed (through pidfd_getfd). In close mode the timer shares the application's table, which
# a release changes. After a fork the parent's timer is replaced by one that shares: one timer
# thread, the application's sockets in its table. Under ThreadSanitizer, which follows
# descriptors by number in one table per process, the timer always shares (reach.c).
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

GRACE=800
HOLD=2500

# timer_tid PID: the thread the shim named "autoclose" (none: empty).
timer_tids() {
    local t
    for t in /proc/"$1"/task/*; do
        [ "$(cat "$t/comm" 2>/dev/null)" = autoclose ] && basename "$t"
    done
}

# sockets_in PID TID: the socket inodes in that thread's descriptor table, sorted.
sockets_in() {
    find /proc/"$1"/task/"$2"/fd -mindepth 1 -maxdepth 1 -type l -printf '%l\n' 2>/dev/null |
        sed -n 's/^socket:\[\([0-9]*\)\]$/\1/p' | sort -n
}

# tables PID: "<main's socket count> <timer's socket count> <shared by both>" once the timer
# exists, for one timer thread only.
tables() {
    local pid=$1 tids
    tids=$(timer_tids "$pid")
    [ "$(wc -w <<<"$tids")" -eq 1 ] || return 1
    sockets_in "$pid" "$pid" >"$TMP/main.$pid"
    sockets_in "$pid" "$tids" >"$TMP/timer.$pid"
    echo "$(wc -l <"$TMP/main.$pid") $(wc -l <"$TMP/timer.$pid") \
$(comm -12 "$TMP/main.$pid" "$TMP/timer.$pid" | wc -l)"
}

declare -A port
for v in own close fork; do
    mode=shutdown style=read
    [ $v = close ] && mode=close
    [ $v = fork ] && style=fork
    start_bg "$v" LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=$GRACE AUTOCLOSE_MODE=$mode \
        AUTOCLOSE_LOG_FILE="$TMP/$v.log" "$FIXTURES/mos_server" --style $style \
        --port-file "$TMP/$v.port"
done
for v in own close fork; do
    port[$v]=$(await_port "$v")
    client_bg "$v-client" --port "${port[$v]}" --count 1 --hold-ms $HOLD
done

# While the clients hold their connections: the listener and the connection in the main table.
for v in own close fork; do
    pid=$(main_pid "$v")
    [ $v = fork ] && wait_until 3000 grep -q '^forked' "$TMP/fork.out"
    wait_until 3000 tables "$pid" >/dev/null || fail "$v: not one timer thread: $(timer_tids "$pid")"
    read -r main timer both < <(tables "$pid")
    echo "$v: sockets in the main thread's table $main, in the timer's $timer, in both $both"
    expect=$v
    [[ $v == own && $AUTOCLOSE_LIB == *libtsan* ]] && expect=close
    case $expect in
    own)
        [ "$main" -ge 2 ] || fail "own: the server holds $main sockets, expected its listener and a connection"
        assert_eq 0 "$timer" "own: sockets in the timer's own table"
        ;;
    close | fork)
        [ "$main" -ge 1 ] || fail "$v: the server holds no socket"
        assert_eq "$main" "$both" "$v: the main thread's sockets also in the timer's table"
        assert_eq "$main" "$timer" "$v: sockets in the timer's table"
        ;;
    esac
done

for v in own close fork; do
    wait_bg "$v-client" || fail "$v: client exchange failed"
    wait_until $((GRACE + 3000)) reclaimed "${port[$v]}" 1 "$v-client" || true
    echo "$v: $(report_states "${port[$v]}" "$v-client")"
    reclaimed "${port[$v]}" 1 "$v-client" || fail "$v: the leaked connection was not reclaimed"
done
pass "own table in shutdown mode before a fork (and reclaims through it); shared in close mode and after a fork"
