#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# run.sh: builds the benchmarks (Release) and prints one table: callgrind instructions per
# operation (exact and repeatable: the stable figures), wall-time medians of 5 repetitions
# (secondary: this machine is noisy), and gevent's figures measured in the same run with their
# ratio; then spawning greenlets that stay alive (bench/spawn_report.py) and a switch among 10 to
# 1,000,000 of them (bench/switch_report.py), against gevent; then the network tables of
# bench/net.sh. Usage: bash bench/run.sh [--quick]   (--quick skips the 100k/1M idle-greenlet
# memory runs, measures each scale once and shortens the network runs)
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/install-deps.sh
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DTENDRIL_BUILD_TESTS=OFF >/dev/null
cmake --build build-bench -j2 --target bench_core bench_primitives bench_explore bench_trace \
  bench_viz bench_shrink bench_green callgrind_probe spawn_scale switch_scale >/dev/null
# The same core without the observer hook, to measure what the hook costs when nothing traces.
cmake -S . -B build-bench-nohook -DCMAKE_BUILD_TYPE=Release -DTENDRIL_BUILD_TESTS=OFF \
  -DTENDRIL_TRACE_HOOK=OFF >/dev/null
cmake --build build-bench-nohook -j2 --target callgrind_probe >/dev/null
/usr/bin/python3 bench/report.py "$@"
# Spawning many greenlets that stay alive, cold and warm, both stack modes, against gevent.
echo
/usr/bin/python3 bench/spawn_report.py build-bench "$@"
# A switch's cost from 10 to 1,000,000 live greenlets.
echo
/usr/bin/python3 bench/switch_report.py build-bench "$@"
# Minimising failures: planted bugs of known depth, and exploration's speed without a failure.
echo
echo "== minimising failures (bench/bench_shrink.cpp)"
./build-bench/bench/bench_shrink
echo
echo "== finding failures: schedules to the first failure per policy (bench_shrink find)"
./build-bench/bench/bench_shrink find
echo
echo "== monkey patching: the libc interposer's cost (bench/bench_green.cpp)"
./build-bench/bench/bench_green --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
  2>/dev/null | grep -E '^(BM_|Benchmark)'
# The network benchmarks and the real hub's (loopback only, bounded): see bench/net.sh.
bash bench/net.sh "$@"
