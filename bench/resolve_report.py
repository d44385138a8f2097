# SPDX-License-Identifier: Apache-2.0
"""resolve_report.py BUILD_DIR [--quick]: bench/net.sh's name-lookup table. N greenlets resolve
names at once on a LibevHub (bench/resolve_bench.cpp) and in gevent (bench/gevent_resolve.py),
each lookup standing for a DNS server that answers in 50 ms (a sleep in the pool's thread, the
same in both). tendril's blocking-call pool starts threads on demand up to
LibevOptions::threads (64 by default); the column "4 threads" is the pool size tendril had before
(and libuv's); gevent's pool holds 10 threads. Wall seconds, medians of several runs, and the
ratio of each to one lookup's 50 ms (1.0 = the time of one)."""
import os
import re
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = sys.argv[1] if len(sys.argv) > 1 else "build-bench"
QUICK = "--quick" in sys.argv
RUNS = 1 if QUICK else 3
LATENCY_MS = 50
TOOL = BUILD + "/bench/resolve_bench"


def seconds(argv):
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    match = re.match(r"seconds ([0-9.]+)", out.stdout)
    if out.returncode != 0 or not match:
        raise SystemExit("resolve_report: %s failed (exit %d): %s%s"
                         % (" ".join(argv), out.returncode, out.stdout, out.stderr))
    return float(match.group(1))


def median(argv):
    return statistics.median(seconds(argv) for _ in range(RUNS))


def main():
    print("== name lookups at once, each answered in %d ms (bench/resolve_report.py; medians of %d)"
          % (LATENCY_MS, RUNS))
    print("| greenlets resolving at once | tendril (pool up to 64) | tendril, 4 threads | gevent (pool of 10) |")
    print("|---|---|---|---|")
    for n in (1, 10, 64, 100):
        cells = []
        for argv in ([TOOL, str(n), "64", str(LATENCY_MS)], [TOOL, str(n), "4", str(LATENCY_MS)],
                     ["/usr/bin/python3", HERE + "/gevent_resolve.py", str(n), str(LATENCY_MS)]):
            s = median(argv)
            cells.append("%.3f s (%.1fx one lookup)" % (s, s * 1000 / LATENCY_MS))
        print("| %d | %s |" % (n, " | ".join(cells)))


if __name__ == "__main__":
    main()
