#!/usr/bin/env bash
# The same leak written in Python and in Perl: interpreters reach the kernel through the same
# libc calls, so the shim must reclaim their connections too.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

GRACE=300
N=10
runtimes=()
command -v python3 >/dev/null && runtimes+=(python3:leaky_server.py)
command -v perl >/dev/null && runtimes+=(perl:leaky_server.pl)
[ ${#runtimes[@]} -gt 0 ] || skip "neither python3 nor perl is installed"

declare -A leak_port shim_port
for r in "${runtimes[@]}"; do
    interp=${r%%:*} script=$SCRIPT_FIXTURES/${r#*:}
    start_bg "$interp-leak" "$interp" "$script" --port-file "$TMP/$interp-leak.port"
    start_bg "$interp-shim" LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=$GRACE \
        "$interp" "$script" --port-file "$TMP/$interp-shim.port"
done
for r in "${runtimes[@]}"; do
    interp=${r%%:*}
    leak_port[$interp]=$(await_port "$interp-leak")
    shim_port[$interp]=$(await_port "$interp-shim")
    client "$interp-leak-client" --port "${leak_port[$interp]}" --count "$N" ||
        fail "$interp: exchanges without the shim failed"
    client "$interp-shim-client" --port "${shim_port[$interp]}" --count "$N" ||
        fail "$interp: exchanges with the shim failed"
done

for r in "${runtimes[@]}"; do
    interp=${r%%:*}
    wait_until $((GRACE + 3000)) reclaimed "${shim_port[$interp]}" "$N" "$interp-shim-client" || true
    wait_until 2000 leaking "${leak_port[$interp]}" "$N" "$interp-leak-client" || true
    echo "$interp without shim: $(report_states "${leak_port[$interp]}" "$interp-leak-client")"
    echo "$interp with shim:    $(report_states "${shim_port[$interp]}" "$interp-shim-client")"
    leaking "${leak_port[$interp]}" "$N" "$interp-leak-client" || fail "$interp: the leaky server did not leak"
    reclaimed "${shim_port[$interp]}" "$N" "$interp-shim-client" || fail "$interp: connections were not reclaimed"
done
pass "${runtimes[*]%%:*}: leak without the shim, reclaimed with it"
