#!/usr/bin/env bash
# autoclosed --metrics-listen: GET /metrics serves the very text of --stats-file (the gauge with
# its labels, the counters), HEAD its headers; another path is 404, another method 405 (Allow:
# GET, HEAD); no line is logged per request. A local user (nobody) who opens 100 idle
# connections holds at most the endpoint's slots: meanwhile the daemon reclaims a new leak within
# its grace, a scraper at another address is served, and once the idle ones time out (5 s) a
# scrape from the user's address is served again. [::1]:PORT works; a process out of reach counts
# in autoclosed_unreachable_processes_total; the server runs under the unit's system call filter.
# libmicrohttpd is mapped only in a daemon given the option. Refusals at start are one line and
# exit 2: libmicrohttpd missing, the port taken, an address no interface has, a name
# (nothing is looked up), and an address family the unit refuses (RestrictAddressFamilies=).
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
need_root "the idle connections are nobody's, and pidfd_getfd reaches the server"
command -v curl >/dev/null || skip "needs curl"
[ -x /usr/bin/python3 ] || skip "needs /usr/bin/python3 (run as nobody, who cannot use a per-user one)"

INTERVAL=200
GRACE=3000
FILE=$TMP/stats.prom
LOG=$TMP/http.log

start_bg srv "$FIXTURES/mos_server" --style read --port-file "$TMP/srv.port"
port=$(await_port srv)
spid=$(main_pid srv)
mport=$(pick_port "$port")
URL=http://127.0.0.1:$mport/metrics

start_daemon http --pid "$spid" --grace-ms $GRACE --interval-ms $INTERVAL --stats-file "$FILE" \
    --metrics-listen "$mport" --log-file "$LOG"
await_watching "$LOG"
grep -q "metrics_listen=$mport" "$LOG" || fail "the start-up line does not name the endpoint"

# scrape [CURL-OPTION...]: the body of GET /metrics in $TMP/scrape.txt.
scrape() { curl -sf --max-time 2 "$@" -o "$TMP/scrape.txt" "$URL"; }
# same_as_file: a scrape equals the stats file, read between two equal scrapes (both are
# replaced at once, each interval something changed).
# shellcheck disable=SC2317 # called through wait_until
same_as_file() {
    scrape || return 1
    cp "$TMP/scrape.txt" "$TMP/first.txt"
    cp "$FILE" "$TMP/file.txt" 2>/dev/null || return 1
    scrape && cmp -s "$TMP/first.txt" "$TMP/scrape.txt" && cmp -s "$TMP/file.txt" "$TMP/scrape.txt"
}
# scraped METRIC VALUE [LABEL=VALUE...]: for wait_until.
# shellcheck disable=SC2317 # called through wait_until
scraped() { scrape && prom_is "$TMP/scrape.txt" "$2" "$1" "${@:3}"; }

client leak1 --port "$port" --count 1 || fail "client leak1 failed"
wait_until 2000 scraped autoclosed_close_wait 1 pid="$spid" comm=mos_server port="$port" ||
    fail "GET /metrics never showed the leak: $(cat "$TMP/scrape.txt" 2>/dev/null)"
wait_until 2000 same_as_file || fail "GET /metrics differs from --stats-file:
$(diff "$TMP/file.txt" "$TMP/scrape.txt")"
grep '^autoclosed_close_wait{' "$TMP/scrape.txt" | sed 's/^/    /'
echo "  GET /metrics equals --stats-file ($(wc -l <"$TMP/scrape.txt") lines) while the leak waits"
wait_until $((GRACE + 3000)) scraped autoclosed_reclaimed_total 1 ||
    fail "autoclosed_reclaimed_total did not reach 1: $(cat "$TMP/scrape.txt")"
wait_until 2000 same_as_file || fail "GET /metrics differs from --stats-file after the reclaim"
echo "  after the reclaim: reclaimed_total 1, and the same text as the file"

# The headers, HEAD, and what is refused.
headers=$(curl -sf --max-time 2 -D - -o /dev/null "$URL") || fail "GET /metrics failed"
grep -qi '^content-type: text/plain; version=0.0.4' <<<"$headers" ||
    fail "no Prometheus text content type: $headers"
head_out=$(curl -s --max-time 2 -I -w '%{http_code} %{size_download}' -o "$TMP/head.txt" "$URL")
assert_eq "200 0" "$head_out" "HEAD /metrics: status and body bytes"
for path in / /metric /metrics/x /index.html; do
    assert_eq 404 "$(curl -s --max-time 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$mport$path")" \
        "GET $path"
done
for method in POST PUT DELETE OPTIONS; do
    answer=$(curl -s --max-time 2 -X "$method" -d x=1 -o /dev/null -w '%{http_code} %header{allow}' "$URL")
    assert_eq "405 GET, HEAD" "$answer" "$method /metrics: status and Allow"
done
lines=$(wc -l <"$LOG")
for _ in $(seq 20); do scrape || fail "a scrape failed"; done
assert_eq "$lines" "$(wc -l <"$LOG")" "log lines after 20 more requests (as before)"

# nobody holds 100 idle connections: the endpoint keeps at most 16 (8 of one address).
open_to_all "$TMP/nobody"
# shellcheck disable=SC2016 # python's
start_bg idle "${UNPRIVILEGED[@]}" /usr/bin/python3 -c '
import socket, sys, time
socks = []
for i in range(int(sys.argv[2])):
    s = socket.socket()
    s.setblocking(False)
    try:
        s.connect(("127.0.0.1", int(sys.argv[1])))
    except BlockingIOError:
        pass
    socks.append(s)
print("open", len(socks), flush=True)
time.sleep(60)
' "$mport" 100
wait_until 5000 has_lines 1 '^open 100$' "$TMP/idle.out" || fail "nobody's connections were not opened"
held_ms=$(now_ms)
# shellcheck disable=SC2317 # called through wait_until
held() { [ "$(ss -Htn state established "( sport = :$mport )" | wc -l)" -ge 1 ]; }
wait_until 2000 held || fail "the endpoint holds none of nobody's connections"
sleep_ms 500
kept=$(ss -Htn state established "( sport = :$mport )" | wc -l)
echo "  nobody's 100 idle connections: $kept kept by the endpoint"
[ "$kept" -le 16 ] || fail "the endpoint keeps $kept connections, more than its 16"
t0=$(now_ms)
scrape --interface 127.0.0.2 || fail "a scraper at 127.0.0.2 was not served while nobody's connections wait"
echo "  a scrape from 127.0.0.2 meanwhile: served in $(($(now_ms) - t0)) ms"
client leak2 --port "$port" --count 1 || fail "client leak2 failed"
wait_until $((GRACE + 3000)) clients_settled "$port" leak2 || true
require_settled "$port" "the leak made meanwhile was not reclaimed" leak2
# How long after the peer's FIN (as the kernel dated it) the daemon acted.
took=$(sed -n "s/.*: shutdown .* peer=127.0.0.1:$(client_ports leak2) since_fin_ms=\([0-9]*\) .*/\1/p" "$LOG")
echo "  a leak made meanwhile: shut down ${took:-?} ms after its FIN (grace $GRACE ms)"
{ [ -n "$took" ] && [ "$took" -le $((GRACE + 2 * INTERVAL + 500)) ]; } ||
    fail "the leak made meanwhile was shut down ${took:-?} ms after its FIN"
# After the timeout (5 s of silence) the idle ones are closed: a scrape from 127.0.0.1 is served.
wait_until 10000 scrape || fail "no scrape served from 127.0.0.1 10 s after the idle connections"
echo "  a scrape from 127.0.0.1: served $(($(now_ms) - held_ms)) ms after the idle connections came"
prom_is "$TMP/scrape.txt" 2 autoclosed_reclaimed_total || fail "reclaimed_total is not 2: $(cat "$TMP/scrape.txt")"
alive "$DAEMON_PID" || fail "the daemon died"
grep -q '/libmicrohttpd\.so' "/proc/$DAEMON_PID/maps" || fail "the endpoint's daemon has no libmicrohttpd mapped"
stop_daemon http
# Without the option, libmicrohttpd and GnuTLS are never loaded.
start_daemon plain --pid "$spid" --interval-ms $INTERVAL --log-file "$TMP/plain.log"
await_watching "$TMP/plain.log"
if grep -E '/lib(microhttpd|gnutls)\.so' "/proc/$DAEMON_PID/maps"; then
    fail "a daemon without --metrics-listen loaded libmicrohttpd or GnuTLS"
fi
echo "  without --metrics-listen: neither libmicrohttpd nor GnuTLS mapped"
stop_daemon plain

# Refusals at start: one line each, exit 2.
start_bg holder python3 -c '
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past the TIME_WAITs of the endpoint
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(1)
print("listening", flush=True); time.sleep(60)' "$mport"
wait_until 5000 has_lines 1 '^listening$' "$TMP/holder.out" || fail "the port holder did not start"
refused() { # refused NAME PATTERN [PREFIX...] :: ARGS...
    local name=$1 pattern=$2 prefix=()
    shift 2
    while [ "$1" != :: ]; do
        prefix+=("$1")
        shift
    done
    shift
    RUN_RC=0
    timeout 30 "${prefix[@]}" "$AUTOCLOSED" --pid "$spid" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" ||
        RUN_RC=$?
    assert_eq 2 "$RUN_RC" "$* : exit status"
    assert_eq 1 "$(wc -l <"$TMP/$name.err")" "  lines on stderr"
    grep -q "$pattern" "$TMP/$name.err" || fail "$name: not '$pattern': $(cat "$TMP/$name.err")"
    sed 's/^/    /' "$TMP/$name.err"
}
refused inuse 'Address already in use' :: --metrics-listen "127.0.0.1:$mport"
refused noaddr 'no interface of this host has that address' :: --metrics-listen "192.0.2.1:$mport"
refused name 'numeric address' :: --metrics-listen "localhost:$mport"
refused zero 'within 1-65535' :: --metrics-listen 0
# libmicrohttpd missing (a file that is not a library at its name, in a mount namespace of the
# daemon's own): the option says what it needs.
mhd=$(readlink -f "$(dirname "$(cc -print-file-name=libmicrohttpd.so.12)")/libmicrohttpd.so.12")
# shellcheck disable=SC2016 # expanded by the inner shell
refused nolib 'needs libmicrohttpd.so.12 (Debian: libmicrohttpd12)' unshare -m --propagation private \
    sh -c 'mount --bind /dev/null "$0" && exec "$@"' "$mhd" :: --metrics-listen "$mport"
refused family 'add AF_INET to RestrictAddressFamilies=' "$FIXTURES/seccomp_deny" socket:2 EAFNOSUPPORT \
    -- :: --metrics-listen "$mport"

# [::1]:PORT, and a process out of reach counted (a filter refuses pidfd_getfd, as a unit's or an
# LSM would), under the unit's own system call filter where systemd-analyze can list it.
# calls_of GROUP: the system calls of a filter group, nested groups expanded, in $TMP/calls.
declare -A seen_group
calls_of() {
    local line names
    [ -z "${seen_group[$1]:-}" ] || return 0
    seen_group[$1]=1
    names=$(systemd-analyze syscall-filter "$1" 2>/dev/null) || return 1
    while read -r line; do
        case $line in
        "" | "#"* | "$1") ;;
        @*) calls_of "$line" || return 1 ;;
        *) echo "$line" >>"$TMP/calls" ;;
        esac
    done <<<"$names"
}
wrap=("$FIXTURES/seccomp_deny" pidfd_getfd EPERM --)
if command -v systemd-analyze >/dev/null && calls_of @system-service; then
    { sort -u "$TMP/calls" && printf 'pidfd_open\npidfd_getfd\n'; } >"$TMP/allowed.list"
    wrap=("$FIXTURES/hardened_exec" --allow-file "$TMP/allowed.list" --eperm -- "${wrap[@]}")
    echo "under the unit's SystemCallFilter=@system-service, and pidfd_getfd refused:"
else
    echo "pidfd_getfd refused (no systemd-analyze: not under @system-service):"
fi
URL="http://[::1]:$mport/metrics"
client leak3 --port "$port" --count 1 || fail "client leak3 failed"
start_bg v6 "${wrap[@]}" "$AUTOCLOSED" --pid "$spid" --grace-ms 0 --interval-ms $INTERVAL \
    --metrics-listen "[::1]:$mport" --log-file "$TMP/v6.log"
wait_until 5000 scraped autoclosed_unreachable_processes_total 1 ||
    fail "[::1]: autoclosed_unreachable_processes_total never 1: $(cat "$TMP/scrape.txt" 2>/dev/null)
$(cat "$TMP/v6.log" "$TMP/v6.err")"
grep -v '^#' "$TMP/scrape.txt" | sed 's/^/    /'
prom_is "$TMP/scrape.txt" 1 autoclosed_close_wait pid="$spid" || fail "the gauge does not count the leak"
pass "GET /metrics = --stats-file; 404, 405; 100 idle connections held $kept slots, a leak reclaimed\
 $took ms after its FIN meanwhile; refusals exit 2 in one line; [::1] and the unreachable count served"
