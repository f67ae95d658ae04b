#!/usr/bin/env bash
# A server linked against musl, run with the same `autoclose -- server` command as a glibc one:
# scripts/autoclose chooses the musl library by the program's ELF interpreter (musl's loader,
# /lib/ld-musl-ARCH.so.1), the server runs with it loaded and its leaked connections end cleanly
# (0 CLOSE_WAIT, peers in TIME_WAIT), while the same server without the wrapper leaks. Where no
# musl library was built (a tree of the wrapper with the glibc one only) the musl server is
# refused, with exit 2, one line and before it runs (strace sees no execve of it): the glibc
# library would stop it from starting. Skipped without the musl build (musl-gcc, from Debian's
# musl-tools).
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tools_lib.sh
. "$(dirname "$0")/tools_lib.sh"
need_shim

GRACE=300
N=3
MUSL=$FIXTURES_MUSL/mos_server
rc=0 # each run_rc sets it
[ -f "$AUTOCLOSE_LIBMUSL" ] || skip "no musl library at $AUTOCLOSE_LIBMUSL ('make' builds it where" \
    "musl-gcc is: Debian's musl-tools)"
[ -x "$MUSL" ] || skip "no musl mos_server at $MUSL (make integration builds it)"
command -v strace >/dev/null || fail "strace is not installed (scripts/install-deps.sh installs it)"
use_wrapper

musl_loader=/lib/ld-musl-$(uname -m).so.1
assert_eq "$(readlink -f "$AUTOCLOSE_LIBMUSL")" \
    "$(preload_file "$(preload_of choice-musl "$AUTOCLOSE" -- "$MUSL")" musl)" \
    "the library LD_PRELOAD names for the musl server"
assert_eq "$(readlink -f "${AUTOCLOSE_LIB##* }")" \
    "$(preload_file "$(preload_of choice-glibc "$AUTOCLOSE" -- "$FIXTURES/mos_server")" glibc64)" \
    "the library LD_PRELOAD names for the glibc server"

# Without a musl library: refused, one line, never executed.
mkdir -p "$TMP/glibc-only/scripts" "$TMP/glibc-only/build"
cp "$TOOLS/autoclose" "$TMP/glibc-only/scripts/autoclose"
ln -sf "${AUTOCLOSE_LIB##* }" "$TMP/glibc-only/build/libautoclose.so"
run_rc rc strace -f -qq -e trace=execve -e signal=none -o "$TMP/refused.strace" \
    "$TMP/glibc-only/scripts/autoclose" --grace-ms $GRACE -- "$MUSL" --style read \
    --port-file "$TMP/refused.port"
assert_eq 2 "$rc" "exit status for a musl program without a musl library"
assert_eq 1 "$(wc -l <"$TMP/rc.err")" "lines of the refusal"
grep -q "refusing $MUSL: its ELF interpreter $musl_loader is musl's dynamic loader, and no libautoclose.so was built for musl.*autoclosed" \
    "$TMP/rc.err" || fail "the refusal does not say why: $(cat "$TMP/rc.err")"
! grep -qF "execve(\"$MUSL\"" "$TMP/refused.strace" || fail "the refused musl server was executed"
[ ! -e "$TMP/refused.port" ] || fail "the refused server ran anyway"
echo "  refused: $(cat "$TMP/rc.err")"

# The same command as for a glibc server; the plain one shows that the musl server leaks.
start_bg plain "$MUSL" --style read --port-file "$TMP/plain.port"
start_bg wrapped "$AUTOCLOSE" --grace-ms $GRACE --log-file "$TMP/wrapped.log" -- \
    "$MUSL" --style read --port-file "$TMP/wrapped.port"
plain=$(await_port plain)
wrapped=$(await_port wrapped)
pid=$(main_pid wrapped)
maps_has "$pid" "$musl_loader" || fail "the wrapped server does not run under $musl_loader"
maps_has "$pid" "$AUTOCLOSE_LIBMUSL" || fail "the musl library is not loaded in pid $pid"
echo "  the musl library is loaded in the wrapped musl server (pid $pid, under $musl_loader)"

for s in plain wrapped; do
    client "$s-clients" --port "${!s}" --count $N || fail "$s: client exchanges failed"
done
wait_until $((GRACE + 4000)) reclaimed "$wrapped" $N wrapped-clients || true
wait_until 2000 leaking "$plain" $N plain-clients || true
echo "  musl, no wrapper: $(report_states "$plain" plain-clients)"
echo "  musl, wrapper:    $(report_states "$wrapped" wrapped-clients)"
leaking "$plain" $N plain-clients || fail "the musl server without the wrapper did not leak: the test proves nothing"
reclaimed "$wrapped" $N wrapped-clients || fail "the wrapper did not protect the musl server"
assert_eq $N "$(grep -c 'shutdown fd=' "$TMP/wrapped.log" || true)" "actions in the musl server's log"
pass "the wrapper chose the musl library by itself; $N leaks of a musl server reclaimed; refused without it"
