#!/usr/bin/env bash
# Installs the Debian packages libautoclose's build, tests and demo need.
#   scripts/install-deps.sh                      install whatever is missing (needs root or sudo)
#   scripts/install-deps.sh --check-or-install   quiet when all is there; installs if it can,
#                                                otherwise prints the exact command and fails
#   ... --deb                                    also the packaging tools (make deb, make test-deb)
#   ... --vm                                     also what make test-vm boots (qemu, busybox)
set -euo pipefail

# What each package is for: build (gcc make libc6-dev uthash-dev), unit tests (libcmocka-dev,
# pkg-config), integration tests (iproute2 for ss and ip, strace, python3, perl, procps;
# util-linux for setsid and for unshare, which gives each test a network namespace of its own;
# gdb records where a forked child hung), style (clang-format), scripts (shellcheck), man pages
# (groff-base: groff checks them for warnings), the hardened-unit test (libseccomp-dev: its
# launcher installs the seccomp filter; systemd: systemd-analyze lists the system calls of
# @system-service), autoclosed's tests (golang-go: a leaking server in Go, whose runtime makes its own system calls
# so that no preloaded library can help it; libc6-dev's libc.a also builds a static one), the
# wrapper's tests (musl-tools: musl-gcc builds a server whose loader is musl's, which the wrapper
# must refuse).
packages=(gcc make libc6-dev uthash-dev libcmocka-dev pkg-config iproute2 strace python3 perl
          procps util-linux gdb clang-format shellcheck groff-base libseccomp-dev systemd golang-go
          musl-tools)
# On amd64 only: the 32-bit x86 library that make builds beside the 64-bit one, and its test
# (gcc-N-multilib for the gcc installed, 12 on Debian 12, and libc6-dev-i386, for gcc -m32; not
# the gcc-multilib package, which is only a /usr/include/asm link, made by the Makefile instead,
# and which conflicts with every cross compiler), and make cross-aarch64's cross-build
# (gcc-aarch64-linux-gnu, libc6-dev-arm64-cross). uthash is headers for every architecture; the
# unit tests (cmocka) are not built 32-bit.
if [[ $(dpkg --print-architecture 2>/dev/null) == amd64 ]]; then
  gcc_major=$(gcc -dumpversion 2>/dev/null | cut -d. -f1 || true)
  packages+=("gcc-${gcc_major:-12}-multilib" libc6-dev-i386 gcc-aarch64-linux-gnu
             libc6-dev-arm64-cross)
fi

# With --deb, what make deb and make test-deb need besides: Debian's packaging tools (dpkg-dev
# for dpkg-buildpackage, debhelper for the rules' dh at compat level 13; no fakeroot: the package
# declares Rules-Requires-Root: no, so a user who is not root builds it as is), lintian to check
# the package, and man-db so that the test can look the installed pages up with man.
deb_packages=(dpkg-dev debhelper lintian man-db)

# With --vm, what make test-vm needs besides: qemu-system-x86 to boot Debian's own kernel (which
# tests/vm/run.sh downloads with apt-get download, and never installs), busybox-static for the
# initramfs that mounts the host's file system in it.
vm_packages=(qemu-system-x86 busybox-static)

check_only=0
for arg in "$@"; do
  case $arg in
  --check-or-install) check_only=1 ;;
  --deb) packages+=("${deb_packages[@]}") ;;
  --vm) packages+=("${vm_packages[@]}") ;;
  *)
    echo "install-deps: unknown option '$arg' (--check-or-install, --deb, --vm)" >&2
    exit 2
    ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ $status == "install ok installed" ]] || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  [[ $check_only == 1 ]] || echo "install-deps: everything is installed"
  exit 0
fi

echo "install-deps: missing Debian packages: ${missing[*]}"
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
