# shellcheck shell=bash
# Socket counts inside another network namespace, for tests of containers: lib.sh's helpers call
# ss, which here runs in the namespace of NS_PID (set it, or run a helper through in_ns).
# Sourced after lib.sh.

NS_PID=
# shellcheck disable=SC2317 # called by lib.sh's helpers
ss() {
    [ -n "$NS_PID" ] || fail "ss outside a namespace: NS_PID is not set"
    nsenter -t "$NS_PID" -n ss "$@"
}

# in_ns PID CMD...: CMD (a lib.sh helper) with its ss in PID's network namespace.
in_ns() {
    local NS_PID=$1
    shift
    "$@"
}

# ns_client NAME PID PORT COUNT: COUNT heartbeat exchanges with PORT in PID's network namespace,
# each closed first by the client.
ns_client() {
    timeout 60 nsenter -t "$2" -n "$FIXTURES/ncs_client" --port "$3" --count "$4" \
        >"$TMP/$1.out" 2>"$TMP/$1.err" || fail "client $1 failed: $(cat "$TMP/$1.err")"
}
