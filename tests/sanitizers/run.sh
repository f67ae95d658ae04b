#!/usr/bin/env bash
# Runs the unit and integration suites against an instrumented build (make test-asan/test-tsan).
#   tests/sanitizers/run.sh asan|tsan BUILD_DIR
#
# The unit tests are instrumented programs. The integration fixtures are not: each test preloads
# the sanitizer runtime with the library, through AUTOCLOSE_LIB, which may hold a list.
#   asan  "libasan.so BUILD/libautoclose.so": ASan's runtime must come first in the process.
#         UBSan is built in (-fsanitize=address,undefined -fno-sanitize-recover=all).
#   tsan  "BUILD/libautoclose.so libtsan.so": the shim first, so TSan's interceptors sit behind
#         it, as libc does, and see the close wrapper take the shim's lock before the real close
#         (in the other order TSan records every close before that lock and reports the shim's
#         own synchronisation as races).
# Every report fails the run: each runtime halts on the first error and writes its report into
# a directory of its own (log_path; tests/integration/run.sh adds the test's name to each file's
# name, as pids start afresh in each test's PID namespace), and the run fails if any file appears
# there, whatever the exit codes of the processes involved (a server killed at the end of a test
# has none to give).
#
# Foreign programs run under the runtime too (python3, perl, the uninstrumented fixtures): leak
# detection stays off for them (their own leaks at exit are not the shim's); the unit tests,
# which are ours throughout, run with it on.
set -euo pipefail
cd "$(dirname "$0")/../.."

mode=${1:?usage: run.sh asan|tsan BUILD_DIR}
build=$(cd "${2:?usage: run.sh asan|tsan BUILD_DIR}" && pwd)
cc=${CC:-cc}
reports=$build/sanitizer-reports
rm -rf "$reports"
mkdir -p "$reports"
lib=$build/libautoclose.so

common="halt_on_error=1:exitcode=66:log_path=$reports/$mode"
case $mode in
asan)
    runtime=$("$cc" -print-file-name=libasan.so)
    preload="$runtime $lib"
    # gcc's UBSan runs as a plug-in of ASan's runtime and prints to stderr whatever its
    # log_path says (stderr is a file each test deletes). So UBSan aborts after its report
    # (abort_on_error), and ASan (handle_abort) writes that abort, with the stack through
    # __ubsan_handle_* down to the faulting line, into the report directory. UBSan's log_path
    # must equal ASan's: its options are parsed after ASan's and would reset it otherwise.
    export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1:log_path=$reports/$mode"
    common="$common:handle_abort=1"
    unit_env=(ASAN_OPTIONS="$common:detect_leaks=1")
    export ASAN_OPTIONS="$common:detect_leaks=0"
    ;;
tsan)
    runtime=$("$cc" -print-file-name=libtsan.so)
    preload="$lib $runtime"
    # die_after_fork=0: fork_storm and the forking fixtures start threads in children of a
    # threaded parent, which TSan otherwise refuses. The suppressions file says why each entry
    # is there; they match function names, so the earlier access's stack must still be in the
    # thread's history when the report comes: history_size=7 (the most) keeps it through a sweep
    # that looked at thousands of descriptors (t_close_storm), where the default lost it.
    export TSAN_OPTIONS="$common:die_after_fork=0:second_deadlock_stack=1:history_size=7:suppressions=$PWD/tests/sanitizers/tsan.supp"
    unit_env=(TSAN_OPTIONS="$TSAN_OPTIONS")
    ;;
*)
    echo "usage: run.sh asan|tsan BUILD_DIR" >&2
    exit 2
    ;;
esac
[ -f "$runtime" ] || {
    echo "$mode: no sanitizer runtime at '$runtime' ($cc -print-file-name)" >&2
    exit 1
}

# TSan maps its shadow memory at fixed addresses; with more address randomisation than it was
# built for (vm.mmap_rnd_bits above 28, common on newer kernels) a library can land there and
# it dies with "FATAL: ThreadSanitizer: unexpected memory mapping". A probe run decides; setarch
# -R (no randomisation) is inherited by every process the suite starts.
wrap=()
if [ "$mode" = tsan ]; then
    rnd=$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 0)
    probe=$(TSAN_OPTIONS="$TSAN_OPTIONS" "$build/unit/test_heap" 2>&1 >/dev/null || true)
    if [ "$rnd" -gt 28 ] || grep -q 'unexpected memory mapping' <<<"$probe"; then
        command -v setarch >/dev/null || {
            echo "tsan: needs setarch (util-linux) to run without address randomisation" >&2
            exit 1
        }
        wrap=(setarch "$(uname -m)" -R)
        echo "tsan: vm.mmap_rnd_bits=$rnd: running without address randomisation (setarch -R)"
    fi
fi

reported() {
    local f
    shopt -s nullglob
    local files=("$reports"/*)
    shopt -u nullglob
    [ ${#files[@]} -gt 0 ] || return 1
    echo "$mode: ${#files[@]} sanitizer reports in $reports; the first ones:"
    for f in "${files[@]:0:3}"; do
        echo "--- ${f##*/}"
        head -n 40 "$f"
    done
    return 0
}

start=$SECONDS
status=0
echo "== $mode: unit tests (instrumented)"
"${wrap[@]}" env "${unit_env[@]}" tests/unit/run.sh "$build"/unit/test_* || status=1
echo "== $mode: integration tests (LD_PRELOAD=\"$preload\")"
# The operator tools' tests (t_tools_*) install the library, or run it through the autoclose
# wrapper, as one file: there the runtime cannot be put in front of it, and an instrumented
# library without its runtime first refuses to start. They test the tools, not the shim, and run
# in make test.
# t_emfile under TSan: with the descriptor table full, TSan can open neither the program to
# symbolize a report nor its report file, so tsan.supp (which matches function names) cannot
# apply and the run dies on the sweep's descriptor probe it would otherwise suppress. The test
# runs under ASan and in make test. t_fd_idiom under TSan, for the same reason: the files TSan
# opens to symbolize that report get the number the test's loop closes and reopens, and are closed
# under it (and each is a miss the test counts). t_errno_kept: the runtimes set errno of their own
# before main (EEXIST) and in their fclose interceptor (EBADF), where the library does not.
tests=()
for t in tests/integration/t_*.sh; do
    name=$(basename "$t" .sh)
    case $mode:$name in
    *:t_tools_*) echo "skip  $name: takes the library as one file (no sanitizer runtime)" ;;
    *:t_errno_kept) echo "skip  $name: the sanitizer runtime sets errno itself (at start, in its fclose interceptor)" ;;
    tsan:t_emfile) echo "skip  $name: at the descriptor limit TSan cannot symbolize (no free descriptor)" ;;
    tsan:t_fd_idiom) echo "skip  $name: TSan opens files to symbolize (its suppressions need names) in the very numbers the test's loop closes" ;;
    *) tests+=("$name") ;;
    esac
done
"${wrap[@]}" env AUTOCLOSE_LIB="$preload" FIXTURES="$build/fixtures" AUTOCLOSED="$build/autoclosed" \
    tests/integration/run.sh "${tests[@]}" || status=1
if reported; then
    status=1
fi
echo "$mode: $([ $status -eq 0 ] && echo clean || echo FAILED) in $((SECONDS - start)) s"
exit $status
