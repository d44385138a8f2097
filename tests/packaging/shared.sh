#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# shared.sh BUILD_DIR SOURCE_DIR WORK_DIR VERSION: shared and position-independent libraries.
#   - A shared build (BUILD_DIR itself when it was configured with BUILD_SHARED_LIBS=ON, else a
#     libraries-only one made here) installs versioned libraries: libtendril_X.so.VERSION, SONAME
#     libtendril_X.so.MAJOR, and the libtendril_X.so link; the installed prefix, moved elsewhere
#     with its build tree gone, runs tendril-viz (RUNPATH $ORIGIN/../lib, no LD_LIBRARY_PATH)
#     and a consumer built with find_package.
#   - A static BUILD_DIR's libraries are position-independent: every object of the archives
#     (props aside: it holds Debian's non-PIC RapidCheck) links into a shared object, which a
#     program then uses.
set -eu
build=$1
src=$2
work=$3
version=$4
major=${version%%.*}
fail() {
  echo "shared.sh: $*" >&2
  exit 1
}
rm -rf "$work"
mkdir -p "$work"
shared=$(sed -n 's/^BUILD_SHARED_LIBS:[A-Z]*=//p' "$build/CMakeCache.txt")
libdir=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:[A-Z]*=//p' "$build/CMakeCache.txt")
case "$shared" in
  ON | on | TRUE | true | 1) shared_build=$build ;;
  *)
    shared_build="$work/build-shared"
    cmake -S "$src" -B "$shared_build" -DBUILD_SHARED_LIBS=ON -DCMAKE_BUILD_TYPE=Release \
      -DTENDRIL_BUILD_TESTS=OFF -DTENDRIL_BUILD_EXAMPLES=OFF -DTENDRIL_BUILD_BENCH=OFF \
      -DTENDRIL_BUILD_PROPS=OFF >"$work/configure.log" 2>&1 ||
      { cat "$work/configure.log" >&2; fail "configuring a shared build failed"; }
    cmake --build "$shared_build" -j2 >"$work/build.log" 2>&1 ||
      { cat "$work/build.log" >&2; fail "the shared build failed"; }
    ;;
esac
cmake --install "$shared_build" --prefix "$work/staging" >/dev/null
# Moved, with the shared build tree gone (when made here): nothing may point back at either.
mv "$work/staging" "$work/prefix"
[ "$shared_build" = "$build" ] || rm -rf "$shared_build"
prefix="$work/prefix"
lib="$prefix/$libdir"
for module in sched trace sim realio tls viz; do
  real="$lib/libtendril_$module.so.$version"
  [ -f "$real" ] && [ ! -L "$real" ] ||
    fail "no versioned library $real: $(ls "$lib" | grep "tendril_$module" | tr '\n' ' ')"
  soname=$(objdump -p "$real" | awk '$1 == "SONAME" { print $2 }')
  [ "$soname" = "libtendril_$module.so.$major" ] ||
    fail "libtendril_$module's SONAME is '$soname', expected libtendril_$module.so.$major"
  [ "$(readlink "$lib/libtendril_$module.so.$major")" = "libtendril_$module.so.$version" ] ||
    fail "libtendril_$module.so.$major is not a link to libtendril_$module.so.$version"
  [ "$(readlink "$lib/libtendril_$module.so")" = "libtendril_$module.so.$major" ] ||
    fail "libtendril_$module.so (the link users link with) is not a link to the SONAME"
done
runpath=$(objdump -p "$prefix/bin/tendril-viz" |
  awk '$1 == "RUNPATH" || $1 == "RPATH" { print $2 }')
case "$runpath" in
  '$ORIGIN/../'"$libdir") ;;
  *) fail "the installed tendril-viz's RUNPATH is '$runpath', expected \$ORIGIN/../$libdir" ;;
esac
env -u LD_LIBRARY_PATH "$prefix/bin/tendril-viz" "$src/tests/viz/fixtures/foo_bar.trace" \
  -o "$work/foo_bar.svg" || fail "the installed tendril-viz does not run from its prefix"
grep -q '<svg' "$work/foo_bar.svg" || fail "the installed tendril-viz drew no SVG"
if env -u LD_LIBRARY_PATH ldd "$prefix/bin/tendril-viz" | grep 'tendril' | grep -v "$prefix/"; then
  fail "the installed tendril-viz loads a tendril library from outside its prefix"
fi
cmake -S "$src/tests/packaging/installed" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$prefix" \
  "-DTENDRIL_COMPONENTS=sim;realio;tls;viz" >"$work/consumer.log" 2>&1 &&
  cmake --build "$work/consumer" -j2 >>"$work/consumer.log" 2>&1 ||
  { cat "$work/consumer.log" >&2; fail "a consumer did not build against the shared libraries"; }
env -u LD_LIBRARY_PATH "$work/consumer/hello"
env -u LD_LIBRARY_PATH "$work/consumer/hello_real"
env -u LD_LIBRARY_PATH "$work/consumer/hello_green"
env -u LD_LIBRARY_PATH "$work/consumer/hello_tls"
objdump -p "$work/consumer/hello" | grep -q "NEEDED *libtendril_sim.so.$major" ||
  fail "the consumer is not linked against libtendril_sim.so.$major"

# Static libraries are position-independent: all of them, whole, in one shared object.
if [ "$shared_build" != "$build" ]; then
  cmake --install "$build" --prefix "$work/static" >/dev/null
  slib="$work/static/$libdir"
  cat >"$work/plugin.cpp" <<'EOF'
#include "tendril/sim.hpp"
extern "C" int plugin_run() {
  tendril::SimHub hub;
  int ran = 0;
  tendril::run(hub, [&] { tendril::spawn([&] { ++ran; })->join(); });
  return ran;
}
EOF
  printf 'extern "C" int plugin_run();\nint main() { return plugin_run() == 1 ? 0 : 1; }\n' \
    >"$work/main.cpp"
  PKG_CONFIG_PATH="$slib/pkgconfig" g++ -shared -fPIC "$work/plugin.cpp" -o "$work/libplugin.so" \
    $(PKG_CONFIG_PATH="$slib/pkgconfig" pkg-config --cflags tendril-sim) \
    -Wl,--whole-archive "$slib/libtendril_sched.a" "$slib/libtendril_trace.a" \
    "$slib/libtendril_sim.a" "$slib/libtendril_realio.a" "$slib/libtendril_tls.a" \
    "$slib/libtendril_viz.a" -Wl,--no-whole-archive \
    $(PKG_CONFIG_PATH="$slib/pkgconfig" pkg-config --libs tendril-realio tendril-tls tendril-viz) \
    >"$work/plugin.log" 2>&1 ||
    { cat "$work/plugin.log" >&2
      fail "the static libraries do not link into a shared object (not position-independent?)"; }
  g++ "$work/main.cpp" -o "$work/main" -L"$work" -lplugin -Wl,-rpath,"$work"
  "$work/main" || fail "a program using tendril through a shared object failed"
fi
echo "shared.sh: shared libraries (SONAME libtendril_*.so.$major, RUNPATH) and PIC archives OK"
