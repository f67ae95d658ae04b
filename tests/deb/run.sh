#!/usr/bin/env bash
# make test-deb: runs t_deb.sh (build the package, lintian, install, use, remove), bounded, and
# prints one summary line; a failure's output is shown in full.
#   tests/deb/run.sh BUILD          (FIXTURES must name the built fixtures)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${FIXTURES:?FIXTURES must name the directory of the built fixtures}"
export FIXTURES
build=${1:?usage: tests/deb/run.sh BUILD}
# Building the package takes about a minute here, lintian half of one; the rest seconds.
BOUND_S=${DEB_TEST_BOUND_S:-900}

log=$(mktemp "${TMPDIR:-/tmp}/autoclose-deb.XXXXXX")
trap 'rm -f "$log"' EXIT
start=$SECONDS
timeout "$BOUND_S" bash "$here/t_deb.sh" "$build" >"$log" 2>&1
rc=$?
took=$((SECONDS - start))
case $rc in
0)
    sed 's/^/    | /' "$log"
    echo "ok    t_deb (${took}s)"
    echo "1 passed, 0 failed"
    ;;
*)
    [ $rc -eq 124 ] && echo "FAIL  t_deb: timed out after $BOUND_S s" || echo "FAIL  t_deb (exit $rc)"
    sed 's/^/    | /' "$log"
    echo "0 passed, 1 failed"
    ;;
esac
[ $rc -eq 0 ]
