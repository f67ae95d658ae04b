# shellcheck shell=bash
# Shared by the t_tools_*.sh tests, sourced after lib.sh: where the operator tools are, and the
# autoclose wrapper set up so that it preloads the library under test.

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TOOLS=$REPO/scripts

# use_wrapper: sets AUTOCLOSE. In the source tree the wrapper finds ../build/libautoclose.so;
# when the library under test was built elsewhere (another BUILD), a copy of the wrapper gets a
# tree of its own whose build/ holds that library, so the test never runs a stale one.
use_wrapper() {
    if [ "$REPO/build/libautoclose.so" -ef "$AUTOCLOSE_LIB" ]; then
        AUTOCLOSE=$TOOLS/autoclose
    else
        mkdir -p "$TMP/tree/scripts" "$TMP/tree/build"
        cp "$TOOLS/autoclose" "$TMP/tree/scripts/autoclose"
        ln -sf "$AUTOCLOSE_LIB" "$TMP/tree/build/libautoclose.so"
        # In the source tree, --version reads ../Makefile.
        ln -sf "$REPO/Makefile" "$TMP/tree/Makefile"
        AUTOCLOSE=$TMP/tree/scripts/autoclose
    fi
    echo "  wrapper: $AUTOCLOSE"
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

# makefile_version: the Makefile's VERSION, the one place the version is set.
makefile_version() {
    sed -n 's/^VERSION[[:space:]]*:=[[:space:]]*\([^[:space:]]*\).*/\1/p' "$REPO/Makefile" | head -n 1
}
