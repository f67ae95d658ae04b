#!/usr/bin/env bash
# The operator tools' own hygiene: the shell scripts pass shellcheck, the Python tools parse and
# answer --help, the man pages render without a groff warning, libautoclose(7) documents every
# variable of README.md's table, and autoclose's --help and man page cover every option.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tools_lib.sh
. "$(dirname "$0")/tools_lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
rc=0 # each run_rc sets it

for tool in shellcheck groff python3; do
    command -v "$tool" >/dev/null || skip "$tool is not installed (scripts/install-deps.sh installs it)"
done

shellcheck -x -P SCRIPTDIR "$TOOLS/autoclose" "$here"/t_tools_*.sh "$here/tools_lib.sh" \
    "$TOOLS/autoclose-report" \
    "$here/t_version.sh" "$TOOLS/build-deb.sh" "$TOOLS/install-deps.sh" "$REPO"/tests/deb/*.sh \
    "$TOOLS/image/build.sh" "$REPO"/tests/image/*.sh \
    "$REPO/tests/vm/run.sh" "$REPO/tests/vm/init" \
    >"$TMP/shellcheck.log" 2>&1 ||
    fail "shellcheck: $(cat "$TMP/shellcheck.log")"
echo "  shellcheck: clean"

for tool in mos-close-test tcpstates; do
    python3 -c 'import ast, sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1])' "$TOOLS/$tool" ||
        fail "$tool does not parse"
    run_rc rc "$TOOLS/$tool" --help
    assert_eq 0 "$rc" "$tool --help"
done

for page in "$TOOLS"/man/*.[1-8]; do
    warnings=$(groff -man -Tutf8 -ww -z "$page" 2>&1) || fail "groff failed on $page"
    [ -z "$warnings" ] || fail "${page#"$REPO"/}: $warnings"
    if command -v man >/dev/null; then
        warnings=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null) || fail "man -l failed on $page"
        [ -z "$warnings" ] || fail "${page#"$REPO"/}: $warnings"
    fi
done
echo "  man pages: $(cd "$TOOLS/man" && echo *) render without warnings"

# Every variable of README's configuration table has its entry in libautoclose(7).
# shellcheck disable=SC2016 # the backquotes are README's markdown
mapfile -t vars < <(sed -n 's/^| `\(AUTOCLOSE_[A-Z0-9_]*\)`.*/\1/p' "$REPO/README.md")
[ ${#vars[@]} -ge 8 ] || fail "found only ${#vars[@]} variables in README.md's table: has it changed shape?"
for v in "${vars[@]}"; do
    grep -qx "\.B $v" "$TOOLS/man/libautoclose.7" ||
        fail "$v is in README.md but has no entry in scripts/man/libautoclose.7 (copy a .TP entry)"
done
echo "  libautoclose(7) documents ${#vars[@]} variables: ${vars[*]}"

run_rc rc "$TOOLS/autoclose" --help
for opt in grace-ms mode ports sweep-ms dry-run log log-file stats-file check help version; do
    grep -q -- "--$opt\b" "$TMP/rc.out" || fail "autoclose --help does not explain --$opt"
    grep -q -- "\\\\-\\\\-${opt//-/\\\\-}\b" "$TOOLS/man/autoclose.1" || fail "autoclose(1) does not explain --$opt"
done
echo "  autoclose: every option in --help and in autoclose(1)"
pass "shellcheck, Python, man pages and documentation coverage"
