#!/usr/bin/env bash
# Call sites in a plugin that the program unloads (sites_dlclose).
# Swap: three connections, each client sending a word and closing. The first is read to its EOF
# and the second once (its word, not its EOF) inside sites_dlclose_a.so, which is then unloaded;
# sites_dlclose_b.so, built alike, is loaded where a was and reads the third to its EOF. The first
# two lines must say site=unknown and last_read=unknown (their addresses are now b's: naming b
# would send the reader to code that never touched those sockets); the third names b and its
# function. The stats file counts the first two as unknown.
# Churn: for 5 s connections are read to their EOF inside plugin a and reclaimed while another
# thread loads and unloads it as fast as it can, the unloads through libc's own dlclose, which the
# library does not count (so it names those sites while the plugin comes and goes); then 2 s with
# the wrapped dlclose. The program must survive both and exit 0 (a look-up that read the object's
# symbol and name after the loader's lock was let go killed it with SIGSEGV).
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

GRACE=300
SWEEP=200
first_lib=${AUTOCLOSE_LIB%% *}
[[ $first_lib == */libautoclose.so ]] || interposer=${first_lib##*/}

start_bg swap LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=$GRACE AUTOCLOSE_SWEEP_MS=$SWEEP \
    AUTOCLOSE_STATS_FILE="$TMP/swap.prom" \
    "$FIXTURES/sites_dlclose" --port-file "$TMP/swap.port" --plugins "$FIXTURES" --swap
port=$(await_port swap)
for i in 1 2 3; do # one after another: the server accepts them in this order
    timeout 10 python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"hello")
s.close()' "$port" || fail "client $i failed"
done
wait_until 5000 has_lines 1 '^swapped: ' "$TMP/swap.out" || fail "the plugins were not swapped"
sed 's/^/  /' "$TMP/swap.out"
eof_a=$(sed -n 's/^a: eof fd=\([0-9]*\) n=0, read fd=[0-9]* n=5$/\1/p' "$TMP/swap.out")
once_a=$(sed -n 's/^a: eof fd=[0-9]* n=0, read fd=\([0-9]*\) n=5$/\1/p' "$TMP/swap.out")
eof_b=$(sed -n 's/^b: eof fd=\([0-9]*\) n=0$/\1/p' "$TMP/swap.out")
if [ -z "$eof_a" ] || [ -z "$once_a" ] || [ -z "$eof_b" ]; then
    fail "the plugins' reads: $(cat "$TMP/swap.out")"
fi
wait_until $((GRACE + 10 * SWEEP + 5000)) has_lines 3 ': (shutdown|close) fd=' "$TMP/swap.err" ||
    fail "$(count_lines ': (shutdown|close) fd=' "$TMP/swap.err") of 3 reclaims logged"
actions "$TMP/swap.err" | sed 's/^/  /'
line_of() { actions "$TMP/swap.err" | grep -E ": (shutdown|close) fd=$1 "; }
# (A sweep that found the first in CLOSE_WAIT before its read met the EOF names it by its last
# read, in plugin a too.)
[[ $(line_of "$eof_a") =~ \ found=(read\ site|sweep\ last_read)=unknown$ ]] ||
    fail "the EOF read in the unloaded plugin a is not named unknown: $(line_of "$eof_a")"
[[ $(line_of "$once_a") == *" found=sweep last_read=unknown" ]] ||
    fail "the last read in the unloaded plugin a is not last_read=unknown: $(line_of "$once_a")"
if [ -z "${interposer:-}" ]; then
    [[ $(line_of "$eof_b") =~ \ found=read\ site=sites_dlclose_b\.so\+0x[0-9a-f]+\ symbol=sites_dlclose_b\.so!sites_plugin_b_eof\+0x[0-9a-f]+$ ]] ||
        fail "the EOF read in plugin b is not named in it: $(line_of "$eof_b")"
fi
# shellcheck disable=SC2317 # called through wait_until
by_site() { [ -e "$TMP/swap.prom" ] && grep -q "autoclose_reclaimed_by_site_total{.*site=\"unknown\"} 2$" "$TMP/swap.prom"; }
wait_until 3000 by_site || fail "the stats file does not count the two as unknown:" \
    "$(grep autoclose_reclaimed_by_site_total "$TMP/swap.prom" 2>/dev/null)"
grep -q 'sites_dlclose_a' "$TMP/swap.prom" && fail "the stats file names plugin a"
same=$(sed -n 's/^swapped: .*: //p' "$TMP/swap.out")

for mode in --unseen ""; do
    seconds=5
    [ -n "$mode" ] || seconds=2
    name=churn${mode#--}
    start_bg "$name" LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=100 \
        "$FIXTURES/sites_dlclose" --plugins "$FIXTURES" --churn $seconds $mode
    rc=0
    wait_bg "$name" || rc=$?
    [ "$rc" = 0 ] || fail "sites_dlclose --churn $seconds $mode: exit status $rc (139: SIGSEGV)"
    reclaims=$(count_lines ': (shutdown|close) fd=' "$TMP/$name.err")
    named=$(count_lines ' site=sites_dlclose_a\.so\+' "$TMP/$name.err")
    echo "  $name: $(cat "$TMP/$name.out"); $reclaims reclaims logged, $named naming plugin a"
    [ "$reclaims" -gt 0 ] || fail "$name: no reclaim logged"
    # Each EOF is followed by the program's own dlclose of the plugin: counted, its site unknown.
    [ -n "$mode" ] || [ "$named" = 0 ] || fail "$name: $named sites named in a plugin unloaded since"
done
pass "sites in an unloaded plugin say unknown (b loaded at a's place: $same), b's own is named;\
 the program survived 5 s of unseen and 2 s of counted unloads of the plugin during reclaims"
