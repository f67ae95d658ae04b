#!/usr/bin/env bash
# A musl server run as `autoclose -- server` passes its LD_PRELOAD, naming the musl library, to
# every program it starts. One linked against glibc (here /bin/sh through musl's system(), then
# /bin/true) must still run: glibc's loader skips the musl library with one line, since the
# library's ELF header says another OS/ABI, instead of stopping the program on the musl libc.so
# it needs (exit 127). Skipped without the musl build (musl-gcc, from Debian's musl-tools).
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tools_lib.sh
. "$(dirname "$0")/tools_lib.sh"
need_shim
[ -f "$AUTOCLOSE_LIBMUSL" ] || skip "no musl library at $AUTOCLOSE_LIBMUSL ('make' builds it where" \
    "musl-gcc is: Debian's musl-tools)"
[ -x "$FIXTURES_MUSL/nofile_via_system" ] ||
    skip "no musl nofile_via_system in $FIXTURES_MUSL (make integration builds it)"
use_wrapper
rc=0 # each run_rc sets it

run_rc rc "$AUTOCLOSE" --log debug -- "$FIXTURES_MUSL/nofile_via_system" /bin/true
sed 's/^/    out | /' "$TMP/rc.out"
sed 's/^/    err | /' "$TMP/rc.err"
grep -q 'libautoclose 1.* active: ' "$TMP/rc.err" || fail "the musl library was not active in the musl program"
grep -qx 'starter child=exit:0' "$TMP/rc.out" || fail "the glibc child did not run: $(cat "$TMP/rc.out")"
assert_eq 0 "$rc" "exit status of the musl program"
! grep -q 'error while loading shared libraries' "$TMP/rc.err" || fail "a glibc child failed to load"
pass "a glibc program started by a protected musl program runs (glibc's loader skips the musl library)"
