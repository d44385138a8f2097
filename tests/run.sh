#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# run.sh: installs the Debian packages if missing, then builds and runs the whole test suite
# twice: an optimised build, and an ASan+UBSan build (fiber switches annotated for ASan); then
# the core's and the cross-thread tests under ThreadSanitizer (switches annotated for TSan); then
# the parsers' fuzz targets for a short budget (tests/fuzz/run.sh: clang's libFuzzer, 30 s per
# target; TENDRIL_FUZZ_SECONDS for a longer run).
# TENDRIL_SKIP_ASAN=1, TENDRIL_SKIP_TSAN=1 and TENDRIL_SKIP_FUZZ=1 skip those passes (for quick
# local loops; CI never sets them).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/install-deps.sh

run_suite() {
  local dir=$1
  shift
  cmake -S . -B "$dir" "$@" >/dev/null
  cmake --build "$dir" -j2
  # GTEST_* sharding variables would make each per-test process run nothing and pass.
  env -u GTEST_TOTAL_SHARDS -u GTEST_SHARD_INDEX \
    ctest --test-dir "$dir" --output-on-failure -j2 --timeout 300
}

echo "== tests: optimised build (build/)"
run_suite build -DCMAKE_BUILD_TYPE=RelWithDebInfo
if [ "${TENDRIL_SKIP_ASAN:-0}" != 1 ]; then
  echo "== tests: ASan + UBSan build (build-asan/)"
  # Graphviz and fontconfig keep memory until exit: suppressed by library, never tendril's.
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0" \
    run_suite build-asan -DCMAKE_BUILD_TYPE=Debug -DTENDRIL_SANITIZE=address \
    -DTENDRIL_BUILD_BENCH=OFF
fi
if [ "${TENDRIL_SKIP_TSAN:-0}" != 1 ]; then
  # Fiber switches are annotated for TSan; the core's tests and the cross-thread ones (LibevHub's
  # post_threadsafe, keep_alive, blocking_call's thread pool, signals) run under it.
  echo "== tests: ThreadSanitizer build of the core and the cross-thread tests (build-tsan/)"
  cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTENDRIL_SANITIZE=thread \
    -DTENDRIL_BUILD_BENCH=OFF >/dev/null
  cmake --build build-tsan -j2 --target sched_test conformance_test fd_wait_test tsan_test
  for t in sched/sched_test realio/conformance_test realio/fd_wait_test realio/tsan_test; do
    echo "-- $t (TSan)"
    TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
      env -u GTEST_TOTAL_SHARDS -u GTEST_SHARD_INDEX "build-tsan/tests/$t" --gtest_brief=1
  done
fi
if [ "${TENDRIL_SKIP_FUZZ:-0}" != 1 ]; then
  echo "== fuzz: the schedule and trace file parsers (build-fuzz/)"
  bash tests/fuzz/run.sh
fi
echo "== all tests passed"
