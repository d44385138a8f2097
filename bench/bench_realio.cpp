// SPDX-License-Identifier: Apache-2.0
// bench_realio: Google Benchmark figures for the real hub (LibevHub): sleep(0) ping-pong, which
// runs on the ready queue, and timer sleeps, which go through an ev_timer and one libev loop
// iteration. bench/net.sh runs it with repetitions and prints medians next to gevent's.
#include <benchmark/benchmark.h>

#include <chrono>

#include "tendril/realio.hpp"

using namespace std::chrono_literals;

namespace {

// sleep(0) ping-pong between main and a partner greenlet on LibevHub; one iteration is two
// sleep(0)s. Every greenlet ready runs in one pass of the ready queue, without polling libev.
void BM_LibevSleepZeroPingPong(benchmark::State& state) {
  tendril::LibevHub hub;
  tendril::run(hub, [&] {
    bool stop = false;
    auto partner = tendril::spawn([&] {
      while (!stop) tendril::sleep(0s);
    });
    tendril::sleep(0s);
    for (auto _ : state) tendril::sleep(0s);
    stop = true;
    partner->join();
  });
  state.counters["ns_per_sleep0"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * 2,
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_LibevSleepZeroPingPong)->UseRealTime();

// A timer sleep that is due by the time libev looks: sleep(1 ns) in one greenlet. Each one arms
// an ev_timer, runs one loop iteration (epoll_wait with a zero timeout), fires the timer and
// switches back: the fixed cost of the timer path.
void BM_LibevTimerSleep(benchmark::State& state) {
  tendril::LibevHub hub;
  tendril::run(hub, [&] {
    for (auto _ : state) tendril::sleep(1ns);
  });
  state.counters["ns_per_sleep"] =
      benchmark::Counter(static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_LibevTimerSleep)->UseRealTime();

// sleep(1 us): the timer is usually not yet due when libev computes its wait, and libev's epoll
// backend waits at least 1 ms then (backend_mintime), as under gevent. Shown for the record.
void BM_LibevSleep1us(benchmark::State& state) {
  tendril::LibevHub hub;
  tendril::run(hub, [&] {
    for (auto _ : state) tendril::sleep(1us);
  });
  state.counters["ns_per_sleep"] =
      benchmark::Counter(static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_LibevSleep1us)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
