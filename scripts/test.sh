#!/usr/bin/env bash
# Builds (if needed) and runs every test: unit suites, integration tests, Python client tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
ctest --test-dir build --output-on-failure -j"$(nproc)" "$@"
