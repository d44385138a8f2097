#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# run.sh: builds the file parsers' libFuzzer targets with clang (build-fuzz/, ASan + UBSan) and
# runs each for a short budget, starting from the committed corpus (tests/fuzz/corpus/<target>/).
# Prints the executions per target; exits 1 on any finding (crash, uncaught exception, sanitizer
# report, timeout, out-of-memory), naming the input it saved and the command that reproduces it.
# TENDRIL_FUZZ_SECONDS=N runs each target for N seconds instead of 30 (a longer, local run).
# New inputs the fuzzer finds go to build-fuzz/fuzz-scratch/<target>/, never into the committed
# corpus. Without clang (or its libFuzzer runtime) it says so and exits 0: the ctest tests
# fuzz_replay.* replay the committed corpus in every build.
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=${TENDRIL_FUZZ_SECONDS:-30}
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "fuzz: TENDRIL_FUZZ_SECONDS must be a positive whole number of seconds, got '$seconds'" >&2
  exit 2
fi
targets=(schedule trace)
build=build-fuzz

replay_only() {
  echo "fuzz: $1: skipping the fuzz runs."
  for t in "${targets[@]}"; do
    if [ -x "build/tests/fuzz/fuzz_${t}_replay" ]; then
      inputs=("tests/fuzz/corpus/$t")
      [ -d "tests/fuzz/regressions/$t" ] && inputs+=("tests/fuzz/regressions/$t")
      echo "fuzz: $t: $("build/tests/fuzz/fuzz_${t}_replay" "${inputs[@]}" 2>&1 | tail -n 1)"
    fi
  done
  echo "fuzz: the committed corpus is replayed by the ctest tests fuzz_replay.* in every build."
  exit 0
}
command -v clang++ >/dev/null 2>&1 || replay_only "clang++ is not installed (Debian: clang)"
fuzzer_rt="$(clang++ -print-resource-dir)/lib/linux/libclang_rt.fuzzer-x86_64.a"
[ -f "$fuzzer_rt" ] || replay_only "clang's libFuzzer is not installed (Debian: libclang-rt-14-dev)"

start=$SECONDS
echo "== fuzz: building the fuzz targets with clang ($build/)"
CC=clang CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTENDRIL_FUZZ=ON \
  -DTENDRIL_BUILD_TESTS=OFF -DTENDRIL_BUILD_EXAMPLES=OFF -DTENDRIL_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j2 --target "${targets[@]/#/fuzz_}"

failed=()
for t in "${targets[@]}"; do
  scratch="$build/fuzz-scratch/$t"
  artifacts="$build/fuzz-artifacts/$t"
  log="$build/fuzz-logs/$t.log"
  rm -rf "$artifacts"
  mkdir -p "$scratch" "$artifacts" "$(dirname "$log")"
  corpora=("tests/fuzz/corpus/$t")
  [ -d "tests/fuzz/regressions/$t" ] && corpora+=("tests/fuzz/regressions/$t")
  echo "== fuzz: $t for ${seconds}s (log: $log)"
  # The first folder receives new inputs: the scratch one. -timeout catches hangs (a parse of
  # 8 KiB takes microseconds), -rss_limit_mb runaway memory.
  rc=0
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 "$build/tests/fuzz/fuzz_$t" \
    -max_total_time="$seconds" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$artifacts/" -print_final_stats=1 \
    "$scratch" "${corpora[@]}" </dev/null >"$log" 2>&1 || rc=$?
  done_line=$(grep -E '^Done [0-9]+ runs in [0-9]+ second' "$log" | tail -n 1 || true)
  if [ "$rc" -eq 0 ] && [ -n "$done_line" ]; then
    runs=$(awk '{print $2}' <<<"$done_line")
    secs=$(awk '{print $5}' <<<"$done_line")
    echo "fuzz: $t: $runs executions in ${secs}s, no findings"
    continue
  fi
  failed+=("$t")
  echo "fuzz: $t: FINDING (exit code $rc); the end of the log:" >&2
  tail -n 60 "$log" >&2
  found=0
  for input in "$artifacts"/*; do
    [ -e "$input" ] || continue
    found=1
    echo "fuzz: $t: the input is $input" >&2
    echo "fuzz: reproduce with: $build/tests/fuzz/fuzz_$t $input" >&2
    echo "fuzz: or without clang: build/tests/fuzz/fuzz_${t}_replay $input" >&2
    echo "fuzz: once fixed, keep it: copy it into tests/fuzz/regressions/$t/" >&2
  done
  [ "$found" -eq 1 ] || echo "fuzz: $t: libFuzzer saved no input; see $log" >&2
done
echo "== fuzz: stage took $((SECONDS - start))s"
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz: FAILED: findings in ${failed[*]}" >&2
  exit 1
fi
echo "== fuzz: no findings"
