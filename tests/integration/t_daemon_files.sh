#!/usr/bin/env bash
# The files autoclosed (as root) writes, where another user (nobody) might get at them: that user
# cannot make it write anywhere else, nor hang it. --log-file must be in a directory no other user
# can write (one owned by nobody, or a sticky /tmp-like one, is refused at start: one line, exit
# 2): there a user could put at the name a file whose open never returns (a FUSE mount). Within a
# directory root owns, the library's rule still stands: a symlink at the name, a FIFO, or a second
# hard link is refused, and the file it points to is unchanged; after a rotation (SIGHUP) the new
# name is opened by the same rules, and when that fails the lines go to stderr from then on (the
# old file's last line and stderr say so), never to the old file or through the link.
# --stats-file may be in a directory nobody can write: it replaces a symlink at its name rather
# than writing through it, and symlinks at the temporary names one might guess are neither
# followed nor replaced.
#
# nobody's directory is not sticky, so the kernel's fs.protected_symlinks (which guards only
# sticky world-writable directories) does not help: only the daemon's own open does.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
need_root "the daemon runs as root and the planted names belong to nobody"

chmod 0711 "$TMP"
drop=$TMP/drop
mkdir "$drop"
chown nobody:nogroup "$drop"
chmod 0755 "$drop"
as_nobody() { "${UNPRIVILEGED[@]}" "$@"; }
target=$TMP/precious
echo "root's file" >"$target"
chmod 0644 "$target"
want=$(sha256sum <"$target")
untouched() { [ "$(sha256sum <"$target")" = "$want" ] || fail "$1: root's file was written: $(cat "$target")"; }
# shellcheck disable=SC2119 # no ports to avoid
port=$(pick_port)

# refused_at_start WHERE WHAT REASON: the daemon refuses --log-file WHERE: exit 2, one line
# naming REASON, and root's file unchanged.
refused_at_start() {
    run_daemon start --ports "$port" --once --log-file "$1"
    echo "  --log-file at $2: exit $RUN_RC: $(cat "$TMP/start.err")"
    [ "$RUN_RC" -eq 2 ] || fail "--log-file at $2: exit $RUN_RC, not 2"
    [ "$(wc -l <"$TMP/start.err")" -eq 1 ] || fail "--log-file at $2: not one line on stderr"
    grep -qF -- "$3" "$TMP/start.err" || fail "--log-file at $2: the line does not say '$3'"
    untouched "--log-file at $2"
}
# Directories another user can write: nobody's own, and a sticky one open to all (after a
# rotation, a user could make the name there and mount a FUSE file system on it).
refused_at_start "$drop/log" "nobody's directory" "$drop is owned by another user"
sticky=$TMP/sticky
mkdir "$sticky"
chmod 1777 "$sticky"
refused_at_start "$sticky/log" "a sticky directory open to all" "$sticky is writable by others"
# In root's own directory, the file rules (what root itself, or a mistake, might leave there).
own=$TMP/own
mkdir "$own"
chmod 0755 "$own"
ln -s "$target" "$own/log"
refused_at_start "$own/log" "a symlink to root's file" "symbolic link"
rm "$own/log"
mkfifo "$own/log"
refused_at_start "$own/log" "a FIFO" "not a plain file"
[ "$RUN_MS" -lt 5000 ] || fail "--log-file at a FIFO: took ${RUN_MS} ms (blocked in open?)"
rm "$own/log"
ln "$target" "$own/log"
refused_at_start "$own/log" "a second hard link to root's file" "not a plain file with one link"
rm "$own/log"

# Rotation: logrotate's move, SIGHUP, the new file.
LOG=$own/log
start_daemon rotate --ports "$port" --interval-ms 100 --log-file "$LOG"
wait_until 2000 has_lines 1 'watching' "$LOG" || fail "no start-up line in $LOG"
assert_eq "-rw-r----- 1" "$(stat -c '%A %h' "$LOG")" "the log file's mode and links"
mv "$LOG" "$LOG.1"
kill -HUP "$DAEMON_PID"
wait_until 2000 test -f "$LOG" || fail "SIGHUP did not open $LOG anew"
# Then the directory is opened to another user (a mistake) and the file moved away: the reopen is
# refused, and the lines go to stderr.
mv "$LOG" "$LOG.2"
chown nobody "$own"
kill -HUP "$DAEMON_PID"
said='cannot reopen --log-file .*owned by another user.*: logging to stderr'
wait_until 2000 has_lines 1 "$said" "$LOG.2" ||
    fail "the old file's last line does not say the reopen failed: $(tail -n 2 "$LOG.2")"
grep -qE "$said" "$TMP/rotate.err" || fail "stderr does not say the reopen failed"
stop_daemon rotate
[ ! -e "$LOG" ] || fail "the daemon made $LOG in a directory another user owns"
grep -q 'stopping on signal 15' "$TMP/rotate.err" || fail "the lines after the failed reopen are not on stderr"
! grep -q 'stopping on signal' "$LOG.2" || fail "the old file got lines after the failed reopen"
tail -n 1 "$LOG.2" | grep -qE "$said" || fail "the failed reopen's line is not the old file's last"
echo "  after SIGHUP into nobody's directory: '$(grep -E "$said" "$TMP/rotate.err" | sed 's/^.*]: //')'"

# The stats file: a symlink at its name, and at temporary names one might guess (with the pid:
# the wrapper's own, which the daemon keeps across exec).
STATS=$drop/autoclose.prom
as_nobody ln -s "$target" "$STATS"
for guess in "$STATS.tmp" "$drop/.autoclose.prom.tmp" "$STATS~" "$STATS.new"; do
    as_nobody ln -s "$target" "$guess"
done
# shellcheck disable=SC2016 # expanded by the inner shell, whose pid the daemon keeps
timeout 30 bash -c 'for g in "$1.tmp.$$" "$1.$$.tmp" "$1.$$"; do "${@:5}" ln -s "$2" "$g"; done
    exec "$3" --ports "$4" --once --stats-file "$1"' _ "$STATS" "$target" "$AUTOCLOSED" "$port" \
    "${UNPRIVILEGED[@]}" >"$TMP/stats.out" 2>"$TMP/stats.err" ||
    fail "autoclosed --once --stats-file: exit $?: $(cat "$TMP/stats.err")"
untouched "--stats-file over planted symlinks"
if [ -L "$STATS" ] || [ ! -f "$STATS" ]; then
    fail "$STATS is not a plain file now: $(ls -l "$STATS")"
fi
assert_eq "-rw-r--r-- root" "$(stat -c '%A %U' "$STATS")" "the stats file's mode and owner"
grep -q '^autoclosed_reclaimed_total 0$' "$STATS" || fail "the stats file lacks its counters: $(cat "$STATS")"
links=$(find "$drop" -type l | wc -l)
assert_eq 7 "$links" "planted symlinks still there, untouched"
while read -r l; do
    [ "$(readlink "$l")" = "$target" ] || fail "$l was changed"
done < <(find "$drop" -type l)
leftover=$(find "$drop" -type f ! -name autoclose.prom ! -name 'log.*')
[ -z "$leftover" ] || fail "temporary files left: $leftover"
pass "no directory another user can write holds the log; planted symlinks, a FIFO and a hard link never made root write another file (log and stats)"
