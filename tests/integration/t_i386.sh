#!/usr/bin/env bash
# 32-bit x86: scripts/autoclose chooses the 32-bit library for a 32-bit program by itself, and
# refuses one (exit 2, one line) when no 32-bit library was built; a 32-bit leaking server run
# with the same `autoclose -- server` command as a 64-bit one ends its connections cleanly
# (peers in TIME_WAIT, no CLOSE_WAIT left), while the same server without it leaks.
# Skipped without the 32-bit build (make builds it where gcc -m32 works); the protection part is
# skipped, after the wrapper's choice was checked, on a kernel that cannot run 32-bit programs;
# make test-vm then runs it whole on Debian 12's own kernel, which can.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tools_lib.sh
. "$(dirname "$0")/tools_lib.sh"
need_shim

GRACE=300
N=3
rc=0 # each run_rc sets it
SERVER32=$FIXTURES32/mos_server

[ -f "$AUTOCLOSE_LIB32" ] || skip "no 32-bit library at $AUTOCLOSE_LIB32 ('make' builds it where" \
    "gcc -m32 works: gcc-12-multilib and libc6-dev-i386)"
[ -x "$SERVER32" ] || skip "no 32-bit mos_server at $SERVER32 (make integration builds it)"
command -v strace >/dev/null || fail "strace is not installed (scripts/install-deps.sh installs it)"

# elf_kind FILE: "CLASS MACHINE" from the ELF header (class 1: 32-bit; machine 3: i386).
elf_kind() {
    local b
    read -r -a b <<<"$(od -An -v -t u1 -N 20 -- "$1" | tr '\n' ' ')"
    echo "${b[4]} $((b[18] + 256 * b[19]))"
}
assert_eq "1 3" "$(elf_kind "$AUTOCLOSE_LIB32")" "ELF class and machine of $AUTOCLOSE_LIB32"
assert_eq "1 3" "$(elf_kind "$SERVER32")" "ELF class and machine of $SERVER32"
use_wrapper

assert_eq "$(readlink -f "$AUTOCLOSE_LIB32")" \
    "$(preload_file "$(preload_of choice32 "$AUTOCLOSE" -- "$SERVER32")" glibc32)" \
    "the library LD_PRELOAD names for the 32-bit server"
assert_eq "$(readlink -f "${AUTOCLOSE_LIB##* }")" \
    "$(preload_file "$(preload_of choice64 "$AUTOCLOSE" -- "$FIXTURES/mos_server")" glibc64)" \
    "the library LD_PRELOAD names for the 64-bit server"

# Without a 32-bit library (a tree of the wrapper with the 64-bit one only): refused, one line.
mkdir -p "$TMP/only64/scripts" "$TMP/only64/build"
cp "$TOOLS/autoclose" "$TMP/only64/scripts/autoclose"
ln -sf "${AUTOCLOSE_LIB##* }" "$TMP/only64/build/libautoclose.so"
run_rc rc "$TMP/only64/scripts/autoclose" --grace-ms $GRACE -- "$SERVER32" --style read \
    --port-file "$TMP/refused.port"
assert_eq 2 "$rc" "exit status for a 32-bit program without a 32-bit library"
assert_eq 1 "$(wc -l <"$TMP/rc.err")" "lines of the refusal"
grep -q '32-bit program for x86 (i386)' "$TMP/rc.err" || fail "the refusal does not say why: $(cat "$TMP/rc.err")"
[ ! -e "$TMP/refused.port" ] || fail "the refused server ran anyway"
echo "  refused: $(cat "$TMP/rc.err")"

# Can this kernel run 32-bit x86 programs at all (IA32 emulation)? Asked through bash's exec,
# which reports the kernel's refusal (timeout's would hand the file to sh as a script).
# shellcheck disable=SC2016 # expanded by the inner shell
run_rc rc bash -c 'exec "$1"' _ "$SERVER32"
if [ "$rc" = 126 ] && grep -q 'Exec format error' "$TMP/rc.err"; then
    skip "this kernel cannot run 32-bit x86 programs (no IA32 emulation): the wrapper's choice" \
        "of the 32-bit library and its refusal without one passed; the protection was not run" \
        "(make test-vm runs this test on Debian's kernel)"
fi
assert_eq 2 "$rc" "exit status of the 32-bit server without arguments (its usage)"

# The same command as for a 64-bit server; the plain one shows that the 32-bit server leaks.
start_bg plain "$SERVER32" --style read --port-file "$TMP/plain.port"
start_bg wrapped "$AUTOCLOSE" --grace-ms $GRACE --log-file "$TMP/wrapped.log" -- \
    "$SERVER32" --style read --port-file "$TMP/wrapped.port"
start_bg wrapped_mmsg "$AUTOCLOSE" --grace-ms $GRACE -- "$SERVER32" --style recvmmsg \
    --port-file "$TMP/wrapped_mmsg.port"
plain=$(await_port plain)
wrapped=$(await_port wrapped)
wrapped_mmsg=$(await_port wrapped_mmsg)
for s in wrapped wrapped_mmsg; do
    pid=$(main_pid "$s")
    maps_has "$pid" "$AUTOCLOSE_LIB32" || fail "$s: the 32-bit library is not loaded in pid $pid"
done
echo "  the 32-bit library is loaded in both wrapped 32-bit servers"

for s in plain wrapped wrapped_mmsg; do
    client "$s-clients" --port "${!s}" --count $N || fail "$s: client exchanges failed"
done
wait_until $((GRACE + 4000)) reclaimed "$wrapped" $N wrapped-clients || true
wait_until $((GRACE + 4000)) reclaimed "$wrapped_mmsg" $N wrapped_mmsg-clients || true
wait_until 2000 leaking "$plain" $N plain-clients || true
echo "  32-bit, no wrapper:        $(report_states "$plain" plain-clients)"
echo "  32-bit, wrapper (read):    $(report_states "$wrapped" wrapped-clients)"
echo "  32-bit, wrapper (recvmmsg): $(report_states "$wrapped_mmsg" wrapped_mmsg-clients)"
leaking "$plain" $N plain-clients || fail "the 32-bit server without the wrapper did not leak: the test proves nothing"
reclaimed "$wrapped" $N wrapped-clients || fail "the wrapper did not protect the 32-bit server (read)"
reclaimed "$wrapped_mmsg" $N wrapped_mmsg-clients ||
    fail "the wrapper did not protect the 32-bit server (recvmmsg)"
assert_eq $N "$(grep -c 'shutdown fd=' "$TMP/wrapped.log" || true)" "actions in the 32-bit server's log"
pass "the wrapper chose the 32-bit library by itself; $N leaks of a 32-bit server reclaimed twice"
