#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# add_subdirectory.sh SOURCE_DIR BUILD_DIR: configures tests/packaging/consumer, a project that
# pulls tendril in with add_subdirectory, and checks that tendril stays out of its way: none of
# tendril's tests in the user's ctest, no build type written into the user's cache, C++20 carried
# by the targets (the user's hello program, which sets no standard, builds and runs), and the
# real hub, TLS and the renderer left out on request (no libev, OpenSSL or Graphviz needed); and
# the README's FetchContent snippet configures, builds and runs.
set -eu
src=$1
build=$2
rm -rf "$build" "$build-fetchcontent"
# A simulation-only user: no real hub, no TLS, no renderer, so neither libev, OpenSSL nor Graphviz
# is looked for.
cmake -S "$src/tests/packaging/consumer" -B "$build" -DTENDRIL_SOURCE_DIR="$src" \
  -DTENDRIL_BUILD_REALIO=OFF -DTENDRIL_BUILD_TLS=OFF -DTENDRIL_BUILD_VIZ=OFF >/dev/null
if grep -q '^LIBEV_LIBRARY\|^GRAPHVIZ_\|^OPENSSL_' "$build/CMakeCache.txt"; then
  echo "add_subdirectory: a simulation-only build looked for libev, OpenSSL or Graphviz" >&2
  exit 1
fi
tests=$(ctest --test-dir "$build" -N | sed -n 's/^Total Tests: //p')
if [ "$tests" != 1 ]; then
  echo "add_subdirectory: the user's ctest lists $tests tests, expected only its own 1" >&2
  ctest --test-dir "$build" -N >&2
  exit 1
fi
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt")
if [ -n "$build_type" ]; then
  echo "add_subdirectory: tendril wrote CMAKE_BUILD_TYPE=$build_type into the user's cache" >&2
  exit 1
fi
cmake --build "$build" --target hello -j2 >/dev/null
"$build/hello"
# The same project through the README's FetchContent snippet (the source dir overridden: no
# download): configured, built and run.
cmake -S "$src/tests/packaging/consumer" -B "$build-fetchcontent" -DTENDRIL_SOURCE_DIR="$src" \
  -DTENDRIL_FETCHCONTENT=ON -DTENDRIL_BUILD_REALIO=OFF -DTENDRIL_BUILD_VIZ=OFF \
  >"$build-fetchcontent.log" 2>&1 ||
  { cat "$build-fetchcontent.log" >&2; echo "add_subdirectory: FetchContent failed" >&2; exit 1; }
cmake --build "$build-fetchcontent" --target hello -j2 >>"$build-fetchcontent.log" 2>&1 ||
  { cat "$build-fetchcontent.log" >&2; echo "add_subdirectory: the FetchContent build failed" >&2
    exit 1; }
"$build-fetchcontent/hello"
