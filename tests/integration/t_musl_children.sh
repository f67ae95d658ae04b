#!/usr/bin/env bash
# Programs of one C library started by a program of the other, under `autoclose --`: the wrapper
# preloads '<preload tree>/$LIB/libautoclose.so', which glibc's loader reads as its own directory
# and musl's as a name, so each program loads its own C library's build.
#  - A musl server's glibc child (here /bin/sh through musl's system(), running a script) runs,
#    is protected (the glibc library in its maps), and its loader writes nothing on its stderr
#    (with the musl library's path, glibc's loader printed "cannot be preloaded" there, which an
#    inetd-style server sends to its peer).
#  - A #! script (run by glibc's /bin/sh, which the wrapper chooses the library for) that execs a
#    musl server: the server starts and its leaks are reclaimed (with the glibc library's path,
#    musl's loader stopped it, exit 127).
# Skipped without the musl build (musl-gcc, from Debian's musl-tools).
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tools_lib.sh
. "$(dirname "$0")/tools_lib.sh"
need_shim
GRACE=300
N=2
[ -f "$AUTOCLOSE_LIBMUSL" ] || skip "no musl library at $AUTOCLOSE_LIBMUSL ('make' builds it where" \
    "musl-gcc is: Debian's musl-tools)"
[ -x "$FIXTURES_MUSL/nofile_via_system" ] && [ -x "$FIXTURES_MUSL/mos_server" ] ||
    skip "no musl nofile_via_system or mos_server in $FIXTURES_MUSL (make integration builds them)"
use_wrapper
rc=0 # each run_rc sets it

# The glibc child: a script that says whether the glibc library is mapped into its shell.
glibc_lib=$(readlink -f "${AUTOCLOSE_LIB##* }")
cat >"$TMP/child.sh" <<CHILD
#!/bin/sh
if grep -qF '$glibc_lib' /proc/\$\$/maps; then echo "child protected"; else echo "child unprotected"; fi
CHILD
chmod +x "$TMP/child.sh"
run_rc rc "$AUTOCLOSE" --log debug -- "$FIXTURES_MUSL/nofile_via_system" "$TMP/child.sh"
sed 's/^/    out | /' "$TMP/rc.out"
sed 's/^/    err | /' "$TMP/rc.err"
assert_eq 0 "$rc" "exit status of the musl program"
grep -qx 'starter child=exit:0' "$TMP/rc.out" || fail "the glibc child did not run: $(cat "$TMP/rc.out")"
grep -qx 'child protected' "$TMP/rc.out" || fail "the glibc child did not load the glibc library"
# One start-up line per program image: the musl program's, then sh -c's, the script's shell and
# grep's (each glibc).
[ "$(grep -c 'libautoclose 1.* active: ' "$TMP/rc.err" || true)" -ge 2 ] ||
    fail "fewer than 2 start-up lines: the library was not active in both C libraries' programs"
! grep -q 'ld\.so\|cannot be preloaded\|error while loading' "$TMP/rc.err" ||
    fail "a loader complained on the child's stderr: $(grep 'ld\.so\|preloaded\|loading' "$TMP/rc.err")"
echo "  a musl program's glibc child loaded the glibc library; no loader line on its stderr"

# The musl server behind a #! script.
printf '#!/bin/sh\nexec "%s" "$@"\n' "$FIXTURES_MUSL/mos_server" >"$TMP/server.sh"
chmod +x "$TMP/server.sh"
start_bg scripted "$AUTOCLOSE" --grace-ms $GRACE --log-file "$TMP/scripted.log" -- \
    "$TMP/server.sh" --style read --port-file "$TMP/scripted.port"
port=$(await_port scripted)
pid=$(main_pid scripted)
maps_has "$pid" "$AUTOCLOSE_LIBMUSL" || fail "the musl server behind the script lacks the musl library"
client clients --port "$port" --count $N || fail "client exchanges failed"
wait_until $((GRACE + 4000)) reclaimed "$port" $N clients || true
echo "  musl server behind a script: $(report_states "$port" clients)"
reclaimed "$port" $N clients || fail "the musl server a script started was not protected"
pass "across C libraries: a musl program's glibc child and a script's musl server are both protected"
