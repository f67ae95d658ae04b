#!/usr/bin/env bash
# scripts/tcpstates: after 3 disconnects from a leaking server, it counts 3 CLOSE_WAIT on the
# server's port (held by the server) and 3 FIN_WAIT_2 towards it, in the table and in --json,
# as ss itself does, and names both remedies (the wrapper, and autoclosed --pid for that
# server); --pid narrows to the server; --watch shows the pile growing; bad arguments exit 2.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tools_lib.sh
. "$(dirname "$0")/tools_lib.sh"
TS=$TOOLS/tcpstates
N=3
rc=0 # each run_rc sets it

command -v python3 >/dev/null || skip "python3 is not installed"
start_bg leak "$FIXTURES/mos_server" --style read --port-file "$TMP/leak.port"
port=$(await_port leak)
pid=$(main_pid leak)
client clients --port "$port" --count $N || fail "client exchanges failed"
wait_until 3000 leaking "$port" $N clients || fail "the server did not leak: $(report_states "$port" clients)"
echo "  ss: $(report_states "$port" clients)"

# The table: the column under the header CLOSE_WAIT, in the row of the port.
run_rc rc "$TS" --port "$port"
sed 's/^/    | /' "$TMP/rc.out"
assert_eq 0 "$rc" "exit status of tcpstates --port"
# Other tests run alongside: a socket of theirs may have had the same port number, so rows are
# picked by owner too, and the peer side only has to hold at least ours.
cell() { # PORT-LABEL OWNER COLUMN: the number in that row and column of the table
    awk -v row="$1" -v owner="$2" -v col="$3" '
        $1 == "PORT" { for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
        c && $1 == row && $2 == owner { print $c; exit }' "$TMP/rc.out"
}
assert_eq $N "$(cell "$port" "mos_server[$pid]" CLOSE_WAIT)" "text: CLOSE_WAIT on port $port held by mos_server[$pid]"
fw=$(cell "->$port" - FIN_WAIT_2)
echo "  text: FIN_WAIT_2 towards port $port: $fw (expected at least $N)"
[ "${fw:-0}" -ge $N ] || fail "text: FIN_WAIT_2 towards port $port: $fw, expected at least $N"
grep -q "^! $N in CLOSE_WAIT on port $port, held by mos_server\[$pid\]" "$TMP/rc.out" ||
    fail "text: no CLOSE_WAIT finding"
tr -s '\n ' '  ' <"$TMP/rc.out" | grep -q "application does not close its sockets" ||
    fail "text: the finding does not explain CLOSE_WAIT"
# Both remedies: the library through the wrapper, and autoclosed for this very process now.
tr -s '\n ' '  ' <"$TMP/rc.out" | grep -qF "'autoclose -- SERVER'" ||
    fail "text: the finding does not name the wrapper as a remedy"
tr -s '\n ' '  ' <"$TMP/rc.out" | grep -qF "'autoclosed --pid $pid'" ||
    fail "text: the finding does not give the autoclosed command for pid $pid"

# The JSON, read with python3.
run_rc rc "$TS" --port "$port" --json
assert_eq 0 "$rc" "exit status of tcpstates --port --json"
json_check() { # prints "close_wait-held-by-the-server fin_wait_2-towards-it paired-with-it"
    python3 - "$TMP/rc.out" "$port" "$pid" <<'PY'
import json, sys
snap = json.load(open(sys.argv[1]))
port, pid = int(sys.argv[2]), int(sys.argv[3])
ours = [g for g in snap["groups"] if pid in [p["pid"] for p in g["processes"]]]
cw = sum(g["states"]["CLOSE_WAIT"] for g in ours if g["port"] == port and g["direction"] == "in")
fw = sum(g["states"]["FIN_WAIT_2"] for g in snap["groups"] if g["port"] == port and g["direction"] == "out")
paired = sum(g["peer_close_wait_here"] for g in snap["groups"] if "mos_server[%d]" % pid in g["peer_owners"])
assert snap["totals"]["CLOSE_WAIT"] == sum(g["states"]["CLOSE_WAIT"] for g in snap["groups"]), \
    "totals disagree with the groups"
print(cw, fw, paired)
PY
}
read -r cw fw paired <<<"$(json_check)"
assert_eq $N "$cw" "json: CLOSE_WAIT on port $port held by the server"
[ "$fw" -ge $N ] || fail "json: FIN_WAIT_2 towards port $port: $fw, expected at least $N"
assert_eq $N "$paired" "json: FIN_WAIT_2 whose other end is the server's CLOSE_WAIT"

run_rc rc "$TS" --pid "$pid" --json
assert_eq 0 "$rc" "exit status of tcpstates --pid --json"
read -r cw fw paired <<<"$(json_check)"
assert_eq $N "$cw" "json --pid: CLOSE_WAIT held by the server"
assert_eq 0 "$fw" "json --pid: FIN_WAIT_2 (not the server's)"

# --watch: one JSON object per line; two more leaks show as growth.
start_bg watch "$TS" --port "$port" --watch 0.3 --json
wait_until 5000 has_lines 1 . "$TMP/watch.out" || fail "--watch printed nothing"
client more --port "$port" --count 2 || fail "client exchanges failed"
# shellcheck disable=SC2317 # called through wait_until
grown() {
    python3 - "$TMP/watch.out" <<'PY'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
snaps = [json.loads(l) for l in lines if l.endswith("}")]
sys.exit(0 if any(f["state"] == "CLOSE_WAIT" and f["owner"].startswith("mos_server[")
                  and f["count"] == 5 and f["change"] == 2
                  for s in snaps for f in s["findings"]) else 1)
PY
}
wait_until 5000 grown || fail "--watch did not report the server's CLOSE_WAIT as 5 (+2)"
echo "  --watch: $(wc -l <"$TMP/watch.out") snapshots, growth +2 reported"

for args in "--port 0" "--port 70000" "--pid 0" "--pid 4194303" "--watch 0" "--watch x" "--bogus"; do
    # shellcheck disable=SC2086 # each case is a word list
    run_rc rc "$TS" $args
    [ "$rc" = 2 ] || fail "tcpstates $args: exit $rc, expected 2"
    [ -s "$TMP/rc.err" ] || fail "tcpstates $args: no message"
done
echo "  bad arguments: exit 2 each"
pass "$N CLOSE_WAIT counted in text and JSON, --pid and --watch checked"
