#!/usr/bin/env bash
# Fuzzes every decoder of client and worker input with libFuzzer (tests/fuzz/).
#   scripts/fuzz.sh                 every target, ${FUZZ_SECONDS:-60} s each
#   scripts/fuzz.sh api_request ... only those targets
# Builds build-fuzz with clang-14 (-DPOOLBUS_FUZZ=ON: -fsanitize=fuzzer,address,undefined),
# starts each target from its seed corpus tests/fuzz/corpus/<target>/ (read only)
# and keeps new inputs in a scratch dir (${FUZZ_WORK:-build-fuzz/fuzz-work}/<target>/).
# A crash, leak, sanitizer report or broken invariant fails the script; the
# reproducer is left as build-fuzz/fuzz-work/<target>/crash-* (add it to the corpus
# once fixed, so fuzz_replay_<target> keeps it fixed).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
seconds=${FUZZ_SECONDS:-60}
build=${FUZZ_BUILD:-$root/build-fuzz}
work=${FUZZ_WORK:-$build/fuzz-work}
all_targets=(api_request api_reply worker_request worker_message announcements units json)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")

missing=()
for p in clang-14 libclang-rt-14-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q "${missing[@]}"
fi
bash scripts/setup.sh --deps-only

CC=clang-14 CXX=clang++-14 cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPOOLBUS_FUZZ=ON >/dev/null
ninja -C "$build" -j"${FUZZ_JOBS:-2}" $(printf 'fuzz_%s ' "${targets[@]}")

failed=()
for target in "${targets[@]}"; do
  corpus=$root/tests/fuzz/corpus/$target
  scratch=$work/$target
  mkdir -p "$scratch"
  echo "=== fuzz_$target: ${seconds}s from $(ls "$corpus" | wc -l) seeds"
  # -rss_limit_mb/-malloc_limit_mb: a forged length prefix that makes a decoder
  # reserve gigabytes is a finding, not noise. -timeout: one input may not take 10 s.
  if ! (cd "$scratch" && "$build/bin/fuzz_$target" -max_total_time="$seconds" -timeout=10 \
        -rss_limit_mb=2048 -malloc_limit_mb=1024 -max_len=4096 -print_final_stats=1 \
        -artifact_prefix="$scratch/" "$scratch" "$corpus" >"$scratch/fuzz.log" 2>&1); then
    failed+=("$target")
    echo "!!! fuzz_$target FAILED; reproducer(s):"
    ls "$scratch"/crash-* "$scratch"/leak-* "$scratch"/timeout-* "$scratch"/oom-* 2>/dev/null || true
    grep -E "ERROR|invariant|SUMMARY" "$scratch/fuzz.log" | head -20 || true
  else
    grep -E "stat::number_of_executed_units|stat::new_units_added" "$scratch/fuzz.log" | tr '\n' ' '
    echo
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: ${#failed[@]} target(s) failed: ${failed[*]} (logs in $work/<target>/fuzz.log)"
  exit 1
fi
echo "fuzz: ${#targets[@]} target(s) ran ${seconds}s each without a crash"
