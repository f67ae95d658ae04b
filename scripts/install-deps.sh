#!/usr/bin/env bash
# Installs the Debian packages libautoclose's build, tests and demo need.
#   scripts/install-deps.sh                      install whatever is missing (needs root or sudo)
#   scripts/install-deps.sh --check-or-install   quiet when all is there; installs if it can,
#                                                otherwise prints the exact command and fails
set -euo pipefail

# What each package is for: build (gcc make libc6-dev uthash-dev), unit tests (libcmocka-dev,
# pkg-config), integration tests (iproute2 for ss and ip, strace, python3, perl, procps;
# util-linux for setsid and for unshare, which gives each test a network namespace of its own;
# gdb records where a forked child hung), style (clang-format), scripts (shellcheck), man pages
# (groff-base: groff checks them for warnings), the hardened-unit test (libseccomp-dev: its
# launcher installs the seccomp filter; systemd: systemd-analyze lists the system calls of
# @system-service).
packages=(gcc make libc6-dev uthash-dev libcmocka-dev pkg-config iproute2 strace python3 perl
          procps util-linux gdb clang-format shellcheck groff-base libseccomp-dev systemd)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ $status == "install ok installed" ]] || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  [[ ${1:-} == --check-or-install ]] || echo "install-deps: everything is installed"
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
