#!/usr/bin/env bash
# Runs integration tests inside a virtual machine that boots Debian 12's own kernel
# (linux-image-amd64, unpacked into BUILD/vm, never installed on the host) with the host's root
# file system and this project mounted read-only: the tests run the programs built here on a
# kernel that may differ from the host's. Its first use is t_i386 on a host whose kernel has no
# IA32 emulation (and so cannot run the 32-bit server the test protects); Debian's kernel has it.
#   tests/vm/run.sh BUILD TEST...     e.g. tests/vm/run.sh build t_i386
# Needs qemu-system-x86 and busybox-static (scripts/install-deps.sh --vm installs them) and, the
# first time, the kernel package from Debian's archive. Exit status: the tests' own.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
project=$(cd "$here/../.." && pwd)
[ $# -ge 2 ] || {
    echo "usage: tests/vm/run.sh BUILD TEST..." >&2
    exit 2
}
build=$(cd "$1" && pwd)
# The guest sees the project, and only it, where the host has it (its /tmp is a fresh tmpfs).
case $build in
"$project"/*) ;;
*)
    echo "test-vm: the build directory must be inside the project ($project), not $build" >&2
    exit 2
    ;;
esac
# Both paths reach the guest on the kernel's command line, which splits at blanks.
case "$project$build" in
*[[:space:],]*)
    echo "test-vm: the project's path must not contain blanks or commas: $project" >&2
    exit 2
    ;;
esac
shift
vm=$build/vm
# The bound of one boot with its tests (each test has 300 s in the guest: tests/vm/init).
VM_BOUND_S=${VM_BOUND_S:-900}

[ "$(dpkg --print-architecture)" = amd64 ] || {
    echo "test-vm: skipped: it boots Debian's amd64 kernel, and this machine is $(dpkg --print-architecture)"
    exit 0
}
for c in qemu-system-x86_64 busybox; do
    command -v "$c" >/dev/null || {
        echo "test-vm: $c is not installed (scripts/install-deps.sh --vm installs it)" >&2
        exit 1
    }
done
busybox=$(command -v busybox)
# The initramfs has no libraries: only busybox-static's busybox runs there.
if od -An -c -N 1024 "$busybox" | tr -d ' \n' | grep -q 'ld-linux'; then
    echo "test-vm: $busybox is linked dynamically (install busybox-static)" >&2
    exit 1
fi

# The kernel: the package linux-image-amd64 depends on, downloaded once and unpacked here.
mkdir -p "$vm"
if [ -z "$(find "$vm/kernel/boot" -name 'vmlinuz-*' -print -quit 2>/dev/null)" ]; then
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/ { print $2; exit }')
    [ -n "$pkg" ] || {
        echo "test-vm: apt-cache knows no linux-image-amd64 (run apt-get update)" >&2
        exit 1
    }
    echo "test-vm: downloading $pkg from Debian's archive"
    rm -rf "$vm/download" "$vm/kernel.tmp" && mkdir -p "$vm/download"
    # As root, apt says in one warning that it downloads without its sandbox user: expected here.
    (cd "$vm/download" && apt-get download -q "$pkg" 2>&1) | grep -v '^W: Download is performed unsandboxed' || true
    deb=$(find "$vm/download" -name '*.deb' -print -quit)
    [ -n "$deb" ] || {
        echo "test-vm: could not download $pkg" >&2
        exit 1
    }
    dpkg-deb -x "$deb" "$vm/kernel.tmp"
    rm -rf "$vm/kernel" "$vm/download"
    mv "$vm/kernel.tmp" "$vm/kernel"
fi
vmlinuz=$(find "$vm/kernel/boot" -name 'vmlinuz-*' -print -quit)
release=${vmlinuz##*/vmlinuz-}
moddir=$vm/kernel/lib/modules/$release

# The initramfs: busybox, /init, and the modules that mount 9p over virtio and answer ss and the
# library's sweep (sock_diag), each after what it depends on (the .modinfo section's depends=).
ramfs=$vm/initramfs
rm -rf "$ramfs" && mkdir -p "$ramfs"/{bin,proc,sys,dev,newroot,modules}
cp "$busybox" "$ramfs/bin/busybox"
cp "$here/init" "$ramfs/init"
chmod 755 "$ramfs/init"
declare -A loaded=()
add_module() {
    local name=$1 file dep
    [ -z "${loaded[$name]:-}" ] || return 0
    loaded[$name]=1
    file=$(find "$moddir/kernel" -name "$name.ko" -print -quit)
    if [ -z "$file" ]; then
        # Built into this kernel: nothing to load.
        grep -q "/$name.ko\$" "$moddir/modules.builtin" && return 0
        echo "test-vm: no module $name in $release" >&2
        exit 1
    fi
    for dep in $(tr '\0' '\n' <"$file" | sed -n 's/^depends=//p' | tr , ' '); do
        add_module "$dep"
    done
    cp "$file" "$ramfs/modules/$name.ko"
    echo "$name" >>"$ramfs/modules/order"
}
for m in virtio_pci 9pnet_virtio 9p tcp_diag udp_diag unix_diag; do add_module "$m"; done
(cd "$ramfs" && find . | busybox cpio -o -H newc 2>/dev/null) | gzip -1 >"$vm/initramfs.cpio.gz"

# Software emulation (TCG): KVM inside this project's CI machines, themselves virtual, was seen to
# hang the guest's kernel before its first line, and a slow test is better than a hung one.
tests=$(
    IFS=,
    echo "$*"
)
echo "test-vm: booting Debian's kernel $release to run: $*"
console=$vm/console.log
rc=0
# The console shows the firmware and the kernel first: only what init says is shown here (the
# whole console stays in $console).
timeout -k 10 "$VM_BOUND_S" qemu-system-x86_64 -accel tcg -m 2048 -smp 2 \
    -nographic -no-reboot -nodefaults -serial stdio -monitor none \
    -kernel "$vmlinuz" -initrd "$vm/initramfs.cpio.gz" \
    -append "console=ttyS0 quiet loglevel=1 panic=-1 ac_project=$project ac_build=$build ac_tests=$tests" \
    -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
    -virtfs "local,path=$project,mount_tag=project,security_model=none,readonly=on,multidevs=remap" \
    </dev/null 2>&1 | sed -u 's/\r$//' | tee "$console" | sed -u -n 's/^.*\(autoclose-vm: \)/\1/; /^autoclose-vm: /,$p' |
    grep --line-buffered -v 'reboot: Power down$' || rc=$?
status=$(sed -n 's/^autoclose-vm: exit \([0-9]*\)$/\1/p' "$console" | tail -n 1)
if [ -z "$status" ]; then
    tail -n 20 "$console" >&2
    echo "test-vm: the VM ended without reporting the tests' status (status $rc; console in $console)" >&2
    exit 1
fi
# A test the VM was booted for must run there: a skip fails.
if [ "$status" = 0 ] && grep -q '^skip  ' "$console"; then
    echo "test-vm: failed: a test skipped in the VM, where it was meant to run" >&2
    exit 1
fi
exit "$status"
