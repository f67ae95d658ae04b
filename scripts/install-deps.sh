#!/usr/bin/env bash
# The Debian packages that libautoclose's build and each of its suites need, by group: checks
# them, and installs those missing when asked to.
#   scripts/install-deps.sh [GROUP...]                    install what is missing (root or sudo -n)
#   scripts/install-deps.sh --check GROUP...              never installs: names what is missing
#                                                         and the apt-get command, and fails
#   scripts/install-deps.sh --check-or-install GROUP...   quiet when all is there; installs if it
#                                                         can, otherwise prints that command and fails
# GROUPs (without one: --build --lib32 --test, what make test needs):
#   --build      what make builds with: gcc, make, libc6-dev, uthash-dev, libmicrohttpd-dev (make
#                checks these only)
#   --lib32      on amd64, the 32-bit library's toolchain (make builds that library where it is
#                there); nothing elsewhere. make deps installs --build --lib32.
#   --test       make test and the other suites (each suite installs its own extras itself)
#   --cross      make cross-aarch64's cross compiler
#   --deb        make deb's packaging tools; --deb-test what make test-deb adds
#   --vm         make test-vm
#   --image      make image's tool; --image-test what make test-image adds
set -euo pipefail

# build: the compiler, make, glibc's headers, uthash (the library's hash tables), and
# libmicrohttpd (autoclosed --metrics-listen's HTTP server).
build_packages=(gcc make libc6-dev uthash-dev libmicrohttpd-dev)

# lib32: the 32-bit x86 library that make builds beside the 64-bit one on amd64: gcc-N-multilib
# for the gcc installed (12 on Debian 12) and libc6-dev-i386, for gcc -m32; not the gcc-multilib
# package, which is only a /usr/include/asm link (made by the Makefile instead) and conflicts
# with every cross compiler. uthash is headers for every architecture.
lib32_packages=()
is_amd64=no
[[ $(dpkg --print-architecture 2>/dev/null) != amd64 ]] || is_amd64=yes
if [[ $is_amd64 == yes ]]; then
  gcc_major=$(gcc -dumpversion 2>/dev/null | cut -d. -f1 || true)
  lib32_packages=("gcc-${gcc_major:-12}-multilib" libc6-dev-i386)
fi

# test: unit tests (libcmocka-dev, pkg-config), integration tests (iproute2 for ss and ip,
# strace, python3, perl, procps; util-linux for setsid and for unshare, which gives each test a
# network namespace of its own; gdb records where a forked child hung), style (clang-format),
# scripts (shellcheck), man pages (groff-base: groff checks them for warnings), the
# hardened-unit test (libseccomp-dev: its launcher installs the seccomp filter; systemd:
# systemd-analyze lists the system calls of @system-service), autoclosed's tests (golang-go: a
# leaking server in Go, whose runtime makes its own system calls so that no preloaded library can
# help it; libc6-dev's libc.a also builds a static one), the musl build and its tests
# (musl-tools: musl-gcc builds the musl library and the servers linked against musl), the counters'
# test (prometheus-node-exporter: Debian's node_exporter reads both kinds of stats file), the
# metrics endpoint's tests (prometheus: a real Prometheus scrapes autoclosed, and promtool checks
# and unit-tests the alerting rules; curl asks both over HTTP).
test_packages=(libcmocka-dev pkg-config iproute2 strace python3 perl procps util-linux gdb
               clang-format shellcheck groff-base libseccomp-dev systemd golang-go musl-tools
               prometheus-node-exporter prometheus curl)
# podman: t_container_podman runs the README's podman recipe for the library in a container
# (crun, conmon and the image tools come with it; the test imports its own image, no registry).
test_packages+=(podman)
# elfutils: t_tools_report symbolises with eu-addr2line too, autoclose report's fallback where
# binutils' addr2line is missing.
test_packages+=(elfutils)

# cross: make cross-aarch64's 64-bit ARM cross compiler and its C library.
cross_packages=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)

# deb: make deb's packaging tools: dpkg-dev for dpkg-buildpackage, debhelper for the rules' dh
# at compat level 13 (no fakeroot: the package declares Rules-Requires-Root: no, so a user who
# is not root builds it as is). deb-test: lintian to check the packages, and man-db so that make
# test-deb can look the installed pages up with man.
deb_packages=(dpkg-dev debhelper musl-tools)
deb_test_packages=(lintian man-db)

# vm: what make test-vm needs besides: qemu-system-x86 to boot Debian's own kernel (which
# tests/vm/run.sh downloads with apt-get download, and never installs), busybox-static for the
# initramfs that mounts the host's file system in it.
vm_packages=(qemu-system-x86 busybox-static)

# image: make image's tool: umoci, which builds an OCI image from a directory with no daemon, no
# root and no container storage (scripts/image/build.sh). image-test: make test-image's runtime,
# podman with runc (crun, podman's default here, refuses a host whose cgroup v2 tree has
# controllers beside v1's; runc is also Docker's and containerd's runtime), and python3-yaml to
# read the DaemonSet manifest.
image_packages=(umoci)
image_test_packages=(podman runc python3-yaml)

mode=install
packages=() groups=()
for arg in "$@"; do
  case $arg in
  --check) mode=check ;;
  --check-or-install) mode=check-or-install ;;
  --build) packages+=("${build_packages[@]}") groups+=(build) ;;
  --lib32) packages+=("${lib32_packages[@]}") groups+=(lib32) ;;
  --test) packages+=("${test_packages[@]}") groups+=(test) ;;
  --cross) packages+=("${cross_packages[@]}") groups+=(cross) ;;
  --deb) packages+=("${deb_packages[@]}") groups+=(deb) ;;
  --deb-test) packages+=("${deb_test_packages[@]}") groups+=(deb-test) ;;
  --vm) packages+=("${vm_packages[@]}") groups+=(vm) ;;
  --image) packages+=("${image_packages[@]}") groups+=(image) ;;
  --image-test) packages+=("${image_test_packages[@]}") groups+=(image-test) ;;
  *)
    echo "install-deps: unknown option '$arg' (--check, --check-or-install; groups: --build," \
      "--lib32, --test, --cross, --deb, --deb-test, --vm, --image, --image-test)" >&2
    exit 2
    ;;
  esac
done
if [[ ${#groups[@]} -eq 0 ]]; then
  packages=("${build_packages[@]}" "${lib32_packages[@]}" "${test_packages[@]}")
  groups=(build lib32 test)
fi
what=$(IFS=+ && echo "${groups[*]}")

if ! command -v dpkg-query >/dev/null; then
  # Not Debian: nothing to check against; the compiler says what is missing.
  if [[ $mode == check ]]; then
    echo "install-deps: no dpkg-query (not Debian?): the packages for $what were not checked"
    exit 0
  fi
  echo "install-deps: no dpkg-query (not Debian?): install the packages for $what by hand:" \
    "${packages[*]}" >&2
  exit 1
fi

# One dpkg-query for all of them: a package counts when some architecture of it is installed.
installed=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${packages[@]}" 2>/dev/null |
  awk '$2 == "installed" { print $1 }' || true)
missing=()
for p in "${packages[@]}"; do
  grep -qxF -- "$p" <<<"$installed" || [[ " ${missing[*]} " == *" $p "* ]] || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  [[ $mode != install ]] || echo "install-deps: everything for $what is installed"
  exit 0
fi

command="apt-get install ${missing[*]}"
[[ $(id -u) -eq 0 ]] || command="sudo $command"
if [[ $mode == check ]]; then
  hint=
  [[ $what != build ]] || hint=" (or: make deps)"
  echo "install-deps: missing Debian packages for $what: ${missing[*]}" >&2
  echo "install-deps: install them with: $command$hint" >&2
  exit 1
fi

echo "install-deps: missing Debian packages for $what: ${missing[*]}"
if [[ $(id -u) -eq 0 ]]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  echo "install-deps: run as root: apt-get update && apt-get install -y ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
