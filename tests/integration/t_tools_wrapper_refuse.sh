#!/usr/bin/env bash
# scripts/autoclose refuses, with exit 2 and before running anything, the programs the loader
# would run without preloading the library: setuid and setgid ones, and static ones (also when
# found through PATH, or named as a script's #! interpreter), naming autoclosed as the remedy.
# The same program linked dynamically, and a script with a dynamic interpreter, do run.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tools_lib.sh
. "$(dirname "$0")/tools_lib.sh"
need_shim
use_wrapper

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

# expect_run CMD...: the wrapper runs it (exit 0, trace left).
expect_run() {
    local rc
    rm -f "$TMP/ran"
    run_rc rc "$AUTOCLOSE" --grace-ms 300 -- "$@" "$TMP/ran"
    { [ "$rc" = 0 ] && [ -e "$TMP/ran" ]; } || fail "autoclose -- $*: exit $rc, expected it to run" \
        "($(head -n 1 "$TMP/rc.err"))"
    echo "  runs:    $*"
}

# expect_refused WORD CMD...: exit 2, a message with WORD, and no trace.
expect_refused() {
    local word=$1 rc
    shift
    rm -f "$TMP/ran"
    run_rc rc "$AUTOCLOSE" --grace-ms 300 -- "$@" "$TMP/ran"
    [ "$rc" = 2 ] || fail "autoclose -- $*: exit $rc, expected 2 (refused)"
    [ ! -e "$TMP/ran" ] || fail "autoclose -- $*: the program ran although it was refused"
    grep -q -- "$word" "$TMP/rc.err" || fail "autoclose -- $*: the message does not say '$word':" \
        "$(cat "$TMP/rc.err")"
    echo "  refused: $* -- $(head -n 1 "$TMP/rc.err")"
}

expect_run "$TMP/bin/dyn_touch"
PATH="$TMP/bin:$PATH" expect_run dyn_touch

# Only the mode bits are read: the copies are never run, so the test needs no privilege and
# works on a nosuid mount.
cp "$TMP/bin/dyn_touch" "$TMP/bin/suid_touch"
chmod u+s "$TMP/bin/suid_touch"
cp "$TMP/bin/dyn_touch" "$TMP/bin/sgid_touch"
chmod g+s "$TMP/bin/sgid_touch"
{ [ -u "$TMP/bin/suid_touch" ] && [ -g "$TMP/bin/sgid_touch" ]; } ||
    fail "cannot set the setuid/setgid bits in $TMP"
expect_refused setuid "$TMP/bin/suid_touch"
expect_refused setgid "$TMP/bin/sgid_touch"
PATH="$TMP/bin:$PATH" expect_refused setuid suid_touch

# A script is run by its interpreter: a dynamic one is fine.
# shellcheck disable=SC2016 # the script's own $1
printf '#!/bin/sh\n: >"$1"\n' >"$TMP/bin/script.sh"
chmod +x "$TMP/bin/script.sh"
expect_run "$TMP/bin/script.sh"

libc_a=$(gcc -print-file-name=libc.a)
if [ "$libc_a" = libc.a ] || [ ! -f "$libc_a" ]; then
    skip "no libc.a (libc6-dev) to build a static program; setuid, setgid and the dynamic" \
        "cases passed, the static case was not tested"
fi
gcc -static -o "$TMP/bin/static_touch" "$TMP/touch.c" || fail "gcc -static failed although $libc_a exists"
# The static program itself works: what is refused is preloading into it.
{ "$TMP/bin/static_touch" "$TMP/ran-direct" && [ -e "$TMP/ran-direct" ]; } ||
    fail "the static test program does not run by itself"
expect_refused static "$TMP/bin/static_touch"
# The refusal names the remedy for such a server: autoclosed, from outside.
grep -qF "'autoclosed --unit UNIT'" "$TMP/rc.err" ||
    fail "the refusal of a static program does not name autoclosed: $(cat "$TMP/rc.err")"
PATH="$TMP/bin:$PATH" expect_refused static static_touch
printf '#!%s\n' "$TMP/bin/static_touch" >"$TMP/bin/static_script"
chmod +x "$TMP/bin/static_script"
expect_refused static "$TMP/bin/static_script"
pass "setuid, setgid and static programs refused before running; dynamic ones and scripts run"
