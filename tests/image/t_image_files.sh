#!/usr/bin/env bash
# make image's archive ($IMAGE), read without a container runtime. An OCI layout (oci-layout,
# index.json, blobs named by their digests, each blob's content matching its name) with one
# image, named autoclosed:VERSION, of one layer. The layer holds exactly autoclosed (the very
# file make built), the shared objects this machine's ldd lists for it and for libmicrohttpd
# (loaded for --metrics-listen, which the image holds too) and its ELF interpreter,
# at those paths, and the directories above them: nothing else (no shell), every entry root's
# and without a write bit. Its config: the daemon the entrypoint, --ports 10540,10541 the
# command, user 0:0, the Makefile's VERSION in org.opencontainers.image.version, this machine's
# architecture. The layer unpacked, the daemon in it runs from there alone (chroot, as root;
# otherwise through the image's own loader and library path) and says its VERSION. Built again
# from the same daemon and date, the archive is the same, byte for byte.
#   IMAGE=build/autoclosed-image.tar tests/image/t_image_files.sh
# shellcheck source=../integration/lib.sh
. "$(dirname "$0")/../integration/lib.sh"
# shellcheck source=../integration/daemon_lib.sh
. "$(dirname "$0")/../integration/daemon_lib.sh"
need_daemon
: "${IMAGE:?IMAGE must name the archive make image wrote}"
[ -s "$IMAGE" ] || fail "no image at $IMAGE (make image)"
VERSION=$(make_version)
# The unpacked layer's directories have no write bit: give them one back before the clean-up.
trap 'chmod -R u+w "$TMP" 2>/dev/null; cleanup' EXIT

# The archive read with Python's tarfile and json: its checks, then the layer's entries
# ("TYPE MODE UID GID PATH"), the config's fields, and the layer unpacked into $TMP/rootfs.
python3 - "$IMAGE" "$TMP" >"$TMP/oci.out" 2>&1 <<'EOF' || fail "the archive is not a sound OCI layout: $(cat "$TMP/oci.out")"
import gzip, hashlib, io, json, sys, tarfile

archive, tmp = sys.argv[1], sys.argv[2]
arc = tarfile.open(archive)
names = set(arc.getnames())


def blob(descriptor):
    digest = descriptor["digest"]
    algo, hexd = digest.split(":")
    data = arc.extractfile("blobs/%s/%s" % (algo, hexd)).read()
    assert algo == "sha256" and hashlib.sha256(data).hexdigest() == hexd, "blob %s: wrong digest" % digest
    assert len(data) == descriptor["size"], "blob %s: wrong size" % digest
    return data


layout = json.loads(arc.extractfile("oci-layout").read())
assert layout == {"imageLayoutVersion": "1.0.0"}, "oci-layout: %r" % layout
index = json.loads(arc.extractfile("index.json").read())
assert len(index["manifests"]) == 1, "index.json: %d manifests, not one" % len(index["manifests"])
entry = index["manifests"][0]
manifest = json.loads(blob(entry))
config = json.loads(blob(manifest["config"]))
assert len(manifest["layers"]) == 1, "%d layers, not one" % len(manifest["layers"])
compressed = blob(manifest["layers"][0])
layer = tarfile.open(fileobj=io.BytesIO(compressed), mode="r:gz")
raw = gzip.decompress(compressed)
assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(raw).hexdigest()], "diff_id"
blobs = {n for n in names if n.startswith("blobs/sha256/")}
used = {"blobs/sha256/" + d["digest"].split(":")[1] for d in (entry, manifest["config"], manifest["layers"][0])}
assert blobs == used, "blobs no manifest names: %s" % sorted(blobs - used)
with open(tmp + "/entries", "w") as out:
    for e in layer.getmembers():
        kind = "dir" if e.isdir() else "file" if e.isfile() else "other"
        out.write("%s %o %d %d /%s\n" % (kind, e.mode, e.uid, e.gid, e.name.lstrip("./")))
layer.extractall(tmp + "/rootfs", numeric_owner=True)
c = config["config"]
with open(tmp + "/config", "w") as out:
    out.write("ref=%s\n" % entry.get("annotations", {}).get("org.opencontainers.image.ref.name"))
    out.write("entrypoint=%s\n" % json.dumps(c.get("Entrypoint")))
    out.write("cmd=%s\n" % json.dumps(c.get("Cmd")))
    out.write("user=%s\n" % c.get("User"))
    out.write("version=%s\n" % c.get("Labels", {}).get("org.opencontainers.image.version"))
    out.write("arch=%s\n" % config.get("architecture"))
    out.write("os=%s\n" % config.get("os"))
    out.write("created=%s\n" % config.get("created"))
    out.write("env=%s\n" % json.dumps(c.get("Env")))
EOF
field() { sed -n "s/^$1=//p" "$TMP/config"; }

# What it must hold, from this machine's own tools.
interp=$(readelf -lW "$AUTOCLOSED" | sed -n 's/.*\[Requesting program interpreter: \(.*\)\]$/\1/p')
[ -n "$interp" ] || fail "autoclosed names no ELF interpreter"
{
    echo /usr/sbin/autoclosed
    echo "$interp"
    mhd=$(readlink -f "$(dirname "$(cc -print-file-name=libmicrohttpd.so.12)")")/libmicrohttpd.so.12
    echo "$mhd"
    { ldd "$AUTOCLOSED" && ldd "$mhd"; } |
        awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'
} | sort -u >"$TMP/want.files"
# ... and the directories above them.
while read -r f; do
    d=$(dirname "$f")
    while [ "$d" != / ]; do
        echo "$d"
        d=$(dirname "$d")
    done
done <"$TMP/want.files" | sort -u >"$TMP/want.dirs"
awk '$1 == "file" { print $5 }' "$TMP/entries" | sort >"$TMP/got.files"
awk '$1 == "dir" { print $5 }' "$TMP/entries" | sed 's|/$||' | grep -v '^$' | sort >"$TMP/got.dirs"
echo "  the layer: $(wc -l <"$TMP/got.files") files, $(wc -l <"$TMP/got.dirs") directories:" \
    "$(tr '\n' ' ' <"$TMP/got.files")"
diff "$TMP/want.files" "$TMP/got.files" >"$TMP/files.diff" ||
    fail "the layer's files are not the daemon, its libraries and its loader (< wanted, > in the image): $(cat "$TMP/files.diff")"
diff "$TMP/want.dirs" "$TMP/got.dirs" >"$TMP/dirs.diff" ||
    fail "the layer's directories are not those above its files: $(cat "$TMP/dirs.diff")"
[ "$(awk '$1 == "other"' "$TMP/entries" | wc -l)" -eq 0 ] ||
    fail "the layer holds links or devices: $(awk '$1 == "other"' "$TMP/entries")"
bad=$(awk '$3 != 0 || $4 != 0' "$TMP/entries")
[ -z "$bad" ] || fail "entries not owned by root: $bad"
bad=$(awk '{ m = substr($2, length($2) - 2); if (m ~ /[2367]/) print }' "$TMP/entries")
[ -z "$bad" ] || fail "entries with a write bit: $bad"
echo "  every entry root's, none writable; no shell: $([ ! -e "$TMP/rootfs/bin/sh" ] && echo none)"
cmp -s "$AUTOCLOSED" "$TMP/rootfs/usr/sbin/autoclosed" || fail "the image's autoclosed is not the one make built"
while read -r f; do
    cmp -s "$f" "$TMP/rootfs$f" || fail "the image's $f is not this machine's"
done < <(grep -vx /usr/sbin/autoclosed "$TMP/want.files")

assert_eq "autoclosed:$VERSION" "$(field ref)" "its name in index.json"
assert_eq '["/usr/sbin/autoclosed"]' "$(field entrypoint)" "entrypoint"
assert_eq '["--ports", "10540,10541"]' "$(field cmd)" "default arguments"
assert_eq 0:0 "$(field user)" "user"
assert_eq "$VERSION" "$(field version)" "label org.opencontainers.image.version"
assert_eq "$(dpkg --print-architecture 2>/dev/null || echo amd64)" "$(field arch)" "architecture"
assert_eq linux "$(field os)" "os"
assert_eq null "$(field env)" "environment (none: no PATH, no shell)"

# The daemon, from the unpacked layer alone.
if [ "$(id -u)" -eq 0 ]; then
    how="chroot into the layer"
    said=$(timeout 20 env -i "$(command -v chroot)" "$TMP/rootfs" /usr/sbin/autoclosed --version 2>&1) || fail "$how: $said"
else
    how="the layer's own loader and libraries"
    said=$(timeout 20 env -i "$TMP/rootfs$interp" --inhibit-cache --library-path \
        "$(dirname "$TMP/rootfs$(grep -m 1 libc.so "$TMP/want.files")")" \
        "$TMP/rootfs/usr/sbin/autoclosed" --version 2>&1) || fail "$how: $said"
fi
assert_eq "autoclosed $VERSION" "$said" "autoclosed --version, $how"

# The same daemon and date give the same archive.
epoch=$(date -u -d "$(field created)" +%s) || fail "the config's date '$(field created)' is not a date"
SOURCE_DATE_EPOCH=$epoch "$REPO/scripts/image/build.sh" "$AUTOCLOSED" "$VERSION" "$TMP/again.tar" \
    >"$TMP/again.out" 2>&1 || fail "scripts/image/build.sh failed: $(cat "$TMP/again.out")"
assert_eq "$(sha256sum <"$IMAGE")" "$(sha256sum <"$TMP/again.tar")" "the archive built again (sha256)"

pass "the image holds the daemon and the $(($(wc -l <"$TMP/want.files") - 1)) shared objects it needs, nothing else; it runs; it builds the same twice"
