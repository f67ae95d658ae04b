#!/usr/bin/env bash
# make image: an OCI image of autoclosed with no distribution base: the daemon and exactly the
# shared objects it links (ldd's list and its ELF interpreter) and libmicrohttpd with its own
# (loaded for --metrics-listen), no shell, every file and
# directory read-only, the daemon the entrypoint; written as an OCI archive (a tar of an OCI
# image layout: podman load, skopeo copy oci-archive:..., docker load from Docker 25 on).
#   scripts/image/build.sh DAEMON VERSION OUT.tar
# Built with umoci (Debian: umoci): it needs no daemon, no root and no container storage, and
# writes a plain OCI layout (the layer itself is tar's). The layer's files, the config's dates and
# the archive's entries all take SOURCE_DATE_EPOCH (default: 0), so the same daemon gives the
# same image digest.
set -euo pipefail

[ $# -eq 3 ] || {
    echo "usage: $0 DAEMON VERSION OUT.tar" >&2
    exit 2
}
daemon=$1 version=$2 out=$3
epoch=${SOURCE_DATE_EPOCH:-0}
for tool in umoci ldd readelf tar; do
    command -v "$tool" >/dev/null || {
        echo "image: no $tool (scripts/install-deps.sh --image installs what make image needs)" >&2
        exit 1
    }
done
[ -x "$daemon" ] || {
    echo "image: '$daemon' is not a built autoclosed" >&2
    exit 1
}

work=$(mktemp -d "${TMPDIR:-/tmp}/autoclosed-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/rootfs

# put SRC PATH: SRC's content (links followed) at PATH in the image.
put() {
    mkdir -p "$root$(dirname "$2")"
    cp -L -- "$1" "$root$2"
}

put "$daemon" /usr/sbin/autoclosed
# The interpreter at the path the ELF names (PT_INTERP), and each library at the path the
# loader found it (ldd): that directory is in the loader's built-in search list, so the image
# needs no ld.so.cache. A library ldd cannot find fails the build.
interp=$(readelf -lW "$daemon" | sed -n 's/.*\[Requesting program interpreter: \(.*\)\]$/\1/p')
if [ -n "$interp" ]; then
    put "$interp" "$interp"
fi
# And libmicrohttpd, which the daemon loads for --metrics-listen (dlopen: ldd does not list it),
# with what it links: found where the compiler's linker would find it.
mhd=$("${CC:-cc}" -print-file-name=libmicrohttpd.so.12)
[ -f "$mhd" ] || {
    echo "image: no libmicrohttpd.so.12, which --metrics-listen loads (Debian: libmicrohttpd12)" >&2
    exit 1
}
mhd=$(readlink -f "$(dirname "$mhd")")/libmicrohttpd.so.12
put "$mhd" "$mhd"
{ ldd "$daemon" && ldd "$mhd"; } >"$work/ldd" || true
if grep -q 'not found' "$work/ldd"; then
    echo "image: ldd cannot find a library of $daemon:" >&2
    cat "$work/ldd" >&2
    exit 1
fi
while read -r lib; do
    [ "$lib" = "$interp" ] || put "$lib" "$lib"
done < <(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' "$work/ldd")

# The layer, written by tar rather than umoci insert, whose layers (0.4.7) end 40 bytes short of
# tar's end-of-archive blocks (runtimes read them, tar and Python's tarfile do not): every entry
# root's, read-only (0555), dated SOURCE_DATE_EPOCH, in name order.
(cd "$root" && tar --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner \
    --mode=a-w --format=ustar -cf "$work/layer.tar" -- *)

created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)
layout=$work/oci
# The name in the archive (podman load calls it localhost/autoclosed:VERSION).
tag=autoclosed:$version
umoci init --layout "$layout"
umoci new --image "$layout:$tag"
umoci raw add-layer --image "$layout:$tag" --history.created "$created" \
    --history.created_by "scripts/image/build.sh: autoclosed and the libraries it links" \
    "$work/layer.tar"
umoci config --image "$layout:$tag" --created "$created" --history.created "$created" \
    --history.created_by "scripts/image/build.sh: entrypoint, command, labels" \
    --config.entrypoint /usr/sbin/autoclosed --config.cmd --ports --config.cmd 10540,10541 \
    --config.user 0:0 \
    --config.label org.opencontainers.image.title=autoclosed \
    --config.label org.opencontainers.image.version="$version" \
    --config.label org.opencontainers.image.description="Reclaims half-closed TCP connections (CLOSE_WAIT) of running servers" \
    --config.label org.opencontainers.image.licenses=MIT
umoci gc --layout "$layout"

mkdir -p "$(dirname "$out")"
tar --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner --format=ustar \
    -C "$layout" -cf "$out.tmp" oci-layout index.json blobs
mv -f "$out.tmp" "$out"
echo "image: $out (autoclosed $version, $(find "$root" -type f | wc -l) files)"
