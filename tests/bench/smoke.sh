#!/usr/bin/env bash
# make bench-smoke: the benchmark harness end to end at a tiny scale, so that CI notices when
# `make bench` stops working. Every section must run and print its figures, and the reclaim runs
# (one process, and a pre-forked server of three) must end with no connection in CLOSE_WAIT.
# The figures themselves mean nothing at this scale: no target is judged here.
set -euo pipefail

: "${AUTOCLOSE_LIB:?AUTOCLOSE_LIB must name the built libautoclose.so}"
: "${BENCH_BIN:?BENCH_BIN must name the directory of the built benchmark programs}"

out=$(mktemp "${TMPDIR:-/tmp}/autoclose-bench-smoke.XXXXXX")
trap 'rm -f "$out"' EXIT

# A bound on the whole run; the harness cleans up its own processes on the way out.
BENCH_ROUNDS=1 BENCH_HOT_ITERS=2000 BENCH_CG_ITERS=50 BENCH_SCALES="300 900" \
    BENCH_CONNS_PER_PROCESS=300 BENCH_GRACE_MS=600 BENCH_IDLE_CONNS=300 BENCH_IDLE_SECS=1 \
    BENCH_QUIET_SECS=1 BENCH_PILEUP=300 BENCH_REDIS_ROUNDS=1 BENCH_REDIS_REQUESTS=2000 \
    BENCH_CHURN_CONNS=200 BENCH_CHURN_ROUNDS=2 BENCH_DAEMON_CONNS=300 BENCH_TW_WAIT=0 BENCH_FORKS=50 \
    BENCH_SCAN_FDS=300 BENCH_SCAN_SECS=1 BENCH_NETNS=2 BENCH_NETNS_CONNS=20 BENCH_NETNS_SECS=1 \
    timeout 300 tests/bench/run.sh >"$out" 2>&1 || {
    cat "$out"
    echo "bench-smoke: tests/bench/run.sh failed"
    exit 1
}

passes=0 failures=0
expect() { # description, extended regular expression
    if grep -Eq -- "$2" "$out"; then
        echo "ok    $1"
        passes=$((passes + 1))
    else
        echo "FAIL  $1 (no line matching: $2)"
        failures=$((failures + 1))
    fi
}
number='[0-9]+(\.[0-9]+)?'
expect "wall clock: every case has a ratio" "^tcp +epoll +$number .* $number \($number-$number\)$"
expect "wall clock: the second-thread controls ran" "^tcp +read\*\*k "
expect "instructions: per-call table" "^epoll_wait +$number +$number +$number$"
expect "musl: wall clock and the per-call table beside glibc's, or said why not" \
    "^(poll +$number +$number$|SKIP: no musl build)"
expect "idle: the sweep row" "^shim \(sweep every 1000 ms\), 300 idle connections +2 "
expect "pile-up: the idle server beside another process's CLOSE_WAIT" \
    "^beside 300 CLOSE_WAIT of another process +$number +$number +$number +[0-9]+$"
expect "reclaim: 300 in one process reach CLOSE_WAIT=0" "^300 +$number +$number / +$number +$number / "
expect "reclaim: 900 as a pre-forked server of 3 reach CLOSE_WAIT=0" \
    "^900 +$number +$number / +$number +$number / .*\(3 server processes of 300-300 "
expect "reclaim: without the shim every connection stays" " 900 of 900, "
expect "memory verdict" "memory per tracked connection: $number B at 300, $number B at 900"
expect "redis ran, or said why not" "^(SET +$number|SKIP: )"
pair="$number \( *$number- *$number\)"
for style in blocking epoll thread; do
    expect "churn: $style has CPU per connection and a ratio" "^$style +$pair +$pair +$pair$"
done
signed="[-+]?$number"
expect "churn: system calls counted, or said why not" \
    "^(thread +AUTOCLOSE_SWEEP_MS=0 +$signed +$signed +$signed +[0-9]+$|SKIP: strace)"
expect "churn: each call's difference listed" "^(    with-without at 1 / 66: |SKIP: strace)"
expect "churn verdicts" "churn/thread: server CPU per connection, with/without: $number "
expect "daemon: 300 half-closed reach CLOSE_WAIT=0" "^all CLOSE_WAIT gone, after the grace .* $number ms$"
expect "daemon: its memory beside healthy connections" "^daemon memory, 300 healthy connections, after 1 s +[0-9]+ KiB$"
expect "daemon: its CPU beside healthy connections" "^daemon CPU beside 300 healthy connections +$number ms in $number s: $number% of a core"
expect "daemon: memory per half-closed connection" "^daemon memory, 300 half-closed, waiting +[0-9]+ KiB: $number B per half-closed"
expect "scan: the daemon's CPU under churn at both intervals" \
    "^1000 ms +[0-9]+ +$number +$number% +[0-9-]+ +[0-9]+$"
expect "scan: ... and at 100 ms" "^100 ms +[0-9]+ +$number +$number% +[0-9-]+ +[0-9]+$"
expect "netns: the daemon's CPU beside namespaces, or why the section was skipped" \
    "^(namespaces=2 conns_per_ns=20 busy=0 secs=1 cpu_ms=[0-9]+ own_ms=[0-9]+ cpu_pct=$number|skipped=.*)$"
expect "fork: with and without the library, and the idle-thread control" \
    "^with/without $number; an idle thread alone: $number$"
expect "the targets section" "^\(make bench took [0-9]+ s\)$"
if grep -q "error=" "$out"; then
    echo "FAIL  a benchmark program reported an error:"
    grep "error=" "$out"
    failures=$((failures + 1))
fi
if [ "$failures" -gt 0 ]; then
    echo "--- bench output"
    cat "$out"
fi
echo "bench-smoke: $passes passed, $failures failed"
[ "$failures" -eq 0 ]
