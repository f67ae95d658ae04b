#!/usr/bin/env bash
# The podman recipe of README "The library inside containers", with a real container runtime:
# the library bind-mounted read-only into the container (-v LIB:/opt/autoclose/libautoclose.so:ro)
# and named in LD_PRELOAD (-e). The image is made here, with no registry: a root file system
# holding the leaking simulator and the libraries it and the library load, imported with
# `podman import`. The server, pid 1 of its container, leaks at EOF; its clients
# join its network namespace (nsenter -n) and every socket count is ss run there: CLOSE_WAIT 0
# after the grace, the clients in TIME_WAIT, the library's lines in `podman logs`; the same
# image without LD_PRELOAD keeps every leak. The same with a musl image and the musl library.
# Then the README's caveats: an image with glibc but no libgcc_s.so.1, and a musl image given the
# glibc library, cannot start the server with it preloaded.
#
# podman keeps its images, containers and state in a directory of the test's (its own --root, --runroot and
# --tmpdir, the vfs driver: no mount to undo), so no other podman user of the machine sees them.
# Where the host's control groups are hybrid with a controller on cgroup2, which crun refuses,
# podman runs in a mount namespace without that cgroup2 mount; where root lacks
# CAP_SYS_RESOURCE, the containers get limits no higher than podman's own (each said in a line).
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=netns_lib.sh
. "$(dirname "$0")/netns_lib.sh"
need_shim
[ "$(id -u)" = 0 ] || skip "needs root: rootful podman"
command -v podman >/dev/null || skip "podman is not installed (scripts/install-deps.sh --test installs it)"
[[ $AUTOCLOSE_LIB != *" "* ]] || skip "the sanitizer's runtime named in AUTOCLOSE_LIB is not in the test's image"
lib=$AUTOCLOSE_LIB
N=5
GRACE=1000
# Any port is free in a container's own namespace; not the MOS port, though: an autoclosed
# started with --ports alone on this machine (another test's) looks into every namespace.
PORT=$((20000 + RANDOM % 10000))
IN=/opt/autoclose/libautoclose.so

# Short: podman refuses a --runroot longer than 50 characters.
store=$(mktemp -d /tmp/autoclose-podman.XXXXXX)
podman_cmd=(podman --root "$store/root" --runroot "$store/run" --tmpdir "$store/tmp"
    --storage-driver vfs --cgroup-manager cgroupfs --events-backend none)
run_args=(--pull never --network none --ipc none)

# crun (Debian 12's 1.8) refuses a hybrid hierarchy whose cgroup2 mount has controllers.
hybrid=
fstypes() { awk '{ for (i = 7; $i != "-"; i++); print $(i + 1) " " $5 }' /proc/self/mountinfo; }
if fstypes | grep -q '^cgroup '; then
    while read -r mnt; do
        [ -z "$(cat "$mnt/cgroup.controllers" 2>/dev/null)" ] || hybrid+=" $mnt"
    done < <(fstypes | sed -n 's/^cgroup2 //p')
fi
if [ -n "$hybrid" ]; then
    echo "hybrid control groups with controllers on cgroup2 ($(cat "${hybrid# }/cgroup.controllers")" \
        "at${hybrid}), which crun refuses: podman runs in a mount namespace without it"
fi
# pm ARGS...: podman with the test's own storage, bounded (a container left running by a
# podman killed here is removed on exit).
pm() {
    if [ -n "$hybrid" ]; then
        # shellcheck disable=SC2016 # expanded by the inner shell
        timeout 30 unshare --mount --propagation private sh -c \
            'for m in $0; do umount "$m"; done; exec "$@"' "$hybrid" "${podman_cmd[@]}" "$@"
    else
        timeout 30 "${podman_cmd[@]}" "$@"
    fi
}
# CAP_SYS_RESOURCE is bit 24 of the effective set; without it, crun cannot raise the container's
# limits to podman's defaults (nofile 1048576). podman's own NPROC here: 32768.
if ! (($(printf '%d' "0x$(awk '$1 == "CapEff:" { print $2 }' /proc/self/status)") & (1 << 24))); then
    echo "root lacks CAP_SYS_RESOURCE here: the containers get nofile=$(ulimit -Hn) and nproc=16384"
    run_args+=(--ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit nproc=16384:16384)
fi
# shellcheck disable=SC2317 # called by the trap
podman_down() {
    pm rm -af -t 0 >/dev/null 2>&1 || true
    rm -rf "$store"
}
trap 'podman_down; cleanup' EXIT

# image NAME FILE...: an image holding each FILE at its own path, the simulator as /bin/mos_server.
image() {
    local name=$1 server=$2 root=$TMP/rootfs-$1 f
    shift 2
    mkdir -p "$root/bin"
    cp "$server" "$root/bin/mos_server"
    for f in "$@"; do
        mkdir -p "$root$(dirname "$f")"
        cp -L "$f" "$root$f"
    done
    tar -C "$root" -cf "$root.tar" . || fail "cannot pack the image $name"
    pm import "$root.tar" "localhost/autoclose-test:$name" >"$TMP/import-$name.out" 2>&1 ||
        fail "podman import: $(tail -n 3 "$TMP/import-$name.out")"
}
# needed FILE...: the libraries the loader maps for each FILE, and the loader.
needed() {
    ldd "$@" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// && NF > 1 { print $1 }' | sort -u
}
mapfile -t glibc < <(needed "$FIXTURES/mos_server" "$lib")
image glibc "$FIXTURES/mos_server" "${glibc[@]}"
echo "image glibc: /bin/mos_server ${glibc[*]}"

# start NAME IMAGE [podman run options...]: the simulator in a container; CT_PID its host pid.
start() {
    local name=$1 img=$2
    shift 2
    pm run -d --name "$name" "${run_args[@]}" "$@" "localhost/autoclose-test:$img" \
        /bin/mos_server --style read --port $PORT >"$TMP/run-$name.out" 2>&1 ||
        fail "podman run $name: $(tail -n 3 "$TMP/run-$name.out")"
    CT_PID=$(pm inspect -f '{{.State.Pid}}' "$name")
    [ "${CT_PID:-0}" -gt 0 ] || fail "$name is not running: $(pm logs "$name" 2>&1 | tail -n 3)"
    wait_until 10000 listens "$CT_PID" || fail "$name: no listener: $(pm logs "$name" 2>&1 | tail -n 3)"
}
# shellcheck disable=SC2317 # called through wait_until
listens() { [ -n "$(nsenter -t "$1" -n ss -Htln "( sport = :$PORT )")" ]; }

# clients NAME PID: N exchanges in PID's network namespace, as a peer in the same pod or behind
# the runtime's port mapping would reach it.
clients() { ns_client "$1" "$2" $PORT $N; }

start control glibc -v "$lib:$IN:ro"
control=$CT_PID
start mos glibc -v "$lib:$IN:ro" -e LD_PRELOAD=$IN -e AUTOCLOSE_GRACE_MS=$GRACE -e AUTOCLOSE_PORTS=$PORT
mos=$CT_PID
echo "  podman run -v $lib:$IN:ro -e LD_PRELOAD=$IN ...: pid $mos, netns $(stat -L -c %i "/proc/$mos/ns/net")"
assert_eq "$IN" "$(awk '$2 ~ /x/ && $6 ~ /libautoclose/ { print $6 }' "/proc/$mos/maps" | sort -u)" \
    "  the library the server loaded"
[ "$(awk '$1 == "NSpid:" { print $NF }' "/proc/$mos/status")" = 1 ] ||
    fail "the server is not the container's first process"
clients c_control "$control"
clients c_mos "$mos"
wait_until $((GRACE + 5000)) in_ns "$mos" reclaimed $PORT $N c_mos ||
    fail "with the library: not reclaimed: $(in_ns "$mos" report_states $PORT c_mos)"
echo "  with the library: $(in_ns "$mos" report_states $PORT c_mos)"
echo "  without:          $(in_ns "$control" report_states $PORT c_control)"
in_ns "$control" leaking $PORT $N c_control || fail "the control did not keep its $N leaks"
pm logs mos >"$TMP/mos.log" 2>&1
assert_eq $N "$(actions "$TMP/mos.log" | grep -c "libautoclose\[1\]: .* local=127.0.0.1:$PORT ")" \
    "  the library's lines in podman logs"

# refused NAME WHAT: the image NAME cannot start the server with the library preloaded.
refused() {
    local name=$1 what=$2 rc=0
    pm run --rm "${run_args[@]}" -v "$lib:$IN:ro" -e LD_PRELOAD=$IN "localhost/autoclose-test:$name" \
        /bin/mos_server --style read --port $PORT >"$TMP/refused-$name.out" 2>&1 || rc=$?
    [ "$rc" -ne 0 ] || fail "$name: the server started with the library preloaded"
    grep -q "$what" "$TMP/refused-$name.out" ||
        fail "$name: exit $rc without '$what': $(head -n 3 "$TMP/refused-$name.out")"
    echo "  image $name: exit $rc: $(grep -m 1 "$what" "$TMP/refused-$name.out")"
}
mapfile -t bare < <(needed "$FIXTURES/mos_server")
image bare "$FIXTURES/mos_server" "${bare[@]}"
refused bare libgcc_s.so.1
musl_lib=$(dirname "$lib")/musl/libautoclose.so
musl_loader=
[ ! -x "$FIXTURES_MUSL/mos_server" ] ||
    musl_loader=$(readelf -l "$FIXTURES_MUSL/mos_server" | sed -n 's/.*interpreter: \(.*\)]/\1/p')
musl_said="no musl build here (musl-tools): the musl image is not tried"
if [ -n "$musl_loader" ] && [ -e "$musl_loader" ] && [ -f "$musl_lib" ]; then
    image musl "$FIXTURES_MUSL/mos_server" "$musl_loader"
    refused musl 'symbol not found'
    start mos_musl musl -v "$musl_lib:$IN:ro" -e LD_PRELOAD=$IN -e AUTOCLOSE_GRACE_MS=$GRACE \
        -e AUTOCLOSE_PORTS=$PORT
    mos_musl=$CT_PID
    clients c_musl "$mos_musl"
    wait_until $((GRACE + 5000)) in_ns "$mos_musl" reclaimed $PORT $N c_musl ||
        fail "musl, with the musl library: not reclaimed: $(in_ns "$mos_musl" report_states $PORT c_musl)"
    echo "  musl image, the musl library: $(in_ns "$mos_musl" report_states $PORT c_musl)"
    musl_said="a musl image with the musl library: $N reclaimed"
else
    echo "  $musl_said"
fi
pm rm -f -t 0 mos control mos_musl >/dev/null 2>&1 || fail "podman rm failed"
pass "podman run with the library bind-mounted read-only and LD_PRELOAD: $N leaks reclaimed,\
 none without it; $musl_said; images without libgcc_s, or musl ones given the glibc library,\
 cannot load it"
