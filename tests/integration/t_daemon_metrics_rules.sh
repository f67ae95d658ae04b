#!/usr/bin/env bash
# The Prometheus alerting rules shipped for autoclosed (scripts/prometheus/autoclosed.rules.yml)
# pass promtool's check, and its unit tests (autoclosed.rules.test.yml): from input series, each
# alert fires when it should (CLOSE_WAIT growing on a port across a restart, reclaims at a high
# rate, a process or namespace out of reach, errors that keep coming, the daemon down or absent)
# and not otherwise. Every counter a rule reads is one the daemon writes (its --help names it).
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
command -v promtool >/dev/null || skip "needs promtool (Debian: prometheus)"
RULES=$REPO/scripts/prometheus/autoclosed.rules.yml
TESTS=$REPO/scripts/prometheus/autoclosed.rules.test.yml

promtool check rules "$RULES" >"$TMP/check.out" 2>&1 || fail "promtool check rules: $(cat "$TMP/check.out")"
sed 's/^/    /' "$TMP/check.out"
promtool test rules "$TESTS" >"$TMP/test.out" 2>&1 || fail "promtool test rules: $(cat "$TMP/test.out")"
sed 's/^/    /' "$TMP/test.out"

# Each alert has a test that expects it to fire.
mapfile -t alerts < <(sed -n 's/^ *- alert: *//p' "$RULES")
[ ${#alerts[@]} -ge 7 ] || fail "${#alerts[@]} alerts in the rules, not 7"
for a in "${alerts[@]}"; do
    awk -v a="$a" '$0 ~ "alertname: " a "$" { on = 1; next } on && /alertname:/ { on = 0 }
        on && /exp_labels:/ { found = 1 } END { exit !found }' "$TESTS" ||
        fail "no test expects $a to fire"
done
# The series the rules read are the daemon's (up is Prometheus's own).
run_daemon help --help
while read -r m; do
    grep -q "$m" "$TMP/help.out" || fail "the rules read $m, which autoclosed --help does not name"
done < <(grep -o 'autoclosed_[a-z_]*' "$RULES" | sort -u)
pass "${#alerts[@]} alerts checked by promtool, and each seen to fire (and not) in its unit tests"
