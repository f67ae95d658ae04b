#!/usr/bin/env bash
# Fails when the library exports anything but the functions listed in shim/preload/exports.map: a
# preloaded library's stray symbol would override the host program's own.
#   NM=aarch64-linux-gnu-nm scripts/check-exports.sh LIB   a cross-built library: its binutils' nm
#   scripts/check-exports.sh --musl LIB   the musl build: the list less glibc's fortified (_chk)
#                                         entry points, the four calls musl 1.2.3 lacks
#                                         (closefrom, close_range, fcntl64, epoll_pwait2) and
#                                         dlclose (musl's never unmaps: nothing to count)
set -euo pipefail
musl=0
if [ "${1:-}" = --musl ]; then
  musl=1
  shift
fi
lib=${1:?usage: check-exports.sh [--musl] LIB}
map=$(dirname "$0")/../shim/preload/exports.map
want=$(sed -n '/global:/,/local:/p' "$map" | grep -v 'global:\|local:' | tr ';' '\n' | tr -d ' ' | grep -v '^$' | sort)
if [ "$musl" = 1 ]; then
  want=$(echo "$want" | grep -v -x -e '__.*_chk' -e closefrom -e close_range -e fcntl64 -e epoll_pwait2 \
    -e dlclose)
fi
have=$("${NM:-nm}" -D --defined-only "$lib" | awk '$2 ~ /^[TWiV]$/ {print $3}' | sed 's/@.*//' | sort)
if [[ "$want" != "$have" ]]; then
  echo "exports: $lib: its exported symbols differ from shim/preload/exports.map:" >&2
  diff <(echo "$want") <(echo "$have") >&2 || true
  exit 1
fi
echo "exports: $lib: $(echo "$have" | wc -l) wrapped functions, nothing else"
