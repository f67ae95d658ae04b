#!/usr/bin/env bash
# make bench: the same workloads with and without libautoclose, alternating, and one table per
# question: what a wrapped call costs (wall clock, and user-space instructions counted by
# callgrind), how fast half-closed connections are reclaimed at scale and how much memory each
# costs while tracked, what the library costs an idle process (alone, and beside another
# process's pile-up of CLOSE_WAIT), what it costs a real server (redis), and what it costs a
# server whose connections come and go (churn). Every figure is printed as measured; the last
# table says which targets hold.
#
# Scales, all optional:
#   BENCH_ONLY=hot,instr,musl,reclaim,idle,pileup,redis,churn,daemon,scan,netns,fork   sections
#                              to run (default: all)
#   BENCH_ROUNDS=15            wall-clock rounds per hot-path case (median and spread; what
#                                is left to measure is about 1%, the spread of single runs
#                                here several times that: with 7 the medians wandered by 2%)
#   BENCH_HOT_ITERS=20000      round trips per wall-clock run
#   BENCH_CG_ITERS=1000        round trips of the shorter callgrind loop (the longer is 3x)
#   BENCH_SCALES="1000 10000 50000"   connections half-closed at once (more than one process's
#                              RLIMIT_NOFILE allows: a pre-forked server, each worker its share)
#   BENCH_CONNS_PER_PROCESS    most connections one server process holds before the server is
#                              pre-forked (default: what RLIMIT_NOFILE allows, less 64)
#   BENCH_GRACE_MS=3000        AUTOCLOSE_GRACE_MS for the reclaim runs
#   BENCH_IDLE_CONNS=10000     healthy idle connections for the sweep's CPU cost
#   BENCH_IDLE_SECS=10         how long that cost is measured, per side
#   BENCH_QUIET_SECS=3         how long the no-wakeup cases are watched
#   BENCH_PILEUP=15000         connections another process (without the shim) holds in
#                              CLOSE_WAIT beside an idle server under the shim (BENCH_IDLE_SECS
#                              long, with and without the pile-up)
#   BENCH_REDIS_ROUNDS=9       redis-benchmark runs per side (short runs, many rounds: the
#   BENCH_REDIS_REQUESTS=50000   ratio of neighbouring runs is what survives a busy machine)
#   BENCH_CHURN_CONNS=3000     short connections per churn run, one after another (the system
#                              call counts under strace use a third of it)
#   BENCH_CHURN_ROUNDS=7       churn runs per server style and side
#   BENCH_DAEMON_CONNS=10000   half-closed connections autoclosed reclaims in one server process
#                              (a pre-forked one if RLIMIT_NOFILE is lower), and healthy ones it
#                              idles beside (BENCH_IDLE_SECS long)
#   BENCH_TW_WAIT=65           seconds the daemon's idle runs wait for earlier TIME_WAIT sockets
#                              to expire
#   BENCH_FORKS=2000           forks per run of the fork cost (BENCH_ROUNDS runs per side)
#   BENCH_SCAN_FDS=20000       descriptors of the process autoclosed --pid watches while other
#                              processes' CLOSE_WAIT sockets come and go (fewer if
#                              RLIMIT_NOFILE allows fewer)
#   BENCH_SCAN_RATE=20         those unrelated CLOSE_WAIT sockets made a second
#   BENCH_SCAN_SECS=30         how long the daemon's CPU is measured, per interval
#   BENCH_NETNS=20             network namespaces (containers) for the daemon's netns section,
#   BENCH_NETNS_CONNS=500      idle connections in each, and
#   BENCH_NETNS_SECS=30        how long its CPU is measured (root only: skipped otherwise)
set -euo pipefail

: "${AUTOCLOSE_LIB:?AUTOCLOSE_LIB must name the built libautoclose.so}"
: "${BENCH_BIN:?BENCH_BIN must name the directory of the built benchmark programs}"
lib=$AUTOCLOSE_LIB
bin=$BENCH_BIN
only=${BENCH_ONLY:-hot,instr,musl,reclaim,idle,pileup,redis,churn,daemon,scan,netns,fork}
# The musl build of the library and the hot-path program built with musl-gcc (make bench builds
# both where musl-gcc is; the musl section is skipped without them).
lib_musl=${AUTOCLOSE_LIBMUSL:-$(dirname "$lib")/musl/libautoclose.so}
bin_musl=${BENCH_BIN_MUSL:-$bin/musl}
rounds=${BENCH_ROUNDS:-15}
hot_iters=${BENCH_HOT_ITERS:-20000}
cg_iters=${BENCH_CG_ITERS:-1000}
scales=${BENCH_SCALES:-1000 10000 50000}
grace_ms=${BENCH_GRACE_MS:-3000}
idle_conns=${BENCH_IDLE_CONNS:-10000}
idle_secs=${BENCH_IDLE_SECS:-10}
quiet_secs=${BENCH_QUIET_SECS:-3}
pileup_conns=${BENCH_PILEUP:-15000}
redis_rounds=${BENCH_REDIS_ROUNDS:-9}
redis_requests=${BENCH_REDIS_REQUESTS:-50000}
churn_conns=${BENCH_CHURN_CONNS:-3000}
churn_rounds=${BENCH_CHURN_ROUNDS:-7}
daemon_conns=${BENCH_DAEMON_CONNS:-10000}
tw_wait=${BENCH_TW_WAIT:-65}
forks=${BENCH_FORKS:-2000}
scan_fds=${BENCH_SCAN_FDS:-20000}
scan_rate=${BENCH_SCAN_RATE:-20}
scan_secs=${BENCH_SCAN_SECS:-30}
daemon=${AUTOCLOSED:-$(dirname "$lib")/autoclosed}

kinds=(read recv readv recvmsg poll epoll)
transports=(unix tcp)

work=$(mktemp -d "${TMPDIR:-/tmp}/autoclose-bench.XXXXXX")
redis_pids=()
churn_pid=""
pileup_pid=""
verdicts=()

cleanup() {
    local pid
    for pid in "${redis_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    # The churn server dies with its parent too (PR_SET_PDEATHSIG), strace's tracee included.
    if [ -n "$pileup_pid" ]; then
        kill "$pileup_pid" 2>/dev/null || true
        wait "$pileup_pid" 2>/dev/null || true
    fi
    if [ -n "$churn_pid" ]; then
        kill "$churn_pid" 2>/dev/null || true
        wait "$churn_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

want() { [[ ",$only," == *",$1,"* ]]; }

# "median min max" of the numbers on stdin, one per line.
stats() {
    sort -g | awk '{ v[NR] = $1 }
        END {
            if (NR == 0) { print "nan nan nan"; exit }
            m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            print m, v[1], v[NR]
        }'
}

# The value of name=... in a line of name=value pairs.
field() { tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"; }

verdict() { verdicts+=("$(printf '%-7s %s' "$1" "$2")"); }

# awk prints the comparison as 1 or 0; bash decides.
holds() { [ "$(awk -v a="$1" -v b="$2" 'BEGIN { print (a <= b) ? 1 : 0 }')" = 1 ]; }

section() { printf '\n== %s\n' "$1"; }

machine() {
    section "machine"
    printf '%s, %s CPUs, %s GiB, kernel %s, %s\n' \
        "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)" "$(nproc)" \
        "$(awk '/MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)" "$(uname -r)" \
        "$(sed -n 's/^PRETTY_NAME=//p' /etc/os-release | tr -d '"')"
    printf 'load average at start: %s; host TCP sockets: %s\n' \
        "$(cut -d' ' -f1-3 /proc/loadavg)" "$(sed -n 's/^TCP: //p' /proc/net/sockstat)"
}

# ---- hot path, wall clock -------------------------------------------------------------------

# The wall-clock cases: transport, kind, and what the "with" side adds to LD_PRELOAD. The timer
# thread starts at the first TCP accept or connect; the unix cases never start it. The last
# three rows are controls without the shim on either side, the "with" side running one idle
# thread of its own: what any second thread costs a single-threaded process, and its parts.
wall_cases() {
    local t k
    for t in "${transports[@]}"; do
        for k in "${kinds[@]}"; do
            echo "$t $k -"
        done
    done
    echo "tcp read AUTOCLOSE_SWEEP_MS=0"
    echo "tcp read idle-thread"
    echo "tcp read private-thread"
    echo "tcp read bare-thread"
}

hot_wall() {
    section "hot path, wall clock: one-byte round trips, ns each (median, min-max of $rounds runs; each the fastest of 5 bursts of $((hot_iters / 5)))"
    local r t k extra first name
    for ((r = 1; r <= rounds; r++)); do
        while read -r t k extra; do
            name=$t.$k.$extra
            # Alternate which side goes first, so a drift in machine load favours neither.
            for first in $((r % 2)) $(((r + 1) % 2)); do
                if [ "$first" = 1 ]; then
                    "$bin/hotpath" wall "$k" "$t" "$hot_iters" >>"$work/wall.$name.no"
                elif [ "$extra" = - ]; then
                    LD_PRELOAD=$lib "$bin/hotpath" wall "$k" "$t" "$hot_iters" >>"$work/wall.$name.yes"
                elif [[ "$extra" == *-thread ]]; then
                    "$bin/hotpath" wall "$k" "$t" "$hot_iters" "$extra" >>"$work/wall.$name.yes"
                else
                    env LD_PRELOAD="$lib" "$extra" "$bin/hotpath" wall "$k" "$t" "$hot_iters" \
                        >>"$work/wall.$name.yes"
                fi
            done
        done < <(wall_cases)
    done
    printf '%-5s %-8s %22s %22s %24s\n' transport kind "without" "with" "ratio (per-run range)"
    local worst=0 sided="" no no_lo no_hi yes yes_lo yes_hi ratio lo hi label
    while read -r t k extra; do
        name=$t.$k.$extra
        read -r no no_lo no_hi < <(stats <"$work/wall.$name.no")
        read -r yes yes_lo yes_hi < <(stats <"$work/wall.$name.yes")
        paste "$work/wall.$name.yes" "$work/wall.$name.no" | awk '{ print $1 / $2 }' >"$work/ratio.$name"
        read -r ratio lo hi < <(stats <"$work/ratio.$name")
        label=$k
        case $extra in
        -) ;;
        idle-thread) label="$k**" ;;
        private-thread) label="$k**g" ;;
        bare-thread) label="$k**k" ;;
        *) label="$k*" ;;
        esac
        printf '%-9s %-8s %8.0f (%5.0f-%5.0f) %8.0f (%5.0f-%5.0f) %8.3f (%5.3f-%5.3f)\n' \
            "$t" "$label" "$no" "$no_lo" "$no_hi" "$yes" "$yes_lo" "$yes_hi" "$ratio" "$lo" "$hi"
    done < <(wall_cases)
    # Over a socket pair the process has no TCP connection and so no thread of the shim's: the
    # wrappers alone, indistinguishable from 1 (some runs faster, some slower, the median within
    # 2%, less than this kind of machine's run-to-run spread). Over TCP the shim's thread runs, and
    # costs what any second thread costs (the ** control row): the median must stay within 2% of
    # that control's.
    local control
    read -r control _ < <(stats <"$work/ratio.tcp.read.idle-thread")
    while read -r t k extra; do
        [ "$extra" = - ] || continue
        read -r ratio lo hi < <(stats <"$work/ratio.$t.$k.$extra")
        if [ "$t" = tcp ]; then
            holds "$ratio" "$(awk -v c="$control" 'BEGIN { print c + 0.02 }')" ||
                sided="$sided $t/$k($(printf '%.3f' "$ratio") against the thread's $control)"
        else
            holds "$lo" 1 && holds 1 "$hi" && holds "$ratio" 1.02 ||
                sided="$sided $t/$k($(printf '%.3f' "$ratio"))"
        fi
        worst=$(awk -v a="$worst" -v b="$ratio" 'BEGIN { printf "%.3f", (b > a) ? b : a }')
    done < <(wall_cases)
    echo "(* the shim with AUTOCLOSE_SWEEP_MS=0: the thread runs, no sweep)"
    echo "(** no shim on either side; 'with' is the same program running one idle thread: what any"
    echo "   second thread costs a single-threaded process, in glibc and in the kernel. Its parts:"
    echo " **g the idle pthread has a descriptor table of its own: glibc's multi-threaded path alone;"
    echo " **k the idle thread is one glibc never hears of, sharing the table: the kernel's part alone)"
    if [ -z "$sided" ]; then
        verdict HOLDS "hot path wall clock: socket pairs indistinguishable from 1, TCP within 2% of what an idle thread costs (largest median ratio $worst)"
    else
        verdict MISSED "hot path wall clock: a socket pair distinguishable from 1, or TCP more than 2% above an idle thread's cost:$sided"
    fi
}

# ---- hot path, instructions -----------------------------------------------------------------

# Runs every kind twice (cg_iters and 3 * cg_iters round trips) under callgrind, one profile per
# measured loop: the difference of the two removes every one-time cost (loading, dlsym, the
# first call's lazy binding), leaving the exact per-round-trip count.
callgrind_run() { # name transport [env...]
    local name=$1 transport=$2
    shift 2
    env "$@" valgrind --tool=callgrind --compress-strings=no --compress-pos=no \
        --collect-atstart=no --toggle-collect=measured_loop --dump-after=measured_loop \
        --callgrind-out-file="$work/cg.$name" \
        "${cg_bin:-$bin/hotpath}" count "$transport" "$cg_iters" $((3 * cg_iters)) >/dev/null 2>"$work/cg.$name.log"
}

# Self cost per function ("object function Ir") of one profile; a call's inclusive cost (the
# line after calls=) belongs to the callee, not to the caller.
self_costs() {
    awk '/^ob=/ { ob = substr($0, 4); sub(/.*\//, "", ob); next }
         /^fn=/ { fn = substr($0, 4); next }
         /^calls=/ { skip = 1; next }
         /^[0-9]/ { if (skip) { skip = 0; next } self[ob " " fn] += $2 }
         END { for (k in self) print k, self[k] }' "$1"
}

# Per round trip: total Ir, then the shim's own Ir by wrapper, then libc's cancellation
# bookkeeping, for kind index $2 of profile set $1.
per_round_trip() {
    local a=$work/cg.$1.$((2 * $2 + 1)) b=$work/cg.$1.$((2 * $2 + 2)) n=$((2 * cg_iters))
    local ta tb
    ta=$(sed -n 's/^totals: //p' "$a")
    tb=$(sed -n 's/^totals: //p' "$b")
    echo "total $(((tb - ta) / n))"
    join -a 2 -e 0 -o 0,1.2,2.2 <(self_costs "$a" | awk '{ print $1 ":" $2, $3 }' | sort) \
        <(self_costs "$b" | awk '{ print $1 ":" $2, $3 }' | sort) |
        awk -v n="$n" '{
            split($1, on, ":"); d = ($3 - $2) / n
            if (on[1] == "libautoclose.so") {
                # Helpers kept out of line count for the wrapper that calls them.
                w = on[2]
                if (w == "strip") w = "epoll_wait"
                else if (w ~ /^poll_(one|many)$/) w = "poll"
                own[w] += d
            } else if (on[2] ~ /^__pthread_(en|dis)able_asynccancel$/) {
                cancel += d
            }
        }
        END { for (w in own) print "shim", w, own[w]; print "cancel", cancel + 0 }'
}

hot_instructions() {
    section "hot path, user-space instructions per round trip (callgrind: $cg_iters vs $((3 * cg_iters)) round trips, exact)"
    if ! command -v valgrind >/dev/null 2>&1; then
        install_debian valgrind valgrind || {
            echo "SKIP: valgrind is not installed and cannot be installed here"
            verdict SKIPPED "instructions per wrapped call (no valgrind)"
            return
        }
    fi
    callgrind_run unix.no unix LD_PRELOAD=
    callgrind_run unix.yes unix LD_PRELOAD="$lib"
    callgrind_run tcp.no tcp LD_PRELOAD=
    callgrind_run tcp.yes tcp LD_PRELOAD="$lib"
    callgrind_run tcp.nothread tcp LD_PRELOAD="$lib" AUTOCLOSE_SWEEP_MS=0

    printf '%-9s %-8s %7s %7s %7s %6s %9s   %s\n' transport kind without with added calls "per call" \
        "of which: shim's own code per call; libc cancellation bookkeeping per call"
    local t k i calls no yes added cancel own
    : >"$work/own"
    for t in "${transports[@]}"; do
        for i in "${!kinds[@]}"; do
            k=${kinds[$i]}
            case $k in poll | epoll) calls=6 ;; *) calls=4 ;; esac
            no=$(per_round_trip "$t.no" "$i" | awk '$1 == "total" { print $2 }')
            per_round_trip "$t.yes" "$i" >"$work/prt"
            yes=$(awk '$1 == "total" { print $2 }' "$work/prt")
            cancel=$(awk '$1 == "cancel" { printf "%.1f", $2 / '"$calls"' }' "$work/prt")
            own=$(awk '$1 == "shim" {
                    # Calls per round trip of each wrapper in this kind: 2 of each.
                    printf "%s%s %.1f", sep, $2, $3 / 2; sep = ", " }' "$work/prt")
            awk -v t="$t" '$1 == "shim" { print t, $2, $3 / 2 }' "$work/prt" >>"$work/own"
            echo "$t cancel $cancel" >>"$work/own"
            added=$((yes - no))
            printf '%-9s %-8s %7d %7d %7d %6d %9.1f   %s; %s\n' "$t" "$k" "$no" "$yes" "$added" \
                "$calls" "$(awk -v a="$added" -v c="$calls" 'BEGIN { print a / c }')" "$own" "$cancel"
        done
    done
    local nothread
    nothread=$(per_round_trip tcp.nothread 0 | awk '$1 == "total" { print $2 }')
    printf 'tcp read with AUTOCLOSE_SWEEP_MS=0 (the thread runs, no sweep): %d per round trip\n' \
        "$nothread"

    # One line per wrapper: its own code, and what libc adds to it once the shim's thread
    # exists (the TCP runs; the AF_UNIX runs never start it).
    printf '\nadded instructions per wrapped call with nothing to do (target: at most 20)\n'
    printf '%-11s %10s %22s %14s\n' wrapper "shim code" "+ libc (timer thread)" "= TCP total"
    local w c total misses="" poll_own=""
    c=$(awk '$1 == "tcp" && $2 == "cancel" { s += $3; n++ } END { printf "%.1f", s / n }' "$work/own")
    for w in write send read recv readv recvmsg poll epoll_wait; do
        own=$(awk -v w="$w" '$1 == "unix" && $2 == w { print $3; exit }' "$work/own")
        [ -n "$own" ] || continue
        total=$(awk -v a="$own" -v b="$c" 'BEGIN { printf "%.1f", a + b }')
        printf '%-11s %10.1f %22.1f %14.1f\n' "$w" "$own" "$c" "$total"
        # poll always has something to do on a TCP wait: it adds POLLRDHUP to the entry before
        # the real call and takes it out again after, so its figure is reported on its own.
        if [ "$w" = poll ]; then
            poll_own=$own
        else
            holds "$own" 20 || misses="$misses $w($own)"
        fi
    done
    echo "(poll: its one-descriptor wait arms POLLRDHUP and restores the entry around the real call)"
    if [ -z "$misses" ]; then
        verdict HOLDS "shim code per wrapped call with nothing to do <= 20 instructions"
    else
        verdict MISSED "shim code per wrapped call with nothing to do <= 20 instructions:$misses"
    fi
    [ -z "${poll_own:-}" ] ||
        verdict NOTE "poll, which arms POLLRDHUP around every wait (its work, not nothing to do): $poll_own instructions"

    # The price of calling libc's functions always (no system calls of the shim's own): any second
    # thread makes glibc take its multi-threaded path. Stated, not judged.
    verdict NOTE "the shim's thread makes a single-threaded TCP process's cancellable calls take glibc's multi-threaded path: $c more instructions (and 2 atomic RMWs) in libc per call"
}

# ---- hot path under musl --------------------------------------------------------------------

# The hot path of a program linked against musl: hotpath built with musl-gcc, without and with
# the musl build of the library, beside the same figures for glibc. The shim's own instructions
# per wrapped call over a socket pair (no thread of the shim's: the wrappers alone), and the wall
# clock of read round trips over both transports.
musl_hot() {
    section "hot path under musl: hotpath built with musl-gcc, the musl library, beside glibc's"
    if [ ! -x "$bin_musl/hotpath" ] || [ ! -f "$lib_musl" ]; then
        echo "SKIP: no musl build ($bin_musl/hotpath, $lib_musl): make bench builds them where musl-gcc is"
        verdict SKIPPED "hot path under musl (no musl-gcc)"
        return
    fi
    local r t side first name no yes ratio lo hi
    for ((r = 1; r <= rounds; r++)); do
        for t in "${transports[@]}"; do
            for first in $((r % 2)) $(((r + 1) % 2)); do
                if [ "$first" = 1 ]; then
                    "$bin_musl/hotpath" wall read "$t" "$hot_iters" >>"$work/musl.wall.$t.no"
                else
                    LD_PRELOAD=$lib_musl "$bin_musl/hotpath" wall read "$t" "$hot_iters" \
                        >>"$work/musl.wall.$t.yes"
                fi
            done
        done
    done
    printf 'wall clock, read round trips, ns each (median, min-max of %s runs):\n' "$rounds"
    printf '%-9s %22s %22s %24s\n' transport without with "ratio (per-run range)"
    for t in "${transports[@]}"; do
        read -r no lo hi < <(stats <"$work/musl.wall.$t.no")
        printf '%-9s %8.0f (%5.0f-%5.0f)' "$t" "$no" "$lo" "$hi"
        read -r yes lo hi < <(stats <"$work/musl.wall.$t.yes")
        printf ' %8.0f (%5.0f-%5.0f)' "$yes" "$lo" "$hi"
        paste "$work/musl.wall.$t.yes" "$work/musl.wall.$t.no" | awk '{ print $1 / $2 }' \
            >"$work/musl.ratio.$t"
        read -r ratio lo hi < <(stats <"$work/musl.ratio.$t")
        printf ' %8.3f (%5.3f-%5.3f)\n' "$ratio" "$lo" "$hi"
    done

    if ! command -v valgrind >/dev/null 2>&1; then
        echo "SKIP: no valgrind: the instruction counts were not taken"
        verdict SKIPPED "instructions per wrapped call under musl (no valgrind)"
        return
    fi
    for side in no yes; do
        name=musl.unix.$side
        [ "$side" = yes ] && cg_bin=$bin_musl/hotpath callgrind_run "$name" unix LD_PRELOAD="$lib_musl"
        [ "$side" = no ] && cg_bin=$bin_musl/hotpath callgrind_run "$name" unix LD_PRELOAD=
        name=glibc.unix.$side
        [ "$side" = yes ] && callgrind_run "$name" unix LD_PRELOAD="$lib"
        [ "$side" = no ] && callgrind_run "$name" unix LD_PRELOAD=
    done
    printf '\nshim code per wrapped call with nothing to do, instructions (callgrind, socket pair):\n'
    printf '%-11s %8s %8s\n' wrapper glibc musl
    local i k w libc g m misses=""
    for libc in glibc musl; do
        : >"$work/own.$libc"
        for i in "${!kinds[@]}"; do
            per_round_trip "$libc.unix.yes" "$i" | awk -v l="$libc" '$1 == "shim" { print $2, $3 / 2 }' \
                >>"$work/own.$libc"
        done
    done
    for w in write send read recv readv recvmsg poll epoll_wait; do
        g=$(awk -v w="$w" '$1 == w { print $2; exit }' "$work/own.glibc")
        m=$(awk -v w="$w" '$1 == w { print $2; exit }' "$work/own.musl")
        [ -n "$g$m" ] || continue
        printf '%-11s %8.1f %8.1f\n' "$w" "${g:-0}" "${m:-0}"
        [ "$w" = poll ] || holds "${m:-0}" 20 || misses="$misses $w(${m})"
    done
    printf 'read round trip in all (4 wrapped calls), without / with the library: glibc %s / %s, musl %s / %s\n' \
        "$(per_round_trip glibc.unix.no 0 | awk '$1 == "total" { print $2 }')" \
        "$(per_round_trip glibc.unix.yes 0 | awk '$1 == "total" { print $2 }')" \
        "$(per_round_trip musl.unix.no 0 | awk '$1 == "total" { print $2 }')" \
        "$(per_round_trip musl.unix.yes 0 | awk '$1 == "total" { print $2 }')"
    if [ -z "$misses" ]; then
        verdict HOLDS "musl: shim code per wrapped call with nothing to do <= 20 instructions"
    else
        verdict MISSED "musl: shim code per wrapped call with nothing to do <= 20 instructions:$misses"
    fi
}

# ---- reclaim at scale -----------------------------------------------------------------------

reclaim() {
    local hard cap n line
    hard=$(ulimit -Hn)
    cap=${BENCH_CONNS_PER_PROCESS:-$((hard - 64))}
    [ "$cap" -le $((hard - 64)) ] || cap=$((hard - 64))
    section "reclaim at scale: N connections half-closed at once against a leaking epoll server (AUTOCLOSE_GRACE_MS=$grace_ms)"
    echo "RLIMIT_NOFILE hard limit: $hard; one server process holds at most $cap connections here;"
    echo "a larger N runs as a pre-forked server whose workers each hold their share"
    printf '%-7s %9s %14s %26s %24s %12s %14s\n' conns "FINs sent" "all EOFs read" \
        "CLOSE_WAIT=0, minus grace" "without shim: left," "memory/conn" "idle mem/conn"
    printf '%-7s %9s %14s %26s %24s %12s %14s\n' "" "over (ms)" "after (ms) *" \
        "from 1st FIN / last FIN" "memory/conn" "(tracked)" "(shim-no shim)"
    local at10k_ms="" mems=() worst_mem=0
    for n in $scales; do
        local note="" procs=1
        if [ "$n" -gt "$cap" ]; then
            procs=$(((n + cap - 1) / cap))
            note="($procs server processes of $((n / procs))-$(((n + procs - 1) / procs)) connections each: one may hold $cap)"
        fi
        local with without
        with=$("$bin/scale" reclaim --conns "$n" --grace-ms "$grace_ms" --mem-at-ms $((grace_ms / 2)) \
            --observe-ms 2000 --preload "$lib" --env "AUTOCLOSE_GRACE_MS=$grace_ms" \
            --log "$work/reclaim.$n.log" -- "$bin/leak_server" --expect "$n" --workers "$procs") || true
        without=$("$bin/scale" reclaim --conns "$n" --grace-ms "$grace_ms" --mem-at-ms $((grace_ms / 2)) \
            --observe-ms 1000 --log "$work/reclaim.$n.none.log" -- "$bin/leak_server" --expect "$n" \
            --workers "$procs") || true
        echo "$n with: $with" >>"$work/reclaim.raw"
        echo "$n without: $without" >>"$work/reclaim.raw"
        local spread detect ms idle_with idle_without mem left
        spread=$(field fin_spread_ms "$with")
        detect=$(field detect_ms "$with")
        ms=$(field reclaim_ms "$with")
        mem=$(field bytes_per_conn "$with")
        left="$(field left "$without") of $n, $(field bytes_per_conn "$without") B"
        idle_with=$(field anon_idle_kb "$with")
        idle_without=$(field anon_idle_kb "$without")
        local from_last="-" idle_per
        [ -n "$ms" ] && from_last=$(awk -v a="$ms" -v b="$spread" 'BEGIN { printf "%.0f", a - b }')
        idle_per=$(awk -v a="$idle_with" -v b="$idle_without" -v n="$n" \
            'BEGIN { printf "%.1f", (a - b) * 1024 / n }')
        printf '%-7s %9.0f %6.0f / %5.0f %17s / %6s %24s %10.1f B %12s B %s\n' "$n" "$spread" \
            "$detect" "$(field detect_ms "$without")" \
            "${ms:-never}" "$from_last" "$left" "$mem" "$idle_per" "$note"
        if [ "$(field close_wait_at_sample "$with")" != "$n" ]; then
            echo "  note: at the memory sample $(field close_wait_at_sample "$with") of $n were in CLOSE_WAIT"
        fi
        [ "$n" = 10000 ] && at10k_ms=${ms:-inf}
        mems+=("$mem B at $n")
        worst_mem=$(awk -v a="$worst_mem" -v b="${mem:-inf}" 'BEGIN { print (b + 0 > a + 0 || b == "inf") ? b : a }')
    done
    echo "(* with the shim / without: the server's read of every EOF, from the first FIN. CLOSE_WAIT=0 is"
    echo " counted by sock_diag every 5 ms; the grace runs from each EOF read, so the close loop's"
    echo " spread and the server's EOF reading are both inside the 'from 1st FIN' figure)"
    if [ -n "$at10k_ms" ]; then
        if holds "$at10k_ms" 500; then
            verdict HOLDS "reclaim of 10,000: ${at10k_ms} ms after the grace (target < 500)"
        else
            verdict MISSED "reclaim of 10,000: ${at10k_ms} ms after the grace (target < 500)"
        fi
    fi
    if [ "${#mems[@]}" -gt 0 ]; then
        local list
        list=$(printf '%s, ' "${mems[@]}")
        if holds "$worst_mem" 128; then
            verdict HOLDS "memory per tracked connection: ${list%, } (target <= 128)"
        else
            verdict MISSED "memory per tracked connection: ${list%, } (target <= 128)"
        fi
    fi
}

# ---- idle cost ------------------------------------------------------------------------------

idle() {
    section "idle: the server's own CPU time and context switches (all its threads)"
    local a b c d
    a=$("$bin/scale" idle --conns 0 --secs "$quiet_secs" --preload "$lib" -- "$bin/leak_server") || true
    b=$("$bin/scale" idle --conns 1000 --secs "$quiet_secs" --preload "$lib" \
        --env AUTOCLOSE_SWEEP_MS=0 -- "$bin/leak_server" --expect 1000) || true
    c=$("$bin/scale" idle --conns "$idle_conns" --secs "$idle_secs" -- "$bin/leak_server" \
        --expect "$idle_conns") || true
    local sock
    sock=$(sed -n 's/^TCP: //p' /proc/net/sockstat)
    d=$("$bin/scale" idle --conns "$idle_conns" --secs "$idle_secs" --preload "$lib" -- \
        "$bin/leak_server" --expect "$idle_conns") || true
    printf '%-52s %6s %6s %9s %8s %8s\n' case threads secs "CPU ms" "% core" switches
    local line label
    for label in "shim, no TCP connection at all|$a" "shim, AUTOCLOSE_SWEEP_MS=0, 1000 idle connections|$b" \
        "no shim, $idle_conns idle connections|$c" "shim (sweep every 1000 ms), $idle_conns idle connections|$d"; do
        line=${label#*|}
        printf '%-52s %6s %6s %9s %8s %8s\n' "${label%%|*}" "$(field tasks "$line")" \
            "$(field secs "$line")" "$(field cpu_ms "$line")" "$(field cpu_pct "$line")" \
            "$(awk -v a="$(field vol_switches "$line")" -v b="$(field invol_switches "$line")" \
                'BEGIN { print a + b }')"
    done
    echo "host TCP sockets during the idle runs (every one is walked by each sweep): $sock"
    awk -v a="$(field cpu_ms "$d")" -v b="$(field cpu_ms "$c")" -v s="$(field secs "$d")" \
        'BEGIN { printf "the sweep costs %.1f ms of CPU per run (one a second)\n", (a - b) / s }'
    # No TCP connection: no thread at all. The sweep off: the thread sleeps with no timeout.
    local quiet=1 x
    for x in "$a" "$b"; do
        [ "$(field vol_switches "$x")" = 0 ] && [ "$(field invol_switches "$x")" = 0 ] || quiet=0
    done
    [ "$(field tasks "$a")" = 1 ] || quiet=0
    if [ "$quiet" = 1 ]; then
        verdict HOLDS "nothing pending (no TCP: no thread; sweep off: the thread never wakes): 0 wake-ups"
    else
        verdict MISSED "nothing pending: the process woke up (see the idle table)"
    fi
    local pct
    pct=$(awk -v a="$(field cpu_pct "$d")" -v b="$(field cpu_pct "$c")" 'BEGIN { printf "%.2f", a - b }')
    if holds "$pct" 1; then
        verdict HOLDS "sweep with $idle_conns idle connections: $pct% of a core (target < 1%)"
    else
        verdict MISSED "sweep with $idle_conns idle connections: $pct% of a core (target < 1%)"
    fi
}

# ---- another process's pile-up ---------------------------------------------------------------

# Sockets the kernel keeps as TIME_WAIT (FIN_WAIT_2 orphans included) on the host.
host_tw() { awk '/^TCP:/ { for (i = 1; i < NF; i++) if ($i == "tw") print $(i + 1) }' /proc/net/sockstat; }

# Waits (BENCH_TW_WAIT at most) until at most 1000 are left; prints how many seconds it waited.
settle_tw() {
    local waited=0
    while [ "$(host_tw)" -gt 1000 ] && [ $waited -lt "$tw_wait" ]; do
        sleep 1
        waited=$((waited + 1))
    done
    echo "$waited"
}

# The sweep asks the kernel only about the process's own ports, so another process's CLOSE_WAIT
# sockets never reach it; what is left is the kernel's walk past them. The pile-up's peers are on
# this host too: their FIN_WAIT_2 (a minute, tcp_fin_timeout) is waited out, so that the other
# process's 15,000 sockets are what is measured, as when its peers are elsewhere.
pileup() {
    local conns=100
    section "idle beside a pile-up: a server under the shim with $conns idle connections (sweep every 1000 ms), alone and beside $pileup_conns CLOSE_WAIT sockets of another process without the shim"
    local alone beside fifo=$work/pileup.in hold line="" host_alone host_beside w1 w2
    w1=$(settle_tw)
    host_alone=$(sed -n 's/^TCP: //p' /proc/net/sockstat)
    alone=$("$bin/scale" idle --conns "$conns" --secs "$idle_secs" --preload "$lib" -- \
        "$bin/leak_server" --expect "$conns") || true
    mkfifo "$fifo"
    "$bin/pileup" --conns "$pileup_conns" <"$fifo" >"$work/pileup.out" &
    pileup_pid=$!
    exec {hold}>"$fifo" # its stdin: once closed, it lets its connections go
    local waited=0
    until line=$(grep '^ready ' "$work/pileup.out"); do
        if [ $waited -ge 1200 ] || ! kill -0 "$pileup_pid" 2>/dev/null; then
            break
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    if [ -n "$line" ]; then
        w2=$(settle_tw)
        host_beside=$(sed -n 's/^TCP: //p' /proc/net/sockstat)
        beside=$("$bin/scale" idle --conns "$conns" --secs "$idle_secs" --preload "$lib" -- \
            "$bin/leak_server" --expect "$conns") || true
    fi
    exec {hold}>&-
    wait "$pileup_pid" || true
    pileup_pid=""
    if [ -z "$line" ]; then
        echo "SKIP: the pile-up never formed ($(cat "$work/pileup.out" 2>/dev/null))"
        verdict MISSED "beside a pile-up: not measured (the pile-up never formed)"
        return
    fi
    printf '%-52s %6s %9s %8s %8s\n' case secs "CPU ms" "% core" switches
    local label
    for label in "alone|$alone" "beside $pileup_conns CLOSE_WAIT of another process|$beside"; do
        line=${label#*|}
        printf '%-52s %6s %9s %8s %8s\n' "${label%%|*}" "$(field secs "$line")" \
            "$(field cpu_ms "$line")" "$(field cpu_pct "$line")" \
            "$(awk -v a="$(field vol_switches "$line")" -v b="$(field invol_switches "$line")" \
                'BEGIN { print a + b }')"
    done
    echo "host TCP sockets alone: $host_alone (waited $w1 s for TIME_WAIT to expire)"
    echo "host TCP sockets beside: $host_beside (waited $w2 s for the pile-up's peers' FIN_WAIT_2)"
    local extra
    extra=$(awk -v a="$(field cpu_pct "$beside")" -v b="$(field cpu_pct "$alone")" \
        'BEGIN { printf "%.2f", a - b }')
    awk -v a="$(field cpu_ms "$beside")" -v b="$(field cpu_ms "$alone")" -v s="$(field secs "$beside")" \
        'BEGIN { printf "the pile-up adds %.1f ms of CPU per sweep\n", (a - b) / s }'
    # What is left is the kernel's walk past the other process's sockets (its test of each
    # against the filter is a small part). Before the filter the sweep was handed every CLOSE_WAIT
    # socket of the host: 1.3% of a core more here.
    if [ -n "$(field cpu_pct "$beside")" ] && holds "$extra" 0.5; then
        verdict HOLDS "beside $pileup_conns CLOSE_WAIT of another process: +$extra% of a core (target < 0.5%)"
    else
        verdict MISSED "beside $pileup_conns CLOSE_WAIT of another process: +$extra% of a core (target < 0.5%)"
    fi
}

# ---- redis ----------------------------------------------------------------------------------

# Installs Debian packages when running as root (or with sudo -n); false when it cannot.
install_debian() { # command package...
    command -v "$1" >/dev/null 2>&1 && return 0
    shift
    local sudo=()
    if [ "$(id -u)" != 0 ]; then
        sudo -n true 2>/dev/null || return 1
        sudo=(sudo -n)
    fi
    echo "installing $* (apt-get)"
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@" \
        >"$work/apt.log" 2>&1 ||
        { DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get update -qq >>"$work/apt.log" 2>&1 &&
            DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq \
                --no-install-recommends "$@" >>"$work/apt.log" 2>&1; }
}

# CPU time of every thread of a process, in nanoseconds.
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f", s }'; }

free_port() {
    local p
    for p in $(shuf -i 20000-29999 -n 50); do
        if [ -z "$(ss -Htan "( sport = :$p )")" ]; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

start_redis() { # port (LD_PRELOAD and AUTOCLOSE_* come from the caller's environment)
    local port=$1
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize no --protected-mode yes --logfile "$work/redis.$port.log" \
        >"$work/redis.$port.out" 2>&1 &
    redis_pids+=($!)
    last_pid=$!
    local i
    for ((i = 0; i < 100; i++)); do
        [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ] && return 0
        sleep 0.1
    done
    return 1
}

redis() {
    section "redis-server throughput: redis-benchmark -n $redis_requests -c 50 on loopback ($redis_rounds runs per side, rotating)"
    if ! install_debian redis-server redis-server redis-tools ||
        ! install_debian redis-benchmark redis-tools; then
        echo "SKIP: redis-server/redis-benchmark are not installed and cannot be installed here (needs root)"
        verdict SKIPPED "redis throughput ratio"
        return
    fi
    # Three servers side by side: without the shim, with it, and with it but the periodic sweep
    # off (the thread runs, no sweep), which tells the sweep's share of any difference.
    local p_no p_yes p_nosweep
    local last_pid pids=()
    if ! p_no=$(free_port) || ! LD_PRELOAD='' start_redis "$p_no" || ! pids+=("$last_pid") ||
        ! p_yes=$(free_port) || ! LD_PRELOAD=$lib start_redis "$p_yes" || ! pids+=("$last_pid") ||
        ! p_nosweep=$(free_port) || ! LD_PRELOAD=$lib AUTOCLOSE_SWEEP_MS=0 start_redis "$p_nosweep" ||
        ! pids+=("$last_pid"); then
        echo "SKIP: redis-server did not start (see its log)"
        verdict SKIPPED "redis throughput ratio"
        return
    fi
    local r i j side port before sides=(no yes nosweep) ports=("$p_no" "$p_yes" "$p_nosweep")
    for ((r = 0; r < redis_rounds; r++)); do
        for i in 0 1 2; do
            j=$(((r + i) % 3))
            side=${sides[$j]}
            port=${ports[$j]}
            before=$(cpu_ns "${pids[$j]}")
            redis-benchmark -h 127.0.0.1 -p "$port" -q -n "$redis_requests" -c 50 \
                -t set,get --csv 2>/dev/null |
                tr -d '"' | awk -F, -v s="$side" 'NR > 1 { print $1, s, $2 }' >>"$work/redis.raw"
            # The server's own CPU time per request, all its threads (the shim's timer thread
            # too): far steadier than requests per second on a machine others are using.
            echo "$(($(cpu_ns "${pids[$j]}") - before)) $((2 * redis_requests))" |
                awk '{ print $1 / $2 }' >>"$work/redis.cpu.$side"
        done
    done
    printf '%-5s %21s %21s %21s %21s\n' test "without (req/s)" "with (req/s)" "ratio (per-run range)" \
        "ratio, sweep off"
    local test no no_lo no_hi yes yes_lo yes_hi ratio lo hi off off_lo off_hi
    for test in SET GET; do
        for side in "${sides[@]}"; do
            awk -v t="$test" -v s="$side" '$1 == t && $2 == s { print $3 }' "$work/redis.raw" \
                >"$work/redis.$test.$side"
        done
        read -r no no_lo no_hi < <(stats <"$work/redis.$test.no")
        read -r yes yes_lo yes_hi < <(stats <"$work/redis.$test.yes")
        paste "$work/redis.$test.yes" "$work/redis.$test.no" | awk '{ print $1 / $2 }' |
            stats >"$work/redis.$test.ratio"
        read -r ratio lo hi <"$work/redis.$test.ratio"
        read -r off off_lo off_hi < <(paste "$work/redis.$test.nosweep" "$work/redis.$test.no" |
            awk '{ print $1 / $2 }' | stats)
        printf '%-5s %7.0f (%5.0f-%5.0f) %7.0f (%5.0f-%5.0f) %6.3f (%5.3f-%5.3f) %6.3f (%5.3f-%5.3f)\n' \
            "$test" "$no" "$no_lo" "$no_hi" "$yes" "$yes_lo" "$yes_hi" "$ratio" "$lo" "$hi" \
            "$off" "$off_lo" "$off_hi"
    done
    local c_no c_yes c_off
    c_no=$(stats <"$work/redis.cpu.no" | cut -d' ' -f1)
    c_yes=$(stats <"$work/redis.cpu.yes" | cut -d' ' -f1)
    c_off=$(stats <"$work/redis.cpu.nosweep" | cut -d' ' -f1)
    printf 'server CPU per request (median): without %.0f ns, with %.0f ns (%.3fx), with sweep off %.0f ns (%.3fx)\n' \
        "$c_no" "$c_yes" "$(awk -v a="$c_yes" -v b="$c_no" 'BEGIN { print a / b }')" \
        "$c_off" "$(awk -v a="$c_off" -v b="$c_no" 'BEGIN { print a / b }')"
    echo "host TCP sockets at the end (each sweep walks them all): $(sed -n 's/^TCP: //p' /proc/net/sockstat)"
    local cpu_ratio
    cpu_ratio=$(awk -v a="$c_yes" -v b="$c_no" 'BEGIN { printf "%.3f", a / b }')
    # One figure per side for the verdict: the median of every per-run ratio, SET and GET
    # together. The sweep-off side adds only the wrappers (tens of instructions a request): when
    # it too reads below 0.98, the machine's noise is larger than the effect being measured.
    local pooled control
    pooled=$(for test in SET GET; do paste "$work/redis.$test.yes" "$work/redis.$test.no"; done |
        awk '{ print $1 / $2 }' | stats | awk '{ printf "%.3f", $1 }')
    control=$(for test in SET GET; do paste "$work/redis.$test.nosweep" "$work/redis.$test.no"; done |
        awk '{ print $1 / $2 }' | stats | awk '{ printf "%.3f", $1 }')
    local what="redis requests per second, with/without: $pooled (target >= 0.98; server CPU per request, with/without: ${cpu_ratio}x)"
    if holds 0.98 "$pooled"; then
        verdict HOLDS "$what"
    elif ! holds 0.98 "$control"; then
        verdict NOISY "$what; the sweep-off control reads $control, so this run cannot resolve 2%"
    else
        verdict MISSED "$what"
    fi
}

# ---- connection churn -----------------------------------------------------------------------

# A server that reads each EOF and closes at once should pay next to nothing: the read only notes
# the EOF and the close clears the note, neither with a system call. Three common styles, each
# serving short connections one after another (tests/bench/churn.c).
churn_styles=(blocking epoll thread)
churn_src=0
churn_server_pin=()
churn_client_pin=()

# The server on the last CPU this process may use and the client on the first, when there are
# two: unpinned, the thread style's handlers land on either, and one run's CPU time differed from
# the next by a third.
churn_pin() {
    local cpus=()
    mapfile -t cpus < <(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/self/status |
        awk -F, '{ for (i = 1; i <= NF; i++) {
                       n = split($i, r, "-"); for (c = r[1]; c <= r[n]; c++) print c } }')
    if [ "${#cpus[@]}" -ge 2 ]; then
        churn_server_pin=(--cpu "${cpus[-1]}")
        churn_client_pin=(--cpu "${cpus[0]}")
        echo "server pinned to CPU ${cpus[-1]}, client to CPU ${cpus[0]}"
    fi
}

# One churn run: the server in style $2 serves $3 connections (LD_PRELOAD=$4; under the command
# given after the client's extra option $5, if any) and its "conns=N cpu_ns=X" line is appended
# to $1. On a failure of either side: an error= line, and false.
churn_run() { # out style conns preload client-option|- [command...]
    local out=$1 style=$2 n=$3 preload=$4 opt=() pf=$work/churn.port i=0 ok=1
    [ "$5" = - ] || opt=("$5")
    shift 5
    # A new source address each run (127.0.0.10 to .249): the client closes first, so TIME_WAIT
    # (a minute) is on its side, and no one address's ports run out however many rounds run.
    churn_src=$(((churn_src + 1) % 240))
    rm -f "$pf"
    LD_PRELOAD=$preload "$@" "$bin/churn" server --style "$style" --port-file "$pf" --count "$n" \
        "${churn_server_pin[@]}" >"$work/churn.line" 2>"$work/churn.err" &
    churn_pid=$!
    while [ ! -s "$pf" ] && [ "$i" -lt 200 ]; do
        sleep 0.05
        i=$((i + 1))
    done
    if [ ! -s "$pf" ] || ! "$bin/churn" client --port "$(cat "$pf")" --count "$n" \
        --src "127.0.0.$((churn_src + 10))" "${opt[@]}" "${churn_client_pin[@]}" >/dev/null \
        2>>"$work/churn.err"; then
        ok=0
        kill "$churn_pid" 2>/dev/null || true
    fi
    wait "$churn_pid" || ok=0
    churn_pid=""
    if [ "$ok" = 1 ] && grep -q '^conns=' "$work/churn.line"; then
        cat "$work/churn.line" >>"$out"
        return 0
    fi
    echo "error=churn $style, $n connections${preload:+ with the shim}${1:+ under $1}: $(tr '\n' ' ' <"$work/churn.err")"
    return 1
}

churn_cpu() {
    section "connection churn: server CPU per connection in µs, all its threads ($churn_conns connections a run, one after another; median, min-max of $churn_rounds runs per side, alternating)"
    churn_pin
    local r s first side preload
    for ((r = 1; r <= churn_rounds; r++)); do
        for s in "${churn_styles[@]}"; do
            rm -f "$work/churn.round.no" "$work/churn.round.yes"
            # Alternate which side goes first, so a drift in machine load favours neither.
            for first in $((r % 2)) $(((r + 1) % 2)); do
                if [ "$first" = 1 ]; then
                    side=no preload=
                else
                    side=yes preload=$lib
                fi
                churn_run "$work/churn.round.$side" "$s" "$churn_conns" "$preload" - || true
            done
            # Only complete pairs: the ratios are taken run by run.
            if [ ! -s "$work/churn.round.no" ] || [ ! -s "$work/churn.round.yes" ]; then
                continue
            fi
            for side in no yes; do
                awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
                       print v["cpu_ns"] / v["conns"] / 1000 }' "$work/churn.round.$side" \
                    >>"$work/churn.$s.$side"
            done
        done
    done
    printf '%-9s %22s %22s %24s\n' style without with "ratio (per-round range)"
    local no no_lo no_hi yes yes_lo yes_hi ratio lo hi what
    for s in "${churn_styles[@]}"; do
        touch "$work/churn.$s.no" "$work/churn.$s.yes"
        read -r no no_lo no_hi < <(stats <"$work/churn.$s.no")
        read -r yes yes_lo yes_hi < <(stats <"$work/churn.$s.yes")
        read -r ratio lo hi < <(paste "$work/churn.$s.yes" "$work/churn.$s.no" |
            awk 'NF == 2 { print $1 / $2 }' | stats)
        printf '%-9s %8.1f (%5.1f-%5.1f) %8.1f (%5.1f-%5.1f) %8.3f (%5.3f-%5.3f)\n' \
            "$s" "$no" "$no_lo" "$no_hi" "$yes" "$yes_lo" "$yes_hi" "$ratio" "$lo" "$hi"
        what="churn/$s: server CPU per connection, with/without: $(printf '%.3f' "$ratio")"
        if holds "$ratio" 1.10; then
            verdict HOLDS "$what (target <= 1.10)"
        elif holds "$ratio" 1.15; then
            verdict MISSED "$what (target <= 1.10; within the floor, 1.15)"
        else
            verdict MISSED "$what (target <= 1.10; floor 1.15 missed too)"
        fi
    done
}

# "name calls" for each system call in a strace -c summary, sorted by name.
strace_counts() {
    [ -f "$1" ] || return 0
    awk '/^% time/ { on = 1; next }
         on && $1 ~ /^[0-9.]+$/ && $NF != "total" { print $NF, $4 }' "$1" | sort
}

# Calls with the shim less calls without, per system call ("name difference", the non-zero ones)
# and in total (the last line, "total N").
strace_diff() { # counts-without counts-with
    join -a 1 -a 2 -e 0 -o 0,1.2,2.2 "$1" "$2" |
        awk '{ d = $3 - $2; t += d; if (d != 0) print $1, d } END { print "total", t + 0 }'
}

churn_syscalls() {
    local n=$((churn_conns / 3))
    section "connection churn: system calls the shim adds (strace -f -c on the server, client in lockstep; runs of 1 and $n connections: the first is what is paid once, loading the library and starting its timer thread)"
    if ! install_debian strace strace; then
        echo "SKIP: strace is not installed and cannot be installed here"
        verdict SKIPPED "system calls and netlink dumps added per connection (no strace)"
        return
    fi
    # no: without the shim; yes: with it, the AUTOCLOSE_* defaults; off: AUTOCLOSE_SWEEP_MS=0,
    # no periodic sweep, so whatever is left is what the connections cost.
    local s k cfg env_opts
    for s in "${churn_styles[@]}"; do
        for k in 1 "$n"; do
            for cfg in no yes off; do
                case $cfg in
                no) env_opts=() ;;
                yes) env_opts=(-E "LD_PRELOAD=$lib") ;;
                off) env_opts=(-E "LD_PRELOAD=$lib" -E AUTOCLOSE_SWEEP_MS=0) ;;
                esac
                # The client in lockstep: the program's own calls are then the same on every run,
                # and the difference is the shim's.
                churn_run "$work/churn.strace.lines" "$s" "$k" "" --lockstep \
                    strace -f -C -qq -o "$work/st.$s.$cfg.$k" "${env_opts[@]}" || true
                strace_counts "$work/st.$s.$cfg.$k" >"$work/st.$s.$cfg.$k.counts"
            done
        done
    done
    printf '%-9s %-21s %10s %9s %13s %15s\n' style shim "added per" "one-time" "with-without" \
        "netlink dumps"
    printf '%-9s %-21s %10s %9s %13s %15s\n' "" "" connection "(1 conn)" "/ $n conns" \
        "in $n conns"
    local d0 d1 per raw dumps label each off_calls="" off_dumps=0 yes_calls="" yes_dumps=""
    for s in "${churn_styles[@]}"; do
        for cfg in yes off; do
            strace_diff "$work/st.$s.no.1.counts" "$work/st.$s.$cfg.1.counts" >"$work/st.d0"
            strace_diff "$work/st.$s.no.$n.counts" "$work/st.$s.$cfg.$n.counts" >"$work/st.d1"
            d0=$(sed -n 's/^total //p' "$work/st.d0")
            d1=$(sed -n 's/^total //p' "$work/st.d1")
            per=$(awk -v a="$d0" -v b="$d1" -v n="$n" 'BEGIN { printf "%.3f", (b - a) / (n - 1) }')
            raw=$(awk -v a="$d1" -v n="$n" 'BEGIN { printf "%.3f", a / n }')
            dumps=$(grep -c 'socket(AF_NETLINK' "$work/st.$s.$cfg.$n" 2>/dev/null || true)
            dumps=${dumps:-0}
            case $cfg in
            yes) label="defaults (sweep 1 s)" ;;
            off) label="AUTOCLOSE_SWEEP_MS=0" ;;
            esac
            printf '%-9s %-21s %10.3f %+9d %13.3f %15d\n' "$s" "$label" "$per" "$d0" "$raw" "$dumps"
            # Each system call's difference in both runs: what grows with the connections, and
            # what is paid once.
            each=$(join -a 1 -a 2 -e 0 -o 0,1.2,2.2 <(grep -v '^total ' "$work/st.d0") \
                <(grep -v '^total ' "$work/st.d1") |
                awk '{ printf "%s%s %+d/%+d", sep, $1, $2, $3; sep = ", " }')
            echo "    with-without at 1 / $n: ${each:-none}"
            if [ "$cfg" = off ]; then
                off_calls="$off_calls $s $per,"
                off_dumps=$((off_dumps + dumps))
            else
                yes_calls="$yes_calls $s $per,"
                yes_dumps="$yes_dumps $s $dumps,"
            fi
        done
    done
    echo "(added per connection: the two runs' difference in added calls over the difference in"
    echo " connections; netlink dumps: AF_NETLINK sockets opened, one for each sock_diag dump)"
    local worst
    worst=$(tr ',' '\n' <<<"$off_calls" | awk 'NF == 2 { v = $2 < 0 ? -$2 : $2; if (v > w) w = v }
        END { print w + 0 }')
    # Counted to a fiftieth: the timer's own wake-ups (at most one a grace, whatever the churn)
    # move a run's count by a few calls either way; a call every 50 connections or more would be a
    # cost per connection.
    if holds "$worst" 0.02; then
        verdict HOLDS "churn: system calls added per connection with AUTOCLOSE_SWEEP_MS=0:${off_calls%,} (target 0)"
    else
        verdict MISSED "churn: system calls added per connection with AUTOCLOSE_SWEEP_MS=0:${off_calls%,} (target 0)"
    fi
    if [ "$off_dumps" = 0 ]; then
        verdict HOLDS "churn: netlink dumps with AUTOCLOSE_SWEEP_MS=0: none in $((3 * n)) connections (target 0)"
    else
        verdict MISSED "churn: netlink dumps with AUTOCLOSE_SWEEP_MS=0: $off_dumps in $((3 * n)) connections (target 0)"
    fi
    verdict NOTE "churn with the periodic sweep (1 s): system calls added per connection:${yes_calls%,}; netlink dumps in $n connections:${yes_dumps%,}"
}

churn() {
    churn_cpu
    churn_syscalls
}

start=$SECONDS
# ---- the daemon -------------------------------------------------------------------------------

# autoclosed on a leaking server that runs without the shim: how soon after the grace N
# half-closed connections are shut down (its grace runs from its first look, at most one
# interval after the FIN: the target is grace + 1 s), its memory with N healthy connections and
# with N half-closed, and its CPU at the default interval beside N healthy connections.
daemon_section() {
    local hard cap procs=1 note="" r i0 i1
    [ -x "$daemon" ] || {
        echo "(no daemon at $daemon: section skipped)"
        return
    }
    hard=$(ulimit -Hn)
    cap=${BENCH_CONNS_PER_PROCESS:-$((hard - 64))}
    [ "$cap" -le $((hard - 64)) ] || cap=$((hard - 64))
    if [ "$daemon_conns" -gt "$cap" ]; then
        procs=$(((daemon_conns + cap - 1) / cap))
        note=" ($procs server processes: one may hold $cap connections here)"
    fi
    section "autoclosed: $daemon_conns half-closed connections of a running server without the shim$note (grace $grace_ms ms, interval 1000 ms)"
    # Its cost is one sock_diag walk a second, over every TCP socket of the host, TIME_WAIT ones
    # included: the idle runs wait (a minute at most) for earlier sections' TIME_WAIT sockets to
    # expire, so that the host holds what the target names, the healthy connections.
    local waited=0
    while [ "$(ss -Htn state time-wait | wc -l)" -gt 1000 ] && [ $waited -lt "$tw_wait" ]; do
        sleep 1
        waited=$((waited + 1))
    done
    i0=$("$bin/scale" idle --conns 0 --secs "$idle_secs" --grace-ms "$grace_ms" --daemon "$daemon" \
        -- "$bin/leak_server") || true
    i1=$("$bin/scale" idle --conns "$daemon_conns" --secs "$idle_secs" --grace-ms "$grace_ms" \
        --daemon "$daemon" -- "$bin/leak_server" --expect "$daemon_conns" --workers "$procs") || true
    echo "host TCP sockets after the idle runs (waited $waited s for TIME_WAIT to expire): $(sed -n 's/^TCP: //p' /proc/net/sockstat)"
    r=$("$bin/scale" reclaim --conns "$daemon_conns" --grace-ms "$grace_ms" \
        --mem-at-ms $((grace_ms > 1600 ? grace_ms - 400 : 1200)) --observe-ms 3000 \
        --daemon "$daemon" --log "$work/daemon.log" -- "$bin/leak_server" --expect "$daemon_conns" \
        --workers "$procs") || true
    echo "raw: $r" >>"$work/daemon.raw"
    local ms mem pct
    ms=$(field reclaim_ms "$r")
    mem=$(field bytes_per_conn "$r")
    pct=$(field cpu_pct "$i1")
    printf '%-58s %s\n' "all CLOSE_WAIT gone, after the grace (from the first FIN)" "${ms:-never ($(field left "$r") left)} ms"
    printf '%-58s %s\n' "daemon memory (anonymous), no connection, after ${idle_secs} s" "$(field anon_kb "$i0") KiB"
    printf '%-58s %s\n' "daemon memory, $daemon_conns healthy connections, after ${idle_secs} s" "$(field anon_kb "$i1") KiB"
    printf '%-58s %s\n' "daemon memory, $daemon_conns half-closed, waiting" "$(field anon_pending_kb "$r") KiB: $mem B per half-closed connection"
    printf '%-58s %s\n' "daemon CPU beside $daemon_conns healthy connections" "$(field cpu_ms "$i1") ms in $(field secs "$i1") s: $pct% of a core, $(field vol_switches "$i1") wake-ups"
    if [ -n "$ms" ] && holds "$ms" 1000; then
        verdict HOLDS "autoclosed reclaimed $daemon_conns: $ms ms after the grace (target < 1000)"
    else
        verdict MISSED "autoclosed reclaimed $daemon_conns: ${ms:-never} ms after the grace (target < 1000)"
    fi
    if [ -n "$pct" ] && holds "$pct" 1; then
        verdict HOLDS "autoclosed beside $daemon_conns healthy connections: $pct% of a core (target < 1%)"
    else
        verdict MISSED "autoclosed beside $daemon_conns healthy connections: ${pct:-?}% of a core (target < 1%)"
    fi
    # Healthy connections cost the daemon nothing: its memory with them is its memory without
    # them (within 64 KiB of allocator noise); half-closed ones cost a table entry each.
    local healthy_extra
    healthy_extra=$(awk -v a="$(field anon_kb "$i1")" -v b="$(field anon_kb "$i0")" 'BEGIN { print a - b }')
    if [ -n "$mem" ] && holds "$healthy_extra" 64 && holds "$mem" 512; then
        verdict HOLDS "autoclosed memory: +$healthy_extra KiB for $daemon_conns healthy connections, $mem B per half-closed one"
    else
        verdict MISSED "autoclosed memory: +$healthy_extra KiB for $daemon_conns healthy connections, ${mem:-?} B per half-closed one (targets: <= 64 KiB, <= 512 B)"
    fi
}

# ---- the daemon's descriptor scans under churn ------------------------------------------------

# autoclosed --pid on a process with many descriptors while unrelated CLOSE_WAIT sockets appear
# elsewhere: each new one is looked for in that process's table, a readlinkat per descriptor, as
# often as the scans' budget allows. Its CPU over the run, at the default interval and at 100 ms.
# Target: under 1% of a core at the default interval.
scan_section() {
    [ -x "$daemon" ] || {
        echo "(no daemon at $daemon: section skipped)"
        return
    }
    section "autoclosed --pid on a process holding $scan_fds descriptors (sockets), $scan_rate unrelated CLOSE_WAIT sockets a second elsewhere, ${scan_secs} s per run"
    local interval r pct=
    printf '%-12s %8s %10s %12s %8s %12s\n' interval fds "CPU ms" "% of a core" scans "CLOSE_WAIT"
    for interval in 1000 100; do
        r=$("$bin/scan_churn" --daemon "$daemon" --fds "$scan_fds" --rate "$scan_rate" \
            --secs "$scan_secs" --interval-ms "$interval" --log "$work/scan.$interval.log") || true
        echo "raw: $r" >>"$work/scan.raw"
        printf '%-12s %8s %10s %12s %8s %12s\n' "$interval ms" "$(field fds "$r")" \
            "$(field cpu_ms "$r")" "$(field cpu_pct "$r")%" "$(field scans "$r")" \
            "$(field close_wait "$r")"
        [ "$interval" != 1000 ] || pct=$(field cpu_pct "$r")
    done
    if [ -n "$pct" ] && holds "$pct" 0.999; then
        verdict HOLDS "autoclosed --pid on $scan_fds descriptors, $scan_rate unrelated CLOSE_WAIT/s: $pct% of a core at the default interval (target < 1%)"
    else
        verdict MISSED "autoclosed --pid on $scan_fds descriptors, $scan_rate unrelated CLOSE_WAIT/s: ${pct:-?}% of a core at the default interval (target < 1%)"
    fi
}

# ---- the daemon and containers ----------------------------------------------------------------

# autoclosed --ports alone on a node with BENCH_NETNS containers (network namespaces) holding
# BENCH_NETNS_CONNS idle connections each, and one more whose server leaks (tests/bench/netns.sh).
# Targets: its CPU under 1% of a core at the default interval; the leak shut down within grace +
# 1 s of its FIN.
netns_section() {
    [ -x "$daemon" ] || {
        echo "(no daemon at $daemon: section skipped)"
        return
    }
    local n=${BENCH_NETNS:-20} c=${BENCH_NETNS_CONNS:-500} s=${BENCH_NETNS_SECS:-30} r pct since
    section "autoclosed --ports alone, $n network namespaces of $c idle connections each and one leaking server (interval 1000 ms, grace 5000 ms)"
    r=$("$(dirname "$0")/netns.sh" "$daemon" "$n" "$c" "$s") || true
    echo "$r"
    if [ -n "$(field skipped "$r")" ]; then
        return
    fi
    pct=$(field cpu_pct "$r")
    since=$(field max_since_fin_ms "$r")
    if [ -n "$pct" ] && holds "$pct" 0.999; then
        verdict HOLDS "autoclosed beside $n namespaces of $c idle connections: $pct% of a core (target < 1%)"
    else
        verdict MISSED "autoclosed beside $n namespaces of $c idle connections: ${pct:-?}% of a core (target < 1%)"
    fi
    if [ -n "$since" ] && [ "$since" != never ] && holds "$since" 6000; then
        verdict HOLDS "autoclosed, a leak in one of $((n + 1)) namespaces: shut down $since ms after its FIN (target grace + 1 s = 6000)"
    else
        verdict MISSED "autoclosed, a leak in one of $((n + 1)) namespaces: shut down ${since:-never} ms after its FIN (target 6000)"
    fi
}

# ---- fork -----------------------------------------------------------------------------------

# A process that has had a TCP connection forks children that exit at once: the children hold
# no connection, so the library starts nothing in them. Target: within 1.2 times the cost
# without the library.
fork_cost() {
    section "fork: fork, _exit, waitpid in a process that had a TCP connection, µs each (median, min-max of $rounds runs of $forks)"
    local i w=() o=() t=() r
    for ((i = 0; i < rounds; i++)); do
        r=$("$bin/forks" --count "$forks") && o+=("$(field fork_us "$r")")
        r=$("$bin/forks" --count "$forks" --idle-thread) && t+=("$(field fork_us "$r")")
        r=$(env LD_PRELOAD="$lib" "$bin/forks" --count "$forks") && w+=("$(field fork_us "$r")")
    done
    local without thread with ratio control
    read -r without _ <<<"$(printf '%s\n' "${o[@]}" | stats)"
    read -r thread _ <<<"$(printf '%s\n' "${t[@]}" | stats)"
    read -r with _ <<<"$(printf '%s\n' "${w[@]}" | stats)"
    ratio=$(awk -v a="$with" -v b="$without" 'BEGIN { printf "%.3f", a / b }')
    control=$(awk -v a="$thread" -v b="$without" 'BEGIN { printf "%.3f", a / b }')
    printf '%-34s %s\n' "without the library" "$(printf '%s\n' "${o[@]}" | stats)"
    printf '%-34s %s\n' "without, an idle thread of its own" "$(printf '%s\n' "${t[@]}" | stats)"
    printf '%-34s %s\n' "with the library" "$(printf '%s\n' "${w[@]}" | stats)"
    printf 'with/without %s; an idle thread alone: %s\n' "$ratio" "$control"
    if holds "$ratio" 1.2; then
        verdict HOLDS "fork in a process that had a TCP connection: $ratio times the cost without the library (target <= 1.2; an idle thread alone: $control)"
    else
        verdict MISSED "fork in a process that had a TCP connection: $ratio times the cost without the library (target <= 1.2; an idle thread alone: $control)"
    fi
}

machine
want fork && fork_cost
want hot && hot_wall
want instr && hot_instructions
want musl && musl_hot
# idle before reclaim: reclaim leaves tens of thousands of TIME_WAIT sockets on the host for a
# minute, and the sweep's kernel walk covers every one of them.
want idle && idle
want pileup && pileup
want reclaim && reclaim
want daemon && daemon_section
want scan && scan_section
want netns && netns_section
want redis && redis
# Last: its clients leave over a hundred thousand sockets in TIME_WAIT for a minute.
want churn && churn
section "targets"
printf '%s\n' "${verdicts[@]}"
printf '\n(make bench took %d s)\n' $((SECONDS - start))
