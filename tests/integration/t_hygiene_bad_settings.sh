#!/usr/bin/env bash
# A bad value for a TCP hygiene variable costs one line on stderr that names the variable and
# the value, never the service; and the safe default really is what the connections get (the
# option left as the program set it), while a good variable beside it still applies.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=hygiene_lib.sh
. "$(dirname "$0")/hygiene_lib.sh"
need_shim

BAD=(
    'AUTOCLOSE_KEEPALIVE=30,5'
    'AUTOCLOSE_KEEPALIVE=0,5,3'
    'AUTOCLOSE_KEEPALIVE=30,5,200'
    'AUTOCLOSE_KEEPALIVE=abc'
    'AUTOCLOSE_FIN_WAIT2_S=500'
    'AUTOCLOSE_FIN_WAIT2_S=0'
    'AUTOCLOSE_USER_TIMEOUT_MS=-1'
    'AUTOCLOSE_REUSEADDR=maybe'
)
DEFAULT_LINGER2=$(cat /proc/sys/net/ipv4/tcp_fin_timeout)

# A good variable given beside each bad one, and what it must still set.
companion() {
    if [ "$1" = AUTOCLOSE_USER_TIMEOUT_MS ]; then
        echo "AUTOCLOSE_FIN_WAIT2_S=7 linger2_s=7"
    else
        echo "AUTOCLOSE_USER_TIMEOUT_MS=1234 user_timeout_ms=1234"
    fi
}

# What a connection gets when the variable is ignored: the kernel's defaults.
declare -A safe=(
    [AUTOCLOSE_KEEPALIVE]="keepalive=0 idle=7200 intvl=75 cnt=9"
    [AUTOCLOSE_FIN_WAIT2_S]="linger2_s=$DEFAULT_LINGER2"
    [AUTOCLOSE_USER_TIMEOUT_MS]="user_timeout_ms=0"
)

for i in "${!BAD[@]}"; do
    setting=${BAD[$i]}
    var=${setting%%=*}
    # The legacy server, to show the service goes on.
    start_bg "mos$i" LD_PRELOAD="$AUTOCLOSE_LIB" "$setting" \
        "$FIXTURES/mos_server" --style read --port-file "$TMP/mos$i.port"
    if [ "$var" = AUTOCLOSE_REUSEADDR ]; then
        # And what it means for the socket: SO_REUSEADDR as the program left it (unset).
        # shellcheck disable=SC2119 # no port to keep clear of
        start_bg "probe$i" LD_PRELOAD="$AUTOCLOSE_LIB" "$setting" \
            "$FIXTURES/plain_listener" --port "$(pick_port)"
    else
        read -r good _ < <(companion "$var")
        start_bg "probe$i" LD_PRELOAD="$AUTOCLOSE_LIB" "$setting" "$good" \
            "$FIXTURES/sockopt_probe" --listen 127.0.0.1 --port-file "$TMP/probe$i.port" \
            --hold-ms 10000
    fi
done

for i in "${!BAD[@]}"; do
    setting=${BAD[$i]}
    var=${setting%%=*} value=${setting#*=}
    echo "$setting"
    port=$(await_port "mos$i")
    client "mos$i-client" --port "$port" || fail "$setting: the server no longer serves"
    kill -0 "$(main_pid "mos$i")" 2>/dev/null || fail "$setting: the server died"
    wait_until 2000 test -s "$TMP/mos$i.err" || true
    echo "  stderr: $(cat "$TMP/mos$i.err")"
    assert_eq 1 "$(wc -l <"$TMP/mos$i.err")" "  lines on stderr"
    assert_eq 1 "$(grep -F -- "$var=" "$TMP/mos$i.err" | grep -Fc -- "'$value'" || true)" \
        "  lines naming $var and '$value'"

    if [ "$var" = AUTOCLOSE_REUSEADDR ]; then
        wait_until 5000 has_lines 1 '^listening ' "$TMP/probe$i.out" ||
            fail "$setting: plain_listener did not start: $(cat "$TMP/probe$i.err")"
        grep -q 'reuseaddr=0' "$TMP/probe$i.out" ||
            fail "$setting: SO_REUSEADDR was set: $(cat "$TMP/probe$i.out")"
        echo "  taken as 0: $(head -n 1 "$TMP/probe$i.out")"
    else
        client "probe$i-client" --port "$(await_port "probe$i")" --no-message --hold-ms 100 ||
            fail "$setting: the probe did not accept"
        wait_until 5000 probe_ok "probe$i" accepted 1 ||
            fail "$setting: the probe reported no accepted socket"
        # shellcheck disable=SC2086 # the defaults are several FIELD=VALUE words
        probe_expect "probe$i" accepted 1 ${safe[$var]}
        read -r good effect < <(companion "$var")
        probe_expect "probe$i" accepted 1 "$effect"
    fi
    assert_eq 1 "$(wc -l <"$TMP/probe$i.err")" "  lines on the probe's stderr"
done
pass "${#BAD[@]} bad hygiene values: one line each, service intact, the kernel's defaults kept,\
 good variables beside them still applied"
