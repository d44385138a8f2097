// SPDX-License-Identifier: Apache-2.0
// bench_trace: what flow tracing costs on SimHub. Each workload runs untraced (traced:0) and with
// a trace::Tracer recording in memory (traced:1) in the same run; bench/run.sh prints the ratio.
// The cost of the hook itself with no tracer installed is measured by instruction counts against
// a build configured with -DTENDRIL_TRACE_HOOK=OFF (bench/run.sh does both).
#include <benchmark/benchmark.h>

#include <chrono>
#include <memory>
#include <optional>
#include <vector>

#include "tendril/sim.hpp"
#include "tendril/trace.hpp"

using namespace std::chrono_literals;

namespace {

// sleep(0) ping-pong between main and a partner; one iteration is two sleep(0)s. The count is
// fixed so a traced run's memory stays bounded (4 events per sleep(0)).
void BM_TraceSleepZeroPingPong(benchmark::State& state) {
  const bool traced = state.range(0) != 0;
  tendril::SimOptions options;
  options.stack.pool_max_stacks = 16'384;
  options.livelock_steps = 0;    // 200,000 sleep(0)s and nothing else, on purpose
  tendril::SimHub hub(options);  // one hub, so its stacks stay warm between runs
  std::optional<tendril::trace::Tracer> tracer;
  if (traced) tracer.emplace(hub);
  for (auto _ : state) {
    if (tracer) tracer->clear();  // keeps its memory, as an exploration tracing many runs does
    tendril::run(hub, [&] {
      auto partner = tendril::spawn([] {
        for (int i = 0; i < 100'000; ++i) tendril::sleep(0s);
      });
      for (int i = 0; i < 100'000; ++i) tendril::sleep(0s);
      partner->join();
    });
    if (tracer) benchmark::DoNotOptimize(tracer->records());
  }
  state.counters["ns_per_sleep0"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * 200'000,
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_TraceSleepZeroPingPong)
    ->ArgName("traced")
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond);

// 10,000 consumer greenlets block on one Queue; main puts 10,000 items and joins them all.
void BM_TraceQueue10k(benchmark::State& state) {
  const bool traced = state.range(0) != 0;
  tendril::SimOptions options;
  options.stack.pool_max_stacks = 16'384;
  tendril::SimHub hub(options);  // one hub, so its stacks stay warm between runs
  std::optional<tendril::trace::Tracer> tracer;
  if (traced) tracer.emplace(hub);
  for (auto _ : state) {
    if (tracer) tracer->clear();  // keeps its memory, as an exploration tracing many runs does
    tendril::run(hub, [&] {
      tendril::Queue<int> q;
      std::vector<tendril::Ref<tendril::Greenlet>> consumers;
      consumers.reserve(10'000);
      long sum = 0;
      for (int i = 0; i < 10'000; ++i) consumers.push_back(tendril::spawn([&] { sum += q.get(); }));
      tendril::sleep(0s);
      for (int i = 0; i < 10'000; ++i) q.put(i);
      tendril::joinall(consumers);
      benchmark::DoNotOptimize(sum);
    });
    if (tracer) benchmark::DoNotOptimize(tracer->records());
  }
  state.counters["ns_per_greenlet"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * 10'000,
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_TraceQueue10k)->ArgName("traced")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
