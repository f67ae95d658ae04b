#!/usr/bin/env bash
# A socket passed with SCM_RIGHTS is held by the sender and the receiver alike, whatever its
# number held before: the process under the shim may only release its own copy (log "close ...
# shared=yes"), never shut the socket down, while the other still has to answer. A front accepts
# the client, reads its request to the client's half-close and passes the connection to a back
# (tests/fixtures/fd_pass.c); the one without the shim answers 2 s later (grace 300 ms) and
# closes its copy, the one under the shim never touches its copy again. Cases:
#   recvmsg, libc close   the back, under the shim, receives with recvmsg onto the number that held
#                         one of its own accepted connections (closed with close);
#   recvmsg, raw close    the same, but that connection was closed by a raw close system call: its
#                         "born here" stamp is still on the number, only recvmsg can clear it;
#   recvmmsg, raw close   the same through recvmmsg;
#   raw recvmsg           received by a raw recvmsg system call, which no wrapper sees, onto a
#                         number close cleared; the back reads its EOF once (the sweep does not
#                         look on ports the process never learned, and a raw receipt teaches none);
#   sendmmsg              the front is under the shim and passes its accepted connection with
#                         sendmmsg.
# Without the shim's care the connection is shut down after the grace: the client gets the FIN
# and no reply.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

GRACE=300
SWEEP=100
REPLY_MS=2000
shim=(LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS="$GRACE" AUTOCLOSE_SWEEP_MS="$SWEEP"
    AUTOCLOSE_LOG=debug)
# name: back options | front options | which side runs under the shim
cases=(
    "recvmsg:--recv recvmsg --earlier-close libc|--answer|back"
    "recvmsg-raw-close:--recv recvmsg --earlier-close raw|--answer|back"
    "recvmmsg-raw-close:--recv recvmmsg --earlier-close raw|--answer|back"
    "raw-recvmsg:--recv raw --earlier-close libc --read-eof|--answer|back"
    "sendmmsg:--answer|--send sendmmsg|front"
)

declare -A shimmed
for c in "${cases[@]}"; do
    name=${c%%:*}
    rest=${c#*:}
    IFS='|' read -r back_opts front_opts side <<<"$rest"
    shimmed[$name]=$side
    back_env=() front_env=()
    if [ "$side" = back ]; then
        back_env=("${shim[@]}" AUTOCLOSE_LOG_FILE="$TMP/$name.log")
    else
        front_env=("${shim[@]}" AUTOCLOSE_LOG_FILE="$TMP/$name.log")
    fi
    # shellcheck disable=SC2086 # the options are words
    start_bg "$name-back" "${back_env[@]}" "$FIXTURES/fd_pass" --role back --unix "$TMP/$name.sock" \
        --port-file "$TMP/$name-back.port" --reply-ms $REPLY_MS $back_opts
    back_port=$(await_port "$name-back")
    # shellcheck disable=SC2086
    start_bg "$name-front" "${front_env[@]}" "$FIXTURES/fd_pass" --role front \
        --unix "$TMP/$name.sock" --back-port "$back_port" --port-file "$TMP/$name-front.port" \
        --reply-ms $REPLY_MS $front_opts
done
declare -A port
for c in "${cases[@]}"; do
    name=${c%%:*}
    port[$name]=$(await_port "$name-front")
    # One whole heartbeat and the last copy's FIN within 8 s.
    start_bg "client-$name" python3 "$SCRIPT_FIXTURES/reply_client.py" --port "${port[$name]}" \
        --expect heartbeat --wait 8
done

cut=()
for c in "${cases[@]}"; do
    name=${c%%:*}
    rc=0
    wait_bg "client-$name" || rc=$?
    log=$TMP/$name.log
    echo "$name (the ${shimmed[$name]} under the shim):"
    echo "  client: $(grep '^reply_bytes=' "$TMP/client-$name.out" || echo 'no result') (exit $rc)"
    sed 's/^/  back: /' "$TMP/$name-back.out"
    sed 's/^/  front: /' "$TMP/$name-front.out"
    actions "$log" | sed 's/^/  shim: /'
    if [ "${shimmed[$name]}" = back ]; then
        read -r fd earlier < <(sed -n 's/^received fd=\([0-9]*\) earlier=\([0-9]*\).*/\1 \2/p' \
            "$TMP/$name-back.out")
        [ -n "${fd:-}" ] || fail "$name: the back received nothing"
        [ "$fd" = "$earlier" ] ||
            fail "$name: the socket arrived on fd $fd, not on $earlier where the back's own connection was"
    else
        fd=$(sed -n 's/^passed fd=\([0-9]*\).*/\1/p' "$TMP/$name-front.out")
        [ -n "$fd" ] || fail "$name: the front passed nothing"
    fi
    shutdowns=$(count_lines ": shutdown fd=" "$log")
    released=$(count_lines ": close fd=$fd .*shared=yes" "$log")
    if [ "$rc" -ne 0 ] || [ "$shutdowns" -ne 0 ] || [ "$released" -ne 1 ]; then
        cut+=("$name (client exit $rc, shutdowns $shutdowns, releases of fd $fd as shared $released)")
    fi
done
[ ${#cut[@]} -eq 0 ] || fail "a socket passed with SCM_RIGHTS was treated as this process's alone: ${cut[*]}"
pass "replies ${REPLY_MS} ms after a half-close arrived whole over sockets received with recvmsg,\
 recvmmsg and a raw recvmsg onto numbers that held the receiver's own connections, and passed\
 with sendmmsg; the process under the shim released its copy (shared=yes), never shut it down"
