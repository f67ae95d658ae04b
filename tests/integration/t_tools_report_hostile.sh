#!/usr/bin/env bash
# autoclose report on lines a local user forged (their own program's log, the journal): TABs in a
# site do not run a command (R1); a module that is a shell script or a FIFO in PATH leaves that
# site unsymbolised and the others reported (R2); a NUL byte makes only its line ignored (R3);
# TABs in symbol= and odd found= words leave --json valid (R4); no ESC byte from a line reaches
# the output (R5); a binary owned by another user is not symbolised unless named with --exe (R6);
# 200 distinct sites: one addr2line run for their binary and only the 50 largest groups
# symbolised (R7); a 1 MB line is ignored, quickly (R8).
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tools_lib.sh
. "$(dirname "$0")/tools_lib.sh"
rc=0 # each run_rc sets it

for tool in gcc nm addr2line python3 mkfifo; do
    command -v "$tool" >/dev/null || skip "$tool is not installed (gcc and binutils, python3)"
done
REPORT=$TOOLS/autoclose-report

mkdir -p "$TMP/build" "$TMP/bin"
cat >"$TMP/build/leaky.c" <<'C'
#include <unistd.h>
__attribute__((noinline)) int session_read_loop(int fd)
{
    char buf[64];
    ssize_t n = read(fd, buf, sizeof buf);
    return n > 0 ? (int)n : 0;
}
int main(void) { return session_read_loop(-1); }
C
gcc -g -O0 -o "$TMP/build/leaky" "$TMP/build/leaky.c" || fail "cannot build the test program"
read -r addr size < <(nm -S "$TMP/build/leaky" | awk '$4 == "session_read_loop" { print $1, $2 }')
[ -n "$addr" ] || fail "nm does not list session_read_loop"
off=$(printf '0x%x' $((0x$addr + 0x$size / 2)))
gone=99999999 # above any pid_max: no process to find a binary by
head="2026-12-07T16:00:01.500Z libautoclose[$gone]: shutdown fd=4 local=127.0.0.1:10540 peer=127.0.0.1:40000"
genuine="$head since_fin_ms=500 found=read site=leaky+$off"
# (the genuine group, symbolised)
real_group() {
    grep -qx "leaky: 1 connection at leaky+$off" "$1" && grep -q "function:  session_read_loop at" "$1"
}

# ---- R1: TABs in site= shift no field; nothing from the line is evaluated -----------------------
# shellcheck disable=SC2016 # the command substitution is the forged text
printf '%s found=read site=x\t1\tls\tBASH_VERSINFO[$(id>%s)0]+0x1\n%s\n' "$head" "$TMP/pwned" "$genuine" \
    >"$TMP/r1.log"
run_rc rc "$REPORT" --exe "$TMP/build/leaky" "$TMP/r1.log"
[ ! -e "$TMP/pwned" ] || fail "R1: the report ran a command from a line: $(cat "$TMP/pwned")"
assert_eq 0 "$rc" "R1: exit status"
real_group "$TMP/rc.out" || fail "R1: the genuine group is missing: $(cat "$TMP/rc.out")"
grep -q '1 other line ignored' "$TMP/rc.out" || fail "R1: the forged line was not ignored: $(head -n 1 "$TMP/rc.out")"
echo "  R1: no command ran, the line with TABs ignored"

# ---- R2: a module that is no ELF (a shell script, a FIFO) in PATH --------------------------------
printf '#!/bin/sh\nexit 0\n' >"$TMP/bin/wrapped"
mkfifo "$TMP/bin/piped"
chmod 755 "$TMP/bin/wrapped" "$TMP/bin/piped"
cp "$TMP/build/leaky" "$TMP/bin/leaky"
{
    echo "$head found=read site=wrapped+0x10"
    echo "$head found=read site=piped+0x10"
    echo "$genuine"
} >"$TMP/r2.log"
run_rc rc env PATH="$TMP/bin:$PATH" "$REPORT" "$TMP/r2.log"
assert_eq 0 "$rc" "R2: exit status"
real_group "$TMP/rc.out" || fail "R2: the genuine group is missing: $(cat "$TMP/rc.out" "$TMP/rc.err")"
grep -q "^  binary:    $TMP/bin/wrapped (not symbolised: " "$TMP/rc.out" || fail "R2: the script's site: $(cat "$TMP/rc.out")"
grep -q "^  binary:    $TMP/bin/piped (not symbolised: not a readable regular file)" "$TMP/rc.out" ||
    fail "R2: the FIFO's site: $(cat "$TMP/rc.out")"
echo "  R2: a shell script and a FIFO in PATH: not symbolised, the rest reported"

# ---- R3: a NUL byte ignores its line only ---------------------------------------------------------
printf '%s found=read site=leaky+0x1\0x\n%s\n' "$head" "$genuine" >"$TMP/r3.log"
run_rc rc "$REPORT" --exe "$TMP/build/leaky" "$TMP/r3.log"
assert_eq 0 "$rc" "R3: exit status"
grep -qx 'autoclose report: 2 lines read, 1 reclaim line, 1 other line ignored' "$TMP/rc.out" ||
    fail "R3: summary: $(cat "$TMP/rc.out" "$TMP/rc.err")"
real_group "$TMP/rc.out" || fail "R3: the genuine group is missing: $(cat "$TMP/rc.out")"
run_rc rc "$REPORT" --json "$TMP/r3.log"
python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); assert len(d) == 1 and d[0]["count"] == 1, d' \
    "$TMP/rc.out" || fail "R3: --json: $(cat "$TMP/rc.out")"
echo "  R3: the line with a NUL ignored, the others counted"

# ---- R4: --json valid whatever the line holds ----------------------------------------------------
{
    printf '%s found=read site=leaky+0x20 symbol=x\ty"z\t\\u\t"binary":1,\t{e\tf\n' "$head"
    echo "$head found=x=1,y site=leaky+0x30"
    echo "$head found=read site=leaky+0x40 symbol=a\"b\\c"
    echo "$genuine"
} >"$TMP/r4.log"
run_rc rc "$REPORT" --json "$TMP/r4.log"
assert_eq 0 "$rc" "R4: exit status"
python3 -m json.tool "$TMP/rc.out" >/dev/null || fail "R4: --json is not valid JSON: $(cat "$TMP/rc.out")"
python3 - "$TMP/rc.out" <<'PY' || fail "R4: --json: $(cat "$TMP/rc.out")"
import json, sys
d = json.load(open(sys.argv[1]))
assert len(d) == 2, d
assert all(isinstance(v, int) for o in d for v in o["found"].values() ) and [o["symbol"] for o in d].count('a"b\\c') == 1, d
PY
echo "  R4: --json valid: TABs and odd words ignored, quotes escaped"

# ---- R5: no ESC byte reaches the terminal --------------------------------------------------------
{
    printf '%s found=read site=\033[2Jx+0x1\n' "$head"
    printf '%s found=read site=leaky+0x50 symbol=\033[8mhidden\n' "$head"
    printf '2026-12-07T16:00:10.000Z autoclosed[2151]: shutdown pid=2137 fd=4 local=127.0.0.1:10570 comm="a\033[1Ab"\n'
    printf '2026-12-07T16:00:10.000Z \033[2K host x[1]: libautoclose[1]: shutdown fd=4 local=127.0.0.1:1 found=read site=leaky+0x60\n'
    echo "$genuine"
} >"$TMP/r5.log"
for mode in "" --json; do
    run_rc rc "$REPORT" $mode "$TMP/r5.log"
    assert_eq 0 "$rc" "R5: exit status ($mode)"
    ! grep -q $'\033' "$TMP/rc.out" "$TMP/rc.err" || fail "R5: an ESC byte in the output ($mode): $(cat -v "$TMP/rc.out")"
done
echo "  R5: no ESC byte in the text or JSON report"

# ---- R6: a binary of another user, found in PATH: only with --exe -------------------------------
if [ "$(id -u)" = 0 ] && id -u nobody >/dev/null 2>&1; then
    mkdir -p "$TMP/other"
    cp "$TMP/build/leaky" "$TMP/other/leaky"
    chown nobody "$TMP/other/leaky"
    echo "$genuine" >"$TMP/r6.log"
    run_rc rc env PATH="$TMP/other:$PATH" "$REPORT" "$TMP/r6.log"
    assert_eq 0 "$rc" "R6: exit status"
    grep -q "^  binary:    $TMP/other/leaky (not symbolised: binary of user $(id -u nobody): pass it with --exe to symbolise)" \
        "$TMP/rc.out" || fail "R6: another user's binary: $(cat "$TMP/rc.out")"
    ! grep -q "function:" "$TMP/rc.out" || fail "R6: another user's binary was symbolised: $(cat "$TMP/rc.out")"
    run_rc rc env PATH="$TMP/other:$PATH" "$REPORT" --exe "$TMP/other/leaky" "$TMP/r6.log"
    real_group "$TMP/rc.out" || fail "R6: --exe: $(cat "$TMP/rc.out")"
    echo "  R6: another user's binary symbolised only with --exe"
else
    echo "  (R6 needs root and the user nobody: not tried)"
fi

# ---- R7: 200 distinct sites: one addr2line run, 50 groups symbolised ------------------------------
mkdir -p "$TMP/wrap"
printf '#!/bin/sh\necho x >>"%s"\nexec %s "$@"\n' "$TMP/a2l.runs" "$(command -v addr2line)" >"$TMP/wrap/addr2line"
chmod 755 "$TMP/wrap/addr2line"
for ((i = 0; i < 200; i++)); do
    printf '%s found=read site=leaky+0x%x\n' "$head" $((0x$addr + i))
done >"$TMP/r7.log"
run_rc rc env PATH="$TMP/wrap:$PATH" "$REPORT" --exe "$TMP/build/leaky" "$TMP/r7.log"
assert_eq 0 "$rc" "R7: exit status"
runs=$(wc -l <"$TMP/a2l.runs" 2>/dev/null || echo 0)
[ "$runs" -le 1 ] || fail "R7: addr2line ran $runs times for one binary"
assert_eq 50 "$(grep -c "^  binary:    $TMP/build/leaky (" "$TMP/rc.out")" "R7: groups symbolised"
grep -qx '150 groups left as module+offset: only the 50 largest are symbolised.' "$TMP/rc.out" ||
    fail "R7: the groups left are not said: $(tail -n 3 "$TMP/rc.out")"
echo "  R7: 200 sites: addr2line ran $runs time(s), 50 groups symbolised, 150 said left"

# ---- R8: a 1 MB line ------------------------------------------------------------------------------
{
    printf '%s found=read site=' "$head"
    head -c 1048576 /dev/zero | tr '\0' A
    printf '+0x1\n%s\n' "$genuine"
} >"$TMP/r8.log"
t0=$(now_ms)
run_rc rc "$REPORT" --exe "$TMP/build/leaky" "$TMP/r8.log"
took=$(($(now_ms) - t0))
assert_eq 0 "$rc" "R8: exit status"
grep -qx 'autoclose report: 2 lines read, 1 reclaim line, 1 other line ignored' "$TMP/rc.out" ||
    fail "R8: summary: $(head -n 1 "$TMP/rc.out")"
real_group "$TMP/rc.out" || fail "R8: the genuine group is missing"
[ "$took" -lt 10000 ] || fail "R8: the report took $took ms"
echo "  R8: a 1 MB line ignored in $took ms"
pass "report: forged lines run nothing, hide nothing, break no JSON, reach no terminal; bounded symbolising"
