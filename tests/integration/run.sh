#!/usr/bin/env bash
# Runs every t_*.sh here (or the tests named as arguments), each bounded, and prints one summary
# line; a failing test's output is shown in full.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
: "${FIXTURES:?FIXTURES must name the directory of the built fixtures}"
: "${AUTOCLOSE_LIB:?AUTOCLOSE_LIB must name the built libautoclose.so}"
export FIXTURES AUTOCLOSE_LIB

tests=()
if [ $# -eq 0 ]; then
    tests=("$here"/t_*.sh)
else
    for arg in "$@"; do
        name=$(basename "$arg" .sh)
        [ -f "$here/$name.sh" ] || {
            echo "no such test: $arg" >&2
            exit 2
        }
        tests+=("$here/$name.sh")
    done
fi

passed=0 failed=0 skipped=0
log=$(mktemp "${TMPDIR:-/tmp}/autoclose-run.XXXXXX")
trap 'rm -f "$log"' EXIT

for t in "${tests[@]}"; do
    name=$(basename "$t" .sh)
    start=$SECONDS
    timeout 60 bash "$t" >"$log" 2>&1
    rc=$?
    took=$((SECONDS - start))
    case $rc in
    0)
        passed=$((passed + 1))
        echo "ok    $name (${took}s)"
        ;;
    77)
        skipped=$((skipped + 1))
        echo "skip  $name: $(sed -n 's/^SKIP: [^:]*: //p' "$log" | tail -n 1)"
        ;;
    *)
        failed=$((failed + 1))
        [ $rc -eq 124 ] && echo "FAIL  $name: timed out after 60 s" || echo "FAIL  $name (exit $rc)"
        sed 's/^/    | /' "$log"
        ;;
    esac
done

summary="$passed passed, $failed failed"
[ $skipped -gt 0 ] && summary="$summary, $skipped skipped"
echo "$summary"
[ $failed -eq 0 ]
