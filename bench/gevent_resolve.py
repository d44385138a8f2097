# SPDX-License-Identifier: Apache-2.0
"""gevent_resolve.py N LATENCY_MS: the gevent side of bench/resolve_report.py: N greenlets call
gevent.socket.gethostbyname at once (gevent's default resolver: its hub's thread pool, 10
threads), joined with gevent.joinall; prints "seconds S". As in bench/resolve_bench.cpp, a lookup
of a name ending in ".slow.test" sleeps LATENCY_MS in the pool's thread (the C function the
resolver calls, _socket.gethostbyname, is replaced), then answers 127.0.0.1. Run with Debian's
/usr/bin/python3."""
import _socket
import sys
import time

import gevent
import gevent.socket

LIBC_GETHOSTBYNAME = _socket.gethostbyname


def slow_gethostbyname(name):
    if name.endswith(".slow.test"):
        time.sleep(LATENCY)  # not monkey-patched: it blocks the pool's thread, as a lookup does
        return "127.0.0.1"
    return LIBC_GETHOSTBYNAME(name)


def main():
    global LATENCY
    if len(sys.argv) != 3 or not sys.argv[1].isdigit() or not sys.argv[2].isdigit():
        sys.exit("usage: gevent_resolve.py N LATENCY_MS")
    n = int(sys.argv[1])
    LATENCY = int(sys.argv[2]) / 1000.0
    _socket.gethostbyname = slow_gethostbyname
    gevent.get_hub().threadpool  # started before the clock, as tendril's pool is made with its hub
    start = time.perf_counter()
    jobs = [gevent.spawn(gevent.socket.gethostbyname, "host%d.slow.test" % i) for i in range(n)]
    gevent.joinall(jobs)
    seconds = time.perf_counter() - start
    wrong = [j.value for j in jobs if j.value != "127.0.0.1"]
    if wrong:
        sys.exit("gevent_resolve: %d lookups failed or gave another address: %r" % (len(wrong), wrong[:3]))
    print("seconds %.4f" % seconds)


LATENCY = 0.0
if __name__ == "__main__":
    main()
