"""gevent_twin.py: gevent's cost for the operations bench_core measures, on the same machine.
Prints the median of 5 runs for sleep(0) ping-pong (per sleep(0)) and spawn+join (per greenlet).
Run with Debian's /usr/bin/python3 and python3-gevent."""
import statistics
import time

import gevent


def sleep0(n):
    def partner():
        for _ in range(n):
            gevent.sleep(0)
    g = gevent.spawn(partner)
    start = time.perf_counter()
    for _ in range(n):
        gevent.sleep(0)
    g.join()
    return (time.perf_counter() - start) / (2 * n)


def spawn_join(n):
    start = time.perf_counter()
    for _ in range(n):
        gevent.spawn(lambda: None).join()
    return (time.perf_counter() - start) / n


for name, fn, n in (("gevent sleep(0)", sleep0, 200000), ("gevent spawn+join", spawn_join, 100000)):
    runs = [fn(n) for _ in range(5)]
    print("%-40s %10.0f ns (median of 5)" % (name, statistics.median(runs) * 1e9))
