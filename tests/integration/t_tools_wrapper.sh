#!/usr/bin/env bash
# scripts/autoclose: a leaking server run under it is protected (CLOSE_WAIT goes to 0, peers end
# in TIME_WAIT), an LD_PRELOAD already set is kept and still loaded, every option reaches the
# library's variable, and a bad value stops it with exit 2 before anything runs.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tools_lib.sh
. "$(dirname "$0")/tools_lib.sh"
need_shim
use_wrapper

GRACE=300
N=3

# A library of our own that records that the loader ran it: the entry already in LD_PRELOAD.
cat >"$TMP/marker.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
__attribute__((constructor)) static void marker(void)
{
    const char *f = getenv("MARKER_FILE");
    FILE *out = f ? fopen(f, "a") : NULL;
    if (out) {
        fprintf(out, "%d\n", (int)getpid());
        fclose(out);
    }
}
C
gcc -shared -fPIC -o "$TMP/marker.so" "$TMP/marker.c" || fail "cannot build the marker library"

start_bg plain "$FIXTURES/mos_server" --style read --port-file "$TMP/plain.port"
start_bg wrapped "$AUTOCLOSE" --grace-ms $GRACE --log-file "$TMP/wrapped.log" -- \
    "$FIXTURES/mos_server" --style read --port-file "$TMP/wrapped.port"
start_bg stacked LD_PRELOAD="$TMP/marker.so" MARKER_FILE="$TMP/marker.pids" \
    "$AUTOCLOSE" --grace-ms $GRACE -- "$FIXTURES/mos_server" --style read --port-file "$TMP/stacked.port"
plain=$(await_port plain)
wrapped=$(await_port wrapped)
stacked=$(await_port stacked)

# The wrapper hands its process over to the server: what runs is mos_server itself.
for s in wrapped stacked; do
    pid=$(main_pid "$s")
    assert_eq mos_server "$(cat "/proc/$pid/comm")" "$s: the program running under the wrapper"
    maps_has "$pid" "$AUTOCLOSE_LIB" || fail "$s: libautoclose.so is not loaded in pid $pid"
done
stacked_pid=$(main_pid stacked)
maps_has "$stacked_pid" "$TMP/marker.so" || fail "stacked: the LD_PRELOAD entry set before was dropped"
grep -qx "$stacked_pid" "$TMP/marker.pids" || fail "stacked: the earlier preload's constructor did not run"
echo "  stacked: marker.so and libautoclose.so both loaded in pid $stacked_pid"

for s in plain wrapped stacked; do
    port_var=$s
    client "$s-clients" --port "${!port_var}" --count $N || fail "$s: client exchanges failed"
done
wait_until $((GRACE + 4000)) reclaimed "$wrapped" $N wrapped-clients || true
wait_until $((GRACE + 4000)) reclaimed "$stacked" $N stacked-clients || true
wait_until 2000 leaking "$plain" $N plain-clients || true
echo "  without wrapper: $(report_states "$plain" plain-clients)"
echo "  wrapper:         $(report_states "$wrapped" wrapped-clients)"
echo "  wrapper+preload: $(report_states "$stacked" stacked-clients)"
leaking "$plain" $N plain-clients || fail "the server without the wrapper did not leak: the test proves nothing"
reclaimed "$wrapped" $N wrapped-clients || fail "the wrapper did not protect the server"
reclaimed "$stacked" $N stacked-clients || fail "with an earlier LD_PRELOAD, the wrapper did not protect the server"
assert_eq $N "$(grep -c 'shutdown fd=' "$TMP/wrapped.log" || true)" "actions in the --log-file"

# Every option reaches its variable; a relative file name is made absolute.
# shellcheck disable=SC2016 # expanded by the inner shell
run_rc rc bash -c 'cd "$1" && shift && "$@"' _ "$TMP" env LD_PRELOAD="$TMP/marker.so" "$AUTOCLOSE" \
    --grace-ms 0300 --mode CLOSE --ports '10540, 12000-12010' --sweep-ms 0 --dry-run --log debug \
    --log-file rel.log --stats-file=stats-%p.prom --nofile max -- env
assert_eq 0 "$rc" "exit status with every option"
for want in AUTOCLOSE_GRACE_MS=300 AUTOCLOSE_MODE=close AUTOCLOSE_PORTS=10540,12000-12010 \
    AUTOCLOSE_SWEEP_MS=0 AUTOCLOSE_DRY_RUN=1 AUTOCLOSE_LOG=debug AUTOCLOSE_NOFILE=max \
    "AUTOCLOSE_LOG_FILE=$(readlink -f "$TMP")/rel.log" \
    "AUTOCLOSE_STATS_FILE=$(readlink -f "$TMP")/stats-%p.prom" \
    "LD_PRELOAD=$TMP/marker.so:$(readlink -f "$(dirname "$AUTOCLOSE")/../build/preload")/\$LIB/libautoclose.so"; do
    grep -qxF -- "$want" "$TMP/rc.out" || fail "env lacks $want; got: $(grep -E '^(AUTOCLOSE|LD_PRELOAD)' "$TMP/rc.out" | tr '\n' ' ')"
done
echo "  every option reached its variable; LD_PRELOAD kept its first entry"

# The command gets the caller's environment as it was, whatever names the wrapper uses inside
# (LIB, cmd, PRELOAD...), LD_PRELOAD and AUTOCLOSE_* aside.
run_rc rc env LIB=caller cmd=caller PRELOAD=caller KIND=caller entries=caller ELF_CLASS=caller \
    "$AUTOCLOSE" --grace-ms 300 -- env
assert_eq 0 "$rc" "exit status with the caller's variables"
for want in LIB=caller cmd=caller PRELOAD=caller KIND=caller entries=caller ELF_CLASS=caller \
    AUTOCLOSE_GRACE_MS=300; do
    grep -qxF -- "$want" "$TMP/rc.out" || fail "the command's environment lacks $want: $(grep -E '^(LIB|cmd|PRELOAD|KIND|entries|ELF_CLASS)=' "$TMP/rc.out" | tr '\n' ' ')"
done
echo "  the caller's variables reached the command unchanged"

# A bare name already in LD_PRELOAD is the loader's to find: a file of that name in the current
# directory, even one linked to the library, does not count as the library preloaded.
mkdir -p "$TMP/cwd"
ln -sf "$(readlink -f "${AUTOCLOSE_LIB##* }")" "$TMP/cwd/libbare.so"
# shellcheck disable=SC2016 # expanded by the inner shell
run_rc rc bash -c 'cd "$1" && shift && "$@"' _ "$TMP/cwd" env LD_PRELOAD=libbare.so "$AUTOCLOSE" \
    -- sh -c 'echo "$LD_PRELOAD"'
[[ $(cat "$TMP/rc.out") == libbare.so:*/\$LIB/libautoclose.so ]] ||
    fail "a file in the current directory kept the library out of LD_PRELOAD: $(cat "$TMP/rc.out")"

# Bad values: exit 2, a message naming the option, and the command never runs.
bad() {
    local rc
    rm -f "$TMP/ran"
    run_rc rc "$AUTOCLOSE" "$@" -- touch "$TMP/ran"
    [ "$rc" = 2 ] || fail "autoclose $*: exit $rc, expected 2"
    [ ! -e "$TMP/ran" ] || fail "autoclose $*: the command ran despite the bad option"
    [ -s "$TMP/rc.err" ] || fail "autoclose $*: no message"
    echo "  autoclose $*: $(head -n 1 "$TMP/rc.err")"
}
bad --grace-ms 5s
bad --grace-ms 86400001
bad --grace-ms
bad --sweep-ms -1
bad --mode fast
bad --ports 0
bad --ports 12010-12000
bad --ports 10540,abc
bad --log loud
bad --stats-file "$TMP/no/such/dir/stats"
bad --dry-run=yes
bad --nofile lots
bad --nofile 0
bad --frobnicate
run_rc rc "$AUTOCLOSE" --grace-ms 100
assert_eq 2 "$rc" "exit status without a command"
run_rc rc "$AUTOCLOSE" -- "$TMP/no-such-program"
assert_eq 127 "$rc" "exit status for a command that does not exist"

run_rc rc "$AUTOCLOSE" --help
assert_eq 0 "$rc" "exit status of --help"
for opt in --grace-ms --mode --ports --sweep-ms --dry-run --log --log-file --stats-file --nofile \
    --help; do
    grep -q -- "$opt" "$TMP/rc.out" || fail "--help does not explain $opt"
done
pass "protected $N leaks twice (alone and after another preload), options checked"
