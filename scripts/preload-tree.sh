#!/usr/bin/env bash
# preload-tree.sh DIR ENTRY=LIBRARY...: makes DIR the library's preload tree, one relative symlink
# DIR/ENTRY/libautoclose.so -> LIBRARY per pair whose LIBRARY exists (and none where it does not),
# so that one value, LD_PRELOAD='DIR/$LIB/libautoclose.so', names each loader's own build:
# glibc's loader expands $LIB to its library directory (lib/x86_64-linux-gnu, lib/i386-linux-gnu,
# or lib32 for Debian's libc6-i386), musl's does not expand it and opens DIR/$LIB/ as it is
# named. A program of either C library that starts one of the other then runs protected, where a
# single library's path would make glibc's loader print a line on its stderr, or musl's stop it.
#   scripts/preload-tree.sh build/preload 'lib/x86_64-linux-gnu=build/libautoclose.so' \
#       'lib32=build/i386/libautoclose.so' '$LIB=build/musl/libautoclose.so'
# make and make install run it (install with DESTDIR in both paths: the links are relative, so
# they hold once the staging root is the real one).
set -euo pipefail

[ $# -ge 2 ] || {
    echo "usage: preload-tree.sh DIR ENTRY=LIBRARY..." >&2
    exit 2
}
dir=$1
shift
for pair in "$@"; do
    entry=${pair%%=*}
    lib=${pair#*=}
    [ -n "$entry" ] && [ "$entry" != "$pair" ] || {
        echo "preload-tree.sh: '$pair' is not ENTRY=LIBRARY" >&2
        exit 2
    }
    link=$dir/$entry/libautoclose.so
    if [ -f "$lib" ]; then
        mkdir -p -- "$dir/$entry"
        ln -sfn -- "$(realpath -m --relative-to="$dir/$entry" -- "$lib")" "$link"
    else
        rm -f -- "$link"
    fi
done
