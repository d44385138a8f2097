# SPDX-License-Identifier: Apache-2.0
"""net_report.py: the network benchmarks of bench/net.sh, run against servers on loopback, with
one table per benchmark: medians of several runs (this machine is noisy) and the ratios.
  (a) the seed's HTTP load: the hello HTTP/1.0 server (each request sleeps 0.1 s), tendril
      (examples/hello_http on LibevHub) and gevent (bench/gevent_http.py): `ab -n 200 -c 200`,
      net_load with 200 and with 10,000 concurrent connections; time, failures, and the kernel's
      listen-queue overflows (SYNs dropped because the server had not accepted yet).
  (b) echo throughput at 100 connections: tendril (bench/tendril_echo), gevent
      (bench/gevent_echo.py), and a plain libev callback server (bench/plain_libev_echo).
  (c) the real hub's sleep(0) and timer sleep (bench_realio) next to gevent's (gevent_twin.py).
Servers run on CPU 0 and the load generator on CPU 1 when there are two CPUs, so that neither
starves the other. Called by bench/net.sh after the build; paths are relative to the repository
root. Usage: net_report.py BUILD_DIR [--quick]"""
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build-bench"
QUICK = "--quick" in sys.argv
RUNS = 3 if QUICK else 5
ECHO_RUNS = 2 if QUICK else 5
ECHO_SECONDS = 2 if QUICK else 3
ECHO_CONNECTIONS = 100
ECHO_MESSAGE_BYTES = 64
PYTHON = "/usr/bin/python3"

PIN = len(os.sched_getaffinity(0)) >= 2 and shutil.which("taskset") is not None
SERVER_CPU = ["taskset", "-c", "0"] if PIN else []
CLIENT_CPU = ["taskset", "-c", "1"] if PIN else []


def listen_overflows():
    """The kernel's count of connections dropped because an accept queue was full."""
    with open("/proc/net/netstat") as f:
        lines = f.read().splitlines()
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:]))
            return int(table.get("ListenOverflows", 0))
    return 0


class Server:
    """A server process on loopback; its first line of output says where it listens."""

    def __init__(self, name, argv):
        self.name = name
        # stderr goes to a file: a pipe nobody reads would block a server that logs a lot.
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(SERVER_CPU + argv, stdout=subprocess.PIPE,
                                     stderr=self.stderr, text=True)
        line = self.proc.stdout.readline()
        match = re.search(r":(\d+)/?\s*", line)
        if not match:
            self.stop()
            raise SystemExit("net_report: %s did not say where it listens (got %r; stderr: %s)" %
                             (name, line, self.errors[-2000:]))
        self.port = int(match.group(1))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.seek(0)
        self.errors = self.stderr.read()
        self.stderr.close()


def cpu_seconds(pid):
    """User and kernel CPU time of a process so far, from /proc/PID/stat."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_json(argv, timeout):
    out = subprocess.run(CLIENT_CPU + argv, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError("%s failed (status %d): %s" % (" ".join(argv), out.returncode,
                                                          out.stderr.strip()))
    return json.loads(out.stdout)


def run_ab(port, n, c):
    """ab -n N -c C: time, completed and failed requests (non-2xx answers count as failed)."""
    out = subprocess.run(CLIENT_CPU + ["ab", "-q", "-s", "10", "-n", str(n), "-c", str(c),
                                       "http://127.0.0.1:%d/" % port],
                         capture_output=True, text=True, timeout=60)
    text = out.stdout + out.stderr

    def field(pattern, default=None):
        m = re.search(pattern, text)
        return float(m.group(1)) if m else default

    took = field(r"Time taken for tests:\s+([\d.]+)")
    if took is None:
        return {"time_s": None, "ok": 0, "failed": n, "failures": {text.strip()[-200:]: n}}
    complete = int(field(r"Complete requests:\s+(\d+)", 0))
    failed = int(field(r"Failed requests:\s+(\d+)", 0)) + int(field(r"Non-2xx responses:\s+(\d+)",
                                                                    0))
    return {"time_s": took, "ok": complete - failed, "failed": n - complete + failed,
            "failures": {}}


def http_table():
    print("## (a) the seed's load: hello HTTP/1.0, each request sleeps 0.1 s (%d runs each)" % RUNS)
    print()
    loads = [
        ("ab -n 200 -c 200", lambda port: run_ab(port, 200, 200)),
        ("200 connections (net_load)",
         lambda port: run_json([BUILD + "/bench/net_load", "http", str(port), "200", "200", "10"],
                               30)),
        ("10,000 connections (net_load)",
         lambda port: run_json([BUILD + "/bench/net_load", "http", str(port), "10000", "10000",
                                "30"], 60)),
    ]
    servers = [
        ("tendril", lambda: Server("tendril hello_http",
                                   [BUILD + "/examples/hello_http", str(free_port())])),
        ("gevent", lambda: Server("gevent_http.py",
                                  [PYTHON, "bench/gevent_http.py", str(free_port())])),
    ]
    results = {}
    for server_name, start in servers:
        server = start()
        try:
            for _ in range(RUNS):
                for load_name, load in loads:
                    before = listen_overflows()
                    try:
                        r = load(server.port)
                    except (RuntimeError, subprocess.TimeoutExpired) as e:
                        # For example a hard limit on open files below 10,000: say why, go on.
                        n = 10000 if load_name.startswith("10,000") else 200
                        r = {"time_s": None, "ok": 0, "failed": n, "failures": {str(e)[-200:]: n}}
                    r["overflows"] = listen_overflows() - before
                    results.setdefault((load_name, server_name), []).append(r)
        finally:
            server.stop()
    print("| load | server | time, median | min - max | ok / requests (all runs) | failed | "
          "listen-queue overflows |")
    print("|---|---|---|---|---|---|---|")
    for load_name, _ in loads:
        medians = {}
        for server_name, _ in servers:
            rs = results[(load_name, server_name)]
            times = [r["time_s"] for r in rs if r["time_s"] is not None]
            ok = sum(r["ok"] for r in rs)
            failed = sum(r["failed"] for r in rs)
            kinds = {}
            for r in rs:
                for kind, count in r["failures"].items():
                    kinds[kind] = kinds.get(kind, 0) + count
            why = (" (" + ", ".join("%s: %d" % kv for kv in sorted(kinds.items())) + ")"
                   if kinds else "")
            med = statistics.median(times) if times else None
            medians[server_name] = med
            print("| %s | %s | %s | %s | %d / %d | %d%s | %d |" % (
                load_name, server_name, "%.3f s" % med if med else "-",
                "%.3f - %.3f s" % (min(times), max(times)) if times else "-", ok, ok + failed,
                failed, why, sum(r["overflows"] for r in rs)))
        if medians.get("tendril") and medians.get("gevent"):
            print("| %s | gevent / tendril time | %.2fx | | | | |" % (
                load_name, medians["gevent"] / medians["tendril"]))
    print()
    print("ab sends its first request alone and opens the other connections only once it is "
          "answered, so with a 0.1 s handler its floor is 0.2 s; net_load opens them all at once.")
    print()


def echo_table():
    print("## (b) echo throughput: %d connections, %d-byte messages, %d s per run, %d runs" %
          (ECHO_CONNECTIONS, ECHO_MESSAGE_BYTES, ECHO_SECONDS, ECHO_RUNS))
    print()
    servers = [
        Server("tendril_echo", [BUILD + "/bench/tendril_echo", "0"]),
        Server("gevent_echo.py", [PYTHON, "bench/gevent_echo.py", "0"]),
        Server("plain_libev_echo", [BUILD + "/bench/plain_libev_echo", "0"]),
    ]
    rates = {s.name: [] for s in servers}
    user_us = {s.name: [] for s in servers}
    sys_us = {s.name: [] for s in servers}
    try:
        for _ in range(ECHO_RUNS):
            for s in servers:  # interleaved, so that a noisy moment hits every server
                user0, sys0 = cpu_seconds(s.proc.pid)
                r = run_json([BUILD + "/bench/net_load", "echo", str(s.port),
                              str(ECHO_CONNECTIONS), str(ECHO_SECONDS),
                              str(ECHO_MESSAGE_BYTES)], ECHO_SECONDS + 30)
                user1, sys1 = cpu_seconds(s.proc.pid)
                rates[s.name].append(r["requests_per_s"])
                user_us[s.name].append((user1 - user0) * 1e6 / r["requests"])
                sys_us[s.name].append((sys1 - sys0) * 1e6 / r["requests"])
    finally:
        for s in servers:
            s.stop()
            if s.errors.strip():
                print("(%s wrote to stderr: %s)" % (s.name, s.errors.strip()[-300:]))
    med = {name: statistics.median(v) for name, v in rates.items()}
    print("| server | requests/s, median | min - max | server CPU per request: user + kernel |")
    print("|---|---|---|---|")
    labels = {"tendril_echo": "tendril (LibevHub + StreamServer)",
              "gevent_echo.py": "gevent (StreamServer)",
              "plain_libev_echo": "plain libev callbacks (C++, the ceiling)"}
    for name, values in rates.items():
        print("| %s | %.0fk | %.0fk - %.0fk | %.2f + %.2f us |" % (
            labels[name], med[name] / 1000, min(values) / 1000, max(values) / 1000,
            statistics.median(user_us[name]), statistics.median(sys_us[name])))
    print()
    print("| ratio | value | target |")
    print("|---|---|---|")
    print("| tendril / gevent | %.2fx | >= 10x |" % (med["tendril_echo"] / med["gevent_echo.py"]))
    print("| tendril / plain libev | %.2fx | >= 0.8x |" %
          (med["tendril_echo"] / med["plain_libev_echo"]))
    print("| user-space CPU per request, gevent / tendril | %.1fx | |" %
          (statistics.median(user_us["gevent_echo.py"]) /
           statistics.median(user_us["tendril_echo"])))
    print()
    print("Loopback TCP costs every server at least the plain server's %.1f us of kernel time "
          "per request, and the load generator as much again: that bounds the requests/s "
          "ratios (the plain libev ceiling itself is only %.1fx gevent). The user-space CPU per "
          "request is where the servers differ. CPU times come from /proc (clock ticks), so "
          "they are coarse." % (statistics.median(sys_us["plain_libev_echo"]),
                                med["plain_libev_echo"] / med["gevent_echo.py"]))
    print()


def realio_table():
    reps = 3 if QUICK else 5
    args = [BUILD + "/bench/bench_realio", "--benchmark_format=json",
            "--benchmark_repetitions=%d" % reps, "--benchmark_report_aggregates_only=true"]
    data = json.loads(subprocess.run(args, check=True, capture_output=True, text=True).stdout)
    wall = {b["run_name"].replace("/real_time", ""): b for b in data["benchmarks"]
            if b.get("aggregate_name") == "median"}
    gevent = {}
    try:
        twin = subprocess.run([PYTHON, "bench/gevent_twin.py", "sleep0", "timer_sleep"],
                              check=True, capture_output=True, text=True)
        gevent = json.loads(twin.stdout)
    except (OSError, subprocess.CalledProcessError) as e:
        print("(gevent twin unavailable: %s)" % e)
    print("## (c) the real hub (LibevHub), medians of %d repetitions" % reps)
    print()
    print("| operation | tendril LibevHub | target | gevent | gevent / tendril |")
    print("|---|---|---|---|---|")
    rows = [
        ("sleep(0) ping-pong, per sleep(0)", "BM_LibevSleepZeroPingPong", "ns_per_sleep0",
         "<= 200 ns", "sleep0"),
        ("timer sleep, due at once: sleep(1 ns)", "BM_LibevTimerSleep", "ns_per_sleep",
         "<= 650 ns", "timer_sleep"),
        ("sleep(1 us): libev's epoll waits >= 1 ms when not yet due", "BM_LibevSleep1us",
         "ns_per_sleep", "-", None),
    ]
    for label, bench, counter, target, twin_key in rows:
        ns = wall[bench][counter] * 1e9
        g = gevent.get(twin_key) if twin_key else None
        shown = "%.0f ns" % ns if ns < 10000 else "%.1f us" % (ns / 1000)
        print("| %s | %s | %s | %s | %s |" % (label, shown, target, "%.0f ns" % g if g else "-",
                                              "%.1fx" % (g / ns) if g else "-"))
    print()


def main():
    print("(servers on CPU 0, load generator on CPU 1)" if PIN else
          "(one CPU or no taskset: servers and load generator share the CPUs)")
    print()
    started = time.monotonic()
    http_table()
    echo_table()
    realio_table()
    print("(net benchmarks took %.0f s)" % (time.monotonic() - started))


main()
