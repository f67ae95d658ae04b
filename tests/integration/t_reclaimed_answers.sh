#!/usr/bin/env bash
# A reclaimed number answers what a program asks of its connection as a closed TCP connection
# does. reclaimed_probe, under the shim, leaks connections (blocking, a second blocking one,
# non-blocking, and one above the shim's table where RLIMIT_NOFILE can be raised that far) and
# ends two controls itself (the peer's FIN, shutdown, the last ACK: TCP_CLOSE); once the shim
# has reclaimed the leaks it asks every number the same questions (getpeername, getsockname,
# SO_TYPE, SO_DOMAIN, SO_PROTOCOL, SO_PEERCRED, SO_PEERPIDFD, SO_ERROR, SO_ACCEPTCONN, TCP_INFO,
# TCP_NODELAY, setsockopt, F_GETFL, F_GETFD, F_SETFL over and back without changing another
# number's flags, epoll_ctl MOD/DEL/ADD of the registration made before the reclaim and the
# events then reported, read, send, and whether a registration outlives the number's close).
# Each leak's answers must be its control's, but for getsockname's address, which the shim does
# not keep (the README says so). Over 127.0.0.1 in both modes, and over ::1.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

GRACE=200
HIGH=70000
runs=("ipv4 127.0.0.1 shutdown" "ipv4-close 127.0.0.1 close")
if grep -q '^0\{31\}1 ' /proc/net/if_inet6 2>/dev/null; then
    runs+=("ipv6 ::1 shutdown")
else
    echo "  ::1 is not configured on this host: IPv4 only"
fi

# answers RUN LABEL: what LABEL answered, but for the address getsockname gives.
answers() { sed -n "s/^probe $2 //p" "$TMP/$1.out" | grep -v '^getsockname-address:'; }

# same RUN LEAK CONTROL
same() {
    local run=$1 leak=$2 control=$3 n
    n=$(answers "$run" "$leak" | wc -l)
    [ "$n" -gt 20 ] || fail "$run: $leak: only $n answers"
    if ! diff <(answers "$run" "$leak") <(answers "$run" "$control") >"$TMP/$run.$leak.diff"; then
        sed 's/^/    /' "$TMP/$run.$leak.diff"
        fail "$run: $leak answers differently from $control (<: $leak, >: $control)"
    fi
    echo "  $run $leak: $n answers, all $control's;" \
        "getsockname: $(sed -n "s/^probe $leak getsockname-address: //p" "$TMP/$run.out")" \
        "(the control's: $(sed -n "s/^probe $control getsockname-address: //p" "$TMP/$run.out"))"
}

high_done=
for run in "${runs[@]}"; do
    read -r name addr mode <<<"$run"
    rc=0
    timeout 40 env LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=$GRACE AUTOCLOSE_MODE="$mode" \
        AUTOCLOSE_LOG_FILE="$TMP/$name.log" "$FIXTURES/reclaimed_probe" --bind "$addr" \
        --high $HIGH >"$TMP/$name.out" 2>"$TMP/$name.err" || rc=$?
    [ $rc -eq 0 ] || fail "$name: reclaimed_probe failed (exit $rc)"
    grep -E '^(high skipped|[a-z0-9-]+ (reclaimed|ended))' "$TMP/$name.out" | sed "s/^/  $name: /"
    leaks=(block block2 nonblock)
    grep -q '^high skipped' "$TMP/$name.out" || leaks+=(high)
    assert_eq "${#leaks[@]}" "$(actions "$TMP/$name.log" | grep -c " $mode fd=" || true)" \
        "$name: connections reclaimed"
    # The controls are real closed TCP sockets: the comparison means something.
    family=2
    [ "$name" != ipv6 ] || family=10
    assert_eq "0 $family len=4" "$(sed -n 's/^probe control-block SO_DOMAIN: //p' "$TMP/$name.out")" \
        "$name: the control's SO_DOMAIN"
    assert_eq "0 tcpi_state=7" \
        "$(sed -n 's/^probe control-nonblock TCP_INFO: \(0 tcpi_state=[0-9]*\).*/\1/p' \
            "$TMP/$name.out")" "$name: the control's TCP_INFO (TCP_CLOSE)"
    for leak in "${leaks[@]}"; do
        control="control-block"
        [ "$leak" != nonblock ] || control="control-nonblock"
        same "$name" "$leak" "$control"
    done
    [[ " ${leaks[*]} " != *" high "* ]] || high_done=yes
done
pass "blocking and non-blocking, IPv4 (both modes)${runs[2]:+ and IPv6}${high_done:+, above the table too}:\
 a reclaimed number answers as a closed TCP connection, but for getsockname's address"
