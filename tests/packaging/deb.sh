#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# deb.sh BUILD_DIR SOURCE_DIR WORK_DIR VERSION: makes the Debian packages of a built (static)
# tendril with cpack and checks them without installing anything system-wide.
# The default configuration, `cpack -G DEB`: one package, tendril-dev:
#   - its Depends are the Debian packages of every component's dependencies (then what
#     dpkg-shlibdeps found for tendril-viz); it Provides, Conflicts with and Replaces the
#     component packages;
#   - it holds exactly the files of the component packages, and its copyright;
#   - unpacked, a consumer builds and runs against it (find_package, pkg-config, tendril-viz);
#   - `apt-get install --simulate ./tendril-dev_*.deb`, alone, from its directory, resolves.
# CPackConfig-components.cmake, one package per component:
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
cpack -G DEB --config "$build/CPackConfig-components.cmake" -B "$work/debs" \
  >"$work/cpack.log" 2>&1 ||
  { cat "$work/cpack.log" >&2; fail "cpack -G DEB --config CPackConfig-components.cmake failed"; }
arch=$(dpkg --print-architecture)
libdir=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:[A-Z]*=//p' "$build/CMakeCache.txt")
# Debian policy: libraries in the multiarch directory (the build's default on Debian).
multiarch=$(gcc -print-multiarch)
[ "$libdir" = "lib/$multiarch" ] ||
  fail "the packages install their libraries under /usr/$libdir, not Debian's multiarch /usr/lib/$multiarch (a build configured with -DCMAKE_INSTALL_LIBDIR?)"
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
expect_depends tendril-tls-dev "tendril-sched-dev $v, libssl-dev (>= 3)"
expect_depends tendril-viz-dev "tendril-sched-dev $v, tendril-trace-dev $v, libgraphviz-dev"
expect_depends tendril-props-dev "tendril-sim-dev $v, librapidcheck-dev, libgtest-dev"
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
for module in sched trace sim realio tls viz props; do
  pkg=tendril-$module-dev
  headers="$src/$module/include"
  [ "$module" != tls ] || headers="$src/realio/tls/include"
  for header in $(cd "$headers" && find . -type f | sed 's|^\./||'); do
    expect_file "$pkg" "/usr/include/$header"
  done
  expect_file "$pkg" "/usr/$libdir/libtendril_$module.a"
  expect_file "$pkg" "/usr/$libdir/cmake/tendril/tendril-$module-targets.cmake"
  expect_file "$pkg" "/usr/share/doc/$pkg/copyright"
  [ "$module" = props ] || expect_file "$pkg" "/usr/$libdir/pkgconfig/tendril-$module.pc"
done
expect_file tendril-sched-dev "/usr/$libdir/cmake/tendril/tendril-config.cmake"
expect_file tendril-sched-dev "/usr/$libdir/libtendril_green.so.$version"
expect_file tendril-sched-dev "/usr/$libdir/cmake/tendril/tendril-config-version.cmake"
expect_file tendril-realio-dev "/usr/$libdir/cmake/tendril/FindLibev.cmake"
expect_file tendril-viz /usr/bin/tendril-viz
for f in "$work/debs"/*.deb; do
  dpkg-deb --contents "$f" | grep -v '^d' | awk '{ print $NF }'
done | sort | uniq -d >"$work/duplicates"
[ ! -s "$work/duplicates" ] || fail "files in two packages: $(cat "$work/duplicates")"

# consume ROOT WHAT: a consumer against packages unpacked into ROOT: find_package, then
# pkg-config; the unpacked tendril-viz draws a trace.
consume() {
  root=$1
  what=$2
  out="$work/consumer-$3"
  project="$src/tests/packaging/installed"
  cmake -S "$project" -B "$out" -DCMAKE_PREFIX_PATH="$root/usr" \
    "-DTENDRIL_COMPONENTS=sim;realio;tls;viz;props" >"$out.log" 2>&1 ||
    { cat "$out.log" >&2; fail "find_package(tendril) against $what failed"; }
  grep -q "^tendril_DIR:PATH=$root/usr/" "$out/CMakeCache.txt" ||
    fail "the consumer found a tendril outside $what"
  cmake --build "$out" -j2 >"$out-build.log" 2>&1 ||
    { cat "$out-build.log" >&2; fail "the consumer did not build against $what"; }
  "$out/hello"
  "$out/hello_green"
  "$out/hello_real"
  "$out/hello_tls"
  PKG_CONFIG_PATH="$root/usr/$libdir/pkgconfig"
  export PKG_CONFIG_PATH
  [ "$(pkg-config --variable=prefix tendril-sim)" -ef "$root/usr" ] ||
    fail "tendril-sim.pc's prefix is $(pkg-config --variable=prefix tendril-sim), not $root/usr"
  g++ "$src/tests/packaging/consumer/hello.cpp" $(pkg-config --cflags --libs tendril-sim) \
    -o "$out-pc-hello"
  "$out-pc-hello"
  g++ "$project/hello_real.cpp" $(pkg-config --cflags --libs tendril-realio tendril-viz) \
    -o "$out-pc-hello-real"
  "$out-pc-hello-real"
  g++ "$project/hello_tls.cpp" $(pkg-config --cflags --libs tendril-tls tendril-sim) \
    -o "$out-pc-hello-tls"
  "$out-pc-hello-tls"
  "$root/usr/bin/tendril-viz" "$src/tests/viz/fixtures/foo_bar.trace" -o "$out.svg"
  grep -q '<svg' "$out.svg" || fail "the tendril-viz of $what drew no SVG"
}
consume "$root" "the component packages" components

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
for module in sched trace sim realio tls viz; do
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
grep -q '^Inst tendril-sim-dev \|tendril-sim-dev is already the newest' "$work/apt.log" ||
  { cat "$work/apt.log" >&2; fail "apt-get --simulate would not install tendril-sim-dev"; }

# The default configuration: tendril-dev alone.
mkdir -p "$work/dev"
cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work/dev" >"$work/cpack-dev.log" 2>&1 ||
  { cat "$work/cpack-dev.log" >&2; fail "cpack -G DEB failed"; }
dev="$work/dev/tendril-dev_${version}_$arch.deb"
[ "$(ls "$work/dev"/*.deb)" = "$dev" ] || fail "cpack -G DEB made $(ls "$work/dev"/*.deb), not $dev"
external="libboost-context-dev (>= 1.74), libev-dev, libssl-dev (>= 3), libgraphviz-dev, \
librapidcheck-dev, libgtest-dev"
got=$(dpkg-deb --field "$dev" Depends)
[ "$got" = "$external, $tool_depends" ] ||
  fail "tendril-dev: Depends is '$got', expected '$external, $tool_depends'"
names="tendril-sched-dev, tendril-trace-dev, tendril-sim-dev, tendril-realio-dev, \
tendril-tls-dev, tendril-viz-dev, tendril-viz, tendril-props-dev"
provides=$(echo "$names" | sed "s/,/ $v,/g; s/\$/ $v/")
for field in Provides:"$provides" Conflicts:"$names" Replaces:"$names"; do
  got=$(dpkg-deb --field "$dev" "${field%%:*}")
  [ "$got" = "${field#*:}" ] || fail "tendril-dev: ${field%%:*} is '$got', expected '${field#*:}'"
done
for f in "$work/debs"/*.deb; do dpkg-deb --contents "$f"; done | grep -v '^d' | awk '{ print $NF }' |
  sort >"$work/components.files"
{ cat "$work/components.files"; echo ./usr/share/doc/tendril-dev/copyright; } | sort >"$work/expected.files"
dpkg-deb --contents "$dev" | grep -v '^d' | awk '{ print $NF }' | sort >"$work/dev.files"
cmp -s "$work/expected.files" "$work/dev.files" ||
  fail "tendril-dev's files differ from the component packages' (+ its copyright):" \
    "$(diff "$work/expected.files" "$work/dev.files")"
dpkg-deb -x "$dev" "$work/root-dev"
consume "$work/root-dev" "tendril-dev" dev
if ! (cd "$work/dev" && apt-get install --simulate ./tendril-dev_*.deb) >"$work/apt-dev.log" 2>&1; then
  cat "$work/apt-dev.log" >&2
  fail "apt-get install --simulate ./tendril-dev_*.deb failed"
fi
grep -q '^Inst tendril-dev \|tendril-dev is already the newest' "$work/apt-dev.log" ||
  { cat "$work/apt-dev.log" >&2; fail "apt-get --simulate would not install tendril-dev"; }
echo "deb.sh: tendril-dev and $count component packages OK: $(cd "$work/debs" && echo ./*.deb)"
