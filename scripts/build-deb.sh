#!/usr/bin/env bash
# make deb: builds the Debian binary packages with Debian's own tooling (dpkg-buildpackage,
# debhelper): libautoclose (the library), autoclose (the tools) and autoclosed (the daemon), and
# on amd64 also libautoclose for i386 (below). The top level of the project holds no debian/
# directory: the source tree is copied to BUILD/deb/src, scripts/debian/ is put in place there as
# debian/, debian/changelog is written from the Makefile's VERSION, and the .deb files are copied
# to BUILD/.
#   scripts/build-deb.sh VERSION BUILD
# DEB_REVISION is the Debian revision: the packages' version is VERSION-DEB_REVISION. Its default
# is 1, but 2 for VERSION 1.0.0, whose -1 was one package (autoclose and autoclosed take over its
# files: their Breaks and Replaces name it). DEB_MAINTAINER='Name <address>' puts a site's own maintainer into the packages instead
# of the project's role address. The full build log is kept in BUILD/deb/build.log.
set -euo pipefail

[ $# -eq 2 ] || {
    echo "usage: scripts/build-deb.sh VERSION BUILD" >&2
    exit 2
}
version=$1
build=$(realpath -m -- "$2")
default_revision=1
[ "$version" != 1.0.0 ] || default_revision=2
revision=${DEB_REVISION:-$default_revision}
repo=$(cd "$(dirname "$0")/.." && pwd)
[[ $version =~ ^[0-9][A-Za-z0-9.+~]*$ ]] || {
    echo "build-deb: VERSION '$version' is not a Debian upstream version (digits first)" >&2
    exit 2
}
[[ $revision =~ ^[A-Za-z0-9.+~]+$ ]] || {
    echo "build-deb: DEB_REVISION '$revision' is not a Debian revision" >&2
    exit 2
}
# autoclose and autoclosed break libautoclose before 1.0.0-2 (scripts/debian/control): a version
# before it would break its own library package.
dpkg --compare-versions "$version-$revision" ge 1.0.0-2 || {
    echo "build-deb: $version-$revision: the packages split in three begin at 1.0.0-2 (1.0.0-1 was" \
        "one package); set DEB_REVISION=2 or more" >&2
    exit 2
}
for tool in dpkg-buildpackage dh; do
    command -v "$tool" >/dev/null || {
        echo "build-deb: $tool is missing: run scripts/install-deps.sh --deb" >&2
        exit 1
    }
done

work=$build/deb
src=$work/src
rm -rf "$work"
mkdir -p "$src"
# The source tree as the design card has it, without any build output.
cp -a "$repo/shim" "$repo/tests" "$repo/scripts" "$repo/Makefile" "$repo/README.md" \
    "$repo/LICENSE" "$src/"
cp -a "$repo/scripts/debian" "$src/debian"
if [ -n "${DEB_MAINTAINER:-}" ]; then
    [[ $DEB_MAINTAINER =~ ^[^\<\>]+\ \<[^\<\>@\ ]+@[^\<\>@\ ]+\>$ ]] || {
        echo "build-deb: DEB_MAINTAINER '$DEB_MAINTAINER' is not 'Name <address>'" >&2
        exit 2
    }
    sed -i "s|^Maintainer: .*|Maintainer: $DEB_MAINTAINER|" "$src/debian/control"
fi

# At revision 1 lintian takes the packages for an initial upload to Debian, which should close an
# ITP bug: they are built from the project's tree, not uploaded, and there is none to close.
mapfile -t packages < <(sed -n 's/^Package: *//p' "$src/debian/control")
if [ "$revision" = 1 ]; then
    for p in "${packages[@]}"; do
        printf '# Built from the project'"'"'s tree, not uploaded to Debian: no ITP bug to close.\n%s\n' \
            "$p: initial-upload-closes-no-bugs [usr/share/doc/$p/changelog.Debian.gz:1]" \
            >>"$src/debian/$p.lintian-overrides"
    done
fi

# debian/changelog: one entry, the Makefile's version. Its date is the last commit's when the
# tree is a git checkout (the same source gives the same package), else now.
maintainer=$(sed -n 's/^Maintainer: *//p' "$src/debian/control")
source_name=$(sed -n 's/^Source: *//p' "$src/debian/control")
date=$(git -C "$repo" log -1 --format=%aD 2>/dev/null || true)
[ -n "$date" ] || date=$(date -R)
cat >"$src/debian/changelog" <<EOF
$source_name ($version-$revision) unstable; urgency=medium

  * Built from the project's source tree by make deb; the version is the
    Makefile's VERSION.

 -- $maintainer  $date
EOF

# The package's own make runs from debian/rules: nothing of the make that called this script may
# reach it, neither its job server nor its variables (make puts those given on its command line
# into the environment, where the Makefile's `?=` would take them: BUILD=/abs/build would make
# the package's `make clean` remove this very build directory).
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES BUILD CC CFLAGS LDFLAGS PREFIX DESTDIR INSTALL_LIB \
    DEPS_CHECKED VERSION
echo "build-deb: building $source_name $version-$revision in ${work#"$repo"/} (log: ${work#"$repo"/}/build.log)"
if ! (cd "$src" && dpkg-buildpackage -b -us -uc) >"$work/build.log" 2>&1; then
    echo "build-deb: dpkg-buildpackage failed; the end of its log:" >&2
    tail -n 40 "$work/build.log" >&2
    exit 1
fi

# libautoclose for i386, on amd64: the 32-bit library that the package build's make built beside
# the 64-bit one (build/i386/, with the same flags), in a package of its own architecture, so that
# 32-bit programs get it with `dpkg --add-architecture i386` and the amd64 packages depend on no
# 32-bit library. dpkg-buildpackage -a i386 would need the i386 architecture added to this
# machine and its libc6:i386 installed (for dpkg-shlibdeps) and i686 cross binutils; instead the
# package is made here with dpkg-deb from the amd64 libautoclose package: the same control data
# and the same shared files (documentation, lintian overrides, ldconfig trigger, byte for byte,
# which Multi-Arch: same requires), the 32-bit library stripped as dh_strip strips one (no
# -dbgsym), its dependencies from dpkg-shlibdeps. That reads the 32-bit libraries amd64 has
# (libc6-i386, lib32gcc-s1), built from the same sources with the same symbols as their i386
# twins (libc6, libgcc-s1), whose names it then takes. The i386 .deb is not in the build's
# .changes file, which dpkg-buildpackage wrote.
i386_package() {
    local lib32=$src/build/i386/libautoclose.so tree=$src/debian/libautoclose-i386 deb
    local ma shlibs misc depends size epoch
    deb=$work/libautoclose_$version-${revision}_amd64.deb
    ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
    rm -rf "$tree"
    dpkg-deb -R "$deb" "$tree"
    [ -f "$tree/usr/lib/$ma/libautoclose.so" ] || {
        echo "build-deb: the amd64 libautoclose package has no usr/lib/$ma/libautoclose.so" >&2
        return 1
    }
    rm -r "${tree:?}/usr/lib/$ma"
    # The musl library is amd64's: a 32-bit one is not built.
    rm -rf "${tree:?}/usr/lib/${ma/-gnu/-musl}"
    install -d -m 0755 "$tree/usr/lib/i386-linux-gnu"
    install -m 0644 "$lib32" "$tree/usr/lib/i386-linux-gnu/libautoclose.so"
    strip --remove-section=.comment --remove-section=.note --strip-unneeded \
        "$tree/usr/lib/i386-linux-gnu/libautoclose.so"
    # Its entries in the preload tree, instead of amd64's (the names Debian's 32-bit loaders
    # expand $LIB to: lib/i386-linux-gnu for libc6:i386, lib32 for libc6-i386).
    rm -rf "${tree:?}/usr/lib/libautoclose"
    "$src/scripts/preload-tree.sh" "$tree/usr/lib/libautoclose" \
        "lib/i386-linux-gnu=$tree/usr/lib/i386-linux-gnu/libautoclose.so" \
        "lib32=$tree/usr/lib/i386-linux-gnu/libautoclose.so"
    epoch=$(cd "$src" && dpkg-parsechangelog -STimestamp)
    touch -h -d "@$epoch" "$tree/usr/lib/i386-linux-gnu/libautoclose.so" "$tree/usr/lib/i386-linux-gnu"
    find "$tree/usr/lib/libautoclose" -exec touch -h -d "@$epoch" {} +

    shlibs=$(cd "$src" && dpkg-shlibdeps -O -e"$tree/usr/lib/i386-linux-gnu/libautoclose.so" \
        2>"$work/i386-shlibdeps.log") || {
        echo "build-deb: dpkg-shlibdeps failed on the 32-bit library: $(cat "$work/i386-shlibdeps.log")" >&2
        return 1
    }
    shlibs=${shlibs#shlibs:Depends=}
    depends=$(sed -E 's/, /\n/g' <<<"$shlibs" | sed -E 's/^lib32/lib/; s/^([a-z0-9.+]+)-i386( |$)/\1\2/' |
        LC_ALL=C sort | paste -sd, | sed 's/,/, /g')
    [[ -n $depends && $depends != *lib32* && $depends != *-i386* ]] || {
        echo "build-deb: no i386 package for the 32-bit library's dependencies: $shlibs" >&2
        return 1
    }
    misc=$(sed -n 's/^misc:Depends=//p' "$src/debian/libautoclose.substvars")
    # Installed-Size as dpkg-gencontrol counts it: each file in KiB rounded up, 1 per directory.
    size=$(cd "$tree" && find . -path ./DEBIAN -prune -o ! -name . -printf '%y %s\n' |
        awk '{ n += ($1 == "f") ? int(($2 + 1023) / 1024) : 1 } END { print n }')
    sed -i -e 's/^Architecture: .*/Architecture: i386/' \
        -e "s/^Depends: .*/Depends: $depends${misc:+, $misc}/" \
        -e "s/^Installed-Size: .*/Installed-Size: $size/" "$tree/DEBIAN/control"
    (cd "$tree" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z |
        xargs -0 md5sum) >"$tree/DEBIAN/md5sums"
    SOURCE_DATE_EPOCH=$epoch dpkg-deb --root-owner-group --build "$tree" \
        "$work/libautoclose_$version-${revision}_i386.deb" >/dev/null
}
if [ "$(dpkg-architecture -qDEB_HOST_ARCH)" = amd64 ]; then
    if [ -f "$src/build/i386/libautoclose.so" ]; then
        i386_package
    else
        echo "build-deb: no i386 package: the package build made no 32-bit library" \
            "($(grep -m 1 -o '32-bit library skipped.*' "$work/build.log" || echo "see its log"))"
    fi
fi

# Only this build's packages in BUILD/, so that `dpkg -i` of them installs them alone. The
# detached debug symbols (-dbgsym) stay in BUILD/deb/.
debs=()
for p in "${packages[@]}"; do
    rm -f "$build/${p}_"*.deb "$build/${p}-dbgsym_"*.deb
    for d in "$work/${p}_$version-${revision}_"*.deb; do
        [ ! -e "$d" ] || debs+=("$d")
    done
done
[ ${#debs[@]} -gt 0 ] || {
    echo "build-deb: dpkg-buildpackage made no .deb" >&2
    exit 1
}
cp "${debs[@]}" "$build/"
for d in "${debs[@]}"; do
    echo "build-deb: ${build#"$repo"/}/${d##*/}"
done
