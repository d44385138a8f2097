#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# deb.sh BUILD_DIR SOURCE_DIR WORK_DIR VERSION: makes the Debian packages of a built (static)
# tendril with `cpack -G DEB` and checks them without installing anything system-wide:
#   - every package is there, with exactly the Depends cmake/TendrilPackaging.cmake documents;
#     tendril-viz's Depends name the package of every shared library the tool needs (NEEDED);
#   - each package holds its module's headers, library, CMake and pkg-config files, copyright,
#     and no file is in two packages (apt would refuse to install them together);
#   - unpacked (dpkg-deb -x) into a scratch root, a consumer builds and runs against it with
#     find_package and with pkg-config, and the unpacked tendril-viz draws a trace;
#   - each component's package with only the tendril packages its Depends name is enough for
#     find_package(tendril COMPONENTS <it>) and its header;
#   - `apt-get install --simulate` of all of them resolves (no network needed when the
#     dependencies are installed, as tests/install-deps.sh does).
set -eu
build=$1
src=$2
work=$3
version=$4
fail() {
  echo "deb.sh: $*" >&2
  exit 1
}
rm -rf "$work"
mkdir -p "$work/debs"
cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work/debs" >"$work/cpack.log" 2>&1 ||
  { cat "$work/cpack.log" >&2; fail "cpack -G DEB failed"; }
arch=$(dpkg --print-architecture)
libdir=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:[A-Z]*=//p' "$build/CMakeCache.txt")
deb() { echo "$work/debs/$1_${version}_$arch.deb"; }
v="(= $version)"

# Depends, exactly.
expect_depends() {
  f=$(deb "$1")
  [ -f "$f" ] || fail "no package $1 (expected $f); cpack made: $(cd "$work/debs" && ls ./*.deb)"
  got=$(dpkg-deb --field "$f" Depends)
  [ "$got" = "$2" ] || fail "$1: Depends is '$got', expected '$2'"
}
expect_depends tendril-sched-dev "libboost-context-dev (>= 1.74)"
expect_depends tendril-trace-dev "tendril-sched-dev $v"
expect_depends tendril-sim-dev "tendril-sched-dev $v, tendril-trace-dev $v"
expect_depends tendril-realio-dev "tendril-sched-dev $v, libev-dev"
expect_depends tendril-viz-dev "tendril-sched-dev $v, tendril-trace-dev $v, libgraphviz-dev"
expect_depends tendril-props-dev "tendril-sim-dev $v, librapidcheck-dev, libgtest-dev"
expect_depends tendril-dev "tendril-sched-dev $v, tendril-trace-dev $v, tendril-sim-dev $v, \
tendril-realio-dev $v, tendril-viz-dev $v, tendril-viz $v, tendril-props-dev $v"
count=$(ls "$work/debs"/*.deb | wc -l)
[ "$count" = 8 ] || fail "cpack made $count packages, expected 8: $(ls "$work/debs")"

# Unpack everything; the tool's Depends must name the owner of every library it needs.
root="$work/root"
for f in "$work/debs"/*.deb; do dpkg-deb -x "$f" "$root"; done
tool="$root/usr/bin/tendril-viz"
[ -x "$tool" ] || fail "tendril-viz is not in the packages"
tool_depends=$(dpkg-deb --field "$(deb tendril-viz)" Depends)
owner() {  # the Debian package of a library file (Debian 12 lists some under /lib, some /usr/lib)
  p=$(realpath "$1")
  { dpkg -S "$p" 2>/dev/null || dpkg -S "${p#/usr}" 2>/dev/null || dpkg -S "/usr$p"; } |
    sed -n '1s/[:,].*//p'
}
for lib in $(objdump -p "$tool" | awk '$1 == "NEEDED" { print $2 }'); do
  path=$(ldd "$tool" | awk -v l="$lib" '$1 == l { print $3 }')
  [ -n "$path" ] && [ -e "$path" ] || fail "tendril-viz needs $lib, which is not found"
  case "$path" in "$root"/*) continue ;; esac
  pkg=$(owner "$path")
  [ -n "$pkg" ] || fail "no Debian package owns $path (needed by tendril-viz)"
  echo "$tool_depends" | tr ',' '\n' | grep -q "^ *$pkg\( \|$\)" ||
    fail "tendril-viz needs $lib ($pkg) but its Depends is '$tool_depends'"
done

# Contents: each module's headers and files in its own package, no file in two packages.
contents() { dpkg-deb --contents "$(deb "$1")" | awk '{ print $NF }' | sed 's|^\./|/|'; }
expect_file() {
  contents "$1" | grep -qx "$2" || fail "$1 does not hold $2"
}
for module in sched trace sim realio viz props; do
  pkg=tendril-$module-dev
  for header in $(cd "$src/$module/include" && find . -type f | sed 's|^\./||'); do
    expect_file "$pkg" "/usr/include/$header"
  done
  expect_file "$pkg" "/usr/$libdir/libtendril_$module.a"
  expect_file "$pkg" "/usr/$libdir/cmake/tendril/tendril-$module-targets.cmake"
  expect_file "$pkg" "/usr/share/doc/$pkg/copyright"
  [ "$module" = props ] || expect_file "$pkg" "/usr/$libdir/pkgconfig/tendril-$module.pc"
done
expect_file tendril-sched-dev "/usr/$libdir/cmake/tendril/tendril-config.cmake"
expect_file tendril-sched-dev "/usr/$libdir/cmake/tendril/tendril-config-version.cmake"
expect_file tendril-realio-dev "/usr/$libdir/cmake/tendril/FindLibev.cmake"
expect_file tendril-viz /usr/bin/tendril-viz
expect_file tendril-dev /usr/share/doc/tendril-dev/copyright
for f in "$work/debs"/*.deb; do
  dpkg-deb --contents "$f" | grep -v '^d' | awk '{ print $NF }'
done | sort | uniq -d >"$work/duplicates"
[ ! -s "$work/duplicates" ] || fail "files in two packages: $(cat "$work/duplicates")"

# A consumer against the unpacked packages: find_package, then pkg-config.
project="$src/tests/packaging/installed"
cmake -S "$project" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$root/usr" \
  "-DTENDRIL_COMPONENTS=sim;realio;viz;props" >"$work/consumer.log" 2>&1 ||
  { cat "$work/consumer.log" >&2; fail "find_package(tendril) against the .debs failed"; }
grep -q "^tendril_DIR:PATH=$root/usr/" "$work/consumer/CMakeCache.txt" ||
  fail "the consumer found a tendril outside the unpacked packages"
cmake --build "$work/consumer" -j2 >"$work/consumer-build.log" 2>&1 ||
  { cat "$work/consumer-build.log" >&2; fail "the consumer did not build against the .debs"; }
"$work/consumer/hello"
"$work/consumer/hello_real"
export PKG_CONFIG_PATH="$root/usr/$libdir/pkgconfig"
[ "$(pkg-config --variable=prefix tendril-sim)" -ef "$root/usr" ] ||
  fail "tendril-sim.pc's prefix is $(pkg-config --variable=prefix tendril-sim), not $root/usr"
g++ "$src/tests/packaging/consumer/hello.cpp" $(pkg-config --cflags --libs tendril-sim) \
  -o "$work/pc-hello"
"$work/pc-hello"
g++ "$project/hello_real.cpp" $(pkg-config --cflags --libs tendril-realio tendril-viz) \
  -o "$work/pc-hello-real"
"$work/pc-hello-real"
"$tool" "$src/tests/viz/fixtures/foo_bar.trace" -o "$work/foo_bar.svg"
grep -q '<svg' "$work/foo_bar.svg" || fail "the packaged tendril-viz drew no SVG"

# Each component with only the tendril packages its Depends name (transitively).
closure() {
  todo=$1
  seen=""
  while [ -n "$todo" ]; do
    set -- $todo
    p=$1
    shift
    todo="$*"
    case " $seen " in *" $p "*) continue ;; esac
    seen="$seen $p"
    for d in $(dpkg-deb --field "$(deb "$p")" Depends | tr ',' '\n' | awk '{ print $1 }'); do
      case "$d" in tendril-*) todo="$todo $d" ;; esac
    done
  done
  echo "$seen"
}
for module in sched trace sim realio viz; do
  part="$work/root-$module"
  for p in $(closure "tendril-$module-dev"); do dpkg-deb -x "$(deb "$p")" "$part"; done
  cmake -S "$src/tests/packaging/component" -B "$work/component-$module" \
    -DCMAKE_PREFIX_PATH="$part/usr" -DTENDRIL_COMPONENT=$module >"$work/component.log" 2>&1 &&
    cmake --build "$work/component-$module" >>"$work/component.log" 2>&1 ||
    { cat "$work/component.log" >&2
      fail "tendril-$module-dev with its Depends ($(closure "tendril-$module-dev")) is" \
        "not enough for find_package(tendril COMPONENTS $module)"; }
  "$work/component-$module/use"
done

# apt resolves every Depends (simulated: nothing is installed).
if ! apt-get install --simulate "$work/debs"/*.deb >"$work/apt.log" 2>&1; then
  cat "$work/apt.log" >&2
  fail "apt-get install --simulate of the packages failed"
fi
grep -q '^Inst tendril-dev \|tendril-dev is already the newest' "$work/apt.log" ||
  { cat "$work/apt.log" >&2; fail "apt-get --simulate would not install tendril-dev"; }
echo "deb.sh: $count Debian packages OK: $(cd "$work/debs" && echo ./*.deb)"
