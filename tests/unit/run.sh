#!/usr/bin/env bash
# Runs each cmocka test binary given as an argument and ends with one summary line.
set -u
passed=0 failed=0
for bin in "$@"; do
  if "$bin"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $bin"; fi
done
echo "unit: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
