#!/usr/bin/env bash
# scripts/autoclose refuses, with exit 2, one line and before running anything, a program whose
# dynamic loader is not glibc's: the library is built for glibc, and musl's loader would stop the
# program before main on the library's glibc symbols (exit 127). The server linked against musl
# works by itself; named directly, through PATH or as a script's #! interpreter it is refused and
# never executed (strace sees no execve of it); the same server linked against glibc runs with
# the library loaded. Skipped without the musl build (musl-gcc, from Debian's musl-tools).
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tools_lib.sh
. "$(dirname "$0")/tools_lib.sh"
need_shim

MUSL=$FIXTURES/mos_server_musl
rc=0 # each run_rc sets it
[ -x "$MUSL" ] || skip "no $MUSL (make builds it where musl-gcc is installed: Debian's musl-tools)"
command -v strace >/dev/null || fail "strace is not installed (scripts/install-deps.sh installs it)"
use_wrapper

# The musl server is a working program: it publishes its port, the trace a refused run must not
# leave, under musl's loader.
start_bg direct "$MUSL" --style read --port-file "$TMP/direct.port"
await_port direct >/dev/null
pid=$(main_pid direct)
# musl's loader is its libc.so, which /lib/ld-musl-ARCH.so.1 links to.
musl_loader=/lib/ld-musl-$(uname -m).so.1
maps_has "$pid" "$musl_loader" || fail "mos_server_musl does not run under $musl_loader:" \
    "$(grep -F '.so' "/proc/$pid/maps" | head -n 3)"
echo "  by itself: mos_server_musl (pid $pid) serves, under $musl_loader"

# expect_refused NAME SHOWN CMD...: the wrapper run as `autoclose -- CMD --port-file ...` under
# strace exits 2 with one line that names SHOWN and musl's loader, and the musl server was never
# executed.
expect_refused() {
    local name=$1 shown=$2
    shift 2
    run_rc rc strace -f -qq -e trace=execve -e signal=none -o "$TMP/$name.strace" \
        "$AUTOCLOSE" --grace-ms 300 -- "$@" --style read --port-file "$TMP/$name.port"
    assert_eq 2 "$rc" "$name: exit status"
    assert_eq 1 "$(wc -l <"$TMP/rc.err")" "$name: lines of the refusal"
    grep -qF "refusing $shown" "$TMP/rc.err" || fail "$name: the refusal does not name $shown:" \
        "$(cat "$TMP/rc.err")"
    grep -q "interpreter /lib/ld-musl-[^ ]* is not glibc's dynamic loader .*autoclosed" \
        "$TMP/rc.err" || fail "$name: the refusal does not say why: $(cat "$TMP/rc.err")"
    ! grep -qF "execve(\"$MUSL\"" "$TMP/$name.strace" || fail "$name: mos_server_musl was executed"
    [ ! -e "$TMP/$name.port" ] || fail "$name: the refused server ran anyway"
    echo "  refused: $(cat "$TMP/rc.err")"
}

expect_refused path "$MUSL" "$MUSL"
PATH="$FIXTURES:$PATH" expect_refused in-path mos_server_musl mos_server_musl
printf '#!%s\n' "$MUSL" >"$TMP/musl_script"
chmod +x "$TMP/musl_script"
expect_refused script "$MUSL (the #! interpreter of $TMP/musl_script)" "$TMP/musl_script"
printf '#!/usr/bin/env mos_server_musl\n' >"$TMP/env_script"
chmod +x "$TMP/env_script"
PATH="$FIXTURES:$PATH" expect_refused env-script "$MUSL (the interpreter of $TMP/env_script)" \
    "$TMP/env_script"

# The same server linked against glibc runs, with the library loaded.
start_bg glibc "$AUTOCLOSE" --grace-ms 300 -- "$FIXTURES/mos_server" --style read \
    --port-file "$TMP/glibc.port"
await_port glibc >/dev/null
pid=$(main_pid glibc)
assert_eq mos_server "$(cat "/proc/$pid/comm")" "the glibc server running under the wrapper"
maps_has "$pid" "$AUTOCLOSE_LIB" || fail "libautoclose.so is not loaded in the glibc server (pid $pid)"
pass "a musl program refused before it runs (directly, through PATH, as a #! interpreter); the glibc one runs with the library"
