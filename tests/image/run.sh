#!/usr/bin/env bash
# make test-image: make image's archive checked (t_image_files: its files, config and
# reproducibility; t_image_manifest: the DaemonSet manifest) and run under podman against a
# leaking server (t_image_run, which skips in one line where this machine cannot run a
# container). Each bounded; one summary line; a failure's output shown in full.
#   IMAGE=build/autoclosed-image.tar tests/image/run.sh     (FIXTURES and AUTOCLOSED set too)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${IMAGE:?IMAGE must name the archive make image wrote}"
: "${FIXTURES:?FIXTURES must name the directory of the built fixtures}"
: "${AUTOCLOSED:?AUTOCLOSED must name the built daemon}"
export IMAGE FIXTURES AUTOCLOSED
BOUND_S=${IMAGE_TEST_BOUND_S:-300}

passed=0 failed=0 skipped=0
log=$(mktemp "${TMPDIR:-/tmp}/autoclose-image.XXXXXX")
trap 'rm -f "$log"' EXIT
for t in t_image_files t_image_manifest t_image_run; do
    start=$SECONDS
    timeout "$BOUND_S" bash "$here/$t.sh" >"$log" 2>&1
    rc=$?
    took=$((SECONDS - start))
    case $rc in
    0)
        passed=$((passed + 1))
        sed 's/^/    | /' "$log"
        echo "ok    $t (${took}s)"
        ;;
    77)
        skipped=$((skipped + 1))
        echo "skip  $t: $(sed -n 's/^SKIP: [^:]*: //p' "$log" | head -n 1)"
        ;;
    *)
        failed=$((failed + 1))
        [ $rc -eq 124 ] && echo "FAIL  $t: timed out after $BOUND_S s" || echo "FAIL  $t (exit $rc)"
        sed 's/^/    | /' "$log"
        ;;
    esac
done
echo "$passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
