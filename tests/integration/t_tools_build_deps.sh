#!/usr/bin/env bash
# The build needs only the build's Debian packages, and installs nothing: plain make (as root
# too) has scripts/install-deps.sh check gcc, make, libc6-dev, uthash-dev and libmicrohttpd-dev
# and, when one is missing, name it with the apt-get command and stop, without running apt-get or
# sudo and before compiling anything. Installing is asked for: make deps installs the build's
# packages; each test target (make test, test-asan, ..., test-deb, test-vm, test-image,
# cross-aarch64) installs its own, so that CI's suites still run on a fresh machine; make deb and
# make image only check their tools.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tools_lib.sh
. "$(dirname "$0")/tools_lib.sh"

command -v make >/dev/null || skip "make is not installed"
BUILD_PACKAGES="gcc make libc6-dev uthash-dev libmicrohttpd-dev"

# installer_calls TARGET...: the scripts/install-deps.sh command lines that `make -n TARGET`
# would run (its options only), one per line. make -n runs nothing but sub-makes (which are
# dry runs themselves) and the 32-bit toolchain's probe, in a scratch BUILD.
installer_calls() {
    make -n -C "$REPO" --no-print-directory BUILD="$TMP/dry" "$@" >"$TMP/dry.out" 2>&1 ||
        fail "make -n $*: $(tail -n 5 "$TMP/dry.out")"
    { grep -o 'install-deps\.sh[^;|&)]*' "$TMP/dry.out" || true; } |
        sed -E 's/^install-deps\.sh ?//; s/ +$//' | sort -u
}

# The build's dry run: the only call is the check of the build's packages.
assert_eq "--check --build" "$(installer_calls)" "install-deps.sh calls of a dry run of plain make"
assert_eq "--check --build" "$(installer_calls all install)" "install-deps.sh calls of make -n all install"
assert_eq "--check --build --deb" "$(installer_calls deb)" "install-deps.sh calls of make -n deb"
assert_eq "--build --lib32" "$(installer_calls deps)" "install-deps.sh calls of make -n deps"

# The test targets install what they need, with the test tools: the same call for each, plus
# the packaging tools for test-deb, qemu for test-vm; cross-aarch64 its cross compiler.
tests_call="--check-or-install --build --lib32 --test"
for target in test unit integration demo test-asan test-tsan test-valgrind test-servers fuzz \
    bench bench-smoke; do
    assert_eq "$tests_call" "$(installer_calls "$target")" "install-deps.sh calls of make -n $target"
done
assert_eq "$(printf '%s\n' "--check-or-install --deb --deb-test" "$tests_call" | sort)" \
    "$(installer_calls test-deb)" "install-deps.sh calls of make -n test-deb"
assert_eq "$(printf '%s\n' "--check-or-install --vm" "$tests_call" | sort)" \
    "$(installer_calls test-vm)" "install-deps.sh calls of make -n test-vm"
assert_eq "--check-or-install --build --cross" "$(installer_calls cross-aarch64)" \
    "install-deps.sh calls of make -n cross-aarch64"
# make image only checks for umoci; make test-image installs it and podman, then makes the image.
assert_eq "--check --image" "$(installer_calls image)" "install-deps.sh calls of make -n image"
assert_eq "$(printf '%s\n' "--check --image" "--check-or-install --image --image-test" "$tests_call" | sort)" \
    "$(installer_calls test-image)" "install-deps.sh calls of make -n test-image"
echo "  make -n: the build only checks (--check --build); each test target installs its own"

# Plain make on a machine where no package is installed (a dpkg-query that finds none), with an
# apt-get and a sudo that only note that they were called.
fake=$TMP/fakebin
mkdir -p "$fake"
printf '#!/bin/sh\nexit 1\n' >"$fake/dpkg-query"
for tool in apt-get sudo; do
    printf '#!/bin/sh\necho "%s $*" >>"%s/installer.calls"\nexit 1\n' "$tool" "$TMP" >"$fake/$tool"
done
chmod +x "$fake"/*
rc=0
PATH="$fake:$PATH" timeout 120 make -C "$REPO" --no-print-directory BUILD="$TMP/build" \
    >"$TMP/make.out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "make succeeded with none of the build's packages installed: $(cat "$TMP/make.out")"
[ ! -s "$TMP/installer.calls" ] || fail "make ran an installer: $(cat "$TMP/installer.calls")"
listed=$(sed -n 's/^install-deps: missing Debian packages for build: //p' "$TMP/make.out")
assert_eq "$BUILD_PACKAGES" "$listed" "the packages plain make says are missing"
grep -qE "^install-deps: install them with: (sudo )?apt-get install $BUILD_PACKAGES( |$)" "$TMP/make.out" ||
    fail "make does not give the apt-get command: $(cat "$TMP/make.out")"
[ -z "$(find "$TMP/build" -name '*.o' 2>/dev/null)" ] ||
    fail "make compiled before its packages were checked: $(find "$TMP/build" -name '*.o' | head -n 3)"
echo "  plain make$([ "$(id -u)" -ne 0 ] || echo " as root"), nothing installed: exit $rc, no installer run:"
sed -n 's/^install-deps: /    /p' "$TMP/make.out"
pass "the build checks only gcc, make, libc6-dev, uthash-dev and libmicrohttpd-dev and installs nothing; the test targets install theirs"
