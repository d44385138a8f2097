#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# user_project.sh SOURCE_DIR BUILD_DIR: builds the user-style project in user_project/ and runs
# its ctest with GoogleTest's shard variables exported, as a CI job might: six of its seven tests
# fail, and ctest must say so (without tendril_discover_tests() it reported 7/7 passed).
set -eu
src=$1
build=$2
rm -rf "$build"
cmake -S "$src/tests/failure_path/user_project" -B "$build" -DTENDRIL_SOURCE_DIR="$src" >/dev/null
cmake --build "$build" >/dev/null
out=$(GTEST_TOTAL_SHARDS=4 GTEST_SHARD_INDEX=1 ctest --test-dir "$build" 2>&1 || true)
echo "$out"
echo "$out" | grep -q "6 tests failed out of 7"
