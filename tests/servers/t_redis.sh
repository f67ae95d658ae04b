#!/usr/bin/env bash
# shellcheck disable=SC2317 # the small helpers run through wait_until
# Redis, a well-behaved server that closes every connection whose peer closed, under
# redis-benchmark -k 0: a new connection per request, so every request meets a FIN. Under the
# shim it must serve the issue's figure, 20,000 requests of each of PING (inline and bulk), SET
# and GET, with no error; the shim must take no action (Redis closes each connection itself);
# and Redis's sockets must end as they do without the shim (a shorter run, for comparison).
# shellcheck source-path=SCRIPTDIR source=../integration/lib.sh
. "$(dirname "$0")/../integration/lib.sh"
need_shim
for tool in redis-server redis-benchmark redis-cli; do
    command -v $tool >/dev/null || skip "$tool is not installed (Debian: redis-server, redis-tools)"
done

redis_up() { [ "$(redis-cli -p "$1" ping 2>/dev/null)" = PONG ]; }
port_closed() { [ -z "$(ss -Htln "( sport = :$1 )")" ]; }
server_side_states() {
    echo "CLOSE_WAIT=$(count_state close-wait "$1" server)" \
        "ESTABLISHED=$(count_state established "$1" server)" \
        "LAST_ACK=$(count_state last-ack "$1" server)"
}
server_side_done() { [ "$(server_side_states "$1")" = "CLOSE_WAIT=0 ESTABLISHED=0 LAST_ACK=0" ]; }
stat_of() { sed -n "s/^$2://p" "$TMP/$1.stats"; }

# run NAME REQUESTS [VAR=VALUE...]: one redis-server (with the given environment) and one
# benchmark against it; leaves NAME.bench, NAME.stats and NAME.ends in $TMP.
run() {
    local name=$1 n=$2 port
    shift 2
    # shellcheck disable=SC2119 # no port to avoid
    port=$(pick_port)
    cat >"$TMP/$name.conf" <<EOF
port $port
bind 127.0.0.1
protected-mode yes
daemonize no
save ""
appendonly no
dir $TMP
logfile ""
maxclients 10000
EOF
    start_bg "$name" "$@" redis-server "$TMP/$name.conf"
    wait_until 10000 redis_up "$port" || fail "$name: redis-server did not start on port $port"
    timeout 240 redis-benchmark -h 127.0.0.1 -p "$port" -n "$n" -k 0 -t ping,set,get -q \
        >"$TMP/$name.bench" 2>"$TMP/$name.bench.err" || fail "$name: redis-benchmark failed"
    tr '\r' '\n' <"$TMP/$name.bench" | grep 'requests per second' >"$TMP/$name.rps" || true
    redis-cli -p "$port" info stats | tr -d '\r' >"$TMP/$name.stats"
    # Redis's own side of every benchmark connection must be gone: the client closed first,
    # Redis closed in turn (no CLOSE_WAIT, nothing ESTABLISHED but redis-cli's last one).
    wait_until 10000 server_side_done "$port" || true
    echo "$name: $(server_side_states "$port")" >"$TMP/$name.ends"
    redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
    wait_until 5000 port_closed "$port" || true
}


N=${REDIS_REQUESTS:-20000}
BASELINE_N=${REDIS_BASELINE_REQUESTS:-2000}
run plain "$BASELINE_N"
run shim "$N" LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=1000 AUTOCLOSE_SWEEP_MS=200 \
    AUTOCLOSE_LOG=debug AUTOCLOSE_LOG_FILE="$TMP/shim.log"

for name in plain shim; do
    echo "$name:"
    sed 's/^/  /' "$TMP/$name.rps"
    echo "  connections received: $(stat_of $name total_connections_received)," \
        "rejected: $(stat_of $name rejected_connections)"
    sed 's/^[a-z]*: /  sockets at the end: /' "$TMP/$name.ends"
    # -k 0 always earns a warning about TIME_WAIT reuse; anything else on stderr is an error.
    errors=$(grep -v '^WARNING: Keepalive disabled' "$TMP/$name.bench.err" || true)
    [ -z "$errors" ] || fail "$name: redis-benchmark reported errors: $(head -n 3 <<<"$errors")"
    assert_eq 4 "$(wc -l <"$TMP/$name.rps")" "$name: benchmarks completed (PING_INLINE, PING_MBULK, SET, GET)"
    assert_eq 0 "$(stat_of $name rejected_connections)" "$name: rejected connections"
done
[ "$(stat_of shim total_connections_received)" -ge $((4 * N)) ] ||
    fail "the benchmark under the shim did not make one connection per request"
assert_eq "$(sed 's/^plain: //' "$TMP/plain.ends")" "$(sed 's/^shim: //' "$TMP/shim.ends")" \
    "Redis's sockets at the end, with the shim as without"
# A line that meets another thread's logging goes to stderr (shim.err), not the file: both.
cat "$TMP/shim.log" "$TMP/shim.err" >"$TMP/shim.all"
assert_eq 0 "$(actions "$TMP/shim.all" | wc -l)" "shim actions (Redis closes every connection itself)"
assert_eq 0 "$(count_lines 'failed to|error' "$TMP/shim.all")" "shim errors"
echo "  shim log: $(count_lines 'pending fd=' "$TMP/shim.all") FINs logged as pending" \
    "(the rest rate-limited), $(count_lines 'left alone' "$TMP/shim.all") left alone, 0 actions"
echo "  figure: redis under the shim, $N requests per test, one connection each:" \
    "$(tr '\n' ';' <"$TMP/shim.rps" | sed 's/ requests per second[^;]*//g; s/;$//')"
pass "redis-benchmark -k 0 -n $N: no error, no shim action, sockets end as without the shim"
