#!/usr/bin/env bash
# t_inherited with the connection handed over on fd 3 instead of fds 0 and 1: a handler that
# gets its connection through exec on a number above stderr (systemd socket activation passes
# them from fd 3 on) and never accepts or connects. The sweep must find it all the same.
INHERITED_HANDOFF=fd3
# shellcheck source=t_inherited.sh
. "$(dirname "$0")/t_inherited.sh"
