#!/usr/bin/env bash
# autoclosed's command line: each bad argument gets exactly one line on stderr, naming what was
# wrong, nothing on stdout, and exit status 2, before anything is done; --help prints the usage
# with every option, within 79 columns, and exits 0; --version prints "autoclosed <the Makefile's VERSION>".
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon

# A live process to select, so that only the argument under test is wrong.
start_bg live sleep 60
wait_until 2000 main_pid live >/dev/null || fail "sleep did not start"
live=$(main_pid live)

# refused WHAT EXPECTED_TEXT ARGS...: exit 2, one line on stderr containing EXPECTED_TEXT (a
# fixed string, case-insensitive), nothing on stdout.
refused() {
    local what=$1 text=$2
    shift 2
    run_daemon rc "$@"
    echo "  $what: exit $RUN_RC: $(head -c 300 "$TMP/rc.err")"
    [ "$RUN_RC" -eq 2 ] || fail "$what (autoclosed $*): exit $RUN_RC, not 2"
    [ "$(wc -l <"$TMP/rc.err")" -eq 1 ] ||
        fail "$what (autoclosed $*): $(wc -l <"$TMP/rc.err") lines on stderr, not one:"$'\n'"$(cat "$TMP/rc.err")"
    grep -qiF -- "$text" "$TMP/rc.err" || fail "$what: the line does not mention '$text'"
    [ ! -s "$TMP/rc.out" ] || fail "$what: something on stdout: $(cat "$TMP/rc.out")"
}

refused "no selection" "--pid" --grace-ms 300
grep -qF -- "--ports" "$TMP/rc.err" || fail "no selection: the line does not offer --ports"
refused "no selection, --once" "--pid" --once
refused "--pid abc" "abc" --pid abc
refused "--pid 0" "--pid" --pid 0
refused "--pid -5" "--pid" --pid -5
refused "--pid $live,x" "--pid" --pid "$live,x"
refused "--pid empty" "--pid" --pid ""
refused "--ports 70000" "70000" --pid "$live" --ports 70000
refused "--ports abc" "--ports" --ports abc
refused "--grace-ms -1" "--grace-ms" --pid "$live" --grace-ms -1
refused "--grace-ms 5s" "--grace-ms" --pid "$live" --grace-ms 5s
refused "--grace-ms past a day" "--grace-ms" --pid "$live" --grace-ms 86400001
refused "--interval-ms 0" "--interval-ms" --pid "$live" --interval-ms 0
refused "unknown option" "--bogus" --pid "$live" --bogus
refused "stray argument" "stray" --pid "$live" stray
refused "--log bogus" "bogus" --pid "$live" --log bogus
refused "--pid without its value" "--pid" --pid
# A process that has ended: its number names none.
start_bg ended sleep 60
wait_until 2000 main_pid ended >/dev/null || fail "sleep did not start"
ended=$(main_pid ended)
kill "$ended"
wait_until 2000 gone "$ended" || fail "sleep ($ended) did not end"
[ ! -e "/proc/$ended" ] || fail "process $ended is still there"
refused "--pid of no process" "no such process" --pid "$ended"
refused "--pid with one of no process" "$ended" --pid "$live $ended"
refused "--unit with a slash" "not a systemd unit name" --unit "system.slice/mos.service"
refused "--unit .." "not a systemd unit name" --unit ".."
refused "--exe relative" "not an absolute path" --exe "bin/mosserver"
refused "--exe of no file" "No such file" --exe "$TMP/none"
refused "--exe a directory" "not a file" --exe "$TMP"
refused "--ports of clients without a selection" "--unit" --ports 40000

run_daemon rc --help
echo "  --help: exit $RUN_RC, $(wc -l <"$TMP/rc.out") lines on stdout"
assert_eq 0 "$RUN_RC" "--help exit status"
grep -qi 'usage' "$TMP/rc.out" || fail "--help printed no usage: $(cat "$TMP/rc.out")"
for opt in pid unit exe no-children ports grace-ms interval-ms once dry-run log log-file \
    stats-file version help; do
    grep -q -- "--$opt\b" "$TMP/rc.out" || fail "--help does not explain --$opt"
done
long=$(awk 'length > 79' "$TMP/rc.out")
[ -z "$long" ] || fail "--help has lines over 79 columns:"$'\n'"$long"

# --log off: nothing at all, even the start-up line (--once, nothing to do: it ends at once).
run_daemon rc --pid "$live" --once --log off
assert_eq "0 0 0" "$RUN_RC $(wc -c <"$TMP/rc.err") $(wc -c <"$TMP/rc.out")" \
    "--once --log off: exit status, bytes on stderr and on stdout"

version=$(make_version)
[ -n "$version" ] || fail "no VERSION found in $REPO/Makefile"
run_daemon rc --version
assert_eq 0 "$RUN_RC" "--version exit status"
assert_eq "autoclosed $version" "$(cat "$TMP/rc.out")" "--version"
pass "25 bad command lines refused with one line and exit 2; --help (79 columns) and --version"
