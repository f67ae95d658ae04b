#!/usr/bin/env bash
# make image's image run by a real container runtime (rootful podman) as the README's "Fleets"
# section runs it: its podman run line, taken from the README, with only the container's name,
# the ports and the times put in. A server on the host leaks N connections (ss: CLOSE_WAIT); the
# containerized daemon, in the host's PID namespace with two capabilities, a read-only root and
# no new privileges, reclaims them (CLOSE_WAIT 0, the peers in TIME_WAIT) and says so in podman
# logs, naming the server's host pid. The kernel's view of the daemon's process shows the
# container's limits: exactly CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH effective, no_new_privs,
# a seccomp filter (podman's default profile). Twice: with --network=host, as written, and with
# --network=none, a network namespace of the daemon's own, where the host's namespace is another
# one, found through the server's /proc/PID/net/tcp (its lines then carry netns=).
#
# podman's storage, its run state and its temporary files are the test's own (vfs in $TMP): no
# image or container of the machine's is seen or touched, and nothing is left behind. Its
# runtime is runc (crun, podman's default on Debian, refuses a host with cgroup controllers in
# both the v1 and v2 trees, as this one has; runc is Docker's and containerd's runtime too).
# Where the process limit cannot be raised (no CAP_SYS_RESOURCE, as in this sandbox), podman's
# default for the container (4194304 processes) is lowered to podman's own limit. Where podman
# cannot run a container at all here, one line says why, and the test is skipped.
#   IMAGE=build/autoclosed-image.tar tests/image/t_image_run.sh
# shellcheck source=../integration/lib.sh
. "$(dirname "$0")/../integration/lib.sh"
# shellcheck source=../integration/daemon_lib.sh
. "$(dirname "$0")/../integration/daemon_lib.sh"
: "${IMAGE:?IMAGE must name the archive make image wrote}"
[ -s "$IMAGE" ] || fail "no image at $IMAGE (make image)"
need_root "rootful podman, which the host's PID namespace and CAP_SYS_PTRACE need"
command -v podman >/dev/null || skip "no podman (scripts/install-deps.sh --image-test installs it)"

N=3
GRACE=500
INTERVAL=100
VERSION=$(make_version)
REF=localhost/autoclosed:$VERSION
NAME=autoclosed-test-$$

# Storage, state and configuration of the test's own.
mkdir -p "$TMP/podman"
export CONTAINERS_STORAGE_CONF=$TMP/podman/storage.conf CONTAINERS_CONF=$TMP/podman/containers.conf
cat >"$CONTAINERS_STORAGE_CONF" <<EOF
[storage]
driver = "vfs"
graphroot = "$TMP/podman/graph"
runroot = "$TMP/podman/run"
EOF
{
    echo "[containers]"
    # CapEff bit 24: CAP_SYS_RESOURCE. Without it no limit can be raised: the container gets
    # this shell's descriptor limit, and podman's own process limit, which it lowers to 32768
    # when it cannot raise it.
    if (((0x$(awk '/^CapEff/ { print $2 }' /proc/self/status) >> 24 & 1) == 0)); then
        nproc=$(ulimit -Hu) nofile=$(ulimit -Hn)
        [ "$nproc" != unlimited ] && [ "$nproc" -le 32768 ] || nproc=32768
        echo "default_ulimits = [\"nproc=$nproc:$nproc\", \"nofile=$nofile:$nofile\"]"
    fi
    echo "[engine]"
    echo "tmp_dir = \"$TMP/podman/tmp\""
    echo "events_logger = \"file\""
    ! command -v runc >/dev/null || echo 'runtime = "runc"'
} >"$CONTAINERS_CONF"

# shellcheck disable=SC2317 # called by the trap
podman_down() {
    local c
    for c in "$NAME-host" "$NAME-none" "$NAME-probe"; do
        timeout 30 podman rm -f -t 0 "$c" >/dev/null 2>&1 || true
    done
    timeout 30 podman rmi -f "$REF" >/dev/null 2>&1 || true
}
trap 'podman_down; cleanup' EXIT

# The README's run line: the one code line that starts with "podman run", its continuations
# joined.
line=$(awk '/^## / { on = ($0 == "## Fleets") } on && /^(sudo )?podman run / { take = 1 }
    take { l = $0; more = sub(/\\$/, "", l); printf "%s ", l; if (!more) exit }' "$REPO/README.md" |
    tr -s ' ' | sed 's/^sudo //; s/ $//')
[ -n "$line" ] || fail "README.md's Fleets section has no podman run line"
echo "README: $line"
read -ra words <<<"$line"
for want in -d --name --pid=host --network=host --cap-drop=all --cap-add=SYS_PTRACE,DAC_READ_SEARCH \
    --read-only --security-opt=no-new-privileges "$REF"; do
    [[ " ${words[*]} " == *" $want "* ]] || fail "the README's run line lacks $want: $line"
done
[ "${words[-2]}" = --ports ] || fail "the README's run line does not end with --ports PORTS: $line"

timeout 120 podman load -i "$IMAGE" >"$TMP/load.out" 2>&1 ||
    skip "podman cannot load an image here: $(grep -m 1 . "$TMP/load.out")"
grep -q "$REF" "$TMP/load.out" || fail "podman load did not name the image $REF: $(cat "$TMP/load.out")"

# Can this machine run a container at all? 125 and 126 are podman's and the runtime's own
# failures (no cgroups, no storage, a refused limit); any other status, or the wrong output,
# is the image's.
rc=0
timeout 60 podman run --rm --name "$NAME-probe" "$REF" --version >"$TMP/probe.out" 2>&1 || rc=$?
if [ $rc -eq 125 ] || [ $rc -eq 126 ]; then
    skip "podman cannot run a container here: $(grep -m 1 -i 'error' "$TMP/probe.out" || head -n 1 "$TMP/probe.out")"
fi
[ $rc -eq 0 ] || fail "the image's autoclosed --version under podman: exit $rc: $(cat "$TMP/probe.out")"
assert_eq "autoclosed $VERSION" "$(cat "$TMP/probe.out")" "autoclosed --version in a container"

# A port outside the clients' range: --ports alone refuses one inside it.
# shellcheck disable=SC2119 # no port to keep clear of
port=$(pick_port)
start_bg server "$FIXTURES/mos_server" --style read --port "$port" --port-file "$TMP/server.port"
[ "$(await_port server)" = "$port" ] || fail "the server did not listen on port $port"
server=$(main_pid server)
# One more, kept clear of the server's.
MPORT=$(pick_port "$port")
echo "a leaking server on the host: pid $server, port $port"

# run_agent NETWORK: the README's line, with --network=NETWORK, the container's name, the test's
# port and times. The daemon's host pid in AGENT_PID.
run_agent() {
    local net=$1 w prev='' args=()
    for w in "${words[@]}"; do
        [ "$prev" != --name ] || w=$NAME-$net
        [ "$w" != --network=host ] || w=--network=$net
        args+=("$w")
        prev=$w
    done
    unset 'args[-1]'
    args+=("$port" --grace-ms "$GRACE" --interval-ms "$INTERVAL")
    # On the host's network, the endpoint too: the image must hold what --metrics-listen loads.
    [ "$net" != host ] || args+=(--metrics-listen "127.0.0.1:$MPORT")
    echo "  ${args[*]}"
    timeout 60 "${args[@]}" >"$TMP/run-$net.out" 2>&1 || fail "podman run ($net): $(cat "$TMP/run-$net.out")"
    wait_until 10000 logged "$NAME-$net" ': watching ' ||
        fail "the containerized daemon said no start-up line: $(podman logs "$NAME-$net" 2>&1 | tail -n 5)"
    AGENT_PID=$(podman inspect -f '{{.State.Pid}}' "$NAME-$net")
}

# logged CONTAINER REGEX: podman logs CONTAINER has a line matching REGEX; for wait_until.
# shellcheck disable=SC2317 # called through wait_until
logged() { podman logs "$1" 2>&1 | grep -Eq -- "$2"; }

# check_process PID: what the kernel says of the containerized daemon.
check_process() {
    local status=/proc/$1/status
    assert_eq 0000000000080004 "$(awk '/^CapEff/ { print $2 }' "$status")" \
        "its effective capabilities (CAP_DAC_READ_SEARCH 2, CAP_SYS_PTRACE 19)"
    assert_eq 0000000000080004 "$(awk '/^CapBnd/ { print $2 }' "$status")" "its bounding set"
    assert_eq 1 "$(awk '/^NoNewPrivs/ { print $2 }' "$status")" "no_new_privs"
    assert_eq 2 "$(awk '/^Seccomp:/ { print $2 }' "$status")" "seccomp mode (2: a filter)"
    assert_eq "$(stat -L -c %i /proc/self/ns/pid)" "$(stat -L -c %i "/proc/$1/ns/pid")" \
        "its PID namespace is the host's"
    assert_eq true "$(podman inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$2")" "read-only root"
}

# leak_and_reclaim NETWORK CLIENT: N connections leak, the daemon in the NETWORK container
# reclaims them.
leak_and_reclaim() {
    local net=$1 name=$2 t0 lines
    client "$name" --port "$port" --count "$N" || fail "client $name failed"
    wait_until 3000 leaking "$port" "$N" "$name" || fail "no leak: $(report_states "$port" "$name")"
    echo "  leaking: $(report_states "$port" "$name")"
    t0=$(now_ms)
    wait_until $((GRACE + 10000)) clients_settled "$port" "$name" ||
        fail "the daemon in the $net container reclaimed nothing: $(clients_report "$port" "$name");" \
            "its log: $(podman logs "$NAME-$net" 2>&1 | tail -n 5)"
    echo "  $(($(now_ms) - t0)) ms later: $(clients_report "$port" "$name")"
    wait_until 3000 logged "$NAME-$net" ": shutdown pid=$server " || true
    podman logs "$NAME-$net" >"$TMP/logs-$net.out" 2>&1
    lines=$(grep -c ": shutdown pid=$server fd=" "$TMP/logs-$net.out" || true)
    assert_eq "$N" "$lines" "podman logs: shutdown lines naming the server's host pid ($net)"
    grep -m 1 ": shutdown pid=$server " "$TMP/logs-$net.out" | sed 's/^/  /'
}

# stop_agent NETWORK: SIGTERM through podman stop; the daemon exits 0.
stop_agent() {
    timeout 30 podman stop -t 10 "$NAME-$1" >/dev/null || fail "podman stop ($1) failed"
    assert_eq 0 "$(podman inspect -f '{{.State.ExitCode}}' "$NAME-$1")" "its exit status after podman stop ($1)"
    timeout 30 podman rm "$NAME-$1" >/dev/null || fail "podman rm ($1) failed"
}

echo "--network=host, as the README writes it:"
run_agent host
check_process "$AGENT_PID" "$NAME-host"
leak_and_reclaim host leak1
# The daemon's libmicrohttpd, loaded from the image: its /metrics counts the reclaims.
reclaimed=$(curl -sf --max-time 5 "http://127.0.0.1:$MPORT/metrics" |
    sed -n 's/^autoclosed_reclaimed_total \([0-9]*\)$/\1/p') ||
    fail "no /metrics from the containerized daemon on 127.0.0.1:$MPORT"
assert_eq "$N" "$reclaimed" "autoclosed_reclaimed_total on its /metrics"
podman stats --no-stream --format '  podman stats: memory {{.MemUsage}}, cpu {{.CPUPerc}}' \
    "$NAME-host" 2>/dev/null || true
stop_agent host

echo "--network=none: a network namespace of the daemon's own"
run_agent none
[ "$(stat -L -c %i "/proc/$AGENT_PID/ns/net")" != "$(stat -L -c %i /proc/self/ns/net)" ] ||
    fail "the --network=none container is in the host's network namespace"
leak_and_reclaim none leak2
# The host's namespace by the inode of its ns link, or, where the process the daemon found it
# through refuses that link (this sandbox's pid 1 does, even to root), by the inode of its
# /proc/PID/net/tcp entry, as the README says.
named=$(sed -n "s/.*: shutdown pid=$server .* netns=\([0-9]*\).*/\1/p" "$TMP/logs-none.out" | sort -u)
case $named in
"$(stat -L -c %i "/proc/$server/ns/net")") echo "  its lines name the host's namespace: netns=$named" ;;
"$(stat -L -c %i "/proc/$server/net/tcp")") echo "  its lines name the host's namespace by its /proc/PID/net/tcp: netns=$named" ;;
*) fail "the lines of a daemon in its own namespace do not name the host's: netns=$named" ;;
esac
stop_agent none

pass "the image under podman (--pid=host, 2 capabilities, read-only, no new privileges) reclaimed a host server's leaks, with the host's network and with its own"
