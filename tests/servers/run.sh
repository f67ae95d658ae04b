#!/usr/bin/env bash
# make test-servers: real, well-behaved servers from Debian under the shim, driven by real
# clients, must behave exactly as without it: no client error, no action by the shim (they close
# their connections themselves), their sockets ending as they do without it.
#   AUTOCLOSE_LIB=... FIXTURES=... tests/servers/run.sh [t_NAME...]
#
# Installs what the servers and clients need from Debian (redis-server, redis-tools,
# nginx-light, wrk, curl): only this suite uses them, so they are not in
# scripts/install-deps.sh. A server whose packages cannot be installed is skipped, saying so.
# Everything listens on loopback, on ports chosen here, with its configuration in a temporary
# directory, and is stopped at the end.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
: "${FIXTURES:?FIXTURES must name the directory of the built fixtures}"
: "${AUTOCLOSE_LIB:?AUTOCLOSE_LIB must name the built libautoclose.so}"
export FIXTURES AUTOCLOSE_LIB

packages=(redis-server redis-tools nginx-light wrk curl python3)
missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [[ $status == "install ok installed" ]] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "servers: installing ${missing[*]}"
    sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo -n)
    # Installing a server package must not start its system service (port 80, 6379): where no
    # policy says so already, one says so for the time of the installation.
    policy=/usr/sbin/policy-rc.d
    made_policy=
    if [ ! -e $policy ] && "${sudo[@]}" sh -c "printf '#!/bin/sh\nexit 101\n' >$policy && chmod 755 $policy"; then
        made_policy=yes
    fi
    export DEBIAN_FRONTEND=noninteractive
    { "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq \
        --no-install-recommends "${missing[@]}"; } >/dev/null 2>&1 ||
        echo "servers: could not install every package; the tests that need them will skip"
    [ -z "$made_policy" ] || "${sudo[@]}" rm -f $policy
fi

tests=()
if [ $# -eq 0 ]; then
    tests=("$here"/t_*.sh)
else
    for arg in "$@"; do
        tests+=("$here/$(basename "$arg" .sh).sh")
    done
fi
passed=0 failed=0 skipped=0
log=$(mktemp "${TMPDIR:-/tmp}/autoclose-servers.XXXXXX")
trap 'rm -f "$log"' EXIT
for t in "${tests[@]}"; do
    name=$(basename "$t" .sh)
    start=$SECONDS
    timeout 300 bash "$t" >"$log" 2>&1
    rc=$?
    took=$((SECONDS - start))
    case $rc in
    0)
        passed=$((passed + 1))
        echo "ok    $name (${took}s)"
        sed -n 's/^  figure: /      /p' "$log"
        ;;
    77)
        skipped=$((skipped + 1))
        echo "skip  $name: $(sed -n 's/^SKIP: [^:]*: //p' "$log" | tail -n 1)"
        ;;
    *)
        failed=$((failed + 1))
        [ $rc -eq 124 ] && echo "FAIL  $name: timed out after 300 s" || echo "FAIL  $name (exit $rc)"
        sed 's/^/    | /' "$log"
        ;;
    esac
done
summary="$passed passed, $failed failed"
[ $skipped -gt 0 ] && summary="$summary, $skipped skipped"
echo "servers: $summary"
[ $failed -eq 0 ]
