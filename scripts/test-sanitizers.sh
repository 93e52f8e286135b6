#!/usr/bin/env bash
# Second build of poolbus with AddressSanitizer + UndefinedBehaviorSanitizer
# (-DPOOLBUS_SANITIZE=ON, Debug at -O1) in build-asan, and its tests. Any
# sanitizer report aborts the process that made it, so the test running it fails.
#   scripts/test-sanitizers.sh                  core scope (below)
#   SANITIZE_SCOPE=all scripts/test-sanitizers.sh   everything, integration tests included
#
# Scope "core" (the CI default): the CAF-free layers, where every decoder of
# outside input lives: schemas/policy/bus/broker/dash unit suites, the fuzz corpus replays
# (tests/fuzz) and the layering check. Why not all by default: the actor layer
# and the three programs include CAF's headers in every file; built with the
# sanitizers they are the slowest part of the whole build (minutes per file on
# a loaded 2-core machine; not yet measured on an idle CI machine), which would
# put .ci/run's total (plain build + tests + this) near its time budget. CAF
# itself (libcaf_core, a Debian package) is not instrumented either way.
# Scope "all" builds and runs everything, including the broker/worker
# integration tests with sanitized binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --deps-only
build=${ASAN_BUILD:-build-asan}
scope=${SANITIZE_SCOPE:-core}
fuzz_targets=(api_request api_reply worker_request worker_message announcements units json)
# -O1: a sanitized -O0 build runs markedly slower and gains nothing for the sanitizers.
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-g -O1" \
  -DPOOLBUS_SANITIZE=ON >/dev/null

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
case "$scope" in
  core)
    cmake --build "$build" -j"$(nproc)" --target schemas_tests policy_tests bus_tests broker_tests dash_tests \
      $(printf 'fuzz_replay_%s ' "${fuzz_targets[@]}")
    ctest --test-dir "$build" --output-on-failure -j"$(nproc)" -R '^(schemas|policy|bus|broker|dash):|^fuzz_replay_|^layering$' "$@"
    ;;
  all)
    cmake --build "$build" -j"$(nproc)"
    ctest --test-dir "$build" --output-on-failure -j"$(nproc)" "$@"
    ;;
  *)
    echo "SANITIZE_SCOPE must be core or all, not $scope" >&2
    exit 2
    ;;
esac
