#!/usr/bin/env bash
# make deb: builds the Debian binary package with Debian's own tooling (dpkg-buildpackage,
# debhelper). The top level of the project holds no debian/ directory: the source tree is copied
# to BUILD/deb/src, scripts/debian/ is put in place there as debian/, debian/changelog is written
# from the Makefile's VERSION, and the .deb files are copied to BUILD/.
#   scripts/build-deb.sh VERSION BUILD
# DEB_REVISION (default 1) is the Debian revision: the package's version is VERSION-DEB_REVISION.
# The full build log is kept in BUILD/deb/build.log.
set -euo pipefail

[ $# -eq 2 ] || {
    echo "usage: scripts/build-deb.sh VERSION BUILD" >&2
    exit 2
}
version=$1
build=$(realpath -m -- "$2")
revision=${DEB_REVISION:-1}
repo=$(cd "$(dirname "$0")/.." && pwd)
[[ $version =~ ^[0-9][A-Za-z0-9.+~]*$ ]] || {
    echo "build-deb: VERSION '$version' is not a Debian upstream version (digits first)" >&2
    exit 2
}
[[ $revision =~ ^[A-Za-z0-9.+~]+$ ]] || {
    echo "build-deb: DEB_REVISION '$revision' is not a Debian revision" >&2
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

# Only this build's packages in BUILD/, so that `dpkg -i BUILD/*.deb` installs them alone. The
# detached debug symbols (-dbgsym) stay in BUILD/deb/.
mapfile -t packages < <(sed -n 's/^Package: *//p' "$src/debian/control")
debs=()
for p in "${packages[@]}"; do
    rm -f "$build/${p}_"*.deb "$build/${p}-dbgsym_"*.deb
    debs+=("$work/${p}_$version-${revision}_"*.deb)
done
[ -e "${debs[0]}" ] || {
    echo "build-deb: dpkg-buildpackage made no .deb" >&2
    exit 1
}
cp "${debs[@]}" "$build/"
for d in "${debs[@]}"; do
    echo "build-deb: ${build#"$repo"/}/${d##*/}"
done
