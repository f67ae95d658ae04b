#!/usr/bin/env bash
# What autoclosed --help and autoclosed(8) say matches what the daemon does: the grace runs from
# the peer's FIN as the kernel dates it (TCP_INFO's last_ack_recv), not from the daemon's first
# sight of the socket; the page has a SIGNALS section naming each signal the daemon acts on
# (t_daemon_signals checks the behaviour) and an EXIT STATUS section with its three statuses.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
PAGE=$REPO/scripts/man/autoclosed.8

run_daemon help --help
grace=$(sed -n '/^  --grace-ms/,/^  --interval-ms/p' "$TMP/help.out" | sed '$d')
echo "  --help: $(tr -s ' \n' ' ' <<<"$grace")"
grep -q 'FIN, as the kernel dates it' <<<"$grace" || fail "--help: --grace-ms does not run from the FIN"
! grep -qi 'first sight' "$TMP/help.out" || fail "--help still says 'first sight'"

# section NAME: the page's section NAME, up to the next .SH.
section() { awk -v s=".SH $1" '$0 == s { on = 1; next } /^\.SH / { on = 0 } on' "$PAGE"; }
option=$(awk '/^\.BI \\-\\-grace\\-ms/ { on = 1; next } /^\.TP/ { on = 0 } on' "$PAGE")
grep -q "peer's FIN, as the kernel dates it" <<<"$option" ||
    fail "autoclosed(8): --grace-ms does not run from the FIN: $option"
! grep -qiE 'first sight|from the first interval that listed' "$PAGE" ||
    fail "autoclosed(8) still dates the grace from the first sight"
grep -q 'tcpi_last_ack_recv' "$PAGE" || fail "autoclosed(8) does not say how the kernel dates the FIN"
signals=$(section SIGNALS)
[ -n "$signals" ] || fail "autoclosed(8) has no SIGNALS section"
for sig in SIGTERM SIGINT SIGHUP SIGUSR1 SIGUSR2 SIGPIPE; do
    grep -q "$sig" <<<"$signals" || fail "autoclosed(8): SIGNALS does not name $sig"
done
status=$(section 'EXIT STATUS')
for code in 0 1 2; do
    grep -qE "(^|[^0-9])$code (on|when|for)( |$)" <<<"$status" ||
        fail "autoclosed(8): EXIT STATUS does not explain $code"
done
pass "--help and autoclosed(8) date the grace from the FIN; SIGNALS and EXIT STATUS are there"
