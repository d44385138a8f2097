# SPDX-License-Identifier: Apache-2.0
"""tls_report.py BUILD_DIR [--quick]: bench/net.sh's TLS table. Three TLS echo servers on
loopback, each loaded by the same client (tls_bench, tendril::tls on a LibevHub, in its own
process): tendril (LibevHub, StreamServer, wrap_tls), a plain server on libev callbacks with
non-blocking OpenSSL (no greenlets: the ceiling), and gevent's StreamServer with its ssl module.
Two loads: echo round trips of 64 bytes over 50 TLS connections, and handshakes (connect,
handshake, close) from 20 clients at once. Medians of several runs; the ratios against the plain
server (issue 20's target: at least 0.8x) and against gevent. The server runs on CPU 0 and the
load on CPU 1 when there are two."""
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build-bench"
QUICK = "--quick" in sys.argv
RUNS = 2 if QUICK else 5
SECONDS = 2 if QUICK else 3
PIN = len(os.sched_getaffinity(0)) >= 2 and shutil.which("taskset") is not None
SERVER_CPU = ["taskset", "-c", "0"] if PIN else []
CLIENT_CPU = ["taskset", "-c", "1"] if PIN else []
TOOL = BUILD + "/bench/tls_bench"


def start(argv):
    proc = subprocess.Popen(SERVER_CPU + argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    line = proc.stdout.readline()
    match = re.search(r":(\d+)\s*$", line)
    if not match:
        proc.kill()
        raise SystemExit("tls_report: %s did not say where it listens (got %r)" % (argv, line))
    return proc, int(match.group(1))


def cpu_seconds(pid):
    """User plus system CPU time of a process so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def load(kind, port):
    args = [TOOL, kind, str(port)] + (["50", str(SECONDS), "64"] if kind == "echo"
                                      else ["20", str(SECONDS)])
    out = subprocess.run(CLIENT_CPU + args, capture_output=True, text=True, timeout=SECONDS + 60)
    match = re.match(r"(requests|handshakes) (\d+) errors (\d+)", out.stdout)
    if not match or match.group(3) != "0":
        raise SystemExit("tls_report: %s failed: %s %s" % (args, out.stdout, out.stderr[-500:]))
    return int(match.group(2)) / SECONDS


def main():
    work = tempfile.mkdtemp(prefix="tendril-tls-bench-")
    subprocess.run([TOOL, "cert", work], check=True)
    servers = [("tendril", [TOOL, "tendril", "0", work]),
               ("plain", [TOOL, "plain", "0", work]),
               ("gevent", ["/usr/bin/python3", "bench/gevent_ssl_echo.py", "0", work])]
    results = {}
    for kind in ("echo", "handshakes"):
        for name, argv in servers:
            rates = []
            costs = []
            for _ in range(RUNS):
                proc, port = start(argv)
                try:
                    before = cpu_seconds(proc.pid)
                    rate = load(kind, port)
                    rates.append(rate)
                    costs.append((cpu_seconds(proc.pid) - before) / (rate * SECONDS) * 1e6)
                finally:
                    stop(proc)
            results[(kind, name)] = statistics.median(rates)
            results[(kind, name, "cpu")] = statistics.median(costs)
    shutil.rmtree(work)
    print("## TLS: echo round trips (64 bytes, 50 connections) and handshakes (20 clients), "
          "%d s per run, median of %d runs" % (SECONDS, RUNS))
    print()
    print("| load | tendril (LibevHub + wrap_tls) | plain libev + OpenSSL | gevent ssl | "
          "tendril / plain (target >= 0.8x) | tendril / gevent |")
    print("|---|---|---|---|---|---|")
    for kind, unit in (("echo", "round trips/s"), ("handshakes", "handshakes/s")):
        t, p, g = (results[(kind, n)] for n in ("tendril", "plain", "gevent"))
        print("| %s | %.0f %s | %.0f | %.0f | %.2fx | %.2fx |" % (kind, t, unit, p, g, t / p, t / g))
    for kind in ("echo", "handshakes"):
        t, p, g = (results[(kind, n, "cpu")] for n in ("tendril", "plain", "gevent"))
        print("| %s: server CPU per %s | %.1f us | %.1f us | %.1f us | %.2fx | %.2fx |" %
              (kind, "round trip" if kind == "echo" else "handshake", t, p, g, p / t, g / t))
    print()
    print("On two cores the server and the load (itself tendril::tls, one process) have one core "
          "each, and the load is about as fast as the servers: the rates bound the servers from "
          "below. The CPU rows (the server's user+system time per operation; the ratios are "
          "plain / tendril and gevent / tendril, so above 1x means tendril spends less) compare "
          "the servers themselves.")


main()
