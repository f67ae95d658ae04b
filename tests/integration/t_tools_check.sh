#!/usr/bin/env bash
# autoclose --check -- PROGRAM runs nothing and answers: exit 0 and the library it would preload
# for a dynamic glibc program, with the settings the library would use, read from the environment
# and the options by the library's own parser (a bad value and an unknown name named as the
# library would name them), and the musl library for a musl program (when built); exit 1 for a
# static program, a Go program (static, or dynamically linked with cgo) and a setuid one, each
# naming autoclosed as the remedy; exit 2 for
# bad usage. The program is never executed: each run is traced, and the program, given a file to
# create, leaves none. Running a Go program linked dynamically is refused too.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tools_lib.sh
. "$(dirname "$0")/tools_lib.sh"
need_shim
command -v strace >/dev/null || fail "strace is not installed (scripts/install-deps.sh installs it)"
use_wrapper
rc=0 # each run_rc sets it

# A program that leaves a trace when it runs: the file named by its argument.
cat >"$TMP/touch.c" <<'C'
#include <stdio.h>
int main(int argc, char **argv)
{
    FILE *f = argc > 1 ? fopen(argv[1], "w") : NULL;
    return f && fclose(f) == 0 ? 0 : 1;
}
C
mkdir -p "$TMP/bin"
gcc -o "$TMP/bin/dyn_touch" "$TMP/touch.c" || fail "cannot build the test program"

# check NAME CMD...: `autoclose --check [OPTIONS] -- CMD FILE` under strace; status in $rc, output
# in $TMP/rc.out and .err. Fails if CMD ran: it left FILE, or strace saw it executed.
check() {
    local name=$1 target
    shift
    rm -f "$TMP/ran"
    run_rc rc strace -f -qq -e trace=execve -e signal=none -o "$TMP/$name.strace" \
        env "${CHECK_ENV[@]}" "$AUTOCLOSE" --check "${CHECK_OPTS[@]}" -- "$@" "$TMP/ran"
    target=$(type -P -- "$1" || echo "$1")
    [ ! -e "$TMP/ran" ] || fail "$name: --check ran the program"
    ! grep -qF "execve(\"$target\"" "$TMP/$name.strace" || fail "$name: --check executed $target"
    sed "s/^/    $name | /" "$TMP/rc.out" "$TMP/rc.err"
}
CHECK_ENV=("AUTOCLOSE_PORTS=10540,10541" AUTOCLOSE_MODE=explode AUTOCLOSE_PORT=10540)
CHECK_OPTS=(--grace-ms 2000)

# A dynamic glibc program: 0, the library named, the settings as the library reads them.
check dynamic "$TMP/bin/dyn_touch"
assert_eq 0 "$rc" "dynamic: exit status"
lib=$(readlink -f "$AUTOCLOSE_LIB")
grep -qx "library: $lib" "$TMP/rc.out" || fail "dynamic: the library $lib is not named"
grep -q "can be protected: a 64-bit .* program started by glibc's loader" "$TMP/rc.out" ||
    fail "dynamic: no verdict"
for line in '  AUTOCLOSE_GRACE_MS +2000$' '  AUTOCLOSE_PORTS +10540-10541$' \
    '  AUTOCLOSE_MODE +shutdown \(see the line about it above\)$' '  AUTOCLOSE_SWEEP_MS +1000 \(default\)$' \
    "  libautoclose: AUTOCLOSE_MODE='explode' is not 'shutdown' or 'close'; using shutdown$" \
    '  libautoclose: unknown variable AUTOCLOSE_PORT \(did you mean AUTOCLOSE_PORTS\?\); ignored$' \
    '^nothing was run\.$'; do
    grep -Eq -- "$line" "$TMP/rc.out" || fail "dynamic: no line matching '$line'"
done
echo "  dynamic: exit 0, library and settings shown, not run"

# Through PATH, and a script whose interpreter is dynamic: 0 as well.
CHECK_ENV=() CHECK_OPTS=()
PATH="$TMP/bin:$PATH" check in-path dyn_touch
assert_eq 0 "$rc" "in-path: exit status"
# shellcheck disable=SC2016 # the script's own $1
printf '#!/bin/sh\n: >"$1"\n' >"$TMP/bin/script.sh"
chmod +x "$TMP/bin/script.sh"
check script "$TMP/bin/script.sh"
assert_eq 0 "$rc" "script: exit status"
grep -q 'can be protected: a script run by /bin/sh' "$TMP/rc.out" || fail "script: no verdict"

# A musl program: 0, the musl library named (when it and the musl server were built).
if [ -x "$FIXTURES_MUSL/mos_server" ] && [ -f "$AUTOCLOSE_LIBMUSL" ]; then
    check musl "$FIXTURES_MUSL/mos_server"
    assert_eq 0 "$rc" "musl: exit status"
    grep -qx "library: $(readlink -f "$AUTOCLOSE_LIBMUSL")" "$TMP/rc.out" ||
        fail "musl: the musl library is not named"
    grep -q "can be protected: a 64-bit .* program started by musl's loader" "$TMP/rc.out" ||
        fail "musl: no verdict"
    echo "  musl: exit 0, the musl library named, not run"
fi

# expect_cannot NAME WORD CMD...: exit 1, on stdout the reason (with WORD) and autoclosed.
expect_cannot() {
    local name=$1 word=$2
    shift 2
    check "$name" "$@"
    assert_eq 1 "$rc" "$name: exit status"
    grep -q "^autoclose: cannot protect .*$word" "$TMP/rc.out" || fail "$name: the reason does not say '$word'"
    grep -qF "'autoclosed --pid PID'" "$TMP/rc.out" || fail "$name: autoclosed is not named as the remedy"
}
cp "$TMP/bin/dyn_touch" "$TMP/bin/suid_touch"
chmod u+s "$TMP/bin/suid_touch"
expect_cannot setuid setuid "$TMP/bin/suid_touch"
expect_cannot go-static "Go program, statically linked" "$FIXTURES/go_leaky_server"
expect_cannot go-dynamic "Go program: its runtime makes its own system calls" \
    "$FIXTURES/go_leaky_server_dynamic"
libc_a=$(gcc -print-file-name=libc.a)
if [ "$libc_a" != libc.a ] && [ -f "$libc_a" ]; then
    gcc -static -o "$TMP/bin/static_touch" "$TMP/touch.c" || fail "gcc -static failed although $libc_a exists"
    expect_cannot static "statically linked" "$TMP/bin/static_touch"
else
    echo "  (no libc.a: the static C program was not checked; the static Go one was)"
fi
echo "  setuid, static and Go programs: exit 1, autoclosed named"

# Running (not checking) the dynamic Go program is refused as well, before it runs.
rm -f "$TMP/go.port"
run_rc rc "$AUTOCLOSE" -- "$FIXTURES/go_leaky_server_dynamic" --port-file "$TMP/go.port"
assert_eq 2 "$rc" "running the dynamic Go program: exit status"
grep -q "refusing .*Go program.*autoclosed --pid PID" "$TMP/rc.err" ||
    fail "running the dynamic Go program: no refusal naming autoclosed: $(cat "$TMP/rc.err")"
[ ! -e "$TMP/go.port" ] || fail "the refused Go program ran"

# Bad usage: 2, and still nothing run.
for args in "" "--bogus -- $TMP/bin/dyn_touch" "--check=yes -- $TMP/bin/dyn_touch" \
    "-- $TMP/no-such-program" "-- $TMP"; do
    # shellcheck disable=SC2086 # each case is a word list
    run_rc rc "$AUTOCLOSE" --check $args
    [ "$rc" = 2 ] || fail "autoclose --check $args: exit $rc, expected 2"
    [ -s "$TMP/rc.err" ] || fail "autoclose --check $args: no message"
done
echo "  bad usage: exit 2 each"
pass "--check: 0 with the library and settings, 1 naming autoclosed, 2 for bad usage; nothing run"
