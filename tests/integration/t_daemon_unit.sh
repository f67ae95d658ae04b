#!/usr/bin/env bash
# The shipped autoclosed.service, as make install writes it, passes systemd-analyze verify, and
# its sandbox is tight: systemd-analyze security rates its exposure at most 3.0 (of 10) and the
# settings the daemon depends on are there (its two capabilities; no PrivateNetwork, which would
# hide the sockets, nor ProtectProc=invisible, which would hide the processes). An operator does
# not trip on it: a bad option (exit 2) is not restarted forever, descriptors are bounded, the
# log and stats files have writable places under ProtectSystem=strict, and each drop-in its
# comment shows verifies without a warning (no assignment split at its blanks) and gives the
# daemon a command line it accepts.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tools_lib.sh
. "$(dirname "$0")/tools_lib.sh"
: "${AUTOCLOSED:?AUTOCLOSED must name the built daemon}"
command -v systemd-analyze >/dev/null || skip "systemd-analyze is not installed"

# The library file itself: under the sanitizer suites AUTOCLOSE_LIB lists their runtime too.
lib=
for f in $AUTOCLOSE_LIB; do
    [ "${f##*/}" != libautoclose.so ] || lib=$f
done
[ -n "$lib" ] || fail "no libautoclose.so in AUTOCLOSE_LIB='$AUTOCLOSE_LIB'"
stage=$TMP/stage
make -s -C "$REPO" install DESTDIR="$stage" PREFIX=/usr INSTALL_LIB="$lib" \
    INSTALL_DAEMON="$AUTOCLOSED" >"$TMP/make.out" 2>&1 || fail "make install: $(cat "$TMP/make.out")"
unit=$stage/usr/lib/systemd/system/autoclosed.service
[ -f "$unit" ] || fail "make install did not install the unit"

# verify checks the executable exists: point ExecStart at the staged daemon. The man page is
# checked by t_tools_install (man(1) may be absent here).
mkdir -p "$TMP/units"
sed "s|^ExecStart=/usr/sbin/autoclosed|ExecStart=$stage/usr/sbin/autoclosed|" "$unit" >"$TMP/units/autoclosed.service"
systemd-analyze verify --man=no "$TMP/units/autoclosed.service" >"$TMP/verify.out" 2>&1 ||
    fail "systemd-analyze verify: $(cat "$TMP/verify.out")"
[ ! -s "$TMP/verify.out" ] || fail "systemd-analyze verify warned: $(cat "$TMP/verify.out")"

grep -qx "CapabilityBoundingSet=CAP_SYS_PTRACE CAP_DAC_READ_SEARCH" "$unit" ||
    fail "the unit does not limit the daemon to CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH"
grep -qx "NoNewPrivileges=yes" "$unit" || fail "the unit lacks NoNewPrivileges=yes"
! grep -Eq "^(PrivateNetwork=yes|ProtectProc=invisible)" "$unit" ||
    fail "the unit hides the sockets or processes the daemon must see"

for setting in Restart=on-failure RestartPreventExitStatus=2 LimitNOFILE=4096 \
    RuntimeDirectory=autoclosed LogsDirectory=autoclosed; do
    grep -qx "$setting" "$unit" || fail "the unit lacks $setting"
done

# The drop-ins its comment shows: each "#   [Service]" and the indented lines after it.
mkdir -p "$TMP/units/autoclosed.service.d"
awk -v dir="$TMP/units/autoclosed.service.d" '
    /^#   \[Service\]$/ { n++; file = sprintf("%s/example%d.conf", dir, n) }
    file && /^#   / { print substr($0, 5) > file; next }
    { file = "" }' "$unit"
mapfile -t examples < <(find "$TMP/units/autoclosed.service.d" -name 'example*.conf' | sort)
[ ${#examples[@]} -ge 2 ] || fail "the unit's comment shows ${#examples[@]} drop-ins, not 2"
# The /etc/default/autoclosed example, as a file of its own.
sed -n 's/^#   \(AUTOCLOSED_OPTS=".*"\)$/\1/p' "$unit" >"$TMP/default"
[ -s "$TMP/default" ] || fail "the unit's comment shows no /etc/default/autoclosed line"
systemd-analyze verify --man=no "$TMP/units/autoclosed.service" >"$TMP/verify.out" 2>&1 ||
    fail "systemd-analyze verify with the comment's drop-ins: $(cat "$TMP/verify.out")"
[ ! -s "$TMP/verify.out" ] || fail "the comment's drop-ins do not verify cleanly: $(cat "$TMP/verify.out")"
# Each example's options, with its paths moved under $TMP, as the daemon's command line.
mkdir -p "$TMP/var/log/autoclosed" "$TMP/var/lib/prometheus/node-exporter" "$TMP/run/autoclosed"
rc=0 # each run_rc sets it
for f in "${examples[@]}" "$TMP/default"; do
    opts=$(sed -n 's/^\(Environment="\)\{0,1\}AUTOCLOSED_OPTS="\{0,1\}\([^"]*\)"$/\2/p' "$f")
    [ -n "$opts" ] || continue
    # shellcheck disable=SC2086 # split at blanks, as systemd splits $AUTOCLOSED_OPTS
    set -- ${opts//\/var\//$TMP/var/}
    set -- "${@//\/run\/autoclosed/$TMP/run/autoclosed}"
    run_rc rc "$AUTOCLOSED" "$@" --once
    [ "$rc" -eq 0 ] || fail "the options of ${f##*/} ($opts): exit $rc: $(cat "$TMP/rc.err")"
    echo "  ${f##*/}: AUTOCLOSED_OPTS=$opts: verified, and accepted by the daemon"
done

if systemd-analyze security --offline=true "$TMP/units/autoclosed.service" >"$TMP/sec.out" 2>&1; then
    level=$(sed -n 's/.*Overall exposure level for autoclosed.service: \([0-9.]*\).*/\1/p' "$TMP/sec.out")
    [ -n "$level" ] || fail "no exposure level in: $(tail -3 "$TMP/sec.out")"
    awk -v l="$level" 'BEGIN { exit !(l <= 3.0) }' || fail "exposure level $level, above 3.0"
    echo "  systemd-analyze security: exposure $level"
else
    echo "  (systemd-analyze security --offline is not available: exposure not rated)"
fi
pass "the installed unit verifies and keeps the daemon to its own capabilities"
