#!/usr/bin/env bash
# make deb, end to end: the package builds with dpkg-buildpackage, holds every file make install
# installs (with PREFIX=/usr), passes lintian without an error, installs, and then the installed
# tools work: autoclose --version (and autoclosed --version) says the Makefile's VERSION, the man pages carry it, and the
# installed autoclose protects a leaking server (its CLOSE_WAIT sockets reclaimed, as ss shows)
# with the installed library, and a 32-bit one with the installed 32-bit library where the
# kernel can run it. The daemon's unit has Debian's maintainer scripts (dh_installsystemd:
# daemon-reload, a restart after an upgrade, a stop on removal, its links cleaned on purge) and is
# not enabled on install; enabled by the operator, its .wants link goes with the purge. Finally
# the package is purged and leaves none of its files.
#
# As root (CI) the package is installed for real with dpkg -i and removed with dpkg --purge; a
# copy already installed (a previous run) is purged first. Otherwise, or with
# DEB_TEST_ROOT=scratch, it is unpacked with dpkg -x into a scratch root and run from there.
#   tests/deb/t_deb.sh BUILD        (FIXTURES and FIXTURES32 name the built fixtures)
# shellcheck source=../integration/lib.sh
. "$(dirname "$0")/../integration/lib.sh"
# shellcheck source=../integration/tools_lib.sh
. "$(dirname "$0")/../integration/tools_lib.sh"
BUILD_DIR=${1:?usage: t_deb.sh BUILD}
GRACE=300
N=3
PKG=libautoclose
rc=0 # each run_rc sets it

for tool in dpkg-buildpackage dh lintian; do
    command -v "$tool" >/dev/null ||
        fail "$tool is not installed (scripts/install-deps.sh --deb installs it)"
done
mode=${DEB_TEST_ROOT:-}
if [ -z "$mode" ]; then
    if [ "$(id -u)" -eq 0 ]; then mode=system; else mode=scratch; fi
fi
case $mode in
system) [ "$(id -u)" -eq 0 ] || fail "DEB_TEST_ROOT=system needs root" ;;
scratch) ;;
*) fail "DEB_TEST_ROOT='$mode' is not system or scratch" ;;
esac
version=$(makefile_version)
[ -n "$version" ] || fail "no VERSION in the Makefile"
arch=$(dpkg --print-architecture)
ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
deb=$BUILD_DIR/${PKG}_${version}-1_${arch}.deb
echo "  version $version, architecture $arch; installing into the ${mode} root"

# The build, as a user runs it.
start=$(now_ms)
timeout 600 make -s -C "$REPO" deb BUILD="$BUILD_DIR" >"$TMP/make-deb.out" 2>&1 ||
    fail "make deb failed: $(tail -n 30 "$TMP/make-deb.out")"
echo "  make deb: $(($(now_ms) - start)) ms"
[ -f "$deb" ] || fail "make deb did not make $deb: $(cat "$TMP/make-deb.out")"
assert_eq "$PKG" "$(dpkg-deb -f "$deb" Package)" "Package"
assert_eq "$version-1" "$(dpkg-deb -f "$deb" Version)" "Version (the Makefile's VERSION, revision 1)"
built=$(find "$BUILD_DIR" -maxdepth 1 -name '*.deb' -printf '%f\n' | sort | xargs)
assert_eq "${deb##*/}" "$built" ".deb files in ${BUILD_DIR##*/}/ (what 'dpkg -i build/*.deb' installs)"

# Its files: every one that make install installs (man pages compressed), and the Debian ones.
dpkg-deb --fsys-tarfile "$deb" | tar -t | sed 's|^\./|/|; /\/$/d' | sort >"$TMP/deb.files"
# UNITDIR as scripts/debian/rules sets it: where Debian 12's dh_installsystemd looks for units.
make -s -C "$REPO" install DESTDIR="$TMP/stage" PREFIX=/usr UNITDIR=/lib/systemd/system \
    INSTALL_LIB="$BUILD_DIR/deb/src/build/libautoclose.so" >"$TMP/stage.out" 2>&1 ||
    fail "make install into a stage failed: $(cat "$TMP/stage.out")"
(cd "$TMP/stage" && find . -type f -o -type l) | sed 's|^\.||' |
    sed -E 's|^(/usr/share/man/.*\.[0-9])$|\1.gz|' | sort >"$TMP/install.files"
missing=$(comm -23 "$TMP/install.files" "$TMP/deb.files")
[ -z "$missing" ] || fail "make install installs these, the package lacks them: $missing"
for f in /usr/share/doc/$PKG/copyright /usr/share/doc/$PKG/changelog.Debian.gz \
    "/usr/lib/$ma/libautoclose.so"; do
    grep -qxF "$f" "$TMP/deb.files" || fail "the package lacks $f"
done
echo "  the package holds all $(wc -l <"$TMP/install.files") files of make install, $(wc -l <"$TMP/deb.files") in all"

# The unit's maintainer scripts, as dh_installsystemd writes them: never enabled by the package
# (no enable on first install), a daemon-reload and a restart after an upgrade (a start only of
# an enabled unit: deb-systemd-invoke's rule), a stop on removal, the links cleaned on purge.
unit=/lib/systemd/system/autoclosed.service
grep -qxF "$unit" "$TMP/deb.files" || fail "the package lacks $unit"
dpkg-deb -e "$deb" "$TMP/control" || fail "dpkg-deb -e failed"
# has_snippet SCRIPT TEXT: the maintainer script SCRIPT contains the fixed string TEXT.
has_snippet() {
    [ -f "$TMP/control/$1" ] || fail "the package has no $1"
    grep -qF -- "$2" "$TMP/control/$1" || fail "$1 lacks '$2': $(cat "$TMP/control/$1")"
}
has_snippet postinst "deb-systemd-helper update-state 'autoclosed.service'"
has_snippet postinst "systemctl --system daemon-reload"
has_snippet postinst "_dh_action=restart"
has_snippet postinst "deb-systemd-invoke \$_dh_action 'autoclosed.service'"
has_snippet prerm "deb-systemd-invoke stop 'autoclosed.service'"
has_snippet postrm "deb-systemd-helper purge 'autoclosed.service'"
has_snippet postrm "systemctl --system daemon-reload"
! grep -q "was-enabled defaults to true" "$TMP/control/postinst" ||
    fail "the postinst enables autoclosed.service on install"
[ ! -f "$TMP/control/preinst" ] || ! grep -q "autoclosed" "$TMP/control/preinst" ||
    fail "the preinst stops the daemon before an upgrade (it is restarted after it)"
echo "  maintainer scripts: daemon-reload, restart after upgrade, stop on removal, purge of links; not enabled"

# lintian: no error (the warnings it is told to expect are explained in
# scripts/debian/libautoclose.lintian-overrides).
timeout 300 lintian --fail-on error "$deb" >"$TMP/lintian.out" 2>&1 || rc=$?
sed 's/^/  lintian: /' "$TMP/lintian.out"
[ "$rc" -eq 0 ] || fail "lintian reports an error (exit $rc)"
assert_eq 0 "$(grep -c '^E: ' "$TMP/lintian.out" || true)" "lintian errors"

# Install.
status() { dpkg-query -W -f='${db:Status-Status}' "$PKG" 2>/dev/null || echo not-installed; }
# shellcheck disable=SC2317 # called from the EXIT trap
purge_if_installed() {
    if [ "$mode" = system ] && [ "$(status)" != not-installed ]; then
        timeout 120 dpkg --purge "$PKG" >>"$TMP/dpkg.out" 2>&1 || true
    fi
}
if [ "$mode" = system ]; then
    was=$(status)
    if [ "$was" != not-installed ]; then
        echo "  $PKG is already here ($was, $(dpkg-query -W -f='${Version}' "$PKG")): purging it first"
        timeout 120 dpkg --purge "$PKG" >"$TMP/dpkg.out" 2>&1 ||
            fail "cannot purge the $PKG already installed: $(cat "$TMP/dpkg.out")"
    fi
    # A file of the package already on the system, owned by no package (a make install with
    # PREFIX=/usr), would be overwritten and then removed by the purge: stop instead.
    while read -r f; do
        [ ! -e "$f" ] || fail "$f is already there, from outside any package: remove it first"
    done <"$TMP/deb.files"
    trap 'purge_if_installed; cleanup' EXIT
    timeout 120 dpkg -i "$deb" >"$TMP/dpkg.out" 2>&1 || fail "dpkg -i failed: $(cat "$TMP/dpkg.out")"
    assert_eq installed "$(status)" "dpkg's status of $PKG after dpkg -i"
    root=
    dpkg -L "$PKG" | sort >"$TMP/listed"
    while read -r f; do
        [ -d "$f" ] || echo "$f"
    done <"$TMP/listed" >"$TMP/owned.files"
    diff -u "$TMP/deb.files" "$TMP/owned.files" >"$TMP/owned.diff" ||
        fail "dpkg -L does not list the package's files: $(cat "$TMP/owned.diff")"
    # The package's ldconfig trigger (which policy asks of a library in ldconfig's directories).
    grep -q '^Processing triggers for libc-bin' "$TMP/dpkg.out" ||
        fail "dpkg -i did not run libc-bin's ldconfig trigger: $(cat "$TMP/dpkg.out")"
    echo "  dpkg -i: installed, $(wc -l <"$TMP/owned.files") files; the ldconfig trigger ran"
else
    root=$TMP/root
    dpkg -x "$deb" "$root" || fail "dpkg -x failed"
    echo "  dpkg -x: unpacked into a scratch root"
fi
while read -r f; do
    [ -f "$root$f" ] || [ -L "$root$f" ] || fail "$f is not installed"
done <"$TMP/deb.files"

# The installed wrapper, library and man pages say the Makefile's version.
run_rc rc "$root/usr/bin/autoclose" --version
assert_eq 0 "$rc" "exit status of the installed autoclose --version"
assert_eq "autoclose $version" "$(cat "$TMP/rc.out")" "the installed autoclose --version"
run_rc rc "$root/usr/sbin/autoclosed" --version
assert_eq 0 "$rc" "exit status of the installed autoclosed --version"
assert_eq "autoclosed $version" "$(cat "$TMP/rc.out")" "the installed autoclosed --version"
[ -f "$root$unit" ] || fail "the package has no autoclosed.service"
wants=/etc/systemd/system/multi-user.target.wants/autoclosed.service
if [ "$mode" = system ]; then
    if [ -e "$wants" ] || [ -L "$wants" ]; then
        fail "dpkg -i enabled autoclosed.service: $wants"
    fi
    if command -v systemctl >/dev/null; then
        assert_eq disabled "$(systemctl is-enabled autoclosed.service 2>&1 || true)" \
            "systemctl is-enabled autoclosed after dpkg -i"
        # The operator's choice; the purge below must take the link away again.
        systemctl enable autoclosed.service >"$TMP/enable.out" 2>&1 ||
            fail "systemctl enable autoclosed failed: $(cat "$TMP/enable.out")"
        [ -L "$wants" ] || fail "systemctl enable made no $wants"
        echo "  not enabled by dpkg -i; systemctl enable made $wants"
    fi
fi
mapfile -t pages < <(grep '^/usr/share/man/' "$TMP/deb.files")
[ ${#pages[@]} -gt 0 ] || fail "the package holds no man page"
for page in "${pages[@]}"; do
    th=$(zcat "$root$page" | grep -m 1 '^\.TH ' || true)
    [[ $th == *"\"libautoclose $version\""* ]] ||
        fail "$page: its .TH line does not name libautoclose $version: $th"
done
echo "  the .TH line of each of the ${#pages[@]} installed man pages names libautoclose $version"
if [ "$mode" = system ] && command -v man >/dev/null; then
    assert_eq "/usr/share/man/man1/autoclose.1.gz" "$(man -M /usr/share/man -w 1 autoclose 2>&1)" \
        "man -w 1 autoclose"
fi
run_rc rc env AUTOCLOSE_LOG=debug "$root/usr/bin/autoclose" -- true
assert_eq 0 "$rc" "exit status of the installed autoclose -- true"
grep -qE "libautoclose\\[[0-9]+\\]: libautoclose ${version//./\\.} active: " "$TMP/rc.err" ||
    fail "the installed library's start-up line does not name $version: $(cat "$TMP/rc.err")"
echo "  the installed library's start-up line names $version"

# The installed wrapper against a leaking server, beside the same server unprotected:
# check_protects TAG SERVER LIBRARY: the wrapper preloads LIBRARY into SERVER by itself.
check_protects() {
    local tag=$1 server=$2 want_lib=$3 plain guarded s
    # Unpacked in a scratch root, the wrapper prefers a library installed at its final path.
    [ -z "$root" ] || [ ! -f "${want_lib#"$root"}" ] || want_lib=${want_lib#"$root"}
    start_bg "plain$tag" "$server" --style read --port-file "$TMP/plain$tag.port"
    start_bg "guarded$tag" "$root/usr/bin/autoclose" --grace-ms $GRACE -- "$server" --style read \
        --port-file "$TMP/guarded$tag.port"
    plain=$(await_port "plain$tag")
    guarded=$(await_port "guarded$tag")
    maps_has "$(main_pid "guarded$tag")" "$want_lib" || fail "the server does not have $want_lib loaded"
    client "plain$tag-clients" --port "$plain" --count $N || fail "client exchanges failed (plain$tag)"
    client "guarded$tag-clients" --port "$guarded" --count $N || fail "client exchanges failed (guarded$tag)"
    wait_until $((GRACE + 4000)) reclaimed "$guarded" $N "guarded$tag-clients" || true
    wait_until 2000 leaking "$plain" $N "plain$tag-clients" || true
    echo "  ${tag:-64}-bit server, without autoclose:   $(report_states "$plain" "plain$tag-clients")"
    echo "  ${tag:-64}-bit server, installed autoclose: $(report_states "$guarded" "guarded$tag-clients")"
    leaking "$plain" $N "plain$tag-clients" || fail "the server without autoclose did not leak: the test proves nothing"
    reclaimed "$guarded" $N "guarded$tag-clients" || fail "the installed autoclose did not protect the ${tag:-64}-bit server"
    for s in "plain$tag" "guarded$tag"; do
        kill -TERM -- "-${BG_PIDS[$s]}" 2>/dev/null || true
        wait "${BG_PIDS[$s]}" 2>/dev/null || true
    done
}
check_protects "" "$FIXTURES/mos_server" "$root/usr/lib/$ma/libautoclose.so"
protected="$N leaks"

# A 32-bit server, by the same command, where the package has the 32-bit library (amd64) and the
# kernel runs 32-bit programs (make test-vm proves it on a kernel that does, where this one cannot).
lib32=/usr/lib/i386-linux-gnu/libautoclose.so
runs32=no
if [ -x "$FIXTURES32/mos_server" ]; then
    # Asked through bash's exec, which reports the kernel's refusal (exit 126).
    # shellcheck disable=SC2016 # expanded by the inner shell
    run_rc rc bash -c 'exec "$1"' _ "$FIXTURES32/mos_server"
    [ "$rc" = 126 ] || runs32=yes
fi
if ! grep -qxF "$lib32" "$TMP/deb.files"; then
    echo "  no 32-bit library in the package ($arch): no 32-bit server to protect"
elif [ ! -x "$FIXTURES32/mos_server" ]; then
    fail "no 32-bit mos_server at $FIXTURES32 (make test-deb builds it)"
elif [ $runs32 = no ]; then
    echo "  this kernel cannot run 32-bit programs: the 32-bit server was not run"
else
    check_protects 32 "$FIXTURES32/mos_server" "$root$lib32"
    protected="$N leaks of a 64-bit and of a 32-bit server"
fi

# Removal: nothing of the package is left.
if [ "$mode" = system ]; then
    timeout 120 dpkg --purge "$PKG" >"$TMP/dpkg.out" 2>&1 || fail "dpkg --purge failed: $(cat "$TMP/dpkg.out")"
    assert_eq not-installed "$(status)" "dpkg's status of $PKG after dpkg --purge"
    # Every file gone; a directory may stay only while another package owns it (/usr/bin...).
    left=$(while read -r f; do
        if [ "$f" = /. ]; then
            continue # dpkg -L's name for the root
        elif [ -L "$f" ] && [ -d "$f" ] && [ "${f#/*/}" = "$f" ]; then
            continue # /lib of a merged /usr: the system's link to usr/lib, a directory to dpkg
        elif [ -L "$f" ] || [ -f "$f" ]; then
            echo "$f"
        elif [ -d "$f" ] && ! dpkg-query -S "$f" >/dev/null 2>&1; then
            echo "$f/"
        fi
    done <"$TMP/listed")
    [ -z "$left" ] || fail "dpkg --purge left: $left"
    if [ -e "$wants" ] || [ -L "$wants" ]; then
        fail "dpkg --purge left $wants"
    fi
    [ ! -e /var/lib/systemd/deb-systemd-helper-enabled/autoclosed.service.dsh-also ] ||
        fail "dpkg --purge left deb-systemd-helper's state of autoclosed.service"
    echo "  dpkg --purge: no file or directory of the package left, no .wants link"
    trap cleanup EXIT
else
    rm -rf "$root"
fi
pass "built, lintian-clean, installed ($mode), protected $protected, version $version everywhere, removed"
