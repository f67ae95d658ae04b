#!/usr/bin/env bash
# A program still reading is never cut (slow_reader_lib.sh): the shim finds the peer's FIN with
# its sweep while a 100 kB request sits unread, and must wait for as long as the server keeps
# taking it, 1000 B every 50 ms; a server that stopped reading is still reclaimed ten graces after
# its last read.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=slow_reader_lib.sh
. "$(dirname "$0")/slow_reader_lib.sh"
need_shim

READER_ENV=(LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS="$GRACE" AUTOCLOSE_SWEEP_MS=100
    AUTOCLOSE_LOG=debug AUTOCLOSE_LOG_FILE="$TMP/NAME.log")
start_slow_readers
send_requests

check_reader
# The shim knew of the FIN while the request was being read, looked, and let it be.
grep -q 'pending fd=' "$TMP/reader.log" || fail "the shim never found the reader's FIN"
waits=$(count_lines 'waiting fd=[0-9]+: ' "$TMP/reader.log")
echo "  reader's log: $waits 'waiting' lines, $(actions "$TMP/reader.log" | wc -l) actions"
[ "$waits" -ge 1 ] || fail "the shim never looked at the reader's connection while it read"
assert_eq 0 "$(actions "$TMP/reader.log" | wc -l)" "actions on the reader"

check_quitter
actions "$TMP/quitter.log" | sed 's/^/    /'
assert_eq 1 "$(actions "$TMP/quitter.log" | wc -l)" "actions on the quitter"
pass "a ${REQUEST} B request read over ${HOLD}+ ms arrived whole and was answered; a reader that\
 stopped was reclaimed ${QUIT_CUT_MS} ms after its last read"
