# SPDX-License-Identifier: Apache-2.0
"""report.py: runs tendril's benchmarks and gevent's twins in one go and prints one table with
instruction counts (callgrind: exact and repeatable), wall-time medians and ratios.
Called by bench/run.sh after the build; paths are relative to the repository root."""
import json
import os
import subprocess
import sys

BUILD = "build-bench/bench"
QUICK = "--quick" in sys.argv

# name: (label, callgrind mode, operations per N, benchmark binary, benchmark name, counter)
ROWS = [
    ("raw", "raw Boost.Context fiber, one-way switch", "raw_fiber", 2,
     "bench_core", "BM_RawFiberPingPong", "ns_per_switch"),
    ("sleep0", "sleep(0) ping-pong, per sleep(0)", "sleep0", 2,
     "bench_core", "BM_SleepZeroPingPong", "ns_per_sleep0"),
    ("sleep0_dense", "sleep(0) ping-pong on dense stacks (overflow check per switch)",
     "sleep0_dense", 2, "bench_core", "BM_SleepZeroPingPongDense", "ns_per_sleep0"),
    ("spawn_join", "spawn + join, warm pool", "spawn_join", 1,
     "bench_core", "BM_SpawnJoin", None),
    ("queue", "Queue ping-pong, per message", "queue", 2,
     "bench_primitives", "BM_QueuePingPong", "ns_per_message"),
    ("event", "Event wakeup, per waiter (10k waiting)", "event", 100,
     "bench_primitives", "BM_EventWakeup10k", "ns_per_waiter"),
    ("imap", "Pool(10).imap_unordered, per item (100k)", "imap", 1,
     "bench_primitives", "BM_PoolImapUnordered100k", "ns_per_item"),
    ("semaphore", "Semaphore hand-off", "semaphore", 2,
     "bench_primitives", "BM_SemaphoreHandoff", "ns_per_handoff"),
]


def instructions(mode, n, build=BUILD):
    out = "/tmp/tendril-callgrind.%d.out" % os.getpid()
    subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
                    build + "/callgrind_probe", mode, str(n)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(out) as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                os.unlink(out)
                return int(line.split()[1])
    raise SystemExit("report.py: no instruction total in callgrind output for " + mode)


def per_op(mode, ops_per_n, build=BUILD):
    small, large = {"event": (100, 1100), "queue10k": (2, 4), "queue10k_traced": (2, 4)}.get(
        mode, (1000, 11000))
    return ((instructions(mode, large, build) - instructions(mode, small, build)) /
            ((large - small) * ops_per_n))


def tracing_table():
    """What flow tracing costs: the hook with no tracer (against a build without the hook, by
    instruction count) and a Tracer recording in memory (wall-time medians, same run)."""
    nohook = "build-bench-nohook/bench"
    print("| tracing cost | without the hook | hook, no tracer | ratio | tracer recording | ratio |")
    print("|---|---|---|---|---|---|")
    wall = medians("bench_trace", None)
    for label, mode, ops, bench, counter in [
            ("sleep(0) ping-pong, instructions per sleep(0)", "sleep0", 2, None, None),
            ("10k greenlets on one Queue, instructions per greenlet", "queue10k", 10000, None, None),
            ("sleep(0) ping-pong, ns per sleep(0) (median)", None, 0,
             "BM_TraceSleepZeroPingPong/traced:%d", "ns_per_sleep0"),
            ("10k greenlets on one Queue, ns per greenlet (median)", None, 0,
             "BM_TraceQueue10k/traced:%d", "ns_per_greenlet")]:
        if mode:
            without = per_op(mode, ops, nohook)
            hook = per_op(mode, ops)
            traced = per_op(mode + "_traced", ops)
            print("| %s | %.0f | %.0f | %.3fx | %.0f | %.2fx |" %
                  (label, without, hook, hook / without, traced, traced / hook))
        else:
            plain = wall[bench % 0][counter] * 1e9
            traced = wall[bench % 1][counter] * 1e9
            print("| %s | | %.1f | | %.1f | %.2fx |" % (label, plain, traced, traced / plain))
    print()
    print("| drawing a trace of 10,000 switches | median |")
    print("|---|---|")
    drawing = medians("bench_viz", None)
    for name, label in [("BM_FlowDot10kSwitches", "flow graph as DOT text (every switch)"),
                        ("BM_RenderSvg10kSwitches/iterations:1/repeats:3",
                         "SVG through Graphviz (every switch)"),
                        ("BM_RenderSvgDefaultGuard/iterations:1/repeats:3",
                         "SVG with tendril-viz's defaults (repeats folded, <= 2000 switches)")]:
        b = drawing.get(name)
        if b:
            print("| %s | %.0f ms |" % (label, b["real_time"]))
    b = drawing.get("BM_TraceFileRoundTrip")
    if b:
        print("| trace file: write + parse, per event | %.0f ns |" % (b["ns_per_event"] * 1e9))


def medians(binary, extra_filter):
    args = [BUILD + "/" + binary, "--benchmark_format=json", "--benchmark_repetitions=5",
            "--benchmark_report_aggregates_only=true"]
    if extra_filter:
        args.append("--benchmark_filter=" + extra_filter)
    data = json.loads(subprocess.run(args, check=True, capture_output=True, text=True).stdout)
    out = {}
    for b in data["benchmarks"]:
        if b.get("aggregate_name") == "median":
            out[b["run_name"]] = b
    return out


def main():
    wall = {}
    wall.update(medians("bench_core", "-BM_IdleGreenletMemory"))
    wall.update(medians("bench_primitives", None))
    gevent = {}
    try:
        twin = subprocess.run(["/usr/bin/python3", "bench/gevent_twin.py"], check=True,
                              capture_output=True, text=True)
        gevent = json.loads(twin.stdout)
    except (OSError, subprocess.CalledProcessError) as e:
        print("(gevent twin unavailable: %s)" % e)
    print("| operation | instructions (callgrind) | tendril SimHub, median | gevent, median | gevent / tendril |")
    print("|---|---|---|---|---|")
    for key, label, mode, ops, binary, bench, counter in ROWS:
        ir = per_op(mode, ops)
        b = wall.get(bench)
        ns = b[counter] * 1e9 if counter else b["real_time"]
        g = gevent.get(key)
        g_text = "%.0f ns" % g if g else "-"
        ratio = "%.0fx" % (g / ns) if g else "-"
        print("| %s | %.0f | %.1f ns | %s | %s |" % (label, ir, ns, g_text, ratio))
    print()
    print("| exploration of a 10-greenlet, ~100-switch test | schedules/s (median) | vs the same policy unrecorded |")
    print("|---|---|---|")
    explore = medians("bench_explore", None)
    plain = {}
    for name, b in sorted(explore.items()):
        rate = b["schedules_per_s"]
        label = b.get("label", name)
        if name.startswith("BM_Schedule") and name.endswith("/0"):
            plain[label] = rate
    one_process = None
    for name, b in sorted(explore.items()):
        if name.startswith("BM_Explore") and b.get("processes") == 1:
            one_process = b["schedules_per_s"]
    for name, b in sorted(explore.items()):
        rate = b["schedules_per_s"]
        if name.startswith("BM_Explore"):
            ratio = "%.2fx one process" % (rate / one_process) if one_process else ""
            print("| %s, random, 20,000 schedules | %.0fk | %s |" % (b.get("label", name), rate / 1000, ratio))
            continue
        label = b.get("label", name) if name.startswith("BM_Schedule") else "replay of a random schedule"
        base = plain.get(label.replace(", recorded", ""))
        if name == "BM_Replay":
            base = plain.get("random")
        overhead = "" if label in plain else ("%+.0f%%" % ((base / rate - 1) * 100) if base else "")
        print("| %s | %.0fk | %s |" % (label, rate / 1000, overhead))
    print()
    tracing_table()
    if not QUICK:
        mem = subprocess.run([BUILD + "/bench_core", "--benchmark_filter=BM_IdleGreenletMemory",
                              "--benchmark_format=json"], check=True, capture_output=True,
                             text=True)
        for b in json.loads(mem.stdout)["benchmarks"]:
            print("| idle greenlets: %d live, dense stacks | | %.2f KiB each | | |" %
                  (b["live_greenlets"], b["bytes_per_greenlet"] / 1024))


main()
