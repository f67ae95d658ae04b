#!/usr/bin/env bash
# autoclosed and containers: NS network namespaces (unshare -n, loopback only), each with CONNS
# idle connections on port PORT held by one process (both ends), and one more namespace whose
# server on the same port leaks LEAKS connections. autoclosed --ports PORT alone, at the default
# interval (1 s) and grace (5 s), looks into every namespace. Measured: its CPU (its own and its
# children's, the scanners and takers it reaped) over SECS seconds with nothing half-closed, and
# after the leak how long from the FIN each connection was shut down (target: grace + 1 s).
# With BUSY=1 each idle namespace's process also sends a byte to itself every 200 ms over one of
# its connections, so that every namespace's counters move at every interval: each must then be
# listed, as often as the listings' budget allows.
#   tests/bench/netns.sh DAEMON [NS] [CONNS] [SECS]      (root; prints key=value lines)
set -euo pipefail

daemon=$1 ns=${2:-20} conns=${3:-500} secs=${4:-30}
port=7000 leaks=10 grace=5000
[ "$(id -u)" -eq 0 ] || {
    echo "skipped=needs root (network namespaces)"
    exit 0
}
command -v python3 >/dev/null || {
    echo "skipped=needs python3"
    exit 0
}
# In a PID namespace of its own where one can be made, so that the daemon, which looks into
# every process's network namespace, meets this run's namespaces only, not those of whatever else
# runs on the machine (other test runs' namespaces, busy, would be listed too).
if [ -z "${NETNS_BENCH_INNER:-}" ] && unshare --pid --fork --mount-proc true 2>/dev/null; then
    exec env NETNS_BENCH_INNER=1 unshare --pid --fork --mount-proc "$0" "$@"
fi
work=$(mktemp -d)
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# hold N: listens on PORT, connects N times to itself and holds both ends; "ready" once done.
# leak: listens on PORT and keeps every connection it accepts, never closing one.
cat >"$work/ns.py" <<'EOF'
import socket, sys, time
mode, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", port))
l.listen(4096)
kept = []
if mode == "hold":
    for i in range(n):
        kept.append(socket.create_connection(("127.0.0.1", port)))
        kept.append(l.accept()[0])
    print("ready", flush=True)
    while mode == "hold" and len(sys.argv) > 4:
        kept[0].send(b"x")
        kept[1].recv(1)
        time.sleep(0.2)
    time.sleep(100000)
print("ready", flush=True)
while True:
    kept.append(l.accept()[0])
EOF
start_ns() { # name mode n
    # shellcheck disable=SC2016 # $0 and $@ are sh's
    unshare -n sh -c 'ip link set lo up && exec python3 "$0" "$@"' "$work/ns.py" "$2" $port "$3" \
        ${BUSY:+busy} >"$work/$1.out" 2>&1 &
    pids+=("$!")
}
for i in $(seq "$ns"); do start_ns "idle$i" hold "$conns"; done
start_ns leaker leak 0
leaker=${pids[-1]}
for i in $(seq 600); do
    [ "$(cat "$work"/*.out | grep -c '^ready')" -lt $((ns + 1)) ] || break
    sleep 0.1
done
[ "$(cat "$work"/*.out | grep -c '^ready')" -eq $((ns + 1)) ] || {
    echo "error=the namespaces were not ready"
    exit 1
}

cpu_ticks() { awk '{ print $14 + $15 + $16 + $17 }' "/proc/$1/stat"; }
own_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
"$daemon" --ports $port --log debug --log-file "$work/daemon.log" &
d=$!
pids+=("$d")
sleep 3 # its first looks list every namespace once: measured apart from the steady state
t0=$(cpu_ticks "$d") o0=$(own_ticks "$d") lines0=$(wc -l <"$work/daemon.log")
sleep "$secs"
t1=$(cpu_ticks "$d") o1=$(own_ticks "$d")
hz=$(getconf CLK_TCK)
cpu_ms=$(((t1 - t0) * 1000 / hz))
own_ms=$(((o1 - o0) * 1000 / hz))
echo "namespaces=$ns conns_per_ns=$conns busy=${BUSY:-0} secs=$secs cpu_ms=$cpu_ms own_ms=$own_ms cpu_pct=$(awk -v c=$cpu_ms -v s="$secs" 'BEGIN { printf "%.2f", c / s / 10 }')"
echo "first_listing_cpu_us=$(grep -m "$((ns + 1))" ': listed netns' "$work/daemon.log" | sed -n 's/.*cpu_us=\([0-9]*\).*/\1/p' | awk '{ s += $1 } END { print s }')"
# What the scanners spent in the window, as the daemon's debug lines say (a listing's CPU, a look
# for namespaces' CPU): the rest of the children's time is their forks and quiet reads.
awk -v from="$lines0" 'NR > from && /: listed netns/ { n++; sub(/.*cpu_us=/, ""); c += $1 }
    NR > from && /: looked for network namespaces/ { d++; sub(/.*cpu_us=/, ""); e += $1 }
    END { printf "window_listings=%d listing_cpu_ms=%.1f discoveries=%d discovery_cpu_ms=%.1f\n", n, c / 1000, d, e / 1000 }' \
    "$work/daemon.log"
rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$d/status")
echo "rss_kb=$rss"

# The leak: LEAKS connections to the leaking server, closed by the client at once.
nsenter -t "$leaker" -n python3 -c '
import socket, sys
cs = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(int(sys.argv[2]))]
for c in cs:
    c.close()' $port $leaks
for i in $(seq 200); do
    [ "$(grep -c ': shutdown ' "$work/daemon.log")" -lt $leaks ] || break
    sleep 0.1
done
since=$(sed -n 's/.*: shutdown .*since_fin_ms=\([0-9]*\).*/\1/p' "$work/daemon.log" | sort -n | tail -n 1)
echo "reclaimed=$(grep -c ': shutdown ' "$work/daemon.log") of=$leaks max_since_fin_ms=${since:-never} grace_ms=$grace"
