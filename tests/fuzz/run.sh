#!/usr/bin/env bash
# make fuzz: the libFuzzer targets for the configuration readers and the port list, each for its
# share of a bounded time, from the seed corpus in tests/fuzz/corpus/.
#   tests/fuzz/run.sh [SECONDS]     (default 60, split evenly between the targets)
#
# Built with clang (libFuzzer comes with it) into build-fuzz/, with AddressSanitizer and
# UndefinedBehaviorSanitizer: the shim's own objects (build-fuzz/libautoclose_core.a, through
# the Makefile's rules) and the targets. New inputs the fuzzer finds go to build-fuzz/corpus/, not
# into the seed corpus; a crash leaves its input in build-fuzz/artifacts/ and fails the run.
set -euo pipefail
cd "$(dirname "$0")/../.."

total=${1:-60}
if ! [[ $total =~ ^[0-9]+$ ]] || [ "$total" -lt 2 ]; then
    echo "fuzz: SECONDS must be a whole number of at least 2, not '$total'" >&2
    exit 2
fi
targets=(fuzz_config fuzz_ports)
out=build-fuzz

# clang and its libFuzzer runtime are not part of scripts/install-deps.sh: only this target uses
# them. Debian 12's clang is clang-14; libclang-rt-14-dev holds libFuzzer.
links() {
    printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n)\n{ (void)d; (void)n; return 0; }\n' |
        clang -x c -fsanitize=fuzzer -o /dev/null - 2>/dev/null
}
if ! command -v clang >/dev/null || ! links; then
    echo "fuzz: installing clang and libFuzzer (clang, libclang-rt-14-dev)"
    sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo -n)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends clang libclang-rt-14-dev >/dev/null
    links || {
        echo "fuzz: clang cannot link with -fsanitize=fuzzer" >&2
        exit 1
    }
fi

CFLAGS='-O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all' \
    make --no-print-directory CC=clang BUILD=$out fuzz-build

mkdir -p "$out/artifacts"
share=$((total / ${#targets[@]}))
status=0
for t in "${targets[@]}"; do
    seeds=tests/fuzz/corpus/${t#fuzz_}
    work=$out/corpus/${t#fuzz_}
    mkdir -p "$work"
    echo "== $t: ${share} s from $(find "$seeds" -type f | wc -l) seeds"
    start=$SECONDS
    # libFuzzer stops itself after its share; the outer bound is for a run that would not.
    if ! ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 timeout $((share + 120)) \
        "$out/fuzz/$t" -max_total_time="$share" \
        -max_len=1024 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$out/artifacts/$t-" "$work" "$seeds" >"$out/$t.log" 2>&1; then
        status=1
        echo "FAIL  $t: crash or failed check; the input is in $out/artifacts/, the log in $out/$t.log:"
        grep -E 'ERROR|check failed|SUMMARY|Test unit written' "$out/$t.log" | head -n 20
        continue
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$t.log")
    cov=$(grep -Eo 'cov: [0-9]+' "$out/$t.log" | tail -n 1)
    echo "ok    $t: ${runs:-?} runs in $((SECONDS - start)) s, $cov, corpus $(find "$work" -type f | wc -l) inputs"
done
passed=0
[ $status -ne 0 ] || passed=${#targets[@]}
echo "fuzz: $passed passed, $((${#targets[@]} - passed)) failed"
exit $status
