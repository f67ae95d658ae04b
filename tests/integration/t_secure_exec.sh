#!/usr/bin/env bash
# Secure execution: a set-user-ID root program run by an unprivileged user, with the library
# where such programs load it. That user sets the environment, so the library must take nothing
# from it that names a file or raises a limit: AUTOCLOSE_STATS_FILE naming a root-only file must
# leave that file as it was, AUTOCLOSE_LOG_FILE must create nothing, and one line says what was
# ignored. Both ways a library reaches set-user-ID programs are tried, inside a private mount
# namespace so the host never changes:
#   - a set-user-ID copy of the library in the loader's trusted directory, named in LD_PRELOAD;
#   - the library listed in /etc/ld.so.preload.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim
[ "$(id -u)" = 0 ] || skip "needs root: a set-user-ID root program and a private mount namespace"
[[ $AUTOCLOSE_LIB != *" "* ]] || skip "a sanitizer runtime cannot be preloaded into a set-user-ID program"
for tool in unshare setpriv mount; do
    command -v "$tool" >/dev/null || skip "$tool is missing"
done
# The loader's trusted directory for this program's libc (e.g. /usr/lib/x86_64-linux-gnu).
libdir=$(dirname "$(readlink -f "$(ldd "$FIXTURES/secure_probe" | awk '/libc\.so/ {print $3}')")")
[ -d "$libdir" ] || fail "cannot find the directory of the probe's libc"

chmod 0755 "$TMP"
mkdir -m 0755 "$TMP/suid"
install -o root -g root -m 4755 "$FIXTURES/secure_probe" "$TMP/suid/secure_probe"
mkdir -m 0700 "$TMP/private"
echo "root's own file" >"$TMP/private/victim"
cp "$TMP/private/victim" "$TMP/victim.orig"
mkdir "$TMP/lib-up" "$TMP/lib-work" "$TMP/etc-up" "$TMP/etc-work"
install -o root -g root -m 4755 "$AUTOCLOSE_LIB" "$TMP/lib-up/libautoclose-secure-test.so"
echo "$AUTOCLOSE_LIB" >"$TMP/etc-up/ld.so.preload"

# run_probe HOW: the probe as nobody, the library reaching it as HOW says, in a mount namespace
# of its own where the trusted directory (or /etc) has the library (or ld.so.preload) added.
run_probe() {
    local how=$1 preload='' mounts
    if [ "$how" = trusted-dir ]; then
        mounts="mount -t overlay overlay -o lowerdir=$libdir,upperdir=$TMP/lib-up,workdir=$TMP/lib-work $libdir"
        preload=libautoclose-secure-test.so
    else
        mounts="mount -t overlay overlay -o lowerdir=/etc,upperdir=$TMP/etc-up,workdir=$TMP/etc-work /etc"
    fi
    # shellcheck disable=SC2016 # expanded by the inner shell
    unshare --mount --propagation private sh -c "$mounts"' && exec setpriv --reuid=65534 \
        --regid=65534 --clear-groups env LD_PRELOAD="$1" AUTOCLOSE_LOG=debug \
        AUTOCLOSE_STATS_FILE="$2/private/victim" AUTOCLOSE_LOG_FILE="$2/private/created.log" \
        AUTOCLOSE_NOFILE=max "$2/suid/secure_probe"' sh "$preload" "$TMP" \
        >"$TMP/$how.out" 2>"$TMP/$how.err"
}

for how in trusted-dir ld.so.preload; do
    if ! run_probe "$how"; then
        grep -qi 'overlay\|mount' "$TMP/$how.err" &&
            skip "$how: cannot mount an overlay here: $(head -n 1 "$TMP/$how.err")"
        fail "$how: the probe failed: $(cat "$TMP/$how.err")"
    fi
    grep -qx connected "$TMP/$how.out" || fail "$how: the probe did not run: $(cat "$TMP/$how.err")"
    # The library was loaded into the set-user-ID process, or the test proves nothing.
    grep -qx library=yes "$TMP/$how.out" ||
        fail "$how: the library was not loaded into the set-user-ID probe: $(cat "$TMP/$how.err")"
    grep -q 'secure execution (set-user-ID, set-group-ID or file capabilities): ignoring AUTOCLOSE_LOG_FILE, AUTOCLOSE_STATS_FILE, AUTOCLOSE_NOFILE' \
        "$TMP/$how.err" || fail "$how: no line saying what was ignored: $(cat "$TMP/$how.err")"
    cmp -s "$TMP/private/victim" "$TMP/victim.orig" ||
        fail "$how: root's file named in AUTOCLOSE_STATS_FILE was written: $(head -c 200 "$TMP/private/victim")"
    [ ! -e "$TMP/private/created.log" ] || fail "$how: AUTOCLOSE_LOG_FILE was created by root"
    echo "  $how: the library ran in the set-user-ID probe; root's file untouched, no log file made"
done
[ ! -e /etc/ld.so.preload ] || grep -qv "$AUTOCLOSE_LIB" /etc/ld.so.preload ||
    fail "the host's /etc/ld.so.preload names the test's library"
pass "a set-user-ID program takes no file name and no limit from its caller's environment"
