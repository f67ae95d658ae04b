#!/usr/bin/env bash
# The application's close against the timer's action, under stress: with no grace and a sweep as
# often as it can run, a multi-threaded server reads half-closed connections to EOF and closes
# them while new connections, some of them long-lived "innocents" whose clients never close, are
# accepted onto the numbers just freed. Whatever the shim checked about the old socket must never
# land on the new one: no innocent may see a FIN or an RST, nor its server a premature EOF. Three
# phases: shutdown mode; shutdown mode after a fork (a forked process's timer works in the
# application's descriptor table, naming sockets by number); close mode (a release replaces the
# number itself). A race needs luck to show; an action that found its number closed under it
# (EBADF) is the visible trace of the same window, so none may fail that way either.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

SECONDS_PER_PHASE=${CLOSE_RACE_SECONDS:-4}
INNOCENTS=200
RATE=1000 # half-close cycles a second: each leaves a TIME_WAIT for a minute
problems=()

for phase in shutdown after-fork close-mode; do
    env=(AUTOCLOSE_MODE=shutdown)
    opt=()
    case $phase in
    after-fork) opt=(--fork-first) ;;
    close-mode) env=(AUTOCLOSE_MODE=close) ;;
    esac
    name=server-$phase
    log="$TMP/$name.log"
    start_bg "$name" LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=0 AUTOCLOSE_SWEEP_MS=1 \
        AUTOCLOSE_LOG=error AUTOCLOSE_LOG_FILE="$log" "${env[@]}" "$FIXTURES/close_race" server \
        --port-file "$TMP/$name.port" --threads 4 "${opt[@]}"
    port=$(await_port "$name")
    rc=0
    timeout $((SECONDS_PER_PHASE + 30)) "$FIXTURES/close_race" client --port "$port" \
        --seconds "$SECONDS_PER_PHASE" --threads 4 --innocents $INNOCENTS --rate $RATE \
        >"$TMP/client-$phase.out" 2>"$TMP/client-$phase.err" || rc=$?
    # The server's count from after the client's goodbye (it reports every 200 ms).
    reports=$(count_lines '^halfclosed=' "$TMP/$name.out")
    wait_until 3000 has_lines $((reports + 2)) '^halfclosed=' "$TMP/$name.out" ||
        fail "$phase: the server stopped reporting"
    summary=$(tail -n 1 "$TMP/client-$phase.out")
    server=$(grep '^halfclosed=' "$TMP/$name.out" | tail -n 1)
    kill -TERM -- "-${BG_PIDS[$name]}" 2>/dev/null || true
    ebadf=$(count_lines 'error=Bad file descriptor' "$log")
    echo "  $phase: client: $summary (exit $rc)"
    echo "  $phase: server: $server; actions that found their number closed: $ebadf"
    { grep -E '^cut ' "$TMP/client-$phase.out" || true; } | head -n 5 | sed 's/^/    /'
    { grep -Fs 'Bad file descriptor' "$log" || true; } | head -n 3 | sed 's/^/    /'

    [[ $summary =~ ^cycles=([0-9]+)\ .*innocents=([0-9]+)\ .*cut=([0-9]+)$ ]] ||
        fail "$phase: the client reported no summary (exit $rc)"
    cycles=${BASH_REMATCH[1]} innocents=${BASH_REMATCH[2]} cuts=${BASH_REMATCH[3]}
    [[ $server =~ reused=([0-9]+)\ innocent_eof=([0-9]+)$ ]] ||
        fail "$phase: the server reported no counts"
    reused=${BASH_REMATCH[1]} innocent_eof=${BASH_REMATCH[2]}
    # The stress must have run as planned: many cycles (a sanitizer build runs far fewer than the
    # rate allows), and innocents on recycled numbers.
    if [ "$cycles" -lt $((RATE * SECONDS_PER_PHASE / 20)) ] || [ "$innocents" -ne $INNOCENTS ] ||
        [ "$reused" -eq 0 ]; then
        fail "$phase: the stress did not run as planned (cycles=$cycles innocents=$innocents" \
            "reused=$reused)"
    fi
    if [ "$rc" -ne 0 ] || [ "$cuts" -ne 0 ]; then
        problems+=("$phase: $cuts innocents cut (exit $rc)")
    fi
    if [ "$innocent_eof" -ne 0 ]; then
        problems+=("$phase: the server's reads of $innocent_eof innocents ended")
    fi
    if [ "$ebadf" -ne 0 ]; then
        problems+=("$phase: $ebadf actions found their number closed")
    fi
done
[ ${#problems[@]} -eq 0 ] || fail "${problems[*]}"
pass "no innocent connection cut in 3 x ${SECONDS_PER_PHASE} s of closes racing the timer"
