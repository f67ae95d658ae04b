#!/usr/bin/env bash
# errno is the program's where the library runs code around it: 0 when main starts (the library's
# constructor probes inherited descriptors, which set it: ENOTSOCK), and unchanged by a successful
# fclose of a stream with no descriptor (fmemopen, open_memstream: the wrapper's fileno set
# EBADF). The glibc library, and the musl one with a musl build of the probe where there is one.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

# probe NAME LIB PROGRAM: the program run with LIB preloaded says errno kept.
probe() {
    local name=$1 lib=$2 prog=$3 rc=0
    LD_PRELOAD=$lib timeout 10 "$prog" >"$TMP/$name.out" 2>"$TMP/$name.err" || rc=$?
    assert_eq 0 "$rc" "$name: exit status"
    sed 's/^/  /' "$TMP/$name.out"
    grep -qx 'main=0' "$TMP/$name.out" || fail "$name: errno is not 0 when main starts"
    grep -qx 'fmemopen=1234 fclose=0' "$TMP/$name.out" || fail "$name: fclose of fmemopen's changed errno"
    grep -qx 'memstream=1234 fclose=0' "$TMP/$name.out" ||
        fail "$name: fclose of open_memstream's changed errno"
}
probe glibc "$AUTOCLOSE_LIB" "$FIXTURES/errno_probe"
said="the glibc library"
if [ -f "${AUTOCLOSE_LIBMUSL:-}" ] && [ -x "$FIXTURES_MUSL/errno_probe" ]; then
    probe musl "$AUTOCLOSE_LIBMUSL" "$FIXTURES_MUSL/errno_probe"
    said="$said and the musl one"
else
    echo "  no musl build here (musl-tools): the musl library is not tried"
fi
pass "$said: errno 0 at main, unchanged by fclose of streams without a descriptor"
