#!/usr/bin/env bash
# Renders pool-bench's results to PNG with gnuplot (installed from Debian when
# missing): the latency distribution (CDF of every latency series) and the
# pools-scaling curve (call latency and broker CPU against pools connected).
#   scripts/plot_bench.sh [--out DIR] [--docs DIR]
# DIR (default bench-out) holds latency_samples.csv and scaling.csv from
# `pool-bench --out DIR`; the PNGs are written there, and copied to --docs too.
set -euo pipefail
out=bench-out
docs=
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --docs) docs=$2; shift 2 ;;
    *) echo "plot_bench.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
if ! command -v gnuplot >/dev/null; then
  apt-get install -y gnuplot-nox >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y gnuplot-nox >/dev/null; }
fi
[ -f "$out/latency_samples.csv" ] || { echo "plot_bench.sh: no $out/latency_samples.csv (run pool-bench --out $out)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One sorted file per series: "value cumulative-fraction".
plots=()
while IFS= read -r series; do
  file="$work/$(echo "$series" | tr -c 'A-Za-z0-9\n' '_').dat"
  awk -F, -v s="$series" 'NR > 1 && $1 == s {print $2}' "$out/latency_samples.csv" | sort -g >"$file"
  n=$(wc -l <"$file")
  awk -v n="$n" '{print $1, NR / n}' "$file" >"$file.cdf"
  plots+=("'$file.cdf' using 1:2 with lines lw 2 title '$series'")
done < <(awk -F, 'NR > 1 {print $1}' "$out/latency_samples.csv" | sort -u)
plot_cmd=$(IFS=,; echo "${plots[*]}")
gnuplot <<GP
set terminal pngcairo size 900,520 font ",10"
set output '$out/bench-latency.png'
set title 'pool-bench: latency distribution (one request in flight)'
set xlabel 'latency (microseconds, log scale)'
set ylabel 'fraction of calls <= x'
set logscale x
set grid
set key bottom right
set yrange [0:1]
plot $plot_cmd
GP

if [ "$(wc -l <"$out/scaling.csv")" -gt 1 ]; then
  gnuplot <<GP
set terminal pngcairo size 900,520 font ",10"
set output '$out/bench-scaling.png'
set title 'pool-bench: broker against pools connected (simulated workers, 1 heartbeat/s each)'
set datafile separator ','
set xlabel 'pools connected'
set ylabel 'call latency (microseconds)'
set y2label 'broker CPU (% of one core)'
set logscale x
set logscale y
set y2tics
set ytics nomirror
set grid
set key top left
plot '$out/scaling.csv' every ::1 using 1:2 with linespoints lw 2 title 'offers p50', \
     '' every ::1 using 1:3 with linespoints lw 2 title 'offers p99', \
     '' every ::1 using 1:4 with linespoints lw 2 title 'pools p50', \
     '' every ::1 using 1:5 with linespoints lw 2 title 'pools p99', \
     '' every ::1 using 1:6 axes x1y2 with linespoints lw 2 dt 2 title 'broker CPU %', \
     5000 with lines dt 3 lc rgb 'red' title '5 ms target'
GP
fi
if [ -n "$docs" ]; then
  mkdir -p "$docs"
  cp "$out/bench-latency.png" "$docs/"
  [ -f "$out/bench-scaling.png" ] && cp "$out/bench-scaling.png" "$docs/"
fi
echo "plots written to $out"
