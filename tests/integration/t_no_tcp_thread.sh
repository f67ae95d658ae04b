#!/usr/bin/env bash
# The library starts nothing in a program that has no TCP connection of its own: a program that
# only accepts AF_UNIX connections and connects a UDP socket gets no thread and no placeholder
# descriptor; a forked child of a process that had a TCP connection (closed again) gets no
# thread, so it can still unshare(CLONE_NEWUSER) (only a single-threaded process may), as
# sandboxing workers do. A child that holds a connection its parent accepted does get one: it
# may meet that connection's FIN and keep it, never calling accept or connect itself. And a
# program without TCP that forks makes exactly the system calls it makes without the library.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim
# A sanitizer runtime starts threads of its own.
[[ $AUTOCLOSE_LIB != *" "* ]] || skip "a sanitizer runtime starts threads of its own"

without=$("$FIXTURES/fork_probe" --no-tcp) || fail "fork_probe --no-tcp failed without the library"
with=$(env LD_PRELOAD="$AUTOCLOSE_LIB" "$FIXTURES/fork_probe" --no-tcp) ||
    fail "fork_probe --no-tcp failed with the library"
echo "  AF_UNIX and UDP only: without the library: $without; with it: $with"
assert_eq "$without" "$with" "threads and descriptors of a program without TCP"

out=$(env LD_PRELOAD="$AUTOCLOSE_LIB" "$FIXTURES/fork_probe" --fork-unshare) ||
    fail "fork_probe --fork-unshare failed"
echo "  a child of a process that had a TCP connection: $(echo "$out" | tr '\n' ' ')"
grep -qx 'child threads=1' <<<"$out" || fail "the child got a thread: $out"
grep -qx 'unshare=ok' <<<"$out" || fail "the child could not unshare(CLONE_NEWUSER): $out"

out=$(env LD_PRELOAD="$AUTOCLOSE_LIB" "$FIXTURES/fork_probe" --fork-unshare --hold-connection) ||
    fail "fork_probe --fork-unshare --hold-connection failed"
echo "  a child holding its parent's connection: $(echo "$out" | tr '\n' ' ')"
grep -qx 'child threads=2' <<<"$out" || fail "the child holding a connection got no thread: $out"
if command -v strace >/dev/null; then
    # syscalls_after_start FILE: the system call names from the program's "start" line on.
    syscalls_after_start() {
        # A call another process interrupted is printed twice (unfinished, then resumed): the
        # first line names it.
        sed -n '/write(1, "start/,$p' "$1" | grep -v ' resumed>' | sed -E 's/^[0-9]+ +//; s/\(.*//' |
            grep -E '^[a-z_0-9]+$' | grep -v '^exit_group$' | sort
    }
    strace -f -o "$TMP/without.st" "$FIXTURES/fork_probe" --fork-no-tcp >/dev/null ||
        fail "fork_probe --fork-no-tcp failed"
    strace -f -o "$TMP/with.st" env LD_PRELOAD="$AUTOCLOSE_LIB" "$FIXTURES/fork_probe" \
        --fork-no-tcp >/dev/null || fail "fork_probe --fork-no-tcp failed with the library"
    diff <(syscalls_after_start "$TMP/without.st") <(syscalls_after_start "$TMP/with.st") \
        >"$TMP/fork.diff" || fail "a fork without TCP makes other system calls with the library: $(cat "$TMP/fork.diff")"
    echo "  a fork without TCP: the same system calls with and without the library ($(syscalls_after_start "$TMP/with.st" | wc -l))"
fi
pass "no thread, descriptor or system call without a TCP connection of the process's own"
