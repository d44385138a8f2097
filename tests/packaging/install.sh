#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# install.sh BUILD_DIR SOURCE_DIR WORK_DIR: installs the built tendril into a fresh prefix, then
# builds tests/packaging/installed against it with find_package(tendril 0.1 CONFIG REQUIRED
# COMPONENTS ...): every component (sim realio tls viz props), sim alone, and checks that an
# incompatible version (1.0) and an unknown component are refused with a clear message; then
# builds the same programs with g++ and the installed pkg-config files. Both carry
# -fstack-clash-protection to the user's code.
set -eu
build=$1
src=$2
work=$3
rm -rf "$work"
cmake --install "$build" --prefix "$work/prefix" >/dev/null
project="$src/tests/packaging/installed"
for components in "sim;realio;tls;viz;props" "sim"; do
  dir="$work/consumer-$(echo "$components" | tr ';' '-')"
  cmake -S "$project" -B "$dir" -DCMAKE_PREFIX_PATH="$work/prefix" \
    "-DTENDRIL_COMPONENTS=$components" >/dev/null
  cmake --build "$dir" -j2 >/dev/null
  "$dir/hello"
  "$dir/hello_green"
  if [ -x "$dir/hello_real" ]; then "$dir/hello_real"; fi
  if [ -x "$dir/hello_tls" ]; then "$dir/hello_tls"; fi
done
[ -x "$work/consumer-sim-realio-tls-viz-props/hello_tls" ] ||
  { echo "install.sh: COMPONENTS tls gave no tendril::tls" >&2; exit 1; }
# A user's code is compiled with -fstack-clash-protection (tendril::sched's INTERFACE option).
grep -rq -- '-fstack-clash-protection' "$work/consumer-sim/CMakeFiles/hello.dir/flags.make" ||
  { echo "install.sh: the consumer is not compiled with -fstack-clash-protection" >&2; exit 1; }
# Asking for sim alone looks for neither libev, OpenSSL nor Graphviz.
if grep -q '^LIBEV_LIBRARY\|^GRAPHVIZ_\|^OPENSSL_' "$work/consumer-sim/CMakeCache.txt"; then
  echo "install.sh: COMPONENTS sim looked for libev, OpenSSL or Graphviz" >&2
  exit 1
fi
if cmake -S "$project" -B "$work/too-new" -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DTENDRIL_COMPONENTS=sim -DTENDRIL_VERSION=1.0 >"$work/too-new.log" 2>&1; then
  echo "install.sh: find_package(tendril 1.0) was accepted by a 0.x install" >&2
  exit 1
fi
grep -q 'version: 0.1.0' "$work/too-new.log" || { cat "$work/too-new.log" >&2; exit 1; }
if cmake -S "$project" -B "$work/unknown" -DCMAKE_PREFIX_PATH="$work/prefix" \
  "-DTENDRIL_COMPONENTS=sim;bogus" >"$work/unknown.log" 2>&1; then
  echo "install.sh: an unknown component was accepted" >&2
  exit 1
fi
grep -q "tendril has no component 'bogus'" "$work/unknown.log" || { cat "$work/unknown.log" >&2; exit 1; }
# pkg-config: the same programs built with plain g++ and the installed .pc files.
# (-rpath: a shared build's libraries are not in the loader's default path.)
libdir=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:[A-Z]*=//p' "$build/CMakeCache.txt")
export PKG_CONFIG_PATH="$work/prefix/$libdir/pkgconfig"
rpath="-Wl,-rpath,$work/prefix/$libdir"
case " $(pkg-config --cflags tendril-sim) " in
  *" -fstack-clash-protection "*) ;;
  *) echo "install.sh: pkg-config --cflags tendril-sim lacks -fstack-clash-protection" >&2; exit 1 ;;
esac
g++ "$src/tests/packaging/consumer/hello.cpp" $(pkg-config --cflags --libs tendril-sim) "$rpath" \
  -o "$work/pc-hello"
"$work/pc-hello"
g++ "$src/tests/packaging/installed/hello_real.cpp" \
  $(pkg-config --cflags --libs tendril-realio tendril-viz) "$rpath" -o "$work/pc-hello-real"
"$work/pc-hello-real"
g++ "$src/tests/packaging/installed/hello_tls.cpp" $(pkg-config --cflags --libs tendril-tls tendril-sim) \
  "$rpath" -o "$work/pc-hello-tls"
"$work/pc-hello-tls"
echo "install.sh: installed package OK"
