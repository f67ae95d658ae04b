#!/usr/bin/env bash
# make install / uninstall: into a DESTDIR with PREFIX=/usr the library lands in the multiarch
# directory (the 32-bit x86 one, when built, in the i386 multiarch directory; the musl one, when
# built, in lib/<arch>-linux-musl), the tools in bin,
# the daemon in sbin, the wrapper's --check helper and report script in libexec/libautoclose (the
# installed wrapper's report runs it), the man pages in
# share/man, the systemd example in share/doc/libautoclose and the daemon's unit in
# lib/systemd/system, with the installed paths written into the wrapper, the drop-in and the
# unit (the drop-in's template guard left out: the source tree's copy fails systemd-analyze
# verify, the installed one passes it), and the Makefile's VERSION into the wrapper's --version and every man
# page's .TH line; installed with a PREFIX of its own, the installed wrapper finds the installed library and
# protects a leaking server; make uninstall removes every file again.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tools_lib.sh
. "$(dirname "$0")/tools_lib.sh"
need_shim
GRACE=300
N=2
rc=0 # each run_rc sets it

command -v gcc >/dev/null || skip "gcc is not installed: the multiarch directory is what it names"
ma=$(gcc -print-multiarch 2>/dev/null || true)
libdir=lib${ma:+/$ma}
echo "  library directory under the prefix: $libdir"
# The 32-bit library under test, if it was built, goes into the 32-bit multiarch directory.
ma32=$(gcc -m32 -print-multiarch 2>/dev/null || true)
libdir32=lib${ma32:+/$ma32}
[ -n "$ma32" ] || libdir32=lib32
lib32=
if [ -f "$AUTOCLOSE_LIB32" ]; then
    lib32=$AUTOCLOSE_LIB32
    echo "  32-bit library directory under the prefix: $libdir32"
else
    echo "  (no 32-bit library built: only the 64-bit one is installed)"
fi

# The musl library under test likewise, into the multiarch name with -musl for -gnu.
libdirmusl=lib/${ma:+${ma/-gnu/-musl}}
[ -n "$ma" ] || libdirmusl=lib/$(uname -m)-linux-musl
libmusl=
if [ -f "$AUTOCLOSE_LIBMUSL" ]; then
    libmusl=$AUTOCLOSE_LIBMUSL
    echo "  musl library directory under the prefix: $libdirmusl"
fi

# INSTALL_LIB, INSTALL_LIB32, INSTALL_LIBMUSL, INSTALL_DAEMON, INSTALL_SETTINGS: install what is
# under test, never rebuild it while other tests use it (an empty INSTALL_LIB32 or
# INSTALL_LIBMUSL installs no such library).
: "${AUTOCLOSED:?AUTOCLOSED must name the built daemon}"
[ -x "$SETTINGS_HELPER" ] || fail "no autoclose-settings beside the library under test ($SETTINGS_HELPER)"
minstall() { make -s -C "$REPO" "$@" INSTALL_LIB="$AUTOCLOSE_LIB" INSTALL_LIB32="$lib32" INSTALL_LIBMUSL="$libmusl" INSTALL_DAEMON="$AUTOCLOSED" INSTALL_SETTINGS="$SETTINGS_HELPER" >"$TMP/make.out" 2>&1 || fail "make $*: $(cat "$TMP/make.out")"; }

stage=$TMP/stage
minstall install DESTDIR="$stage" PREFIX=/usr
expected=(
    "usr/$libdir/libautoclose.so:644"
    usr/bin/autoclose:755 usr/bin/mos-close-test:755 usr/bin/tcpstates:755
    usr/share/man/man1/autoclose.1:644 usr/share/man/man1/mos-close-test.1:644
    usr/share/man/man1/tcpstates.1:644 usr/share/man/man7/libautoclose.7:644
    usr/share/doc/libautoclose/autoclose.conf:644
    usr/sbin/autoclosed:755 usr/share/man/man8/autoclosed.8:644
    usr/libexec/libautoclose/autoclose-settings:755 usr/libexec/libautoclose/autoclose-report:755
    usr/lib/systemd/system/autoclosed.service:644
)
[ -z "$lib32" ] || expected+=("usr/$libdir32/libautoclose.so:644")
[ -z "$libmusl" ] || expected+=("usr/$libdirmusl/libautoclose.so:644")
for e in "${expected[@]}"; do
    f=${e%:*} mode=${e##*:}
    [ -f "$stage/$f" ] || fail "make install did not install $f"
    assert_eq "$mode" "$(stat -c %a "$stage/$f")" "mode of $f"
done
cmp -s "$AUTOCLOSE_LIB" "$stage/usr/$libdir/libautoclose.so" || fail "the installed library is not the one built"
if [ -n "$lib32" ]; then
    cmp -s "$lib32" "$stage/usr/$libdir32/libautoclose.so" ||
        fail "the installed 32-bit library is not the one built"
fi
if [ -n "$libmusl" ]; then
    cmp -s "$libmusl" "$stage/usr/$libdirmusl/libautoclose.so" ||
        fail "the installed musl library is not the one built"
fi
assert_eq "${#expected[@]}" "$(find "$stage" -type f | wc -l)" "files installed"

# The final paths (without DESTDIR) are written in; no placeholder is left.
grep -qx "installed_lib='/usr/$libdir/libautoclose.so'" "$stage/usr/bin/autoclose" ||
    fail "the installed wrapper does not name /usr/$libdir/libautoclose.so"
# The 32-bit path is written in whether or not that library was built: it is chosen by the
# program's ELF class, and a 32-bit program is refused while it is not there.
grep -qx "installed_lib32='/usr/$libdir32/libautoclose.so'" "$stage/usr/bin/autoclose" ||
    fail "the installed wrapper does not name the 32-bit library's path: $(grep installed_lib32= "$stage/usr/bin/autoclose")"
grep -qx "installed_libmusl='/usr/$libdirmusl/libautoclose.so'" "$stage/usr/bin/autoclose" ||
    fail "the installed wrapper does not name the musl library's path: $(grep installed_libmusl= "$stage/usr/bin/autoclose")"
grep -qxF "Environment=LD_PRELOAD=/usr/lib/libautoclose/\$LIB/libautoclose.so" \
    "$stage/usr/share/doc/libautoclose/autoclose.conf" || fail "the installed drop-in does not name the preload tree"

# The preload tree: relative links from each name a loader expands $LIB to, to the library for
# that loader (so they hold once the staging root is the real one).
tree=$stage/usr/lib/libautoclose
assert_eq "$(readlink -f "$stage/usr/$libdir/libautoclose.so")" \
    "$(preload_file "$tree/\$LIB/libautoclose.so" glibc64)" "the 64-bit glibc entry of the preload tree"
if [ -n "$lib32" ]; then
    for e in "${LIB32_EXPANSIONS[@]}"; do
        assert_eq "$(readlink -f "$stage/usr/$libdir32/libautoclose.so")" \
            "$(readlink -f "$tree/$e/libautoclose.so")" "the preload tree's entry $e"
    done
fi
if [ -n "$libmusl" ]; then
    assert_eq "$(readlink -f "$stage/usr/$libdirmusl/libautoclose.so")" \
        "$(preload_file "$tree/\$LIB/libautoclose.so" musl)" "the musl entry of the preload tree"
fi
absolute=$(find "$tree" -type l -lname '/*')
[ -z "$absolute" ] || fail "absolute links in the preload tree: $absolute"
grep -q "^ExecStart=/usr/sbin/autoclosed " "$stage/usr/lib/systemd/system/autoclosed.service" ||
    fail "the installed unit does not start /usr/sbin/autoclosed"
! grep -rl '@AUTOCLOSE_' "$stage" || fail "placeholders left in the installed files"
! grep -q 'TEMPLATE' "$stage/usr/share/doc/libautoclose/autoclose.conf" ||
    fail "the installed drop-in still holds the template's guard"

# The drop-in, in a unit's drop-in directory: the source tree's template fails systemd-analyze
# verify (naming its guard), the installed copy passes it without a word.
if command -v systemd-analyze >/dev/null; then
    verify_dropin() { # DROP-IN: verify a service that has it, output in $TMP/verify.out
        rm -rf "$TMP/units" && mkdir -p "$TMP/units/mosserver.service.d"
        printf '[Unit]\nDescription=test\n[Service]\nExecStart=/bin/sleep 1\n' >"$TMP/units/mosserver.service"
        cp "$1" "$TMP/units/mosserver.service.d/autoclose.conf"
        SYSTEMD_UNIT_PATH="$TMP/units:" systemd-analyze verify --man=no \
            "$TMP/units/mosserver.service" >"$TMP/verify.out" 2>&1
    }
    ! verify_dropin "$REPO/scripts/systemd/autoclose.conf" ||
        fail "the source tree's template, unfilled, passes systemd-analyze verify"
    grep -q 'TEMPLATE-NOT-FILLED-IN' "$TMP/verify.out" ||
        fail "systemd-analyze verify does not name the template's guard: $(cat "$TMP/verify.out")"
    verify_dropin "$stage/usr/share/doc/libautoclose/autoclose.conf" ||
        fail "the installed drop-in fails systemd-analyze verify: $(cat "$TMP/verify.out")"
    [ ! -s "$TMP/verify.out" ] || fail "systemd-analyze verify warned: $(cat "$TMP/verify.out")"
    echo "  drop-in: the template fails systemd-analyze verify, the installed copy passes"
else
    echo "  (systemd-analyze is not installed: the drop-in was not verified)"
fi

# The version: the Makefile's, in the installed wrapper and on every installed page's .TH line.
version=$(makefile_version)
[ -n "$version" ] || fail "no VERSION in the Makefile"
run_rc rc "$stage/usr/bin/autoclose" --version
assert_eq "autoclose $version" "$(cat "$TMP/rc.out")" "the installed autoclose --version"
pages=0
for page in "$stage"/usr/share/man/man*/*; do
    th=$(grep -m 1 '^\.TH ' "$page" || true)
    [[ $th == *"\"libautoclose $version\""* ]] ||
        fail "${page#"$stage"/}: its .TH line does not name libautoclose $version: $th"
    pages=$((pages + 1))
done
assert_eq "$(find "$stage/usr/share/man" -type f | wc -l)" "$pages" "installed man pages whose .TH names libautoclose $version"

# Staged, the wrapper finds the library at the same place relative to itself (unless a real
# installation in /usr holds one, which comes first).
want=$stage/usr/$libdir/libautoclose.so
[ ! -f "/usr/$libdir/libautoclose.so" ] || want=/usr/$libdir/libautoclose.so
# shellcheck disable=SC2016 # expanded by the shell the wrapper runs
run_rc rc "$stage/usr/bin/autoclose" -- sh -c 'echo "$LD_PRELOAD"'
assert_eq 0 "$rc" "exit status of the staged wrapper"
assert_eq "$(readlink -f "$want")" "$(preload_file "$(cat "$TMP/rc.out")" glibc64)" \
    "the library LD_PRELOAD names, set by the staged wrapper"
# Its --check finds the staged helper the same way, and reads the options given.
run_rc rc "$stage/usr/bin/autoclose" --check --grace-ms 1234 -- "$FIXTURES/mos_server"
assert_eq 0 "$rc" "exit status of the staged wrapper's --check"
grep -Eq '^  AUTOCLOSE_GRACE_MS +1234$' "$TMP/rc.out" ||
    fail "the staged wrapper's --check shows no settings: $(cat "$TMP/rc.out")"
# Its report finds the staged report script (the installed one in /usr, where there is one).
printf '%s\n' "2026-12-07T16:00:01.000Z libautoclose[4711]: shutdown fd=4 local=127.0.0.1:10540 peer=127.0.0.1:40000 since_fin_ms=500 found=read site=mosserver+0x1a2b" >"$TMP/reclaim.log"
run_rc rc "$stage/usr/bin/autoclose" report "$TMP/reclaim.log"
assert_eq 0 "$rc" "exit status of the staged wrapper's report"
grep -qx 'mosserver: 1 connection at mosserver+0x1a2b' "$TMP/rc.out" ||
    fail "the staged wrapper's report: $(cat "$TMP/rc.out" "$TMP/rc.err")"
# For a 32-bit program it chooses the staged 32-bit library (read from its execve: this kernel
# need not be able to run the program).
if [ -n "$lib32" ] && [ -x "$FIXTURES32/mos_server" ]; then
    want32=$stage/usr/$libdir32/libautoclose.so
    [ ! -f "/usr/$libdir32/libautoclose.so" ] || want32=/usr/$libdir32/libautoclose.so
    assert_eq "$(readlink -f "$want32")" \
        "$(preload_file "$(preload_of staged32 "$stage/usr/bin/autoclose" -- "$FIXTURES32/mos_server")" glibc32)" \
        "LD_PRELOAD set by the staged wrapper for a 32-bit program"
fi

# Installed for real under a prefix of its own: the installed wrapper protects a leaking server
# with the installed library.
prefix=$TMP/prefix
minstall install PREFIX="$prefix"
grep -qx "installed_lib='$prefix/$libdir/libautoclose.so'" "$prefix/bin/autoclose" ||
    fail "the wrapper installed in $prefix does not name its library"
start_bg guarded "$prefix/bin/autoclose" --grace-ms $GRACE -- "$FIXTURES/mos_server" --style read \
    --port-file "$TMP/guarded.port"
port=$(await_port guarded)
maps_has "$(main_pid guarded)" "$prefix/$libdir/libautoclose.so" ||
    fail "the server does not have the installed library loaded"
run_rc rc "$prefix/bin/autoclose" report --json "$TMP/reclaim.log"
assert_eq 0 "$rc" "exit status of the installed wrapper's report"
grep -q '"site": "mosserver+0x1a2b"' "$TMP/rc.out" || fail "the installed wrapper's report: $(cat "$TMP/rc.out" "$TMP/rc.err")"
client clients --port "$port" --count $N || fail "client exchanges failed"
wait_until $((GRACE + 4000)) reclaimed "$port" $N clients || true
echo "  installed wrapper: $(report_states "$port" clients)"
reclaimed "$port" $N clients || fail "the installed wrapper did not protect the server"
if command -v man >/dev/null; then
    for page in 1:autoclose 1:mos-close-test 1:tcpstates 7:libautoclose 8:autoclosed; do
        assert_eq "$prefix/share/man/man${page%%:*}/${page#*:}.${page%%:*}" \
            "$(man -M "$prefix/share/man" -w "${page%%:*}" "${page#*:}" 2>&1)" "man finds ${page#*:}(${page%%:*})"
    done
else
    echo "  (man is not installed: the installed pages were not looked up)"
fi

# Uninstall removes every file it installed, and the documentation directory.
minstall uninstall DESTDIR="$stage" PREFIX=/usr
minstall uninstall PREFIX="$prefix"
left=$(find "$stage" "$prefix" -type f -o -type l)
[ -z "$left" ] || fail "make uninstall left: $left"
[ ! -e "$stage/usr/share/doc/libautoclose" ] || fail "make uninstall left share/doc/libautoclose"
pass "installed into DESTDIR and PREFIX, the installed wrapper protected $N leaks, uninstalled"
