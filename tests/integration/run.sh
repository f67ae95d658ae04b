#!/usr/bin/env bash
# Runs every t_*.sh here (or the tests named as arguments), each bounded, and prints one summary
# line; a failing test's output is shown in full.
#
# Each test runs in a network namespace of its own, with only loopback, where one can be made
# (root, or an unprivileged user namespace): its TIME_WAIT, CLOSE_WAIT and port counts are then
# its own, and another workload on the machine (a benchmark that filled the TIME_WAIT table, a
# parallel run) cannot fail it. Where none can be made, or with INTEGRATION_NAMESPACES=off, it
# says so once and the tests share the host's socket tables. Each test also runs in a PID
# namespace of its own where it can; whatever process it leaves behind fails it, named, and is
# killed (isolate.sh).
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

# Each test's bound; a slow machine (tests/vm runs them under software emulation) raises it.
bound=${INTEGRATION_TEST_BOUND_S:-60}
passed=0 failed=0 skipped=0
log=$(mktemp "${TMPDIR:-/tmp}/autoclose-run.XXXXXX")
left=$(mktemp "${TMPDIR:-/tmp}/autoclose-left.XXXXXX")
trap 'rm -f "$log" "$left"' EXIT

# The namespaces: the first of these that unshare(1) can make, with loopback up in it, is used
# for every test. Without a PID namespace (a container may refuse to mount /proc), isolate.sh
# finds leftovers by their environment instead.
isolation=() pidns=
if [ "${INTEGRATION_NAMESPACES:-on}" = off ]; then
    why="INTEGRATION_NAMESPACES=off"
elif ! command -v unshare >/dev/null; then
    why="unshare (util-linux) is not installed"
else
    why=
    for how in "--net --pid --fork --mount-proc" "--net" \
        "--user --map-root-user --net --pid --fork --mount-proc" "--user --map-root-user --net"; do
        # shellcheck disable=SC2086 # $how is a list of options
        if err=$(unshare $how ip link set lo up 2>&1); then
            read -ra isolation <<<"unshare $how"
            [[ $how != *--pid* ]] || pidns=yes
            break
        fi
        why=${why:-$(head -n 1 <<<"$err")}
    done
fi
if [ ${#isolation[@]} -eq 0 ]; then
    echo "integration: no network namespace here ($why); tests share the host's socket tables"
elif [ -z "$pidns" ]; then
    echo "integration: no PID namespace here; leftover processes are found by their environment"
fi

for t in "${tests[@]}"; do
    name=$(basename "$t" .sh)
    start=$SECONDS
    token="$name.$$.$RANDOM$RANDOM"
    : >"$left"
    # The sanitizer suites' reports (tests/sanitizers/run.sh) are files named by pid, and pids
    # start afresh in each test's PID namespace: the test's name as a suffix keeps a report from
    # overwriting another test's.
    test_env=()
    for v in ASAN_OPTIONS TSAN_OPTIONS UBSAN_OPTIONS; do
        [[ ${!v:-} != *log_path=* ]] || test_env+=("$v=${!v}:log_suffix=.$name")
    done
    run=(bash "$here/isolate.sh")
    [ ${#isolation[@]} -eq 0 ] || run=("${isolation[@]}" "${run[@]}" --lo)
    env "${test_env[@]}" timeout -k 10 "$bound" "${run[@]}" "$token" "$left" "$t" >"$log" 2>&1
    rc=$?
    # Killed by the timeout before isolate.sh could look: outside a PID namespace (which took its
    # processes with it) the test's processes may still be running.
    if { [ $rc -eq 124 ] || [ $rc -eq 137 ]; } && [ -z "$pidns" ]; then
        bash "$here/isolate.sh" --sweep "$token" "$left"
    fi
    took=$((SECONDS - start))
    case $rc in
    124 | 137) ended="timed out after $bound s" ;;
    *) ended="exit $rc" ;;
    esac
    if [ -s "$left" ]; then
        failed=$((failed + 1))
        echo "FAIL  $name: left processes running (now killed); the test itself: $ended"
        sed 's/^/    left: /' "$left"
        sed 's/^/    | /' "$log"
        continue
    fi
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
        case $rc in
        124 | 137) echo "FAIL  $name: $ended" ;;
        *) echo "FAIL  $name ($ended)" ;;
        esac
        sed 's/^/    | /' "$log"
        ;;
    esac
done

summary="$passed passed, $failed failed"
[ $skipped -gt 0 ] && summary="$summary, $skipped skipped"
echo "$summary"
[ $failed -eq 0 ]
