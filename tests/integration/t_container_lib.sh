#!/usr/bin/env bash
# The library inside containers (README, "The library inside containers"). A container is made
# here as a runtime makes one, with unshare: a network, PID and mount namespace of its own, only
# loopback, and a tmpfs over /opt in which the library appears as
# /opt/autoclose/libautoclose.so, a name the host does not have, bind-mounted read-only and named
# in LD_PRELOAD. The leaking simulator runs in it as the container's first process on a port of
# its own, its clients join its network namespace (nsenter -n), and every socket count is ss run
# there. Three cases:
#   - the library bind-mounted from the host (docker/podman run -v ...:ro): CLOSE_WAIT 0 after
#     the grace and the clients in TIME_WAIT, while the same server in the same kind of container
#     without LD_PRELOAD keeps every leak (the control);
#   - Kubernetes' init container: an "init" step in a mount namespace of its own, which has the
#     library only as its image does, copies it into a shared directory (a tmpfs made here for
#     an emptyDir volume) and exits; the server in a fresh container preloads that copy, mounted
#     read-only, and logs into a file of the container's own.
#   - and where that mount is noexec (Docker's and podman's --tmpfs are), the loader says in one
#     line that it cannot map the library and starts the server without it.
# Each container ends with its first process, killed by pid, and its mounts with its namespace.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=netns_lib.sh
. "$(dirname "$0")/netns_lib.sh"
need_shim
[ "$(id -u)" = 0 ] || skip "needs root: network, PID and mount namespaces made with unshare"
for tool in unshare nsenter ip mount umount; do
    command -v $tool >/dev/null || skip "needs unshare, nsenter, mount (util-linux) and ip (iproute2)"
done
err=$(unshare --net --pid --mount --fork --mount-proc true 2>&1) ||
    skip "unshare cannot make a network, PID and mount namespace here: $(head -n 1 <<<"$err")"
[ -d /opt ] || skip "no /opt here for the containers' tmpfs to cover"
[ ! -e /opt/autoclose ] || skip "the host has /opt/autoclose: the containers' path must be theirs alone"

N=5
GRACE=1000
# Any port is free in a container's own namespace; not the MOS port, though: an autoclosed
# started with --ports alone on this machine (another test's) looks into every namespace.
PORT=$((20000 + RANDOM % 10000))
IN=/opt/autoclose/libautoclose.so
# The library as the containers see it; a sanitizer's runtime, listed beside it in
# AUTOCLOSE_LIB, stays where it is (the containers share the host's root).
lib='' preload=''
for word in $AUTOCLOSE_LIB; do
    if [[ $word == */libautoclose.so ]]; then
        lib=$word
        word=$IN
    fi
    preload+="${preload:+ }$word"
done

# What each container runs first, as root in its new namespaces: loopback up, a tmpfs over /opt
# (private to its mount namespace: unshare makes every mount private), and there the library,
# with the mount options in LIB_OPTS: LIB_SRC a file is bind-mounted as the library, a
# directory (the shared volume) as /opt/autoclose. Then the command, which becomes the
# container's pid 1.
# shellcheck disable=SC2016 # expanded by the container's shell
SETUP='set -e
ip link set lo up
mount -t tmpfs -o mode=0755,size=16m container-opt /opt
mkdir /opt/autoclose /opt/log
if [ -d "$LIB_SRC" ]; then
    mount --bind -o "$LIB_OPTS" "$LIB_SRC" /opt/autoclose
else
    : >/opt/autoclose/libautoclose.so
    mount --bind -o "$LIB_OPTS" "$LIB_SRC" /opt/autoclose/libautoclose.so
fi
unset LIB_SRC LIB_OPTS
exec env "$@"'

# [LIB_OPTS=OPTIONS] container NAME LIB_SRC [VAR=VALUE...] CMD...: a container running CMD
# (the library mounted read-only, or with OPTIONS); CT_PID its first process's host pid. --kill-child: should unshare be killed first, the container goes with it.
container() {
    local name=$1 src=$2 parent
    shift 2
    start_bg "$name" LIB_SRC="$src" LIB_OPTS="${LIB_OPTS:-ro}" unshare --net --pid --mount --fork \
        --mount-proc --kill-child sh -c "$SETUP" sh "$@"
    wait_until 5000 main_pid "$name" >/dev/null || fail "$name: unshare did not start"
    parent=$(main_pid "$name")
    wait_until 5000 pgrep -P "$parent" >/dev/null || fail "$name: the container did not start"
    CT_PID=$(pgrep -P "$parent")
}

# [LIB_OPTS=OPTIONS] leaky NAME LIB_SRC [VAR=VALUE...]: the simulator, leaking at EOF, as a
# container's first process.
leaky() {
    local name=$1 src=$2
    shift 2
    container "$name" "$src" "$@" "$FIXTURES/mos_server" --style read --port $PORT \
        --port-file "$TMP/$name.port"
    wait_for_file "$TMP/$name.port" 20000 ||
        fail "$name: the server published no port: $(cat "$TMP/$name.err")"
    [ "$(awk '$1 == "NSpid:" { print $NF }' "/proc/$CT_PID/status")" = 1 ] ||
        fail "$name: the server is not the first process of a PID namespace of its own"
    [ "$(stat -L -c %i "/proc/$CT_PID/ns/net")" != "$(stat -L -c %i /proc/self/ns/net)" ] ||
        fail "$name: the server is in the host's network namespace"
}


# clients NAME PID: N exchanges in PID's network namespace, as a peer in the same pod or behind
# the runtime's port mapping would reach it.
clients() { ns_client "$1" "$2" $PORT $N; }

# maps_lib PID: the library files PID has mapped executable (loaded), by the names it sees. A
# failed preload can leave a read-only mapping behind.
maps_lib() { awk '$2 ~ /x/ && $6 ~ /libautoclose/ { print $6 }' "/proc/$1/maps" | sort -u; }

# stop NAME PID: kills the container's first process, which ends every process in its PID
# namespace; then nothing may hold its mount namespace, whose mounts go with it.
stop() {
    local name=$1 pid=$2 mnt
    mnt=$(readlink "/proc/$pid/ns/mnt")
    kill -KILL "$pid"
    wait_bg "$name" || true
    wait_until 3000 mntns_gone "$mnt" || fail "$name: a process still holds its mount namespace $mnt"
}
# shellcheck disable=SC2317 # called through wait_until
mntns_gone() {
    local f
    for f in /proc/[0-9]*/ns/mnt; do
        [ "$(readlink "$f" 2>/dev/null)" != "$1" ] || return 1
    done
}

echo "1. the library bind-mounted read-only at $IN:"
leaky control "$lib"
control=$CT_PID
leaky shim "$lib" LD_PRELOAD="$preload" AUTOCLOSE_GRACE_MS=$GRACE AUTOCLOSE_PORTS=$PORT
shim=$CT_PID
echo "  server pids $shim (with the library), $control (the control); netns" \
    "$(stat -L -c %i "/proc/$shim/ns/net"), $(stat -L -c %i "/proc/$control/ns/net")"
[ ! -e $IN ] || fail "the host sees $IN: the container's mounts are not its own"
assert_eq "$IN" "$(maps_lib "$shim")" "  the library the server loaded"
assert_eq "" "$(maps_lib "$control")" "  the library the control loaded"
cmp -s "$lib" "/proc/$shim/root$IN" || fail "the container's $IN is not the library"
nsenter -t "$shim" -m sh -c ": >>$IN" 2>/dev/null && fail "the container can write $IN"
echo "  $IN is read-only in the container"

clients c_control "$control"
clients c_shim "$shim"
wait_until $((GRACE + 5000)) in_ns "$shim" reclaimed $PORT $N c_shim ||
    fail "with the library: not reclaimed: $(in_ns "$shim" report_states $PORT c_shim)"
echo "  with the library: $(in_ns "$shim" report_states $PORT c_shim)"
# That reclaim came after a grace: the control has had as long.
echo "  without:          $(in_ns "$control" report_states $PORT c_control)"
in_ns "$control" leaking $PORT $N c_control || fail "the control did not keep its $N leaks"
assert_eq $N "$(actions "$TMP/shim.err" | grep -c "local=127.0.0.1:$PORT ")" \
    "  the library's lines on the container's stderr"
stop shim "$shim"
stop control "$control"
[ ! -e $IN ] || fail "the host has $IN after the containers ended"

echo "2. Kubernetes' init container: the library copied into a shared volume:"
# The emptyDir: a directory of the node's, mounted into both containers.
volume=$TMP/emptydir
mkdir "$volume"
mount -t tmpfs -o mode=0755,size=16m autoclose-emptydir "$volume"
trap 'umount -l "$volume" 2>/dev/null || true; cleanup' EXIT
# The init container: its image has the library at the package's path (here under its tmpfs),
# the volume is mounted at /opt/autoclose, and it copies, then exits.
# shellcheck disable=SC2016 # expanded by the init container's shell
timeout 20 env LIB="$lib" VOLUME="$volume" unshare --pid --mount --fork --mount-proc --kill-child \
    sh -c 'set -e
        mount -t tmpfs -o mode=0755,size=16m init-opt /opt
        mkdir -p /opt/image/usr/lib/x86_64-linux-gnu /opt/autoclose
        : >/opt/image/usr/lib/x86_64-linux-gnu/libautoclose.so
        mount --bind -o ro "$LIB" /opt/image/usr/lib/x86_64-linux-gnu/libautoclose.so
        mount --bind "$VOLUME" /opt/autoclose
        cp /opt/image/usr/lib/x86_64-linux-gnu/libautoclose.so /opt/autoclose/' \
    >"$TMP/init.out" 2>"$TMP/init.err" || fail "the init container failed: $(cat "$TMP/init.err")"
cmp -s "$lib" "$volume/libautoclose.so" || fail "the init container did not copy the library"
[ ! -e /opt/image ] || fail "the host sees the init container's /opt/image"
echo "  the init container copied the library into the volume and exited"

leaky app "$volume" LD_PRELOAD="$preload" AUTOCLOSE_GRACE_MS=$GRACE AUTOCLOSE_PORTS=$PORT \
    AUTOCLOSE_LOG_FILE=/opt/log/autoclose-%p.log
app=$CT_PID
assert_eq "$IN" "$(maps_lib "$app")" "  the library the server loaded"
assert_eq "$(stat -c %d "$volume")" "$(stat -L -c %d "/proc/$app/root$IN")" \
    "  device of the file it mapped (the volume's)"
nsenter -t "$app" -m sh -c ": >/opt/autoclose/new" 2>/dev/null && fail "the app can write into the volume"
echo "  the volume is read-only in the app container"
clients c_app "$app"
wait_until $((GRACE + 5000)) in_ns "$app" reclaimed $PORT $N c_app ||
    fail "from the volume: not reclaimed: $(in_ns "$app" report_states $PORT c_app)"
echo "  from the volume: $(in_ns "$app" report_states $PORT c_app)"
# The log file is the container's: %p is the server's pid there (1), under its own /opt/log.
log=/proc/$app/root/opt/log/autoclose-1.log
assert_eq $N "$(actions "$log" | grep -c "local=127.0.0.1:$PORT ")" \
    "  lines in the container's /opt/log/autoclose-1.log"
stop app "$app"
umount "$volume"

echo "3. the library on a noexec mount (as Docker's --tmpfs makes them):"
# The loader cannot map it, says so in one line and starts the program without it.
LIB_OPTS=ro,noexec leaky noexec "$lib" LD_PRELOAD="$preload"
noexec=$CT_PID
assert_eq "" "$(maps_lib "$noexec")" "  the library the server loaded"
grep -q "cannot be preloaded (failed to map segment from shared object): ignored" \
    "$TMP/noexec.err" || fail "noexec: no line from the loader: $(cat "$TMP/noexec.err")"
echo "  $(head -n 1 "$TMP/noexec.err")"
stop noexec "$noexec"
pass "a server in its own network, PID and mount namespaces, preloading the library from a\
 read-only bind mount and from an init container's copy, had its $N leaks reclaimed each\
 time; without the library the same server kept them, and from a noexec mount it was not loaded"
