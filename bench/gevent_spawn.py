# SPDX-License-Identifier: Apache-2.0
"""gevent_spawn.py N: the gevent side of bench/spawn_report.py, as bench/spawn_scale.cpp: in a
fresh process, N greenlets that each wait on one Event are spawned and started by a sleep(0)
(cold), then released and joined (finish); then spawned and started again (warm). Prints "cold C
finish F warm W" in microseconds per greenlet. Run with Debian's /usr/bin/python3."""
import sys
import time

import gevent
from gevent.event import Event


def one_round(n):
    """Microseconds per greenlet to spawn and start n waiting greenlets, then to finish them."""
    start = time.perf_counter()
    go = Event()
    greenlets = [gevent.spawn(go.wait) for _ in range(n)]
    gevent.sleep(0)
    started = time.perf_counter()
    go.set()
    gevent.joinall(greenlets)
    return (started - start) * 1e6 / n, (time.perf_counter() - started) * 1e6 / n


def main():
    if len(sys.argv) != 2 or not sys.argv[1].isdigit() or int(sys.argv[1]) == 0:
        sys.exit("usage: gevent_spawn.py N")
    n = int(sys.argv[1])
    cold, finish = one_round(n)
    warm, _ = one_round(n)
    print("cold %.3f finish %.3f warm %.3f" % (cold, finish, warm))


if __name__ == "__main__":
    main()
