#!/usr/bin/env bash
# A real Prometheus (Debian's package) scrapes autoclosed --metrics-listen every second, with the
# shipped alerting rules loaded: through its HTTP API the target is up, a leak's gauge
# autoclosed_close_wait rises to 1 and falls back to 0 once the daemon has reclaimed it (a grace
# of 3 s, so that scrapes see it), autoclosed_reclaimed_total rises by one, and every rule loads
# and evaluates without an error.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
need_root "pidfd_getfd reaches the server (any user's)"
[ -x /usr/bin/prometheus ] || skip "needs /usr/bin/prometheus (Debian: prometheus)"
command -v curl >/dev/null || skip "needs curl"
command -v python3 >/dev/null || skip "needs python3"

GRACE=3000
INTERVAL=200
RULES=$REPO/scripts/prometheus/autoclosed.rules.yml

start_bg srv "$FIXTURES/mos_server" --style read --port-file "$TMP/srv.port"
port=$(await_port srv)
spid=$(main_pid srv)
mport=$(pick_port "$port")
pport=$(pick_port "$port" "$mport")
start_daemon daemon --pid "$spid" --grace-ms $GRACE --interval-ms $INTERVAL \
    --metrics-listen "127.0.0.1:$mport" --log-file "$TMP/daemon.log"
await_watching "$TMP/daemon.log"

cat >"$TMP/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - $RULES
scrape_configs:
  - job_name: autoclosed
    static_configs:
      - targets: ["127.0.0.1:$mport"]
EOF
start_bg prom /usr/bin/prometheus --config.file="$TMP/prometheus.yml" \
    --storage.tsdb.path="$TMP/tsdb" --web.listen-address="127.0.0.1:$pport" --log.level=warn
API=http://127.0.0.1:$pport
# shellcheck disable=SC2317 # called through wait_until
ready() { curl -sf --max-time 1 -o /dev/null "$API/-/ready"; }
wait_until 30000 ready || fail "Prometheus was not ready in 30 s"
ppid_=$(main_pid prom)
echo "Prometheus $(/usr/bin/prometheus --version 2>&1 | sed -n '1s/^prometheus, version \([^ ]*\).*/\1/p')" \
    "(pid $ppid_) on $pport, scraping autoclosed on $mport every second"

# query PROMQL: the value of an instant query's single result, "none" when it has none.
query() {
    curl -sf --max-time 2 -G "$API/api/v1/query" --data-urlencode "query=$1" >"$TMP/query.json" ||
        return 1
    python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
r = d["data"]["result"] if d.get("status") == "success" else None
if r is None:
    sys.exit(1)
print(r[0]["value"][1] if len(r) == 1 else "none" if not r else "many")' "$TMP/query.json"
}
# shellcheck disable=SC2317 # called through wait_until
query_is() { [ "$(query "$1")" = "$2" ]; }

wait_until 10000 query_is 'up{job="autoclosed"}' 1 || fail "the target is not up: $(cat "$TMP/query.json")"
wait_until 5000 query_is 'autoclosed_reclaimed_total' 0 || fail "no reclaimed_total: $(cat "$TMP/query.json")"
echo "  up 1, autoclosed_reclaimed_total 0"
GAUGE="autoclosed_close_wait{job=\"autoclosed\",port=\"$port\",pid=\"$spid\",comm=\"mos_server\"}"

client leak --port "$port" --count 1 || fail "client failed"
wait_until 3000 leaking "$port" 1 leak || fail "the server did not leak: $(report_states "$port" leak)"
leaked=$(now_ms)
wait_until $((GRACE + 2000)) query_is "$GAUGE" 1 ||
    fail "Prometheus never saw the gauge at 1: $(cat "$TMP/query.json")"
echo "  $GAUGE: 1, $(($(now_ms) - leaked)) ms after the leak"
wait_until $((GRACE + 5000)) clients_settled "$port" leak || true
require_settled "$port" "autoclosed did not reclaim the leak" leak
# The series goes once the socket is no longer in CLOSE_WAIT: 0 by "or vector(0)".
wait_until 5000 query_is "sum($GAUGE) or vector(0)" 0 ||
    fail "the gauge did not fall back to 0: $(cat "$TMP/query.json")"
echo "  the gauge: 0 again, $(($(now_ms) - leaked)) ms after the leak"
assert_eq 1 "$(query "max_over_time(${GAUGE}[1m])")" "  its highest over the last minute"
wait_until 5000 query_is 'autoclosed_reclaimed_total' 1 || fail "reclaimed_total: $(cat "$TMP/query.json")"
rise=$(query 'increase(autoclosed_reclaimed_total[1m])')
echo "  autoclosed_reclaimed_total: 1; increase over the last minute: $rise"
awk -v v="$rise" 'BEGIN { exit !(v > 0) }' || fail "no increase of autoclosed_reclaimed_total: $rise"
# The rules: all loaded, each evaluated without an error.
# shellcheck disable=SC2317 # called through wait_until
rules_ok() {
    curl -sf --max-time 2 "$API/api/v1/rules" >"$TMP/rules.json" || return 1
    python3 -c '
import json, sys
rules = [r for g in json.load(open(sys.argv[1]))["data"]["groups"] for r in g["rules"]]
bad = [r["name"] for r in rules if r.get("health") != "ok"]
print(len(rules), " ".join(bad))
sys.exit(1 if bad or not rules else 0)' "$TMP/rules.json" >"$TMP/rules.txt"
}
wait_until 5000 rules_ok || fail "the rules are not all evaluated ok: $(cat "$TMP/rules.txt" "$TMP/rules.json")"
echo "  rules loaded and evaluated: $(cat "$TMP/rules.txt")"
kill -TERM "$ppid_"
wait_until 10000 gone "$ppid_" || fail "Prometheus still running 10 s after SIGTERM"
stop_daemon daemon
pass "Prometheus scraped the leak's gauge 1 then 0 and reclaimed_total 0 then 1; the rules load"
