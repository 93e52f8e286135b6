#!/usr/bin/env bash
# Installs the Debian packages poolbus needs and builds it into build/.
#   scripts/setup.sh                 install, build everything
#   scripts/setup.sh TARGET...       install, build only these targets
#   scripts/setup.sh --deps-only     install only
set -euo pipefail
cd "$(dirname "$0")/.."
packages=(build-essential cmake ninja-build pkg-config
  libcaf-dev libzmq3-dev cppzmq-dev libmsgpack-cxx-dev libspdlog-dev catch2 libcli11-dev
  libsqlite3-dev python3-zmq python3-msgpack
  libcpp-httplib-dev                      # pool-dash's HTTP server (docs/dashboard.md)
  chromium prometheus python3-websocket   # the dashboard's tests: a real browser, a real scraper
  redis-server libhiredis-dev)            # the performance peer (pool-bench --scenario peer)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q "${missing[@]}"
fi
[ "${1:-}" = "--deps-only" ] && exit 0
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build build -j"$(nproc)" "${targets[@]}"
