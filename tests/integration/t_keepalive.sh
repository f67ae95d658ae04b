#!/usr/bin/env bash
# AUTOCLOSE_KEEPALIVE=IDLE,INTVL,CNT gives every TCP connection the program accepts or connects
# a keepalive timer the kernel reports (ss -o: timer:(keepalive,...)), so a peer that vanished
# without a FIN is found; over IPv4 and IPv6, and on sockets made with SOCK_NONBLOCK|SOCK_CLOEXEC
# (accept4, and a non-blocking connect answering EINPROGRESS: libkeepalive's classic blind spots).
# Without the variable the program's sockets keep no keepalive timer.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=hygiene_lib.sh
. "$(dirname "$0")/hygiene_lib.sh"
need_shim

IDLE=30
KA="$IDLE,5,3"
N=3
HOLD=20000 # clients and probes keep their connections open this long; the checks need ~1 s
# A timer set when the connection appeared, looked at seconds later: IDLE minus the time the
# checks took (generous for a loaded machine), never more than IDLE and never the system's 2 h.
LO=$((IDLE - 10))

families=(4)
if have_ipv6; then
    families+=(6)
else
    echo "no ::1 on the loopback: IPv6 cases left out"
fi
declare -A host=([4]=127.0.0.1 [6]=::1)

for f in "${families[@]}"; do
    # Thread style: every connection is accepted at once (a read-style server would leave the
    # others in the backlog, not yet accepted, so not yet seen by the shim).
    start_bg "ka$f" LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_KEEPALIVE=$KA \
        "$FIXTURES/mos_server" --style thread --bind "${host[$f]}" --port-file "$TMP/ka$f.port"
    start_bg "unset$f" LD_PRELOAD="$AUTOCLOSE_LIB" \
        "$FIXTURES/mos_server" --style thread --bind "${host[$f]}" --port-file "$TMP/unset$f.port"
    start_bg "bare$f" "$FIXTURES/mos_server" --style thread --bind "${host[$f]}" \
        --port-file "$TMP/bare$f.port"
    start_bg "probe_srv$f" LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_KEEPALIVE=$KA \
        "$FIXTURES/sockopt_probe" --listen "${host[$f]}" --count 2 --hold-ms $HOLD \
        --port-file "$TMP/probe_srv$f.port"
done

declare -A port
for f in "${families[@]}"; do
    for s in ka unset bare probe_srv; do
        port[$s$f]=$(await_port "$s$f")
    done
    # Accepted: by a shim-loaded server with and without the variable (the clients carry no
    # shim). Connected: by a client carrying the shim, to a server without it.
    client_bg "c_ka$f" --host "${host[$f]}" --port "${port[ka$f]}" --count $N --parallel \
        --hold-ms $HOLD
    client_bg "c_unset$f" --host "${host[$f]}" --port "${port[unset$f]}" --count $N --parallel \
        --hold-ms $HOLD
    start_bg "c_shim$f" LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_KEEPALIVE=$KA \
        "$FIXTURES/ncs_client" --host "${host[$f]}" --port "${port[bare$f]}" --count $N \
        --parallel --hold-ms $HOLD
    # SOCK_NONBLOCK|SOCK_CLOEXEC sockets, accepted (accept4) and connected (EINPROGRESS).
    client_bg "c_probe$f" --host "${host[$f]}" --port "${port[probe_srv$f]}" --count 2 \
        --parallel --no-message --hold-ms $HOLD
    start_bg "probe_cli$f" LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_KEEPALIVE=$KA \
        "$FIXTURES/sockopt_probe" --connect "${host[$f]}" --port "${port[bare$f]}" --count 2 \
        --hold-ms $HOLD
done

# Every exchange answered means every connection was accepted (and, on the shim's side, given
# its options in the accept or connect wrapper before the program saw it).
# shellcheck disable=SC2317 # called through wait_until
exchanged() { [ "$(grep -c '^ok conn=' "$TMP/$1.out" 2>/dev/null || true)" -eq "$2" ]; }
for f in "${families[@]}"; do
    for c in "c_ka$f" "c_unset$f" "c_shim$f"; do
        wait_until 10000 exchanged "$c" $N || fail "$c: the exchanges did not complete"
    done
    wait_until 10000 probe_ok "probe_srv$f" accepted 2 || fail "probe_srv$f accepted nothing"
    wait_until 10000 probe_ok "probe_cli$f" connected 2 || fail "probe_cli$f connected nothing"
done

# expect_ka WHAT FILTER SUMMARY PORT...: ka_summary of the sockets matching FILTER that belong
# to this test's clients (listed by their own ports) is SUMMARY.
expect_ka() {
    local what=$1 filter=$2 want=$3 got
    shift 3
    got=$(ka_summary "$filter" "$LO" "$IDLE" "$@")
    echo "  $what: $got  [$(ka_report "$filter" "$@")]"
    [ "$got" = "$want" ] || fail "$what: expected $want (keepalive timer with $LO-$IDLE s left)"
}

for f in "${families[@]}"; do
    echo "IPv$f (${host[$f]}), AUTOCLOSE_KEEPALIVE=$KA; local->peer:seconds left:"
    mapfile -t ka_clients < <(client_ports "c_ka$f")
    mapfile -t unset_clients < <(client_ports "c_unset$f")
    mapfile -t shim_clients < <(client_ports "c_shim$f")
    mapfile -t probe_peers < <(client_ports "c_probe$f")
    mapfile -t probe_clients < <(probe_local_ports "probe_cli$f" connected)
    expect_ka "accepted, variable set" "( sport = :${port[ka$f]} )" "in=$N out=0 none=0" \
        "${ka_clients[@]}"
    expect_ka "accepted, variable unset" "( sport = :${port[unset$f]} )" "in=0 out=0 none=$N" \
        "${unset_clients[@]}"
    expect_ka "their peers (no shim)" "( dport = :${port[ka$f]} )" "in=0 out=0 none=$N" \
        "${ka_clients[@]}"
    expect_ka "connected by the shim client" "( dport = :${port[bare$f]} )" \
        "in=$N out=0 none=0" "${shim_clients[@]}"
    expect_ka "the server side of those (no shim)" "( sport = :${port[bare$f]} )" \
        "in=0 out=0 none=$((N + 2))" "${shim_clients[@]}" "${probe_clients[@]}"

    probe_expect "probe_srv$f" accepted 2 nonblock=1 cloexec=1 keepalive=1 idle=$IDLE intvl=5 \
        cnt=3
    expect_ka "accept4(SOCK_NONBLOCK|SOCK_CLOEXEC)" "( sport = :${port[probe_srv$f]} )" \
        "in=2 out=0 none=0" "${probe_peers[@]}"
    probe_expect "probe_cli$f" connected 2 nonblock=1 cloexec=1 keepalive=1 idle=$IDLE intvl=5 \
        cnt=3
    expect_ka "non-blocking connect (EINPROGRESS)" "( dport = :${port[bare$f]} )" \
        "in=2 out=0 none=0" "${probe_clients[@]}"
done

for f in "${families[@]}"; do
    for s in ka unset probe_srv; do
        [ ! -s "$TMP/$s$f.err" ] || fail "$s$f wrote to stderr: $(cat "$TMP/$s$f.err")"
    done
done
covered="IPv${families[*]}"
pass "keepalive ($KA) on accepted and connected sockets (${covered// /+IPv}), with and\
 without SOCK_NONBLOCK|SOCK_CLOEXEC; none without the variable"
