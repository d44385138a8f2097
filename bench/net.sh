#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# net.sh: the network benchmarks, on loopback only and bounded in count and time: (a) the seed's
# HTTP load (hello HTTP/1.0 server sleeping 0.1 s per request; ab -n 200 -c 200, 200 and 10,000
# concurrent connections) for tendril and gevent, (b) echo throughput at 100 connections for
# tendril, gevent and a plain libev callback server, (c) the real hub's sleep(0) and timer sleep
# next to gevent's, (d) normal clients' requests per second under a slowloris attack
# (bench/slowloris.cpp: 2,000 slow connections against the default concurrency of 1,000), (e) TLS
# echo round trips and handshakes for tendril::tls, a plain libev + OpenSSL server and gevent's
# ssl (bench/tls_report.py), (f) name lookups from 1 to 100 greenlets at once against gevent's
# (bench/resolve_report.py). Prints one table per benchmark with medians and ratios
# (bench/net_report.py).
# Usage: bash bench/net.sh [--quick]   (--quick: fewer and shorter runs, about half a minute)
# On a shared machine run it under the build lock: flock /tmp/tendril-build.lock bash bench/net.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/install-deps.sh

# 10,000 connections need more than 10,000 descriptors in the server and in the load generator
# (separate processes): raise the soft limit up to the hard limit, and say so.
needed=10100
soft=$(ulimit -Sn)
hard=$(ulimit -Hn)
if [ "$soft" != unlimited ] && { [ "$hard" = unlimited ] || [ "$soft" -lt "$hard" ]; }; then
  ulimit -Sn "$hard"
  echo "net.sh: raised the soft limit on open files (ulimit -n) from $soft to $(ulimit -Sn)"
fi
if [ "$hard" != unlimited ] && [ "$hard" -lt "$needed" ]; then
  echo "net.sh: the hard limit on open files (ulimit -Hn) is $hard, below the $needed that" \
    "10,000 connections need: that row will fail; raise the hard limit to run it" >&2
fi

cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DTENDRIL_BUILD_TESTS=OFF >/dev/null
cmake --build build-bench -j2 --target hello_http bench_realio net_load tendril_echo \
  plain_libev_echo slowloris tls_bench resolve_bench >/dev/null
/usr/bin/python3 bench/net_report.py build-bench "$@"
echo
/usr/bin/python3 bench/tls_report.py build-bench "$@"
echo
/usr/bin/python3 bench/resolve_report.py build-bench "$@"
echo
echo "== slowloris (bench/slowloris.cpp)"
if [ "${1:-}" = --quick ]; then
  ./build-bench/bench/slowloris 2000 2
else
  ./build-bench/bench/slowloris 2000 5
fi
