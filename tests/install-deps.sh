#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# install-deps.sh: installs the Debian 12 packages tendril builds and tests with.
# Idempotent: when everything is present it only checks and returns (well under a second).
# Needs root (or passwordless sudo) only when something is missing.
set -euo pipefail

packages=(
  cmake g++ make pkg-config
  dpkg-dev               # dpkg-shlibdeps: the tendril-viz package's Depends (cpack -G DEB)
  libboost-context-dev   # Boost.Context fibers: the greenlet switch
  libev-dev              # the real hub's event loop
  libgtest-dev libgmock-dev
  libbenchmark-dev
  librapidcheck-dev
  libgraphviz-dev graphviz
  valgrind               # callgrind instruction counts in bench/
  python3-gevent         # gevent twins: the orders tendril pins, checked against gevent
  python3-eventlet       # eventlet twins (spawn_after, cancel, spawn_n)
  apache2-utils          # ab: the seed's HTTP load (bench/net.sh)
  libcurl4-openssl-dev   # the crawler example: libcurl's blocking easy API under tendril::green
  libssl-dev curl        # tendril::tls (OpenSSL 3) and the HTTPS example checked with curl --cacert
  clang libclang-rt-14-dev  # clang 14 and its libFuzzer runtime: the fuzz targets (tests/fuzz)
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing missing Debian packages: ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "install-deps: error: missing packages (${missing[*]}) and not running as root." >&2
  echo "install-deps: run as root: apt-get update && apt-get install -y ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -q
"${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
# Graphviz finds its layout plugins through a registry that the package's install step writes;
# write it again in case the package was unpacked without its configure step.
if command -v dot >/dev/null 2>&1; then "${as_root[@]}" dot -c || true; fi
echo "install-deps: done"
