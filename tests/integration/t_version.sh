#!/usr/bin/env bash
# One version everywhere: the Makefile's VERSION. At AUTOCLOSE_LOG=debug the library says at
# start-up which version is loaded and with what settings ("libautoclose <version> active:
# grace_ms=... mode=... sweep_ms=..."), once, in the log file or on stderr; at info (set, or by
# default) it never does, though the same server's action lines still appear there, and a
# disabled library writes nothing. The source tree's wrapper answers --version with the same
# version. (The installed wrapper and man pages: t_tools_install; the package: make test-deb.)
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tools_lib.sh
. "$(dirname "$0")/tools_lib.sh"
need_shim
rc=0 # each run_rc sets it

GRACE=300
N=2
version=$(makefile_version)
[ -n "$version" ] || fail "no VERSION := line in $REPO/Makefile"
echo "  the Makefile's VERSION: $version"
# The start-up line, whatever its settings; the version is matched literally.
startup_re="libautoclose\\[[0-9]+\\]: libautoclose ${version//./\\.} active: "

# debug, to a log file: the line is there as soon as the server runs, before any connection,
# and carries the settings it was given.
start_bg debug LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_LOG=debug AUTOCLOSE_LOG_FILE="$TMP/debug.log" \
    AUTOCLOSE_GRACE_MS=$GRACE AUTOCLOSE_MODE=close AUTOCLOSE_SWEEP_MS=250 \
    "$FIXTURES/mos_server" --style read --port-file "$TMP/debug.port"
await_port debug >/dev/null
wait_until 3000 has_lines 1 "$startup_re" "$TMP/debug.log" || true
echo "  debug: $(grep -E "$startup_re" "$TMP/debug.log" 2>/dev/null | sed 's/^[^ ]* //')"
assert_eq 1 "$(count_lines "${startup_re}grace_ms=$GRACE mode=close sweep_ms=250$" "$TMP/debug.log")" \
    "start-up lines with version $version and the settings, at debug"

# debug, to stderr (no log file): the same line there. Dry run is named in it.
run_rc rc env LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_LOG=debug AUTOCLOSE_DRY_RUN=1 true
assert_eq 0 "$rc" "exit status of a program run with the library at debug"
assert_eq 1 "$(count_lines "${startup_re}grace_ms=5000 mode=shutdown sweep_ms=1000 dry_run=yes$" \
    "$TMP/rc.err")" "start-up lines on stderr with the defaults and dry_run=yes"

# info (set explicitly, with a log file) and the default level (stderr): the servers log their
# actions, so lines do reach those places, but never the start-up line.
start_bg info LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_LOG=info AUTOCLOSE_LOG_FILE="$TMP/info.log" \
    AUTOCLOSE_GRACE_MS=$GRACE "$FIXTURES/mos_server" --style read --port-file "$TMP/info.port"
start_bg default -u AUTOCLOSE_LOG LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=$GRACE \
    "$FIXTURES/mos_server" --style read --port-file "$TMP/default.port"
info_port=$(await_port info)
default_port=$(await_port default)
client info-clients --port "$info_port" --count $N || fail "client exchanges failed (info)"
client default-clients --port "$default_port" --count $N || fail "client exchanges failed (default)"
wait_until $((GRACE + 4000)) has_lines $N 'shutdown fd=' "$TMP/info.log" || true
wait_until $((GRACE + 4000)) has_lines $N 'shutdown fd=' "$TMP/default.err" || true
assert_eq $N "$(count_lines 'shutdown fd=' "$TMP/info.log")" "action lines in the info log file"
assert_eq $N "$(count_lines 'shutdown fd=' "$TMP/default.err")" "action lines on stderr at the default level"
assert_eq 0 "$(count_lines ' active: ' "$TMP/info.log")" "start-up lines at AUTOCLOSE_LOG=info"
assert_eq 0 "$(count_lines ' active: ' "$TMP/default.err")" "start-up lines at the default level"

# Disabled: nothing at all, not even at debug.
run_rc rc env LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_DISABLE=1 AUTOCLOSE_LOG=debug \
    AUTOCLOSE_LOG_FILE="$TMP/disabled.log" true
assert_eq 0 "$rc" "exit status of a program run with the library disabled"
[ ! -e "$TMP/disabled.log" ] || fail "a disabled library wrote: $(cat "$TMP/disabled.log")"
assert_eq 0 "$(count_lines 'libautoclose' "$TMP/rc.err")" "lines on stderr from a disabled library"

# The wrapper in the source tree reads the same VERSION (from ../Makefile).
AUTOCLOSE=$TOOLS/autoclose
run_rc rc "$AUTOCLOSE" --version
assert_eq 0 "$rc" "exit status of autoclose --version"
assert_eq "autoclose $version" "$(cat "$TMP/rc.out")" "autoclose --version"
run_rc rc "$AUTOCLOSE" --version=2
assert_eq 2 "$rc" "exit status of autoclose --version=2"
pass "version $version in the library's debug start-up line (never at info) and in autoclose --version"
