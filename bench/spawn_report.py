# SPDX-License-Identifier: Apache-2.0
"""spawn_report.py BUILD_DIR [--quick]: bench/run.sh's table of spawning many greenlets that stay
alive (issue 19's cold spawn). For 1,000, 10,000 and 100,000 greenlets, each in a fresh process
(bench/spawn_scale.cpp on a SimHub; bench/gevent_spawn.py for gevent): spawning and starting
them (cold: no stack mapped yet), finishing and joining them, spawning and starting again on the
same hub (warm), on a second hub made afterwards in the same process (new hub: it takes the
stacks the first left), and the first hub's teardown. Both stack modes. Microseconds per
greenlet, medians of several processes."""
import os
import re
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = sys.argv[1] if len(sys.argv) > 1 else "build-bench"
QUICK = "--quick" in sys.argv
RUNS = 1 if QUICK else 3
TOOL = BUILD + "/bench/spawn_scale"
COUNTS = (1000, 10000, 100000)


def measure(argv):
    """The medians of each figure the program prints ("name value ..."), or its refusal."""
    runs = []
    for _ in range(RUNS):
        out = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            raise SystemExit("spawn_report: %s failed (exit %d): %s%s"
                             % (" ".join(argv), out.returncode, out.stdout, out.stderr))
        if out.stdout.startswith("refused:"):
            return out.stdout.strip()
        runs.append({k: float(v) for k, v in re.findall(r"(\w+) ([0-9.]+)", out.stdout)})
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def cell(result, key):
    if isinstance(result, str):
        return "refused" if key == "cold" else ""
    return "%.2f" % result[key] if key in result else "-"


def main():
    print("== spawning greenlets that stay alive (bench/spawn_report.py): us per greenlet, "
          "medians of %d processes" % RUNS)
    print("| greenlets | stacks | cold | finish | warm | new hub | teardown | gevent cold | gevent finish "
          "| gevent warm |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    refusals = []
    for n in COUNTS:
        g = measure(["/usr/bin/python3", HERE + "/gevent_spawn.py", str(n)])
        for mode in ("guarded", "dense"):
            r = measure([TOOL, mode, str(n)])
            if isinstance(r, str):
                refusals.append("%s %d: %s" % (mode, n, r))
            print("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |"
                  % (n, mode, cell(r, "cold"), cell(r, "finish"), cell(r, "warm"),
                     cell(r, "newhub"), cell(r, "teardown"), cell(g, "cold"), cell(g, "finish"),
                     cell(g, "warm")))
    for line in refusals:
        print(line)


if __name__ == "__main__":
    main()
