# shellcheck shell=bash
# Shared by the t_tools_*.sh tests, sourced after lib.sh: where the operator tools are, and the
# autoclose wrapper set up so that it preloads the library under test.

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TOOLS=$REPO/scripts

# The --check helper built beside the library under test (make builds it there).
SETTINGS_HELPER=
for word in $AUTOCLOSE_LIB; do
    [[ $word != */libautoclose.so ]] || SETTINGS_HELPER=$(dirname -- "$word")/autoclose-settings
done
unset word

# use_wrapper: sets AUTOCLOSE. In the source tree the wrapper finds ../build/libautoclose.so,
# ../build/i386/libautoclose.so and ../build/musl/libautoclose.so (and --check's
# ../build/autoclose-settings); when the libraries under test were built elsewhere (another
# BUILD), a copy of the wrapper (with the report script beside it) gets a tree of its own whose
# build/ holds those libraries (the 32-bit and musl ones when AUTOCLOSE_LIB32 and
# AUTOCLOSE_LIBMUSL exist) and the helper beside the library, so the test never runs a stale one.
use_wrapper() {
    local lib32_same=no libmusl_same=no
    if [ -f "$AUTOCLOSE_LIB32" ]; then
        [ "$REPO/build/i386/libautoclose.so" -ef "$AUTOCLOSE_LIB32" ] && lib32_same=yes
    else
        [ -e "$REPO/build/i386/libautoclose.so" ] || lib32_same=yes
    fi
    if [ -f "$AUTOCLOSE_LIBMUSL" ]; then
        [ "$REPO/build/musl/libautoclose.so" -ef "$AUTOCLOSE_LIBMUSL" ] && libmusl_same=yes
    else
        [ -e "$REPO/build/musl/libautoclose.so" ] || libmusl_same=yes
    fi
    if [ "$REPO/build/libautoclose.so" -ef "$AUTOCLOSE_LIB" ] && [ $lib32_same = yes ] &&
        [ $libmusl_same = yes ] && [ "$REPO/build/autoclose-settings" -ef "$SETTINGS_HELPER" ]; then
        AUTOCLOSE=$TOOLS/autoclose
    else
        mkdir -p "$TMP/tree/scripts" "$TMP/tree/build/i386" "$TMP/tree/build/musl"
        cp "$TOOLS/autoclose" "$TMP/tree/scripts/autoclose"
        ln -sf "$TOOLS/autoclose-report" "$TMP/tree/scripts/autoclose-report"
        ln -sf "$AUTOCLOSE_LIB" "$TMP/tree/build/libautoclose.so"
        [ ! -f "$AUTOCLOSE_LIB32" ] || ln -sf "$AUTOCLOSE_LIB32" "$TMP/tree/build/i386/libautoclose.so"
        [ ! -f "$AUTOCLOSE_LIBMUSL" ] || ln -sf "$AUTOCLOSE_LIBMUSL" "$TMP/tree/build/musl/libautoclose.so"
        [ ! -x "$SETTINGS_HELPER" ] || ln -sf "$SETTINGS_HELPER" "$TMP/tree/build/autoclose-settings"
        # In the source tree, --version reads ../Makefile.
        ln -sf "$REPO/Makefile" "$TMP/tree/Makefile"
        make_preload_tree "$TMP/tree/build"
        AUTOCLOSE=$TMP/tree/scripts/autoclose
    fi
    echo "  wrapper: $AUTOCLOSE"
}

# The names glibc's loaders here expand $LIB to: the 64-bit one's, and the 32-bit one's (lib32
# for Debian's libc6-i386, lib/i386-linux-gnu for libc6:i386), as make names the preload tree's
# entries.
LIB64_EXPANSION=lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
LIB32_EXPANSIONS=(lib32 "lib/$(gcc -m32 -print-multiarch 2>/dev/null || echo i386-linux-gnu)")

# make_preload_tree BUILD: BUILD/preload for the libraries in BUILD (BUILD/libautoclose.so,
# BUILD/i386/, BUILD/musl/), as make makes it.
make_preload_tree() {
    "$REPO/scripts/preload-tree.sh" "$1/preload" "$LIB64_EXPANSION=$1/libautoclose.so" \
        "lib64=$1/libautoclose.so" "lib=$1/libautoclose.so" \
        "${LIB32_EXPANSIONS[0]}=$1/i386/libautoclose.so" \
        "${LIB32_EXPANSIONS[1]}=$1/i386/libautoclose.so" "\$LIB=$1/musl/libautoclose.so"
}

# preload_file VALUE KIND: the file (resolved) that LD_PRELOAD=VALUE loads into a program of
# KIND (glibc64, glibc32, musl): $LIB expanded as that kind's loader expands it (musl's does
# not), or VALUE itself when it holds no $LIB.
preload_file() {
    local expansions=() e f
    case $2 in
    glibc64) expansions=("$LIB64_EXPANSION") ;;
    glibc32) expansions=("${LIB32_EXPANSIONS[@]}") ;;
    musl) expansions=("\$LIB") ;;
    esac
    for e in "${expansions[@]}"; do
        f=${1//\$LIB/$e}
        if [ -e "$f" ]; then
            readlink -f -- "$f"
            return 0
        fi
    done
    echo "$1"
}

# maps_has PID PATH: the process has PATH mapped, i.e. the loader really loaded it.
maps_has() { grep -qF -- "$(readlink -f -- "$2")" "/proc/$1/maps"; }

# run_rc VAR CMD...: runs CMD (bounded), its status in VAR, its output in $TMP/VAR.out and .err;
# never trips set -e, since a failing status is often what is being checked.
run_rc() {
    local run_rc_var=$1 run_rc_status=0
    shift
    timeout 30 "$@" >"$TMP/$run_rc_var.out" 2>"$TMP/$run_rc_var.err" || run_rc_status=$?
    printf -v "$run_rc_var" '%s' "$run_rc_status"
}

# preload_of NAME WRAPPER [OPTION...] -- CMD: the LD_PRELOAD with which WRAPPER executed CMD, read
# from the execve call itself (strace -v shows its environment), so that it works whether or not
# this kernel can run CMD (a 32-bit program). CMD should exit at once (mos_server without
# arguments prints its usage).
preload_of() {
    local name=$1
    timeout 30 strace -f -qq -v -s 4096 -e trace=execve -e signal=none -o "$TMP/$name.strace" \
        "${@:2}" >"$TMP/$name.out" 2>"$TMP/$name.err" || true
    grep -F "execve(\"${*: -1}\"" "$TMP/$name.strace" | grep -o '"LD_PRELOAD=[^"]*"' | head -n 1 |
        sed 's/^"LD_PRELOAD=//; s/"$//'
}

# makefile_version: the Makefile's VERSION, the one place the version is set.
makefile_version() {
    sed -n 's/^VERSION[[:space:]]*:=[[:space:]]*\([^[:space:]]*\).*/\1/p' "$REPO/Makefile" | head -n 1
}
