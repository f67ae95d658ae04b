#!/usr/bin/env bash
# make install / uninstall: into a DESTDIR with PREFIX=/usr the library lands in the multiarch
# directory, the tools in bin, the man pages in share/man and the systemd example in
# share/doc/libautoclose, with the installed paths written into the wrapper and the drop-in and
# the Makefile's VERSION into the wrapper's --version and every man page's .TH line;
# installed with a PREFIX of its own, the installed wrapper finds the installed library and
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

# INSTALL_LIB: install the library under test, never rebuild it while other tests use it.
minstall() { make -s -C "$REPO" "$@" INSTALL_LIB="$AUTOCLOSE_LIB" >"$TMP/make.out" 2>&1 || fail "make $*: $(cat "$TMP/make.out")"; }

stage=$TMP/stage
minstall install DESTDIR="$stage" PREFIX=/usr
expected=(
    "usr/$libdir/libautoclose.so:644"
    usr/bin/autoclose:755 usr/bin/mos-close-test:755 usr/bin/tcpstates:755
    usr/share/man/man1/autoclose.1:644 usr/share/man/man1/mos-close-test.1:644
    usr/share/man/man1/tcpstates.1:644 usr/share/man/man7/libautoclose.7:644
    usr/share/doc/libautoclose/autoclose.conf:644
)
for e in "${expected[@]}"; do
    f=${e%:*} mode=${e##*:}
    [ -f "$stage/$f" ] || fail "make install did not install $f"
    assert_eq "$mode" "$(stat -c %a "$stage/$f")" "mode of $f"
done
cmp -s "$AUTOCLOSE_LIB" "$stage/usr/$libdir/libautoclose.so" || fail "the installed library is not the one built"
assert_eq "${#expected[@]}" "$(find "$stage" -type f | wc -l)" "files installed"

# The final paths (without DESTDIR) are written in; no placeholder is left.
grep -qx "installed_lib='/usr/$libdir/libautoclose.so'" "$stage/usr/bin/autoclose" ||
    fail "the installed wrapper does not name /usr/$libdir/libautoclose.so"
grep -qx "Environment=LD_PRELOAD=/usr/$libdir/libautoclose.so" \
    "$stage/usr/share/doc/libautoclose/autoclose.conf" || fail "the installed drop-in does not name the library"
! grep -rl '@AUTOCLOSE_' "$stage" || fail "placeholders left in the installed files"

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
assert_eq "$(readlink -f "$want")" "$(cat "$TMP/rc.out")" "LD_PRELOAD set by the staged wrapper"

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
client clients --port "$port" --count $N || fail "client exchanges failed"
wait_until $((GRACE + 4000)) reclaimed "$port" $N clients || true
echo "  installed wrapper: $(report_states "$port" clients)"
reclaimed "$port" $N clients || fail "the installed wrapper did not protect the server"
if command -v man >/dev/null; then
    for page in 1:autoclose 1:mos-close-test 1:tcpstates 7:libautoclose; do
        assert_eq "$prefix/share/man/man${page%%:*}/${page#*:}.${page%%:*}" \
            "$(man -M "$prefix/share/man" -w "${page%%:*}" "${page#*:}" 2>&1)" "man finds ${page#*:}(${page%%:*})"
    done
else
    echo "  (man is not installed: the installed pages were not looked up)"
fi

# Uninstall removes every file it installed, and the documentation directory.
minstall uninstall DESTDIR="$stage" PREFIX=/usr
minstall uninstall PREFIX="$prefix"
left=$(find "$stage" "$prefix" -type f)
[ -z "$left" ] || fail "make uninstall left: $left"
[ ! -e "$stage/usr/share/doc/libautoclose" ] || fail "make uninstall left share/doc/libautoclose"
pass "installed into DESTDIR and PREFIX, the installed wrapper protected $N leaks, uninstalled"
