#!/usr/bin/env bash
# run.sh: builds the benchmarks (Release), then prints
#   1. callgrind instruction counts per operation (exact and repeatable: the stable figures),
#   2. Google Benchmark medians of 5 repetitions (wall time; this machine is noisy),
#   3. gevent's sleep(0) and spawn+join on the same machine, when python3-gevent can be had.
# Usage: bash bench/run.sh [--quick]   (--quick skips the 1M-greenlet memory run)
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/install-deps.sh
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DTENDRIL_BUILD_TESTS=OFF >/dev/null
cmake --build build-bench -j2 --target bench_core callgrind_probe >/dev/null

probe=build-bench/bench/callgrind_probe
instructions() {  # instructions MODE N -> total Ir of one run
  local out
  out=$(mktemp)
  valgrind --tool=callgrind --callgrind-out-file="$out" "$probe" "$1" "$2" >/dev/null 2>&1
  awk '/^(summary|totals):/ {print $2; exit}' "$out"
  rm -f "$out"
}
per_op() {  # per_op MODE OPS_PER_N -> instructions per operation, from N=1000 and N=11000
  local a b
  a=$(instructions "$1" 1000)
  b=$(instructions "$1" 11000)
  awk -v a="$a" -v b="$b" -v k="$2" 'BEGIN { printf "%.1f", (b - a) / (10000 * k) }'
}

echo "== callgrind: instructions per operation (difference of N=11000 and N=1000 runs)"
raw=$(per_op raw_fiber 2)
sleep0=$(per_op sleep0 2)
spawn=$(per_op spawn_join 1)
printf "%-40s %10s\n" "raw Boost.Context fiber, one-way switch" "$raw"
printf "%-40s %10s  (%.1fx raw switch)\n" "SimHub sleep(0)" "$sleep0" "$(awk -v a="$sleep0" -v b="$raw" 'BEGIN{print a/b}')"
printf "%-40s %10s\n" "SimHub spawn+join (warm pool)" "$spawn"

echo
echo "== Google Benchmark: medians of 5 repetitions"
filter='.'
if [ "${1:-}" = --quick ]; then filter="-BM_IdleGreenletMemory/1000000"; fi
build-bench/bench/bench_core --benchmark_filter="$filter" --benchmark_repetitions=5 \
  --benchmark_report_aggregates_only=true 2>/dev/null | grep -E "^Benchmark|_median|repeats:1" || true

echo
echo "== gevent on this machine (Debian's python3-gevent, /usr/bin/python3)"
if ! /usr/bin/python3 -c 'import gevent' 2>/dev/null; then
  if [ "$(id -u)" -eq 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-gevent >/dev/null 2>&1 || true
  fi
fi
if /usr/bin/python3 -c 'import gevent' 2>/dev/null; then
  /usr/bin/python3 bench/gevent_twin.py
else
  echo "python3-gevent is not installed (run as root to install it); skipping"
fi
