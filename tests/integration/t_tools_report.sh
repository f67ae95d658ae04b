#!/usr/bin/env bash
# autoclose report: crafted reclaim lines in every shape (the library's file lines, syslog, the
# journal's short-iso-precise and -o cat, autoclosed's, dry-run and failed lines, junk) are
# counted per program and site with their times, ports and pids; the sites are symbolised from a
# real binary built with -g (found through a running process's /proc/PID/exe, --exe or PATH), a
# stripped copy keeps module+offset and says it has no debug information (with the build id it
# shares with the unstripped build), and --exe with the unstripped build symbolises the stripped
# program's sites, with binutils' addr2line and with elfutils' eu-addr2line alone; --json is
# valid and says the same; --since leaves earlier lines out; --journal reads journalctl's output;
# a log with no reclaim is said so; the library under test's own lines, from a leaking server run
# under the wrapper, are counted with the server's port and pid; bad usage is one line and exit 2,
# from the script and through the wrapper alike.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tools_lib.sh
. "$(dirname "$0")/tools_lib.sh"
rc=0 # each run_rc sets it

for tool in gcc nm strip addr2line python3; do
    command -v "$tool" >/dev/null || skip "$tool is not installed (gcc and binutils, python3)"
done
REPORT=$TOOLS/autoclose-report

# A program with two call sites, each in a function of its own; "wait" keeps it running.
mkdir -p "$TMP/build" "$TMP/stripped" "$TMP/bin"
cat >"$TMP/build/leaky.c" <<'C'
#include <string.h>
#include <unistd.h>
__attribute__((noinline)) int session_read_loop(int fd)
{
    char buf[64];
    ssize_t n = read(fd, buf, sizeof buf);
    return n > 0 ? (int)n : 0;
}
__attribute__((noinline)) int poll_clients(int fd)
{
    char buf[16];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    return n > 0 ? (int)n * 2 : 1;
}
int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "wait") == 0)
        pause();
    return session_read_loop(-1) + poll_clients(-1);
}
C
sed -i '1i #include <sys/socket.h>' "$TMP/build/leaky.c"
gcc -g -O0 -o "$TMP/build/leaky" "$TMP/build/leaky.c" || fail "cannot build the test program"
cp "$TMP/build/leaky" "$TMP/stripped/leaky"
strip --strip-all "$TMP/stripped/leaky"

# A site inside each function: its address (the ELF file's, as the library writes it) plus half
# its size.
site_in() {
    local addr size
    read -r addr size < <(nm -S "$TMP/build/leaky" | awk -v f="$1" '$4 == f { print $1, $2 }')
    [ -n "$addr" ] || fail "nm does not list $1"
    printf '0x%x' $((0x$addr + 0x$size / 2))
}
# Its build id (Debian's gcc links one in), the same in the stripped copy.
bid=$(readelf -n "$TMP/build/leaky" | sed -n 's/^ *Build ID: *//p')
[ -n "$bid" ] || fail "the test program has no build id"
off1=$(site_in session_read_loop)
off2=$(site_in poll_clients)
echo "  sites: session_read_loop leaky+$off1, poll_clients leaky+$off2"

start_bg leaky "$TMP/build/leaky" wait
wait_until 5000 main_pid leaky >/dev/null || fail "the test program did not start"
p1=$(main_pid leaky)
gone=99999999 # above any pid_max: a process that no longer runs
# The C library the running program has mapped, and a site in it (its read, the name nm finds).
libc=$(awk '$6 ~ /\/libc\.so\.6$/ { print $6; exit }' "/proc/$p1/maps")
[ -n "$libc" ] || fail "the test program has no libc.so.6 mapped"
libc_off=$(nm -D --defined-only "$libc" | awk '$3 ~ /^read(@|$)/ && !f { print $1; f = 1 }')
[ -n "$libc_off" ] || fail "nm -D finds no read in $libc"
libc_off=$(printf '0x%x' $((0x$libc_off + 9)))
peer="peer=127.0.0.1:40000 since_fin_ms=500"

# lines FILE: the crafted log. Expected, reclaimed: leaky+off1 4 times (3 read, 1 sweep; ports
# 10540 10541 10542; 16:00:01.500Z to 16:00:04.250Z), leaky+off2 twice (ready; one syslog line
# without a pid, one journal -o cat line without a time), never read twice, a libc site named
# by the journal's identifier, one by the pid alone, one of the running program (no symbol= on
# it: its binary found in /proc/PID/maps), autoclosed's twice; plus a dry run, a failure and lines
# that are no reclaim at all.
lines() {
    cat >"$1" <<EOF
2026-12-07T16:00:01.500Z libautoclose[$p1]: libautoclose 1.0.0 active: grace_ms=500 mode=shutdown sweep_ms=1000
2026-12-07T16:00:01.500Z libautoclose[$p1]: shutdown fd=4 local=127.0.0.1:10540 $peer found=read site=leaky+$off1 symbol=leaky!session_read_loop+0x10
2026-12-07T16:00:03.000Z libautoclose[$p1]: close fd=5 local=127.0.0.1:10541 $peer found=read site=leaky+$off1
2026-12-07T16:00:02.000Z libautoclose[$p1]: shutdown fd=6 local=127.0.0.1:10540 $peer found=read site=leaky+$off1 shared=yes
2026-12-07T17:00:04.250123+01:00 host leaky[$p1]: libautoclose[$p1]: close fd=9 local=127.0.0.1:10542 $peer found=sweep last_read=leaky+$off1
2026-12-07T16:00:02.100Z libautoclose[$p1]: pending fd=7 local=127.0.0.1:10540 $peer
Dec  7 16:00:05 host leaky: libautoclose: shutdown fd=4 local=127.0.0.1:10550 $peer found=ready site=leaky+$off2
libautoclose[$p1]: shutdown fd=11 local=[::1]:10551 peer=[::1]:40000 since_fin_ms=500 found=ready site=leaky+$off2
2026-12-07T16:00:06.000Z libautoclose[$p1]: close fd=12 local=127.0.0.1:10543 $peer found=sweep last_read=never
2026-12-07T16:00:07.000Z libautoclose[$p1]: close fd=13 local=127.0.0.1:10543 $peer found=sweep last_read=never
2026-12-07T16:00:08.000000+00:00 host mosserver[4242]: libautoclose[4242]: shutdown fd=4 local=127.0.0.1:10560 $peer found=read site=libc.so.6+0x11a2b
2026-12-07T16:00:09.000Z libautoclose[$gone]: shutdown fd=4 local=127.0.0.1:10561 $peer found=read site=libc.so.6+0x11a2b
2026-12-07T16:00:09.500Z libautoclose[$p1]: shutdown fd=4 local=127.0.0.1:10562 $peer found=read site=libc.so.6+$libc_off
2026-12-07T16:00:10.000Z autoclosed[2151]: shutdown pid=2137 fd=4 local=127.0.0.1:10570 $peer comm="mos \"q\" \\\\srv\\x01" netns=4026531840
2026-12-07T16:00:11.000Z autoclosed[2151]: shutdown pid=2138 fd=5 local=127.0.0.1:10571 $peer comm="mos \"q\" \\\\srv\\x01"
2026-12-07T16:00:12.000Z libautoclose[$p1]: dry-run: would shutdown fd=4 local=127.0.0.1:10540 $peer found=read site=leaky+$off1
2026-12-07T16:00:13.000Z libautoclose[$p1]: failed to shutdown fd=4 local=127.0.0.1:10540 $peer found=read site=leaky+$off1 error=Bad file descriptor
2026-12-07T16:00:14.000Z autoclosed[2151]: pid=2137 comm=mos has exited: no longer watched
a line of something else entirely
EOF
}
lines "$TMP/all.log"

# ---- text, symbolised through the running process ------------------------------------------
run_rc rc "$REPORT" "$TMP/all.log"
assert_eq 0 "$rc" "exit status of the report"
rep=$TMP/rc.out
echo "  report:" && sed 's/^/    /' "$rep"
# block HEADER: the report's lines for the group whose header line is HEADER.
# (HEADER through the environment: awk -v would read its backslashes as escapes.)
block() { H=$1 awk '$0 == ENVIRON["H"] { on = 1; print; next } on && /^$/ { exit } on' "$rep"; }
want_block() { # HEADER LINE...: the group is there, with each LINE
    local b
    b=$(block "$1")
    [ -n "$b" ] || fail "no group '$1' in the report: $(cat "$rep")"
    for l in "${@:2}"; do
        grep -qF -- "$l" <<<"$b" || fail "group '$1' lacks '$l': $b"
    done
}
want_block "leaky: 4 connections at leaky+$off1" "  function:  session_read_loop at $TMP/build/leaky.c:" \
    "  binary:    $TMP/build/leaky (debug information)" "  found:     read 3, sweep 1" \
    "  seen:      2026-12-07T16:00:01.500Z .. 2026-12-07T16:00:04.250Z" \
    "  ports:     10540, 10541, 10542" "  pids:      $p1"
want_block "leaky: 2 connections at leaky+$off2" "  function:  poll_clients at $TMP/build/leaky.c:" \
    "  found:     ready 2" "  ports:     10550, 10551" "  pids:      $p1"
want_block "leaky: 2 connections never read" "found by the sweep" "  found:     sweep 2" \
    "  seen:      2026-12-07T16:00:06.000Z .. 2026-12-07T16:00:07.000Z" "  ports:     10543"
want_block "mosserver: 1 connection at libc.so.6+0x11a2b" "  ports:     10560" "  pids:      4242"
want_block "pid $gone: 1 connection at libc.so.6+0x11a2b" "no binary found" "  ports:     10561"
want_block "leaky: 1 connection at libc.so.6+$libc_off" "  binary:    $libc (" "  ports:     10562"
want_block 'mos "q" \srv\x01: 2 connections at an unknown site' "reclaimed by autoclosed, which cannot see the call" \
    "  found:     autoclosed 2" "  ports:     10570, 10571" "  pids:      2137, 2138"
# Most first; the dry run and the failure apart, after the reclaims, never in their counts.
first=$(grep -m 1 ': [0-9]* connection' "$rep")
assert_eq "leaky: 4 connections at leaky+$off1" "$first" "the group named first"
grep -q '^Connections that would be reclaimed (dry run' "$rep" || fail "no dry-run section"
grep -q '^Reclaims that failed' "$rep" || fail "no section of failed reclaims"
[ "$(grep -c "^leaky: 1 connection at leaky+$off1$" "$rep")" = 2 ] ||
    fail "the dry run and the failure are not one group each"
[ "$(sed -n '/^Connections reclaimed/,/^Connections that would/p' "$rep" | grep -c '^[^ ].*: [0-9]* connections\? ')" = 7 ] ||
    fail "not 7 groups of reclaims"
grep -qx 'autoclose report: 19 lines read, 15 reclaim lines (1 without a time), 4 other lines ignored' "$rep" ||
    fail "summary: $(head -n 1 "$rep")"
echo "  text: counts, sites, functions, times, ports and pids as written"

# ---- --json: valid, and the same ---------------------------------------------------------
run_rc rc "$REPORT" --json "$TMP/all.log"
assert_eq 0 "$rc" "exit status of the report --json"
python3 -m json.tool "$TMP/rc.out" >/dev/null || fail "--json is not valid JSON: $(cat "$TMP/rc.out")"
cp "$TMP/rc.out" "$TMP/all.json"
python3 - "$TMP/all.json" "$off1" "$off2" "$p1" "$TMP/build" "$bid" <<'PY' || fail "--json does not say what the text says"
import json, sys
doc, off1, off2, pid, build = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
bid = sys.argv[6]
keys = ["kind", "program", "site", "module", "offset", "symbol", "binary", "build_id", "symbolised", "frames",
        "function", "location", "found", "count", "first", "last", "ports", "pids"]
assert isinstance(doc, list) and len(doc) == 9, len(doc)
for o in doc:
    assert list(o) == keys, list(o)
def one(**kw):
    m = [o for o in doc if all(o[k] == v for k, v in kw.items())]
    assert len(m) == 1, (kw, m)
    return m[0]
a = one(kind="reclaimed", site="leaky+" + off1)
assert a["program"] == "leaky" and a["count"] == 4 and a["found"] == {"read": 3, "sweep": 1}, a
assert a["first"] == "2026-12-07T16:00:01.500Z" and a["last"] == "2026-12-07T16:00:04.250Z", a
assert a["ports"] == [10540, 10541, 10542] and a["pids"] == [pid], a
assert a["function"] == "session_read_loop" and a["location"].startswith(build + "/leaky.c:"), a
assert a["binary"] == build + "/leaky" and a["symbolised"] == "debug information" and a["build_id"] == bid, a
assert a["symbol"] == "leaky!session_read_loop+0x10" and a["module"] == "leaky" and a["offset"] == off1, a
b = one(kind="reclaimed", site="leaky+" + off2)
assert b["count"] == 2 and b["function"] == "poll_clients" and b["ports"] == [10550, 10551], b
n = one(kind="reclaimed", site="never-read")
assert n["count"] == 2 and n["program"] == "leaky" and n["module"] is None and n["symbolised"] is None, n
d = one(program='mos "q" \\srv\\x01')
assert d["count"] == 2 and d["site"].startswith("unknown: reclaimed by autoclosed") and d["pids"] == [2137, 2138], d
assert one(kind="would reclaim (dry run)")["count"] == 1
assert one(kind="failed")["count"] == 1
assert doc[0] is a
PY
echo "  --json: valid, fixed keys, the same counts, times, ports, functions"

# ---- through the wrapper, the same -----------------------------------------------------------
run_rc rc "$TOOLS/autoclose" report --json "$TMP/all.log"
assert_eq 0 "$rc" "exit status of autoclose report"
cmp -s "$TMP/rc.out" "$TMP/all.json" || fail "autoclose report differs from autoclose-report"
# and from standard input
run_rc rc "$REPORT" - <"$TMP/all.log"
assert_eq 0 "$rc" "exit status of the report of standard input"
grep -qx "leaky: 4 connections at leaky+$off1" "$TMP/rc.out" || fail "standard input was not read"

# ---- --since: earlier lines, and lines without a time, left out -------------------------------
run_rc rc "$REPORT" --since "2026-12-07 16:00:02" "$TMP/all.log"
assert_eq 0 "$rc" "exit status of the report --since"
rep=$TMP/rc.out
want_block "leaky: 3 connections at leaky+$off1" "  found:     read 2, sweep 1" \
    "  seen:      2026-12-07T16:00:02.000Z .. 2026-12-07T16:00:04.250Z"
grep -q "^leaky: 1 connection at leaky+$off2$" "$rep" || fail "--since kept the line without a time"
echo "  --since: the earlier line and the undated one left out"

# ---- a stripped program, and the vendor's unstripped build ------------------------------------
sed "s/\[$p1\]/[$gone]/g" "$TMP/all.log" >"$TMP/gone.log" # no process to find the binary by
run_rc rc "$REPORT" "$TMP/gone.log"
rep=$TMP/rc.out
want_block "leaky: 4 connections at leaky+$off1" "  binary:    no binary found"
run_rc rc "$REPORT" --exe "$TMP/stripped/leaky" "$TMP/gone.log"
want_block "leaky: 4 connections at leaky+$off1" "  binary:    $TMP/stripped/leaky (no debug information)" \
    "  build id:  $bid"
! grep -q "function:  session_read_loop at" "$rep" || fail "a stripped binary gave file:line"
run_rc rc "$REPORT" --json --exe "$TMP/stripped/leaky" "$TMP/gone.log"
python3 - "$TMP/rc.out" "$off1" <<'PY' || fail "--json of the stripped program: $(cat "$TMP/rc.out")"
import json, sys
a = [o for o in json.load(open(sys.argv[1])) if o["kind"] == "reclaimed" and o["site"] == "leaky+" + sys.argv[2]][0]
assert a["symbolised"] == "no debug information" and a["function"] is None and a["location"] is None, a
assert a["module"] == "leaky" and a["offset"] == sys.argv[2] and a["count"] == 4, a
PY
echo "  stripped: leaky+$off1 kept, no debug information said"
cp "$TMP/build/leaky" "$TMP/bin/leaky.unstripped"
for exe in "$TMP/build/leaky" "leaky=$TMP/bin/leaky.unstripped"; do
    run_rc rc "$REPORT" --exe "$exe" "$TMP/gone.log"
    want_block "leaky: 4 connections at leaky+$off1" "  function:  session_read_loop at"
    want_block "leaky: 2 connections at leaky+$off2" "  function:  poll_clients at"
done
run_rc rc env PATH="$TMP/build:$PATH" "$REPORT" "$TMP/gone.log"
want_block "leaky: 4 connections at leaky+$off1" "  function:  session_read_loop at" \
    "  binary:    $TMP/build/leaky (debug information)"
echo "  --exe PATH, --exe MODULE=PATH and PATH symbolise with the unstripped build"
# elfutils' eu-addr2line where binutils' addr2line is not: a PATH of every command but that one.
if command -v eu-addr2line >/dev/null; then
    mkdir -p "$TMP/noa2l"
    for f in /usr/bin/* /usr/sbin/*; do
        [ "${f##*/}" = addr2line ] || [ -e "$TMP/noa2l/${f##*/}" ] || ln -s "$f" "$TMP/noa2l/${f##*/}"
    done
    for exe in "$TMP/build/leaky" "$TMP/stripped/leaky"; do
        run_rc rc env PATH="$TMP/noa2l" "$REPORT" --exe "$exe" "$TMP/gone.log"
        assert_eq 0 "$rc" "exit status of the report with eu-addr2line ($exe)"
    done
    want_block "leaky: 4 connections at leaky+$off1" "  binary:    $TMP/stripped/leaky (no debug information)"
    run_rc rc env PATH="$TMP/noa2l" "$REPORT" --exe "$TMP/build/leaky" "$TMP/gone.log"
    want_block "leaky: 4 connections at leaky+$off1" "  function:  session_read_loop at $TMP/build/leaky.c:"
    echo "  eu-addr2line: the same functions, and no debug information said"
else
    echo "  (eu-addr2line is not installed: elfutils' symboliser was not tried)"
fi

# ---- --journal: journalctl's short-iso-precise output, in UTC, for the units given -----------
mkdir -p "$TMP/fakebin"
cat >"$TMP/fakebin/journalctl" <<EOF
#!/bin/sh
echo "\$*" >"$TMP/journalctl.args"
cat <<'LINES'
2026-12-07T16:00:01.500000+00:00 host leaky[$gone]: libautoclose[$gone]: shutdown fd=4 local=127.0.0.1:10540 $peer found=read site=leaky+$off1
2026-12-07T16:00:02.500000+00:00 host leaky[$gone]: libautoclose[$gone]: close fd=5 local=127.0.0.1:10540 $peer found=sweep last_read=never
-- Boot 0123456789abcdef --
LINES
EOF
chmod +x "$TMP/fakebin/journalctl"
run_rc rc env PATH="$TMP/fakebin:$PATH" "$REPORT" --journal -u mosserver.service -u autoclosed.service
assert_eq 0 "$rc" "exit status of the report --journal"
rep=$TMP/rc.out
want_block "leaky: 1 connection at leaky+$off1" "  seen:      2026-12-07T16:00:01.500Z" "  pids:      $gone"
want_block "leaky: 1 connection never read" "  seen:      2026-12-07T16:00:02.500Z"
assert_eq "-o short-iso-precise --utc --no-pager -q -u mosserver.service -u autoclosed.service" \
    "$(cat "$TMP/journalctl.args")" "journalctl's arguments"
run_rc rc env PATH="$TMP/fakebin:$PATH" "$REPORT" --journal --since "2026-12-07 16:00:02"
assert_eq "-o short-iso-precise --utc --no-pager -q --since 2026-12-07 16:00:02 UTC" \
    "$(cat "$TMP/journalctl.args")" "journalctl's arguments with --since"
rep=$TMP/rc.out
[ "$(grep -c '^[^ ].*: [0-9]* connections\? ' "$rep")" = 1 ] || fail "--journal --since: $(cat "$rep")"
want_block "leaky: 1 connection never read"
mkdir -p "$TMP/failbin"
printf '#!/bin/sh\necho "Failed to open journal: Permission denied" >&2\nexit 1\n' >"$TMP/failbin/journalctl"
chmod +x "$TMP/failbin/journalctl"
run_rc rc env PATH="$TMP/failbin:$PATH" "$REPORT" --journal
assert_eq 2 "$rc" "exit status of --journal when journalctl fails"
assert_eq "autoclose report: journalctl failed: Failed to open journal: Permission denied" \
    "$(cat "$TMP/rc.err")" "what --journal says when journalctl fails"
mkdir -p "$TMP/nopath"
run_rc rc env PATH="$TMP/nopath" /bin/bash "$REPORT" --journal
assert_eq 2 "$rc" "exit status of --journal without journalctl"
grep -q "journalctl is not installed" "$TMP/rc.err" || fail "no word about journalctl: $(cat "$TMP/rc.err")"
echo "  --journal: journalctl's lines read; its failure and its absence said"

# ---- nothing to report: said, exit 0; --json an empty array -----------------------------------
grep -v -e 'shutdown fd' -e 'close fd' -e 'shutdown pid' "$TMP/all.log" >"$TMP/none.log"
run_rc rc "$REPORT" "$TMP/none.log"
assert_eq 0 "$rc" "exit status of a report of no reclaim"
grep -qx 'No reclaimed connection found.' "$TMP/rc.out" || fail "no reclaim: $(cat "$TMP/rc.out" "$TMP/rc.err")"
run_rc rc "$REPORT" --json /dev/null
assert_eq 0 "$rc" "exit status of a JSON report of no reclaim"
assert_eq "[]" "$(python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin)))' <"$TMP/rc.out")" \
    "the JSON report of no reclaim"
echo "  nothing to report: said, exit 0; --json []"

# logged FILE N: FILE has N shutdown lines.
# shellcheck disable=SC2317 # called through wait_until
logged() { [ "$(grep -c 'shutdown fd=' "$1" 2>/dev/null)" -ge "$2" ]; }

# ---- the library's own lines: a leaking server under the wrapper -----------------------------
# Whatever the library under test writes for its reclaims is read, counted and placed: its
# count, the server's port and pid, and (once the library names sites) the server's program.
if [ -n "${AUTOCLOSE_LIB:-}" ] && [ -x "${FIXTURES:-}/mos_server" ]; then
    need_shim
    use_wrapper
    N=3
    start_bg server "$AUTOCLOSE" --grace-ms 300 --log-file "$TMP/server.log" -- \
        "$FIXTURES/mos_server" --style read --port-file "$TMP/server.port"
    port=$(await_port server)
    client clients --port "$port" --count $N || fail "client exchanges failed"
    wait_until 5000 logged "$TMP/server.log" "$N" || fail "the server's log has no $N shutdown lines: $(cat "$TMP/server.log")"
    run_rc rc "$REPORT" --json "$TMP/server.log"
    assert_eq 0 "$rc" "exit status of the report of the library's lines"
    python3 - "$TMP/rc.out" $N "$port" "$(main_pid server)" "$TMP/server.log" <<'PY' ||
import json, sys
doc, n, port, pid = json.load(open(sys.argv[1])), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
got = [o for o in doc if o["kind"] == "reclaimed"]
assert sum(o["count"] for o in got) == n, doc
assert all(o["ports"] == [port] and o["pids"] == [pid] and o["first"] for o in got), doc
if " site=mos_server+" in open(sys.argv[5]).read():
    assert all(o["program"] == "mos_server" for o in got), doc
PY
        fail "the report of the library's lines: $(cat "$TMP/rc.out") from $(cat "$TMP/server.log")"
    echo "  the library's lines: $N reclaims on port $port of pid $(main_pid server) reported"
else
    echo "  (no library under test: its own lines were not read)"
fi

# ---- bad usage: one line, exit 2 ------------------------------------------------------------
for bad in "--bogus" "$TMP/missing.log" "$TMP" "--since" "--since not-a-time $TMP/all.log" \
    "--exe $TMP/missing" "--journal $TMP/all.log" "-u x $TMP/all.log"; do
    # shellcheck disable=SC2086 # the words of each bad command line
    run_rc rc "$REPORT" $bad
    assert_eq 2 "$rc" "exit status of autoclose report $bad"
    assert_eq 1 "$(wc -l <"$TMP/rc.err")" "lines said for autoclose report $bad"
    [ ! -s "$TMP/rc.out" ] || fail "autoclose report $bad wrote to stdout: $(cat "$TMP/rc.out")"
done
run_rc rc "$TOOLS/autoclose" report --bogus
assert_eq 2 "$rc" "exit status of autoclose report --bogus through the wrapper"
echo "  bad usage: one line, exit 2"
pass "report: counts, times, ports, pids and symbols per program and site, text and JSON"
