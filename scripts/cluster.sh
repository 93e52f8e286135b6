#!/usr/bin/env bash
# The main job: installs what is missing, builds, and runs a local cluster on
# loopback: one broker on the default endpoints, two workers, each sized at
# half of this machine, and the dashboard (pool-dash) on http://127.0.0.1:7710/.
# Ctrl-C stops them all. Use it from another terminal (or a browser):
#   build/bin/poolctl pools
#   /usr/bin/python3 clients/python/example_hold.py --seconds 5
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh pool-broker pool-worker poolctl pool-dash

state=${POOLBUS_STATE:-$PWD/state}
mkdir -p "$state"
cores=$(nproc)
mem_kib=$(awk '/MemTotal/ {print $2}' /proc/meminfo)
disk_kib=$(df -Pk "$state" | awk 'NR==2 {print $4}')
half_cpu=$(awk -v c="$cores" 'BEGIN {printf "%g", c / 2}')
worker_res="cpu=${half_cpu},mem=$((mem_kib / 2))KiB,disk=$((disk_kib / 2))KiB"

pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "cluster stopped"
}
trap stop INT TERM EXIT

build/bin/pool-broker & pids+=($!)
zone=1
for id in worker-1 worker-2; do
  build/bin/pool-worker --id "$id" --resources "$worker_res" --state-dir "$state/$id" --label "zone=z$zone" & pids+=($!)
  zone=$((zone + 1))
done

build/bin/pool-dash --http "${POOLBUS_DASH:-127.0.0.1:7710}" & pids+=($!)

# Ready when both pools are listed.
for _ in $(seq 1 100); do
  if [ "$(build/bin/poolctl --timeout 1s --json pools 2>/dev/null | grep -o '"id"' | wc -l)" -ge 2 ]; then break; fi
  sleep 0.1
done
build/bin/poolctl pools
echo
echo "cluster up: broker on tcp://127.0.0.1:7700 (api) and :7701 (stream); Ctrl-C stops it."
echo "dashboard: http://${POOLBUS_DASH:-127.0.0.1:7710}/   (Prometheus metrics at /metrics)"
echo "try: build/bin/poolctl offers | build/bin/poolctl allocate --min cpu=1,mem=1GiB | build/bin/poolctl watch"
wait
