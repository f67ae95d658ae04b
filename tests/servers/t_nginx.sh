#!/usr/bin/env bash
# shellcheck disable=SC2317 # the small helpers run through wait_until
# nginx (master and two workers, forked after the library loaded) with and without the shim,
# under the same clients: wrk with keep-alive and with a new connection per request, 50 plain
# curl requests, and half-closing clients (request, shutdown(SHUT_WR), a 1 MiB reply read slowly
# for far longer than the shim's 300 ms grace) over HTTP/1.0 and 1.1. With the shim: no client
# error, every body whole, no action by the shim, no error in nginx's log, and nginx's sockets
# ending as they do without it. (nginx takes a client's FIN as "client prematurely closed" and
# stops sending what is not in the socket buffers yet: with a reply of several MiB a half-closing
# client gets a cut reply without the shim too. 1 MiB is sent whole, by nginx alone.)
# shellcheck source-path=SCRIPTDIR source=../integration/lib.sh
. "$(dirname "$0")/../integration/lib.sh"
need_shim
for tool in nginx wrk curl python3; do
    command -v $tool >/dev/null || skip "$tool is not installed (Debian: nginx-light, wrk, curl)"
done

mkdir -p "$TMP/www"
echo "hello from nginx" >"$TMP/www/index.html"
head -c $((1024 * 1024)) /dev/urandom >"$TMP/www/big.bin"
big_sha=$(sha256sum "$TMP/www/big.bin" | cut -d' ' -f1)
# The workers run as the user nginx's configuration names; root here, so they read $TMP and
# write the shim's log there.
user_line="user root;"
[ "$(id -u)" -eq 0 ] || user_line=

port_closed() { [ -z "$(ss -Htln "( sport = :$1 )")" ]; }
server_side_states() {
    echo "CLOSE_WAIT=$(count_state close-wait "$1" server)" \
        "ESTABLISHED=$(count_state established "$1" server)" \
        "LAST_ACK=$(count_state last-ack "$1" server)"
}
server_side_done() { [ "$(server_side_states "$1")" = "CLOSE_WAIT=0 ESTABLISHED=0 LAST_ACK=0" ]; }

# run NAME [VAR=VALUE...]: nginx with that environment, and every client against it.
run() {
    local name=$1 port prefix
    shift
    # shellcheck disable=SC2119 # no port to avoid
    port=$(pick_port)
    prefix=$TMP/$name
    mkdir -p "$prefix/logs" "$prefix/tmp"
    cat >"$prefix/nginx.conf" <<EOF
$user_line
worker_processes 2;
daemon off;
master_process on;
pid $prefix/nginx.pid;
error_log $prefix/logs/error.log info;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $prefix/tmp/body;
    proxy_temp_path $prefix/tmp/proxy;
    fastcgi_temp_path $prefix/tmp/fastcgi;
    uwsgi_temp_path $prefix/tmp/uwsgi;
    scgi_temp_path $prefix/tmp/scgi;
    server {
        listen 127.0.0.1:$port;
        root $TMP/www;
    }
}
EOF
    start_bg "$name" "$@" nginx -p "$prefix" -e "$prefix/logs/error.log" -c "$prefix/nginx.conf"
    wait_until 10000 curl -sf -o /dev/null "http://127.0.0.1:$port/" ||
        fail "$name: nginx did not answer on port $port"
    echo "$name (port $port):"

    timeout 60 wrk -t 2 -c 20 -d 3s "http://127.0.0.1:$port/" >"$prefix/wrk-keepalive.out" 2>&1 ||
        fail "$name: wrk (keep-alive) failed"
    timeout 60 wrk -t 2 -c 20 -d 2s -H 'Connection: close' "http://127.0.0.1:$port/" \
        >"$prefix/wrk-close.out" 2>&1 || fail "$name: wrk (Connection: close) failed"
    for w in keepalive close; do
        echo "  wrk $w: $(grep -E 'requests in|Requests/sec' "$prefix/wrk-$w.out" | xargs)"
        ! grep -Eq 'Socket errors|Non-2xx' "$prefix/wrk-$w.out" ||
            fail "$name: wrk $w: $(grep -E 'Socket errors|Non-2xx' "$prefix/wrk-$w.out")"
    done

    local ok=0
    for _ in $(seq 1 50); do
        [ "$(curl -sf "http://127.0.0.1:$port/index.html")" = "hello from nginx" ] && ok=$((ok + 1))
    done
    assert_eq 50 "$ok" "$name: curl requests answered whole"

    for v in 1.0 1.1; do
        timeout 60 python3 "$(dirname "$0")/halfclose_http.py" --port "$port" --path /big.bin \
            --expect-sha256 "$big_sha" --http $v --count 3 --chunk 32768 --pause-ms 40 \
            >"$prefix/halfclose-$v.out" 2>&1 ||
            fail "$name: a half-closing HTTP/$v client lost its reply: $(cat "$prefix/halfclose-$v.out")"
        sed 's/^/  /' "$prefix/halfclose-$v.out"
    done

    # nginx closes every connection itself: nothing of its side may be left behind.
    wait_until 10000 server_side_done "$port" || true
    echo "$name: $(server_side_states "$port")" >"$prefix/ends"
    echo "  sockets at the end: $(server_side_states "$port")"
    if grep -E '\[(error|crit|alert|emerg)\]' "$prefix/logs/error.log"; then
        fail "$name: errors in nginx's log"
    fi
    nginx -p "$prefix" -e "$prefix/logs/error.log" -c "$prefix/nginx.conf" -s quit 2>/dev/null || true
    wait_until 10000 port_closed "$port" || true
}


run plain
run shim LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=300 AUTOCLOSE_SWEEP_MS=200 \
    AUTOCLOSE_LOG=debug AUTOCLOSE_LOG_FILE="$TMP/shim.log"

assert_eq "$(sed 's/^plain: //' "$TMP/plain/ends")" "$(sed 's/^shim: //' "$TMP/shim/ends")" \
    "nginx's sockets at the end, with the shim as without"
# A line that meets another thread's logging goes to stderr (shim.err), not the file: both.
cat "$TMP/shim.log" "$TMP/shim.err" >"$TMP/shim.all" 2>/dev/null || true
assert_eq 0 "$(actions "$TMP/shim.all" | wc -l)" "shim actions (nginx closes every connection itself)"
assert_eq 0 "$(count_lines 'failed to' "$TMP/shim.all")" "shim failures"
echo "  shim log: $(count_lines 'pending fd=' "$TMP/shim.all") FINs logged as pending," \
    "$(count_lines 'waiting fd=' "$TMP/shim.all") waits for a reply still going out," \
    "$(count_lines 'left alone' "$TMP/shim.all") left alone, 0 actions"
echo "  figure: nginx under the shim: $(grep -h 'Requests/sec' "$TMP/shim/wrk-keepalive.out" | xargs) (keep-alive)," \
    "$(grep -h 'Requests/sec' "$TMP/shim/wrk-close.out" | xargs) (a connection per request)"
pass "nginx: wrk, curl and half-closing clients served whole; no shim action; sockets as without"
