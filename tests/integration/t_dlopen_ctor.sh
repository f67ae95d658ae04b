#!/usr/bin/env bash
# The library's thread names a reclaim's call site with the loader's help (dl_iterate_phdr, which
# takes the loader's list lock); dlopen holds its own lock (dl_load_lock) while a constructor runs.
# The thread must neither wait for that one nor hold any of its own locks while it looks.
# dlopen_ctor reads one connection to its EOF and leaks it, and never reads a second one, which
# the sweep finds and, its data unread, keeps tracked; then it dlopen()s a plugin whose
# constructor sleeps past the grace (the first connection is reclaimed meanwhile) and then reads
# and closes the second connection: a close of a tracked number takes the library's tracker lock.
# dlopen must return at the end of the stall, not hang (with the site put into words under the
# tracker lock, it did); the constructor's read and close succeed; the first connection's line,
# with a site inside main, is written during the constructor's stall, not held until dlopen
# returned (a look-up through dladdr, which waits for dl_load_lock, held every reclaim of the
# process up for as long as a constructor ran).
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

GRACE=300
STALL=1500

start_bg server LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=$GRACE AUTOCLOSE_SWEEP_MS=100 \
    "$FIXTURES/dlopen_ctor" --port-file "$TMP/server.port" --plugin "$FIXTURES/dlopen_ctor.so" \
    --stall-ms $STALL
port=$(await_port server)
for i in 1 2; do
    timeout 10 python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"hello")
s.close()' "$port" || fail "client $i failed"
done
wait_until $((STALL + 5000)) has_lines 1 '^dlopen ' "$TMP/server.out" ||
    fail "dlopen has not returned $((STALL + 5000)) ms after the clients closed: a deadlock"
grep '^dlopen returned' "$TMP/server.out" || fail "dlopen failed: $(grep '^dlopen' "$TMP/server.out")"
grep -Eq '^constructor read fd=[0-9]+ n=[0-9]+ close=0$' "$TMP/server.out" ||
    fail "the constructor's read and close: $(grep '^constructor' "$TMP/server.out")"
wait_until 3000 has_lines 1 ': shutdown fd=' "$TMP/server.err" || fail "no reclaim logged"
actions "$TMP/server.err" | sed 's/^/  /'
returned=$(sed -n 's/^dlopen returned .* at_ms=\([0-9]*\)$/\1/p' "$TMP/server.out")
first=$(actions "$TMP/server.err" | head -n 1 | cut -d' ' -f1)
first_ms=$(date -d "$first" +%s%3N)
echo "  dlopen returned at $returned, the first reclaim was logged at $first_ms"
# Due a grace after the EOF, early in the stall: logged well before its end.
[ "$first_ms" -lt $((returned - STALL / 3)) ] ||
    fail "logged only as dlopen returned: the site's look-up waited for the loader's lock"

# The site inside main, where the program read the EOF (unless a sanitizer's runtime is preloaded
# in front of the library: then it is its interceptor's, as t_leak_sites says).
first_lib=${AUTOCLOSE_LIB%% *}
[[ $first_lib == */libautoclose.so ]] ||
    pass "dlopen returned after its constructor's ${STALL} ms stall, its read and close; the\
 reclaim logged during the stall (${first_lib##*/} in front)"
read -r start size < <(nm -S "$FIXTURES/dlopen_ctor" | awk '$4 == "main" { print $1, $2 }')
inside=0
while read -r off; do
    (($((16#$off)) >= 16#$start && $((16#$off)) < 16#$start + 16#$size)) && inside=$((inside + 1))
done < <(actions "$TMP/server.err" | sed -n 's/.* site=dlopen_ctor+0x\([0-9a-f]*\).*/\1/p')
assert_eq "$(actions "$TMP/server.err" | wc -l)" "$inside" "reclaims naming a site inside main"
pass "dlopen returned after its constructor's ${STALL} ms stall, its read and close; the reclaim\
 logged during the stall, with its site"
