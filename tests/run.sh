#!/usr/bin/env bash
# run.sh: installs the Debian packages if missing, then builds and runs the whole test suite
# twice: an optimised build, and an ASan+UBSan build (fiber switches annotated for ASan).
# TENDRIL_SKIP_ASAN=1 skips the sanitizer pass (for quick local loops; CI never sets it).
# Then the parsers' fuzz targets run for a short budget (tests/fuzz/run.sh: clang's libFuzzer,
# 30 s per target; TENDRIL_FUZZ_SECONDS for a longer run); TENDRIL_SKIP_FUZZ=1 skips them.
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
if [ "${TENDRIL_SKIP_FUZZ:-0}" != 1 ]; then
  echo "== fuzz: the schedule and trace file parsers (build-fuzz/)"
  bash tests/fuzz/run.sh
fi
echo "== all tests passed"
