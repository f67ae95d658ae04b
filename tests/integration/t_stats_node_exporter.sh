#!/usr/bin/env bash
# The library's stats file and autoclosed's in one textfile directory, as the README suggests,
# read by Debian's node_exporter (package prometheus-node-exporter) on a loopback port: its
# /metrics must carry both files' series, node_textfile_scrape_error must be 0, and its log must
# hold no complaint about them (node_exporter 1.5 drops a metric name met in two files with other
# help or labels, saying "has help ... but should have ..."; the daemon's counters are named
# autoclosed_* for that reason, the library's autoclose_*).
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
need_shim

NODE_EXPORTER=$(command -v prometheus-node-exporter || command -v node_exporter || true)
[ -n "$NODE_EXPORTER" ] ||
    skip "node_exporter is not installed (Debian: apt-get install prometheus-node-exporter)"

GRACE=300
INTERVAL=100
DIR=$TMP/textfile
# As root, node_exporter runs as nobody, as Debian's unit runs it as prometheus (as root it warns).
as=()
if [ "$(id -u)" -eq 0 ]; then
    open_to_all "$DIR"
    as=("${UNPRIVILEGED[@]}")
else
    mkdir -p "$DIR"
fi

echo "a leak reclaimed by the library, its stats file in the directory:"
start_bg lib LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=$GRACE \
    AUTOCLOSE_STATS_FILE="$DIR/libautoclose-%p.prom" "$FIXTURES/mos_server" --style read \
    --port-file "$TMP/lib.port"
lport=$(await_port lib)
lpid=$(main_pid lib)
client lc --port "$lport" --count 1 || fail "client exchange failed"
wait_until $((GRACE + 5000)) clients_settled "$lport" lc || true
require_settled "$lport" "the library did not reclaim the leak" lc
LIBSTATS=$DIR/libautoclose-$lpid.prom
wait_until 3000 prom_is "$LIBSTATS" 1 autoclose_reclaimed_total pid="$lpid" ||
    fail "the library's stats file does not count the reclaim: $(cat "$LIBSTATS" 2>/dev/null)"

echo "a leak reclaimed by autoclosed, its stats file in the directory:"
start_bg plain "$FIXTURES/mos_server" --style read --port-file "$TMP/plain.port"
pport=$(await_port plain)
ppid=$(main_pid plain)
client pc --port "$pport" --count 1 || fail "client exchange failed"
wait_until 3000 leaking "$pport" 1 pc || fail "no leak: $(report_states "$pport" pc)"
DSTATS=$DIR/autoclosed.prom
start_daemon daemon --pid "$ppid" --grace-ms $GRACE --interval-ms $INTERVAL --stats-file "$DSTATS" \
    --log-file "$TMP/daemon.log"
wait_until $((GRACE + 5000)) clients_settled "$pport" pc || true
require_settled "$pport" "autoclosed did not reclaim the leak" pc
# Whatever its name: what node_exporter makes of it is the test.
wait_until 3000 has_lines 1 '^[a-z_]+_reclaimed_total 1$' "$DSTATS" ||
    fail "the daemon's stats file does not count the reclaim: $(cat "$DSTATS" 2>/dev/null)"
find "$DIR" -mindepth 1 -printf '    %f\n'

port=$(pick_port "$lport" "$pport")
echo "$NODE_EXPORTER on 127.0.0.1:$port, textfile collector only:"
start_bg exporter "${as[@]}" "$NODE_EXPORTER" --web.listen-address="127.0.0.1:$port" \
    --collector.disable-defaults --collector.textfile --collector.textfile.directory="$DIR"
# scrape: /metrics into $TMP/metrics.txt.
# shellcheck disable=SC2317 # called through wait_until
scrape() {
    python3 -c '
import sys, urllib.request
with urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=5) as r:
    sys.stdout.write(r.read().decode())' "$port" >"$TMP/metrics.txt" 2>/dev/null
}
wait_until 10000 scrape || fail "node_exporter did not answer on 127.0.0.1:$port"
grep -E '^(autoclose|node_textfile)' "$TMP/metrics.txt" | sed 's/^/    /'

assert_eq 0 "$(prom_sum "$TMP/metrics.txt" node_textfile_scrape_error)" "node_textfile_scrape_error"
complaints=$(grep -E 'has help|level=(warn|error)' "$TMP/exporter.err" || true)
[ -z "$complaints" ] || fail "node_exporter complained:"$'\n'"$complaints"
assert_eq 1 "$(prom_sum "$TMP/metrics.txt" autoclose_reclaimed_total pid="$lpid")" \
    "the library's autoclose_reclaimed_total, through node_exporter"
assert_eq 1 "$(prom_sum "$TMP/metrics.txt" autoclosed_reclaimed_total)" \
    "the daemon's autoclosed_reclaimed_total, through node_exporter"
assert_eq 0 "$(prom_sum "$TMP/metrics.txt" autoclosed_errors_total)" \
    "the daemon's autoclosed_errors_total, through node_exporter"
for f in "$LIBSTATS" "$DSTATS"; do
    grep -qF "node_textfile_mtime_seconds{file=\"$f\"}" "$TMP/metrics.txt" ||
        grep -qF "node_textfile_mtime_seconds{file=\"${f##*/}\"}" "$TMP/metrics.txt" ||
        fail "node_exporter read no ${f##*/}"
done
stop_daemon daemon
pass "node_exporter read both files with no complaint: the library's and the daemon's series,\
 node_textfile_scrape_error 0"
