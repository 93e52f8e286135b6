#!/usr/bin/env bash
# Second build of poolbus with AddressSanitizer + UndefinedBehaviorSanitizer
# (-DPOOLBUS_SANITIZE=ON) in build-asan, and its tests: the unit suites, the
# fuzz corpus replays and the integration tests (broker/worker processes
# built with the sanitizers). Any sanitizer report aborts the process that
# made it, so the test that ran it fails.
#   scripts/test-sanitizers.sh [extra ctest args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --deps-only
build=${ASAN_BUILD:-build-asan}
# -O1: a sanitized -O0 CAF build runs the integration suites several times slower.
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-g -O1" \
  -DPOOLBUS_SANITIZE=ON >/dev/null
cmake --build "$build" -j"$(nproc)"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
ctest --test-dir "$build" --output-on-failure -j"$(nproc)" "$@"
