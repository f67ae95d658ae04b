#!/usr/bin/env bash
# autoclosed --ports alone and the network namespaces users make for themselves (unshare -rn, no
# privilege needed): nobody makes many, one of them with a leaking server of his, while root's
# "container" (unshare -n) has a leaking server on the same port number. Both leaks must be
# reclaimed (--ports is the port as each namespace sees it), but nobody's namespaces are bounded:
# only the first 8 are looked into, the others are said in one line for that user, once however
# often the daemon looks again (not a line per namespace, which would use up the error lines),
# counted in autoclosed_netns_unseen_total, and --once then exits 1 (namespaces it did not look
# into). Root's namespace is looked into whatever nobody makes. The same bound holds for a user
# inside a container whose user namespace root made (a runtime's --userns): his namespaces are
# that user namespace's, not root's. And a daemon without CAP_SYS_PTRACE, which cannot follow a
# namespace to its user namespace, counts it as its process owner's, never root's.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=netns_lib.sh
. "$(dirname "$0")/netns_lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
need_root "network namespaces of root's and of nobody's"
for tool in unshare nsenter ip; do
    command -v $tool >/dev/null || skip "needs unshare, nsenter and ip (util-linux, iproute2)"
done
unshare -n true 2>/dev/null || skip "this sandbox lets no network namespace be made"
"${UNPRIVILEGED[@]}" unshare -rn true 2>/dev/null ||
    skip "users cannot make namespaces of their own here (user namespaces closed to them)"

N=2
GRACE=500
INTERVAL=100
CAP=8     # USER_NETNS_MAX in shim/daemon/netns.c
EXTRA=12  # nobody's namespaces besides his server's

# shellcheck disable=SC2119 # no port to keep clear of
port=$(pick_port)
open_to_all "$TMP/nobody"
# nobody's server first: the lowest pid of his, among the namespaces looked into.
# shellcheck disable=SC2016 # $0 and $@ are sh's
start_bg user_srv "${UNPRIVILEGED[@]}" unshare -rn sh -c 'ip link set lo up && exec "$0" "$@"' \
    "$FIXTURES/mos_server" --style thread --port "$port" --port-file "$TMP/nobody/user_srv.port"
wait_for_file "$TMP/nobody/user_srv.port" 20000 || fail "nobody's server published no port"
upid=$(main_pid user_srv)
for i in $(seq "$EXTRA"); do
    start_bg "ns$i" "${UNPRIVILEGED[@]}" unshare -rn sleep 120
done
# shellcheck disable=SC2016 # $0 and $@ are sh's
start_bg root_srv unshare -n sh -c 'ip link set lo up && exec "$0" "$@"' \
    "$FIXTURES/mos_server" --style thread --port "$port" --port-file "$TMP/root_srv.port"
wait_for_file "$TMP/root_srv.port" 20000 || fail "root's server published no port"
rpid=$(main_pid root_srv)
# shellcheck disable=SC2317 # called through wait_until
in_their_ns() {
    local i p
    for i in $(seq "$EXTRA"); do
        p=$(main_pid "ns$i") || return 1
        [ "$(stat -L -c %i "/proc/$p/ns/net" 2>/dev/null)" != "$(stat -L -c %i /proc/self/ns/net)" ] ||
            return 1
    done
}
wait_until 10000 in_their_ns || fail "nobody's namespaces were not made"
echo "port $port: nobody's server pid $upid (netns $(stat -L -c %i "/proc/$upid/ns/net")), root's" \
    "pid $rpid (netns $(stat -L -c %i "/proc/$rpid/ns/net")), and $EXTRA more namespaces of nobody's"

leak() { # leak PID NAME
    NS_PID=$1
    ns_client "$2" "$1" "$port" $N
    wait_until 3000 leaking "$port" $N "$2" || fail "no leak in $2: $(report_states "$port" "$2")"
}
settled() { # settled PID NAME
    NS_PID=$1
    wait_until 3000 reclaimed "$port" $N "$2" || fail "not reclaimed: $(report_states "$port" "$2")"
}
left_out_lines() { count_lines "$1 has more network namespaces than the $CAP looked into: " "$2"; }

echo "running, --ports $port alone:"
start_daemon run --ports "$port" --grace-ms $GRACE --interval-ms $INTERVAL --log debug \
    --stats-file "$TMP/run.prom"
await_watching "$TMP/run.err"
leak "$upid" user_a
leak "$rpid" root_a
wait_until 5000 has_shutdowns $N "$TMP/run.err" "$upid" || fail "nobody's leak was not reclaimed"
wait_until 5000 has_shutdowns $N "$TMP/run.err" "$rpid" || fail "root's leak was not reclaimed"
settled "$upid" user_a
settled "$rpid" root_a
# A second look for namespaces (every 5 s) meets the same ones: nothing is said again.
wait_until 10000 has_lines 2 ': looked for network namespaces' "$TMP/run.err" ||
    fail "no second look for namespaces in 10 s"
stop_daemon run
grep -v ': shutdown \|: listed netns\|: scan ' "$TMP/run.err" | sed 's/^/    /'
assert_eq 1 "$(left_out_lines 'user 65534' "$TMP/run.err")" "  lines saying nobody's are left out"
grep -q "user 65534 has more network namespaces than the $CAP looked into: $((EXTRA + 1 - CAP)) processes" \
    "$TMP/run.err" || fail "the line does not count nobody's $((EXTRA + 1 - CAP)) processes left out"
assert_eq 1 "$(prom_sum "$TMP/run.prom" autoclosed_netns_unseen_total)" \
    "  autoclosed_netns_unseen_total"

echo "--once --ports $port alone:"
leak "$upid" user_b
leak "$rpid" root_b
run_daemon once --once --ports "$port" --grace-ms $GRACE --interval-ms $INTERVAL
sed 's/^/    /' "$TMP/once.err"
assert_eq 1 "$RUN_RC" "  exit status (namespaces left out)"
assert_eq $N "$(count_shutdowns "$TMP/once.err" "$upid")" "  nobody's leaks reclaimed"
assert_eq $N "$(count_shutdowns "$TMP/once.err" "$rpid")" "  root's leaks reclaimed"
settled "$upid" user_b
settled "$rpid" root_b

echo "without CAP_SYS_PTRACE, --once:"
RUN_RC=0
timeout 30 setpriv --inh-caps=-sys_ptrace --bounding-set=-sys_ptrace "$AUTOCLOSED" --once \
    --ports "$port" --grace-ms $GRACE --interval-ms $INTERVAL >"$TMP/noptrace.out" \
    2>"$TMP/noptrace.err" || RUN_RC=$?
grep 'network namespaces than' "$TMP/noptrace.err" | sed 's/^/    /'
assert_eq 1 "$(left_out_lines 'user 65534' "$TMP/noptrace.err")" "  lines saying nobody's are left out"
assert_eq 1 "$RUN_RC" "  exit status"

echo "a user inside a container whose user namespace root made:"
# The runtime's part: a user namespace (its uids 1-65535 are the host's 100001-165535) and a
# network namespace, the maps written from outside; then uid 1000 inside makes his own.
mkfifo "$TMP/go"
# shellcheck disable=SC2016 # expanded by the inner shells
start_bg ctr unshare -U -n sh -c 'read -r x <"$0"; exec setpriv --reuid 1000 --regid 1000 \
    --clear-groups sh -c '"'"'i=0; while [ $i -lt "$0" ]; do unshare -rn sleep 120 & i=$((i+1)); done
    echo made; wait'"'"' "$1"' "$TMP/go" "$EXTRA"
ctr_in_userns() {
    CPID=$(main_pid ctr) &&
        [ "$(stat -L -c %i "/proc/$CPID/ns/user")" != "$(stat -L -c %i /proc/self/ns/user)" ]
}
wait_until 5000 ctr_in_userns || fail "the container's user namespace was not made"
# Each map in one write(2), as the kernel wants (cat, not bash's printf).
printf '0 0 1\n1 100001 65535\n' >"$TMP/map"
cat "$TMP/map" >"/proc/$CPID/uid_map"
cat "$TMP/map" >"/proc/$CPID/gid_map"
echo go >"$TMP/go"
wait_until 10000 has_lines 1 '^made$' "$TMP/ctr.out" || fail "the container's user made nothing: $(cat "$TMP/ctr.err")"
cuserns=$(stat -L -c %i "/proc/$CPID/ns/user")
run_daemon userns_once --once --ports "$port" --grace-ms $GRACE --interval-ms $INTERVAL
grep 'network namespaces than' "$TMP/userns_once.err" | sed 's/^/    /'
assert_eq 1 "$(left_out_lines "user namespace $cuserns" "$TMP/userns_once.err")" \
    "  lines saying the container's user namespace's are left out"
pass "nobody's $((EXTRA + 1)) namespaces: $CAP looked into, the others said in one line; his leak\
 and root's (the same port, each namespace's) reclaimed; --once exit 1; the same bound for a user\
 in a container's user namespace, and without CAP_SYS_PTRACE"
