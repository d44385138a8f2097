# SPDX-License-Identifier: Apache-2.0
"""gevent_twin.py: gevent's cost for every operation bench_core and bench_primitives measure, on
the same machine, as the median of 5 runs. Prints one JSON object: {name: ns_per_op}.
Run with Debian's /usr/bin/python3 and python3-gevent (bench/run.sh does)."""
import json
import statistics
import sys
import time

import gevent
from gevent.event import Event
from gevent.lock import Semaphore
from gevent.pool import Pool
from gevent.queue import Queue


def sleep0(n=200000):
    def partner():
        for _ in range(n):
            gevent.sleep(0)
    g = gevent.spawn(partner)
    start = time.perf_counter()
    for _ in range(n):
        gevent.sleep(0)
    g.join()
    return (time.perf_counter() - start) / (2 * n)


def timer_sleep(n=100000):
    # A timer that is due by the time libev looks (bench_realio's BM_LibevTimerSleep).
    start = time.perf_counter()
    for _ in range(n):
        gevent.sleep(1e-9)
    return (time.perf_counter() - start) / n


def spawn_join(n=100000):
    start = time.perf_counter()
    for _ in range(n):
        gevent.spawn(lambda: None).join()
    return (time.perf_counter() - start) / n


def queue_pingpong(n=100000):
    to_partner, to_main = Queue(), Queue()
    def partner():
        for _ in range(n):
            to_main.put(to_partner.get() + 1)
    g = gevent.spawn(partner)
    start = time.perf_counter()
    for i in range(n):
        to_partner.put(i)
        to_main.get()
    g.join()
    return (time.perf_counter() - start) / (2 * n)


def event_wakeup(waiters=10000, rounds=5):
    events = [Event() for _ in range(rounds)]
    done = Event()
    state = {"woken": 0}
    def waiter():
        for r in range(rounds):
            events[r].wait()
            state["woken"] += 1
            if state["woken"] == waiters:
                done.set()
    gs = [gevent.spawn(waiter) for _ in range(waiters)]
    gevent.sleep(0)
    start = time.perf_counter()
    for r in range(rounds):
        state["woken"] = 0
        done.clear()
        events[r].set()
        done.wait()
    elapsed = time.perf_counter() - start
    gevent.joinall(gs)
    return elapsed / (waiters * rounds)


def imap_unordered(n=100000):
    pool = Pool(10)
    start = time.perf_counter()
    total = sum(pool.imap_unordered(lambda x: x, range(n)))
    assert total == n * (n - 1) // 2
    return (time.perf_counter() - start) / n


def semaphore_handoff(n=100000):
    to_partner, to_main = Semaphore(0), Semaphore(0)
    def partner():
        for _ in range(n):
            to_partner.acquire()
            to_main.release()
    g = gevent.spawn(partner)
    start = time.perf_counter()
    for _ in range(n):
        to_partner.release()
        to_main.acquire()
    g.join()
    return (time.perf_counter() - start) / (2 * n)


benchmarks = {
    "sleep0": sleep0, "timer_sleep": timer_sleep, "spawn_join": spawn_join, "queue": queue_pingpong,
    "event": event_wakeup, "imap": imap_unordered, "semaphore": semaphore_handoff,
}
only = sys.argv[1:] or list(benchmarks)
result = {}
for name in only:
    result[name] = statistics.median(benchmarks[name]() for _ in range(5)) * 1e9
print(json.dumps(result))
