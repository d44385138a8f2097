// SPDX-License-Identifier: Apache-2.0
// bench_core: Google Benchmark figures for the greenlet core on SimHub, with raw Boost.Context
// fiber switching measured in the same run as the reference. bench/run.sh runs it with
// repetitions and prints medians and ratios; see the README's benchmark table.
#include <benchmark/benchmark.h>

#include <boost/context/fiber.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <vector>

#include "tendril/sim.hpp"

using namespace std::chrono_literals;
namespace ctx = boost::context;

namespace {

// Resident set size of this process in bytes, from /proc/self/statm.
long resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  long pages_total = 0, pages_resident = 0;
  statm >> pages_total >> pages_resident;
  return pages_resident * 4096;
}

// Reference: two Boost.Context fibers resuming each other; one iteration is two one-way switches.
void BM_RawFiberPingPong(benchmark::State& state) {
  ctx::fiber partner([](ctx::fiber&& back) {
    for (;;) back = std::move(back).resume();
    return std::move(back);
  });
  for (auto _ : state) partner = std::move(partner).resume();
  state.counters["ns_per_switch"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * 2,
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  // The partner never returns; unwind it while it is suspended.
  partner = ctx::fiber();
}
BENCHMARK(BM_RawFiberPingPong);

// sleep(0) ping-pong between main and a partner greenlet on a SimHub made with `options`; one
// iteration is two sleep(0)s.
void sleep_zero_ping_pong(benchmark::State& state, tendril::SimOptions options) {
  options.livelock_steps = 0;  // nothing but sleep(0), on purpose: no Livelock after 100,000
  tendril::SimHub hub(options);
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

void BM_SleepZeroPingPong(benchmark::State& state) { sleep_zero_ping_pong(state, {}); }
BENCHMARK(BM_SleepZeroPingPong);

// The same on dense stacks (kernel guard regions where Linux has them, else the check of the page
// under the stack at every switch out).
void BM_SleepZeroPingPongDense(benchmark::State& state) {
  tendril::SimOptions options;
  options.stack.mode = tendril::StackMode::dense;
  sleep_zero_ping_pong(state, options);
}
BENCHMARK(BM_SleepZeroPingPongDense);

// spawn + join of a trivial greenlet, one at a time, with a warm stack pool.
void BM_SpawnJoin(benchmark::State& state) {
  tendril::SimHub hub;
  tendril::run(hub, [&] {
    tendril::spawn([] {})->join();  // warm the pool
    for (auto _ : state) tendril::spawn([] {})->join();
  });
}
BENCHMARK(BM_SpawnJoin);

// eventlet's spawn_n: no handle, no join; the spawner's sleep(0) lets the greenlet run and end.
// Its peer in the same run is BM_SpawnSleep0 (spawn, then the same sleep(0), then a join that
// finds it dead).
void BM_SpawnNRun(benchmark::State& state) {
  tendril::SimHub hub;
  tendril::run(hub, [&] {
    tendril::spawn([] {})->join();  // warm the pool
    for (auto _ : state) {
      tendril::spawn_n([] {});
      tendril::sleep(std::chrono::seconds(0));
    }
  });
}
BENCHMARK(BM_SpawnNRun);

void BM_SpawnSleep0(benchmark::State& state) {
  tendril::SimHub hub;
  tendril::run(hub, [&] {
    tendril::spawn([] {})->join();  // warm the pool
    for (auto _ : state) {
      auto g = tendril::spawn([] {});
      tendril::sleep(std::chrono::seconds(0));
      g->join();
    }
  });
}
BENCHMARK(BM_SpawnSleep0);

// spawn_raw-free path for comparison: start and finish without join (links not involved).
tendril::SimOptions dense_options() {
  tendril::SimOptions options;
  options.stack.mode = tendril::StackMode::dense;
  options.stack.size_bytes = 16 * 1024;
  options.stack.pool_max_stacks = 1'100'000;
  return options;
}

// 100k greenlets spawned at once, then joinall; the figure is per greenlet.
void BM_Spawn100kJoinAll(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  tendril::SimHub hub(dense_options());
  tendril::run(hub, [&] {
    std::vector<tendril::Ref<tendril::Greenlet>> gs;
    gs.reserve(n);
    for (auto _ : state) {
      for (std::size_t i = 0; i < n; ++i) gs.push_back(tendril::spawn([] {}));
      tendril::joinall(gs);
      gs.clear();
    }
  });
  state.counters["ns_per_greenlet"] =
      benchmark::Counter(static_cast<double>(state.iterations() * n),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_Spawn100kJoinAll)->Arg(100000)->Unit(benchmark::kMillisecond);

// Resident memory of N idle greenlets (each blocked in a 1 h sleep), dense stacks; the counter is
// bytes per greenlet, stack and greenlet object together.
void BM_IdleGreenletMemory(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  tendril::SimOptions options = dense_options();
  options.stack.cache_across_hubs = false;  // fresh stacks: none already resident from a hub before
  for (auto _ : state) {
    tendril::SimHub hub(options);
    double per = 0;
    tendril::run(hub, [&] {
      std::vector<tendril::Ref<tendril::Greenlet>> gs;
      gs.reserve(n);
      const long before = resident_bytes();
      for (std::size_t i = 0; i < n; ++i) gs.push_back(tendril::spawn([] { tendril::sleep(1h); }));
      tendril::sleep(0s);  // every greenlet starts and blocks
      per = static_cast<double>(resident_bytes() - before) / static_cast<double>(n);
      tendril::killall(gs);
    });
    state.counters["bytes_per_greenlet"] = per;
    state.counters["live_greenlets"] = static_cast<double>(n);
  }
}
BENCHMARK(BM_IdleGreenletMemory)
    ->Arg(100000)
    ->Iterations(1)
    ->Repetitions(1)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_IdleGreenletMemory)
    ->Arg(1000000)
    ->Iterations(1)
    ->Repetitions(1)
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
