#!/usr/bin/env bash
# Where a leak is in the program: leak_sites hands each connection on one port to
# session_read_loop() (read()) and on another to session_recv_loop() (recv()), both of which
# forget the descriptor at EOF, and never reads the connections of a third. 3, 2 and 1
# connections, each client sending a word (none to the third) and closing first. Once all six
# are reclaimed (no CLOSE_WAIT left, every peer in TIME_WAIT):
#   each action line names the site as MODULE+0xOFF: the leak_sites offsets lie inside
#   session_read_loop for 3 lines and session_recv_loop for 2 (their ranges from nm), with
#   symbol=leak_sites!<that function>+0x...; the never-read connection's line says found=sweep
#   last_read=never;
#   the stats file (valid as a scraper reads it, promtool's lint too when installed) counts
#   autoclose_reclaimed_by_site_total 3 and 2 under the same two sites and 1 as never_read;
#   a stripped copy of the same build (same file name, another directory) gives the same
#   module+offset values.
# Then the same server built with musl-gcc under the musl library, where the musl build is. And
# a FIN reported by readiness: ready_server's poll, and its FIONREAD after select, each named by
# a site inside the function that made the call.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=hygiene_lib.sh
. "$(dirname "$0")/hygiene_lib.sh"
need_shim

GRACE=300
SWEEP=200
BY_SITE=autoclose_reclaimed_by_site_total
# The sanitizer suites preload ASan's runtime in front of the library: its interceptors then call
# our read, and the site is theirs (a library between the program and libc names itself). There
# the sites are checked by their counts alone.
interposer=
first_lib=${AUTOCLOSE_LIB%% *}
[[ $first_lib == */libautoclose.so ]] || interposer=${first_lib##*/}

# connect NAME PORT WORD: one client that sends WORD (none if empty) and closes; prints its local
# port as local_port=N in $TMP/NAME.out (lib.sh's client_ports).
connect() {
    timeout 10 python3 - "$2" "$3" >"$TMP/$1.out" 2>"$TMP/$1.err" <<'EOF' || fail "client $1 failed"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
print("local_port=%d" % s.getsockname()[1], flush=True)
if sys.argv[2]:
    s.sendall(sys.argv[2].encode())
s.close()
EOF
}

# range_of BINARY FUNCTION: "start end" (hex, end excluded) of FUNCTION in BINARY's symbol table.
range_of() {
    nm -S "$1" | awk -v f="$2" '$4 == f { print $1, $2 }' | {
        read -r start size || fail "nm: no $2 in $1"
        printf '%x %x\n' $((16#$start)) $((16#$start + 16#$size))
    }
}

# within OFF START END: hex OFF in [START, END).
within() { (($((16#${1#0x})) >= 16#$2 && $((16#${1#0x})) < 16#$3)); }

# actions_by_site LOG: for each action line, "FOUND TOKEN=VALUE [SYMBOL]", sorted.
actions_by_site() {
    actions "$1" | sed -nE 's/.* found=([a-z]+) (site|last_read)=([^ ]+)( symbol=([^ ]+))?.*/\1 \2=\3 \5/p' |
        sed 's/ $//' | sort
}

# run_case NAME LIB BINARY: the six connections against BINARY under LIB; sets SITES (the
# module+offset values of the reclaims, sorted, one per line).
run_case() {
    local name=$1 lib=$2 bin=$3 p port_read port_recv port_never pid dump i
    start_bg "$name" LD_PRELOAD="$lib" AUTOCLOSE_GRACE_MS=$GRACE AUTOCLOSE_SWEEP_MS=$SWEEP \
        AUTOCLOSE_STATS_FILE="$TMP/$name.prom" "$bin" --port-prefix "$TMP/$name"
    port_read=$(await_port "${name}_read")
    port_recv=$(await_port "${name}_recv")
    port_never=$(await_port "${name}_never")
    pid=$(main_pid "$name")
    for i in 1 2 3; do
        connect "$name-read$i" "$port_read" hello
    done
    for i in 1 2; do
        connect "$name-recv$i" "$port_recv" hello
    done
    connect "$name-never1" "$port_never" ""
    wait_until $((GRACE + 10 * SWEEP + 5000)) has_lines 6 ': (shutdown|close) fd=' "$TMP/$name.err" ||
        fail "$name: $(count_lines ': (shutdown|close) fd=' "$TMP/$name.err") of 6 reclaims logged"
    for p in read recv never; do
        local port_var="port_$p" clients=()
        for i in 1 2 3; do
            [ -s "$TMP/$name-$p$i.out" ] && clients+=("$name-$p$i")
        done
        wait_until 5000 clients_settled "${!port_var}" "${clients[@]}" ||
            require_settled "${!port_var}" "$name: the $p connections" "${clients[@]}"
    done
    echo "$name: all six reclaimed; no CLOSE_WAIT left, every peer in TIME_WAIT"
    actions_by_site "$TMP/$name.err" >"$TMP/$name.sites"
    sed 's/^/  /' "$TMP/$name.sites"

    # The never-read connection: the sweep found it, and says so.
    assert_eq 1 "$(grep -cx 'sweep last_read=never' "$TMP/$name.sites" || true)" \
        "$name: reclaims naming last_read=never"
    # The others: inside the two functions, 3 and 2, by their offsets (a sweep that met one of
    # them before its read returned the EOF names the same read as its last_read).
    local module=${bin##*/} read_range recv_range in_read=0 in_recv=0 found token value symbol
    read -r -a read_range < <(range_of "$4" session_read_loop)
    read -r -a recv_range < <(range_of "$4" session_recv_loop)
    SITES=$(grep -v 'last_read=never' "$TMP/$name.sites" | awk '{ sub(/^[a-z_]+=/, "", $2); print $2 }' | sort)
    if [ -n "$interposer" ]; then
        assert_eq "2 3" "$(uniq -c <<<"$SITES" | awk '{ print $1 }' | sort | tr '\n' ' ' | sed 's/ $//')" \
            "$name: reclaims at each of two sites ($interposer in front: its interceptors' sites)"
        in_read=3 in_recv=2
        : >"$TMP/$name.sites.checked"
    else
        cp "$TMP/$name.sites" "$TMP/$name.sites.checked"
    fi
    while read -r found token symbol; do
        [ "$token" = last_read=never ] && continue
        value=${token#*=}
        [ "${value%+0x*}" = "$module" ] || fail "$name: site $value is not in module $module"
        if within "${value#*+}" "${read_range[@]}"; then
            in_read=$((in_read + 1))
            [ -z "${5:-}" ] || [[ $symbol == "$module!session_read_loop+0x"* ]] ||
                fail "$name: $value named as '$symbol', not session_read_loop"
        elif within "${value#*+}" "${recv_range[@]}"; then
            in_recv=$((in_recv + 1))
            [ -z "${5:-}" ] || [[ $symbol == "$module!session_recv_loop+0x"* ]] ||
                fail "$name: $value named as '$symbol', not session_recv_loop"
        else
            fail "$name: site $value ($found) lies in neither function" \
                "(read: ${read_range[*]}, recv: ${recv_range[*]})"
        fi
    done <"$TMP/$name.sites.checked"
    assert_eq "3 2" "$in_read $in_recv" "$name: sites in session_read_loop, session_recv_loop"

    # The stats file counts the same sites.
    # shellcheck disable=SC2317 # called through wait_until
    by_site_total() {
        [ -e "$TMP/$name.prom" ] &&
            [ "$(awk -v s="$BY_SITE{" 'index($0, s) == 1 { n += $2 } END { print n + 0 }' \
                "$TMP/$name.prom")" = 6 ]
    }
    wait_until 3000 by_site_total || fail "$name: the stats file never counted 6 by site:" \
        "$(grep "$BY_SITE" "$TMP/$name.prom" 2>/dev/null)"
    dump=$(prom_dump "$TMP/$name.prom" "$pid") || fail "$name: the stats file is malformed"
    grep "^$BY_SITE" <<<"$dump" | sed 's/^/  /'
    local site_read site_recv
    site_read=$(sort <<<"$SITES" | uniq -c | awk '$1 == 3 { print $2 }')
    site_recv=$(sort <<<"$SITES" | uniq -c | awk '$1 == 2 { print $2 }')
    assert_eq 3 "$(prom_get "$dump" "$BY_SITE{site=\"$site_read\"}")" "$name: by_site $site_read"
    assert_eq 2 "$(prom_get "$dump" "$BY_SITE{site=\"$site_recv\"}")" "$name: by_site $site_recv"
    assert_eq 1 "$(prom_get "$dump" "$BY_SITE{site=\"never_read\"}")" "$name: by_site never_read"
    if command -v promtool >/dev/null; then
        promtool check metrics <"$TMP/$name.prom" >"$TMP/$name.promtool" 2>&1 ||
            fail "$name: promtool check metrics: $(cat "$TMP/$name.promtool")"
    fi
}

run_case plain "$AUTOCLOSE_LIB" "$FIXTURES/leak_sites" "$FIXTURES/leak_sites" symbols
plain_sites=$SITES
[ -x "$FIXTURES/stripped/leak_sites" ] || fail "no stripped copy at $FIXTURES/stripped/leak_sites"
[ -z "$(nm "$FIXTURES/stripped/leak_sites" 2>/dev/null)" ] ||
    fail "the stripped copy still has a symbol table"
run_case stripped "$AUTOCLOSE_LIB" "$FIXTURES/stripped/leak_sites" "$FIXTURES/leak_sites" symbols
assert_eq "$(tr '\n' ' ' <<<"$plain_sites")" "$(tr '\n' ' ' <<<"$SITES")" \
    "module+offset, stripped copy (against the unstripped one's)"

# Readiness: the FIN reported by poll (ready_server --style poll), or found by FIONREAD after
# select (--style select): the site is that call's, inside loop_poll and on_readable.
for style in poll:loop_poll select:on_readable; do
    fn=${style#*:} style=${style%:*}
    start_bg "ready_$style" LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=$GRACE \
        AUTOCLOSE_SWEEP_MS=0 "$FIXTURES/ready_server" --style "$style" \
        --port-file "$TMP/ready_$style.port"
    port=$(await_port "ready_$style")
    client "ready_$style-clients" --port "$port" --count 2 || fail "ready_server --style $style:" \
        "heartbeat exchanges failed"
    wait_until 5000 has_lines 2 ': shutdown fd=' "$TMP/ready_$style.err" ||
        fail "ready_server --style $style: $(report_states "$port" "ready_$style-clients")"
    read -r -a range < <(range_of "$FIXTURES/ready_server" "$fn")
    actions_by_site "$TMP/ready_$style.err" >"$TMP/ready_$style.sites"
    sed 's/^/  /' "$TMP/ready_$style.sites"
    n=0
    [ -z "$interposer" ] || n=2 # its interceptors' sites: nothing to check them against
    [ -n "$interposer" ] || while read -r found token _; do
        [ "$found" = ready ] && [ "${token%%+*}" = site=ready_server ] &&
            within "${token#*+}" "${range[@]}" && n=$((n + 1))
    done <"$TMP/ready_$style.sites"
    assert_eq 2 "$n" "ready_server --style $style: found=ready sites inside $fn"
done

musl="no musl build"
if [ -f "$AUTOCLOSE_LIBMUSL" ] && [ -x "$FIXTURES_MUSL/leak_sites" ]; then
    run_case musl "$AUTOCLOSE_LIBMUSL" "$FIXTURES_MUSL/leak_sites" "$FIXTURES_MUSL/leak_sites"
    musl="musl too"
fi
pass "3 reclaims in session_read_loop, 2 in session_recv_loop, 1 never read, in the log and the\
 stats file; a stripped copy names the same module+offsets; poll's and FIONREAD's sites; $musl"
