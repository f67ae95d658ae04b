#!/usr/bin/env bash
# make deb, end to end. The packages build with dpkg-buildpackage, split the way Debian splits a
# preload library from its tools and its daemon: libautoclose (the library alone, Multi-Arch:
# same, and on amd64 also its i386 package, of the 32-bit library), autoclose (the wrapper, the
# diagnostic tools, --check's helper, their man pages, the drop-in example) and autoclosed (the
# daemon, its unit, its man page and the conffile /etc/default/autoclosed). Each file is in its
# package and every file of make install (PREFIX=/usr) in one of them; the amd64 packages depend
# on no 32-bit library (libc6-i386); the two libautoclose packages install side by side; lintian
# --pedantic has nothing to say that an override does not explain. Installed, the tools say the
# Makefile's VERSION and the installed autoclose protects a leaking server (its CLOSE_WAIT sockets
# reclaimed, as ss shows) with the installed library, a musl one with libautoclose's musl build
# (/usr/lib/<arch>-linux-musl), and a 32-bit one with the i386 package's library where the kernel
# can run it. autoclosed's unit has Debian's maintainer scripts
# (dh_installsystemd: daemon-reload, a restart after an upgrade, a stop on removal, its links
# cleaned on purge) and is not enabled on install; enabled by the operator, its .wants link goes
# with the purge; its /etc/default file is a conffile, kept by a removal and gone with the purge.
# Finally the packages are purged and leave none of their files.
#
# As root (CI) the amd64 packages are installed for real with dpkg -i and purged with dpkg
# --purge; copies already installed (a previous run) are purged first. The i386 package is
# installed for real only where i386 is already a foreign architecture with libc6:i386; otherwise
# it is installed with the amd64 library into a dpkg database of its own (dpkg --root, with i386
# added there), which proves that they install side by side, and a 32-bit server is protected
# from there. Without root, or with DEB_TEST_ROOT=scratch, the packages are unpacked with dpkg -x
# into a scratch root and run from there.
#   tests/deb/t_deb.sh BUILD        (FIXTURES, FIXTURES32 and FIXTURES_MUSL name the built fixtures)
# shellcheck source=../integration/lib.sh
. "$(dirname "$0")/../integration/lib.sh"
# shellcheck source=../integration/tools_lib.sh
. "$(dirname "$0")/../integration/tools_lib.sh"
BUILD_DIR=${1:?usage: t_deb.sh BUILD}
GRACE=300
N=3
PACKAGES=(libautoclose autoclose autoclosed)
rc=0 # each run_rc sets it

for tool in dpkg-buildpackage dh lintian readelf; do
    command -v "$tool" >/dev/null ||
        fail "$tool is not installed (make test-deb installs it: scripts/install-deps.sh --deb --deb-test)"
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
echo "  version $version, architecture $arch; installing into the ${mode} root"

# The build, as a user runs it (not as a part of the make that runs this test).
unset MAKEFLAGS MFLAGS MAKELEVEL
start=$(now_ms)
timeout 600 make -s -C "$REPO" deb BUILD="$BUILD_DIR" >"$TMP/make-deb.out" 2>&1 ||
    fail "make deb failed: $(tail -n 30 "$TMP/make-deb.out")"
echo "  make deb: $(($(now_ms) - start)) ms"
declare -A DEB=()
for p in "${PACKAGES[@]}"; do
    DEB[$p]=$(find "$BUILD_DIR" -maxdepth 1 -name "${p}_${version}-*_$arch.deb" | head -n 1)
    [ -f "${DEB[$p]}" ] || fail "make deb made no ${p}_${version}-*_$arch.deb: $(cat "$TMP/make-deb.out")"
done
deb32=
if [ "$arch" = amd64 ]; then
    deb32=$(find "$BUILD_DIR" -maxdepth 1 -name "libautoclose_${version}-*_i386.deb" | head -n 1)
    [ -f "$deb32" ] || fail "make deb made no libautoclose i386 package on amd64: $(cat "$TMP/make-deb.out")"
fi
all_debs=("${DEB[libautoclose]}" "${DEB[autoclose]}" "${DEB[autoclosed]}" ${deb32:+"$deb32"})
debversion=$(dpkg-deb -f "${DEB[libautoclose]}" Version)
[[ $debversion == "$version"-* ]] || fail "the packages' version $debversion is not the Makefile's $version"
for d in "${all_debs[@]}"; do
    assert_eq "$debversion" "$(dpkg-deb -f "$d" Version)" "Version of ${d##*/}"
done
built=$(find "$BUILD_DIR" -maxdepth 1 -name '*.deb' -printf '%f\n' | sort | xargs)
assert_eq "$(printf '%s\n' "${all_debs[@]##*/}" | sort | xargs)" "$built" \
    ".deb files in ${BUILD_DIR##*/}/ (those of this build only)"
echo "  built: $(for d in "${all_debs[@]}"; do printf '%s (%s bytes) ' "${d##*/}" "$(stat -c %s "$d")"; done)"

# Their control data: the library per architecture, the tools and the daemon beside it; a
# maintainer lintian accepts that is not a placeholder; each description names the daemon.
field() { dpkg-deb -f "$1" "$2"; }
assert_eq libautoclose "$(field "${DEB[libautoclose]}" Package)" "Package of the library's .deb"
assert_eq same "$(field "${DEB[libautoclose]}" Multi-Arch)" "Multi-Arch of libautoclose"
assert_eq libs "$(field "${DEB[libautoclose]}" Section)" "Section of libautoclose"
for p in autoclose autoclosed; do
    assert_eq foreign "$(field "${DEB[$p]}" Multi-Arch)" "Multi-Arch of $p"
done
[[ "$(field "${DEB[autoclose]}" Depends)" == *"libautoclose (= $debversion)"* ]] ||
    fail "autoclose does not depend on libautoclose (= $debversion): $(field "${DEB[autoclose]}" Depends)"
for d in "${all_debs[@]}"; do
    maint=$(field "$d" Maintainer)
    [[ $maint != *example.org* && $maint =~ ^[^\<]+\ \<[^@]+@[^\>]+\>$ ]] ||
        fail "${d##*/}: Maintainer '$maint' is a placeholder or no 'Name <address>'"
    [[ "$(field "$d" Description)" =~ [^a-z]autoclosed[^a-z] ]] ||
        fail "${d##*/}: the description does not name autoclosed"
done
# No amd64 package needs the 32-bit libraries: those are libautoclose:i386's business.
for p in "${PACKAGES[@]}"; do
    deps=$(field "${DEB[$p]}" Depends)
    [[ $deps != *libc6-i386* && $deps != *lib32* ]] || fail "$p depends on a 32-bit library: $deps"
done
[[ "$(field "${DEB[libautoclose]}" Depends)" == *"libc6 ("* ]] ||
    fail "libautoclose does not depend on libc6: $(field "${DEB[libautoclose]}" Depends)"
echo "  libautoclose $arch depends on: $(field "${DEB[libautoclose]}" Depends)"
if [ -n "$deb32" ]; then
    assert_eq i386 "$(field "$deb32" Architecture)" "Architecture of the i386 package"
    assert_eq same "$(field "$deb32" Multi-Arch)" "Multi-Arch of libautoclose:i386"
    deps=$(field "$deb32" Depends)
    [[ $deps == *"libc6 ("* && $deps != *-i386* && $deps != *lib32* ]] ||
        fail "libautoclose:i386 must depend on i386's libc6, not amd64's 32-bit libraries: $deps"
    # Its other control data is the amd64 package's.
    control_of() { dpkg-deb -f "$1" | grep -vE '^(Architecture|Depends|Installed-Size):'; }
    diff -u <(control_of "${DEB[libautoclose]}") <(control_of "$deb32") >"$TMP/control32.diff" ||
        fail "libautoclose:i386's control data differs from libautoclose:$arch's: $(cat "$TMP/control32.diff")"
    [[ "$(field "${DEB[autoclose]}" Suggests)" == *libautoclose:i386* ]] ||
        fail "autoclose does not suggest libautoclose:i386: $(field "${DEB[autoclose]}" Suggests)"
    echo "  libautoclose i386 depends on: $deps"
fi

# Each file in its package. (Man pages compressed; the drop-in a plain file.)
listing() { dpkg-deb --fsys-tarfile "$1" | tar -t | sed 's|^\./|/|; /\/$/d' | sort; }
declare -A WANT=()
WANT[libautoclose]="/usr/lib/$ma/libautoclose.so /usr/lib/${ma/-gnu/-musl}/libautoclose.so
    /usr/lib/libautoclose/lib/$ma/libautoclose.so /usr/lib/libautoclose/\$LIB/libautoclose.so
    /usr/lib/libautoclose/lib64/libautoclose.so /usr/lib/libautoclose/lib/libautoclose.so
    /usr/share/man/man7/libautoclose.7.gz /usr/share/doc/libautoclose/README.md.gz
    /usr/share/lintian/overrides/libautoclose"
WANT[autoclose]="/usr/bin/autoclose /usr/bin/mos-close-test /usr/bin/tcpstates
    /usr/libexec/libautoclose/autoclose-settings /usr/libexec/libautoclose/autoclose-report
    /usr/share/doc/autoclose/autoclose.conf
    /usr/share/man/man1/autoclose.1.gz /usr/share/man/man1/mos-close-test.1.gz
    /usr/share/man/man1/tcpstates.1.gz /usr/share/lintian/overrides/autoclose"
WANT[autoclosed]="/usr/sbin/autoclosed /lib/systemd/system/autoclosed.service
    /etc/default/autoclosed /usr/share/man/man8/autoclosed.8.gz
    /usr/share/doc/autoclosed/README.md.gz /usr/share/lintian/overrides/autoclosed
    /usr/share/doc/autoclosed/autoclosed.rules.yml /usr/share/doc/autoclosed/autoclosed.rules.test.yml"
for p in "${PACKAGES[@]}"; do
    # shellcheck disable=SC2086 # a list of paths
    printf '%s\n' ${WANT[$p]} /usr/share/doc/$p/copyright /usr/share/doc/$p/changelog.Debian.gz |
        sort >"$TMP/$p.want"
    listing "${DEB[$p]}" >"$TMP/$p.files"
    diff -u "$TMP/$p.want" "$TMP/$p.files" >"$TMP/$p.diff" ||
        fail "the files of $p are not what belongs in it: $(cat "$TMP/$p.diff")"
done
sort -u "$TMP"/{libautoclose,autoclose,autoclosed}.files >"$TMP/deb.files"
if [ -n "$deb32" ]; then
    # The i386 package: its library, and its own preload tree entries (lib32 for libc6-i386).
    { grep -v -- "-linux-musl/\\|/\\\$LIB/\\|/lib64/\\|/libautoclose/lib/libautoclose" \
        "$TMP/libautoclose.want" |
        sed "s|/lib/$ma/|/lib/i386-linux-gnu/|"
        echo /usr/lib/libautoclose/lib32/libautoclose.so; } | sort >"$TMP/libautoclose32.want"
    listing "$deb32" >"$TMP/libautoclose32.files"
    diff -u "$TMP/libautoclose32.want" "$TMP/libautoclose32.files" >"$TMP/libautoclose32.diff" ||
        fail "the files of libautoclose:i386 are not what belongs in it: $(cat "$TMP/libautoclose32.diff")"
    dpkg-deb --fsys-tarfile "$deb32" | tar -xO ./usr/lib/i386-linux-gnu/libautoclose.so >"$TMP/lib32.so"
    readelf -h "$TMP/lib32.so" >"$TMP/lib32.elf"
    if ! grep -Eq 'Class: +ELF32' "$TMP/lib32.elf" || ! grep -Eq 'Machine: +Intel 80386' "$TMP/lib32.elf"; then
        fail "libautoclose:i386's library is no 32-bit x86 object: $(grep -E 'Class|Machine' "$TMP/lib32.elf")"
    fi
    # Multi-Arch: same: the files both architectures install must be the same, byte for byte.
    for f in $(comm -12 "$TMP/libautoclose.files" "$TMP/libautoclose32.files"); do
        cmp -s <(dpkg-deb --fsys-tarfile "${DEB[libautoclose]}" | tar -xO ".$f") \
            <(dpkg-deb --fsys-tarfile "$deb32" | tar -xO ".$f") ||
            fail "$f differs between libautoclose:$arch and libautoclose:i386 (Multi-Arch: same)"
    done
fi
# Every file make install installs, as scripts/debian/rules installs them (the unit where Debian
# 12's dh_installsystemd looks, the drop-in in the tools' documentation, no 32-bit library).
src=$BUILD_DIR/deb/src/build
make -s -C "$REPO" install DESTDIR="$TMP/stage" PREFIX=/usr UNITDIR=/lib/systemd/system \
    DOCDIR=/usr/share/doc/autoclose INSTALL_LIB32= INSTALL_LIB="$src/libautoclose.so" \
    INSTALL_LIBMUSL="$src/musl/libautoclose.so" \
    INSTALL_DAEMON="$src/autoclosed" INSTALL_SETTINGS="$src/autoclose-settings" \
    >"$TMP/stage.out" 2>&1 || fail "make install into a stage failed: $(cat "$TMP/stage.out")"
(cd "$TMP/stage" && find . -type f -o -type l) | sed 's|^\.||' |
    sed -E 's|^(/usr/share/man/.*\.[0-9])$|\1.gz|' | sort >"$TMP/install.files"
missing=$(comm -23 "$TMP/install.files" "$TMP/deb.files")
[ -z "$missing" ] || fail "make install installs these, no package holds them: $missing"
echo "  each file in its package ($(wc -l <"$TMP/deb.files") in all${deb32:+, and those of the i386 library});" \
    "all $(wc -l <"$TMP/install.files") of make install among them"

# autoclosed's unit: maintainer scripts as dh_installsystemd writes them: never enabled by the
# package (no enable on first install), a daemon-reload and a restart after an upgrade (a start
# only of an enabled unit: deb-systemd-invoke's rule), a stop on removal, the links cleaned on
# purge. /etc/default/autoclosed is its conffile, shipped with AUTOCLOSED_OPTS commented out so
# that the unit's own default applies.
unit=/lib/systemd/system/autoclosed.service
conffile=/etc/default/autoclosed
dpkg-deb -e "${DEB[autoclosed]}" "$TMP/control" || fail "dpkg-deb -e failed"
# has_snippet SCRIPT TEXT: the maintainer script SCRIPT contains the fixed string TEXT.
has_snippet() {
    [ -f "$TMP/control/$1" ] || fail "autoclosed has no $1"
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
for p in libautoclose autoclose; do
    dpkg-deb -e "${DEB[$p]}" "$TMP/control-$p"
    ! grep -qs autoclosed.service "$TMP/control-$p"/* || fail "$p's maintainer scripts handle the daemon's unit"
done
assert_eq "$conffile" "$(cat "$TMP/control/conffiles" 2>/dev/null)" "autoclosed's conffiles"
dpkg-deb --fsys-tarfile "${DEB[autoclosed]}" | tar -xO ".$conffile" >"$TMP/default"
! grep -Eq '^[[:space:]]*AUTOCLOSED_OPTS=' "$TMP/default" ||
    fail "$conffile sets AUTOCLOSED_OPTS, overriding the unit's default: $(cat "$TMP/default")"
grep -q '^#AUTOCLOSED_OPTS="--' "$TMP/default" || fail "$conffile shows no AUTOCLOSED_OPTS example"
dpkg-deb --fsys-tarfile "${DEB[autoclosed]}" | tar -xO ".$unit" >"$TMP/unit"
grep -qx "EnvironmentFile=-$conffile" "$TMP/unit" || fail "the unit does not read $conffile"
echo "  autoclosed: daemon-reload, restart after upgrade, stop on removal, purge of links; not" \
    "enabled; $conffile a conffile, AUTOCLOSED_OPTS commented out"

# lintian --pedantic: every tag it raises, whatever its level (information included), is one an
# override explains (scripts/debian/*.lintian-overrides).
timeout 300 lintian --pedantic --display-info --fail-on error,warning,info,pedantic \
    "${all_debs[@]}" >"$TMP/lintian.out" 2>&1 || rc=$?
grep -v '^running with root privileges' "$TMP/lintian.out" | sed 's/^/  lintian: /' || true
[ "$rc" -eq 0 ] || fail "lintian --pedantic reports a tag (exit $rc)"
assert_eq 0 "$(grep -cE '^[EWIP]: ' "$TMP/lintian.out" || true)" "tags lintian --pedantic reports"
echo "  lintian --pedantic: nothing but overridden tags"

# Install.
# status PACKAGE: dpkg's status of PACKAGE (libautoclose: the one of this architecture).
status() {
    local p=$1
    [ "$p" != libautoclose ] || p=libautoclose:$arch
    dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || echo not-installed
}
installed_pkgs() {
    { dpkg-query -W -f='${binary:Package} ${db:Status-Status}\n' libautoclose autoclose autoclosed \
        2>/dev/null || true; } | awk '$2 != "not-installed" { print $1 }'
}
# shellcheck disable=SC2317 # called from the EXIT trap
purge_installed() {
    local left
    left=$(installed_pkgs | xargs)
    # shellcheck disable=SC2086 # a list of packages
    [ -z "$left" ] || timeout 120 dpkg --purge $left >>"$TMP/dpkg.out" 2>&1
}
wants=/etc/systemd/system/multi-user.target.wants/autoclosed.service
if [ "$mode" = system ]; then
    was=$(installed_pkgs | xargs)
    if [ -n "$was" ]; then
        echo "  already installed here: $was: purging them first"
        purge_installed || fail "cannot purge the packages already installed: $(cat "$TMP/dpkg.out")"
    fi
    # A file of a package already on the system, owned by no package (a make install with
    # PREFIX=/usr), would be overwritten and then removed by the purge: stop instead.
    while read -r f; do
        [ ! -e "$f" ] || fail "$f is already there, from outside any package: remove it first"
    done <"$TMP/deb.files"
    trap 'purge_installed || true; cleanup' EXIT
    timeout 120 dpkg -i "${DEB[libautoclose]}" "${DEB[autoclose]}" "${DEB[autoclosed]}" \
        >"$TMP/dpkg.out" 2>&1 || fail "dpkg -i failed: $(cat "$TMP/dpkg.out")"
    for p in "${PACKAGES[@]}"; do
        assert_eq installed "$(status "$p")" "dpkg's status of $p after dpkg -i"
        q=$p
        [ "$p" != libautoclose ] || q=libautoclose:$arch
        dpkg -L "$q" | sort >"$TMP/$p.listed"
        while read -r f; do
            [ -d "$f" ] || echo "$f"
        done <"$TMP/$p.listed" >"$TMP/$p.owned"
        diff -u "$TMP/$p.files" "$TMP/$p.owned" >"$TMP/owned.diff" ||
            fail "dpkg -L $p does not list the package's files: $(cat "$TMP/owned.diff")"
    done
    # The library's ldconfig trigger (which policy asks of a library in ldconfig's directories).
    grep -q '^Processing triggers for libc-bin' "$TMP/dpkg.out" ||
        fail "dpkg -i did not run libc-bin's ldconfig trigger: $(cat "$TMP/dpkg.out")"
    assert_eq "$conffile" "$(dpkg-query -W -f='${Conffiles}' autoclosed | awk '{ print $1 }')" \
        "dpkg-query's conffiles of autoclosed"
    echo "  dpkg -i: installed, $(cat "$TMP"/*.owned | wc -l) files; the ldconfig trigger ran;" \
        "$conffile is a conffile"
    root=
else
    root=$TMP/root
    for d in "${all_debs[@]}"; do
        dpkg -x "$d" "$root" || fail "dpkg -x $d failed"
    done
    echo "  dpkg -x: unpacked into a scratch root"
fi
while read -r f; do
    [ -f "$root$f" ] || [ -L "$root$f" ] || fail "$f is not installed"
done <"$TMP/deb.files"

# The i386 package with the amd64 one, side by side, in a dpkg database of their own (as root;
# dpkg refuses a Multi-Arch: same package whose shared files differ between architectures), or
# for real where this system has i386 and its libc6.
root32=$root
if [ -n "$deb32" ] && [ "$mode" = system ]; then
    if dpkg --print-foreign-architectures | grep -qx i386 && [ "$(status libc6:i386)" = installed ]; then
        timeout 120 dpkg -i "$deb32" >"$TMP/dpkg32.out" 2>&1 || fail "dpkg -i $deb32 failed: $(cat "$TMP/dpkg32.out")"
        assert_eq installed "$(status libautoclose:i386)" "dpkg's status of libautoclose:i386"
        dpkg -L libautoclose:i386 | sort >"$TMP/libautoclose32.listed"
        echo "  dpkg -i: libautoclose:i386 installed beside libautoclose:$arch"
    else
        root32=$TMP/multiarch
        mkdir -p "$root32/var/lib/dpkg/info" "$root32/var/lib/dpkg/updates"
        touch "$root32/var/lib/dpkg/status"
        dpkg --root="$root32" --add-architecture i386
        timeout 120 dpkg --root="$root32" --force-depends -i "${DEB[libautoclose]}" "$deb32" \
            >"$TMP/dpkg32.out" 2>&1 || fail "libautoclose:$arch and :i386 do not install side by side: $(cat "$TMP/dpkg32.out")"
        assert_eq "libautoclose:$arch installed libautoclose:i386 installed" \
            "$(dpkg-query --admindir="$root32/var/lib/dpkg" -W -f='${binary:Package} ${db:Status-Status}\n' \
                'libautoclose:*' | sort | xargs)" "libautoclose in a dpkg database with i386 added"
        dpkg -x "${DEB[autoclose]}" "$root32"
        echo "  dpkg --root: libautoclose:$arch and :i386 installed side by side in a database of their" \
            "own (this system has no i386 libc6); the 32-bit server is run from there"
    fi
fi

# The installed wrapper, library and man pages say the Makefile's version.
run_rc rc "$root/usr/bin/autoclose" --version
assert_eq 0 "$rc" "exit status of the installed autoclose --version"
assert_eq "autoclose $version" "$(cat "$TMP/rc.out")" "the installed autoclose --version"
run_rc rc "$root/usr/sbin/autoclosed" --version
assert_eq 0 "$rc" "exit status of the installed autoclosed --version"
assert_eq "autoclosed $version" "$(cat "$TMP/rc.out")" "the installed autoclosed --version"
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

# An installed wrapper against a leaking server, beside the same server unprotected:
# check_protects TAG WRAPPER SERVER LIBRARY: WRAPPER preloads LIBRARY into SERVER by itself.
check_protects() {
    local tag=$1 wrapper=$2 server=$3 want_lib=$4 plain guarded s label=${1:-64}-bit
    [[ $tag != musl* ]] || label=$tag
    start_bg "plain$tag" "$server" --style read --port-file "$TMP/plain$tag.port"
    start_bg "guarded$tag" "$wrapper" --grace-ms $GRACE -- "$server" --style read \
        --port-file "$TMP/guarded$tag.port"
    plain=$(await_port "plain$tag")
    guarded=$(await_port "guarded$tag")
    maps_has "$(main_pid "guarded$tag")" "$want_lib" || fail "the server does not have $want_lib loaded"
    client "plain$tag-clients" --port "$plain" --count $N || fail "client exchanges failed (plain$tag)"
    client "guarded$tag-clients" --port "$guarded" --count $N || fail "client exchanges failed (guarded$tag)"
    wait_until $((GRACE + 4000)) reclaimed "$guarded" $N "guarded$tag-clients" || true
    wait_until 2000 leaking "$plain" $N "plain$tag-clients" || true
    echo "  $label server, without autoclose:   $(report_states "$plain" "plain$tag-clients")"
    echo "  $label server, installed autoclose: $(report_states "$guarded" "guarded$tag-clients")"
    leaking "$plain" $N "plain$tag-clients" || fail "the server without autoclose did not leak: the test proves nothing"
    reclaimed "$guarded" $N "guarded$tag-clients" || fail "the installed autoclose did not protect the $label server"
    for s in "plain$tag" "guarded$tag"; do
        kill -TERM -- "-${BG_PIDS[$s]}" 2>/dev/null || true
        wait "${BG_PIDS[$s]}" 2>/dev/null || true
    done
}
# installed_path ROOT PATH: where a wrapper in ROOT finds PATH: its final path when a package
# installed it there, else under ROOT (the wrapper prefers the former).
installed_path() { if [ -z "$1" ] || [ -f "$2" ]; then echo "$2"; else echo "$1$2"; fi; }
check_protects "" "$root/usr/bin/autoclose" "$FIXTURES/mos_server" \
    "$(installed_path "$root" "/usr/lib/$ma/libautoclose.so")"
protected="$N leaks"

# A musl server, by the same command: the package's musl library.
[ -x "${FIXTURES_MUSL:-}/mos_server" ] || fail "no musl mos_server in ${FIXTURES_MUSL:-} (make test-deb builds it)"
check_protects musl "$root/usr/bin/autoclose" "$FIXTURES_MUSL/mos_server" \
    "$(installed_path "$root" "/usr/lib/${ma/-gnu/-musl}/libautoclose.so")"
protected="$N leaks of a glibc and of a musl server"

# Across C libraries, through the preload tree: a musl server behind a #! script (glibc's sh),
# and a musl program's glibc child, protected and without a loader's line on its stderr.
printf '#!/bin/sh\nexec "%s" "$@"\n' "$FIXTURES_MUSL/mos_server" >"$TMP/musl-server.sh"
chmod +x "$TMP/musl-server.sh"
check_protects musl-script "$root/usr/bin/autoclose" "$TMP/musl-server.sh" \
    "$(installed_path "$root" "/usr/lib/${ma/-gnu/-musl}/libautoclose.so")"
glibc_lib=$(readlink -f "$(installed_path "$root" "/usr/lib/$ma/libautoclose.so")")
printf '#!/bin/sh\ngrep -qF "%s" /proc/$$/maps && echo protected || echo unprotected\n' \
    "$glibc_lib" >"$TMP/glibc-child.sh"
chmod +x "$TMP/glibc-child.sh"
run_rc rc "$root/usr/bin/autoclose" -- "$FIXTURES_MUSL/nofile_via_system" "$TMP/glibc-child.sh"
assert_eq 0 "$rc" "exit status of a musl program starting a glibc one"
grep -qx protected "$TMP/rc.out" || fail "the musl program's glibc child was not protected: $(cat "$TMP/rc.out")"
[ ! -s "$TMP/rc.err" ] || fail "lines on the glibc child's stderr: $(cat "$TMP/rc.err")"
echo "  a script's musl server and a musl program's glibc child: each its own library, silently"
protected="$protected, of a script's musl server"

# A 32-bit server, by the same command, where there is an i386 package (amd64) and the kernel
# runs 32-bit programs (make test-vm proves it on a kernel that does, where this one cannot).
lib32=/usr/lib/i386-linux-gnu/libautoclose.so
runs32=no
if [ -x "$FIXTURES32/mos_server" ]; then
    # Asked through bash's exec, which reports the kernel's refusal (exit 126).
    # shellcheck disable=SC2016 # expanded by the inner shell
    run_rc rc bash -c 'exec "$1"' _ "$FIXTURES32/mos_server"
    [ "$rc" = 126 ] || runs32=yes
fi
if [ -z "$deb32" ]; then
    echo "  no i386 package ($arch): no 32-bit server to protect"
elif [ ! -x "$FIXTURES32/mos_server" ]; then
    fail "no 32-bit mos_server at $FIXTURES32 (make test-deb builds it)"
else
    if [ "$root32" != "$root" ]; then
        # The system's wrapper without libautoclose:i386 refuses a 32-bit program, and says
        # which package it needs.
        run_rc rc /usr/bin/autoclose -- "$FIXTURES32/mos_server"
        assert_eq 2 "$rc" "exit status of the installed autoclose for a 32-bit program without libautoclose:i386"
        grep -q 'apt-get install libautoclose:i386' "$TMP/rc.err" ||
            fail "the refusal does not name libautoclose:i386: $(cat "$TMP/rc.err")"
        echo "  without libautoclose:i386 the installed autoclose refuses a 32-bit program: $(cat "$TMP/rc.err")"
    fi
    if [ $runs32 = no ]; then
        echo "  this kernel cannot run 32-bit programs: the 32-bit server was not run"
    else
        check_protects 32 "$root32/usr/bin/autoclose" "$FIXTURES32/mos_server" \
            "$(installed_path "$root32" "$lib32")"
        protected="$N leaks of a 64-bit, a musl and a 32-bit server"
    fi
fi

# Removal: autoclosed's conffile stays after dpkg -r and goes with the purge; then nothing of
# any package is left.
if [ "$mode" = system ]; then
    timeout 120 dpkg -r autoclosed >"$TMP/dpkg.out" 2>&1 || fail "dpkg -r autoclosed failed: $(cat "$TMP/dpkg.out")"
    assert_eq config-files "$(status autoclosed)" "dpkg's status of autoclosed after dpkg -r"
    [ -f "$conffile" ] || fail "dpkg -r autoclosed removed its conffile $conffile"
    [ ! -e /usr/sbin/autoclosed ] || fail "dpkg -r autoclosed left /usr/sbin/autoclosed"
    pkgs=$(installed_pkgs | xargs)
    # shellcheck disable=SC2086 # a list of packages
    timeout 120 dpkg --purge $pkgs >"$TMP/dpkg.out" 2>&1 || fail "dpkg --purge failed: $(cat "$TMP/dpkg.out")"
    for p in "${PACKAGES[@]}"; do
        assert_eq not-installed "$(status "$p")" "dpkg's status of $p after dpkg --purge"
    done
    # Every file gone; a directory may stay only while another package owns it (/usr/bin...).
    left=$(cat "$TMP"/*.listed | sort -u | while read -r f; do
        if [ "$f" = /. ]; then
            continue # dpkg -L's name for the root
        elif [ -L "$f" ] && [ -d "$f" ] && [ "${f#/*/}" = "$f" ]; then
            continue # /lib of a merged /usr: the system's link to usr/lib, a directory to dpkg
        elif [ -L "$f" ] || [ -f "$f" ]; then
            echo "$f"
        elif [ -d "$f" ] && ! dpkg-query -S "$f" >/dev/null 2>&1; then
            echo "$f/"
        fi
    done)
    [ -z "$left" ] || fail "dpkg --purge left: $left"
    if [ -e "$wants" ] || [ -L "$wants" ]; then
        fail "dpkg --purge left $wants"
    fi
    [ ! -e /var/lib/systemd/deb-systemd-helper-enabled/autoclosed.service.dsh-also ] ||
        fail "dpkg --purge left deb-systemd-helper's state of autoclosed.service"
    echo "  dpkg -r autoclosed kept $conffile; dpkg --purge: no file or directory of a package" \
        "left, no .wants link"
    trap cleanup EXIT
else
    rm -rf "$root"
fi
pass "built, each file in its package, lintian --pedantic clean, installed ($mode), protected $protected, version $version everywhere, removed"
