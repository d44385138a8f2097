# SPDX-License-Identifier: Apache-2.0
"""gevent_switch.py N ROUNDS: the gevent side of bench/switch_report.py, as
bench/switch_scale.cpp: N greenlets each call gevent.sleep(0) ROUNDS times (after one warm-up
call), round robin; prints "ns_per_switch S" (wall time over N x ROUNDS resumptions). Run with
Debian's /usr/bin/python3."""
import sys
import time

import gevent


def main():
    if len(sys.argv) != 3 or not sys.argv[1].isdigit() or not sys.argv[2].isdigit():
        sys.exit("usage: gevent_switch.py N ROUNDS")
    n, rounds = int(sys.argv[1]), int(sys.argv[2])
    if n == 0 or rounds == 0:
        sys.exit("usage: gevent_switch.py N ROUNDS   (both at least 1)")

    def body():
        for _ in range(rounds + 1):
            gevent.sleep(0)

    greenlets = [gevent.spawn(body) for _ in range(n)]
    gevent.sleep(0)  # all start and make their warm-up sleep(0)
    start = time.perf_counter()
    gevent.joinall(greenlets)
    print("ns_per_switch %.1f" % ((time.perf_counter() - start) * 1e9 / (n * rounds)))


if __name__ == "__main__":
    main()
