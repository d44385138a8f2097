# SPDX-License-Identifier: Apache-2.0
"""switch_report.py BUILD_DIR [--quick]: bench/run.sh's curve of a switch's cost against the
number of live greenlets (issue 19: no cache collapse at 100,000). N greenlets each call sleep(0)
in turn, round robin (bench/switch_scale.cpp: SimHub, Fifo, dense stacks; bench/gevent_switch.py
for gevent, up to 100,000). Nanoseconds per switch, medians of several processes."""
import os
import re
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = sys.argv[1] if len(sys.argv) > 1 else "build-bench"
QUICK = "--quick" in sys.argv
RUNS = 1 if QUICK else 3
TOOL = BUILD + "/bench/switch_scale"
# (greenlets, tendril's rounds, gevent's rounds or 0 for none)
CURVE = ((10, 100000, 10000), (1000, 1000, 100), (100000, 10, 2), (1000000, 3, 0))


def median(argv):
    values = []
    for _ in range(RUNS):
        out = subprocess.run(argv, capture_output=True, text=True, timeout=900)
        match = re.match(r"ns_per_switch ([0-9.]+)", out.stdout)
        if out.returncode != 0 or not match:
            raise SystemExit("switch_report: %s failed (exit %d): %s%s"
                             % (" ".join(argv), out.returncode, out.stdout, out.stderr))
        values.append(float(match.group(1)))
    return statistics.median(values)


def main():
    print("== a switch among N live greenlets (bench/switch_report.py): ns per switch, "
          "medians of %d processes" % RUNS)
    print("| live greenlets | tendril | gevent | gevent / tendril |")
    print("|---|---|---|---|")
    for n, rounds, gevent_rounds in CURVE:
        t = median([TOOL, str(n), str(rounds)])
        if gevent_rounds:
            g = median(["/usr/bin/python3", HERE + "/gevent_switch.py", str(n), str(gevent_rounds)])
            print("| %d | %.0f | %.0f | %.1fx |" % (n, t, g, g / t))
        else:
            print("| %d | %.0f | - | - |" % (n, t))


if __name__ == "__main__":
    main()
