#!/usr/bin/env bash
# The preload tree (build/preload, scripts/preload-tree.sh) through glibc loaders that expand $LIB
# differently: Debian's (lib/x86_64-linux-gnu), upstream's and Fedora's (lib64), Arch's (lib).
# The latter two are this machine's own loader with its $LIB string patched, as a vendor's
# bundled runtime or another distribution's program brings one. Each must load the native
# library from LD_PRELOAD='<tree>/$LIB/libautoclose.so' and print nothing: a name the tree
# lacks costs the program its protection and puts a loader's line on its stderr.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tools_lib.sh
. "$(dirname "$0")/tools_lib.sh"
need_shim
[[ $AUTOCLOSE_LIB != *" "* ]] ||
    skip "a sanitizer's runtime is preloaded with the library ($AUTOCLOSE_LIB), which the" \
        "tree's value alone cannot load"
use_wrapper
tree=$(readlink -f "$(dirname "$AUTOCLOSE")/../build/preload")
[ -d "$tree" ] || fail "no preload tree at $tree (make builds it)"
lib=$(readlink -f "${AUTOCLOSE_LIB##* }")
loader=$(readlink -f /lib64/ld-linux-x86-64.so.2)
[ -x "$loader" ] || skip "no 64-bit glibc loader at /lib64/ld-linux-x86-64.so.2"
debian_lib=$LIB64_EXPANSION
# The offset of the loader's $LIB string, NUL-terminated (awk reads to the end: no SIGPIPE).
off=$(strings -a -t x "$loader" | awk -v s="$debian_lib" '$2 == s && !n++ { print $1 }')
[ -n "$off" ] || skip "this loader has no \$LIB string '$debian_lib' to patch"

for expansion in "$debian_lib" lib64 lib; do
    copy=$TMP/ld-${expansion//\//-}.so
    cp "$loader" "$copy"
    [ "$expansion" = "$debian_lib" ] ||
        printf '%s\0' "$expansion" | dd of="$copy" bs=1 seek=$((0x$off)) conv=notrunc status=none
    chmod +x "$copy"
    run_rc rc env LD_PRELOAD="$tree/\$LIB/libautoclose.so" "$copy" /bin/cat /proc/self/maps
    assert_eq 0 "$rc" "exit status under a loader expanding \$LIB to $expansion"
    grep -qF "$lib" "$TMP/rc.out" || fail "a loader expanding \$LIB to $expansion did not load $lib"
    [ ! -s "$TMP/rc.err" ] || fail "a loader expanding \$LIB to $expansion wrote: $(cat "$TMP/rc.err")"
    echo "  \$LIB=$expansion: $lib loaded, nothing on stderr"
done
pass "the preload tree serves glibc loaders expanding \$LIB to $debian_lib, lib64 and lib"
